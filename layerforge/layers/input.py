"""Input: tops the caller fills (net.forward(data=...)); Caffe's one-or-per-top rule."""
from layerforge.layer import Layer
from layerforge.registry import register_layer


def one_or_per_top(layer, values, top, field):
    """Caffe's rule for repeated settings: one value for all tops, or one per top."""
    if len(values) not in (1, len(top)):
        raise layer.error(f"{field} is given {len(values)} times; give it once or once per top "
                          f"({len(top)} tops)")
    return [values[0]] * len(top) if len(values) == 1 else list(values)


@register_layer("Input")
class InputLayer(Layer):
    """Tops shaped by input_param.shape; the caller writes their data (e.g. net.blobs['data'])."""
    exact_num_bottom = 0
    min_top = 1
    has_backward = False
    is_input = True

    def setup(self, bottom, top):
        shapes = one_or_per_top(self, self.param.input_param.shape, top, "input_param.shape")
        for blob, shape in zip(top, shapes):
            if any(d < 0 for d in shape.dim):
                raise self.error(f"input_param.shape {list(shape.dim)} has a negative dimension")
            blob.reshape(shape.dim)

    def reshape(self, bottom, top):
        """The caller may reshape the tops; the layer keeps whatever shape they have."""

    def forward(self, bottom, top):
        """Nothing to compute: the data is already in the tops."""
