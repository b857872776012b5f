"""Caffe's legacy net formats upgraded to the current one, as Caffe's UpgradeNetAsNeeded does.

Steps, each applied only when the net needs it, in Caffe's order:
V0 -> V1 (`layers { layer { type: "conv" } }`; padding layers folded into the conv/pool
they feed), data transformation fields (scale, mean_file, crop_size, mirror of the V1
data layers) -> transform_param, V1 -> current (`layers { type: CONVOLUTION }` ->
`layer { type: "Convolution" }`, blobs_lr/weight_decay -> ParamSpec), the deprecated
`input:` fields -> an Input layer, and BatchNorm's three declared parameters frozen.
The same code serves prototxt nets and binary weights (.caffemodel).
"""
import logging
from pathlib import Path

from layerforge import io
from layerforge.io import ConfigError
from layerforge.proto import layerforge_pb2 as pb

log = logging.getLogger("layerforge")

V1 = pb.V1LayerParameter

# V0's layer type strings -> V1's enum (Caffe's UpgradeV0LayerType).
V0_TYPES = {
    "accuracy": V1.ACCURACY, "bnll": V1.BNLL, "concat": V1.CONCAT, "conv": V1.CONVOLUTION,
    "data": V1.DATA, "dropout": V1.DROPOUT, "euclidean_loss": V1.EUCLIDEAN_LOSS,
    "flatten": V1.FLATTEN, "hdf5_data": V1.HDF5_DATA, "hdf5_output": V1.HDF5_OUTPUT,
    "im2col": V1.IM2COL, "images": V1.IMAGE_DATA, "infogain_loss": V1.INFOGAIN_LOSS,
    "innerproduct": V1.INNER_PRODUCT, "lrn": V1.LRN,
    "multinomial_logistic_loss": V1.MULTINOMIAL_LOGISTIC_LOSS, "pool": V1.POOLING,
    "relu": V1.RELU, "sigmoid": V1.SIGMOID, "softmax": V1.SOFTMAX, "softmax_loss": V1.SOFTMAX_LOSS,
    "split": V1.SPLIT, "tanh": V1.TANH, "window_data": V1.WINDOW_DATA,
}

# V1's enum -> the current type name (Caffe's UpgradeV1LayerType).
V1_TYPES = {
    V1.NONE: "", V1.ABSVAL: "AbsVal", V1.ACCURACY: "Accuracy", V1.ARGMAX: "ArgMax",
    V1.BNLL: "BNLL", V1.CONCAT: "Concat", V1.CONTRASTIVE_LOSS: "ContrastiveLoss",
    V1.CONVOLUTION: "Convolution", V1.DECONVOLUTION: "Deconvolution", V1.DATA: "Data",
    V1.DROPOUT: "Dropout", V1.DUMMY_DATA: "DummyData", V1.EUCLIDEAN_LOSS: "EuclideanLoss",
    V1.ELTWISE: "Eltwise", V1.EXP: "Exp", V1.FLATTEN: "Flatten", V1.HDF5_DATA: "HDF5Data",
    V1.HDF5_OUTPUT: "HDF5Output", V1.HINGE_LOSS: "HingeLoss", V1.IM2COL: "Im2col",
    V1.IMAGE_DATA: "ImageData", V1.INFOGAIN_LOSS: "InfogainLoss",
    V1.INNER_PRODUCT: "InnerProduct", V1.LRN: "LRN", V1.MEMORY_DATA: "MemoryData",
    V1.MULTINOMIAL_LOGISTIC_LOSS: "MultinomialLogisticLoss", V1.MVN: "MVN",
    V1.POOLING: "Pooling", V1.POWER: "Power", V1.RELU: "ReLU", V1.SIGMOID: "Sigmoid",
    V1.SIGMOID_CROSS_ENTROPY_LOSS: "SigmoidCrossEntropyLoss", V1.SILENCE: "Silence",
    V1.SOFTMAX: "Softmax", V1.SOFTMAX_LOSS: "SoftmaxWithLoss", V1.SPLIT: "Split",
    V1.SLICE: "Slice", V1.TANH: "TanH", V1.WINDOW_DATA: "WindowData", V1.THRESHOLD: "Threshold",
}

