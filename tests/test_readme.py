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
