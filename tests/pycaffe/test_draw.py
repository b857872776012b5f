"""caffe.draw (after BVLC's test_draw.py): every example net of the repository draws, with
Caffe's signatures, through the same graph as `layerforge draw`."""
import glob
import os
import shutil
import tempfile
import unittest

from google.protobuf import text_format

import layerforge.pycaffe as caffe
from layerforge.pycaffe.proto import caffe_pb2

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def net_files():
    files = glob.glob(os.path.join(ROOT, "prototxt", "*.prototxt"))
    files += glob.glob(os.path.join(ROOT, "tests", "configs", "*.prototxt"))
    return [f for f in sorted(files) if "solver" not in f]


def read(path):
    net = caffe_pb2.NetParameter()
    with open(path) as f:
        text_format.Merge(f.read(), net)
    return net


class TestDraw(unittest.TestCase):
    def test_draw_net_text(self):
        self.assertGreater(len(net_files()), 3)
        for filename in net_files():
            dot = caffe.draw.draw_net(read(filename), "LR", ext="dot").decode()
            self.assertTrue(dot.startswith("digraph"), filename)
            self.assertIn("rankdir=LR", dot)

    def test_graph_labels(self):
        net = read(os.path.join(ROOT, "prototxt", "lenet_train_test.prototxt"))
        graph = caffe.draw.get_pydot_graph(net, "TB", phase=caffe.TRAIN, display_lrm=True)
        labels = [node.get_label() or "" for node in graph.get_nodes()]
        conv1 = next(label for label in labels if label.startswith("conv1"))
        self.assertIn("num_output: 20", conv1)
        self.assertIn("lr mult: 1, 2", conv1)
        self.assertFalse(any("accuracy" in label for label in labels))        # TEST only
        edges = {edge.get_label() for edge in graph.get_edges()}
        self.assertTrue({"Batch 64", "20", "50", "500", "10"} <= edges)
        mnist = next(label for label in labels if label.startswith("mnist"))
        self.assertIn("shuffle: true", mnist)
        self.assertIn('source: "data/mnist/mnist_train_lmdb"', mnist)

    @unittest.skipIf(shutil.which("dot") is None, "Graphviz's dot is not installed")
    def test_draw_net_to_file(self):
        net = read(os.path.join(ROOT, "prototxt", "mnist_siamese_train_test.prototxt"))
        with tempfile.TemporaryDirectory() as folder:
            for ext, magic in (("png", PNG_MAGIC), ("svg", b"<?xml"), ("raw", b"digraph")):
                path = os.path.join(folder, f"net.{ext}")
                caffe.draw.draw_net_to_file(net, path, "TB", phase=caffe.TEST)
                with open(path, "rb") as f:
                    self.assertTrue(f.read().startswith(magic), ext)
            self.assertEqual(sorted(os.listdir(folder)), ["net.png", "net.raw", "net.svg"])
        self.assertTrue(caffe.draw.draw_net(net, "LR").startswith(PNG_MAGIC))
