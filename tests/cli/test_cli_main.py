"""The `layerforge` binary: help of every sub-command, `python -m layerforge`, and one-line errors."""
import importlib.util
import re
import os
import subprocess
import sys

import pytest

from layerforge.cli import main
from tests.cli import write_net

COMMANDS = ["train", "test", "time", "draw", "plot", "embed", "oneshot", "centroids", "upgrade"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_each_command(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: layerforge {command}")
    assert "--debug" in out


def test_top_level_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in COMMANDS + ["data"]:
        assert re.search(rf"^    {command}\b", out, re.MULTILINE)   # argparse wraps long names


def test_data_help_once_the_data_commands_exist(capsys):
    if importlib.util.find_spec("layerforge.data.commands") is None:
        pytest.skip("layerforge.data.commands (the data helper's module) does not exist yet")
    assert main(["data", "--help"]) == 0
    assert "usage: layerforge data" in capsys.readouterr().out


def test_python_dash_m_is_the_binary():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run([sys.executable, "-m", "layerforge", "--help"], cwd=root,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: layerforge")


def test_usage_error_exits_2(capsys):
    assert main(["test", "--model", "x.prototxt"]) == 2          # --weights missing
    assert "the following arguments are required: --weights" in capsys.readouterr().err
    assert main(["time", "--model", "m", "--iterations", "0"]) == 2
    assert "argument --iterations: must be at least 1, got 0" in capsys.readouterr().err
    assert main(["time", "--model", "m", "--warmup", "x"]) == 2
    assert "argument --warmup: expected an integer, got 'x'" in capsys.readouterr().err


def _one_line_error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("layerforge: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_missing_files_are_one_line_errors(tmp_path, capsys):
    missing = str(tmp_path / "missing.prototxt")
    for argv in (["time", "--model", missing], ["draw", missing, str(tmp_path / "n.dot")],
                 ["plot", str(tmp_path / "missing.jsonl")],
                 ["test", "--model", missing, "--weights", "w.caffemodel"],
                 ["embed", "--model", missing, "--weights", "w", "--blob", "ip1"]):
        err = _one_line_error(capsys, argv)
        assert "missing" in err and "not found" in err


def test_train_with_a_missing_solver_is_a_one_line_error(tmp_path, capsys):
    if importlib.util.find_spec("layerforge.solvers") is None:
        pytest.skip("layerforge.solvers (the solver helper's module) does not exist yet")
    err = _one_line_error(capsys, ["train", "--solver", str(tmp_path / "nope.prototxt")])
    assert "nope.prototxt" in err


def test_malformed_prototxt_names_file_and_line(tmp_path, capsys):
    bad = write_net(tmp_path, 'name: "x"\nlayer { name: "a" type: "Input" top: "d"\n  bogus_field: 3 }\n')
    err = _one_line_error(capsys, ["time", "--model", str(bad)])
    assert f"{bad}:3:" in err and "bogus_field" in err


def test_net_errors_are_one_line(tmp_path, capsys):
    unknown = write_net(tmp_path, 'layer { name: "a" type: "InnerProdcut" top: "x" }', "unknown.prototxt")
    assert "Did you mean 'InnerProduct'" in _one_line_error(capsys, ["time", "--model", str(unknown)])
    orphan = write_net(tmp_path, 'layer { name: "r" type: "ReLU" bottom: "nobody" top: "r" }',
                       "orphan.prototxt")
    assert "bottom 'nobody'" in _one_line_error(capsys, ["time", "--model", str(orphan)])


def test_corrupt_weights_are_one_line(tmp_path, capsys):
    net = write_net(tmp_path)
    weights = tmp_path / "bad.caffemodel"
    weights.write_bytes(b"\xff\x00 not a protobuf")
    err = _one_line_error(capsys, ["test", "--model", str(net), "--weights", str(weights)])
    assert "bad.caffemodel" in err


def test_debug_shows_the_traceback(tmp_path):
    from layerforge.io import ConfigError

    with pytest.raises(ConfigError):
        main(["--debug", "time", "--model", str(tmp_path / "missing.prototxt")])
    with pytest.raises(ConfigError):
        main(["time", "--model", str(tmp_path / "missing.prototxt"), "--debug"])


def test_data_falls_back_to_a_one_line_error_when_its_module_cannot_load(monkeypatch, capsys):
    import layerforge.data

    monkeypatch.setitem(sys.modules, "layerforge.data.commands", None)   # import raises ImportError
    monkeypatch.delattr(layerforge.data, "commands", raising=False)
    assert main(["train", "--help"]) == 0                                # the rest still works
    capsys.readouterr()
    assert main(["data"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("layerforge: error: 'layerforge data' is unavailable: ") and err.count("\n") == 1


def test_version(capsys):
    from layerforge import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"layerforge {__version__}\n"


@pytest.mark.parametrize("argv", [["data", "mnist"], ["data", "images"]])
def test_debug_is_accepted_by_nested_commands(argv, capsys):
    assert main([*argv, "--debug", "--help"]) == 0
    assert "--debug" in capsys.readouterr().out


def test_caffe_single_dash_flags(tmp_path, capsys):
    from layerforge.cli import _caffe_spellings

    assert _caffe_spellings(["train", "-solver", "s", "-weights=w", "--snapshot", "x", "-q", "solver"]) == \
        ["train", "--solver", "s", "--weights=w", "--snapshot", "x", "-q", "solver"]
    missing = tmp_path / "missing.prototxt"
    err = _one_line_error(capsys, ["test", "-model", str(missing), "-weights", "w", "-iterations", "2"])
    assert "missing.prototxt" in err and "not found" in err


@pytest.mark.parametrize("command", ["train -solver s", "test -model m -weights w", "time -model m"])
def test_gpu_is_a_clear_cpu_only_error(command, capsys):
    err = _one_line_error(capsys, [*command.split(), "-gpu", "0"])
    assert "CPU only" in err


def test_python_layer_module_in_the_current_directory(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_layers.py").write_text(
        "from tests.cli import Clusters\n\nclass MyClusters(Clusters):\n    pass\n")
    net = write_net(tmp_path, open(write_net(tmp_path)).read().replace(
        'module: "tests.cli" layer: "Clusters"', 'module: "my_layers" layer: "MyClusters"'), "mine.prototxt")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    monkeypatch.setattr(sys, "path", [root] + [p for p in sys.path if p not in ("", os.getcwd())])
    monkeypatch.chdir(tmp_path)
    assert main(["time", "--model", str(net), "--iterations", "1", "--warmup", "0"]) == 0
    assert "data" in capsys.readouterr().out
    assert str(tmp_path) not in sys.path
    sys.modules.pop("my_layers", None)


def registered_commands():
    from layerforge import cli

    cli.build_parser()                    # imports the modules that register more commands
    return list(cli._COMMANDS)


@pytest.mark.parametrize("name", registered_commands())
def test_every_registered_command_has_help_and_debug(name, capsys):
    assert main([*name.split(), "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: layerforge {name}") and "--debug" in out
    assert main(["--help"]) == 0
    assert re.search(rf"^    {name.split()[0]}\b", capsys.readouterr().out, re.MULTILINE)
