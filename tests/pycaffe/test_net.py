"""pycaffe's Net surface (after BVLC python/caffe/test/test_net.py), through layerforge.pycaffe."""
import os
import tempfile
import unittest
from collections import OrderedDict

import numpy as np

import layerforge.pycaffe as caffe


def simple_net_file(num_output):
    """A small net after Caffe's test_net.cpp; returns the path of a temporary prototxt."""
    with tempfile.NamedTemporaryFile(mode="w+", suffix=".prototxt", delete=False) as f:
        f.write("""name: 'testnet' force_backward: true
        layer { type: 'DummyData' name: 'data' top: 'data' top: 'label'
          dummy_data_param { num: 5 channels: 2 height: 3 width: 4
            num: 5 channels: 1 height: 1 width: 1
            data_filler { type: 'gaussian' std: 1 }
            data_filler { type: 'constant' } } }
        layer { type: 'Convolution' name: 'conv' bottom: 'data' top: 'conv'
          convolution_param { num_output: 11 kernel_size: 2 pad: 3
            weight_filler { type: 'gaussian' std: 1 }
            bias_filler { type: 'constant' value: 2 } }
          param { decay_mult: 1 } param { decay_mult: 0 } }
        layer { type: 'InnerProduct' name: 'ip' bottom: 'conv' top: 'ip_blob'
          inner_product_param { num_output: %d
            weight_filler { type: 'gaussian' std: 2.5 }
            bias_filler { type: 'constant' value: -3 } } }
        layer { type: 'SoftmaxWithLoss' name: 'loss' bottom: 'ip_blob' bottom: 'label'
          top: 'loss' }""" % num_output)
    return f.name


