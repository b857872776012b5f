"""Eltwise: element-wise PROD, SUM (weighted by coeff) or MAX of bottoms of one shape."""
import numpy as np

from layerforge.layer import Layer
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import register_layer

PROD, SUM, MAX = pb.EltwiseParameter.PROD, pb.EltwiseParameter.SUM, pb.EltwiseParameter.MAX


@register_layer("Eltwise")
class EltwiseLayer(Layer):
    """top = b0 * b1 * ..., sum_i coeff_i * b_i, or max_i b_i, element by element.

    PROD's gradient is always the product of the other bottoms (Caffe's stable_prod_grad:
    true); stable_prod_grad: false, which divides top by the bottom, is accepted and ignored.
    MAX keeps the index of the winning bottom for backward; ties go to the first bottom.
    """

    min_bottom = 2
    exact_num_top = 1

    def setup(self, bottom, top):
        param = self.param.eltwise_param
        self.operation = param.operation
        coeff = list(param.coeff)
        if coeff and self.operation != SUM:
            raise self.error(f"coeff is only used by operation SUM, not "
                             f"{pb.EltwiseParameter.EltwiseOp.Name(self.operation)}")
        if coeff and len(coeff) != len(bottom):
            raise self.error(f"coeff has {len(coeff)} values for {len(bottom)} bottoms; give one per bottom")
        self.coeff = coeff or [1.0] * len(bottom)

    def reshape(self, bottom, top):
        for i, blob in enumerate(bottom[1:], 1):
            if blob.shape != bottom[0].shape:
                raise self.error(f"bottom[{i}] shape {blob.shape} does not match bottom[0] shape "
                                 f"{bottom[0].shape}; Eltwise needs bottoms of one shape")
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        out = top[0].data
        if self.operation == PROD:
            np.multiply(bottom[0].data, bottom[1].data, out=out)
            for blob in bottom[2:]:
                out *= blob.data
        elif self.operation == SUM:
            np.multiply(bottom[0].data, self.coeff[0], out=out)
            for c, blob in zip(self.coeff[1:], bottom[1:]):
                out += c * blob.data
        else:
            stacked = np.stack([blob.data for blob in bottom])
            self.argmax = stacked.argmax(axis=0)
            np.max(stacked, axis=0, out=out)

    def backward(self, top, propagate_down, bottom):
        dtop = top[0].diff
        for i, (down, blob) in enumerate(zip(propagate_down, bottom)):
            if not down:
                continue
            if self.operation == PROD:
                np.copyto(blob.diff, dtop)
                for j, other in enumerate(bottom):
                    if j != i:
                        blob.diff *= other.data
            elif self.operation == SUM:
                np.multiply(dtop, self.coeff[i], out=blob.diff)
            else:
                np.multiply(dtop, self.argmax == i, out=blob.diff)
