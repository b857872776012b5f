"""Net: a graph of layers built from a NetParameter filtered by a NetState.

Follows Caffe's Net: layers are filtered by include/exclude rules, a top read by several
layers is split (so its gradient is summed), in-place layers reuse their bottom's Blob,
parameters named alike in ParamSpec are one shared Blob (tied weights), and
loss_weight / propagate_down / force_backward decide what runs backward.

Tied twins (a Siamese net) run as one batch: see twins.py. While layers run, numpy's
OpenBLAS is on one thread (kernels/threads.py), and back to its own count afterwards.
"""
import difflib
import logging
import os

import numpy as np

from layerforge import config, io
from layerforge.blob import Blob
from layerforge.kernels.threads import blas_on_one_thread
from layerforge.layer import LayerError
from layerforge.netparam import PHASE_NAMES, NetError, filter_net, insert_splits, phase_value
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import create_layer
from layerforge.twins import plan_twins
from layerforge.upgrade import upgrade_net


log = logging.getLogger("layerforge")


def _loss_weights(layer_param, layer, num_top):
    weights = list(layer_param.loss_weight)
    if not weights and layer.is_loss:
        weights = [1.0]
    return weights + [0.0] * (num_top - len(weights))


class _LayerEntry:
    """One built layer: its parameters, blobs and what backward needs to know."""

    def __init__(self, param, layer, bottom, top, bottom_names, top_names):
        self.param, self.layer = param, layer
        self.bottom, self.top = bottom, top
        self.bottom_names, self.top_names = bottom_names, top_names
        self.loss_weights = []
        self.need_backward = False
        self.propagate_down = []


