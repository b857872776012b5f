"""Caffe's extract_features: the values of some blobs over N batches, to a .npz or databases."""
import numpy as np

from layerforge.netparam import PHASE_NAMES, NetError
from layerforge.proto import layerforge_pb2 as pb


def extract_features(net, blobs, iterations):
    """{blob: (N·batch)×... array} of `blobs` over `iterations` forward passes of `net`."""
    for name in blobs:
        if name not in net.blobs:
            raise NetError(f"{net.source}: the net has no blob '{name}' in phase "
                           f"{PHASE_NAMES[net.phase]}; blobs: {', '.join(net.blobs)}")
    rows = {name: [] for name in blobs}
    for _ in range(iterations):
        net.forward()
        for name in blobs:
            rows[name].append(net.blobs[name].data.copy())
    return {name: np.concatenate(parts) for name, parts in rows.items()}


def feature_datums(features):
    """(key, serialized Datum) per item, its values in float_data shaped C×H×W as Caffe's tool
    writes them (an N×D blob gives D×1×1); the label is 0, as Caffe leaves it."""
    datum = pb.Datum()
    for i, item in enumerate(features):
        shape = (tuple(item.shape) + (1, 1, 1))[:3] if item.ndim <= 3 else None
        if shape is None:
            raise NetError(f"items of shape {item.shape} do not fit a Datum (at most C×H×W)")
        datum.channels, datum.height, datum.width = shape
        del datum.float_data[:]
        datum.float_data.extend(np.asarray(item, np.float32).ravel())
        yield b"%010d" % i, datum.SerializeToString()
