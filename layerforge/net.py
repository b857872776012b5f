"""Net: a graph of layers built from a NetParameter filtered by a NetState.

Follows Caffe's Net: layers are filtered by include/exclude rules, a top read by several
layers is split (so its gradient is summed), in-place layers reuse their bottom's Blob,
parameters named alike in ParamSpec are one shared Blob (tied weights), and
loss_weight / propagate_down / force_backward decide what runs backward.

Tied twins (a Siamese net) run as one batch: see `_plan_twins`.
"""
import difflib
import os

import numpy as np

from layerforge import io
from layerforge.blob import Blob
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import create_layer

PHASE_NAMES = {pb.TRAIN: "TRAIN", pb.TEST: "TEST", pb.RUN: "RUN"}
# Layer types whose output for one item depends only on that item (and shared parameters),
# so that two twins can run as one batch; the axis field must not fold the batch axis.
_ITEMWISE = {"Convolution": "convolution_param", "Deconvolution": "convolution_param",
             "Pooling": None, "InnerProduct": "inner_product_param", "Flatten": "flatten_param",
             "ReLU": None, "Sigmoid": None, "TanH": None, "ELU": None, "Power": None, "AbsVal": None}


class NetError(ValueError):
    """The net's structure is wrong (missing bottom, clashing tops, mis-shared parameter, ...)."""


def phase_value(phase):
    """Accept pb.TRAIN / 0 / "TRAIN" / "train" alike."""
    if isinstance(phase, str):
        try:
            return pb.Phase.Value(phase.upper())
        except ValueError:
            raise ValueError(f"unknown phase {phase!r}; use TRAIN, TEST or RUN") from None
    return int(phase)


def state_meets_rule(state, rule):
    """Caffe's StateMeetsRule: phase, level range and stages must all fit."""
    if rule.HasField("phase") and rule.phase != state.phase:
        return False
    if rule.HasField("min_level") and state.level < rule.min_level:
        return False
    if rule.HasField("max_level") and state.level > rule.max_level:
        return False
    stages = set(state.stage)
    return all(s in stages for s in rule.stage) and not any(s in stages for s in rule.not_stage)


def filter_net(param, state):
    """Copy of `param` with only the layers the NetState includes."""
    filtered = pb.NetParameter()
    filtered.CopyFrom(param)
    del filtered.layer[:]
    for layer in param.layer:
        if layer.include and layer.exclude:
            raise NetError(f"layer '{layer.name}': specify include or exclude rules, not both")
        if layer.include:
            keep = any(state_meets_rule(state, rule) for rule in layer.include)
        else:
            keep = not any(state_meets_rule(state, rule) for rule in layer.exclude)
        if keep:
            filtered.layer.add().CopyFrom(layer)
    return filtered


def upgrade_legacy_inputs(param):
    """Turn the deprecated `input:` / `input_shape` / `input_dim` fields into an Input layer."""
    if not param.input:
        return param
    layer = pb.LayerParameter(name="input", type="Input", top=list(param.input))
    for i in range(len(param.input)):
        if param.input_shape:
            layer.input_param.shape.add().CopyFrom(param.input_shape[i])
        else:
            layer.input_param.shape.add(dim=param.input_dim[4 * i:4 * i + 4])
    upgraded = pb.NetParameter()
    upgraded.CopyFrom(param)
    del upgraded.input[:], upgraded.input_shape[:], upgraded.input_dim[:], upgraded.layer[:]
    upgraded.layer.extend([layer] + list(param.layer))
    return upgraded


def _loss_weights(layer_param, layer):
    weights = list(layer_param.loss_weight)
    if not weights and layer.is_loss:
        weights = [1.0]
    return weights + [0.0] * (len(layer_param.top) - len(weights))


