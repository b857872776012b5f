"""DummyData: tops filled by fillers (constant 0 by default), for tests and placeholders."""
from layerforge.fillers import fill
from layerforge.layer import Layer
from layerforge.layers.input import one_or_per_top
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import register_layer


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
            shapes = [s.dim for s in one_or_per_top(self, param.shape, top, "dummy_data_param.shape")]
        elif all(legacy):
            columns = [one_or_per_top(self, values, top, f"dummy_data_param.{name}")
                       for values, name in zip(legacy, ("num", "channels", "height", "width"))]
            shapes = list(zip(*columns))
        else:
            raise self.error("dummy_data_param needs a shape, or all of num, channels, height and width")
        fillers = list(param.data_filler) or [pb.FillerParameter(type="constant", value=0)]
        self.fillers = one_or_per_top(self, fillers, top, "dummy_data_param.data_filler")
        for blob, shape, filler in zip(top, shapes, self.fillers):
            blob.reshape(shape)
            fill(blob, filler, self.rng)

    def reshape(self, bottom, top):
        """Shapes are fixed at setup."""

    def forward(self, bottom, top):
        for blob, filler in zip(top, self.fillers):
            if filler.type != "constant":
                fill(blob, filler, self.rng)
