"""The README's Python examples run as printed."""
import os
import pathlib
import re

import numpy as np

from layerforge import registry
from layerforge.net import Net
from layerforge.proto import layerforge_pb2 as pb
from tests.test_examples import ROOT, workdir  # noqa: F401  (fixture: synthetic MNIST LMDBs, prototxt/)

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def snippet(section):
    return re.search(r"```python\n(.*?)```", README.read_text().split(f"## {section}", 1)[1], re.S).group(1)


def test_custom_layer_example_runs(capsys):
    try:
        exec(compile(snippet("Write your own layer"), "README.md", "exec"), {})
        printed = capsys.readouterr().out
        expected = np.arange(6.0).reshape(2, 3) ** 2
        assert printed.split() == str(expected.astype(np.float32)).split()
    finally:
        registry._LAYERS.pop("Square", None)


def test_python_api_example_runs(workdir, monkeypatch, capsys):  # noqa: F811
    """In a folder laid out as after `make demo` (small synthetic LMDBs, barely trained weights)."""
    monkeypatch.chdir(workdir)
    if not (workdir / "solvers").exists():
        (workdir / "solvers").symlink_to(ROOT / "solvers")
    weights = workdir / "runs" / "mnist_siamese" / "mnist_siamese_final.caffemodel"
    weights.parent.mkdir(parents=True, exist_ok=True)
    train = Net(ROOT / "prototxt" / "mnist_siamese_train_test.prototxt", pb.TRAIN)
    for _ in range(3):                                      # Decode learns the ten centroids
        train.forward()
    train.save(weights)
    scope = {}
    exec(compile(snippet("Python API"), "README.md", "exec"), scope)
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"accuracy on 500 test digits: [01]\.\d+", lines[0])
    assert scope["distances"].shape == (200, 10)           # the synthetic test set has 200 digits
    assert scope["net"].blobs["data"].data.max() < 1       # fed raw, scaled by the Input layer
    assert scope["solver"].iter == 100 and lines[1].startswith("100 ")
    assert os.path.samefile(os.getcwd(), workdir)


def test_layer_test_case_example_passes(capsys):
    """The README's LayerTestCase for Square runs every inherited check on every case."""
    section = README.read_text().split("## Write your own layer", 1)[1].split("\n## ", 1)[0]
    layer_code, test_code = re.findall(r"```python\n(.*?)```", section, re.S)[:2]
    scope = {}
    try:
        exec(compile(layer_code, "README.md", "exec"), scope)
        exec(compile(test_code, "README.md", "exec"), scope)
        case_test = scope["TestSquare"]()
        ran = 0
        for case in case_test.cases:
            for name in ("test_forward", "test_gradient", "test_dtype_is_kept"):
                getattr(case_test, name)(case)
                ran += 1
        assert ran == 6
    finally:
        registry._LAYERS.pop("Square", None)


def layer_table_rows():
    section = README.read_text().split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ")][1:]


def layer_table_types():
    """The type names in the first column of the README's layer table ("A, B" names two)."""
    return [name.strip() for row in layer_table_rows() for name in row.split("|")[1].split(",")]


def test_layer_table_lists_every_registered_type_once():
    import layerforge.layers  # noqa: F401  (registers the built-in types)
    listed = layer_table_types()
    # layerforge's own types (test modules register helper layers of their own)
    builtin = {name for name in registry.registered_types()
               if name == "Python" or registry.layer_class(name).__module__.startswith("layerforge.")}
    assert sorted(set(listed)) == sorted(listed), "a type has two rows"
    assert builtin - set(listed) == set(), "registered types without a row"
    assert set(listed) - builtin == set(), "rows for unknown types"
    firsts = [row.split("|")[1].split(",")[0].strip() for row in layer_table_rows()]
    assert firsts == sorted(firsts, key=str.lower), "the table is not alphabetical"
