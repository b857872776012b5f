"""BatchNorm: Caffe's batch statistics, running averages with the m/(m-1) correction, global stats,
in place, gradients in both modes, and statistics the solver never touches."""
import numpy as np
import pytest

from layerforge.blob import Blob
from layerforge.layer import LayerError
from layerforge.net import Net
from layerforge.io import parse_text
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import create_layer
from layerforge.solvers import get_solver
from layerforge.testing import PHASES, check_gradient, forward, layer_param, make_layer


def text(options=""):
    return f'name: "bn" type: "BatchNorm" bottom: "x" top: "y" batch_norm_param {{ {options} }}'


def channel_axes(x):
    return (0,) + tuple(range(2, x.ndim)) if x.ndim > 1 else (0,)


def normalize(x, mean, variance, eps=1e-5):
    shape = (1, -1) + (1,) * (x.ndim - 2) if x.ndim > 1 else (-1,)
    return (x - mean.reshape(shape)) / np.sqrt(variance.reshape(shape) + eps)


def as_channels(x):
    return x if x.ndim > 1 else x[:, None]


SHAPES = [(5, 2, 3, 4), (4, 3), (6,), (2, 3, 5)]


@pytest.mark.parametrize("shape", SHAPES)
def test_train_forward_uses_batch_statistics(shape):
    x = np.random.default_rng(0).normal(3, 2, shape)
    (y,) = forward(text(), [x])
    axes = channel_axes(x)
    np.testing.assert_allclose(y, normalize(x, x.mean(axis=axes), x.var(axis=axes)), rtol=1e-10, atol=1e-12)
    # Caffe's TestForward: every channel of the output has mean 0 and variance 1 (eps aside).
    np.testing.assert_allclose(as_channels(y).mean(axis=channel_axes(as_channels(x))), 0, atol=1e-3)
    np.testing.assert_allclose((as_channels(y) ** 2).mean(axis=channel_axes(as_channels(x))), 1, atol=1e-3)


def test_running_averages_follow_caffe():
    rng = np.random.default_rng(1)
    batches = [rng.normal(i, 1 + i, (4, 3, 2, 2)) for i in range(3)]
    layer, bottom, top = make_layer(text("moving_average_fraction: 0.9"), [batches[0]])
    mean_sum, variance_sum, factor = np.zeros(3), np.zeros(3), 0.0
    m = 4 * 2 * 2
    f = float(np.float32(0.9))  # moving_average_fraction is a float field
    for x in batches:
        bottom[0].data[...] = x
        layer.forward(bottom, top)
        factor = f * factor + 1
        mean_sum = f * mean_sum + x.mean(axis=(0, 2, 3))
        variance_sum = f * variance_sum + x.var(axis=(0, 2, 3)) * m / (m - 1)
    np.testing.assert_allclose(layer.blobs[0].data, mean_sum, rtol=1e-12)
    np.testing.assert_allclose(layer.blobs[1].data, variance_sum, rtol=1e-12)
    np.testing.assert_allclose(layer.blobs[2].data, [factor], rtol=1e-12)
    assert [b.shape for b in layer.blobs] == [(3,), (3,), (1,)]
    assert not any(b.learnable for b in layer.blobs)


def set_statistics(mean_sum, variance_sum, factor):
    def hook(layer):
        layer.blobs[0].data[...] = mean_sum
        layer.blobs[1].data[...] = variance_sum
        layer.blobs[2].data[...] = factor
    return hook


@pytest.mark.parametrize("phase, options", [("TEST", ""), ("TRAIN", "use_global_stats: true"),
                                            ("RUN", "")])
def test_global_statistics_divide_by_the_scale_factor(phase, options):
    x = np.random.default_rng(2).standard_normal((3, 2, 4))
    layer, bottom, top = make_layer(text(options + " eps: 0.001"), [x], phase=phase)
    set_statistics([1.0, -2.0], [8.0, 0.5], 2.0)(layer)
    layer.forward(bottom, top)
    np.testing.assert_allclose(top[0].data, normalize(x, np.array([0.5, -1.0]), np.array([4.0, 0.25]), 1e-3),
                               rtol=1e-6)  # eps is a float field: 1e-3 in single precision
    np.testing.assert_array_equal(layer.blobs[2].data, [2.0])  # not updated


def test_zero_scale_factor_means_zero_statistics():
    x = np.random.default_rng(3).standard_normal((2, 3))
    layer, bottom, top = make_layer(text(), [x], phase="TEST")
    layer.blobs[0].data[...] = 5
    layer.forward(bottom, top)
    np.testing.assert_allclose(top[0].data, x / np.sqrt(np.float32(1e-5)), rtol=1e-6)


