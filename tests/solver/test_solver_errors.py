"""Bad solver files give a ConfigError naming the file; friendly forms (lower-case type,
legacy solver_type, net path next to the solver file) work."""
import os

import pytest

from layerforge.io import ConfigError
from layerforge.solvers import AdamSolver, NesterovSolver, SGDSolver
from layerforge.solvers import get_solver
from tests.solver.helpers import linear_net


@pytest.fixture
def folder(tmp_path, monkeypatch):
    (tmp_path / "net.prototxt").write_text(linear_net())
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_solver(folder, text):
    path = folder / "solver.prototxt"
    path.write_text(text)
    return str(path)


NET = 'net: "net.prototxt" '
BAD = {
    "no_net": ("base_lr: 0.1", "no net given"),
    "two_nets": (NET + 'train_net: "net.prototxt" base_lr: 0.1', "exactly one train net"),
    "unknown_type": (NET + 'base_lr: 0.1 type: "Adamax"',
                     'unknown solver type "Adamax"; valid types: SGD, Nesterov, AdaGrad, RMSProp, AdaDelta, Adam'),
    "legacy_type_clash": (NET + 'base_lr: 0.1 type: "Adam" solver_type: NESTEROV', "disagree"),
    "missing_base_lr": (NET, "base_lr is missing"),
    "negative_base_lr": (NET + "base_lr: -0.1", "base_lr must not be negative"),
    "unknown_policy": (NET + 'base_lr: 0.1 lr_policy: "cosine"',
                       'unknown lr_policy "cosine"; valid policies: fixed, step, exp, inv, multistep, poly, sigmoid'),
    "step_without_stepsize": (NET + 'base_lr: 0.1 lr_policy: "step"', "needs stepsize > 0"),
    "poly_without_max_iter": (NET + 'base_lr: 0.1 lr_policy: "poly" power: 1', "needs max_iter > 0"),
    "bad_regularization": (NET + 'base_lr: 0.1 regularization_type: "L3"', 'unknown regularization_type "L3"'),
    "zero_iter_size": (NET + "base_lr: 0.1 iter_size: 0", "iter_size must be at least 1"),
    "test_iter_without_test_net": ('train_net: "net.prototxt" base_lr: 0.1 test_iter: 5 test_interval: 10',
                                   "1 test_iter value(s) but 0 test net(s)"),
    "test_net_without_test_iter": ('train_net: "net.prototxt" test_net: "net.prototxt" base_lr: 0.1 test_interval: 10',
                                   "1 test net(s) (test_net / test_net_param) but 0 test_iter"),
    "test_interval_without_test_iter": (NET + "base_lr: 0.1 test_interval: 100", "no test_iter is given"),
    "test_iter_without_interval": (NET + "base_lr: 0.1 test_iter: 5", "test_interval is not"),
    "adagrad_momentum": (NET + 'base_lr: 0.1 type: "AdaGrad" momentum: 0.9', "momentum cannot be used with AdaGrad"),
    "rmsprop_decay": (NET + 'base_lr: 0.1 type: "RMSProp" rms_decay: 1.5', "rms_decay must be in [0, 1]"),
    "plateau_unknown_output": (NET + 'base_lr: 0.1 test_iter: 1 test_interval: 5 plateau { monitor: "accuracy" }',
                               'plateau.monitor "accuracy" is not an output of test net #0; its outputs are: loss'),
    "early_stopping_without_tests": (NET + 'base_lr: 0.1 early_stopping { monitor: "loss" }', "there is no test net"),
    "net_not_found": ('net: "nowhere.prototxt" base_lr: 0.1', 'net file "nowhere.prototxt" not found'),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_solver_file(folder, case):
    text, message = BAD[case]
    path = write_solver(folder, text)
    with pytest.raises(ConfigError) as error:
        get_solver(path)
    assert str(error.value).startswith(f"{path}:")
    assert message in str(error.value)


def test_parse_error_names_line_and_column(folder):
    path = write_solver(folder, NET + "\nbase_lr: 0.1\nmomentun: 0.9\n")
    with pytest.raises(ConfigError, match=r"solver.prototxt:3:\d+: .*momentun.*Did you mean momentum"):
        get_solver(path)


@pytest.mark.parametrize("text, cls", [
    ("type: sgd", SGDSolver), ('type: "ADAM"', AdamSolver), ("type: nesterov", NesterovSolver),
    ("solver_type: NESTEROV", NesterovSolver), ("solver_type: ADAM type: \"adam\"", AdamSolver),
])
def test_type_names_are_case_insensitive_and_legacy_enum_works(folder, text, cls):
    # One field per line, as MyCaffe writes them (unquoted strings are accepted per line).
    assert type(get_solver(write_solver(folder, NET + "\nbase_lr: 0.1\n" + text))) is cls


def test_relative_net_path_falls_back_to_the_solver_folder(folder, tmp_path_factory, monkeypatch):
    path = write_solver(folder, NET + "base_lr: 0.1 test_iter: 2 test_interval: 5")
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    solver = get_solver(path)
    assert solver.net.source == os.path.join(str(folder), "net.prototxt")
    assert len(solver.test_nets) == 1 and solver.test_nets[0].params["ip"][0] is solver.net.params["ip"][0]


def test_snapshot_prefix_defaults(folder):
    assert get_solver(write_solver(folder, NET + "base_lr: 0.1")).snapshot_prefix == str(folder / "solver")
    (folder / "snaps").mkdir()
    solver = get_solver(write_solver(folder, NET + 'base_lr: 0.1 snapshot_prefix: "snaps"'))
    assert solver.snapshot_prefix == os.path.join("snaps", "solver")
    # Caffe appends the stem only to an existing folder: "runs/" names files runs/_iter_N.*
    solver = get_solver(write_solver(folder, NET + 'base_lr: 0.1 snapshot_prefix: "runs/"'))
    assert solver.snapshot_prefix == "runs/"


def test_weights_are_loaded(folder):
    first = get_solver(write_solver(folder, NET + 'base_lr: 0.1 max_iter: 2 snapshot_prefix: "w"'))
    first.solve()
    given = get_solver(write_solver(folder, NET + "base_lr: 0.1"), weights="w_iter_2.caffemodel")
    listed = get_solver(write_solver(folder, NET + 'base_lr: 0.1 weights: "w_iter_2.caffemodel,w_iter_2.caffemodel"'))
    overridden = get_solver(write_solver(folder, NET + 'base_lr: 0.1 weights: "missing.caffemodel"'),
                            weights="w_iter_2.caffemodel")       # the argument replaces the file's list
    for solver in (given, listed, overridden):
        assert (solver.net.params["ip"][0].data == first.net.params["ip"][0].data).all()
    with pytest.raises(ConfigError, match="missing.caffemodel: file not found"):
        get_solver(write_solver(folder, NET + "base_lr: 0.1"), weights="missing.caffemodel")
