"""The real MNIST files -> LMDBs (needs LAYERFORGE_MNIST, e.g. /work/shared/data/mnist)."""
import os

import numpy as np
import pytest

from layerforge.data import build_mnist_lmdbs, read_lmdb

pytestmark = pytest.mark.skipif(not os.environ.get("LAYERFORGE_MNIST"),
                                reason="LAYERFORGE_MNIST is unset: point it at the folder with the four "
                                       "MNIST IDX .gz files to run this test")

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_lmdbs(tmp_path):
    train, test = build_mnist_lmdbs(tmp_path)
    for path, counts in ((train, TRAIN_COUNTS), (test, TEST_COUNTS)):
        images, labels = read_lmdb(path)
        assert images.shape == (sum(counts), 1, 28, 28) and images.dtype == np.uint8
        np.testing.assert_array_equal(np.bincount(labels), counts)
        assert images.max() == 255 and images.min() == 0