_CONV_IP = {"conv": "convolution_param", "innerproduct": "inner_product_param"}
_CONV_POOL = {"conv": "convolution_param", "pool": "pooling_param"}
_DATA = {"data": "data_param", "hdf5_data": "hdf5_data_param", "images": "image_data_param",
         "window_data": "window_data_param"}
_ANY = None   # the field applies to every layer type (transform_param)

# V0 field -> (V1 field name, {V0 type: V1 parameter message} or _ANY for transform_param).
V0_FIELDS = {
    "num_output": ("num_output", _CONV_IP),
    "biasterm": ("bias_term", _CONV_IP),
    "weight_filler": ("weight_filler", _CONV_IP),
    "bias_filler": ("bias_filler", _CONV_IP),
    "pad": ("pad", _CONV_POOL),
    "kernelsize": ("kernel_size", _CONV_POOL),
    "group": ("group", {"conv": "convolution_param"}),
    "stride": ("stride", _CONV_POOL),
    "pool": ("pool", {"pool": "pooling_param"}),
    "dropout_ratio": ("dropout_ratio", {"dropout": "dropout_param"}),
    "local_size": ("local_size", {"lrn": "lrn_param"}),
    "alpha": ("alpha", {"lrn": "lrn_param"}),
    "beta": ("beta", {"lrn": "lrn_param"}),
    "k": ("k", {"lrn": "lrn_param"}),
    "source": ("source", {**_DATA, "infogain_loss": "infogain_loss_param"}),
    "batchsize": ("batch_size", _DATA),
    "rand_skip": ("rand_skip", {"data": "data_param", "images": "image_data_param"}),
    "shuffle_images": ("shuffle", {"images": "image_data_param"}),
    "new_height": ("new_height", {"images": "image_data_param"}),
    "new_width": ("new_width", {"images": "image_data_param"}),
    "concat_dim": ("concat_dim", {"concat": "concat_param"}),
    "det_fg_threshold": ("fg_threshold", {"window_data": "window_data_param"}),
    "det_bg_threshold": ("bg_threshold", {"window_data": "window_data_param"}),
    "det_fg_fraction": ("fg_fraction", {"window_data": "window_data_param"}),
    "det_context_pad": ("context_pad", {"window_data": "window_data_param"}),
    "det_crop_mode": ("crop_mode", {"window_data": "window_data_param"}),
    "scale": ("scale", _ANY),
    "meanfile": ("mean_file", _ANY),
    "cropsize": ("crop_size", _ANY),
    "mirror": ("mirror", _ANY),
}
_V0_COPIED = {"name", "type", "blobs", "blobs_lr", "weight_decay", "hdf5_output_param"}

# V1 data layers whose deprecated transformation fields move to transform_param.
_TRANSFORMED = {V1.DATA: "data_param", V1.IMAGE_DATA: "image_data_param",
                V1.WINDOW_DATA: "window_data_param"}
_TRANSFORM_FIELDS = ("scale", "mean_file", "crop_size", "mirror")


def needs_upgrade(net):
    """Does NetParameter `net` use any legacy form that upgrade_net rewrites?"""
    return bool(net.layers or net.input or _frozen_batch_norms(net))


def upgrade_net(net, source="<NetParameter>"):
    """A current-format copy of NetParameter `net` (or `net` itself when nothing is old).
    Logs one line naming `source` and the steps applied; problems Caffe only warns
    about are in that line too, structural ones raise ConfigError."""
    if not needs_upgrade(net):
        return net
    upgraded, steps, problems = pb.NetParameter(), [], []
    upgraded.CopyFrom(net)
    if any(layer.HasField("layer") for layer in upgraded.layers):
        _upgrade_v0(upgraded, source, problems)
        steps.append("V0 layers")
    if _upgrade_data_transformation(upgraded):
        steps.append("data transformation fields")
    if upgraded.layers:
        _upgrade_v1(upgraded, source, problems)
        steps.append("V1 layers")
    if upgraded.input:
        _upgrade_input(upgraded)
        steps.append("input fields")
    if _frozen_batch_norms(upgraded):
        for layer in _frozen_batch_norms(upgraded):
            for spec in layer.param:
                spec.lr_mult = spec.decay_mult = 0
        steps.append("BatchNorm parameters")
    note = f" (not carried over: {'; '.join(problems)})" if problems else ""
    log.log(logging.WARNING if problems else logging.INFO,
            "%s: upgraded from Caffe's legacy format: %s%s", source, ", ".join(steps), note)
    return upgraded


