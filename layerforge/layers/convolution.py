"""Convolution (and the `ConvolutionBase` Deconvolution shares), as in Caffe.

Several bottom/top pairs may share one layer's weights (bottom[i] -> top[i], all bottoms of
one shape). Images with 1, 3 or more spatial axes (or any, with `force_nd_im2col`) run on
the general N-D im2col/col2im kernels + GEMM ("im2col_nd"). For 2-D images both layers run
on im2col + one BLAS GEMM per group over the whole batch (see kernels/im2col.py),
split across Numba's threads by kernels/blas.py; the column matrix of the forward pass is kept
for the weight gradient. Convolution picks a faster algorithm where one applies
(`Convolution.algorithm`):
- "direct" (kernels/direct_conv.py): stride 1, one group, fewer than 4 input channels and
  kernels of at most 25 taps, where im2col's GEMM is long and thin (LeNet's conv1: ~3x faster);
- "winograd" (kernels/winograd.py): stride 1, from 4 channels (any group), square 3x3 to 7x7
  kernels: F(4x4, r x r) up to 5x5 (for 5x5 kernels 6x fewer multiplications), F(3x3, 6x6)
  and F(2x2, 7x7) (3x fewer), at the cost of about one decimal digit in float32 (relative
  error ~1e-5 instead of ~1e-6; larger tiles for 6x6 and 7x7 would cost 1.5 digits more);
  only with enough output tiles in the batch to amortise its weight transform (not for one
  image of CaffeNet's conv3);
- "im2row": from 4 channels with one group, the channels-last im2col, whose copies are
  runs of C values (~4x faster than im2col on 12x12 images);
- "im2col" otherwise.
Without dilation in all but the last two. `engine: CAFFE` keeps a layer on im2col/im2row + GEMM.

The module is over 400 lines because the base's parameter parsing and buffers and the four
algorithms' forward/backward share one set of geometry fields; their loops are in kernels/.
"""
import math

import numpy as np

from layerforge.blob import Blob
from layerforge.fillers import fill
from layerforge.kernels import blas
from layerforge.kernels.conv import add_bias_grad, batch_to_rows, rows_to_batch
from layerforge.kernels.direct_conv import direct_conv, direct_conv_data_grad, direct_conv_weight_grad
from layerforge.kernels.im2col import col2im, col2im_nd, im2col, im2col_nd, im2row, row2im
from layerforge.kernels.winograd import (input_grad_tiles, input_grad_tiles_banded, input_tiles,
                                         input_tiles_banded, output_grad_tiles, output_tiles,
                                         transform_matrices)
from layerforge.layer import Layer
from layerforge.registry import register_layer

_CHANNELS_LAST_MIN = 4  # input channels from which Convolution uses im2row or Winograd, not direct
_DIRECT_CHUNKS = 8      # image chunks of the direct weight gradient (one partial sum each)
# Kernels of larger area run faster on im2col + GEMM than direct (K = area is then long enough
# for the GEMM; the direct kernel keeps only 3- and 5-tap rows in registers): forward + weight
# gradient, 1 channel, 7x7 1.15x and Koch's 10x10 1.7x faster on im2col; 5x5 direct 1.7x faster.
_DIRECT_MAX_AREA = 25
# Output tile side m of F(m x m, r x r) for each kernel side r it is used for: n = m + r - 1
# is at most 8 (the interpolation points kernels/winograd.py defines).
_WINOGRAD_TILE = {3: 4, 4: 4, 5: 4, 6: 3, 7: 2}
# Fewer tiles per pass, or more transformed weights per tile, and im2row is faster: MNIST's
# conv2 (8x8 outputs, 4 tiles an image) breaks even at 2 images; CaffeNet's conv3 (13x13, 16
# tiles an image, 3.5M transformed weights) at 1 and 2 images is 1.3-1.6x faster on im2row,
# at 8 images 1.7x slower.
_WINOGRAD_MIN_TILES = 8
_WINOGRAD_WEIGHTS_PER_TILE = 2 ** 15


