"""Deconvolution: forward against a scatter-style numpy reference (2-D and N-D), gradients, shapes."""
import itertools

import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, make_layer
from tests.layers.test_convolution import conv_text


def deconv_text(options, bias_term=True):
    return conv_text(options, bias_term, name="deconv", layer_type="Deconvolution")


def reference_deconv(x, weight, bias, stride, pad, dilation, group):
    """Each input pixel scatters weight[c] * x into the (padded) output, then the padding is cropped."""
    (sh, sw), (ph, pw), (dh, dw) = stride, pad, dilation
    channels, m, kh, kw = weight.shape
    num, _, height, width = x.shape
    full = np.zeros((num, m * group, sh * (height - 1) + dh * (kh - 1) + 1, sw * (width - 1) + dw * (kw - 1) + 1))
    c = channels // group
    for g in range(group):
        for ki in range(kh):
            for kj in range(kw):
                full[:, g * m:(g + 1) * m, ki * dh:ki * dh + sh * (height - 1) + 1:sh,
                     kj * dw:kj * dw + sw * (width - 1) + 1:sw] += np.einsum(
                    "nchw,cm->nmhw", x[:, g * c:(g + 1) * c], weight[g * c:(g + 1) * c, :, ki, kj])
    y = full[:, :, ph:full.shape[2] - ph, pw:full.shape[3] - pw]
    return y if bias is None else y + bias[None, :, None, None]


# bottom shape, convolution_param options, stride, pad, dilation, group
CASES = [
    ((2, 3, 4, 5), "num_output: 2 kernel_size: 3", (1, 1), (0, 0), (1, 1), 1),
    ((1, 2, 3, 3), "num_output: 3 kernel_size: 4 stride: 2 pad: 1", (2, 2), (1, 1), (1, 1), 1),
    ((2, 4, 3, 4), "num_output: 6 kernel_size: 3 group: 2 dilation: 2", (1, 1), (0, 0), (2, 2), 2),
    ((2, 2, 3, 5), "num_output: 2 kernel_h: 2 kernel_w: 3 stride_h: 3 stride_w: 1 pad_h: 1 pad_w: 0",
     (3, 1), (1, 0), (1, 1), 1),
]


@pytest.mark.parametrize("bias_term", [True, False])
@pytest.mark.parametrize("shape, options, stride, pad, dilation, group", CASES)
def test_forward_and_gradient(shape, options, stride, pad, dilation, group, bias_term):
    x = np.random.default_rng(0).standard_normal(shape)
    text = deconv_text(options, bias_term)
    layer, bottom, top = make_layer(text, [x])
    layer.forward(bottom, top)
    bias = layer.blobs[1].data if bias_term else None
    expected = reference_deconv(x, layer.blobs[0].data, bias, stride, pad, dilation, group)
    assert top[0].shape == expected.shape
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-12, atol=1e-12)
    assert check_gradient(text, [x], max_checks=60) > 0


def test_weight_layout_and_output_size():
    # Caffe: weight (C, num_output/group, kh, kw); out = stride*(H-1) + dilation*(k-1) + 1 - 2*pad
    layer, _, top = make_layer(deconv_text("num_output: 6 kernel_size: 4 stride: 2 pad: 1 group: 2"),
                               [np.zeros((1, 4, 5, 3))])
    assert layer.blobs[0].shape == (4, 3, 4, 4)
    assert layer.blobs[1].shape == (6,)
    assert top[0].shape == (1, 6, 10, 6)


def test_float32_forward():
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 4))
    layer, bottom, top = make_layer(deconv_text("num_output: 2 kernel_size: 3 stride: 2"), [x], dtype=np.float32)
    layer.forward(bottom, top)
    assert top[0].data.dtype == np.float32
    expected = reference_deconv(x, layer.blobs[0].data.astype(np.float64), layer.blobs[1].data.astype(np.float64),
                                (2, 2), (0, 0), (1, 1), 1)
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-4, atol=1e-4)


def test_bad_group():
    with pytest.raises(LayerError, match="not divisible by group"):
        make_layer(deconv_text("num_output: 3 kernel_size: 2 group: 2"), [np.zeros((1, 2, 3, 3))])


def reference_deconv_nd(x, weight, bias, stride, pad, dilation):
    """Any number of spatial axes, one group: scatter, then crop the padding."""
    kernel = weight.shape[2:]
    full_shape = [s * (n - 1) + d * (k - 1) + 1 for n, k, s, d in zip(x.shape[2:], kernel, stride, dilation)]
    full = np.zeros((x.shape[0], weight.shape[1]) + tuple(full_shape))
    for offsets in itertools.product(*[range(k) for k in kernel]):
        window = tuple(slice(o * d, o * d + s * (n - 1) + 1, s)
                       for o, d, s, n in zip(offsets, dilation, stride, x.shape[2:]))
        full[(slice(None), slice(None)) + window] += np.einsum("nc...,cm->nm...", x,
                                                               weight[(slice(None), slice(None)) + offsets])
    y = full[(slice(None), slice(None)) + tuple(slice(p, n - p) for p, n in zip(pad, full_shape))]
    return y + bias.reshape((1, -1) + (1,) * len(kernel))


@pytest.mark.parametrize("shape, options, stride, pad, dilation", [
    ((2, 3, 3, 4, 2), "num_output: 2 kernel_size: 3 kernel_size: 2 kernel_size: 2 stride: 2 stride: 1 stride: 2 "
                      "pad: 1 pad: 0 pad: 1", (2, 1, 2), (1, 0, 1), (1, 1, 1)),
    ((2, 2, 5), "num_output: 3 kernel_size: 3 stride: 2 dilation: 2", (2,), (0,), (2,)),
])
def test_nd_forward_and_gradient(shape, options, stride, pad, dilation):
    """3-D and 1-D Deconvolution against numpy; gradients in float64."""
    x = np.random.default_rng(0).standard_normal(shape)
    text = deconv_text(options)
    layer, bottom, top = make_layer(text, [x])
    layer.forward(bottom, top)
    expected = reference_deconv_nd(x, layer.blobs[0].data, layer.blobs[1].data, stride, pad, dilation)
    assert top[0].shape == expected.shape
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-12, atol=1e-12)
    assert check_gradient(text, [x], max_checks=80) > 0
