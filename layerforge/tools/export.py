"""ONNX export of a net in phase RUN (`layerforge export --onnx`), built with the onnx
package's helpers and checked by its checker.

Each layer type has one converter from the layerforge layer (its parameters and blobs) to
ONNX nodes. The graph takes what `Net.forward` takes: an Input layer's transform_param
(mean, scale) becomes the graph's first nodes, so raw pixels go in. The batch axis is left
free ("N"). A layer with no ONNX mapping is an error that names it. Opset 13.
"""
import numpy as np

from layerforge.netparam import NetError

OPSET = 13
FLT_MAX = float(np.finfo(np.float32).max)


class ExportError(ValueError):
    """The net has a layer (or a setting) that has no ONNX equivalent."""


_CONVERTERS = {}


def converts(*type_names):
    """Register `convert(graph, layer, bottoms, tops, bottom_names, top_names)` for these
    layer types: it adds the nodes computing the tops' ONNX values (`tops`, names given) from
    the bottoms' (`bottoms`); the blob names give the shapes. It may return other names for
    the tops' values (an Input whose graph input keeps the blob's name)."""
    def register(convert):
        for name in type_names:
            _CONVERTERS[name] = convert
        return convert
    return register


class Graph:
    """Nodes and initializers of the graph being built, with blob shapes from the net."""

    def __init__(self, net):
        self.net, self.nodes, self.initializers, self.inputs = net, [], [], []
        self._count = 0

    def name(self, base):
        self._count += 1
        return f"{base}__{self._count}"

    def const(self, base, array, dtype=np.float32):
        from onnx import numpy_helper

        name = self.name(base)
        self.initializers.append(numpy_helper.from_array(np.asarray(array, dtype), name))
        return name

    def node(self, op, inputs, outputs, **attributes):
        from onnx import helper

        outputs = [outputs] if isinstance(outputs, str) else list(outputs)
        self.nodes.append(helper.make_node(op, list(inputs), outputs, **attributes))
        return outputs[0]

    def shape(self, blob):
        """The layerforge shape of a blob (its batch size is the net's, not fixed in ONNX)."""
        return self.net.blobs[blob].shape

    def reshape(self, value, shape, out, keep_batch=True):
        """Reshape `value` to `shape`; dimension 0 copied from the input (any batch) if asked."""
        dims = [0, *shape[1:]] if keep_batch else list(shape)
        return self.node("Reshape", [value, self.const("shape", dims, np.int64)], out)


def export_onnx(net, path):
    """Write `net` (a Net in phase RUN, weights loaded) to an ONNX file at `path`; returns the
    onnx ModelProto. Graph inputs are the net's inputs, outputs its outputs."""
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError:
        raise ExportError("export --onnx needs the onnx package: pip install 'layerforge[onnx]'") from None

    net.forward()   # settles every blob's shape (e.g. a Decode top's class count) on the inputs held
    graph = Graph(net)
    names = _value_names(net)
    current = {}
    for layer_name, layer in net.layers.items():
        convert = _CONVERTERS.get(layer.type_name)
        if convert is None:
            raise ExportError(f"layer '{layer_name}' ({layer.type_name}) has no ONNX mapping; the "
                              f"export knows {', '.join(sorted(_CONVERTERS))}")
        bottoms = [current[name] for name in net.bottom_names[layer_name]]
        tops = [names.pop((layer_name, i)) for i in range(len(net.top_names[layer_name]))]
        made = convert(graph, layer, bottoms, tops, net.bottom_names[layer_name], net.top_names[layer_name])
        current.update(zip(net.top_names[layer_name], made or tops))
    outputs = [helper.make_tensor_value_info(current[name], TensorProto.FLOAT,
                                             ["N", *net.blobs[name].shape[1:]]) for name in net.outputs]
    model = helper.make_model(
        helper.make_graph(graph.nodes, net.name or "layerforge", graph.inputs, outputs, graph.initializers),
        opset_imports=[helper.make_opsetid("", OPSET)], producer_name="layerforge")
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return model


def _value_names(net):
    """{(layer, top index): ONNX value name}: a blob written by several layers (in place) is
    one ONNX value per write; the last write keeps the blob's name, so outputs keep theirs."""
    writes = [(layer, i, blob) for layer in net.layers for i, blob in enumerate(net.top_names[layer])]
    last = {blob: (layer, i) for layer, i, blob in writes}
    return {(layer, i): blob if last[blob] == (layer, i) else f"{blob}@{layer}" for layer, i, blob in writes}


# ---------------------------------------------------------------- inputs

