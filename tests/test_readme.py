"""The README's "Write your own layer" example runs as printed."""
import pathlib
import re

import numpy as np

from layerforge import registry

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_custom_layer_example_runs(capsys):
    section = README.read_text().split("## Write your own layer", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    try:
        exec(compile(code, "README.md", "exec"), {})
        printed = capsys.readouterr().out
        expected = np.arange(6.0).reshape(2, 3) ** 2
        assert printed.split() == str(expected.astype(np.float32)).split()
    finally:
        registry._LAYERS.pop("Square", None)


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
