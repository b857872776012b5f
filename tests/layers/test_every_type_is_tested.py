"""Every built-in layer type has its test module tests/layers/test_<type>.py (snake case, e.g.
test_inner_product.py, or the type in lower case for Caffe's capitalized names, e.g. test_relu.py)."""
import pathlib
import re

from layerforge import registry

HERE = pathlib.Path(__file__).resolve().parent


def expected_file_names(type_name):
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", type_name).lower()
    return {f"test_{snake}.py", f"test_{type_name.lower()}.py"}


def test_every_registered_type_has_a_test_file():
    builtin = [name for name in registry.registered_types()       # "Python" loads a user's class
               if name != "Python" and registry.layer_class(name).__module__.startswith("layerforge.layers.")]
    assert len(builtin) > 40
    present = {path.name for path in HERE.glob("test_*.py")}
    missing = [name for name in builtin if not expected_file_names(name) & present]
    assert not missing, f"layer types without tests/layers/test_<type>.py: {', '.join(missing)}"
