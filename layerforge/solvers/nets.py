"""The train net and test nets a SolverParameter describes, built as Caffe's Solver builds them.

A relative net path is tried against the current directory, then the solver file's folder
(io.read_solver has already looked beside the solver and one folder up).
Each net's state is its phase, then the net file's own state, then the solver's
train_state / test_state. `weights` are loaded into every net; test nets then share the
train net's parameter Blobs.
"""
import os

from layerforge import io
from layerforge.io import ConfigError
from layerforge.net import Net
from layerforge.proto import layerforge_pb2 as pb


def _net_path(path, folder, source):
    if os.path.exists(path) or os.path.isabs(path) or folder is None:
        return path
    beside = os.path.join(folder, path)
    if os.path.exists(beside):
        return beside
    raise ConfigError(f"{source}: net file \"{path}\" not found in the current directory ({os.getcwd()}) "
                      f"nor next to the solver file ({folder})")


def _make_net(model, phase, extra_state, seed, folder, source):
    if isinstance(model, pb.NetParameter):
        own, copy = model.state, pb.NetParameter()
        copy.CopyFrom(model)
        model = copy
    else:
        model = _net_path(model, folder, source)
        own = io.read_net(model).state
    state = pb.NetState(phase=phase)
    state.MergeFrom(own)
    if extra_state is not None:
        state.MergeFrom(extra_state)
    if isinstance(model, pb.NetParameter):
        model.state.CopyFrom(state)
    return Net(model, state.phase, level=state.level, stages=list(state.stage), seed=seed)


def build_nets(p, source, folder, seed, weights):
    """(train net, [test nets]): the train net seeded with `seed`, test net i with seed + 1 + i."""
    model = next(getattr(p, f) for f in ("train_net_param", "train_net", "net_param", "net") if p.HasField(f))
    train = _make_net(model, pb.TRAIN, p.train_state if p.HasField("train_state") else None, seed,
                      folder, source)
    for path in weights:
        train.copy_from(path)
    models = list(p.test_net_param) + list(p.test_net)
    generic = p.net_param if p.HasField("net_param") else p.net if p.HasField("net") else None
    models += [generic] * (len(p.test_iter) - len(models))
    tests = []
    for i, model in enumerate(models):
        net = _make_net(model, pb.TEST, p.test_state[i] if p.test_state else None, seed + 1 + i,
                        folder, source)
        for path in weights:
            net.copy_from(path)
        net.share_with(train)
        tests.append(net)
    return train, tests
