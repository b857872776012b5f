"""Python layers written for pycaffe (after BVLC python/caffe/test/test_python_layer.py):
subclasses of caffe.Layer reached through `type: "Python"`, with `top[0].reshape(*shape)`,
`self.blobs.add_blob`, `self.phase`, and tops reshaped in forward."""
import os
import tempfile
import unittest

import numpy as np

import layerforge.pycaffe as caffe

MODULE = __name__


class SimpleLayer(caffe.Layer):
    """Multiplies by ten."""

    def setup(self, bottom, top):
        pass

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        top[0].data[...] = 10 * bottom[0].data

    def backward(self, top, propagate_down, bottom):
        bottom[0].diff[...] = 10 * top[0].diff


class ExceptionLayer(caffe.Layer):
    def setup(self, bottom, top):
        raise RuntimeError("raised in setup")


class ParameterLayer(caffe.Layer):
    """Owns one parameter blob; backward writes 1 into its diff."""

    def setup(self, bottom, top):
        self.blobs.add_blob(1)
        self.blobs[0].data[0] = 0

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        pass

    def backward(self, top, propagate_down, bottom):
        self.blobs[0].diff[0] = 1


class PhaseLayer(caffe.Layer):
    """A scalar top holding the phase the net was built in."""

    def setup(self, bottom, top):
        pass

    def reshape(self, bottom, top):
        top[0].reshape()

    def forward(self, bottom, top):
        top[0].data[()] = self.phase


class GrowingLayer(caffe.Layer):
    """Reshapes its top in forward: one more row at every call (as data layers do)."""

    def setup(self, bottom, top):
        self.calls = 0

    def reshape(self, bottom, top):
        pass

    def forward(self, bottom, top):
        self.calls += 1
        top[0].reshape(self.calls, 3)
        top[0].data[...] = self.calls


def _net_file(text):
    with tempfile.NamedTemporaryFile(mode="w+", suffix=".prototxt", delete=False) as f:
        f.write(text.replace("MODULE", MODULE))
    return f.name


def python_net_file():
    return _net_file("""name: 'pythonnet' force_backward: true
    input: 'data' input_shape { dim: 10 dim: 9 dim: 8 }
    layer { type: 'Python' name: 'one' bottom: 'data' top: 'one'
      python_param { module: 'MODULE' layer: 'SimpleLayer' } }
    layer { type: 'Python' name: 'two' bottom: 'one' top: 'two'
      python_param { module: 'MODULE' layer: 'SimpleLayer' } }
    layer { type: 'Python' name: 'three' bottom: 'two' top: 'three'
      python_param { module: 'MODULE' layer: 'SimpleLayer' } }""")


def one_layer_file(layer, top="top", bottom="bottom: 'data'"):
    return _net_file("""name: 'pythonnet' force_backward: true
    input: 'data' input_shape { dim: 10 dim: 9 dim: 8 }
    layer { type: 'Python' name: 'layer' %s top: '%s'
      python_param { module: 'MODULE' layer: '%s' } }""" % (bottom, top, layer))


@unittest.skipIf("Python" not in caffe.layer_type_list(), "no Python layer support")
class TestPythonLayer(unittest.TestCase):
    def setUp(self):
        net_file = python_net_file()
        self.net = caffe.Net(net_file, caffe.TRAIN)
        os.remove(net_file)

    def test_type(self):
        self.assertEqual([layer.type for layer in self.net.layers], ["Input", "Python", "Python", "Python"])

    def test_forward(self):
        x = 8
        self.net.blobs["data"].data[...] = x
        self.net.forward()
        self.assertTrue(np.all(self.net.blobs["three"].data == 10 ** 3 * x))

    def test_backward(self):
        x = 7
        self.net.blobs["three"].diff[...] = x
        self.net.backward()
        self.assertTrue(np.all(self.net.blobs["data"].diff == 10 ** 3 * x))

    def test_reshape(self):
        s = 4
        self.net.blobs["data"].reshape(s, s, s, s)
        self.net.forward()
        for blob in self.net.blobs.values():
            self.assertEqual(blob.data.shape, (s, s, s, s))

    def test_exception(self):
        net_file = one_layer_file("ExceptionLayer")
        try:
            with self.assertRaisesRegex(RuntimeError, "raised in setup"):
                caffe.Net(net_file, caffe.TEST)
        finally:
            os.remove(net_file)

    def test_parameter(self):
        net_file = one_layer_file("ParameterLayer")
        handle, caffemodel = tempfile.mkstemp(suffix=".caffemodel")
        os.close(handle)
        try:
            net = caffe.Net(net_file, caffe.TRAIN)
            net.forward()
            net.backward()
            layer = net.layers[net._layer_names.index("layer")]
            self.assertEqual(layer.blobs[0].data[0], 0)
            self.assertEqual(layer.blobs[0].diff[0], 1)
            layer.blobs[0].data[0] += layer.blobs[0].diff[0]
            self.assertEqual(layer.blobs[0].data[0], 1)

            net.save(caffemodel)              # the layer's own blob is in the weights file
            layer.blobs[0].data[0] = -1
            net.copy_from(caffemodel)
            self.assertEqual(layer.blobs[0].data[0], 1)
            fresh = caffe.Net(net_file, caffe.TRAIN, weights=caffemodel)
            self.assertEqual(fresh.params["layer"][0].data[0], 1)

            net2 = caffe.Net(net_file, caffe.TRAIN)
            net2.share_with(net)
            self.assertEqual(net2.layer_dict["layer"].blobs[0].data[0], 1)
            self.assertIs(net2.params["layer"][0], net.params["layer"][0])
        finally:
            os.remove(net_file)
            os.remove(caffemodel)

    def test_phase(self):
        net_file = _net_file("""name: 'pythonnet' force_backward: true
        layer { type: 'Python' name: 'layer' top: 'phase'
          python_param { module: 'MODULE' layer: 'PhaseLayer' } }""")
        try:
            for phase in caffe.TRAIN, caffe.TEST:
                net = caffe.Net(net_file, phase)
                self.assertEqual(net.forward()["phase"], phase)
        finally:
            os.remove(net_file)

    def test_reshape_in_forward(self):
        net_file = _net_file("""name: 'grow'
        layer { type: 'Python' name: 'grow' top: 'rows'
          python_param { module: 'MODULE' layer: 'GrowingLayer' } }
        layer { type: 'Power' name: 'double' bottom: 'rows' top: 'doubled' power_param { scale: 2 } }""")
        try:
            net = caffe.Net(net_file, caffe.TEST)
        finally:
            os.remove(net_file)
        first = net.forward()["doubled"].copy()
        second = net.forward()["doubled"]
        np.testing.assert_array_equal(first, np.full((1, 3), 2))
        np.testing.assert_array_equal(second, np.full((2, 3), 4))
