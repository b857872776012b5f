"""Images/s of the Data layer for the Siamese batch: 64 pairs of 28×28 MNIST digits.

Usage: python benchmarks/data_throughput.py [LMDB]
The LMDB defaults to data/mnist/mnist_train_lmdb (built by `make demo`), else one built
from $LAYERFORGE_MNIST in a temporary folder, else 60 000 random synthetic digits.
Times forward() with prefetch 4 (as a net sees it) and prefetch 0 (the producer alone).
"""
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from google.protobuf import text_format

from layerforge.blob import Blob
from layerforge.data import build_mnist_lmdbs
from layerforge.data.store import datums, write_lmdb
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import create_layer

PAIRS, BATCHES = 64, 2000


def find_lmdb(scratch):
    if len(sys.argv) > 1:
        return Path(sys.argv[1]), "given"
    if Path("data/mnist/mnist_train_lmdb/data.mdb").exists():
        return Path("data/mnist/mnist_train_lmdb"), "MNIST"
    if os.environ.get("LAYERFORGE_MNIST"):
        return build_mnist_lmdbs(scratch)[0], "MNIST"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (60000, 1, 28, 28), dtype=np.uint8)
    return write_lmdb(Path(scratch) / "synthetic_lmdb", datums(images, rng.integers(0, 10, 60000))), "synthetic"


def images_per_second(source, prefetch):
    text = (f'name: "pair_data" type: "Data" top: "pair_data" top: "sim" '
            f'transform_param {{ scale: 0.00390625 }} data_param {{ source: "{source}" backend: LMDB '
            f'batch_size: {PAIRS} images_per_blob: 2 balance_matches: true output_all_labels: true '
            f'shuffle: true prefetch: {prefetch} }}')
    start = time.perf_counter()
    layer = create_layer(text_format.Parse(text, pb.LayerParameter()), pb.TRAIN, np.random.default_rng(0))
    top = [Blob(), Blob()]
    layer.setup([], top)
    layer.reshape([], top)
    setup = time.perf_counter() - start
    layer.forward([], top)
    start = time.perf_counter()
    for _ in range(BATCHES):
        layer.forward([], top)
    rate = BATCHES * 2 * PAIRS / (time.perf_counter() - start)
    layer.close()
    return setup, rate


def main():
    with tempfile.TemporaryDirectory() as scratch:
        source, kind = find_lmdb(scratch)
        print(f"{kind} LMDB {source}: batch {PAIRS} pairs x 2 images of 28x28, {BATCHES} batches")
        for prefetch in (4, 0):
            setup, rate = images_per_second(source, prefetch)
            print(f"prefetch {prefetch}: setup (load LMDB) {setup:.2f} s, {rate:,.0f} images/s")


if __name__ == "__main__":
    main()
