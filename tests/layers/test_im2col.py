"""Im2col: Caffe's test_im2col_layer.cpp cases (shapes, top-left block, rectangles, dilation),
a loop reference, gradients, errors."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward


def text(options):
    return f'name: "i" type: "Im2col" bottom: "x" top: "y" convolution_param {{ {options} }}'


def reference(x, kernel, stride=(1, 1), pad=(0, 0), dilation=(1, 1)):
    """Caffe's im2col per item, by loops: row (c, ky, kx), column (oy, ox); padding is 0."""
    num, channels, height, width = x.shape
    out = [(size + 2 * p - (d * (k - 1) + 1)) // s + 1
           for size, k, s, p, d in zip((height, width), kernel, stride, pad, dilation)]
    top = np.zeros((num, channels * kernel[0] * kernel[1], out[0], out[1]))
    for n in range(num):
        for c in range(channels):
            for ky in range(kernel[0]):
                for kx in range(kernel[1]):
                    row = (c * kernel[0] + ky) * kernel[1] + kx
                    for oy in range(out[0]):
                        for ox in range(out[1]):
                            y = oy * stride[0] - pad[0] + ky * dilation[0]
                            xx = ox * stride[1] - pad[1] + kx * dilation[1]
                            if 0 <= y < height and 0 <= xx < width:
                                top[n, row, oy, ox] = x[n, c, y, xx]
    return top


def bottom(shape=(2, 3, 6, 5), seed=1701):
    return np.random.default_rng(seed).standard_normal(shape)


def test_setup_shape():
    """Caffe's TestSetup: 2×3×10×11, kernel 3, stride 2, dilation 3 -> 2×27×2×3."""
    (y,) = forward(text("kernel_size: 3 stride: 2 dilation: 3"), [bottom((2, 3, 10, 11))])
    assert y.shape == (2, 27, 2, 3)


