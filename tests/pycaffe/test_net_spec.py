"""NetSpec through caffe.layers / caffe.params (after BVLC's test_net_spec.py), plus the
settings routing and errors of layerforge's NetSpec."""
import os
import tempfile
import unittest

from google.protobuf import text_format

import layerforge
import layerforge.pycaffe as caffe
from layerforge.netspec import NetSpecError
from layerforge.pycaffe import layers as L
from layerforge.pycaffe import params as P


def lenet(batch_size):
    n = caffe.NetSpec()
    n.data, n.label = L.DummyData(shape=[dict(dim=[batch_size, 1, 28, 28]),
                                         dict(dim=[batch_size, 1, 1, 1])],
                                  transform_param=dict(scale=1. / 255), ntop=2)
    n.conv1 = L.Convolution(n.data, kernel_size=5, num_output=20, weight_filler=dict(type="xavier"))
    n.pool1 = L.Pooling(n.conv1, kernel_size=2, stride=2, pool=P.Pooling.MAX)
    n.conv2 = L.Convolution(n.pool1, kernel_size=5, num_output=50, weight_filler=dict(type="xavier"))
    n.pool2 = L.Pooling(n.conv2, kernel_size=2, stride=2, pool=P.Pooling.MAX)
    n.ip1 = L.InnerProduct(n.pool2, num_output=500, weight_filler=dict(type="xavier"))
    n.relu1 = L.ReLU(n.ip1, in_place=True)
    n.ip2 = L.InnerProduct(n.relu1, num_output=10, weight_filler=dict(type="xavier"))
    n.loss = L.SoftmaxWithLoss(n.ip2, n.label)
    return n.to_proto()


def anon_lenet(batch_size):
    data, label = L.DummyData(shape=[dict(dim=[batch_size, 1, 28, 28]),
                                     dict(dim=[batch_size, 1, 1, 1])],
                              transform_param=dict(scale=1. / 255), ntop=2)
    conv1 = L.Convolution(data, kernel_size=5, num_output=20, weight_filler=dict(type="xavier"))
    pool1 = L.Pooling(conv1, kernel_size=2, stride=2, pool=P.Pooling.MAX)
    conv2 = L.Convolution(pool1, kernel_size=5, num_output=50, weight_filler=dict(type="xavier"))
    pool2 = L.Pooling(conv2, kernel_size=2, stride=2, pool=P.Pooling.MAX)
    ip1 = L.InnerProduct(pool2, num_output=500, weight_filler=dict(type="xavier"))
    relu1 = L.ReLU(ip1, in_place=True)
    ip2 = L.InnerProduct(relu1, num_output=10, weight_filler=dict(type="xavier"))
    loss = L.SoftmaxWithLoss(ip2, label)
    return loss.to_proto()


def silent_net():
    n = caffe.NetSpec()
    n.data, n.data2 = L.DummyData(shape=dict(dim=3), ntop=2)
    n.silence_data = L.Silence(n.data, ntop=0)
    n.silence_data2 = L.Silence(n.data2, ntop=0)
    return n.to_proto()


class TestNetSpec(unittest.TestCase):
    def load_net(self, net_proto):
        """Through a prototxt file, as Caffe reads it."""
        with tempfile.NamedTemporaryFile(mode="w+", suffix=".prototxt", delete=False) as f:
            f.write(str(net_proto))
        try:
            return caffe.Net(f.name, caffe.TEST)
        finally:
            os.remove(f.name)

    def test_lenet(self):
        net_proto = lenet(50)
        self.assertEqual(net_proto.layer[6].bottom, net_proto.layer[6].top)    # relu in place
        self.assertEqual([layer.name for layer in net_proto.layer],
                         ["data", "conv1", "pool1", "conv2", "pool2", "ip1", "relu1", "ip2", "loss"])
        self.assertEqual(net_proto.layer[1].convolution_param.num_output, 20)
        self.assertEqual(net_proto.layer[2].pooling_param.pool, P.Pooling.MAX)
        net = self.load_net(net_proto)
        self.assertEqual(len(net.layers), 9)
        self.assertEqual(net.blobs["ip2"].shape, (50, 10))

        net_proto = anon_lenet(50)
        self.assertEqual(net_proto.layer[6].bottom, net_proto.layer[6].top)
        self.assertEqual(net_proto.layer[1].name, "Convolution1")
        self.assertEqual(list(net_proto.layer[1].bottom), ["DummyData1"])
        self.assertEqual(len(self.load_net(net_proto).layers), 9)

    def test_zero_tops(self):
        net_proto = silent_net()
        self.assertEqual([layer.name for layer in net_proto.layer],
                         ["data", "silence_data", "silence_data2"])
        self.assertEqual(len(self.load_net(net_proto).forward()), 0)

    def test_type_error(self):
        data = L.DummyData(ntop=2)
        with self.assertRaisesRegex(TypeError, r"^Silence input 0 is not a Top \(type is <class 'tuple'>\)$"):
            L.Silence(data, ntop=0)
        L.Silence(*data, ntop=0)

    def test_prints_as_prototxt(self):
        n = layerforge.NetSpec()
        n.data = L.Input(shape=dict(dim=[1, 2]))
        n.ip = L.InnerProduct(n.data, num_output=3, bias_term=False, param=[dict(lr_mult=1)])
        text = str(n.to_proto())
        self.assertIn("bias_term: false", text)
        reparsed = text_format.Parse(text, caffe.proto.caffe_pb2.NetParameter())
        self.assertEqual(reparsed, n.to_proto())

    def test_layer_fields_and_enum_names(self):
        n = layerforge.NetSpec()
        n.data, n.label = L.Data(name="mnist", source="db", batch_size=4, backend="LMDB",
                                 include=dict(phase=caffe.TRAIN), ntop=2)
        n.loss = L.SoftmaxWithLoss(n.data, n.label, loss_weight=2, propagate_down=[True, False])
        proto = n.to_proto()
        data, loss = proto.layer
        self.assertEqual((data.name, data.data_param.source, data.data_param.batch_size),
                         ("mnist", "db", 4))
        self.assertEqual(data.data_param.backend, caffe.proto.caffe_pb2.DataParameter.LMDB)
        self.assertEqual(data.include[0].phase, caffe.TRAIN)
        self.assertEqual(list(loss.loss_weight), [2])
        self.assertEqual(list(loss.propagate_down), [True, False])

    def test_explicit_top_names(self):
        n = layerforge.NetSpec()
        n.data = L.Input(shape=dict(dim=[1, 2]), include=dict(phase=caffe.TRAIN))
        n.deploy_input = L.Input(top=["data"], shape=dict(dim=[5, 2]), include=dict(phase=caffe.TEST))
        n.ip = L.InnerProduct(n.data, num_output=1)
        proto = n.to_proto()
        self.assertEqual([(layer.name, list(layer.top)) for layer in proto.layer],
                         [("data", ["data"]), ("deploy_input", ["data"]), ("ip", ["ip"])])
        self.assertEqual(layerforge.Net(proto, caffe.TEST).blobs["ip"].shape, (5, 1))

    def test_unknown_setting(self):
        with self.assertRaisesRegex(NetSpecError, r"L.Convolution\(kernal_size=...\).*no field 'kernal_size'"):
            L.Convolution(L.Input(shape=dict(dim=[1])), kernal_size=3).to_proto()
        with self.assertRaisesRegex(NetSpecError, "top=.*names 1 top"):
            L.Input(top=["a"], ntop=2)
