"""Layer: the four-method contract every layer follows (Caffe's LayerSetUp/Reshape/Forward/Backward)."""
import numpy as np

from layerforge.blob import BlobVec


def _array_ids(bottom, top):
    """The identities of the blobs' data arrays: they stay equal while no blob is reshaped to
    a new shape or given other arrays (merged twins); a Blob replaces data and diff together."""
    return [id(blob.data) for blob in (*bottom, *top)]


class LayerError(ValueError):
    """A layer's configuration or inputs are wrong; the message names the layer."""


class Layer:
    """Base class of every layer.

    Subclasses implement `reshape`, `forward` and (unless `has_backward` is False)
    `backward`, and may override `setup`. Learnable parameters and saved state live in
    `self.blobs`; a layer always reads them through `self.blobs[i]`, because the net may
    swap in a Blob shared with another layer (tied weights). `backward` ADDS into
    parameter diffs and overwrites bottom diffs.

    A `type: "Python"` layer subclasses this class (pycaffe's `caffe.Layer` is this class):
    it reads `self.param_str` and `self.phase`, may grow `self.blobs.add_blob(*shape)` in
    `setup` (saved in the weights file and trained like any parameter), and may reshape its
    tops in `forward`. The net calls a Python layer's `reshape` before every `forward`, as
    Caffe does.

    Other layers are reshaped before a `forward` only when one of their bottom or top Blobs
    holds different arrays than after the last reshape (a new shape, or twin Blobs merged):
    their tops' shapes and their work arrays follow from their blobs' shapes and their
    settings. A layer whose `reshape` reads more than that (Filter reads its selector's
    values) sets `reshape_every_forward`.
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
    batch_independent = False  # each item's output depends only on that item and the parameters
    is_input = False         # the caller fills its tops (Net.forward(**inputs))
    reshape_every_forward = False  # reshape reads more than shapes (see above)
    _reshaped_arrays = None  # _array_ids of the bottoms and tops after the last reshape

    def __init__(self, param, phase=0, rng=None):
        self.param = param
        self.param_propagate_down = []   # per blob; the net sets False where lr_mult is 0
        self.phase = phase
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.blobs = BlobVec()

    @property
    def name(self):
        return self.param.name

    @property
    def type(self):
        """The layer's type as the prototxt names it ("Python" for a Python layer)."""
        return self.param.type or self.type_name

    @property
    def param_str(self):
        """python_param.param_str, for layers loaded through `type: "Python"`."""
        return self.param.python_param.param_str

    def param_needs_gradient(self, index):
        """Whether backward should compute blob `index`'s gradient (Caffe's param_propagate_down:
        not for a frozen parameter, lr_mult 0). True unless the net said otherwise."""
        return index >= len(self.param_propagate_down) or self.param_propagate_down[index]

    def buffer(self, name, shape, dtype):
        """The work array attribute `name`, kept between calls and reallocated only when its
        shape or dtype changes (a forward's saved values, a kernel's scratch space)."""
        array = getattr(self, name, None)
        if array is None or array.shape != tuple(shape) or array.dtype != dtype:
            array = np.empty(shape, dtype)
            setattr(self, name, array)
        return array

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

    def set_up(self, bottom, top):
        """Check the blob counts, then `setup` and `reshape`: how the net (and every test)
        brings a layer up, Caffe's Layer::SetUp."""
        self.check_blob_counts(bottom, top)
        self.setup(bottom, top)
        self.reshape(bottom, top)

    def setup(self, bottom, top):
        """Read the layer's parameters and create `self.blobs`; called once."""

    def reshape_if_changed(self, bottom, top):
        """`reshape`, unless every blob holds the arrays it held after the last reshape (see
        the class docstring): the net's call before each forward. At batch 1 the reshape calls
        were a fifth of the MNIST deploy net's forward pass."""
        if self.reshape_every_forward or _array_ids(bottom, top) != self._reshaped_arrays:
            self.reshape(bottom, top)
            self._reshaped_arrays = _array_ids(bottom, top)

    def reshape(self, bottom, top):
        """Shape the tops (and any buffers) for the current bottom shapes."""
        raise NotImplementedError

    def forward(self, bottom, top):
        raise NotImplementedError

    def backward(self, top, propagate_down, bottom):
        raise NotImplementedError(f"{self.type_name} has no backward")

    # Optional hooks, with the defaults most layers want.

    def batch_independent_for(self, bottom):
        """Whether, set up on `bottom`, each item's output depends only on that item (so tied
        twins may run as one batch); layers with an `axis` that could fold the batch axis
        override it."""
        return self.batch_independent

    def prepare_input(self, index, value):
        """For an input layer: the array to store in top `index` when the caller feeds `value`
        (Net.forward(**inputs)); the default stores it as given."""
        return value

    def get_state(self):
        """JSON-serialisable state beyond `self.blobs` (e.g. a data reader's position) that a
        solver snapshot must keep so a resumed run repeats the uninterrupted one; None if none."""
        return None

    def set_state(self, state):
        """Restore what `get_state` returned."""

    def load_blobs(self, arrays):
        """Take the arrays a weights file holds for this layer; the default copies them into
        `self.blobs` (same count; same shape, or the same values under Caffe's legacy 4-D shape)."""
        if len(arrays) != len(self.blobs):
            raise LayerError(f"layer '{self.name}' has {len(arrays)} blobs in the weights file "
                             f"but {len(self.blobs)} in the net")
        for i, (array, blob) in enumerate(zip(arrays, self.blobs)):
            if array.shape != blob.shape:
                if array.size != blob.count or array.squeeze().shape != blob.data.squeeze().shape:
                    raise LayerError(f"layer '{self.name}' blob {i} has shape {array.shape} in the "
                                     f"weights file but {blob.shape} in the net")
                array = array.reshape(blob.shape)
            blob.data[...] = array

    def close(self):
        """Release threads, files or readers the layer holds."""
