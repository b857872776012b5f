"""NetSpec: nets written in Python, Caffe's net_spec.

`L.<Type>(*bottoms, **settings)` describes one layer and returns its top (a tuple of tops
with `ntop=N`, the layer itself with `ntop=0`). Assigning a top to a NetSpec attribute names
the blob (and the layer that makes it); `NetSpec.to_proto()` returns the NetParameter with
every layer needed for the assigned tops, in the order they were assigned. Unnamed blobs
and layers are called `<Type><n>`.

Settings go where Caffe puts them: a keyword ending in `param` (`convolution_param=`,
`param=[...]`) is a LayerParameter field; any other keyword is a field of the type's own
parameter message (`num_output=` of InnerProduct goes to inner_product_param) or, failing
that, of the LayerParameter (`name=`, `include=`, `loss_weight=`, `propagate_down=`). Dicts
fill messages, lists fill repeated fields (a single value for a repeated field is a list of
one), enum values are `P.<Type>.<VALUE>` or the value's name. `in_place=True` writes the top
over the first bottom.

layerforge's own keyword: `top=["a", "b"]` names the tops whatever the attribute they are
assigned to, so a layer included in another phase (a TEST data layer, a RUN Input) can make
blobs of the same names as its TRAIN twin. Assign such a layer to any attribute to include it.
"""
from collections import Counter

from google.protobuf.descriptor import FieldDescriptor

from layerforge.proto import is_repeated
from layerforge.proto import layerforge_pb2 as pb


class NetSpecError(ValueError):
    """A layer setting does not fit the schema."""


def _param_fields():
    """Layer type -> its parameter field, from the schema (ConvolutionParameter -> convolution_param)."""
    fields = {}
    for field in pb.LayerParameter.DESCRIPTOR.fields:
        if field.name.endswith("_param") and field.message_type is not None:
            fields[field.message_type.name[:-len("Parameter")]] = field.name
    fields["Deconvolution"] = "convolution_param"
    return fields


_PARAM_FIELDS = _param_fields()


def _assign(message, name, value, where):
    """Set field `name` of `message` from a Python value (dict -> message, list -> repeated)."""
    field = message.DESCRIPTOR.fields_by_name.get(name)
    if field is None:
        raise NetSpecError(f"{where}: {message.DESCRIPTOR.name} has no field '{name}'")
    values = value if isinstance(value, (list, tuple)) else [value]
    if not is_repeated(field) and isinstance(value, (list, tuple)):
        raise NetSpecError(f"{where}: {message.DESCRIPTOR.name}.{name} takes one value, got {value!r}")
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        for item in values:
            if not isinstance(item, dict):
                raise NetSpecError(f"{where}: {message.DESCRIPTOR.name}.{name} is a message; give a "
                                   f"dict of its fields, got {item!r}")
            target = getattr(message, name).add() if is_repeated(field) else getattr(message, name)
            if not item and not is_repeated(field):
                target.SetInParent()
            for key, sub in item.items():
                _assign(target, key, sub, where)
        return
    if field.type == FieldDescriptor.TYPE_ENUM:
        values = [field.enum_type.values_by_name[v].number if isinstance(v, str) else v for v in values]
    try:
        if is_repeated(field):
            getattr(message, name).extend(values)
        else:
            setattr(message, name, values[0])
    except (TypeError, ValueError) as err:
        raise NetSpecError(f"{where}: {message.DESCRIPTOR.name}.{name} = {value!r}: {err}") from None


class Top:
    """One output blob of a layer: `fn` is the layer (a Function), `n` the top's index."""

    def __init__(self, fn, n):
        self.fn, self.n = fn, n

    def to_proto(self):
        """NetParameter of every layer needed to compute this top."""
        return to_proto(self)

    def _to_proto(self, layers, names, autonames):
        self.fn._to_proto(layers, names, autonames)


