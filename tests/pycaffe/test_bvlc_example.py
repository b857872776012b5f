"""BVLC's pycaffe example of a Python layer (examples/pycaffe: pyloss.py with linreg.prototxt),
unchanged but for its import line, run on its DummyData: forward, backward, training."""
import os
import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np

import layerforge
import layerforge.pycaffe as caffe
from layerforge import io

EXAMPLE = Path(__file__).resolve().parent / "bvlc"
LINREG = str(EXAMPLE / "linreg.prototxt")


class TestLinearRegressionExample(unittest.TestCase):
    def setUp(self):
        self.path = list(sys.path)
        sys.path.insert(0, str(EXAMPLE))          # python_param.module 'pyloss', as on PYTHONPATH
        self.net = caffe.Net(LINREG, caffe.TRAIN)

    def tearDown(self):
        sys.path[:] = self.path

    def test_forward_backward_match_the_builtin_euclidean_loss(self):
        net = self.net
        self.assertEqual(net.layer_dict["loss"].type, "Python")
        loss = net.forward()["loss"]
        ipx, ipy = net.blobs["ipx"].data, net.blobs["ipy"].data
        self.assertAlmostEqual(loss.item(), float(np.sum((ipx - ipy) ** 2) / 10 / 2), places=4)
        net.backward()
        np.testing.assert_allclose(net.blobs["ipx"].diff, (ipx - ipy) / 10, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(net.blobs["ipy"].diff, -(ipx - ipy) / 10, rtol=1e-5, atol=1e-7)

        builtin = io.read_net(LINREG)
        builtin.layer[-1].type = "EuclideanLoss"
        builtin.layer[-1].ClearField("python_param")
        reference = layerforge.Net(builtin, caffe.TRAIN)
        for name in ("ipx", "ipy"):
            for mine, theirs in zip(net.params[name], reference.params[name]):
                theirs.data[...] = mine.data
        for name in ("x", "y"):
            reference.blobs[name].data[...] = net.blobs[name].data
        for index in range(2, len(reference.layers)):           # keep the DummyData draws
            reference.forward_layer(index)
        reference.backward()
        self.assertAlmostEqual(reference.blobs["loss"].data.item(), loss.item(), places=4)
        for name in ("ipx", "ipy"):
            np.testing.assert_allclose(net.params[name][0].diff, reference.params[name][0].diff,
                                       rtol=1e-4, atol=1e-6)

    def test_trains(self):
        with tempfile.TemporaryDirectory() as folder:
            solver_file = os.path.join(folder, "solver.prototxt")
            with open(solver_file, "w") as f:
                f.write(f'net: "{LINREG}" base_lr: 0.05 momentum: 0.9 lr_policy: "fixed" max_iter: 60 '
                        f'display: 0 snapshot_prefix: "{folder}/linreg"')
            solver = caffe.SGDSolver(solver_file)
            before = np.mean([solver.net.forward()["loss"][0] for _ in range(5)])
            solver.solve()
            after = np.mean([solver.net.forward()["loss"][0] for _ in range(5)])
        self.assertEqual(solver.iter, 60)
        self.assertLess(after, before / 4)


class TestCaffeNetSpecExample(unittest.TestCase):
    """examples/pycaffe/caffenet.py, unchanged: `from caffe import layers as L, ...` works once
    layerforge.pycaffe is registered as `caffe`."""

    def setUp(self):
        self.modules = dict(sys.modules)
        caffe.alias_as_caffe()

    def tearDown(self):
        for name in [n for n in sys.modules if n == "caffe" or n.startswith("caffe.") or n == "caffenet"]:
            del sys.modules[name]
        sys.modules.update({n: m for n, m in self.modules.items() if n.startswith("caffe")})

    def test_make_net(self):
        import caffe as aliased
        self.assertIs(aliased, caffe)
        from caffe.proto import caffe_pb2
        self.assertIs(caffe_pb2.NetParameter, layerforge.proto.layerforge_pb2.NetParameter)
        sys.path.insert(0, str(EXAMPLE))
        cwd = os.getcwd()
        try:
            import caffenet
            with tempfile.TemporaryDirectory() as folder:
                os.chdir(folder)
                caffenet.make_net()
                train, test = io.read_net("train.prototxt"), io.read_net("test.prototxt")
        finally:
            os.chdir(cwd)
            sys.path.remove(str(EXAMPLE))
        types = [layer.type for layer in train.layer]
        self.assertEqual(types.count("Convolution"), 5)
        self.assertEqual(types.count("ReLU"), 7)
        self.assertEqual(types[0], "Data")
        self.assertEqual(train.layer[0].data_param.batch_size, 256)
        self.assertEqual(list(train.layer[0].transform_param.mean_value), [104, 117, 123])
        conv2 = train.layer[types.index("LRN") + 1]
        self.assertEqual((conv2.name, conv2.convolution_param.group, list(conv2.convolution_param.pad)),
                         ("Convolution2", 2, [2]))
        relu1 = train.layer[2]
        self.assertEqual((relu1.name, list(relu1.bottom), list(relu1.top)),
                         ("ReLU1", ["Convolution1"], ["Convolution1"]))
        self.assertEqual([layer.type for layer in test.layer][-2:], ["SoftmaxWithLoss", "Accuracy"])
        self.assertEqual(test.layer[0].data_param.batch_size, 50)


class TestAlias(unittest.TestCase):
    def test_refuses_to_shadow_another_caffe(self):
        other = type(sys)("caffe")
        saved = sys.modules.get("caffe")
        sys.modules["caffe"] = other
        try:
            with self.assertRaisesRegex(RuntimeError, "already imported"):
                caffe.alias_as_caffe()
        finally:
            if saved is None:
                del sys.modules["caffe"]
            else:
                sys.modules["caffe"] = saved
