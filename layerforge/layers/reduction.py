"""Reduction: sum, absolute sum, sum of squares or mean over all axes from `axis` on, times coeff."""
import numpy as np

from layerforge.layer import Layer
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import register_layer

OPERATION = pb.ReductionParameter.ReductionOp


@register_layer("Reduction")
class ReductionLayer(Layer):
    """top = coeff · op(bottom[i, ...]) over the trailing axes from reduction_param.axis (default 0:
    one scalar); the top keeps the axes before it. op is SUM, ASUM (Σ|x|), SUMSQ (Σx²) or MEAN.
    The ASUM gradient uses sign(x), 0 at x = 0, as Caffe.
    """

    exact_num_bottom = 1
    exact_num_top = 1
    batch_independent = True

    def batch_independent_for(self, bottom):
        return self.param.reduction_param.axis % max(bottom[0].num_axes, 1) > 0  # axis 0 sums the items

    def setup(self, bottom, top):
        param = self.param.reduction_param
        self.operation = OPERATION.Name(param.operation)
        self.coeff = param.coeff

    def reshape(self, bottom, top):
        try:
            axis = bottom[0].canonical_axis(self.param.reduction_param.axis)
        except ValueError as e:
            raise self.error(f"reduction_param.axis: {e}") from None
        top[0].reshape(bottom[0].shape[:axis])
        self.view = (bottom[0].count_range(0, axis), bottom[0].count_range(axis))
        self.scale = self.coeff / self.view[1] if self.operation == "MEAN" and self.view[1] else self.coeff

    def forward(self, bottom, top):
        x = bottom[0].data.reshape(self.view)
        if self.operation in ("SUM", "MEAN"):
            values = x.sum(axis=1, dtype=np.float64)
        elif self.operation == "ASUM":
            values = np.abs(x).sum(axis=1, dtype=np.float64)
        else:
            values = np.einsum("ij,ij->i", x, x, dtype=np.float64)
        top[0].data.reshape(-1)[...] = values * self.scale

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        coefficient = top[0].diff.reshape(-1, 1) * self.scale
        dx = bottom[0].diff.reshape(self.view)
        if self.operation in ("SUM", "MEAN"):
            dx[...] = coefficient
        elif self.operation == "ASUM":
            np.multiply(np.sign(bottom[0].data.reshape(self.view)), coefficient, out=dx)
        else:
            np.multiply(bottom[0].data.reshape(self.view), 2 * coefficient, out=dx)
