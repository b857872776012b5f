"""Input: tops the caller fills (net.forward(data=...)); Caffe's one-or-per-top rule."""
from layerforge.layer import Layer
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import register_layer


def one_or_per_top(layer, values, top, field):
    """Caffe's rule for repeated settings: one value for all tops, or one per top."""
    if len(values) not in (1, len(top)):
        raise layer.error(f"{field} is given {len(values)} times; give it once or once per top "
                          f"({len(top)} tops)")
    return [values[0]] * len(top) if len(values) == 1 else list(values)


@register_layer("Input")
class InputLayer(Layer):
    """Tops shaped by input_param.shape; the caller writes their data (e.g. net.blobs['data']).

    With a transform_param, an array fed through `Net.forward(data=images)` to the first top
    is transformed first, as a Data layer transforms its records in TEST (centred crop, mean,
    scale; no mirror): a deploy net then takes raw 0-255 pixels like its training data."""
    exact_num_bottom = 0
    min_top = 1
    has_backward = False
    is_input = True

    def setup(self, bottom, top):
        shapes = one_or_per_top(self, self.param.input_param.shape, top, "input_param.shape")
        for blob, shape in zip(top, shapes):
            if any(d < 1 for d in shape.dim):
                raise self.error(f"input_param.shape {list(shape.dim)} has a dimension below 1 "
                                 f"(a batch or an image of no items holds nothing to compute)")
            blob.reshape(shape.dim)

    def prepare_input(self, index, value):
        """Fed arrays for the first top go through transform_param, if there is one."""
        if index != 0 or not self.param.HasField("transform_param"):
            return value
        from layerforge.data import DatasetError
        from layerforge.data.transform import DataTransformer

        if value.ndim != 4:
            raise self.error(f"transform_param needs N×C×H×W images, got an array of shape {value.shape}")
        try:
            return DataTransformer(self.param.transform_param, pb.TEST, value.shape[1:])(value, None)
        except DatasetError as err:
            raise self.error(str(err)) from None

    def reshape(self, bottom, top):
        """The caller may reshape the tops; the layer keeps whatever shape they have."""

    def forward(self, bottom, top):
        """Nothing to compute: the data is already in the tops."""
