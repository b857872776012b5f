"""InnerProduct (fully connected) layer: top = bottom · Wᵀ + b through BLAS (kernels/blas.py)."""
from layerforge.blob import Blob
from layerforge.fillers import fill
from layerforge.kernels import blas
from layerforge.layer import Layer
from layerforge.registry import register_layer


@register_layer("InnerProduct")
class InnerProductLayer(Layer):
    """Flattens the bottom from `axis` on into K features and maps them to num_output.

    The weight is (num_output, K) as in Caffe, or (K, num_output) with `transpose`;
    the bias is (num_output,). The top keeps the bottom's leading axes: shape[:axis] + (num_output,).
    """
    exact_num_bottom = 1
    exact_num_top = 1
    batch_independent = True

    def batch_independent_for(self, bottom):
        return self.axis > 0       # axis 0 would fold the items into one

    def setup(self, bottom, top):
        param = self.param.inner_product_param
        if not param.num_output:
            raise self.error("inner_product_param.num_output must be set to a positive number "
                             f"(got {param.num_output})")
        self.num_output = param.num_output
        self.bias_term = param.bias_term
        self.transpose = param.transpose
        try:
            self.axis = bottom[0].canonical_axis(param.axis)
        except ValueError as err:
            raise self.error(f"inner_product_param.axis: {err}") from None
        features = bottom[0].count_range(self.axis)
        shape = (features, self.num_output) if self.transpose else (self.num_output, features)
        dtype = bottom[0].dtype
        self.blobs = [Blob(shape, dtype)]
        fill(self.blobs[0], param.weight_filler, self.rng)
        if self.bias_term:
            self.blobs.append(Blob((self.num_output,), dtype))
            fill(self.blobs[1], param.bias_filler, self.rng)

    def reshape(self, bottom, top):
        features = bottom[0].count_range(self.axis)
        weight_shape = self.blobs[0].shape
        expected = weight_shape[0] if self.transpose else weight_shape[1]
        if features != expected:
            raise self.error(f"bottom shape {bottom[0].shape} flattens from axis {self.axis} to {features} "
                             f"features, but the weight has shape {weight_shape} "
                             f"({expected} input features); the input size must not change")
        top[0].reshape(bottom[0].shape[:self.axis] + (self.num_output,))
        self._rows = bottom[0].count_range(0, self.axis)

    def forward(self, bottom, top):
        x = bottom[0].data.reshape(self._rows, -1)
        y = top[0].data.reshape(self._rows, self.num_output)
        weight = self.blobs[0].data
        blas.matmul(x, weight if self.transpose else weight.T, y)
        if self.bias_term:
            y += self.blobs[1].data

    def backward(self, top, propagate_down, bottom):
        x = bottom[0].data.reshape(self._rows, -1)
        dy = top[0].diff.reshape(self._rows, self.num_output)
        weight = self.blobs[0]
        if self.param_needs_gradient(0):
            if self.transpose:
                blas.matmul_add(x.T, dy, weight.diff)
            else:
                blas.matmul_add(dy.T, x, weight.diff)
        if self.bias_term and self.param_needs_gradient(1):
            self.blobs[1].diff += dy.sum(axis=0)
        if propagate_down[0]:
            dx = bottom[0].diff.reshape(self._rows, -1)
            blas.matmul(dy, weight.data.T if self.transpose else weight.data, dx)
