"""The NetSpec examples (examples/*_netspec.py) build exactly the nets in prototxt/, print as
prototxt that parses back to them, and build a Net directly."""
import os
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import layerforge
from layerforge import io

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = [("lenet_netspec.py", "lenet", "lenet_train_test.prototxt"),
            ("mnist_siamese_netspec.py", "mnist_siamese", "mnist_siamese_train_test.prototxt")]


def build(script, function):
    return runpy.run_path(str(ROOT / "examples" / script))[function]()


@pytest.mark.parametrize("script, function, prototxt", EXAMPLES)
def test_equals_the_prototxt_file(script, function, prototxt):
    net = build(script, function)
    expected = io.read_net(ROOT / "prototxt" / prototxt)       # comments are not in a NetParameter
    assert [layer.name for layer in net.layer] == [layer.name for layer in expected.layer]
    for got, want in zip(net.layer, expected.layer):
        assert got == want, f"layer {want.name}:\n{got}\n!=\n{want}"
    assert net == expected


@pytest.mark.parametrize("script, function, prototxt", EXAMPLES)
def test_script_writes_prototxt(script, function, prototxt, tmp_path):
    out = tmp_path / prototxt
    env = {**os.environ, "PYTHONPATH": str(ROOT)}          # this checkout's layerforge
    subprocess.run([sys.executable, str(ROOT / "examples" / script), str(out)], check=True, env=env)
    assert io.read_net(out) == io.read_net(ROOT / "prototxt" / prototxt)


def test_net_builds_from_netspec_directly():
    siamese = build("mnist_siamese_netspec.py", "mnist_siamese")
    net = layerforge.Net(siamese, "RUN")
    out = net.forward(data=np.zeros((3, 1, 28, 28), np.float32))
    assert out["decode1"].shape[0] == 3
    assert net.params["feat"][0].shape == (2, 10)


def test_readme_netspec_snippet_runs(capsys):
    readme = (ROOT / "README.md").read_text()
    code = readme.split("from layerforge import L, NetSpec, P", 1)[1].split("```", 1)[0]
    scope = {}
    exec("from layerforge import L, NetSpec, P" + code, scope)
    net = layerforge.Net(scope["n"].to_proto(), "TEST")
    assert net.blobs["ip1"].shape == (64, 10)
    assert io.parse_text(capsys.readouterr().out, layerforge.proto.layerforge_pb2.NetParameter()) == \
        scope["n"].to_proto()
