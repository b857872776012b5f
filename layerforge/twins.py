"""Tied twin branches (a Siamese net) run as one branch on a batch of 2N.

The pattern: a layer with two tops (a Slice, typically) whose tops each start a chain of
layers that pair up one to one: same type and settings, batch-independent (the layer says
so, see `Layer.batch_independent_for`), the very same parameter Blobs, one bottom and one
top, every top but the last read only by the next layer of its chain, equal backward flags
and no loss. Each pair then runs once, at the position of the first branch's layer, through
the first branch's layer object on merged Blobs of 2N items; the two branches' Blobs hold
views of the halves, so every other layer sees what separate runs give (up to float
rounding in sums). Bigger matrix products and half the kernel launches make it faster.

`plan_twins(entries, dtype)` is the one entry point; the Net runs the plan.
"""
from layerforge.blob import Blob
from layerforge.proto import layerforge_pb2 as pb


class Twin:
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
        self.layer.reshape_if_changed([self.bottom], [self.top])
        self.layer.forward([self.bottom], [self.top])
        if not (self._is_half(self.top, self.top_a) and self._is_half(self.top, self.top_b)):
            self._link(self.top, self.top_a, self.top_b)

    def backward(self, propagate_down):
        self.layer.backward([self.top], propagate_down, [self.bottom])


def plan_twins(entries, dtype):
    """({index of a first-branch layer: Twin}, {indices of second-branch layers, run by their
    twin}) for the net's layer entries, in order."""
    twins, skip = {}, set()
    readers, versions, produced = {}, {}, {}
    for index, entry in enumerate(entries):
        for blob in entry.bottom:
            readers.setdefault((id(blob), versions.get(id(blob), 0)), []).append(index)
        for j, blob in enumerate(entry.top):
            versions[id(blob)] = versions.get(id(blob), -1) + 1   # in place: a new version
            produced[index, j] = (id(blob), versions[id(blob)])
    for index, entry in enumerate(entries):
        if len(entry.top) != 2 or any(t is b for t in entry.top for b in entry.bottom):
            continue
        a, b = produced[index, 0], produced[index, 1]
        pairs = []
        while len(readers.get(a, ())) == 1 and len(readers.get(b, ())) == 1:
            i, j = readers[a][0], readers[b][0]
            if not _is_twin_pair(entries[i], entries[j]) or i > j:
                break
            pairs.append((i, j))
            a, b = produced[i, 0], produced[j, 0]
        merged = Blob(dtype=dtype)
        for k, (i, j) in enumerate(pairs):
            first, second = entries[i], entries[j]
            in_place = first.top[0] is first.bottom[0]
            twin = Twin(first.layer, merged, merged if in_place else Blob(dtype=dtype),
                        first.bottom[0], second.bottom[0], first.top[0], second.top[0], k == 0)
            twins[i] = twin
            skip.add(j)
            merged = twin.top
    return twins, skip


def _settings(param):
    """The LayerParameter without what may differ between twins (names, wiring, rules)."""
    copy = pb.LayerParameter()
    copy.CopyFrom(param)
    for name in ("name", "bottom", "top", "include", "exclude"):
        copy.ClearField(name)
    return copy


def _is_twin_pair(first, second):
    if type(first.layer) is not type(second.layer) or first.param.type != second.param.type:
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
    if not first.layer.batch_independent_for(first.bottom):
        return False
    return _settings(first.param) == _settings(second.param)