@converts("Input")
def _input(graph, layer, bottoms, tops, bottom_names, top_names):
    """Graph inputs named as the blobs; a transform_param's nodes follow the first."""
    from onnx import TensorProto, helper

    made = list(tops)
    for index, blob in enumerate(top_names):
        graph.inputs.append(helper.make_tensor_value_info(tops[index], TensorProto.FLOAT,
                                                          ["N", *graph.shape(blob)[1:]]))
        if index == 0 and layer.param.HasField("transform_param"):
            made[0] = _input_transform(graph, layer, tops[0], graph.shape(blob)[1:])
    return made


def _input_transform(graph, layer, raw, item_shape):
    """transform_param's mean subtraction and scaling as nodes (Net.forward applies them too);
    returns the transformed value's name."""
    from layerforge.data.transform import DataTransformer

    if layer.param.transform_param.crop_size:
        raise ExportError(f"layer '{layer.name}' (Input): transform_param.crop_size has no ONNX "
                          f"mapping here; crop the images before feeding them")
    transform = DataTransformer(layer.param.transform_param, 0, item_shape)
    value = raw
    if transform.mean is not None:
        value = graph.node("Sub", [value, graph.const("mean", transform.mean)], graph.name("centred"))
    return graph.node("Mul", [value, graph.const("scale", transform.scale)], graph.name(f"{raw}_transformed"))


# ---------------------------------------------------------------- vision

@converts("Convolution", "Deconvolution")
def _convolution(graph, layer, bottoms, tops, bottom_names, top_names):
    if layer.axis != 1 or len(layer.kernel) != 2:
        raise ExportError(f"layer '{layer.name}' ({layer.type_name}): only 2-D convolution over axis 1 "
                          f"has an ONNX mapping here")
    weights = [graph.const(f"{layer.name}_w", layer.blobs[0].data)]
    if len(layer.blobs) > 1:
        weights.append(graph.const(f"{layer.name}_b", layer.blobs[1].data))
    op = "Conv" if layer.type_name == "Convolution" else "ConvTranspose"
    for bottom, top in zip(bottoms, tops):
        graph.node(op, [bottom, *weights], top, kernel_shape=list(layer.kernel),
                   strides=list(layer.stride), pads=list(layer.pad) * 2,
                   dilations=list(layer.dilation), group=layer.group)


@converts("Pooling")
def _pooling(graph, layer, bottoms, tops, bottom_names, top_names):
    from layerforge.proto import layerforge_pb2 as pb

    pp = layer.param.pooling_param
    if len(tops) > 1:
        raise ExportError(f"layer '{layer.name}' (Pooling): the argmax top has no ONNX mapping")
    maximum = pp.pool == pb.PoolingParameter.MAX
    if pp.global_pooling:
        graph.node("GlobalMaxPool" if maximum else "GlobalAveragePool", bottoms, tops[0])
        return
    # Caffe's output size (ceil, last window inside image + left pad) as explicit end padding.
    size, pooled = graph.shape(bottom_names[0])[2:], graph.shape(top_names[0])[2:]
    end = [(p - 1) * s + k - n - pad for n, p, s, k, pad in
           zip(size, pooled, layer.stride, layer.kernel, layer.pad)]
    attributes = dict(kernel_shape=list(layer.kernel), strides=list(layer.stride),
                      pads=[*layer.pad, *(max(e, 0) for e in end)])
    if maximum:
        graph.node("MaxPool", bottoms, tops[0], **attributes)
        return
    if any(layer.pad) and any(e > pad for e, pad in zip(end, layer.pad)):
        raise ExportError(f"layer '{layer.name}' (Pooling): AVE pooling with pad and a last window "
                          f"past the padding divides as no ONNX AveragePool does")
    # Caffe divides by the window clipped to the padded image: padding counts, the rest not.
    graph.node("AveragePool", bottoms, tops[0], count_include_pad=int(any(layer.pad)), **attributes)


@converts("LRN")
def _lrn(graph, layer, bottoms, tops, bottom_names, top_names):
    from layerforge.proto import layerforge_pb2 as pb

    p = layer.param.lrn_param
    if p.norm_region != pb.LRNParameter.ACROSS_CHANNELS:
        raise ExportError(f"layer '{layer.name}' (LRN): WITHIN_CHANNEL has no ONNX mapping")
    graph.node("LRN", bottoms, tops[0], size=p.local_size, alpha=p.alpha, beta=p.beta, bias=p.k)


# ---------------------------------------------------------------- common

