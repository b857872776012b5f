"""Graph of a net's layers (boxes) and blobs (ellipses) in Graphviz DOT, like Caffe's draw_net.

Parameters shared by name (tied weights of twin branches) are dashed blue edges between the
layers that share them. PNG/SVG/PDF need Graphviz's `dot` program; `.dot` text needs nothing.
"""
import os
import shutil
import subprocess

from google.protobuf.descriptor import FieldDescriptor

from layerforge import io
from layerforge.netparam import filter_net, phase_value, upgrade_legacy_inputs
from layerforge.proto import layerforge_pb2 as pb


class DrawError(ValueError):
    """The graph cannot be rendered in the requested format."""


_COLOURS = {"Data": "#c6dbef", "Input": "#c6dbef", "DummyData": "#c6dbef",
            "Convolution": "#a1d99b", "Deconvolution": "#a1d99b", "InnerProduct": "#fdae6b",
            "Pooling": "#fc9272"}


def _quote(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _settings(layer):
    """The scalar fields of the layer's *_param messages, e.g. ['num_output: 20', 'kernel_size: 5']."""
    parts = []
    for descriptor, message in layer.ListFields():
        if descriptor.type != FieldDescriptor.TYPE_MESSAGE or not descriptor.name.endswith("_param"):
            continue
        if descriptor.is_repeated:
            continue
        for field, value in message.ListFields():
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                continue
            values = list(value) if field.is_repeated else [value]
            if field.type == FieldDescriptor.TYPE_ENUM:
                values = [field.enum_type.values_by_number[v].name for v in values]
            parts.append(f"{field.name}: " + ",".join(
                f"{v:g}" if isinstance(v, float) else str(v) for v in values))
    return parts


def net_to_dot(param, phase=None, rankdir="LR"):
    """DOT text for a NetParameter; `phase` (TRAIN/TEST/RUN) keeps only that phase's layers,
    None draws every layer. In-place layers get a fresh node for the blob they rewrite."""
    param = upgrade_legacy_inputs(param)
    if phase is not None:
        param = filter_net(param, pb.NetState(phase=phase_value(phase)))
    lines = [f"digraph {_quote(param.name or 'net')} {{", f"  rankdir={rankdir};",
             '  node [fontname="Helvetica", fontsize=10];', '  edge [fontname="Helvetica", fontsize=9];']
    version, sharers = {}, {}

    def blob_node(name, new=False):
        if new or name not in version:
            version[name] = version.get(name, -1) + 1
            lines.append(f"  {_quote(f'blob:{name}:{version[name]}')} [label={_quote(name)}, "
                         f'shape=ellipse, style=filled, fillcolor="#f0f0f0"];')
        return _quote(f"blob:{name}:{version[name]}")

    for index, layer in enumerate(param.layer):
        node = _quote(f"layer:{index}")
        label = [layer.name, f"({layer.type})"]
        for part in _settings(layer):     # about 48 characters a line, settings kept whole
            if len(label) > 2 and len(label[-1]) + len(part) < 48:
                label[-1] += " " + part
            else:
                label.append(part)
        shared = [spec.name for spec in layer.param if spec.name]
        if shared:
            label.append("params: " + ", ".join(shared))
        for spec_name in shared:
            sharers.setdefault(spec_name, []).append(node)
        if phase is None and layer.include:
            label.append("phase: " + ", ".join(pb.Phase.Name(r.phase) for r in layer.include
                                                 if r.HasField("phase")))
        colour = "#fbb4ae" if "Loss" in layer.type else _COLOURS.get(layer.type, "#e5e5e5")
        lines.append(f"  {node} [label={_quote(chr(10).join(label))}, shape=box, "
                     f'style="filled,rounded", fillcolor="{colour}"];')
        for name in layer.bottom:
            lines.append(f"  {blob_node(name)} -> {node};")
        for name in layer.top:
            lines.append(f"  {node} -> {blob_node(name, new=name in layer.bottom)};")
    pairs = {}
    for spec_name, nodes in sharers.items():
        for other in nodes[1:]:
            if other != nodes[0]:
                pairs.setdefault((nodes[0], other), []).append(spec_name)
    for (first, other), names in pairs.items():
        lines.append(f"  {first} -> {other} [style=dashed, color=blue, fontcolor=blue, dir=none, "
                     f"constraint=false, label={_quote('shares ' + ', '.join(names))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw_net(model, out_path, phase=None, rankdir="LR"):
    """Draw the net in prototxt `model` to `out_path`; the format comes from the extension
    (.dot/.gv text, or anything Graphviz `dot` renders: .png, .svg, .pdf)."""
    text = net_to_dot(io.read_net(model), phase, rankdir)
    out_path = os.fspath(out_path)
    base, extension = os.path.splitext(out_path)
    fmt = extension.lstrip(".").lower()
    if fmt in ("dot", "gv"):
        io.write_atomic(out_path, text.encode())
        return out_path
    if not fmt:
        raise DrawError(f"{out_path}: give the output a file extension (.png, .svg, .pdf or .dot)")
    dot = shutil.which("dot")
    if dot is None:
        io.write_atomic(base + ".dot", text.encode())
        raise DrawError(f"Graphviz 'dot' is not installed, so {out_path} cannot be rendered; wrote "
                        f"{base}.dot instead. Install Graphviz (e.g. apt install graphviz) and run "
                        f"'dot -T{fmt} {base}.dot -o {out_path}', or draw to a .dot file")
    result = subprocess.run([dot, f"-T{fmt}", "-o", out_path], input=text.encode(),
                            capture_output=True, check=False)
    if result.returncode:
        raise DrawError(f"dot failed to render {out_path}: "
                        f"{result.stderr.decode(errors='replace').strip()}")
    return out_path