class Function:
    """One layer: its type, its bottoms (Tops) and its settings as given (`params`)."""

    def __init__(self, type_name, inputs, params):
        for index, bottom in enumerate(inputs):
            if not isinstance(bottom, Top):
                raise TypeError(f"{type_name} input {index} is not a Top (type is {type(bottom)})")
        self.type_name = type_name
        self.inputs = inputs
        self.params = dict(params)
        self.ntop = self.params.pop("ntop", 1)
        self.in_place = self.params.pop("in_place", False)
        self.top_names = self.params.pop("top", None)
        if self.top_names is not None and len(self.top_names) != self.ntop:
            raise NetSpecError(f"{type_name}: top={self.top_names!r} names {len(self.top_names)} "
                               f"top(s) but the layer has ntop={self.ntop}")
        self.tops = tuple(Top(self, n) for n in range(self.ntop))

    def _autoname(self, key, names, autonames):
        if key not in names:
            autonames[self.type_name] += 1
            names[key] = f"{self.type_name}{autonames[self.type_name]}"
        return names[key]

    def _top_name(self, top, names, autonames):
        if self.top_names is not None:
            return self.top_names[top.n]
        return top.fn._autoname(top, names, autonames)

    def _to_proto(self, layers, names, autonames):
        if self in layers:
            return
        bottoms = []
        for bottom in self.inputs:
            bottom._to_proto(layers, names, autonames)
            bottoms.append(layers[bottom.fn].top[bottom.n])
        layer = pb.LayerParameter(type=self.type_name, bottom=bottoms)
        if self.in_place:
            layer.top.extend(bottoms[:self.ntop])
        else:
            layer.top.extend(self._top_name(top, names, autonames) for top in self.tops)
        if self in names or not self.tops:
            layer.name = self._autoname(self, names, autonames)
        else:
            layer.name = names.get(self.tops[0]) or self._top_name(self.tops[0], names, autonames)
        own = _PARAM_FIELDS.get(self.type_name)
        for key, value in self.params.items():
            where = f"L.{self.type_name}({key}=...)"
            if key.endswith("param") or own is None:
                _assign(layer, key, value, where)
            elif key in getattr(layer, own).DESCRIPTOR.fields_by_name:
                _assign(getattr(layer, own), key, value, where)
            else:
                _assign(layer, key, value, where)
        layers[self] = layer


def _layers_for(tops, names):
    layers, autonames = {}, Counter()
    for top in tops:
        members = top if isinstance(top, tuple) else (top,)
        for member in members:
            member._to_proto(layers, names, autonames)
    return pb.NetParameter(layer=list(layers.values()))


def to_proto(*tops):
    """NetParameter of every layer needed to compute `tops` (blobs named automatically)."""
    return _layers_for(tops, {})


class NetSpec:
    """Named tops: `n.conv1 = L.Convolution(n.data, ...)`; `n.to_proto()` is the net."""

    def __init__(self):
        super().__setattr__("tops", {})

    def __setattr__(self, name, value):
        self.tops[name] = value

    def __getattr__(self, name):
        try:
            return self.tops[name]
        except KeyError:
            raise AttributeError(f"NetSpec has no top named '{name}'") from None

    __setitem__ = __setattr__

    def __getitem__(self, name):
        return self.tops[name]

    def to_proto(self):
        names = {value: name for name, value in self.tops.items() if not isinstance(value, tuple)}
        return _layers_for(self.tops.values(), names)


class Layers:
    """`L.<Type>(...)`: a layer of that type (any name; the net checks it exists)."""

    def __getattr__(self, type_name):
        if type_name.startswith("__"):
            raise AttributeError(type_name)

        def layer(*bottoms, **settings):
            fn = Function(type_name, bottoms, settings)
            if fn.ntop == 0:
                return fn
            return fn.tops[0] if fn.ntop == 1 else fn.tops

        layer.__name__ = type_name
        return layer


class Parameters:
    """`P.<Type>.<VALUE>`: an enum value of <Type>Parameter, e.g. `P.Pooling.MAX`."""

    def __getattr__(self, type_name):
        if type_name.startswith("__"):
            raise AttributeError(type_name)
        message = getattr(pb, f"{type_name}Parameter", None)
        if message is None:
            raise AttributeError(f"the schema has no {type_name}Parameter")
        return message


layers = L = Layers()
params = P = Parameters()
