"""Settings that cannot work are one clear error line (exit 2), never a traceback or a hang:
sizes beyond memory, an empty batch, a NaN rate, momentum >= 1, an unknown filler, an
unknown phase, a Python layer class that is not a Layer."""
import os
import subprocess
import sys

import pytest

from layerforge import Net, get_solver
from layerforge.io import ConfigError
from layerforge.netparam import NetError
from layerforge.registry import UnknownLayerError

INPUT = 'layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ {dims} }} }} }}\n'
IP = 'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: %s %s } }\n'


def _net(tmp_path, text, name="net.prototxt"):
    path = tmp_path / name
    path.write_text('name: "n"\n' + text)
    return path


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cli(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, "-m", "layerforge", *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd, env=env)


@pytest.mark.parametrize("text, layer", [
    (INPUT.format(dims="dim: 1000000000 dim: 1 dim: 28 dim: 28"), "data"),
    (INPUT.format(dims="dim: 2 dim: 3") + IP % (4000000000, ""), "ip"),
])
def test_sizes_beyond_memory_name_the_layer_and_bytes(tmp_path, text, layer):
    path = _net(tmp_path, text)
    with pytest.raises(NetError, match=rf"net.prototxt: layer '{layer}' .*needs [\d,]+ bytes"):
        Net(path)
    done = _cli("time", "--model", path, "--iterations", "1")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "bytes" in done.stderr, done.stderr


def test_a_batch_of_zero_is_an_error(tmp_path):
    path = _net(tmp_path, INPUT.format(dims="dim: 0 dim: 1 dim: 4 dim: 4") + IP % (10, ""))
    with pytest.raises(NetError, match=r"layer 'data' .*dimension below 1"):
        Net(path)


def test_unknown_filler_names_layer_and_file(tmp_path):
    path = _net(tmp_path, INPUT.format(dims="dim: 2 dim: 3") + IP % (4, 'weight_filler { type: "gausian" }'))
    with pytest.raises(NetError, match=r"net.prototxt: layer 'ip' \(InnerProduct\): unknown filler type 'gausian'"):
        Net(path)


@pytest.mark.parametrize("phase", [7, -1, True])
def test_unknown_phase(tmp_path, phase):
    path = _net(tmp_path, INPUT.format(dims="dim: 2 dim: 3"))
    with pytest.raises(ValueError, match=rf"unknown phase {phase}; use TRAIN, TEST or RUN"):
        Net(path, phase)


def test_python_layer_class_must_subclass_layer(tmp_path, monkeypatch):
    (tmp_path / "notalayer.py").write_text("class Thing:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = _net(tmp_path, INPUT.format(dims="dim: 2 dim: 3") +
                'layer { name: "py" type: "Python" bottom: "data" top: "out" '
                'python_param { module: "notalayer" layer: "Thing" } }\n')
    with pytest.raises(UnknownLayerError, match=r"layer 'py': notalayer.Thing is not a layer class"):
        Net(path)


def _solver(tmp_path, extra):
    net = _net(tmp_path, 'layer { name: "data" type: "DummyData" top: "data" top: "label" dummy_data_param '
                         '{ shape { dim: 2 dim: 3 } shape { dim: 2 } } }\n' +
               IP.replace('bottom: "data"', 'bottom: "data"') % (2, "") +
               'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }\n')
    path = tmp_path / "solver.prototxt"
    path.write_text(f'net: "{net}"\nmax_iter: 1\n{extra}\n')
    return path


@pytest.mark.parametrize("extra, message", [
    ("base_lr: nan", r"base_lr must be a finite number >= 0 \(got nan\)"),
    ("base_lr: inf", r"base_lr must be a finite number >= 0 \(got inf\)"),
    ("base_lr: 0.1 momentum: 1", r"momentum must be in \[0, 1\) for SGD \(got 1\)"),
    ('base_lr: 0.1 momentum: 1.5 type: "Nesterov"', r"momentum must be in \[0, 1\) for Nesterov \(got 1.5\)"),
])
def test_solver_settings_that_cannot_train(tmp_path, extra, message):
    with pytest.raises(ConfigError, match=r"solver.prototxt: " + message):
        get_solver(_solver(tmp_path, extra))


@pytest.mark.parametrize("net_text, message", [
    ("", r"has no layers in phase TRAIN"),
    (INPUT.format(dims="dim: 2 dim: 3") +
     'layer { name: "relu" type: "ReLU" bottom: "data" top: "out" }\n', r"has no loss .* nothing to train"),
])
def test_train_refuses_a_net_with_nothing_to_train(tmp_path, net_text, message):
    net = _net(tmp_path, net_text, "empty.prototxt")
    solver = tmp_path / "solver.prototxt"
    solver.write_text(f'net: "{net}"\nbase_lr: 0.1\nmax_iter: 2\nsnapshot_after_train: true\n')
    with pytest.raises(ConfigError, match=r"solver.prototxt: the train net 'n' .*empty.prototxt\) " + message):
        get_solver(solver)
    done = _cli("train", "--solver", solver, cwd=tmp_path)
    assert done.returncode == 2 and not list(tmp_path.glob("*.caffemodel")), done.stderr