def test_forward_top_left_block():
    """Caffe's TestForward: kernel 3, stride 2; top(n, c, 0, 0) = bottom(n, c/9, (c/3)%3, c%3)."""
    x = bottom()
    (y,) = forward(text("kernel_size: 3 stride: 2"), [x])
    for c in range(27):
        assert y[0, c, 0, 0] == x[0, c // 9, (c // 3) % 3, c % 3]


def test_rect_top_left_block():
    """Caffe's TestRect: kernel 5×3, stride 2; top(n, c, 0, 0) = bottom(n, c/15, (c/3)%5, c%3)."""
    x = bottom()
    (y,) = forward(text("kernel_h: 5 kernel_w: 3 stride: 2"), [x])
    for c in range(45):
        assert y[0, c, 0, 0] == x[0, c // 15, (c // 3) % 5, c % 3]


@pytest.mark.parametrize("options, geometry", [
    ("kernel_size: 3 stride: 2", dict(kernel=(3, 3), stride=(2, 2))),
    ("kernel_size: 3 stride: 2 dilation: 3", dict(kernel=(3, 3), stride=(2, 2), dilation=(3, 3))),
    ("kernel_h: 5 kernel_w: 3 stride: 2", dict(kernel=(5, 3), stride=(2, 2))),
    ("kernel_size: 2 kernel_size: 3 pad: 1 stride: 1 stride: 2", dict(kernel=(2, 3), pad=(1, 1), stride=(1, 2))),
    ("kernel_size: 3 pad_h: 2 pad_w: 0 dilation: 2 dilation: 1", dict(kernel=(3, 3), pad=(2, 0), dilation=(2, 1))),
])
def test_forward_and_gradient(options, geometry):
    x = bottom((2, 3, 10, 9) if "dilation: 3" in options else (2, 3, 6, 5))
    (y,) = forward(text(options), [x])
    np.testing.assert_array_equal(y, reference(x, **geometry))
    assert check_gradient(text(options), [x], max_checks=40) > 0


def reference_nd(x, kernel, stride, pad, dilation):
    """Caffe's im2col_nd per item, by loops over every column entry."""
    num, channels = x.shape[:2]
    sizes = x.shape[2:]
    out = [(n + 2 * p - (d * (k - 1) + 1)) // s + 1 for n, k, s, p, d in zip(sizes, kernel, stride, pad, dilation)]
    top = np.zeros((num, channels) + tuple(kernel) + tuple(out))
    for c in range(channels):
        for offset in np.ndindex(*kernel):
            for position in np.ndindex(*out):
                source = [o * s - p + k * d for o, s, p, k, d in zip(position, stride, pad, offset, dilation)]
                if all(0 <= i < n for i, n in zip(source, sizes)):
                    top[(slice(None), c) + offset + position] = x[(slice(None), c) + tuple(source)]
    return top.reshape((num, channels * int(np.prod(kernel))) + tuple(out))


@pytest.mark.parametrize("shape, options, geometry", [
    ((2, 3, 7), "kernel_size: 3 stride: 2 pad: 1", ((3,), (2,), (1,), (1,))),                      # 1-D
    ((2, 2, 5, 4, 6), "kernel_size: 2 kernel_size: 3 kernel_size: 2 pad: 1 stride: 2 dilation: 1 dilation: 1 "
     "dilation: 2", ((2, 3, 2), (2, 2, 2), (1, 1, 1), (1, 1, 2))),                                  # 3-D
    ((2, 3, 6, 5), "kernel_size: 3 stride: 2 dilation: 2 pad: 1 force_nd_im2col: true",
     ((3, 3), (2, 2), (1, 1), (2, 2))),                                                           # TestGradientForceND
])
def test_n_dimensional(shape, options, geometry):
    x = bottom(shape)
    (y,) = forward(text(options), [x])
    np.testing.assert_array_equal(y, reference_nd(x, *geometry))
    assert check_gradient(text(options), [x], max_checks=40) > 0


def test_force_nd_matches_the_2d_kernel():
    x = bottom((2, 3, 9, 8))
    options = "kernel_h: 3 kernel_w: 2 stride: 2 pad: 1 dilation: 2"
    np.testing.assert_array_equal(forward(text(options + " force_nd_im2col: true"), [x])[0],
                                  forward(text(options), [x])[0])


def test_leading_axes_before_the_channel_axis():
    x = bottom((2, 2, 3, 4, 4))
    (y,) = forward(text("kernel_size: 2 axis: 2"), [x])
    assert y.shape == (2, 2, 12, 3, 3)
    np.testing.assert_array_equal(y.reshape(4, 12, 3, 3), reference(x.reshape(4, 3, 4, 4), (2, 2)))


def test_float32():
    x = bottom()
    (y,) = forward(text("kernel_size: 3 pad: 1"), [x.astype(np.float32)], dtype=np.float32)
    np.testing.assert_array_equal(y, reference(x.astype(np.float32), (3, 3), pad=(1, 1)))


@pytest.mark.parametrize("options, shape, message", [
    ("stride: 2", (2, 3, 6, 5), "kernel_size is required"),
    ("kernel_size: 3 kernel_h: 3 kernel_w: 3", (2, 3, 6, 5), "give kernel_size, or .* both kernel_h and kernel_w"),
    ("kernel_h: 3 kernel_w: 3", (2, 3, 6), "give kernel_size, or .* both kernel_h and kernel_w"),
    ("kernel_size: 2 kernel_size: 3", (2, 3, 6, 5, 4), r"kernel_size must be given once or once per spatial axis \(3\)"),
    ("kernel_size: 7", (2, 3, 6, 5), "does not fit"),
    ("kernel_size: 3 axis: 3", (2, 3, 6, 5), "no spatial axis after the channel axis 3"),
])
def test_errors(options, shape, message):
    with pytest.raises(LayerError, match=message):
        forward(text(options), [np.zeros(shape)])