def upgrade_file(source, out):
    """Write the upgraded form of a net file to `out`, as Caffe's upgrade_net_proto_text and
    upgrade_net_proto_binary do: a .caffemodel is read and written binary, anything else as
    prototxt text. True when something was upgraded (the file is written either way)."""
    if Path(source).suffix == ".caffemodel":
        net = io.read_binary(source, pb.NetParameter())
        upgraded = upgrade_net(net, str(source))
        io.write_atomic(out, upgraded.SerializeToString())
    else:
        net = io.parse_text(io.read_text_file(source), pb.NetParameter(), str(source))
        upgraded = upgrade_net(net, str(source))
        io.write_text(upgraded, out)
    return upgraded is not net


# ---------------------------------------------------------------- V0 -> V1

def _upgrade_v0(net, source, problems):
    _fold_padding_layers(net, source)
    for connection in net.layers:
        if connection.HasField("layer"):
            _upgrade_v0_layer(connection, source, problems)


def _fold_padding_layers(net, source):
    """Drop V0 `padding` layers; the conv or pool layer reading one gets its pad and bottom."""
    producer = {name: None for name in net.input}
    for connection in net.layers:
        v0 = connection.layer
        for j, blob in enumerate(connection.bottom):
            if blob not in producer:
                raise ConfigError(f"{source}: layer '{v0.name}': unknown bottom '{blob}'")
            padding = producer[blob]
            if padding is None or padding.layer.type != "padding":
                continue
            if v0.type not in ("conv", "pool") or len(connection.bottom) != 1 \
                    or len(padding.bottom) != 1 or len(padding.top) != 1:
                raise ConfigError(f"{source}: padding layer '{padding.layer.name}' must feed one conv or "
                                  f"pool layer with one bottom (it feeds '{v0.name}', type '{v0.type}')")
            v0.pad = padding.layer.pad
            connection.bottom[j] = padding.bottom[0]
        for blob in connection.top:
            producer[blob] = connection
    net.layers.extend([c for c in _take(net.layers) if c.layer.type != "padding"])


def _upgrade_v0_layer(connection, source, problems):
    v0 = pb.V0LayerParameter()
    v0.CopyFrom(connection.layer)
    connection.ClearField("layer")
    if v0.HasField("name"):
        connection.name = v0.name
    if v0.HasField("type"):
        if v0.type not in V0_TYPES:
            raise ConfigError(f"{source}: layer '{v0.name}': unknown V0 layer type '{v0.type}'; "
                              f"known: {', '.join(sorted(V0_TYPES))}")
        connection.type = V0_TYPES[v0.type]
    connection.blobs.extend(v0.blobs)
    connection.blobs_lr.extend(v0.blobs_lr)
    connection.weight_decay.extend(v0.weight_decay)
    if v0.HasField("hdf5_output_param"):
        if v0.type == "hdf5_output":
            connection.hdf5_output_param.CopyFrom(v0.hdf5_output_param)
        else:
            problems.append(f"layer '{v0.name}': hdf5_output_param for type '{v0.type}'")
    for field, value in v0.ListFields():
        if field.name in _V0_COPIED:
            continue
        if field.name not in V0_FIELDS:
            problems.append(f"layer '{v0.name}': {field.name}")
            continue
        name, owners = V0_FIELDS[field.name]
        if owners is _ANY:
            message = connection.transform_param
        elif v0.type in owners:
            message = getattr(connection, owners[v0.type])
        else:
            problems.append(f"layer '{v0.name}': {field.name} for type '{v0.type}'")
            continue
        _assign(message, name, value)


