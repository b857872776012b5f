"""Weights of another net are one error line and exit 2 for `layerforge test` and `train
--weights`, which load them through Net.copy_from as Net(..., weights=) does."""
import os
import subprocess
import sys

import pytest

from layerforge import Net
from layerforge.netparam import NetError
from tests.synthetic import ROOT

MODEL = ('name: "m"\nlayer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 } } }\n'
         'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "y" inner_product_param { num_output: 2 } }\n')


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "layerforge", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.fixture
def wrong(tmp_path):
    other = MODEL.replace('"ip"', '"other_ip"')
    (tmp_path / "other.prototxt").write_text(other)
    Net(tmp_path / "other.prototxt").save(tmp_path / "wrong.caffemodel")
    (tmp_path / "m.prototxt").write_text(MODEL)
    return tmp_path / "wrong.caffemodel"


def test_cli_test_with_weights_of_another_net(tmp_path, wrong):
    done = _cli("test", "--model", tmp_path / "m.prototxt", "--weights", wrong, "--iterations", 1, cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"layerforge: error: {wrong}: none of its 1 layers with weights")


def test_net_and_train_weights_take_the_same_path(tmp_path, wrong):
    with pytest.raises(NetError, match=f"{wrong}: none of its 1 layers"):
        Net(tmp_path / "m.prototxt", weights=wrong)
    (tmp_path / "train.prototxt").write_text(
        'name: "t"\nlayer { name: "data" type: "DummyData" top: "data" top: "target" dummy_data_param '
        '{ shape { dim: 2 dim: 3 } shape { dim: 2 dim: 2 } } }\n' + MODEL.split("\n", 2)[2] +
        'layer { name: "loss" type: "EuclideanLoss" bottom: "y" bottom: "target" top: "loss" }\n')
    (tmp_path / "solver.prototxt").write_text('net: "train.prototxt" base_lr: 0.1 max_iter: 1')
    done = _cli("train", "--solver", tmp_path / "solver.prototxt", "--weights", wrong, cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith(f"layerforge: error: {wrong}: none of its 1 layers with weights"), done.stderr
    assert not any(line.startswith("layerforge") for line in lines[:-1])
