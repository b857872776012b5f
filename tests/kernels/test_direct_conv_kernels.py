"""Direct convolution kernels (kernels/direct_conv.py) against plain numpy sums (compiled and .py_func)."""
import numpy as np
import pytest

from layerforge.kernels.direct_conv import direct_conv, direct_conv_data_grad, direct_conv_weight_grad

# N, C, H, W (already padded), K, kernel_h, kernel_w: 5- and 3-tap rows have their own loops, and
# the weight gradient takes blocks of 4 outputs (K = 6: one block and two left over)
SHAPES = [(3, 1, 10, 9, 4, 5, 5), (2, 2, 7, 8, 3, 3, 3), (2, 3, 6, 7, 2, 2, 4), (5, 1, 5, 5, 1, 5, 5),
          (2, 2, 8, 9, 6, 5, 5)]


def shifted(images, i, j, out_h, out_w):
    return images[:, :, i:i + out_h, j:j + out_w]


@pytest.mark.parametrize("jit", [True, False], ids=["numba", "python"])
@pytest.mark.parametrize("num, channels, height, width, num_output, kernel_h, kernel_w", SHAPES)
def test_direct_convolution_and_its_gradients_match_numpy(num, channels, height, width, num_output,
                                                          kernel_h, kernel_w, jit):
    kernel = (lambda f: f) if jit else (lambda f: f.py_func)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((num, channels, height, width))
    weight = rng.standard_normal((num_output, channels, kernel_h, kernel_w))
    bias = rng.standard_normal(num_output)
    out_h, out_w = height - kernel_h + 1, width - kernel_w + 1
    taps = [(i, j) for i in range(kernel_h) for j in range(kernel_w)]

    top = np.full((num, num_output, out_h, out_w), np.nan)
    kernel(direct_conv)(images, weight, bias, top)
    expected = bias[None, :, None, None] + sum(
        np.einsum("kc,ncyx->nkyx", weight[:, :, i, j], shifted(images, i, j, out_h, out_w)) for i, j in taps)
    np.testing.assert_allclose(top, expected, rtol=1e-12, atol=1e-12)

    top_diff = rng.standard_normal(top.shape)
    partial = np.full((min(num, 3),) + weight.shape, np.nan)
    bias_partial = np.full((len(partial), num_output), np.nan)
    kernel(direct_conv_weight_grad)(images, top_diff, partial, bias_partial)
    np.testing.assert_allclose(bias_partial.sum(axis=0), top_diff.sum(axis=(0, 2, 3)), rtol=1e-12)
    weight_grad = np.zeros(weight.shape)
    for i, j in taps:
        weight_grad[:, :, i, j] = np.einsum("nkyx,ncyx->kc", top_diff, shifted(images, i, j, out_h, out_w))
    np.testing.assert_allclose(partial.sum(axis=0), weight_grad, rtol=1e-12, atol=1e-12)

    images_diff = np.full(images.shape, np.nan)
    kernel(direct_conv_data_grad)(top_diff, weight, images_diff)
    expected_diff = np.zeros(images.shape)
    for i, j in taps:
        expected_diff[:, :, i:i + out_h, j:j + out_w] += np.einsum("kc,nkyx->ncyx", weight[:, :, i, j], top_diff)
    np.testing.assert_allclose(images_diff, expected_diff, rtol=1e-12, atol=1e-12)


def test_float32_sums_stay_close():
    rng = np.random.default_rng(1)
    images = rng.standard_normal((4, 1, 28, 28)).astype(np.float32)
    weight = rng.standard_normal((3, 1, 5, 5)).astype(np.float32)
    top = np.empty((4, 3, 24, 24), np.float32)
    direct_conv(images, weight, np.zeros(3, np.float32), top)
    exact = sum(np.einsum("k,nyx->nkyx", weight[:, 0, i, j].astype(np.float64),
                          images[:, 0, i:i + 24, j:j + 24].astype(np.float64)) for i in range(5) for j in range(5))
    assert np.abs(top - exact).max() < 1e-5 * np.abs(exact).max()
