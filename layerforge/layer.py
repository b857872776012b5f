"""Layer: the four-method contract every layer follows (Caffe's LayerSetUp/Reshape/Forward/Backward)."""
import numpy as np


class LayerError(ValueError):
    """A layer's configuration or inputs are wrong; the message names the layer."""


class Layer:
    """Base class of every layer.

    Subclasses implement `reshape`, `forward` and (unless `has_backward` is False)
    `backward`, and may override `setup`. Learnable parameters and saved state live in
    `self.blobs`; a layer always reads them through `self.blobs[i]`, because the net may
    swap in a Blob shared with another layer (tied weights). `backward` ADDS into
    parameter diffs and overwrites bottom diffs.
    """

    type_name = "?"
    exact_num_bottom = None
    min_bottom = None
    max_bottom = None
    exact_num_top = None
    min_top = None
    max_top = None
    is_loss = False          # default loss_weight of top 0 is 1
    has_backward = True      # False: bottoms receive no gradient from this layer
    allow_in_place = False   # may a top share its Blob with the bottom of the same index

    def __init__(self, param, phase=0, rng=None):
        self.param = param
        self.phase = phase
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.blobs = []

    @property
    def name(self):
        return self.param.name

    @property
    def param_str(self):
        """python_param.param_str, for layers loaded through `type: "Python"`."""
        return self.param.python_param.param_str

    def error(self, message):
        return LayerError(f"layer '{self.name}' ({self.type_name}): {message}")

    def check_blob_counts(self, bottom, top):
        for what, blobs, exact, low, high in (
                ("bottom", bottom, self.exact_num_bottom, self.min_bottom, self.max_bottom),
                ("top", top, self.exact_num_top, self.min_top, self.max_top)):
            n = len(blobs)
            if exact is not None and n != exact:
                raise self.error(f"takes exactly {exact} {what} blob(s), got {n}")
            if low is not None and n < low:
                raise self.error(f"takes at least {low} {what} blob(s), got {n}")
            if high is not None and n > high:
                raise self.error(f"takes at most {high} {what} blob(s), got {n}")

    def setup(self, bottom, top):
        """Read the layer's parameters and create `self.blobs`; called once."""

    def reshape(self, bottom, top):
        """Shape the tops (and any buffers) for the current bottom shapes."""
        raise NotImplementedError

    def forward(self, bottom, top):
        raise NotImplementedError

    def backward(self, top, propagate_down, bottom):
        raise NotImplementedError(f"{self.type_name} has no backward")
