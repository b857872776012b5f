"""pycaffe's caffe.Classifier: a Net that classifies H×W×K images (scaled, centre-cropped or
oversampled to 10 crops)."""
import numpy as np

from layerforge.proto import layerforge_pb2 as pb
from layerforge.pycaffe import io
from layerforge.pycaffe.pycaffe import Net


def configure_transformer(net, mean=None, input_scale=None, raw_scale=None, channel_swap=None):
    """A Transformer for the net's first input: H×W×K images to K×H×W, with the given settings."""
    in_ = net.inputs[0]
    transformer = io.Transformer({in_: net.blobs[in_].data.shape})
    transformer.set_transpose(in_, (2, 0, 1))
    if mean is not None:
        transformer.set_mean(in_, mean)
    if input_scale is not None:
        transformer.set_input_scale(in_, input_scale)
    if raw_scale is not None:
        transformer.set_raw_scale(in_, raw_scale)
    if channel_swap is not None:
        transformer.set_channel_swap(in_, channel_swap)
    return transformer


class Classifier(Net):
    """`Classifier(model, weights, image_dims=None, mean=None, input_scale=None, raw_scale=None,
    channel_swap=None)`; `predict(images, oversample=True)` gives N×classes probabilities."""

    def __init__(self, model_file, pretrained_file, image_dims=None, mean=None, input_scale=None,
                 raw_scale=None, channel_swap=None):
        super().__init__(model_file, pb.TEST, weights=pretrained_file)
        self.transformer = configure_transformer(self, mean, input_scale, raw_scale, channel_swap)
        self.crop_dims = np.array(self.blobs[self.inputs[0]].data.shape[2:])
        self.image_dims = self.crop_dims if image_dims is None or not len(image_dims) else image_dims

    def predict(self, inputs, oversample=True):
        """Class scores of each image: the mean over 10 crops (oversample) or the centre crop."""
        images = np.zeros((len(inputs), self.image_dims[0], self.image_dims[1], inputs[0].shape[2]),
                          np.float32)
        for i, image in enumerate(inputs):
            images[i] = io.resize_image(image, self.image_dims)
        if oversample:
            images = io.oversample(images, self.crop_dims)
        else:
            corner = ((np.array(self.image_dims) - self.crop_dims) / 2.0).astype(int)
            images = images[:, corner[0]:corner[0] + self.crop_dims[0],
                            corner[1]:corner[1] + self.crop_dims[1], :]
        in_ = self.inputs[0]
        caffe_in = np.stack([self.transformer.preprocess(in_, image) for image in images])
        predictions = self.forward_all(**{in_: caffe_in})[self.outputs[0]]
        if oversample:
            predictions = predictions.reshape(len(predictions) // 10, 10, -1).mean(axis=1)
        return predictions