class Net:
    """A network: `Net(model, phase, weights=None, seed=0)`.

    `model` is a prototxt path or a NetParameter. `forward(**inputs)` returns the output
    blobs (tops nobody reads) by name and sets `net.loss`; `backward()` computes gradients.
    By name, in order: `layers`, `blobs`, `params` (a layer's parameter Blobs),
    `bottom_names` / `top_names` (a layer's blob names); `inputs`, `outputs` list blob names.
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
        filtered = filter_net(upgrade_net(param, self.source), state)
        self.param = insert_splits(filtered)
        # Layers the net inserted itself (splits) are not saved with the weights.
        self._inserted = {layer.name for layer in self.param.layer} - {layer.name for layer in filtered.layer}
        self.force_backward = param.force_backward
        self.merge_twins = config.merge_twins() if merge_twins is None else merge_twins
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
        self.bottom_names, self.top_names = {}, {}
        self._automatic = set()   # anonymous loss tops (not net outputs, as in Caffe)
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
            top_names = list(layer_param.top)
            if not top_names and layer.is_loss:   # Caffe's AutoTopBlobs: a loss needs no named top
                top_names = [f"{layer_param.name} (automatic)"]
                self._automatic.add(top_names[0])
            top = []
            for j, name in enumerate(top_names):
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
            except LayerError as err:
                raise NetError(f"{self.source}: {err}") from err
            except (ValueError, TypeError, MemoryError) as err:   # a filler's, a Blob's, numpy's
                raise NetError(f"{self._where(layer_param)}: {err}") from err
            entry = _LayerEntry(layer_param, layer, bottom, top, bottom_names, top_names)
            entry.loss_weights = _loss_weights(layer_param, layer, len(top_names))
            self.entries.append(entry)
            self.layers[layer_param.name] = layer
            self.bottom_names[layer_param.name] = entry.bottom_names
            self.top_names[layer_param.name] = entry.top_names
        self._share_params()
        self._plan_backward()
        self._plan_twins()
        available = {}
        for entry in self.entries:
            for name in entry.bottom_names:
                available.pop(name, None)
            available.update(dict.fromkeys(entry.top_names))
        self.outputs = [name for name in available if name not in self._automatic]
        self._feeds = {name: (e.layer, index) for e in self.entries if e.layer.is_input
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
            # Caffe's param_propagate_down: a parameter with lr_mult 0 gets no gradient.
            entry.layer.param_propagate_down = [learnable.get(id(b), 0) != 0 for b in entry.layer.blobs]
            has_grad_params = any(entry.layer.param_propagate_down)
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

    def _plan_twins(self):
        """Run tied twin branches as one batch of 2N where they pair up (twins.py)."""
        self._twins, self._twin_skip = plan_twins(self.entries, self.dtype) if self.merge_twins else ({}, set())

    # ------------------------------------------------------------ running

    def forward_layer(self, index):
        if index in self._twin_skip:
            return
        entry = self.entries[index]
        twin = self._twins.get(index)
        if twin is not None:
            twin.forward()
            return
        entry.layer.reshape_if_changed(entry.bottom, entry.top)
        entry.layer.forward(entry.bottom, entry.top)

    def backward_layer(self, index):
        if index in self._twin_skip:
            return
        entry = self.entries[index]
        if entry.need_backward:
            twin = self._twins.get(index)
            if twin is not None:
                twin.backward(entry.propagate_down)
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
            value = np.asarray(layer.prepare_input(index, np.asarray(value)), self.dtype)
            self.blobs[name].reshape(value.shape)
            self.blobs[name].data[...] = value
        loss = 0.0
        with blas_on_one_thread():
            for index, entry in enumerate(self.entries):
                self.forward_layer(index)
                for weight, top in zip(entry.loss_weights, entry.top):
                    if weight:
                        loss += weight * float(np.sum(top.data, dtype=np.float64))
        self.loss = loss
        return {name: self.blobs[name].data.copy() for name in self.outputs}

    def seed_loss_diffs(self):
        """Set each loss top's diff to its loss weight: where backward starts."""
        for entry in self.entries:
            for weight, top in zip(entry.loss_weights, entry.top):
                if weight:
                    top.diff[...] = weight

    def backward(self):
        """Gradients of the loss: seeds loss tops with their weights, then runs layers backward."""
        self.seed_loss_diffs()
        with blas_on_one_thread():
            for index in range(len(self.entries) - 1, -1, -1):
                self.backward_layer(index)

    def forward_backward(self, **inputs):
        with blas_on_one_thread():
            self.forward(**inputs)
            self.backward()
        return self.loss

    @property
    def loss_weights(self):
        """{top name: loss weight} for the tops that add to the loss."""
        return {name: weight for entry in self.entries
                for name, weight in zip(entry.top_names, entry.loss_weights) if weight}

    def layers_of_type(self, type_name):
        """The layers of one type (e.g. "Decode"), in net order."""
        return [layer for layer in self.layers.values() if layer.type_name == type_name]

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
            if entry.param.name in self._inserted:
                continue
            layer = out.layer.add()
            layer.CopyFrom(entry.param)
            del layer.blobs[:]
            for blob in entry.layer.blobs:
                proto = io.array_to_blobproto(blob.data, layer.blobs.add())
                if include_diff:
                    proto.diff.extend(blob.diff.astype(np.float32).ravel().tolist())
        return out

    def save(self, path):
        """Write the weights (and layer state) as a binary .caffemodel, atomically."""
        io.write_checksummed(path, self.to_proto().SerializeToString())

    def copy_from(self, weights):
        """Load blobs from a .caffemodel path or NetParameter into same-named layers.

        As Caffe does, source layers this net does not have are skipped; each skipped layer,
        and each layer of this net left at its initial values, is logged, then how many were
        copied. Weights that fit no layer of this net at all are an error (a wrong file)."""
        source = weights if isinstance(weights, pb.NetParameter) else io.read_weights(weights)
        where = "<NetParameter>" if isinstance(weights, pb.NetParameter) else os.fspath(weights)
        with_blobs = [layer_param for layer_param in source.layer if layer_param.blobs]
        copied, ignored = set(), []
        for layer_param in with_blobs:
            layer = self.layers.get(layer_param.name)
            if layer is None or not layer.blobs:
                ignored.append(layer_param.name)
                continue
            arrays = [io.blobproto_to_array(b, f"{where}: layer '{layer_param.name}' blob {i}")
                      for i, b in enumerate(layer_param.blobs)]
            try:
                layer.load_blobs(arrays)
            except ValueError as err:
                raise NetError(f"{where}: {err}") from err
            copied.add(layer_param.name)
        targets = [name for name, layer in self.layers.items() if layer.blobs]
        if with_blobs and targets and not copied:
            raise NetError(f"{where}: none of its {len(with_blobs)} layers with weights "
                           f"({', '.join(l.name for l in with_blobs[:5])}{', ...' if len(with_blobs) > 5 else ''}) "
                           f"is a layer of net '{self.name}' ({self.source}); is it the weights file of "
                           f"another net?")
        for name in ignored:
            log.info("%s: ignoring source layer '%s' (not in this net)", where, name)
        for name in targets:
            if name not in copied:
                log.info("%s: layer '%s' keeps its initial values (not in the weights file)", where, name)
        if with_blobs:
            log.info("%s: copied %d of %d layers with weights", where, len(copied), len(targets))
