"""`layerforge draw` and tools/draw.py: the pydot graph (twins, in-place layers, phase rules,
prototxt spellings), rankdir auto, and files: only the one asked for is written."""
import os
import re
import shutil
from pathlib import Path

import pytest

from layerforge.cli import main
from layerforge.io import read_net
from layerforge.tools import draw
from layerforge.tools.draw import DrawError, choose_rankdir, net_graph

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")

TWINS = """
name: "twins"
layer { name: "in" type: "Input" top: "a" top: "b" input_param { shape { dim: 2 dim: 3 } } }
layer { name: "fa" type: "InnerProduct" bottom: "a" top: "fa"
        param { name: "w" } param { name: "bias" } inner_product_param { num_output: 2 bias_term: true } }
layer { name: "fb" type: "InnerProduct" bottom: "b" top: "fb"
        param { name: "w" } param { name: "bias" } inner_product_param { num_output: 2 bias_term: true } }
layer { name: "relu" type: "ReLU" bottom: "fb" top: "fb" }
layer { name: "test_only" type: "ReLU" bottom: "fa" top: "ta" include { phase: TEST } }
"""


@pytest.fixture
def twins(tmp_path):
    path = tmp_path / "twins.prototxt"
    path.write_text(TWINS)
    return path


def test_dot_text_with_twins_shared_params_and_in_place(twins, tmp_path, capsys):
    out = tmp_path / "twins.dot"
    assert main(["draw", str(twins), str(out), "--phase", "TRAIN"]) == 0
    assert capsys.readouterr().out.strip() == f"Wrote {out}"
    dot = out.read_text()
    assert dot.startswith("digraph twins {") and dot.rstrip().endswith("}")
    assert re.search(r'layer_1 -> layer_2 \[.*style=dashed.*label="shares w, bias"', dot)
    assert "params: w, bias" in dot and "num_output: 2 bias_term: true" in dot
    assert "True" not in dot                                   # prototxt spelling of bools
    # The in-place ReLU reads fb and writes a second node labelled fb: the graph stays acyclic.
    reads = re.search(r"(blob_\d+) -> layer_3;", dot).group(1)
    writes = re.search(r"layer_3 -> (blob_\d+);", dot).group(1)
    assert reads != writes
    assert re.search(rf"{reads} \[label=fb,", dot) and re.search(rf"{writes} \[label=fb,", dot)
    assert "test_only" not in dot


def test_all_phases_name_the_phase_rules(twins):
    labels = [node.get_label() for node in net_graph(read_net(twins)).get_nodes()]
    assert "test_only\n(ReLU)\nphase: TEST" in labels


def test_bvlc_siamese_links_every_tied_layer_pair():
    graph = net_graph(read_net(ROOT / "tests" / "configs" / "bvlc_siamese_train_test.prototxt"), "TRAIN")
    shared = sorted(edge.get_label().strip('"') for edge in graph.get_edges()
                    if edge.get("style") == "dashed")
    assert shared == [f"shares {n}_w, {n}_b" for n in ("conv1", "conv2", "feat", "ip1", "ip2")]


def test_rankdir_auto_lays_long_nets_top_to_bottom(twins):
    lenet = read_net(ROOT / "prototxt" / "lenet_train_test.prototxt")
    assert choose_rankdir(lenet) == "TB"
    assert choose_rankdir(read_net(twins)) == "LR"
    assert net_graph(lenet).get_rankdir() == "TB"
    assert net_graph(lenet, rankdir="LR").get_rankdir() == "LR"


@needs_dot
@pytest.mark.parametrize("ext, magic", [("png", PNG_MAGIC), ("svg", b"<?xml")])
def test_pictures_and_nothing_else(twins, tmp_path, ext, magic):
    out = tmp_path / "pictures" / f"twins.{ext}"
    assert main(["draw", str(twins), str(out)]) == 0
    assert out.read_bytes().startswith(magic)
    assert os.listdir(out.parent) == [out.name]


def test_unknown_format_writes_nothing(twins, tmp_path):
    with pytest.raises(DrawError, match=r"cannot draw to a \.nonsense file: use \.png, .*svg"):
        draw.draw_net(twins, tmp_path / "twins.nonsense")
    assert sorted(os.listdir(tmp_path)) == ["twins.prototxt"]


def test_without_graphviz_no_fallback_file(twins, tmp_path, monkeypatch):
    monkeypatch.setattr(draw.shutil, "which", lambda name: None)
    out = tmp_path / "twins.png"
    with pytest.raises(DrawError, match="Graphviz's 'dot' program is not installed.*draw to a .dot file"):
        draw.draw_net(twins, out)
    assert sorted(os.listdir(tmp_path)) == ["twins.prototxt"]      # no twins.dot written beside it
    draw.draw_net(twins, tmp_path / "twins.dot")                    # DOT text needs no Graphviz
    assert (tmp_path / "twins.dot").read_text().startswith("digraph")


def test_missing_extension(twins, tmp_path):
    with pytest.raises(DrawError, match="give the output a file extension"):
        draw.draw_net(twins, tmp_path / "twins")
