"""Graph of a net's layers (boxes) and blobs (ellipses), drawn with pydot and Graphviz, like
Caffe's draw_net (pycaffe's `caffe.draw` uses the same graph).

Labels spell settings as a prototxt does (`bias_term: false`, `pool: MAX`, quoted strings).
Parameters shared by name (tied weights of twin branches) are dashed blue edges between the
layers that share them. rankdir "auto" lays a long net top to bottom (TB) and a short or
wide one left to right (LR). `.dot`/`.gv` text needs nothing; PNG, SVG, PDF need Graphviz's
`dot` program. Only the file asked for is written.
"""
import itertools
import os
import shutil

import pydot
from google.protobuf.descriptor import FieldDescriptor

from layerforge import io
from layerforge.netparam import filter_net, phase_value
from layerforge.proto import is_repeated
from layerforge.proto import layerforge_pb2 as pb
from layerforge.upgrade import upgrade_net


class DrawError(ValueError):
    """The graph cannot be rendered in the requested format."""


TEXT_FORMATS = ("dot", "gv", "raw")
_COLOURS = {"Data": "#c6dbef", "Input": "#c6dbef", "DummyData": "#c6dbef", "MemoryData": "#c6dbef",
            "Convolution": "#a1d99b", "Deconvolution": "#a1d99b", "InnerProduct": "#fdae6b",
            "Pooling": "#fc9272"}


def _prototxt_value(field, value):
    if field.type == FieldDescriptor.TYPE_ENUM:
        return field.enum_type.values_by_number[value].name
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def _settings(layer):
    """The scalar fields of the layer's *_param messages, e.g. ['num_output: 20', 'bias_term: false']."""
    parts = []
    for descriptor, message in layer.ListFields():
        if (descriptor.type != FieldDescriptor.TYPE_MESSAGE or not descriptor.name.endswith("_param")
                or is_repeated(descriptor)):
            continue
        for field, value in message.ListFields():
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                continue
            values = list(value) if is_repeated(field) else [value]
            parts.append(f"{field.name}: " + ",".join(_prototxt_value(field, v) for v in values))
    return parts


def _edge_label(layer):
    """Caffe's edge label on a layer's tops: the batch size of a Data layer, num_output of a learner."""
    if layer.type == "Data":
        return f"Batch {layer.data_param.batch_size}"
    if layer.type in ("Convolution", "Deconvolution"):
        return str(layer.convolution_param.num_output)
    if layer.type == "InnerProduct":
        return str(layer.inner_product_param.num_output)
    return None


def _depths(param):
    """Each layer's position on its longest path from the inputs (1 for a layer without bottoms)."""
    made_at, depths = {}, []
    for layer in param.layer:
        depth = 1 + max((made_at.get(name, 0) for name in layer.bottom), default=0)
        depths.append(depth)
        for name in layer.top:
            made_at[name] = depth
    return depths


def choose_rankdir(param):
    """TB when the longest chain of layers is longer than 6 and than twice the most layers side
    by side; LR otherwise (a short net, or one as wide as it is deep)."""
    depths = _depths(param)
    if not depths:
        return "LR"
    longest = max(depths)
    widest = max(depths.count(d) for d in set(depths))
    return "TB" if longest > max(6, 2 * widest) else "LR"