def insert_splits(param):
    """Caffe's InsertSplits: a top read by more than one consumer (a bottom, or its own loss
    weight) feeds a Split layer whose copies go one to each consumer, so gradients add up."""
    producer = {}          # blob name -> (layer index, top index) of its latest producer
    consumers = {}         # (layer index, top index) -> list of (layer index, bottom index)
    loss_readers = set()
    for i, layer in enumerate(param.layer):
        for j, name in enumerate(layer.bottom):
            if name in producer:
                consumers.setdefault(producer[name], []).append((i, j))
        for j, name in enumerate(layer.top):
            producer[name] = (i, j)
            if j < len(layer.loss_weight) and layer.loss_weight[j] != 0:
                loss_readers.add((i, j))
    out = pb.NetParameter()
    out.CopyFrom(param)
    del out.layer[:]
    renamed = {}           # (layer index, bottom index) -> split top name
    for i, layer in enumerate(param.layer):
        copy = out.layer.add()
        copy.CopyFrom(layer)
        for j in range(len(layer.bottom)):
            if (i, j) in renamed:
                copy.bottom[j] = renamed[(i, j)]
        for j, name in enumerate(layer.top):
            readers = consumers.get((i, j), [])
            count = len(readers) + ((i, j) in loss_readers)
            if count <= 1:
                continue
            split = out.layer.add(name=f"{name}_{layer.name}_{j}_split", type="Split", bottom=[name])
            for k, reader in enumerate(readers):
                split.top.append(f"{name}_{layer.name}_{j}_split_{k}")
                renamed[reader] = split.top[-1]
            if (i, j) in loss_readers:
                # The loss stays on the producer's top; the split must not overwrite its diff.
                split.top.append(f"{name}_{layer.name}_{j}_split_{len(readers)}")
                split.loss_weight.extend([0.0] * len(readers) + [copy.loss_weight[j]])
                copy.loss_weight[j] = 0.0
    return out


class _LayerEntry:
    """One built layer: its parameters, blobs and what backward needs to know."""

    def __init__(self, param, layer, bottom, top, bottom_names, top_names):
        self.param, self.layer = param, layer
        self.bottom, self.top = bottom, top
        self.bottom_names, self.top_names = bottom_names, top_names
        self.loss_weights = []
        self.need_backward = False
        self.propagate_down = []


class _Twin:
    """A pair of tied twin layers run as one: `layer` on merged Blobs whose halves are the
    twins' own bottoms (bottom_a, bottom_b) and tops (top_a, top_b)."""

    def __init__(self, layer, bottom, top, bottom_a, bottom_b, top_a, top_b, first):
        self.layer, self.bottom, self.top = layer, bottom, top
        self.bottom_a, self.bottom_b, self.top_a, self.top_b = bottom_a, bottom_b, top_a, top_b
        self.first = first        # the first pair gathers its bottom halves, the rest inherit them

    @staticmethod
    def _is_half(merged, blob):
        return (blob.data.base is merged.data and blob.diff.base is merged.diff
                and 2 * blob.shape[0] == merged.shape[0])

    @staticmethod
    def _link(merged, a, b):
        """Make Blobs a and b views of the first and second half of `merged`."""
        half = merged.shape[0] // 2
        a.data, a.diff = merged.data[:half], merged.diff[:half]
        b.data, b.diff = merged.data[half:], merged.diff[half:]

    def forward(self):
        a, b = self.bottom_a, self.bottom_b
        if self.first and not (self._is_half(self.bottom, a) and self._is_half(self.bottom, b)):
            data_a, data_b = a.data, b.data     # their producer gave them new arrays: gather once
            self.bottom.reshape((2 * a.shape[0],) + a.shape[1:])
            self._link(self.bottom, a, b)
            a.data[...], b.data[...] = data_a, data_b
        self.layer.reshape([self.bottom], [self.top])
        self.layer.forward([self.bottom], [self.top])
        if not (self._is_half(self.top, self.top_a) and self._is_half(self.top, self.top_b)):
            self._link(self.top, self.top_a, self.top_b)


