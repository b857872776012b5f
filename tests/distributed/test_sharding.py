"""Data sharding for data-parallel runs: rank r's batch is the r-th slice of the batch of all ranks."""
import subprocess
import sys

import numpy as np
import pytest

from layerforge import distributed
from layerforge.data.pairing import PairSampler
from layerforge.data.prefetch import BatchSource
from layerforge.data.transform import DataTransformer
from layerforge.proto import layerforge_pb2 as pb


def _source(shard, batch, mirror, seed=3):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (40, 1, 6, 6)).astype(np.uint8)
    labels = np.arange(40) % 5
    sampler = PairSampler(labels, batch, images_per_blob=2, balance_matches=True, shuffle=True,
                          rng=np.random.default_rng(seed))
    transformer = DataTransformer(pb.TransformationParameter(scale=1 / 256, mirror=mirror),
                                  pb.TRAIN, images.shape[1:])
    return BatchSource(images, labels, sampler, transformer, output_all_labels=True, shard=shard)


@pytest.mark.parametrize("mirror", [False, True])
def test_each_rank_gets_its_slice_of_the_batch_of_all_ranks(mirror):
    whole = _source((0, 1), 12, mirror)
    ranks = [_source((r, 3), 12, mirror) for r in range(3)]
    for _ in range(5):   # across several batches, an epoch boundary and the pairing alternation
        data, labels, state, _ = whole.next()
        parts = [source.next() for source in ranks]
        np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), data)
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), labels)
        assert all(p[2] == state for p in parts)   # every rank keeps the same sampler state
        assert parts[0][0].shape == (4, 2, 6, 6)


def test_a_batch_that_does_not_split_is_an_error():
    with pytest.raises(ValueError, match="does not split into 5 shards"):
        _source((0, 5), 12, False)


def test_one_process_is_rank_0_of_1_and_never_imports_mpi():
    code = ("import sys, layerforge\n"
            "from layerforge import distributed\n"
            "assert distributed.start() is None and distributed.shard() == (0, 1)\n"
            "assert 'mpi4py' not in sys.modules\n")
    env = {k: v for k, v in __import__("os").environ.items()
           if k not in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


def test_ring_allreduce_cost_model():
    # 2(n-1)/n of the data crosses each link; 1e6 float32 values on 2 nodes at 10 Gb/s:
    # 4 MB * 2 * 1/2 * 8 bit / 10 Gb/s = 3.2 ms, plus 2 latencies.
    assert distributed.ring_allreduce_seconds(1_000_000, 2, 10) == pytest.approx(3.2e-3 + 2 * 5e-6)
    assert distributed.ring_allreduce_seconds(1_000_000, 1, 10) == 0
    assert distributed.scaling_efficiency(0.01, 1_000_000, 2, 10) == pytest.approx(0.01 / (0.01 + 3.21e-3))


def test_several_processes_that_mpi_does_not_see_are_an_error():
    pytest.importorskip("mpi4py", reason="needs mpi4py (pip install 'layerforge[mpi]')")
    code = ("from layerforge import distributed\n"
            "try:\n    distributed.start()\nexcept ValueError as err:\n    print(err)\n")
    env = {**__import__("os").environ, "SLURM_NTASKS": "4"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120).stdout
    assert "the launcher started 4 processes, but MPI sees only this one" in out
