"""pycaffe's caffe.draw, with Caffe's signatures, over layerforge's graph (tools/draw.py).

`caffe_net` is a NetParameter; `phase` None draws every layer. Formats are Graphviz's
(png, svg, pdf, ...) plus dot/gv/raw for the DOT text.
"""
import os

from layerforge import io
from layerforge.tools.draw import net_graph, render


def get_pydot_graph(caffe_net, rankdir, label_edges=True, phase=None, display_lrm=False):
    """The net as a pydot.Dot graph."""
    return net_graph(caffe_net, phase, rankdir, label_edges, display_lrm)


def draw_net(caffe_net, rankdir, ext="png", phase=None, display_lrm=False):
    """The picture of the net as bytes in format `ext`."""
    return render(get_pydot_graph(caffe_net, rankdir, phase=phase, display_lrm=display_lrm), ext)


def draw_net_to_file(caffe_net, filename, rankdir="LR", phase=None, display_lrm=False):
    """Draw the net to `filename`; its extension picks the format (.raw/.dot: DOT text)."""
    ext = os.path.splitext(os.fspath(filename))[1].lstrip(".")
    io.write_atomic(filename, draw_net(caffe_net, rankdir, ext, phase, display_lrm))