@converts("InnerProduct")
def _inner_product(graph, layer, bottoms, tops, bottom_names, top_names):
    flat = graph.node("Flatten", bottoms, graph.name(f"{layer.name}_flat"), axis=layer.axis)
    inputs = [flat, graph.const(f"{layer.name}_w", layer.blobs[0].data)]
    if layer.bias_term:
        inputs.append(graph.const(f"{layer.name}_b", layer.blobs[1].data))
    if layer.axis == 1:
        graph.node("Gemm", inputs, tops[0], transB=int(not layer.transpose))
    else:
        product = graph.node("Gemm", inputs, graph.name(layer.name), transB=int(not layer.transpose))
        graph.reshape(product, graph.shape(top_names[0]), tops[0])


@converts("Flatten", "Reshape")
def _reshape(graph, layer, bottoms, tops, bottom_names, top_names):
    shape, before = graph.shape(top_names[0]), graph.shape(bottom_names[0])
    graph.reshape(bottoms[0], shape, tops[0], keep_batch=bool(shape) and shape[0] == before[0])


@converts("Concat")
def _concat(graph, layer, bottoms, tops, bottom_names, top_names):
    graph.node("Concat", bottoms, tops[0], axis=layer.axis)


@converts("Slice")
def _slice(graph, layer, bottoms, tops, bottom_names, top_names):
    sizes = [end - start for start, end in layer.bounds]
    graph.node("Split", [bottoms[0], graph.const("split", sizes, np.int64)], tops, axis=layer.axis)


@converts("Split")
def _split(graph, layer, bottoms, tops, bottom_names, top_names):
    for top in tops:
        graph.node("Identity", bottoms, top)


@converts("Dropout")
def _dropout(graph, layer, bottoms, tops, bottom_names, top_names):
    """Caffe scales in training, so at inference Dropout is the identity."""
    graph.node("Identity", bottoms, tops[0])


@converts("Silence")
def _silence(graph, layer, bottoms, tops, bottom_names, top_names):
    """No tops, nothing to compute."""


@converts("Eltwise")
def _eltwise(graph, layer, bottoms, tops, bottom_names, top_names):
    from layerforge.proto import layerforge_pb2 as pb

    if layer.operation == pb.EltwiseParameter.SUM:
        terms = [b if c == 1 else graph.node("Mul", [b, graph.const("coeff", c)], graph.name("term"))
                 for b, c in zip(bottoms, layer.coeff)]
        graph.node("Sum", terms, tops[0])
    elif layer.operation == pb.EltwiseParameter.MAX:
        graph.node("Max", bottoms, tops[0])
    else:
        value = bottoms[0]
        for i, bottom in enumerate(bottoms[1:], 2):
            value = graph.node("Mul", [value, bottom], tops[0] if i == len(bottoms) else graph.name("product"))


@converts("Scale", "Bias")
def _scale_bias(graph, layer, bottoms, tops, bottom_names, top_names):
    """x * scale (+ bias) or x + bias, the operand (a bottom or a parameter) spanning axes
    axis.. of x and broadcast over the rest. With a scale bottom, the bias is the layer's
    only parameter."""
    shape = graph.shape(bottom_names[0])
    param = layer.param.scale_param if layer.type_name == "Scale" else layer.param.bias_param
    axis = param.axis + len(shape) if param.axis < 0 else param.axis
    operand_shape = graph.shape(bottom_names[1]) if len(bottoms) > 1 else layer.blobs[0].shape
    broadcast = list(operand_shape) + [1] * (len(shape) - axis - len(operand_shape))
    if len(bottoms) > 1:
        operand = graph.reshape(bottoms[1], broadcast, graph.name("operand"), keep_batch=False)
    else:
        operand = graph.const(f"{layer.name}_{layer.type_name.lower()}", layer.blobs[0].data.reshape(broadcast))
    if layer.type_name == "Bias":
        graph.node("Add", [bottoms[0], operand], tops[0])
    elif layer.bias_term:
        scaled = graph.node("Mul", [bottoms[0], operand], graph.name("scaled"))
        bias = graph.const(f"{layer.name}_bias", layer.blobs[-1].data.reshape(broadcast))
        graph.node("Add", [scaled, bias], tops[0])
    else:
        graph.node("Mul", [bottoms[0], operand], tops[0])


@converts("BatchNorm")
def _batch_norm(graph, layer, bottoms, tops, bottom_names, top_names):
    if not layer.use_global_stats:
        raise ExportError(f"layer '{layer.name}' (BatchNorm): use_global_stats false normalises by "
                          f"the batch's own statistics, which has no ONNX mapping")
    factor = layer.blobs[2].data.reshape(-1)[0]
    factor = 0.0 if factor == 0 else 1.0 / factor
    channels = layer.channels
    graph.node("BatchNormalization",
               [bottoms[0], graph.const("ones", np.ones(channels)), graph.const("zeros", np.zeros(channels)),
                graph.const(f"{layer.name}_mean", layer.blobs[0].data * factor),
                graph.const(f"{layer.name}_var", layer.blobs[1].data * factor)],
               tops[0], epsilon=layer.eps)