class Net:
    """A network: `Net(model, phase, weights=None, seed=0)`.

    `model` is a prototxt path or a NetParameter. `forward(**inputs)` returns the output
    blobs (tops nobody reads) by name and sets `net.loss`; `backward()` computes gradients.
    """

    def __init__(self, model, phase=pb.TRAIN, level=0, stages=(), weights=None, seed=0,
                 dtype=np.float32, merge_twins=None):
        if isinstance(model, pb.NetParameter):
            param, self.source = model, "<NetParameter>"
        else:
            self.source = os.fspath(model)
            param = io.read_net(self.source)
        state = pb.NetState()
        state.CopyFrom(param.state)
        state.phase = phase_value(phase)
        if level:
            state.level = level
        if stages:
            del state.stage[:]
            state.stage.extend(stages)
        self.state = state
        self.phase = state.phase
        self.name = param.name
        self.dtype = np.dtype(dtype)
        self.seed = seed
        filtered = filter_net(upgrade_legacy_inputs(param), state)
        self.param = insert_splits(filtered)
        self.force_backward = param.force_backward
        if merge_twins is None:
            merge_twins = os.environ.get("LAYERFORGE_MERGE_TWINS", "1") != "0"
        self.merge_twins = merge_twins
        self._build()
        if weights is not None:
            self.copy_from(weights)

    # ------------------------------------------------------------ construction

    def _where(self, layer_param):
        return f"{self.source}: layer '{layer_param.name}' ({layer_param.type})"

    def _build(self):
        self.blobs = {}
        self.entries = []
        self.layers = {}
        producers = {}
        seeds = np.random.SeedSequence(None if self.seed is None else self.seed)
        layer_seeds = seeds.spawn(len(self.param.layer))
        for index, layer_param in enumerate(self.param.layer):
            if layer_param.name in self.layers:
                raise NetError(f"{self._where(layer_param)}: a layer named '{layer_param.name}' "
                               f"already exists in this net (phase {PHASE_NAMES[self.phase]})")
            layer = create_layer(layer_param, self.phase, np.random.default_rng(layer_seeds[index]))
            bottom_names = self._run_phase_bottoms(layer_param, layer)
            bottom = []
            for name in bottom_names:
                if name not in self.blobs:
                    close = difflib.get_close_matches(name, self.blobs, n=1)
                    hint = f" Did you mean '{close[0]}'?" if close else ""
                    known = ", ".join(self.blobs) or "none"
                    raise NetError(f"{self._where(layer_param)}: bottom '{name}' is not produced by "
                                   f"any earlier layer in phase {PHASE_NAMES[self.phase]}.{hint} "
                                   f"Blobs so far: {known}")
                bottom.append(self.blobs[name])
            top = []
            for j, name in enumerate(layer_param.top):
                in_place = j < len(bottom_names) and bottom_names[j] == name
                if in_place:
                    top.append(self.blobs[name])
                    continue
                if name in self.blobs:
                    raise NetError(f"{self._where(layer_param)}: top '{name}' is already produced by "
                                   f"layer '{producers[name]}'; a top may reuse a name only in place "
                                   f"(as the bottom at the same position)")
                self.blobs[name] = Blob(dtype=self.dtype)
                producers[name] = layer_param.name
                top.append(self.blobs[name])
            if any(t is b for t in top for b in bottom) and not layer.allow_in_place:
                raise NetError(f"{self._where(layer_param)}: this layer type cannot run in place; "
                               f"give its top a new name")
            try:
                layer.set_up(bottom, top)
            except (ValueError, TypeError) as err:
                raise NetError(f"{self.source}: {err}") from err
            entry = _LayerEntry(layer_param, layer, bottom, top, bottom_names, list(layer_param.top))
            entry.loss_weights = _loss_weights(layer_param, layer)
            self.entries.append(entry)
            self.layers[layer_param.name] = layer
        self._share_params()
        self._plan_backward()
        self._plan_twins()
        available = {}
        for entry in self.entries:
            for name in entry.bottom_names:
                available.pop(name, None)
            available.update(dict.fromkeys(entry.top_names))
        self.outputs = list(available)
        self._feeds = {name: (e.layer, index) for e in self.entries if e.layer.type_name == "Input"
                       for index, name in enumerate(e.top_names)}
        self.inputs = list(self._feeds)
        self.loss = 0.0

    def _run_phase_bottoms(self, layer_param, layer):
        """In RUN (deployment) there are no labels: as MyCaffe does, trailing bottoms that no
        layer produces are dropped when the layer accepts fewer (e.g. Decode's labels)."""
        names = list(layer_param.bottom)
        if self.phase != pb.RUN:
            return names
        fewest = layer.min_bottom if layer.min_bottom is not None else layer.exact_num_bottom
        while names and names[-1] not in self.blobs and fewest is not None and len(names) > fewest:
            names.pop()
        return names

    def _share_params(self):
        """Give every layer that names a parameter the owner's Blob (tied weights)."""
        owners = {}            # param name -> (layer name, spec, blob)
        self.learnable_params, self.lr_mults, self.decay_mults, self.param_names = [], [], [], []
        seen = set()
        for entry in self.entries:
            layer, specs = entry.layer, entry.param.param
            for i, blob in enumerate(layer.blobs):
                spec = specs[i] if i < len(specs) else pb.ParamSpec()
                name = spec.name
                if name and name in owners:
                    owner_layer, owner_spec, owner_blob = owners[name]
                    if owner_blob.shape != blob.shape:
                        raise NetError(
                            f"{self.source}: parameter '{name}' is shared by layer '{owner_layer}' with "
                            f"shape {owner_blob.shape} and layer '{entry.param.name}' with shape "
                            f"{blob.shape}; shared parameters must have the same shape")
                    for mult in ("lr_mult", "decay_mult"):
                        if (spec.HasField(mult) and owner_spec.HasField(mult)
                                and getattr(spec, mult) != getattr(owner_spec, mult)):
                            raise NetError(
                                f"{self.source}: parameter '{name}' has {mult} "
                                f"{getattr(owner_spec, mult):g} in layer '{owner_layer}' but "
                                f"{getattr(spec, mult):g} in layer '{entry.param.name}'")
                    layer.blobs[i] = owner_blob
                    continue
                if name:
                    owners[name] = (entry.param.name, spec, blob)
                if blob.learnable and id(blob) not in seen:
                    seen.add(id(blob))
                    self.learnable_params.append(blob)
                    self.lr_mults.append(spec.lr_mult)
                    self.decay_mults.append(spec.decay_mult)
                    self.param_names.append(name or f"{entry.param.name}[{i}]")
        self.params = {e.param.name: e.layer.blobs for e in self.entries if e.layer.blobs}

    def _plan_backward(self):
        """Caffe's rules: which layers run backward and which bottoms get gradients."""
        need = {}                # blob name -> does it need a gradient
        learnable = {id(b): m for b, m in zip(self.learnable_params, self.lr_mults)}
        for entry in self.entries:
            has_grad_params = any(learnable.get(id(b), 0) != 0 for b in entry.layer.blobs)
            wants = [need.get(name, False) or self.force_backward for name in entry.bottom_names]
            entry.propagate_down = [
                w and entry.layer.has_backward and
                (j >= len(entry.param.propagate_down) or entry.param.propagate_down[j])
                for j, w in enumerate(wants)]
            entry.need_backward = entry.layer.has_backward and (
                has_grad_params or any(entry.propagate_down))
            for name in entry.top_names:
                need[name] = need.get(name, False) or entry.need_backward
        # Only layers that lead to a loss need to run backward.
        leads_to_loss = set()
        for entry in reversed(self.entries):
            contributes = any(w != 0 for w in entry.loss_weights) or any(
                name in leads_to_loss for name in entry.top_names)
            if contributes:
                leads_to_loss.update(entry.bottom_names)
            elif not self.force_backward:
                entry.need_backward = False
                entry.propagate_down = [False] * len(entry.bottom)

    # ------------------------------------------------------------ tied twins

    def _plan_twins(self):
        """Plan to run tied twin branches as one branch on a batch of 2N.

        The pattern is a Slice whose two tops each start a chain of layers that pair up one
        to one: same item-wise type and settings, the very same parameter Blobs, one bottom
        and one top, every top but the last read only by the next layer of its chain, equal
        backward flags and no loss. Each pair then runs once, at the position of the first
        branch's layer, through the first branch's layer object on merged Blobs of 2N items;
        the two branches' Blobs hold views of the halves, so every other layer and `blobs`
        see what separate runs give (up to float rounding in sums). Bigger GEMMs and half
        the kernel launches make it faster. `merge_twins=False` (or LAYERFORGE_MERGE_TWINS=0)
        runs the branches separately.
        """
        self._twins = {}          # index of a first-branch layer -> _Twin
        self._twin_skip = set()   # indices of second-branch layers (run by their twin)
        if not self.merge_twins:
            return
        readers, versions, produced = {}, {}, {}
        for index, entry in enumerate(self.entries):
            for blob in entry.bottom:
                readers.setdefault((id(blob), versions.get(id(blob), 0)), []).append(index)
            for j, blob in enumerate(entry.top):
                versions[id(blob)] = versions.get(id(blob), -1) + 1   # in place: a new version
                produced[index, j] = (id(blob), versions[id(blob)])
        for index, entry in enumerate(self.entries):
            if entry.layer.type_name != "Slice" or len(entry.top) != 2:
                continue
            a, b = produced[index, 0], produced[index, 1]
            pairs = []
            while len(readers.get(a, ())) == 1 and len(readers.get(b, ())) == 1:
                i, j = readers[a][0], readers[b][0]
                if not self._is_twin_pair(i, j):
                    break
                pairs.append((i, j))
                a, b = produced[i, 0], produced[j, 0]
            merged = Blob(dtype=self.dtype)
            for k, (i, j) in enumerate(pairs):
                first, second = self.entries[i], self.entries[j]
                in_place = first.top[0] is first.bottom[0]
                twin = _Twin(first.layer, merged, merged if in_place else Blob(dtype=self.dtype),
                             first.bottom[0], second.bottom[0], first.top[0], second.top[0], k == 0)
                self._twins[i] = twin
                self._twin_skip.add(j)
                merged = twin.top

    def _is_twin_pair(self, i, j):
        first, second = self.entries[i], self.entries[j]
        kind = first.param.type
        if kind not in _ITEMWISE or second.param.type != kind or i > j:
            return False
        if any(len(e.bottom) != 1 or len(e.top) != 1 or any(e.loss_weights) for e in (first, second)):
            return False
        if (first.top[0] is first.bottom[0]) != (second.top[0] is second.bottom[0]):
            return False
        if first.bottom[0].shape != second.bottom[0].shape or first.top[0].shape != second.top[0].shape:
            return False
        if not first.bottom[0].shape or first.top[0].shape[:1] != first.bottom[0].shape[:1]:
            return False
        if (first.need_backward, first.propagate_down) != (second.need_backward, second.propagate_down):
            return False
        if len(first.layer.blobs) != len(second.layer.blobs) or any(
                x is not y for x, y in zip(first.layer.blobs, second.layer.blobs)):
            return False
        field = _ITEMWISE[kind]
        if field and getattr(first.param, field).axis % first.bottom[0].num_axes == 0:
            return False
        settings = []
        for param in (first.param, second.param):
            copy = pb.LayerParameter()
            copy.CopyFrom(param)
            for name in ("name", "bottom", "top", "include", "exclude"):
                copy.ClearField(name)
            settings.append(copy)
        return settings[0] == settings[1]

    # ------------------------------------------------------------ running

    def forward_layer(self, index):
        if index in self._twin_skip:
            return
        entry = self.entries[index]
        twin = self._twins.get(index)
        if twin is not None:
            twin.forward()
            return
        entry.layer.reshape(entry.bottom, entry.top)
        entry.layer.forward(entry.bottom, entry.top)

    def backward_layer(self, index):
        if index in self._twin_skip:
            return
        entry = self.entries[index]
        if entry.need_backward:
            twin = self._twins.get(index)
            if twin is not None:
                twin.layer.backward([twin.top], entry.propagate_down, [twin.bottom])
            else:
                entry.layer.backward(entry.top, entry.propagate_down, entry.bottom)

    def forward(self, **inputs):
        """Run every layer; `inputs` fill Input-layer tops by name (through the Input layer's
        transform_param, if it has one). Returns copies of the output blobs (tops no layer
        reads), so results kept across calls stay as they were."""
        for name, value in inputs.items():
            if name not in self.inputs:
                raise NetError(f"{self.source}: '{name}' is not an input of this net "
                               f"(inputs: {', '.join(self.inputs) or 'none'})")
            layer, index = self._feeds[name]
            value = np.asarray(layer.prepare(index, np.asarray(value)), self.dtype)
            self.blobs[name].reshape(value.shape)
            self.blobs[name].data[...] = value
        loss = 0.0
        for index, entry in enumerate(self.entries):
            self.forward_layer(index)
            for weight, top in zip(entry.loss_weights, entry.top):
                if weight:
                    loss += weight * float(np.sum(top.data, dtype=np.float64))
        self.loss = loss
        return {name: self.blobs[name].data.copy() for name in self.outputs}

    def backward(self):
        """Gradients of the loss: seeds loss tops with their weights, then runs layers backward."""
        for entry in self.entries:
            for weight, top in zip(entry.loss_weights, entry.top):
                if weight:
                    top.diff[...] = weight
        for index in range(len(self.entries) - 1, -1, -1):
            self.backward_layer(index)

    def forward_backward(self, **inputs):
        self.forward(**inputs)
        self.backward()
        return self.loss

    def clear_param_diffs(self):
        for blob in self.learnable_params:
            blob.diff[...] = 0

    def first_nonfinite_layer(self):
        """Name of the first layer (in order) whose top holds NaN or Inf, or None."""
        for entry in self.entries:
            if any(not np.all(np.isfinite(t.data)) for t in entry.top):
                return entry.param.name
        return None

    # ------------------------------------------------------------ sharing and weights

    def share_with(self, other):
        """Use `other`'s parameter and state Blobs (the same objects) in same-named layers."""
        for entry in self.entries:
            source = other.layers.get(entry.param.name)
            if source is None or not entry.layer.blobs:
                continue
            if len(source.blobs) != len(entry.layer.blobs):
                raise NetError(f"cannot share layer '{entry.param.name}': {len(source.blobs)} blobs "
                               f"in the other net, {len(entry.layer.blobs)} here")
            for i, blob in enumerate(source.blobs):
                if blob.shape != entry.layer.blobs[i].shape and blob.learnable:
                    raise NetError(f"cannot share layer '{entry.param.name}' blob {i}: shape "
                                   f"{blob.shape} in the other net, {entry.layer.blobs[i].shape} here")
                entry.layer.blobs[i] = blob
        self._share_params()
        self._plan_twins()

    def to_proto(self, include_diff=False):
        """NetParameter with each layer's configuration and blobs, as a .caffemodel holds."""
        out = pb.NetParameter(name=self.name)
        for entry in self.entries:
            if entry.param.type == "Split":
                continue
            layer = out.layer.add()
            layer.CopyFrom(entry.param)
            del layer.blobs[:]
            for blob in entry.layer.blobs:
                proto = io.array_to_blobproto(blob.data, layer.blobs.add())
                if include_diff:
                    proto.diff.extend(blob.diff.astype(np.float32).ravel())
        return out

    def save(self, path):
        """Write the weights (and layer state) as a binary .caffemodel, atomically."""
        io.write_atomic(path, self.to_proto().SerializeToString())

    def copy_from(self, weights):
        """Load blobs from a .caffemodel path or NetParameter into same-named layers."""
        source = weights if isinstance(weights, pb.NetParameter) else io.read_weights(weights)
        where = "<NetParameter>" if isinstance(weights, pb.NetParameter) else os.fspath(weights)
        for layer_param in source.layer:
            layer = self.layers.get(layer_param.name)
            if layer is None or not layer_param.blobs:
                continue
            arrays = [io.blobproto_to_array(b, f"{where}: layer '{layer_param.name}' blob {i}")
                      for i, b in enumerate(layer_param.blobs)]
            try:
                layer.load_blobs(arrays)
            except ValueError as err:
                raise NetError(f"{where}: {err}") from err
