"""Layer type registry: type name -> Layer class, plus Python-module and plug-in layers."""
import difflib
import importlib
from importlib import metadata

_LAYERS = {}
_PLUGINS_LOADED = False
ENTRY_POINT_GROUP = "layerforge.layers"


class UnknownLayerError(ValueError):
    pass


def register_layer(type_name):
    """Class decorator: make the layer reachable as `type: "<type_name>"` in a prototxt."""

    def decorate(cls):
        if _LAYERS.get(type_name, cls) is not cls:
            raise ValueError(f"layer type {type_name!r} is registered twice "
                             f"({_LAYERS[type_name].__module__} and {cls.__module__})")
        _LAYERS[type_name] = cls
        cls.type_name = type_name
        return cls

    return decorate


def _load_builtin_and_plugins():
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    importlib.import_module("layerforge.layers")
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        cls = entry.load()
        _LAYERS.setdefault(entry.name, cls)


def registered_types():
    """Every type a prototxt may name: the registered ones and "Python" (python_param)."""
    _load_builtin_and_plugins()
    return sorted(set(_LAYERS) | {"Python"})


def layer_class(type_name, layer_name="?"):
    """The class for `type_name`, or an error naming the closest registered types."""
    _load_builtin_and_plugins()
    if type_name in _LAYERS:
        return _LAYERS[type_name]
    close = difflib.get_close_matches(type_name, _LAYERS, n=3, cutoff=0.5)
    close += [t for t in _LAYERS if t.lower() == type_name.lower() and t not in close]
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownLayerError(
        f"layer '{layer_name}': unknown layer type {type_name!r}.{hint} "
        f"Known types: {', '.join(registered_types())}.")


def python_layer_class(python_param, layer_name="?"):
    """Resolve `type: "Python"` with python_param { module layer } to a class."""
    try:
        module = importlib.import_module(python_param.module)
    except ImportError as err:
        raise UnknownLayerError(f"layer '{layer_name}': cannot import python_param.module "
                                f"{python_param.module!r}: {err}") from err
    cls = getattr(module, python_param.layer, None)
    if cls is None:
        raise UnknownLayerError(f"layer '{layer_name}': module {python_param.module!r} has no "
                                f"class {python_param.layer!r} (python_param.layer)")
    from layerforge.layer import Layer
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise UnknownLayerError(f"layer '{layer_name}': {python_param.module}.{python_param.layer} is "
                                f"not a layer class: a Python layer must subclass layerforge.Layer "
                                f"(caffe.Layer)")
    return cls


def create_layer(param, phase=0, rng=None):
    """Instantiate the layer a LayerParameter describes (built-in, plug-in or Python)."""
    if param.type != "Python":
        return layer_class(param.type, param.name)(param, phase, rng)
    layer = python_layer_class(param.python_param, param.name)(param, phase, rng)
    layer.reshape_every_forward = True   # pycaffe's contract: reshape before every forward
    return layer