class TestNet(unittest.TestCase):
    def setUp(self):
        self.num_output = 13
        net_file = simple_net_file(self.num_output)
        self.net = caffe.Net(net_file, caffe.TRAIN)
        self.net.blobs["label"].data[...] = np.random.default_rng(0).integers(
            self.num_output, size=self.net.blobs["label"].data.shape)
        os.remove(net_file)

    def test_memory(self):
        """Arrays stay readable after the Net is gone."""
        params = sum(map(list, self.net.params.values()), [])
        blobs = list(self.net.blobs.values())
        del self.net
        total = sum(p.data.sum() + p.diff.sum() for p in params)
        total += sum(b.data.sum() + b.diff.sum() for b in blobs)
        self.assertTrue(np.isfinite(total))

    def test_layers_list_and_dict(self):
        self.assertEqual(self.net._layer_names, ["data", "conv", "ip", "loss"])
        self.assertEqual([layer.type for layer in self.net.layers],
                         ["DummyData", "Convolution", "InnerProduct", "SoftmaxWithLoss"])
        self.assertEqual(list(self.net.layer_dict), self.net._layer_names)
        for i, name in enumerate(self.net._layer_names):
            self.assertIs(self.net.layer_dict[name], self.net.layers[i])

    def test_blobs_and_params(self):
        self.assertEqual(list(self.net.blobs), ["data", "label", "conv", "ip_blob", "loss"])
        self.assertEqual(list(self.net.params), ["conv", "ip"])
        weight, bias = self.net.params["conv"]
        self.assertEqual(weight.shape, (11, 2, 2, 2))
        self.assertTrue(np.all(bias.data == 2))
        data = self.net.blobs["data"]
        self.assertEqual((data.num, data.channels, data.height, data.width, data.count),
                         (5, 2, 3, 4, 120))
        self.assertEqual(self.net.blob_loss_weights["loss"], 1.0)
        self.assertEqual(self.net.blob_loss_weights["ip_blob"], 0.0)

    def test_forward_backward(self):
        out = self.net.forward()
        self.assertEqual(set(out), {"loss"})
        self.assertTrue(np.isfinite(out["loss"]).all() and out["loss"] > 0)
        grads = self.net.backward()
        self.assertEqual(grads, {})          # no inputs
        self.assertGreater(np.abs(self.net.params["ip"][0].diff).sum(), 0)
        self.assertGreater(np.abs(self.net.blobs["data"].diff).sum(), 0)   # force_backward

    def test_forward_start_end(self):
        conv = self.net.blobs["conv"]
        conv.data[...] = np.random.default_rng(1).uniform(size=conv.shape)
        out = self.net.forward(start="ip", end="ip")
        self.assertEqual(set(out), {"ip_blob"})
        weight, bias = (p.data for p in self.net.params["ip"])
        expected = conv.data.reshape(len(conv.data), -1) @ weight.T + bias
        np.testing.assert_allclose(self.net.blobs["ip_blob"].data, expected, rtol=1e-4, atol=1e-4)

    def test_backward_start_end(self):
        self.net.forward()
        conv, ip = self.net.blobs["conv"], self.net.blobs["ip_blob"]
        top_diff = np.random.default_rng(2).uniform(size=ip.shape).astype(np.float32)
        ip.diff[...] = top_diff
        out = self.net.backward(start="ip", end="ip")
        self.assertEqual(set(out), {"conv"})
        expected = (top_diff @ self.net.params["ip"][0].data).reshape(conv.shape)
        np.testing.assert_allclose(conv.diff, expected, rtol=1e-4, atol=1e-4)

    def test_forward_inputs_must_match(self):
        with self.assertRaises(ValueError):
            self.net.forward(data=np.zeros((5, 2, 3, 4)))

    def test_clear_param_diffs(self):
        self.net.forward()
        self.net.backward()
        diff = self.net.params["conv"][0].diff
        self.assertGreater(np.abs(diff).max(), 0)
        self.net.clear_param_diffs()
        self.assertTrue((diff == 0).all())

    def test_inputs_outputs(self):
        self.assertEqual(self.net.inputs, [])
        self.assertEqual(self.net.outputs, ["loss"])

    def test_top_bottom_names(self):
        self.assertEqual(self.net.top_names, OrderedDict([
            ("data", ["data", "label"]), ("conv", ["conv"]), ("ip", ["ip_blob"]), ("loss", ["loss"])]))
        self.assertEqual(self.net.bottom_names, OrderedDict([
            ("data", []), ("conv", ["data"]), ("ip", ["conv"]), ("loss", ["ip_blob", "label"])]))

    def _check_same_params(self, net2):
        for name in self.net.params:
            for mine, theirs in zip(self.net.params[name], net2.params[name]):
                np.testing.assert_array_equal(mine.data, theirs.data)

    def test_save_and_read(self):
        handle, weights = tempfile.mkstemp(suffix=".caffemodel")
        os.close(handle)
        self.net.save(weights)
        net_file = simple_net_file(self.num_output)
        try:
            caffe.set_random_seed(7)     # other initial weights, so the load is what makes them equal
            legacy = caffe.Net(net_file, weights, caffe.TRAIN)
            named = caffe.Net(net_file, caffe.TRAIN, weights=weights)
            fresh = caffe.Net(net_file, caffe.TRAIN)
        finally:
            caffe.set_random_seed(0)
            os.remove(net_file)
            os.remove(weights)
        self._check_same_params(legacy)
        self._check_same_params(named)
        self.assertFalse(np.array_equal(fresh.params["ip"][0].data, self.net.params["ip"][0].data))

    def test_save_hdf5(self):
        handle, weights = tempfile.mkstemp(suffix=".h5")
        os.close(handle)
        self.net.save_hdf5(weights)
        net_file = simple_net_file(self.num_output)
        caffe.set_random_seed(7)
        try:
            net2 = caffe.Net(net_file, caffe.TRAIN)
            net2.load_hdf5(weights)
        finally:
            caffe.set_random_seed(0)
            os.remove(net_file)
            os.remove(weights)
        self._check_same_params(net2)

    def test_share_with(self):
        net_file = simple_net_file(self.num_output)
        net2 = caffe.Net(net_file, caffe.TEST)
        os.remove(net_file)
        net2.share_with(self.net)
        self.assertIs(net2.params["ip"][0], self.net.params["ip"][0])

    def test_reshape(self):
        self.net.blobs["data"].reshape(2, 2, 3, 4)
        self.net.blobs["label"].reshape(2, 1, 1, 1)
        self.net.reshape()
        self.assertEqual(self.net.blobs["conv"].shape, (2, 11, 8, 9))
        self.assertEqual(self.net.blobs["ip_blob"].shape, (2, self.num_output))