def _assign(message, name, value):
    """message.name = value, for a singular, repeated (appended) or message field."""
    current = getattr(message, name)
    if message.DESCRIPTOR.fields_by_name[name].message_type is not None:
        current.CopyFrom(value)
    elif hasattr(current, "append"):
        current.append(value)
    else:
        setattr(message, name, value)


def _take(repeated):
    """Detached copies of a repeated message field's items; the field is left empty."""
    items = []
    for item in repeated:
        copy = type(item)()
        copy.CopyFrom(item)
        items.append(copy)
    del repeated[:]
    return items


# ---------------------------------------------------------------- V1 -> current

def _upgrade_data_transformation(net):
    """Move scale / mean_file / crop_size / mirror of V1 data layers to transform_param."""
    moved = False
    for layer in net.layers:
        if layer.type not in _TRANSFORMED:
            continue
        param = getattr(layer, _TRANSFORMED[layer.type])
        for name in _TRANSFORM_FIELDS:
            if param.HasField(name):
                setattr(layer.transform_param, name, getattr(param, name))
                param.ClearField(name)
                moved = True
    return moved


def _upgrade_v1(net, source, problems):
    if net.layer:
        raise ConfigError(f"{source}: holds both `layer` and legacy `layers` entries; "
                          f"Caffe refuses to upgrade such a net, and so does layerforge")
    for v1 in _take(net.layers):
        _upgrade_v1_layer(v1, net.layer.add(), problems)


def _upgrade_v1_layer(v1, layer, problems):
    layer.bottom.extend(v1.bottom)
    layer.top.extend(v1.top)
    if v1.HasField("name"):
        layer.name = v1.name
    layer.include.extend(v1.include)
    layer.exclude.extend(v1.exclude)
    if v1.HasField("type"):
        layer.type = V1_TYPES[v1.type]
    layer.blobs.extend(v1.blobs)
    specs = max(len(v1.param), len(v1.blob_share_mode), len(v1.blobs_lr), len(v1.weight_decay))
    for i in range(specs):
        spec = layer.param.add()
        if i < len(v1.param):
            spec.name = v1.param[i]
        if i < len(v1.blob_share_mode):
            spec.share_mode = v1.blob_share_mode[i]   # same numbers: STRICT 0, PERMISSIVE 1
        if i < len(v1.blobs_lr):
            spec.lr_mult = v1.blobs_lr[i]
        if i < len(v1.weight_decay):
            spec.decay_mult = v1.weight_decay[i]
    layer.loss_weight.extend(v1.loss_weight)
    for field, value in v1.ListFields():
        if field.name.endswith("_param"):
            getattr(layer, field.name).CopyFrom(value)
    if v1.HasField("layer"):
        problems.append(f"layer '{v1.name}': a V0 layer inside a V1 net, ignored")


# ---------------------------------------------------------------- input fields, BatchNorm

def _upgrade_input(net):
    """`input:` + `input_shape` / `input_dim` -> an Input layer first in the net. Inputs with
    no shape (old weights files) are simply dropped, as in Caffe."""
    if net.input_shape or net.input_dim:
        layer = pb.LayerParameter(name="input", type="Input", top=list(net.input))
        for i in range(len(net.input)):
            if net.input_shape:
                layer.input_param.shape.add().CopyFrom(net.input_shape[i])
            else:
                layer.input_param.shape.add(dim=net.input_dim[4 * i:4 * i + 4])
        net.layer.extend([layer] + _take(net.layer))
    del net.input[:], net.input_shape[:], net.input_dim[:]


def _frozen_batch_norms(net):
    """BatchNorm layers declaring three ParamSpecs (Caffe's old definition) that still learn."""
    return [layer for layer in net.layer if layer.type == "BatchNorm" and len(layer.param) == 3
            and any(spec.lr_mult != 0 or spec.decay_mult != 0 for spec in layer.param)]
