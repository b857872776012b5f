"""A NetParameter before a Net is built from it: NetState filtering (include/exclude rules)
and Caffe's split insertion (legacy formats are upgraded first by layerforge.upgrade)."""
from layerforge.proto import layerforge_pb2 as pb

PHASE_NAMES = {pb.TRAIN: "TRAIN", pb.TEST: "TEST", pb.RUN: "RUN"}


class NetError(ValueError):
    """The net's structure is wrong (missing bottom, clashing tops, mis-shared parameter, ...)."""


def phase_value(phase):
    """Accept pb.TRAIN / 0 / "TRAIN" / "train" alike."""
    if isinstance(phase, str):
        try:
            return pb.Phase.Value(phase.upper())
        except ValueError:
            raise ValueError(f"unknown phase {phase!r}; use TRAIN, TEST or RUN") from None
    if isinstance(phase, bool) or not isinstance(phase, int) or phase not in PHASE_NAMES:
        raise ValueError(f"unknown phase {phase!r}; use TRAIN, TEST or RUN")
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
