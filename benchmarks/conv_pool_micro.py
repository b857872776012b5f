"""Forward + backward ms/call of the Siamese MNIST vision layers at batch 128, float32.

Usage: python benchmarks/conv_pool_micro.py [--torch]   (--torch times PyTorch CPU instead;
a separate process, so the two thread pools do not disturb each other)
"""
import sys
import time

import numpy as np

from layerforge.blob import Blob
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import create_layer
from google.protobuf import text_format

BATCH = 128
LAYERS = [  # name, prototxt, bottom shape, propagate_down (conv1 sits on the data layer)
    ("conv1", 'type: "Convolution" convolution_param { num_output: 20 kernel_size: 5 '
              'weight_filler { type: "xavier" } }', (BATCH, 1, 28, 28), False),
    ("pool1", 'type: "Pooling" pooling_param { pool: MAX kernel_size: 2 stride: 2 }',
     (BATCH, 20, 24, 24), True),
    ("conv2", 'type: "Convolution" convolution_param { num_output: 50 kernel_size: 5 '
              'weight_filler { type: "xavier" } }', (BATCH, 20, 12, 12), True),
    ("pool2", 'type: "Pooling" pooling_param { pool: MAX kernel_size: 2 stride: 2 }',
     (BATCH, 50, 8, 8), True),
]


def best_ms(fn, repeat=40):
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def time_layerforge(text, shape, propagate):
    rng = np.random.default_rng(0)
    layer = create_layer(text_format.Parse(f'name: "l" {text}', pb.LayerParameter()), pb.TRAIN, rng)
    bottom, top = [Blob.from_array(rng.standard_normal(shape), np.float32)], [Blob()]
    layer.setup(bottom, top)
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    top[0].diff[...] = rng.standard_normal(top[0].shape)
    fwd = best_ms(lambda: layer.forward(bottom, top))
    bwd = best_ms(lambda: layer.backward(top, [propagate], bottom))
    return fwd, bwd


def time_torch(name, shape, propagate):
    import torch
    x = torch.randn(shape, requires_grad=propagate)
    module = {"conv1": lambda: torch.nn.Conv2d(1, 20, 5), "conv2": lambda: torch.nn.Conv2d(20, 50, 5),
              "pool1": lambda: torch.nn.MaxPool2d(2, 2), "pool2": lambda: torch.nn.MaxPool2d(2, 2)}[name]()
    y = module(x)
    grad = torch.randn_like(y)
    fwd = best_ms(lambda: module(x))

    def fwd_bwd():
        module(x).backward(grad)
    return fwd, best_ms(fwd_bwd) - fwd


def main():
    use_torch = "--torch" in sys.argv
    print(("torch" if use_torch else "layerforge") + f" ms/call, batch {BATCH}, float32")
    print(f"{'layer':6} {'fwd':>8} {'bwd':>8} {'total':>8}")
    total = 0.0
    for name, text, shape, propagate in LAYERS:
        fwd, bwd = time_torch(name, shape, propagate) if use_torch else time_layerforge(text, shape, propagate)
        total += fwd + bwd
        print(f"{name:6} {fwd:8.2f} {bwd:8.2f} {fwd + bwd:8.2f}")
    print(f"{'total':6} {total:26.2f}")


if __name__ == "__main__":
    main()
