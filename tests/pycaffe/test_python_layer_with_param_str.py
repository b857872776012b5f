"""Python layers configured by python_param.param_str (after BVLC's
test_python_layer_with_param_str.py), with the idioms pycaffe users write: a number, a YAML
mapping, a Python literal read with eval."""
import os
import tempfile
import unittest

import numpy as np
import yaml

import layerforge.pycaffe as caffe


class SimpleParamLayer(caffe.Layer):
    """Multiplies by the number in its param_str."""

    def setup(self, bottom, top):
        try:
            self.value = float(self.param_str)
        except ValueError:
            raise ValueError("Parameter string must be a legible float") from None

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        top[0].data[...] = self.value * bottom[0].data

    def backward(self, top, propagate_down, bottom):
        bottom[0].diff[...] = self.value * top[0].diff


class YamlLayer(caffe.Layer):
    """scale * x + shift, settings in YAML: "{scale: 3, shift: -1}"."""

    def setup(self, bottom, top):
        settings = yaml.safe_load(self.param_str)
        self.scale, self.shift = settings["scale"], settings.get("shift", 0)

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        top[0].data[...] = self.scale * bottom[0].data + self.shift

    def backward(self, top, propagate_down, bottom):
        bottom[0].diff[...] = self.scale * top[0].diff


class EvalLayer(caffe.Layer):
    """Keeps the channels listed in a Python literal: "{'channels': [0, 2]}" (eval idiom)."""

    def setup(self, bottom, top):
        self.channels = eval(self.param_str)["channels"]

    def reshape(self, bottom, top):
        top[0].reshape(bottom[0].num, len(self.channels), *bottom[0].data.shape[2:])

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data[:, self.channels]

    def backward(self, top, propagate_down, bottom):
        bottom[0].diff[...] = 0
        bottom[0].diff[:, self.channels] = top[0].diff


def _net_file(text):
    with tempfile.NamedTemporaryFile(mode="w+", suffix=".prototxt", delete=False) as f:
        f.write(text.replace("MODULE", __name__))
    return f.name


class TestLayerWithParam(unittest.TestCase):
    def setUp(self):
        net_file = _net_file("""name: 'pythonnet' force_backward: true
        input: 'data' input_shape { dim: 10 dim: 9 dim: 8 }
        layer { type: 'Python' name: 'mul10' bottom: 'data' top: 'mul10'
          python_param { module: 'MODULE' layer: 'SimpleParamLayer' param_str: '10' } }
        layer { type: 'Python' name: 'mul2' bottom: 'mul10' top: 'mul2'
          python_param { module: 'MODULE' layer: 'SimpleParamLayer' param_str: '2' } }""")
        self.net = caffe.Net(net_file, caffe.TRAIN)
        os.remove(net_file)

    def test_forward(self):
        self.net.blobs["data"].data[...] = 8
        self.net.forward()
        self.assertTrue(np.all(self.net.blobs["mul2"].data == 2 * 10 * 8))

    def test_backward(self):
        self.net.blobs["mul2"].diff[...] = 7
        self.net.backward()
        self.assertTrue(np.all(self.net.blobs["data"].diff == 2 * 10 * 7))

    def test_bad_param_str(self):
        net_file = _net_file("""input: 'data' input_shape { dim: 2 }
        layer { type: 'Python' name: 'bad' bottom: 'data' top: 'out'
          python_param { module: 'MODULE' layer: 'SimpleParamLayer' param_str: 'ten' } }""")
        try:
            with self.assertRaisesRegex(ValueError, "legible float"):
                caffe.Net(net_file, caffe.TEST)
        finally:
            os.remove(net_file)


class TestParamStrIdioms(unittest.TestCase):
    def test_yaml_and_eval(self):
        net_file = _net_file("""name: 'idioms' force_backward: true
        input: 'data' input_shape { dim: 2 dim: 3 dim: 2 dim: 2 }
        layer { type: 'Python' name: 'affine' bottom: 'data' top: 'affine'
          python_param { module: 'MODULE' layer: 'YamlLayer' param_str: '{scale: 3, shift: -1}' } }
        layer { type: 'Python' name: 'pick' bottom: 'affine' top: 'pick'
          python_param { module: 'MODULE' layer: 'EvalLayer' param_str: "{'channels': [0, 2]}" } }""")
        try:
            net = caffe.Net(net_file, caffe.TEST)
        finally:
            os.remove(net_file)
        x = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2)
        out = net.forward(data=x)["pick"]
        np.testing.assert_array_equal(out, (3 * x - 1)[:, [0, 2]])
        grads = net.backward(pick=np.ones_like(out))
        expected = np.zeros_like(x)
        expected[:, [0, 2]] = 3
        np.testing.assert_array_equal(grads["data"], expected)
