"""Layers without bottoms: Input (data fed by the caller), DummyData (filler output), Parameter."""
from layerforge.blob import Blob
from layerforge.fillers import fill
from layerforge.layer import Layer
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import register_layer


def _one_or_per_top(layer, values, top, field):
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
        shapes = _one_or_per_top(self, self.param.input_param.shape, top, "input_param.shape")
        for blob, shape in zip(top, shapes):
            if any(d < 1 for d in shape.dim):
                raise self.error(f"input_param.shape {list(shape.dim)} has a dimension below 1 "
                                 f"(a batch or an image of no items holds nothing to compute)")
            blob.reshape(shape.dim)

    def reshape(self, bottom, top):
        """The caller may reshape the tops; the layer keeps whatever shape they have."""

    def forward(self, bottom, top):
        """Nothing to compute: the data is already in the tops."""


@register_layer("DummyData")
class DummyDataLayer(Layer):
    """Tops filled by data_filler (constant 0 by default).

    Constant fillers fill once at setup; any other filler refills its top at every forward, as in Caffe.
    """
    exact_num_bottom = 0
    min_top = 1
    has_backward = False

    def setup(self, bottom, top):
        param = self.param.dummy_data_param
        legacy = (param.num, param.channels, param.height, param.width)
        if param.shape and any(legacy):
            raise self.error("dummy_data_param: give either shape or num/channels/height/width, not both")
        if param.shape:
            shapes = [s.dim for s in _one_or_per_top(self, param.shape, top, "dummy_data_param.shape")]
        elif all(legacy):
            columns = [_one_or_per_top(self, values, top, f"dummy_data_param.{name}")
                       for values, name in zip(legacy, ("num", "channels", "height", "width"))]
            shapes = list(zip(*columns))
        else:
            raise self.error("dummy_data_param needs a shape, or all of num, channels, height and width")
        fillers = list(param.data_filler) or [pb.FillerParameter(type="constant", value=0)]
        self.fillers = _one_or_per_top(self, fillers, top, "dummy_data_param.data_filler")
        for blob, shape, filler in zip(top, shapes, self.fillers):
            blob.reshape(shape)
            fill(blob, filler, self.rng)

    def reshape(self, bottom, top):
        """Shapes are fixed at setup."""

    def forward(self, bottom, top):
        for blob, filler in zip(top, self.fillers):
            if filler.type != "constant":
                fill(blob, filler, self.rng)


@register_layer("Parameter")
class ParameterLayer(Layer):
    """Outputs its own learnable blob (parameter_param.shape, zeros until trained or loaded) as the top."""
    exact_num_bottom = 0
    exact_num_top = 1

    def setup(self, bottom, top):
        if not self.param.parameter_param.HasField("shape"):
            raise self.error("parameter_param.shape must be set")
        self.blobs = [Blob(self.param.parameter_param.shape.dim, top[0].dtype)]

    def reshape(self, bottom, top):
        top[0].reshape_like(self.blobs[0])

    def forward(self, bottom, top):
        top[0].data[...] = self.blobs[0].data

    def backward(self, top, propagate_down, bottom):
        self.blobs[0].diff += top[0].diff
