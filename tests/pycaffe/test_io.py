"""caffe.io (after BVLC's test_io.py): BlobProto and Datum conversions, images, Transformer."""
import os
import tempfile
import unittest

import numpy as np
from PIL import Image

import layerforge.pycaffe as caffe


class TestBlobProtoToArray(unittest.TestCase):
    def test_old_format(self):
        blob = caffe.proto.caffe_pb2.BlobProto()
        blob.data.extend(np.zeros(100))
        blob.num, blob.channels, blob.height, blob.width = 1, 1, 10, 10
        self.assertEqual(caffe.io.blobproto_to_array(blob).shape, (1, 1, 10, 10))

    def test_new_format(self):
        blob = caffe.proto.caffe_pb2.BlobProto()
        blob.data.extend(np.zeros(100))
        blob.shape.dim.extend([10, 10])
        self.assertEqual(caffe.io.blobproto_to_array(blob).shape, (10, 10))

    def test_no_shape(self):
        blob = caffe.proto.caffe_pb2.BlobProto()
        blob.data.extend(np.zeros(100))
        with self.assertRaises(ValueError):
            caffe.io.blobproto_to_array(blob)

    def test_scalar(self):
        blob = caffe.proto.caffe_pb2.BlobProto()
        blob.data.extend([123.0])
        self.assertEqual(caffe.io.blobproto_to_array(blob), 123)

    def test_round_trip_with_diff(self):
        data = np.arange(6, dtype=np.float32).reshape(2, 3)
        blob = caffe.io.array_to_blobproto(data, diff=-data)
        np.testing.assert_array_equal(caffe.io.blobproto_to_array(blob), data)
        np.testing.assert_array_equal(caffe.io.blobproto_to_array(blob, return_diff=True), -data)

    def test_blobprotovector(self):
        arrays = [np.ones((2, 2)), np.arange(3.0)]
        back = caffe.io.blobprotovector_str_to_arraylist(caffe.io.arraylist_to_blobprotovector_str(arrays))
        for a, b in zip(arrays, back):
            np.testing.assert_array_equal(a, b)


class TestArrayToDatum(unittest.TestCase):
    def test_label_none_size(self):
        with_label = caffe.io.array_to_datum(np.ones((10, 10, 3)), label=1)
        without = caffe.io.array_to_datum(np.ones((10, 10, 3)))
        self.assertGreater(len(with_label.SerializeToString()), len(without.SerializeToString()))

    def test_round_trip(self):
        pixels = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
        datum = caffe.io.array_to_datum(pixels, label=7)
        self.assertEqual((datum.label, datum.data), (7, pixels.tobytes()))
        np.testing.assert_array_equal(caffe.io.datum_to_array(datum), pixels)
        floats = pixels.astype(float) / 2
        np.testing.assert_array_equal(caffe.io.datum_to_array(caffe.io.array_to_datum(floats)), floats)
        with self.assertRaises(ValueError):
            caffe.io.array_to_datum(np.ones((2, 2)))


class TestImages(unittest.TestCase):
    def test_load_image(self):
        rgb = np.zeros((4, 5, 3), np.uint8)
        rgb[..., 0] = 255
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "red.png")
            Image.fromarray(rgb).save(path)
            color = caffe.io.load_image(path)
            grey = caffe.io.load_image(path, color=False)
        self.assertEqual((color.shape, color.dtype), ((4, 5, 3), np.float32))
        np.testing.assert_array_equal(color[0, 0], [1, 0, 0])
        self.assertEqual(grey.shape, (4, 5, 1))
        self.assertAlmostEqual(float(grey[0, 0, 0]), 76 / 255, places=2)    # ITU-R 601 luma of red

    def test_resize_image(self):
        ramp = np.tile(np.linspace(0, 1, 8, dtype=np.float32), (8, 1))[:, :, None].repeat(3, axis=2)
        small = caffe.io.resize_image(ramp, (4, 4))
        self.assertEqual(small.shape, (4, 4, 3))
        self.assertTrue(np.all(np.diff(small[0, :, 0]) > 0))           # still a ramp
        np.testing.assert_allclose(caffe.io.resize_image(np.full((3, 3, 2), 0.5), (6, 5)), 0.5)

    def test_oversample(self):
        image = np.arange(5 * 6 * 1, dtype=np.float32).reshape(5, 6, 1)
        crops = caffe.io.oversample([image], (3, 4))
        self.assertEqual(crops.shape, (10, 3, 4, 1))
        np.testing.assert_array_equal(crops[0], image[:3, :4])           # top-left corner
        np.testing.assert_array_equal(crops[3], image[2:, 2:])           # bottom-right corner
        np.testing.assert_array_equal(crops[4], image[1:4, 1:5])         # centre
        np.testing.assert_array_equal(crops[5:], crops[:5, :, ::-1])     # mirrors


class TestTransformer(unittest.TestCase):
    def setUp(self):
        self.transformer = caffe.io.Transformer({"data": (1, 3, 4, 5)})
        self.transformer.set_transpose("data", (2, 0, 1))
        self.transformer.set_channel_swap("data", (2, 1, 0))
        self.transformer.set_raw_scale("data", 255)
        self.transformer.set_mean("data", np.array([10.0, 20.0, 30.0]))
        self.transformer.set_input_scale("data", 0.5)

    def test_preprocess_and_deprocess(self):
        image = np.random.default_rng(0).uniform(size=(4, 5, 3)).astype(np.float32)
        out = self.transformer.preprocess("data", image)
        expected = (image.transpose(2, 0, 1)[[2, 1, 0]] * 255 - np.array([10, 20, 30])[:, None, None]) * 0.5
        np.testing.assert_allclose(out, expected, rtol=1e-5)
        np.testing.assert_allclose(self.transformer.deprocess("data", out), image, rtol=1e-5, atol=1e-6)

    def test_resizes_to_the_input(self):
        self.assertEqual(self.transformer.preprocess("data", np.ones((8, 10, 3))).shape, (3, 4, 5))

    def test_checks(self):
        with self.assertRaises(KeyError):
            self.transformer.preprocess("label", np.ones((4, 5, 3)))
        with self.assertRaises(ValueError):
            self.transformer.set_channel_swap("data", (1, 0))
        with self.assertRaises(ValueError):
            self.transformer.set_mean("data", np.ones(2))
        self.transformer.set_mean("data", np.ones((3, 8, 10)))               # resized per pixel
        self.assertEqual(self.transformer.mean["data"].shape, (3, 4, 5))
