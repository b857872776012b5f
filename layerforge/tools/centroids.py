"""Class centroids of a trained net's encodings, for its Decode layers (`layerforge centroids`).

Decode learns its centroids during training as a moving average over the last
N * cache_size encodings of each class, computed by ever-changing weights. The exact mean
of each class over a whole training set under the final weights is a better centroid
(the README's Results give the accuracy it adds on the MNIST Siamese demo).
"""
import numpy as np

from layerforge.net import NetError


def class_means(encodings, labels):
    """(means L x D, counts L) over L = max label + 1 classes; absent classes get zeros."""
    labels = np.asarray(labels, np.int64)
    if labels.size and labels.min() < 0:
        raise ValueError(f"labels must be >= 0, found {labels.min()}")
    num_classes = int(labels.max()) + 1 if labels.size else 0
    counts = np.bincount(labels, minlength=num_classes)
    sums = np.zeros((num_classes, encodings.shape[1]))
    np.add.at(sums, labels, encodings)
    means = np.divide(sums, counts[:, None], out=np.zeros_like(sums), where=counts[:, None] > 0)
    return means, counts


def decode_layers(net):
    """The Decode layers of `net` with the name of the blob each one reads its encodings from."""
    found = [(layer, net.bottom_names[layer.name][0]) for layer in net.layers_of_type("Decode")]
    if not found:
        raise NetError(f"{net.source}: no Decode layer whose centroids could be set")
    return found


def set_class_centroids(net, encode_blob, images, labels):
    """Set every Decode layer of `net` to the class means of its encodings of `images` (except
    those labelled with one of its decode_param.ignore_label).
    encode_blob(blob) returns an encode(images) function (tools.oneshot.net_encoder).
    Returns {layer name: counts per class}."""
    labels = np.asarray(labels, np.int64)
    done, encodings = {}, {}
    for layer, blob in decode_layers(net):
        if blob not in encodings:      # one pass over the images per encoding blob
            encodings[blob] = encode_blob(blob)(images)
        kept = layer.learnable_labels(labels) >= 0     # Decode's own ignore_label check
        means, counts = class_means(encodings[blob][kept], labels[kept])
        layer.set_centroids(means, counts)
        done[layer.name] = counts
    return done