# ---------------------------------------------------------------- activations

def _simple(op, **attributes):
    def convert(graph, layer, bottoms, tops, bottom_names, top_names):
        graph.node(op, bottoms, tops[0], **attributes)
    return convert


converts("Sigmoid")(_simple("Sigmoid"))
converts("TanH")(_simple("Tanh"))
converts("AbsVal")(_simple("Abs"))
converts("BNLL")(_simple("Softplus"))


@converts("ReLU")
def _relu(graph, layer, bottoms, tops, bottom_names, top_names):
    slope = layer.param.relu_param.negative_slope
    if slope:
        graph.node("LeakyRelu", bottoms, tops[0], alpha=slope)
    else:
        graph.node("Relu", bottoms, tops[0])


@converts("ELU")
def _elu(graph, layer, bottoms, tops, bottom_names, top_names):
    graph.node("Elu", bottoms, tops[0], alpha=layer.param.elu_param.alpha)


@converts("PReLU")
def _prelu(graph, layer, bottoms, tops, bottom_names, top_names):
    slope = layer.blobs[0].data
    rank = len(graph.shape(bottom_names[0]))
    slope = slope.reshape(slope.shape + (1,) * (rank - 2)) if slope.size > 1 else slope.reshape(())
    graph.node("PRelu", [bottoms[0], graph.const(f"{layer.name}_slope", slope)], tops[0])


@converts("Power")
def _power(graph, layer, bottoms, tops, bottom_names, top_names):
    """(shift + scale * x) ^ power, with only the nodes that change something."""
    p = layer.param.power_param
    steps = [("Mul", p.scale, 1.0), ("Add", p.shift, 0.0), ("Pow", p.power, 1.0)]
    steps = [(op, value) for op, value, identity in steps if value != identity] or [("Identity", None)]
    value = bottoms[0]
    for i, (op, operand) in enumerate(steps):
        out = tops[0] if i == len(steps) - 1 else graph.name(layer.name)
        value = graph.node(op, [value] + ([graph.const(op.lower(), operand)] if operand is not None else []), out)


@converts("Softmax")
def _softmax(graph, layer, bottoms, tops, bottom_names, top_names):
    axis = layer.param.softmax_param.axis
    graph.node("Softmax", bottoms, tops[0], axis=axis)


# ---------------------------------------------------------------- Decode

@converts("Decode")
def _decode(graph, layer, bottoms, tops, bottom_names, top_names):
    """Squared distance of each encoding to each class centroid; classes never seen (or
    ignored) at FLT_MAX, as the layer gives them."""
    if layer.knn:
        raise ExportError(f"layer '{layer.name}' (Decode): target KNN keeps encodings, not centroids; "
                          f"it has no ONNX mapping")
    if len(tops) > 1:
        raise ExportError(f"layer '{layer.name}' (Decode): the centroids top has no ONNX mapping")
    centroids = layer.blobs[0].data
    unknown = np.zeros(len(centroids), np.float32)
    unknown[layer.blobs[1].data == 0] = FLT_MAX
    ignored = layer.ignore[(layer.ignore >= 0) & (layer.ignore < len(centroids))]
    unknown[ignored] = FLT_MAX
    flat = graph.node("Flatten", bottoms[:1], graph.name("encodings"), axis=1)
    rows = graph.node("Unsqueeze", [flat, graph.const("axis", [1], np.int64)], graph.name("rows"))
    difference = graph.node("Sub", [rows, graph.const(f"{layer.name}_centroids", centroids[None])],
                            graph.name("difference"))
    square = graph.node("Mul", [difference, difference], graph.name("square"))
    distances = graph.node("ReduceSum", [square, graph.const("axis", [2], np.int64)],
                           graph.name("distances"), keepdims=0)
    graph.node("Max", [distances, graph.const(f"{layer.name}_unknown", unknown)], tops[0])


def export_net(model, weights, path):
    """Build the RUN net of `model` with `weights` and export it (export_onnx)."""
    from layerforge.net import Net

    net = Net(model, "RUN", weights=weights)
    if not net.inputs:
        raise NetError(f"{model}: the net has no Input layer in phase RUN; ONNX needs its inputs")
    return export_onnx(net, path)
