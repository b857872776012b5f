"""Helpers shared by the elementwise (neuron) layer tests: kink-free inputs and the in-place check."""
import numpy as np

from layerforge import testing

SHAPES = [(1, 1), (2, 3, 4, 5), (7,), (3, 5, 1, 1), (1, 2, 3)]


def away_from_zero(shape, seed=0, low=0.05, high=2.0):
    """Random values of random sign with |x| >= low, so no element sits on a kink at 0."""
    rng = np.random.default_rng(seed)
    return rng.uniform(low, high, shape) * rng.choice([-1.0, 1.0], shape)


def check_in_place(text, x, phase="TRAIN", seed=0):
    """The layer run with top == bottom (one Blob) gives the same top, bottom diff and param diffs."""
    testing.check_in_place(text, [x], phase, seed)