class TestForwardAll(unittest.TestCase):
    NET = """name: 'deploy' force_backward: true
    layer { type: 'Input' name: 'data' top: 'data' input_param { shape { dim: 4 dim: 3 } } }
    layer { type: 'InnerProduct' name: 'ip' bottom: 'data' top: 'ip'
      inner_product_param { num_output: 2 weight_filler { type: 'gaussian' std: 1 } } }"""

    def setUp(self):
        with tempfile.NamedTemporaryFile(mode="w+", suffix=".prototxt", delete=False) as f:
            f.write(self.NET)
        self.net = caffe.Net(f.name, caffe.TEST)
        os.remove(f.name)

    def test_forward_all_pads_and_trims(self):
        x = np.random.default_rng(3).normal(size=(10, 3)).astype(np.float32)
        out = self.net.forward_all(data=x)
        self.assertEqual(out["ip"].shape, (10, 2))
        np.testing.assert_allclose(out["ip"], x @ self.net.params["ip"][0].data.T, rtol=1e-5, atol=1e-5)

    def test_forward_backward_all(self):
        x = np.ones((6, 3), np.float32)
        outs, diffs = self.net.forward_backward_all(data=x, ip=np.ones((6, 2), np.float32))
        self.assertEqual(outs["ip"].shape, (6, 2))
        expected = np.ones((6, 2)) @ self.net.params["ip"][0].data
        np.testing.assert_allclose(diffs["data"], expected, rtol=1e-5, atol=1e-5)

    def test_input_not_batch_sized(self):
        with self.assertRaises(ValueError):
            self.net.forward(data=np.zeros((3, 3)))


class TestMemoryData(unittest.TestCase):
    def test_set_input_arrays(self):
        with tempfile.NamedTemporaryFile(mode="w+", suffix=".prototxt", delete=False) as f:
            f.write("""layer { type: 'MemoryData' name: 'data' top: 'data' top: 'label'
              memory_data_param { batch_size: 2 channels: 1 height: 2 width: 2 } }""")
        net = caffe.Net(f.name, caffe.TEST)
        os.remove(f.name)
        data = np.arange(16, dtype=np.float32).reshape(4, 1, 2, 2)
        net.set_input_arrays(data, np.arange(4, dtype=np.float32))
        out = net.forward()
        np.testing.assert_array_equal(out["data"], data[:2])
        np.testing.assert_array_equal(out["label"].ravel(), [0, 1])


STATE_NET = """
layer { name: "data" type: "DummyData" top: "data"
  dummy_data_param { shape { dim: 1 dim: 1 dim: 10 dim: 10 } } }
layer { name: "NoLevel" type: "InnerProduct" bottom: "data" top: "NoLevel"
  inner_product_param { num_output: 1 } }
layer { name: "Level0Only" type: "InnerProduct" bottom: "data" top: "Level0Only"
  include { min_level: 0 max_level: 0 } inner_product_param { num_output: 1 } }
layer { name: "Level1Only" type: "InnerProduct" bottom: "data" top: "Level1Only"
  include { min_level: 1 max_level: 1 } inner_product_param { num_output: 1 } }
layer { name: "Level>=0" type: "InnerProduct" bottom: "data" top: "Level>=0"
  include { min_level: 0 } inner_product_param { num_output: 1 } }
layer { name: "Level>=1" type: "InnerProduct" bottom: "data" top: "Level>=1"
  include { min_level: 1 } inner_product_param { num_output: 1 } }
layer { name: "A" type: "InnerProduct" bottom: "data" top: "A"
  include { stage: "A" } inner_product_param { num_output: 1 } }
layer { name: "B" type: "InnerProduct" bottom: "data" top: "B"
  include { stage: "B" } inner_product_param { num_output: 1 } }
layer { name: "AorB" type: "InnerProduct" bottom: "data" top: "AorB"
  include { stage: "A" } include { stage: "B" } inner_product_param { num_output: 1 } }
layer { name: "AandB" type: "InnerProduct" bottom: "data" top: "AandB"
  include { stage: "A" stage: "B" } inner_product_param { num_output: 1 } }
"""


