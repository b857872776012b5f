"""Tile: repeat the block from `axis` on `tiles` times along that axis (Caffe's TileLayer)."""
from layerforge.layer import Layer
from layerforge.registry import register_layer


@register_layer("Tile")
class TileLayer(Layer):
    """top shape = bottom shape with axis a multiplied by tiles; for each index before axis the
    whole trailing block is copied tiles times (like numpy.tile, not numpy.repeat). The gradient
    is the sum over the copies."""

    exact_num_bottom = 1
    exact_num_top = 1
    batch_independent = True

    def batch_independent_for(self, bottom):
        return self.param.tile_param.axis % max(bottom[0].num_axes, 1) > 0  # axis 0 repeats the batch

    def setup(self, bottom, top):
        param = self.param.tile_param
        if not param.HasField("tiles") or param.tiles <= 0:
            raise self.error(f"tile_param.tiles must be set to a positive number, got {param.tiles}")
        self.tiles = param.tiles

    def reshape(self, bottom, top):
        try:
            axis = bottom[0].canonical_axis(self.param.tile_param.axis)
        except ValueError as e:
            raise self.error(f"tile_param.axis: {e}") from None
        shape = list(bottom[0].shape)
        shape[axis] *= self.tiles
        top[0].reshape(shape)
        self.outer, self.inner = bottom[0].count_range(0, axis), bottom[0].count_range(axis)

    def forward(self, bottom, top):
        x = bottom[0].data.reshape(self.outer, 1, self.inner)
        top[0].data.reshape(self.outer, self.tiles, self.inner)[...] = x

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            dy = top[0].diff.reshape(self.outer, self.tiles, self.inner)
            dy.sum(axis=1, out=bottom[0].diff.reshape(self.outer, self.inner))
