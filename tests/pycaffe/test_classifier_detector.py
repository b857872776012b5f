"""caffe.Classifier and caffe.Detector on a tiny colour classifier with known weights."""
import os
import shutil
import tempfile
import unittest

import numpy as np
from PIL import Image

import layerforge.pycaffe as caffe

DEPLOY = """name: 'tiny'
layer { type: 'Input' name: 'data' top: 'data' input_param { shape { dim: 4 dim: 3 dim: 6 dim: 6 } } }
layer { type: 'InnerProduct' name: 'ip' bottom: 'data' top: 'ip' inner_product_param { num_output: 3 } }
layer { type: 'Softmax' name: 'prob' bottom: 'ip' top: 'prob' }
"""


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class TinyNet(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.mkdtemp()
        self.model = os.path.join(self.folder, "deploy.prototxt")
        with open(self.model, "w") as f:
            f.write(DEPLOY)
        net = caffe.Net(self.model, caffe.TEST)
        rng = np.random.default_rng(0)
        self.weight = rng.normal(size=(3, 108)).astype(np.float32)
        net.params["ip"][0].data[...] = self.weight
        net.params["ip"][1].data[...] = 0
        self.weights = os.path.join(self.folder, "tiny.caffemodel")
        net.save(self.weights)
        self.images = [rng.uniform(size=(8, 8, 3)).astype(np.float32) for _ in range(5)]

    def tearDown(self):
        shutil.rmtree(self.folder)

    def expected(self, crops, mean, raw_scale, swap):
        """Class probabilities of H×W×3 crops after Caffe's preprocessing, in numpy."""
        x = np.stack([(c.transpose(2, 0, 1)[list(swap)] * raw_scale - mean[:, None, None]) for c in crops])
        return softmax(x.reshape(len(x), -1) @ self.weight.T)


class TestClassifier(TinyNet):
    def test_predict_centre_and_oversampled(self):
        mean = np.array([1.0, 2.0, 3.0], np.float32)
        classifier = caffe.Classifier(self.model, self.weights, image_dims=(8, 8), mean=mean,
                                      raw_scale=10, channel_swap=(2, 1, 0))
        centre = classifier.predict(self.images, oversample=False)
        self.assertEqual(centre.shape, (5, 3))
        crops = [image[1:7, 1:7] for image in self.images]
        np.testing.assert_allclose(centre, self.expected(crops, mean, 10, (2, 1, 0)), rtol=1e-4, atol=1e-6)

        oversampled = classifier.predict(self.images)
        crops = caffe.io.oversample(self.images, (6, 6))
        per_crop = self.expected(crops, mean, 10, (2, 1, 0)).reshape(5, 10, 3)
        np.testing.assert_allclose(oversampled, per_crop.mean(axis=1), rtol=1e-4, atol=1e-6)


class TestDetector(TinyNet):
    def test_detect_windows(self):
        path = os.path.join(self.folder, "image.png")
        pixels = (self.images[0] * 255).astype(np.uint8)
        Image.fromarray(pixels).save(path)
        detector = caffe.Detector(self.model, self.weights, raw_scale=1)
        windows = [np.array([0, 0, 6, 6]), np.array([2, 1, 8, 7])]
        detections = detector.detect_windows([(path, windows)])
        self.assertEqual([d["filename"] for d in detections], [path, path])
        image = pixels.astype(np.float32) / 255
        crops = [image[w[0]:w[2], w[1]:w[3]] for w in windows]
        expected = self.expected(crops, np.zeros(3), 1, (0, 1, 2))
        for detection, window, probs in zip(detections, windows, expected):
            np.testing.assert_array_equal(detection["window"], window)
            np.testing.assert_allclose(detection["prediction"], probs, rtol=1e-4, atol=1e-6)

    def test_context_pad_fills_with_the_mean(self):
        mean = np.array([0.25, 0.5, 0.75], np.float32)
        detector = caffe.Detector(self.model, self.weights, mean=mean, context_pad=1)
        np.testing.assert_array_equal(detector.crop_dims, [6, 6, 3])
        crop = detector.crop(self.images[0], np.array([0, 0, 5, 5]))
        self.assertEqual(crop.shape, (6, 6, 3))
        np.testing.assert_allclose(crop[0, 0], mean)                     # outside the image: the mean
        self.assertFalse(np.allclose(crop[3, 3], mean))                 # inside: the picture