class TestLevelsAndStages(unittest.TestCase):
    def setUp(self):
        with tempfile.NamedTemporaryFile(mode="w+", suffix=".prototxt", delete=False) as f:
            f.write(STATE_NET)
        self.path = f.name

    def tearDown(self):
        os.remove(self.path)

    def check_net(self, net, blobs):
        self.assertEqual([b for b in net.blobs if "data" not in b], blobs)

    def test_level_0(self):
        self.check_net(caffe.Net(self.path, caffe.TEST), ["NoLevel", "Level0Only", "Level>=0"])

    def test_level_1(self):
        self.check_net(caffe.Net(self.path, caffe.TEST, level=1),
                       ["NoLevel", "Level1Only", "Level>=0", "Level>=1"])

    def test_stages(self):
        level0 = ["NoLevel", "Level0Only", "Level>=0"]
        self.check_net(caffe.Net(self.path, caffe.TEST, stages=["A"]), level0 + ["A", "AorB"])
        self.check_net(caffe.Net(self.path, caffe.TEST, stages=["B"]), level0 + ["B", "AorB"])
        self.check_net(caffe.Net(self.path, caffe.TEST, stages=["A", "B"]),
                       level0 + ["A", "B", "AorB", "AandB"])


ALL_IN_ONE = """
layer { name: "train_data" type: "DummyData" top: "data" top: "label"
  dummy_data_param { shape { dim: 1 dim: 1 dim: 10 dim: 10 } shape { dim: 1 dim: 1 dim: 1 dim: 1 } }
  include { phase: TRAIN stage: "train" } }
layer { name: "val_data" type: "DummyData" top: "data" top: "label"
  dummy_data_param { shape { dim: 1 dim: 1 dim: 10 dim: 10 } shape { dim: 1 dim: 1 dim: 1 dim: 1 } }
  include { phase: TEST stage: "val" } }
layer { name: "deploy_data" type: "Input" top: "data"
  input_param { shape { dim: 1 dim: 1 dim: 10 dim: 10 } } include { phase: TEST stage: "deploy" } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 2 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss"
  include: { phase: TRAIN stage: "train" } include: { phase: TEST stage: "val" } }
layer { name: "pred" type: "Softmax" bottom: "ip" top: "pred" include: { phase: TEST stage: "deploy" } }
"""


class TestAllInOne(unittest.TestCase):
    def setUp(self):
        with tempfile.NamedTemporaryFile(mode="w+", suffix=".prototxt", delete=False) as f:
            f.write(ALL_IN_ONE)
        self.path = f.name

    def tearDown(self):
        os.remove(self.path)

    def check_net(self, net, outputs, inputs):
        self.assertEqual(list(net.blobs["data"].shape), [1, 1, 10, 10])
        self.assertEqual(net.outputs, outputs)
        self.assertEqual(net.inputs, inputs)

    def test_train(self):
        self.check_net(caffe.Net(self.path, caffe.TRAIN, stages=["train"]), ["loss"], [])

    def test_val(self):
        self.check_net(caffe.Net(self.path, caffe.TEST, stages=["val"]), ["loss"], [])

    def test_deploy(self):
        self.check_net(caffe.Net(self.path, caffe.TEST, stages=["deploy"]), ["pred"], ["data"])


class TestModeAndTimer(unittest.TestCase):
    def test_cpu_only(self):
        caffe.set_mode_cpu()
        with self.assertRaisesRegex(RuntimeError, "CPU only"):
            caffe.set_mode_gpu()
        with self.assertRaisesRegex(RuntimeError, "CPU only"):
            caffe.set_device(0)

    def test_timer(self):
        timer = caffe.Timer()
        timer.start()
        sum(range(10000))
        timer.stop()
        self.assertGreater(timer.ms, 0)
        self.assertEqual(timer.ms, timer.ms)      # stopped: no longer running


def test_layers_run_inside_the_blas_thread_scope(monkeypatch):
    """forward/backward with start and end run their layers as Net.forward does: inside
    blas_on_one_thread, where Numba's workers own the cores."""
    import contextlib
    from layerforge.pycaffe import pycaffe

    net_file = simple_net_file(3)
    net = caffe.Net(net_file, caffe.TRAIN)
    os.remove(net_file)
    inside, calls = [False], []

    @contextlib.contextmanager
    def scope():
        inside[0] = True
        yield
        inside[0] = False

    core = net.layerforge_net
    for method in ("forward_layer", "backward_layer"):
        run = getattr(core, method)
        monkeypatch.setattr(core, method, lambda index, run=run, method=method: (
            calls.append((method, index, inside[0])), run(index))[1])
    monkeypatch.setattr(pycaffe, "blas_on_one_thread", scope)
    net.forward(start="conv", end="ip")
    net.backward(start="ip", end="conv")
    assert calls == [("forward_layer", 1, True), ("forward_layer", 2, True),
                     ("backward_layer", 2, True), ("backward_layer", 1, True)]