class ConvolutionBase(Layer):
    """Parameter parsing, blobs and buffers shared by Convolution and Deconvolution.

    The "image side" of im2col is the bottom for Convolution and the top for
    Deconvolution; `self.conv_in` / `self.conv_out` are the channel counts of the
    equivalent forward convolution (Caffe's conv_in_channels_ / conv_out_channels_).
    """

    min_bottom = 1
    min_top = 1
    batch_independent = True
    algorithm = "im2col"   # or "im2row" (column matrix (N*P, K)), "winograd", "direct" (none), "im2col_nd"

    def batch_independent_for(self, bottom):
        return self.axis > 0       # axis 0 would fold the items into one

    def _spatial(self, name, values, h_name, w_name, default):
        """Caffe's rule: `name` once or once per spatial axis, or (2-D only) name_h and name_w,
        not both. Returns one value per spatial axis."""
        cp = self.param.convolution_param
        axes = self.num_spatial
        has_h = h_name is not None and cp.HasField(h_name)
        has_w = w_name is not None and cp.HasField(w_name)
        if has_h or has_w:
            if axes != 2:
                raise self.error(f"convolution_param: {h_name}/{w_name} are for 2-D convolution only; "
                                 f"this one has {axes} spatial axes (give {name})")
            if values:
                raise self.error(f"convolution_param: give either {name} or {h_name}/{w_name}, not both")
            if not (has_h and has_w):
                raise self.error(f"convolution_param: {h_name} and {w_name} must be given together")
            return getattr(cp, h_name), getattr(cp, w_name)
        if len(values) == 0:
            if default is None:
                raise self.error(f"convolution_param: {name} is required")
            return (default,) * axes
        if len(values) == 1:
            return (values[0],) * axes
        if len(values) == axes:
            return tuple(values)
        raise self.error(f"convolution_param: {name} is given {len(values)} times; give it once or "
                         f"once per spatial axis ({axes})")

    def setup(self, bottom, top):
        cp = self.param.convolution_param
        shape = bottom[0].shape
        try:
            self.axis = bottom[0].canonical_axis(cp.axis)
        except ValueError as err:
            raise self.error(f"convolution_param.axis: {err}") from None
        self.num_spatial = len(shape) - self.axis - 1
        if self.num_spatial < 1:
            raise self.error(f"bottom shape {shape} with axis {cp.axis} has no spatial axes after "
                             f"the channel axis")
        if len(top) != len(bottom):
            raise self.error(f"needs one top per bottom, got {len(bottom)} bottoms and {len(top)} tops")
        self.nd = self.num_spatial != 2 or cp.force_nd_im2col
        if self.nd:
            self.algorithm = "im2col_nd"
        self.kernel = self._spatial("kernel_size", cp.kernel_size, "kernel_h", "kernel_w", None)
        self.stride = self._spatial("stride", cp.stride, "stride_h", "stride_w", 1)
        self.pad = self._spatial("pad", cp.pad, "pad_h", "pad_w", 0)
        self.dilation = self._spatial("dilation", cp.dilation, None, None, 1)
        self.nd_geometry = tuple(np.array(values, np.int64)
                                 for values in (self.kernel, self.stride, self.pad, self.dilation))
        for name, pair in (("kernel size", self.kernel), ("stride", self.stride),
                           ("dilation", self.dilation)):
            if min(pair) <= 0:
                raise self.error(f"convolution_param: {name} must be > 0, got {pair}")
        if cp.num_output <= 0:
            raise self.error("convolution_param.num_output must be given and > 0")
        self.group = cp.group
        self.channels = shape[self.axis]
        self.num_output = cp.num_output
        if self.group <= 0 or self.num_output % self.group:
            raise self.error(f"convolution_param: num_output {self.num_output} is not divisible "
                             f"by group {self.group}")
        if self.channels % self.group:
            raise self.error(f"the bottom's {self.channels} channels are not divisible by "
                             f"group {self.group}")
        self.conv_in, self.conv_out = self._conv_channels()
        weight = Blob((self.conv_out, self.conv_in // self.group) + self.kernel, bottom[0].dtype)
        fill(weight, cp.weight_filler, self.rng)
        self.blobs = [weight]
        if cp.bias_term:
            bias = Blob((self.num_output,), bottom[0].dtype)
            fill(bias, cp.bias_filler, self.rng)
            self.blobs.append(bias)

    def _geometry(self):
        return self.kernel + self.stride + self.pad + self.dilation

    def _image_view(self, array):
        """`array` as (N, C, H, W), folding all axes before the channel axis into N."""
        return array.reshape((-1,) + array.shape[self.axis:])

    def _flat_view(self, array):
        """`array` as (N, C, spatial size), the N-D kernels' view."""
        return array.reshape(self.num, array.shape[self.axis], -1)

    def reshape(self, bottom, top):
        shape = bottom[0].shape
        if len(shape) != self.axis + 1 + self.num_spatial or shape[self.axis] != self.channels:
            raise self.error(f"bottom shape {shape} does not match the setup shape (channel axis "
                             f"{self.axis} with {self.channels} channels, {self.num_spatial} spatial axes)")
        for i in range(1, len(bottom)):
            if bottom[i].shape != shape:
                raise self.error(f"all bottoms must have one shape: bottom[0] is {shape}, "
                                 f"bottom[{i}] is {bottom[i].shape}")
        self.num = math.prod(shape[:self.axis])
        in_size = shape[self.axis + 1:]
        out_size = self._output_size(in_size)
        if min(out_size) <= 0:
            raise self.error(f"input {'x'.join(map(str, in_size))} gives an empty output "
                             f"{'x'.join(map(str, out_size))} with kernel {self.kernel}, stride "
                             f"{self.stride}, pad {self.pad}, dilation {self.dilation}")
        for t in top:
            t.reshape(shape[:self.axis] + (self.num_output,) + out_size)
        # The column side is the smaller spatial size: the conv output, or the deconv input.
        self.col_plane = math.prod(out_size if self._image_is_bottom() else in_size)
        if self.nd:
            image_size = in_size if self._image_is_bottom() else out_size
            self.image_shape = np.array(image_size, np.int64)
        dtype = bottom[0].dtype
        self.zero_bias = self.buffer("zero_bias", (self.conv_out,), dtype)
        self.zero_bias[...] = 0
        if self.algorithm not in ("im2col", "im2row", "im2col_nd"):
            return
        col_shape = (self.conv_in * math.prod(self.kernel), self.num * self.col_plane)
        col_shape = col_shape[::-1] if self.algorithm == "im2row" else col_shape
        self.col = self.buffer("col", col_shape, dtype)
        self.col_diff = self.buffer("col_diff", col_shape, dtype)
        self.rows = self.buffer("rows", (self.conv_out, self.num * self.col_plane), dtype)
        kernel_size = self.conv_in * math.prod(self.kernel)
        weight_grad = (self.conv_out // self.group, kernel_size // self.group)   # one group's
        self.weight_grad = self.buffer("weight_grad", weight_grad, dtype)

    def _output_size(self, in_size):
        """The top's spatial size for a bottom of spatial size `in_size` (a tuple)."""
        return tuple(self._axis_output_size(*geometry) for geometry in
                     zip(in_size, self.kernel, self.stride, self.pad, self.dilation))

    def forward(self, bottom, top):
        for i in range(len(bottom)):
            self._forward(bottom[i], top[i])

    def backward(self, top, propagate_down, bottom):
        """Pairs in reverse order: forward left its buffers (columns, tiles) for the last one."""
        last = len(bottom) - 1
        for i in range(last, -1, -1):
            if i != last:
                self._prepare(bottom[i])
            self._backward(top[i], propagate_down[i], bottom[i])

    def _bias(self):
        """The bias added by rows_to_batch in Convolution.forward (zeros without bias_term)."""
        return self.blobs[1].data if len(self.blobs) > 1 else self.zero_bias

    def _grouped(self, weight, col, rows):
        """Per-group views (weight (M/g, K/g), col (K/g, N*P), rows (M/g, N*P))."""
        weight = weight.reshape(self.conv_out, -1)
        m, k = self.conv_out // self.group, col.shape[0] // self.group
        return [(weight[g * m:(g + 1) * m], col[g * k:(g + 1) * k], rows[g * m:(g + 1) * m])
                for g in range(self.group)]

    def _weight_grad(self, col, rows):
        """weight.diff += rows @ col.T, group by group."""
        weight = self.blobs[0]
        diff = weight.diff.reshape(self.conv_out, -1)
        m = self.conv_out // self.group
        for g, (_, col_g, rows_g) in enumerate(self._grouped(weight.data, col, rows)):
            blas.matmul_add(rows_g, col_g.T, diff[g * m:(g + 1) * m])

    def _conv_rows(self, col, rows):
        """rows = weight @ col, group by group (the forward convolution GEMM)."""
        for weight_g, col_g, rows_g in self._grouped(self.blobs[0].data, col, rows):
            blas.matmul(weight_g, col_g, rows_g)

    def _conv_cols(self, rows, col):
        """col = weight.T @ rows, group by group (the data-gradient GEMM)."""
        for weight_g, col_g, rows_g in self._grouped(self.blobs[0].data, col, rows):
            blas.matmul(weight_g.T, rows_g, col_g)


@register_layer("Convolution")
class ConvolutionLayer(ConvolutionBase):
    """top[i] = weight * bottom[i] (+ bias); weight (num_output, C/group, *kernel)."""

    def _conv_channels(self):
        return self.channels, self.num_output

    def _image_is_bottom(self):
        return True

    def setup(self, bottom, top):
        super().setup(bottom, top)
        self.winograd_kernel = (not self.nd and self.kernel[0] == self.kernel[1]
                                and self.kernel[0] in _WINOGRAD_TILE)
        if self.winograd_kernel:
            self.winograd_tile = m = _WINOGRAD_TILE[self.kernel[0]]
            banded = m + self.kernel[0] - 1 > 2 * m     # much overlap between input tiles
            self.input_tiles_kernel = input_tiles_banded if banded else input_tiles
            self.input_grad_tiles_kernel = input_grad_tiles_banded if banded else input_grad_tiles
            at, g, bt = transform_matrices(m, self.kernel[0])
            dtype = bottom[0].dtype
            self.winograd_at, self.winograd_bt = at.astype(dtype), bt.astype(dtype)
            self.winograd_gg = np.kron(g, g).astype(dtype)   # (n*n, r*r): w -> G w G^T, flattened

    def _choose_algorithm(self, shape):
        """The fastest algorithm for this geometry (see the module docstring)."""
        if self.nd:
            return "im2col_nd"
        cp = self.param.convolution_param
        many_channels = self.channels >= _CHANNELS_LAST_MIN
        if (cp.engine != cp.CAFFE and self.stride == (1, 1) and self.dilation == (1, 1)
                and len(shape) == self.axis + 3):
            if not many_channels and self.group == 1 and math.prod(self.kernel) <= _DIRECT_MAX_AREA:
                return "direct"
            if many_channels and self.winograd_kernel and self._winograd_pays(shape):
                return "winograd"
        return "im2row" if self.group == 1 and many_channels else "im2col"

    def _winograd_pays(self, shape):
        """Whether Winograd beats im2row on a bottom of `shape`: its m x m output tiles must be
        mostly filled, and its weight transform (n*n*C/group*M values, redone every pass) amortised
        over enough tiles (see _WINOGRAD_MIN_TILES, _WINOGRAD_WEIGHTS_PER_TILE)."""
        out_size = self._output_size(shape[-2:])
        m = self.winograd_tile
        if min(out_size) < m:
            return False
        tiles = math.prod(shape[:self.axis]) * math.prod(-(-size // m) for size in out_size)
        points = (m + self.kernel[0] - 1) ** 2
        weights = points * self.channels // self.group * self.num_output
        return tiles >= _WINOGRAD_MIN_TILES and weights <= _WINOGRAD_WEIGHTS_PER_TILE * tiles

    def reshape(self, bottom, top):
        self.algorithm = self._choose_algorithm(bottom[0].shape)
        super().reshape(bottom, top)
        if self.algorithm in ("im2col", "im2col_nd"):
            return
        out_h, out_w = top[0].shape[-2:]
        dtype = bottom[0].dtype
        num, channels, height, width = self._image_view(bottom[0].data).shape
        if self.algorithm == "winograd":
            m, r = self.winograd_tile, self.kernel[0]
            n = m + r - 1
            self.tiles_h, self.tiles_w = -(-out_h // m), -(-out_w // m)
            spatial = self.tiles_h * self.tiles_w
            self.input_tiles = self.buffer("input_tiles", (n * n, spatial * num, channels), dtype)
            self.input_tiles_diff = self.buffer("input_tiles_diff", self.input_tiles.shape, dtype)
            self.products = self.buffer("products", (n * n, spatial * num, self.num_output), dtype)
            self.weight_tiles = self.buffer("weight_tiles", (n * n, channels // self.group, self.num_output), dtype)
            self.weight_tiles_diff = self.buffer("weight_tiles_diff", self.weight_tiles.shape, dtype)
            self.tile_sums = self.buffer("tile_sums", (spatial, num * self.num_output), dtype)
        elif self.algorithm == "direct":
            padded = (num, channels, height + 2 * self.pad[0], width + 2 * self.pad[1])
            self.images_padded = self.buffer("images_padded", padded, dtype) if any(self.pad) else None
            chunks = min(_DIRECT_CHUNKS, num)
            self.weight_partial = self.buffer("weight_partial", (chunks,) + self.blobs[0].shape, dtype)
            self.bias_partial = self.buffer("bias_partial", (chunks, self.num_output), dtype)
        elif self.algorithm == "im2row":
            self.images_last = self.buffer("images_last", (num, height, width, channels), dtype)
            self.weight_last = self.buffer("weight_last", (self.num_output,) + self.kernel + (channels,), dtype)

    def _padded(self, images):
        """`images` zero-padded by pad_h, pad_w (a view of them without padding)."""
        if self.images_padded is None:
            return images
        pad_h, pad_w = self.pad
        self.images_padded[...] = 0
        self.images_padded[:, :, pad_h:pad_h + images.shape[2], pad_w:pad_w + images.shape[3]] = images
        return self.images_padded

    def _direct_backward(self, top, propagate_down, bottom):
        images = self.images_padded if self.images_padded is not None else self._image_view(bottom.data)
        top_diff = self._image_view(top.diff)
        weight_wanted, bias_wanted = self.param_needs_gradient(0), len(self.blobs) > 1 and self.param_needs_gradient(1)
        if weight_wanted or bias_wanted:   # one kernel computes both
            direct_conv_weight_grad(images, top_diff, self.weight_partial, self.bias_partial)
        if weight_wanted:
            self.blobs[0].diff += self.weight_partial.sum(axis=0)
        if bias_wanted:
            self.blobs[1].diff += self.bias_partial.sum(axis=0)
        if propagate_down:
            bottom_diff = self._image_view(bottom.diff)
            if self.images_padded is None:
                direct_conv_data_grad(top_diff, self.blobs[0].data, bottom_diff)
                return
            images_diff = self.buffer("images_padded_diff", self.images_padded.shape, self.images_padded.dtype)
            direct_conv_data_grad(top_diff, self.blobs[0].data, images_diff)
            pad_h, pad_w = self.pad
            bottom_diff[...] = images_diff[:, :, pad_h:pad_h + bottom_diff.shape[2], pad_w:pad_w + bottom_diff.shape[3]]

    def _tiled(self, array):
        """A tile array (n*n, tiles * N, channels) as the kernels see it: (n*n, tiles, N * channels)."""
        return array.reshape(len(array), self.tiles_h * self.tiles_w, -1)

    def _planes(self, array):
        """A blob's data or diff as the Winograd kernels see it: planes (N * channels, H, W)."""
        return array.reshape((-1,) + array.shape[-2:])

    def _winograd_groups(self):
        """(input channel slice, output slice) of each group: the tiles' last axis."""
        c, m = self.channels // self.group, self.num_output // self.group
        return [(slice(g * c, (g + 1) * c), slice(g * m, (g + 1) * m)) for g in range(self.group)]

    def _winograd_forward(self, top):
        weight = self.blobs[0].data
        flat_weight = weight.transpose(1, 0, 2, 3).reshape(-1, self.kernel[0] * self.kernel[1])  # (C/g*M, r*r)
        blas.matmul(self.winograd_gg, flat_weight.T, self.weight_tiles.reshape(len(self.weight_tiles), -1))
        for ins, outs in self._winograd_groups():
            blas.matmul_stack(self.input_tiles[:, :, ins], self.weight_tiles[:, :, outs], self.products[:, :, outs])
        output_tiles(self._tiled(self.products), self.winograd_at, self.tiles_w, self._bias(),
                     self._planes(top.data))

    def _winograd_backward(self, top, propagate_down, bottom):
        m, pad_h, pad_w = self.winograd_tile, self.pad[0], self.pad[1]
        products_diff = self.products   # the forward products are not needed again
        output_grad_tiles(self._planes(top.diff), self.winograd_at, self.tiles_w, self._tiled(products_diff),
                          self.tile_sums)
        if len(self.blobs) > 1 and self.param_needs_gradient(1):
            self.blobs[1].diff += self.tile_sums.reshape(-1, self.num_output).sum(axis=0, dtype=np.float64)
        if self.param_needs_gradient(0):
            for ins, outs in self._winograd_groups():
                blas.matmul_stack(self.input_tiles[:, :, ins].transpose(0, 2, 1), products_diff[:, :, outs],
                                  self.weight_tiles_diff[:, :, outs])
            flat_diff = self.winograd_gg.T @ self.weight_tiles_diff.reshape(len(self.weight_tiles_diff), -1)
            self.blobs[0].diff += flat_diff.reshape(self.kernel + self.weight_tiles.shape[1:]).transpose(3, 2, 0, 1)
        if propagate_down:
            for ins, outs in self._winograd_groups():
                blas.matmul_stack(products_diff[:, :, outs], self.weight_tiles[:, :, outs].transpose(0, 2, 1),
                                  self.input_tiles_diff[:, :, ins])
            self.input_grad_tiles_kernel(self._tiled(self.input_tiles_diff), self.winograd_bt, pad_h, pad_w, m,
                                         self.tiles_w, self._planes(bottom.diff))

    @staticmethod
    def _axis_output_size(size, kernel, stride, pad, dilation):
        return (size + 2 * pad - (dilation * (kernel - 1) + 1)) // stride + 1

    def _prepare(self, bottom):
        """What forward derives from one bottom and backward reuses: its padded copy (direct),
        input tiles (Winograd) or column matrix (im2row, im2col, im2col_nd)."""
        if self.algorithm == "winograd":
            self.input_tiles_kernel(self._planes(bottom.data), self.pad[0], self.pad[1], self.winograd_bt,
                                    self.winograd_tile, self.tiles_w, self._tiled(self.input_tiles))
        elif self.algorithm == "direct":
            self._padded(self._image_view(bottom.data))
        elif self.algorithm == "im2row":
            np.copyto(self.images_last, self._image_view(bottom.data).transpose(0, 2, 3, 1))
            im2row(self.images_last, *self._geometry(), self.col)
        elif self.algorithm == "im2col":
            im2col(self._image_view(bottom.data), *self._geometry(), self.col)
        else:
            im2col_nd(self._flat_view(bottom.data), self.image_shape, *self.nd_geometry, self.col)

    def _forward(self, bottom, top):
        """One bottom/top pair (Blobs)."""
        self._prepare(bottom)
        if self.algorithm == "winograd":
            self._winograd_forward(top)
            return
        if self.algorithm == "direct":
            images = self.images_padded if self.images_padded is not None else self._image_view(bottom.data)
            direct_conv(images, self.blobs[0].data, self._bias(), self._image_view(top.data))
            return
        if self.algorithm == "im2row":
            np.copyto(self.weight_last, self.blobs[0].data.transpose(0, 2, 3, 1))
            blas.matmul(self.weight_last.reshape(self.num_output, -1), self.col.T, self.rows)
        else:
            self._conv_rows(self.col, self.rows)
        rows_to_batch(self.rows, self._bias(), top.data.reshape(self.num, self.num_output, -1))

    def _backward(self, top, propagate_down, bottom):
        """One bottom/top pair (Blobs), after `_prepare(bottom)`."""
        if self.algorithm == "winograd":   # both sum the bias gradient on the way
            self._winograd_backward(top, propagate_down, bottom)
            return
        if self.algorithm == "direct":
            self._direct_backward(top, propagate_down, bottom)
            return
        top_diff = top.diff.reshape(self.num, self.num_output, -1)
        if len(self.blobs) > 1 and self.param_needs_gradient(1):
            add_bias_grad(top_diff, self.blobs[1].diff)
        batch_to_rows(top_diff, self.rows)
        if self.algorithm == "im2col" or self.algorithm == "im2col_nd":
            if self.param_needs_gradient(0):
                self._weight_grad(self.col, self.rows)
            if propagate_down:
                self._conv_cols(self.rows, self.col_diff)
                if self.algorithm == "im2col":
                    col2im(self.col_diff, *self._geometry(), self._image_view(bottom.diff))
                else:
                    col2im_nd(self.col_diff, self.image_shape, *self.nd_geometry, self._flat_view(bottom.diff))
            return
        weight_last = self.weight_last.reshape(self.num_output, -1)
        if self.param_needs_gradient(0):
            blas.matmul(self.rows, self.col, self.weight_grad)
            self.blobs[0].diff += self.weight_grad.reshape(self.weight_last.shape).transpose(0, 3, 1, 2)
        if propagate_down:
            blas.matmul(self.rows.T, weight_last, self.col_diff)
            row2im(self.col_diff, *self._geometry(), self.images_last)
            np.copyto(self._image_view(bottom.diff), self.images_last.transpose(0, 3, 1, 2))
