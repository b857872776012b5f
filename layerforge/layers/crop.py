"""Crop: cut bottom[0] to the shape of bottom[1] from `axis` on, at given offsets (Caffe's CropLayer)."""
from layerforge.layer import Layer
from layerforge.registry import register_layer


@register_layer("Crop")
class CropLayer(Layer):
    """top = bottom[0][..., o_a : o_a + s_a, ...] for every axis a >= crop_param.axis (default 2),
    where s_a is bottom[1]'s size; earlier axes are kept whole. `offset` gives one value for all
    cropped axes or one per cropped axis (default 0). bottom[1] only supplies the shape and gets
    no gradient; bottom[0]'s gradient is the top's, placed back at the offsets, zero elsewhere.
    """

    exact_num_bottom = 2
    exact_num_top = 1
    batch_independent = True

    def batch_independent_for(self, bottom):
        return self.axis > 0        # axis 0 crops the items themselves

    def setup(self, bottom, top):
        param = self.param.crop_param
        try:
            self.axis = bottom[0].canonical_axis(param.axis)
        except ValueError as e:
            raise self.error(f"crop_param.axis: {e}") from None
        cropped = bottom[0].num_axes - self.axis
        if len(param.offset) > 1 and len(param.offset) != cropped:
            raise self.error(f"crop_param gives {len(param.offset)} offsets but axis {self.axis} of the "
                             f"{bottom[0].num_axes}-axis bottom leaves {cropped} axes to crop; give one "
                             f"offset or {cropped}")
        self.offsets = list(param.offset) if len(param.offset) > 1 else [
            param.offset[0] if param.offset else 0] * cropped

    def reshape(self, bottom, top):
        data, reference = bottom[0].shape, bottom[1].shape
        if len(reference) != len(data):
            raise self.error(f"bottom[0] shape {data} and the reference bottom[1] shape {reference} "
                             f"must have the same number of axes")
        self.window = tuple(slice(None) for _ in range(self.axis))
        for a, offset in enumerate(self.offsets, start=self.axis):
            if offset + reference[a] > data[a]:
                raise self.error(f"the crop of axis {a} (size {reference[a]} at offset {offset}) does "
                                 f"not fit in bottom[0] shape {data}")
            self.window += (slice(offset, offset + reference[a]),)
        top[0].reshape(data[:self.axis] + reference[self.axis:])

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data[self.window]

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = 0
            bottom[0].diff[self.window] = top[0].diff
        if propagate_down[1]:
            bottom[1].diff[...] = 0
