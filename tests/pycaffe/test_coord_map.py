"""caffe.coord_map (after BVLC's test_coord_map.py): coordinate maps through conv, pool,
deconv and crop, and the Crop layer crop() defines."""
import unittest

import numpy as np

import layerforge.pycaffe as caffe
from layerforge.pycaffe import layers as L
from layerforge.pycaffe import params as P
from layerforge.pycaffe.coord_map import coord_map_from_to, crop


def coord_net_spec(ks=3, stride=1, pad=0, pool=2, dstride=2, dpad=0):
    """conv - pool - deconv, the pattern of every test below."""
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[2, 1, 100, 100]))
    n.aux = L.Input(shape=dict(dim=[2, 1, 20, 20]))
    n.conv = L.Convolution(n.data, num_output=10, kernel_size=ks, stride=stride, pad=pad)
    n.pool = L.Pooling(n.conv, pool=P.Pooling.MAX, kernel_size=pool, stride=pool, pad=0)
    deconv_ks = [s * 2 for s in dstride] if isinstance(dstride, list) else dstride * 2
    n.deconv = L.Deconvolution(n.pool, num_output=10, kernel_size=deconv_ks, stride=dstride, pad=dpad)
    return n


class TestCoordMap(unittest.TestCase):
    def test_conv_pool_deconv(self):
        n = coord_net_spec()
        self.assertEqual(coord_map_from_to(n.deconv, n.data), (1, 1, 0))     # 2x pool, 2x deconv
        n = coord_net_spec(pool=4, dstride=4)
        self.assertEqual(coord_map_from_to(n.deconv, n.data), (1, 1, -1))    # 4x: shift by one

    def test_pass(self):
        n = coord_net_spec()
        expected = coord_map_from_to(n.deconv, n.data)
        n.relu = L.ReLU(n.deconv)
        n.conv1x1 = L.Convolution(n.relu, num_output=10, kernel_size=1, stride=1, pad=0)
        for top in (n.relu, n.conv1x1):
            self.assertEqual(coord_map_from_to(top, n.data), expected)

    def test_padding(self):
        n = coord_net_spec()
        ax, a, b = coord_map_from_to(n.deconv, n.data)
        for pad in (1, 4, 10):
            n = coord_net_spec(pad=pad)
            self.assertEqual(coord_map_from_to(n.deconv, n.data)[1:], (a, b - pad))
            n = coord_net_spec(dpad=pad)
            self.assertEqual(coord_map_from_to(n.deconv, n.data)[1:], (a, b + pad))
            n = coord_net_spec(pad=pad, dpad=pad)
            self.assertEqual(coord_map_from_to(n.deconv, n.data)[1:], (a, b))

    def test_multi_conv(self):
        n = coord_net_spec()
        n.conv_data, n.conv_aux = L.Convolution(n.data, n.aux, ntop=2, num_output=10, kernel_size=5,
                                                stride=2, pad=0)
        self.assertEqual(coord_map_from_to(n.conv_data, n.data), coord_map_from_to(n.conv_aux, n.aux))

    def test_rect(self):
        n3x3 = coord_net_spec(ks=3, stride=1, pad=0)
        n5x5 = coord_net_spec(ks=5, stride=2, pad=10)
        n3x5 = coord_net_spec(ks=[3, 5], stride=[1, 2], pad=[0, 10])
        ax_3x3, a_3x3, b_3x3 = coord_map_from_to(n3x3.deconv, n3x3.data)
        ax_5x5, a_5x5, b_5x5 = coord_map_from_to(n5x5.deconv, n5x5.data)
        ax_3x5, a_3x5, b_3x5 = coord_map_from_to(n3x5.deconv, n3x5.data)
        self.assertTrue(ax_3x3 == ax_5x5 == ax_3x5 == 1)
        self.assertEqual((a_3x3, b_3x3), (a_3x5[0], b_3x5[0]))
        self.assertEqual((a_5x5, b_5x5), (a_3x5[1], b_3x5[1]))

    def test_nd_conv(self):
        n = caffe.NetSpec()
        n.data = L.Input(shape=dict(dim=[2, 3, 100, 100, 100]))
        n.conv = L.Convolution(n.data, num_output=10, kernel_size=[3, 3, 3], stride=[1, 1, 1],
                               pad=[0, 1, 2])
        n.pool = L.Pooling(n.conv, pool=P.Pooling.MAX, kernel_size=2, stride=2, pad=0)
        n.deconv = L.Deconvolution(n.pool, num_output=10, kernel_size=4, stride=2, pad=0)
        ax, a, b = coord_map_from_to(n.deconv, n.data)
        self.assertEqual(ax, 1)
        self.assertTrue(len(a) == len(b) == 3 and np.all(a == 1))
        self.assertEqual((b[0] - 1, b[1] - 1), (b[1], b[2]))

    def test_crop_of_crop(self):
        n = coord_net_spec()
        ax, a, b = coord_map_from_to(n.deconv, n.data)
        for offset in (0, 3, 10):
            n.crop = L.Crop(n.deconv, n.data, axis=2, offset=offset)
            self.assertEqual(coord_map_from_to(n.crop, n.data), (ax, a, b + offset))

    def test_crop_helper(self):
        n = coord_net_spec(pool=4, dstride=4)
        n.crop = crop(n.deconv, n.data)
        layer = n.to_proto().layer[-1]
        self.assertEqual(layer.type, "Crop")
        self.assertEqual(list(layer.bottom), ["deconv", "data"])
        self.assertEqual((layer.crop_param.axis, list(layer.crop_param.offset)), (2, [1]))

    def test_catch_unconnected(self):
        n = coord_net_spec()
        n.ip = L.InnerProduct(n.deconv, num_output=10)
        with self.assertRaises(RuntimeError):
            coord_map_from_to(n.ip, n.data)

    def test_catch_scale_mismatch(self):
        n = coord_net_spec(pool=3, dstride=2)
        with self.assertRaises(AssertionError):
            crop(n.deconv, n.data)

    def test_catch_negative_crop(self):
        n = coord_net_spec(dpad=10)
        with self.assertRaises(AssertionError):
            crop(n.deconv, n.data)
