"""Convolution: forward against a direct numpy reference (2-D and N-D), gradients, several
bottom/top pairs, shapes and config errors."""
import itertools

import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, make_layer


def conv_text(options, bias_term=True, name="conv", layer_type="Convolution"):
    return (f'name: "{name}" type: "{layer_type}" bottom: "x" top: "y" convolution_param {{ '
            f'{options} bias_term: {str(bias_term).lower()} '
            'weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "gaussian" std: 0.5 } }')


def reference_conv(x, weight, bias, stride, pad, dilation, group):
    """Sum over kernel offsets of strided slices of the padded input (per group)."""
    (sh, sw), (ph, pw), (dh, dw) = stride, pad, dilation
    num_output, group_channels, kh, kw = weight.shape
    oh = (x.shape[2] + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
    ow = (x.shape[3] + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = np.zeros((x.shape[0], num_output, oh, ow))
    m = num_output // group
    for g in range(group):
        for ki in range(kh):
            for kj in range(kw):
                patch = padded[:, g * group_channels:(g + 1) * group_channels,
                               ki * dh:ki * dh + sh * (oh - 1) + 1:sh, kj * dw:kj * dw + sw * (ow - 1) + 1:sw]
                y[:, g * m:(g + 1) * m] += np.einsum("nchw,mc->nmhw", patch, weight[g * m:(g + 1) * m, :, ki, kj])
    return y if bias is None else y + bias[None, :, None, None]


# bottom shape, convolution_param options, stride, pad, dilation, group
CASES = [
    ((2, 3, 7, 6), "num_output: 4 kernel_size: 3", (1, 1), (0, 0), (1, 1), 1),
    ((1, 2, 5, 5), "num_output: 3 kernel_size: 3", (1, 1), (0, 0), (1, 1), 1),
    ((3, 1, 9, 5), "num_output: 2 kernel_size: 2", (1, 1), (0, 0), (1, 1), 1),
    ((2, 3, 8, 7), "num_output: 4 kernel_size: 3 pad: 1 stride: 2", (2, 2), (1, 1), (1, 1), 1),
    ((2, 2, 9, 9), "num_output: 3 kernel_size: 3 dilation: 2", (1, 1), (0, 0), (2, 2), 1),
    ((2, 4, 6, 6), "num_output: 6 kernel_size: 3 group: 2 pad: 1", (1, 1), (1, 1), (1, 1), 2),
    ((2, 3, 8, 7), "num_output: 2 kernel_h: 3 kernel_w: 2 pad_h: 2 pad_w: 1 stride_h: 2 stride_w: 3",
     (2, 3), (2, 1), (1, 1), 1),
    ((1, 3, 7, 8), "num_output: 2 kernel_size: 3 kernel_size: 1 stride: 1 stride: 2 pad: 0 pad: 1 "
                   "dilation: 2 dilation: 1", (1, 2), (0, 1), (2, 1), 1),
    ((2, 4, 5, 5), "num_output: 4 kernel_size: 1 group: 4", (1, 1), (0, 0), (1, 1), 4),
    # from 4 channels, with group 1: im2row, or Winograd (stride 1, square 3x3 to 7x7 kernel)
    ((2, 6, 8, 8), "num_output: 4 kernel_size: 5", (1, 1), (0, 0), (1, 1), 1),
    ((2, 5, 7, 6), "num_output: 3 kernel_size: 3 pad: 1", (1, 1), (1, 1), (1, 1), 1),
    ((1, 4, 9, 8), "num_output: 2 kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 2 dilation: 2",
     (2, 1), (1, 2), (2, 2), 1),
    ((3, 4, 9, 10), "num_output: 5 kernel_size: 4 pad: 1", (1, 1), (1, 1), (1, 1), 1),
    ((2, 4, 13, 11), "num_output: 3 kernel_size: 5 pad: 2", (1, 1), (2, 2), (1, 1), 1),   # partial tiles
    ((1, 4, 3, 4), "num_output: 2 kernel_size: 3 pad: 7", (1, 1), (7, 7), (1, 1), 1),     # tiles in the padding
    ((2, 5, 12, 11), "num_output: 3 kernel_size: 7 pad: 1", (1, 1), (1, 1), (1, 1), 1),  # F(2, 7)
    ((2, 4, 10, 10), "num_output: 3 kernel_size: 6 pad: 2", (1, 1), (2, 2), (1, 1), 1),   # F(3, 6)
    # fewer channels, stride 1: direct, with 5-tap, 3-tap and other kernel rows
    ((2, 1, 9, 8), "num_output: 3 kernel_size: 5 pad: 1", (1, 1), (1, 1), (1, 1), 1),
    ((3, 2, 7, 9), "num_output: 2 kernel_h: 4 kernel_w: 3", (1, 1), (0, 0), (1, 1), 1),
]


@pytest.mark.parametrize("engine", ["DEFAULT", "CAFFE"])   # CAFFE: always im2col or im2row
@pytest.mark.parametrize("bias_term", [True, False])
@pytest.mark.parametrize("shape, options, stride, pad, dilation, group", CASES)
def test_forward_and_gradient(shape, options, stride, pad, dilation, group, bias_term, engine):
    x = np.random.default_rng(0).standard_normal(shape)
    text = conv_text(f"{options} engine: {engine}", bias_term)
    for dtype, rtol in ((np.float64, 1e-12), (np.float32, 1e-4)):
        layer, bottom, top = make_layer(text, [x], dtype=dtype)
        layer.forward(bottom, top)
        weight = layer.blobs[0].data.astype(np.float64)
        bias = layer.blobs[1].data.astype(np.float64) if bias_term else None
        assert top[0].data.dtype == dtype and layer.blobs[0].data.dtype == dtype
        expected = reference_conv(bottom[0].data.astype(np.float64), weight, bias, stride, pad, dilation, group)
        np.testing.assert_allclose(top[0].data, expected, rtol=rtol, atol=rtol)
    assert check_gradient(text, [x], max_checks=60) > 0


@pytest.mark.parametrize("options, shape, algorithm", [
    ("num_output: 4 kernel_size: 5", (8, 6, 8, 8), "winograd"),
    ("num_output: 4 kernel_size: 5 engine: CAFFE", (8, 6, 8, 8), "im2row"),
    ("num_output: 4 kernel_size: 5", (2, 6, 8, 8), "im2row"),           # 2 tiles: too few
    ("num_output: 384 kernel_size: 3 pad: 1", (2, 256, 13, 13), "im2row"),   # weights per tile
    ("num_output: 384 kernel_size: 3 pad: 1", (8, 256, 13, 13), "winograd"),
    ("num_output: 4 kernel_size: 5 stride: 2", (2, 6, 12, 12), "im2row"),
    ("num_output: 4 kernel_size: 7", (2, 6, 12, 12), "winograd"),      # F(2, 7): 9 tiles an image
    ("num_output: 4 kernel_size: 6", (2, 6, 12, 12), "winograd"),      # F(3, 6)
    ("num_output: 4 kernel_size: 9", (2, 6, 12, 12), "im2row"),        # no F(m, 9) points
    ("num_output: 4 kernel_size: 5", (2, 6, 7, 7), "im2row"),           # output smaller than a tile
    ("num_output: 4 kernel_size: 5 group: 2", (2, 6, 8, 8), "im2col"),
    ("num_output: 4 kernel_size: 5 group: 2", (8, 6, 8, 8), "winograd"),
    ("num_output: 4 kernel_size: 5", (2, 3, 8, 8), "direct"),
    ("num_output: 4 kernel_size: 6", (2, 1, 12, 12), "im2col"),        # 36 taps: the GEMM is long enough
    ("num_output: 4 kernel_size: 5 engine: CAFFE", (2, 3, 8, 8), "im2col"),
    ("num_output: 4 kernel_size: 3 dilation: 2", (2, 3, 8, 8), "im2col"),
])
def test_algorithm_choice(options, shape, algorithm):
    layer, _, _ = make_layer(conv_text(options), [np.zeros(shape)])
    assert layer.algorithm == algorithm


@pytest.mark.parametrize("channels, group, kernel", [(5, 1, 5), (2, 1, 5), (6, 3, 5), (5, 1, 6), (5, 1, 7)],
                         ids=["winograd", "direct", "winograd-groups", "winograd-6x6", "winograd-7x7"])
def test_fast_algorithms_match_im2col_in_value_and_gradient(channels, group, kernel):
    """The same weights give the same top and diffs as with engine: CAFFE (float64)."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, channels, 10, 9))
    results = []
    for engine in ("DEFAULT", "CAFFE"):
        layer, bottom, top = make_layer(conv_text(f"num_output: 9 kernel_size: {kernel} pad: 1 group: {group} "
                                                  f"engine: {engine}"), [x])
        assert layer.algorithm == {"DEFAULT": "winograd" if channels > 2 else "direct"}.get(engine, layer.algorithm)
        layer.blobs[0].data[...] = np.random.default_rng(7).standard_normal(layer.blobs[0].shape)
        layer.forward(bottom, top)
        top[0].diff[...] = np.random.default_rng(8).standard_normal(top[0].shape)
        layer.backward(top, [True], bottom)
        results.append([top[0].data.copy(), bottom[0].diff.copy()] + [blob.diff.copy() for blob in layer.blobs])
    for fast, im2col in zip(*results):
        np.testing.assert_allclose(fast, im2col, rtol=1e-11, atol=1e-11)


def test_blob_shapes_and_fillers():
    layer, _, top = make_layer('name: "c" type: "Convolution" bottom: "x" top: "y" convolution_param { '
                               'num_output: 6 kernel_h: 3 kernel_w: 2 group: 2 '
                               'bias_filler { type: "constant" value: 0.25 } }', [np.zeros((2, 4, 5, 5))])
    assert layer.blobs[0].shape == (6, 2, 3, 2)
    assert layer.blobs[1].shape == (6,)
    np.testing.assert_array_equal(layer.blobs[1].data, 0.25)
    np.testing.assert_array_equal(layer.blobs[0].data, 0)  # Caffe's default filler: constant 0
    assert top[0].shape == (2, 6, 3, 4)


def test_caffe_output_size():
    # (H + 2*pad - (dilation*(k-1)+1)) // stride + 1 = (10 + 2 - 5) // 3 + 1 = 3
    _, _, top = make_layer(conv_text("num_output: 1 kernel_size: 3 pad: 1 stride: 3 dilation: 2"),
                           [np.zeros((1, 1, 10, 10))])
    assert top[0].shape == (1, 1, 3, 3)


@pytest.mark.parametrize("options, channels, size", [
    ("kernel_size: 2 stride: 2", 2, 4),      # im2col
    ("kernel_size: 2", 5, 4),                # im2row
    ("kernel_size: 3", 5, 6),                # Winograd
    ("kernel_size: 2 pad: 1", 2, 4),         # direct
])
def test_backward_adds_into_parameter_diffs_and_overwrites_bottom_diff(options, channels, size):
    rng = np.random.default_rng(3)
    layer, bottom, top = make_layer(conv_text(f"num_output: 3 {options}"),
                                    [rng.standard_normal((2, channels, size, size))])
    layer.forward(bottom, top)
    top[0].diff[...] = rng.standard_normal(top[0].shape)
    layer.backward(top, [True], bottom)
    once = [blob.diff.copy() for blob in layer.blobs] + [bottom[0].diff.copy()]
    bottom[0].diff[...] = 123.0
    layer.backward(top, [True], bottom)
    np.testing.assert_allclose(layer.blobs[0].diff, 2 * once[0], rtol=1e-12)
    np.testing.assert_allclose(layer.blobs[1].diff, 2 * once[1], rtol=1e-12)
    np.testing.assert_allclose(bottom[0].diff, once[2], rtol=1e-12)


def test_no_propagate_down_leaves_bottom_diff():
    rng = np.random.default_rng(4)
    layer, bottom, top = make_layer(conv_text("num_output: 2 kernel_size: 3"), [rng.standard_normal((1, 1, 5, 5))])
    layer.forward(bottom, top)
    top[0].diff[...] = 1.0
    bottom[0].diff[...] = 7.0
    layer.backward(top, [False], bottom)
    np.testing.assert_array_equal(bottom[0].diff, 7.0)
    assert np.any(layer.blobs[0].diff != 0)


def test_axis_two_folds_leading_axes_into_the_batch():
    x = np.random.default_rng(5).standard_normal((2, 3, 2, 5, 5))
    text = conv_text("num_output: 2 kernel_size: 3 axis: 2")
    layer, bottom, top = make_layer(text, [x])
    layer.forward(bottom, top)
    assert top[0].shape == (2, 3, 2, 3, 3)
    expected = reference_conv(x.reshape(6, 2, 5, 5), layer.blobs[0].data, layer.blobs[1].data,
                              (1, 1), (0, 0), (1, 1), 1)
    np.testing.assert_allclose(top[0].data.reshape(6, 2, 3, 3), expected, rtol=1e-12)
    assert check_gradient(text, [x], max_checks=40) > 0


@pytest.mark.parametrize("options, shape, message", [
    ("num_output: 2", (1, 1, 5, 5), "kernel_size"),
    ("num_output: 2 kernel_size: 3 kernel_h: 3 kernel_w: 3", (1, 1, 5, 5), "not both"),
    ("num_output: 2 kernel_h: 3", (1, 1, 5, 5), "kernel_h and kernel_w"),
    ("num_output: 2 kernel_size: 1 kernel_size: 2 kernel_size: 3", (1, 1, 5, 5), "kernel_size is given 3 times"),
    ("num_output: 3 kernel_size: 1 group: 2", (1, 4, 5, 5), "num_output 3 is not divisible by group 2"),
    ("num_output: 4 kernel_size: 1 group: 2", (1, 3, 5, 5), "3 channels are not divisible by group 2"),
    ("kernel_size: 3", (1, 1, 5, 5), "num_output"),
    ("num_output: 2 kernel_size: 3 axis: -1", (1, 1, 5, 5), "no spatial axes"),
    ("num_output: 2 kernel_size: 3 kernel_size: 3", (1, 1, 5, 5, 5), "once per spatial axis \\(3\\)"),
    ("num_output: 2 kernel_h: 3 kernel_w: 3", (1, 1, 5), "2-D convolution only"),
    ("num_output: 2 kernel_size: 3 dilation: 1 dilation: 2", (1, 1, 5, 5, 5), "dilation is given 2 times"),
    ("num_output: 2 kernel_size: 6", (1, 1, 5, 5), "empty output"),
    ("num_output: 2 kernel_size: 3 stride: 0", (1, 1, 5, 5), "stride must be > 0"),
])
def test_bad_configurations(options, shape, message):
    with pytest.raises(LayerError, match=message) as info:
        make_layer(conv_text(options), [np.zeros(shape)])
    assert "conv" in str(info.value)


def test_channel_count_change_after_setup_is_an_error():
    layer, bottom, top = make_layer(conv_text("num_output: 2 kernel_size: 1"), [np.zeros((1, 3, 4, 4))])
    bottom[0].reshape((1, 4, 4, 4))
    with pytest.raises(LayerError, match="channels"):
        layer.reshape(bottom, top)


def reference_conv_nd(x, weight, bias, stride, pad, dilation, group=1):
    """Any number of spatial axes: sum over kernel offsets of strided windows of the padded input."""
    num_output, group_channels = weight.shape[:2]
    kernel = weight.shape[2:]
    out = [(n + 2 * p - (d * (k - 1) + 1)) // s + 1
           for n, k, s, p, d in zip(x.shape[2:], kernel, stride, pad, dilation)]
    padded = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in pad])
    y = np.zeros((x.shape[0], num_output) + tuple(out))
    m = num_output // group
    for g in range(group):
        for offsets in itertools.product(*[range(k) for k in kernel]):
            window = tuple(slice(o * d, o * d + s * (n - 1) + 1, s)
                           for o, d, s, n in zip(offsets, dilation, stride, out))
            patch = padded[(slice(None), slice(g * group_channels, (g + 1) * group_channels)) + window]
            y[:, g * m:(g + 1) * m] += np.einsum("nc...,mc->nm...", patch,
                                                 weight[(slice(g * m, (g + 1) * m), slice(None)) + offsets])
    return y if bias is None else y + bias.reshape((1, -1) + (1,) * len(kernel))


# bottom shape, options, stride, pad, dilation, group
ND_CASES = [
    ((2, 3, 11), "num_output: 4 kernel_size: 3 stride: 2 pad: 1", (2,), (1,), (1,), 1),
    ((3, 4, 9), "num_output: 2 kernel_size: 2 dilation: 3 group: 2", (1,), (0,), (3,), 2),
    ((2, 2, 5, 4, 6), "num_output: 3 kernel_size: 3 kernel_size: 2 kernel_size: 3 stride: 1 stride: 2 stride: 1 "
                      "pad: 1 pad: 0 pad: 2 dilation: 1 dilation: 1 dilation: 2", (1, 2, 1), (1, 0, 2), (1, 1, 2), 1),
    ((1, 4, 4, 5, 4), "num_output: 2 kernel_size: 2 group: 2 pad: 1", (1, 1, 1), (1, 1, 1), (1, 1, 1), 2),
]


@pytest.mark.parametrize("shape, options, stride, pad, dilation, group", ND_CASES)
def test_nd_forward_and_gradient(shape, options, stride, pad, dilation, group):
    """1-D and 3-D convolution (Caffe's im2col_nd path) against numpy; gradients in float64."""
    x = np.random.default_rng(0).standard_normal(shape)
    text = conv_text(options)
    for dtype, rtol in ((np.float64, 1e-12), (np.float32, 1e-4)):
        layer, bottom, top = make_layer(text, [x], dtype=dtype)
        assert layer.algorithm == "im2col_nd"
        layer.forward(bottom, top)
        expected = reference_conv_nd(x, layer.blobs[0].data.astype(np.float64),
                                     layer.blobs[1].data.astype(np.float64), stride, pad, dilation, group)
        assert top[0].shape == expected.shape and top[0].data.dtype == dtype
        np.testing.assert_allclose(top[0].data, expected, rtol=rtol, atol=rtol)
    assert check_gradient(text, [x], max_checks=80) > 0


def test_3d_blob_shapes():
    layer, _, top = make_layer(conv_text("num_output: 6 kernel_size: 3 kernel_size: 1 kernel_size: 2 group: 3"),
                               [np.zeros((2, 9, 5, 4, 3))])
    assert layer.blobs[0].shape == (6, 3, 3, 1, 2)
    assert top[0].shape == (2, 6, 3, 4, 2)


def _run(text, bottoms, weights_seed=7, diff_seed=8):
    """top data, bottom diffs and parameter diffs of one forward/backward with set weights."""
    layer, bottom, top = make_layer(text, bottoms, num_tops=len(bottoms))
    rng = np.random.default_rng(weights_seed)
    for blob in layer.blobs:
        blob.data[...] = rng.standard_normal(blob.shape)
    layer.forward(bottom, top)
    rng = np.random.default_rng(diff_seed)
    for t in top:
        t.diff[...] = rng.standard_normal(t.shape)
    layer.backward(top, [True] * len(bottom), bottom)
    return layer, [t.data.copy() for t in top], [b.diff.copy() for b in bottom], [b.diff.copy() for b in layer.blobs]


@pytest.mark.parametrize("options, shape, algorithm", [
    ("num_output: 3 kernel_size: 3 pad: 1", (2, 5, 6, 6), "winograd"),
    ("num_output: 3 kernel_size: 3 pad: 1", (2, 2, 6, 5), "direct"),
    ("num_output: 3 kernel_size: 3 stride: 2", (2, 5, 7, 6), "im2row"),
    ("num_output: 4 kernel_size: 2 group: 2", (2, 4, 5, 5), "im2col"),
    ("num_output: 3 kernel_size: 2 force_nd_im2col: true", (2, 2, 5, 4), "im2col_nd"),
    ("num_output: 3 kernel_size: 2 pad: 1", (2, 2, 4, 3, 3), "im2col_nd"),
])
@pytest.mark.parametrize("layer_type", ["Convolution", "Deconvolution"])
def test_several_bottoms_equal_single_convolutions(options, shape, algorithm, layer_type):
    """bottom[i] -> top[i] with one weight: tops and bottom diffs as two single-pair layers
    give, parameter diffs their sum (Caffe's BaseConvolutionLayer)."""
    rng = np.random.default_rng(9)
    a, b = rng.standard_normal(shape), rng.standard_normal(shape)

    def text(bottoms):
        names = "".join(f'bottom: "x{i}" top: "y{i}" ' for i in range(bottoms))
        return (f'name: "conv" type: "{layer_type}" {names}convolution_param {{ {options} }}')

    layer, tops, bottom_diffs, param_diffs = _run(text(2), [a, b])
    if layer_type == "Convolution":
        assert layer.algorithm == algorithm
    rng = np.random.default_rng(8)   # the top diffs _run gave the two-pair layer
    diffs = [rng.standard_normal(t.shape) for t in tops]
    expected_params = [np.zeros_like(d) for d in param_diffs]
    for i, x in enumerate((a, b)):
        one, bottom, top = make_layer(text(1), [x])
        for blob, source in zip(one.blobs, layer.blobs):
            blob.data[...] = source.data
        one.forward(bottom, top)
        np.testing.assert_allclose(tops[i], top[0].data, rtol=1e-12, atol=1e-12)
        top[0].diff[...] = diffs[i]
        one.backward(top, [True], bottom)
        np.testing.assert_allclose(bottom_diffs[i], bottom[0].diff, rtol=1e-12, atol=1e-12)
        for total, blob in zip(expected_params, one.blobs):
            total += blob.diff
    for got, expected in zip(param_diffs, expected_params):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    names = "".join(f'bottom: "x{i}" top: "y{i}" ' for i in range(2))
    assert check_gradient(f'name: "conv" type: "{layer_type}" {names}convolution_param {{ {options} '
                          'bias_filler { type: "gaussian" } weight_filler { type: "gaussian" } }',
                          [a, b], max_checks=40, num_tops=2) > 0


def test_force_nd_im2col_equals_the_2d_path():
    """Caffe's TestNDAgainst2D: the general N-D path gives the 2-D path's numbers."""
    x = np.random.default_rng(2).standard_normal((2, 3, 7, 6))
    options = "num_output: 4 kernel_size: 3 kernel_size: 2 stride: 2 stride: 1 pad: 1 dilation: 1 dilation: 2"
    _, *nd = _run(conv_text(f"{options} force_nd_im2col: true"), [x])
    _, *flat = _run(conv_text(options), [x])
    for got, expected in zip(nd, flat):
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shapes, tops, message", [
    (((1, 2, 5, 5), (1, 2, 5, 4)), 2, "all bottoms must have one shape"),
    (((1, 2, 5, 5), (1, 2, 5, 5)), 1, "one top per bottom"),
])
def test_several_bottoms_errors(shapes, tops, message):
    with pytest.raises(LayerError, match=message):
        make_layer(conv_text("num_output: 2 kernel_size: 3"), [np.zeros(s) for s in shapes], num_tops=tops)