def test_use_global_stats_false_in_test_phase_uses_the_batch():
    x = np.random.default_rng(4).normal(1, 3, (6, 2))
    (y,) = forward(text("use_global_stats: false"), [x], phase="TEST")
    np.testing.assert_allclose(y, normalize(x, x.mean(axis=0), x.var(axis=0)), rtol=1e-10)


@pytest.mark.parametrize("shape", SHAPES)
def test_gradient_with_batch_statistics(shape):
    x = np.random.default_rng(5).normal(0.5, 2, shape)
    assert check_gradient(text(), [x], rtol=1e-4, max_checks=60) > 0


@pytest.mark.parametrize("phase, options", [("TEST", ""), ("TRAIN", "use_global_stats: true")])
def test_gradient_with_global_statistics(phase, options):
    x = np.random.default_rng(6).standard_normal((3, 2, 2, 2))
    hook = set_statistics([0.5, -1.0], [3.0, 0.2], 1.5)
    assert check_gradient(text(options), [x], phase=phase, layer_hook=hook, max_checks=60) > 0


@pytest.mark.parametrize("phase", ["TRAIN", "TEST"])
def test_in_place_matches_separate_blobs(phase):
    x = np.random.default_rng(7).normal(2, 3, (5, 2, 3, 4))
    dy = np.random.default_rng(8).standard_normal(x.shape)
    hook = set_statistics([0.5, -1.0], [3.0, 0.2], 1.5)
    layer, bottom, top = make_layer(text(), [x], phase=phase)
    hook(layer)
    layer.forward(bottom, top)
    top[0].diff[...] = dy
    layer.backward(top, [True], bottom)

    shared = Blob.from_array(x, np.float64)
    in_place = create_layer(layer_param(text()), PHASES[phase], np.random.default_rng(0))
    in_place.set_up([shared], [shared])
    hook(in_place)
    in_place.forward([shared], [shared])
    np.testing.assert_allclose(shared.data, top[0].data, rtol=1e-12)
    shared.data[...] = -7  # a later in-place layer overwrites the top; backward must not care
    shared.diff[...] = dy
    in_place.backward([shared], [True], [shared])
    np.testing.assert_allclose(shared.diff, bottom[0].diff, rtol=1e-12, atol=1e-14)


def test_float32_forward():
    x = np.random.default_rng(9).normal(3, 2, (5, 2, 3, 4))
    (y,) = forward(text(), [x.astype(np.float32)], dtype=np.float32)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, normalize(x, x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))), atol=1e-5)


def test_nonzero_lr_mult_is_an_error():
    with pytest.raises(LayerError, match="lr_mult 1"):
        make_layer(text() + " param { lr_mult: 0 } param { lr_mult: 1 }", [np.zeros((2, 3))])


def test_channel_change_is_an_error():
    layer, bottom, top = make_layer(text(), [np.zeros((2, 3))])
    bottom[0].reshape((2, 4))
    with pytest.raises(LayerError, match="3 channels"):
        layer.reshape(bottom, top)


NET = '''
name: "bn"
layer { name: "in" type: "Input" top: "x" top: "t" input_param { shape { dim: 4 dim: 3 } shape { dim: 4 dim: 2 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "h"
        inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 1 } } }
layer { name: "bn" type: "BatchNorm" bottom: "h" top: "h" %s }
layer { name: "loss" type: "EuclideanLoss" bottom: "h" bottom: "t" top: "loss" }
'''


@pytest.mark.parametrize("specs", ["", "param { lr_mult: 0 } param { lr_mult: 0 } param { lr_mult: 0 }"])
def test_solver_never_updates_the_statistics(specs):
    """Only InnerProduct's two blobs are learnable; a solver step changes the statistics only by
    the forward pass's running average, and the test net reads the train net's statistics."""
    solver_param = pb.SolverParameter(base_lr=0.5, lr_policy="fixed", max_iter=1, display=0,
                                      weight_decay=0.1, momentum=0.9)
    solver_param.net_param.CopyFrom(parse_text(NET % specs, pb.NetParameter()))
    solver = get_solver(solver_param)
    net = solver.net
    assert len(net.learnable_params) == 2
    x = np.random.default_rng(10).standard_normal((4, 3))
    net.blobs["x"].data[...] = x
    net.blobs["t"].data[...] = 1.0
    weights = net.params["ip"][0].data.astype(np.float64)
    bias = net.params["ip"][1].data.astype(np.float64)
    solver.step(1)
    h = x @ weights.T + bias
    bn = net.params["bn"]
    np.testing.assert_allclose(bn[0].data, h.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn[1].data, h.var(axis=0) * 4 / 3, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn[2].data, [1.0])
    test_net = Net(parse_text(NET % specs, pb.NetParameter()), pb.TEST)
    test_net.share_with(net)
    assert test_net.params["bn"][0] is bn[0]