def net_graph(param, phase=None, rankdir="auto", label_edges=False, display_lrm=False):
    """pydot graph of a NetParameter. `phase` (TRAIN/TEST/RUN) keeps only that phase's layers,
    None draws every layer and names the phase rules. In-place layers get a fresh node for the
    blob they rewrite, so the graph stays acyclic. `label_edges` puts Caffe's batch size /
    num_output on top edges; `display_lrm` adds each parameter's lr_mult to the label."""
    param = upgrade_net(param)
    if phase is not None:
        param = filter_net(param, pb.NetState(phase=phase_value(phase)))
    if rankdir == "auto":
        rankdir = choose_rankdir(param)
    graph = pydot.Dot(param.name or "net", graph_type="digraph", rankdir=rankdir)
    graph.set_node_defaults(fontname="Helvetica", fontsize=10)
    graph.set_edge_defaults(fontname="Helvetica", fontsize=9)
    current, sharers = {}, {}          # blob name -> id of its latest node
    blob_ids = itertools.count()

    def blob_node(name, new=False):
        if new or name not in current:
            current[name] = f"blob_{next(blob_ids)}"
            graph.add_node(pydot.Node(current[name], label=name, shape="ellipse", style="filled",
                                      fillcolor="#f0f0f0"))
        return current[name]

    for index, layer in enumerate(param.layer):
        node = f"layer_{index}"
        label = [layer.name, f"({layer.type})"]
        for part in _settings(layer):     # about 48 characters a line, settings kept whole
            if len(label) > 2 and len(label[-1]) + len(part) < 48:
                label[-1] += " " + part
            else:
                label.append(part)
        shared = [spec.name for spec in layer.param if spec.name]
        if shared:
            label.append("params: " + ", ".join(shared))
        if display_lrm and layer.param:
            label.append("lr mult: " + ", ".join(f"{spec.lr_mult:g}" for spec in layer.param))
        for spec_name in shared:
            sharers.setdefault(spec_name, []).append(node)
        if phase is None and layer.include:
            label.append("phase: " + ", ".join(pb.Phase.Name(r.phase) for r in layer.include
                                                 if r.HasField("phase")))
        colour = "#fbb4ae" if "Loss" in layer.type else _COLOURS.get(layer.type, "#e5e5e5")
        graph.add_node(pydot.Node(node, label="\n".join(label), shape="box", style="filled,rounded",
                                  fillcolor=colour))
        for name in layer.bottom:
            graph.add_edge(pydot.Edge(blob_node(name), node))
        edge_label = _edge_label(layer) if label_edges else None
        for name in layer.top:
            edge = pydot.Edge(node, blob_node(name, new=name in layer.bottom))
            if edge_label:
                edge.set_label(edge_label)
            graph.add_edge(edge)
    pairs = {}
    for spec_name, nodes in sharers.items():
        for other in nodes[1:]:
            if other != nodes[0]:
                pairs.setdefault((nodes[0], other), []).append(spec_name)
    for (first, other), names in pairs.items():
        graph.add_edge(pydot.Edge(first, other, style="dashed", color="blue", fontcolor="blue",
                                  dir="none", constraint="false", label="shares " + ", ".join(names)))
    return graph


def render(graph, fmt):
    """The graph as bytes of format `fmt`: DOT text for dot/gv/raw, else Graphviz's rendering."""
    fmt = fmt.lower()
    if fmt in TEXT_FORMATS:
        return graph.to_string().encode()
    if fmt not in pydot.OUTPUT_FORMATS:
        raise DrawError(f"cannot draw to a .{fmt} file: use .png, .svg, .pdf, .dot or another "
                        f"Graphviz format ({', '.join(sorted(pydot.OUTPUT_FORMATS))})")
    if shutil.which("dot") is None:
        raise DrawError(f"Graphviz's 'dot' program is not installed, so a .{fmt} picture cannot be "
                        f"made: install Graphviz (e.g. apt install graphviz), or draw to a .dot file")
    try:
        return graph.create(format=fmt)
    except (AssertionError, OSError) as err:     # pydot reports dot's failures as AssertionError
        raise DrawError(f"Graphviz could not render .{fmt}: {err}") from None


def draw_net(model, out_path, phase=None, rankdir="auto"):
    """Draw the net in prototxt `model` to `out_path`; the extension picks the format
    (.dot/.gv text, or anything Graphviz renders: .png, .svg, .pdf)."""
    out_path = os.fspath(out_path)
    fmt = os.path.splitext(out_path)[1].lstrip(".")
    if not fmt:
        raise DrawError(f"{out_path}: give the output a file extension (.png, .svg, .pdf or .dot)")
    io.write_atomic(out_path, render(net_graph(io.read_net(model), phase, rankdir), fmt))
    return out_path
