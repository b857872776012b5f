"""Test kit for layer authors: build one layer from prototxt text, run it, check its gradients.

The gradient check compares backward() with central differences in float64 for every
bottom element and every parameter element (a seeded sample of at most `max_checks`
elements per blob). The objective is sum_i <w_i, top_i> with fixed random weights w_i,
so every top and every element of it contributes.
"""
import numpy as np
from google.protobuf import text_format

from layerforge.blob import Blob
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import create_layer

PHASES = {"TRAIN": pb.TRAIN, "TEST": pb.TEST, "RUN": pb.RUN}


def layer_param(text):
    return text_format.Parse(text, pb.LayerParameter())


def make_layer(text, bottoms, phase="TRAIN", seed=0, dtype=np.float64, num_tops=None):
    """Build the layer described by `text`, set it up on `bottoms` (arrays); return layer, bottom, top."""
    param = layer_param(text)
    layer = create_layer(param, PHASES[phase], np.random.default_rng(seed))
    bottom = [Blob.from_array(b, dtype) for b in bottoms]
    top = [Blob(dtype=dtype) for _ in range(num_tops if num_tops is not None else max(len(param.top), 1))]
    layer.set_up(bottom, top)
    return layer, bottom, top


def forward(text, bottoms, phase="TRAIN", seed=0, dtype=np.float64, num_tops=None):
    """Top arrays of one forward pass."""
    layer, bottom, top = make_layer(text, bottoms, phase, seed, dtype, num_tops)
    layer.forward(bottom, top)
    return [t.data.copy() for t in top]


def _objective(layer, bottom, top, weights, seed):
    layer.rng = np.random.default_rng(seed)  # stochastic layers draw the same numbers every time
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    return sum(float(np.sum(w * t.data)) for w, t in zip(weights, top))


def _sample(count, max_checks, rng):
    if count <= max_checks:
        return np.arange(count)
    return rng.choice(count, max_checks, replace=False)


def check_gradient(text, bottoms, phase="TRAIN", seed=0, check_bottoms=None, eps=1e-6,
                   rtol=1e-5, atol=1e-8, max_checks=200, num_tops=None, layer_hook=None):
    """Assert analytic == numerical gradient for the chosen bottoms and all parameters.

    `check_bottoms`: indices of bottoms to check (default: all). `layer_hook(layer)`
    runs once after setup, e.g. to set parameters to chosen values. Returns the number
    of elements compared, so callers can assert the check was not vacuous.
    """
    layer, bottom, top = make_layer(text, bottoms, phase, seed, np.float64, num_tops)
    if layer_hook is not None:
        layer_hook(layer)
    check_bottoms = range(len(bottom)) if check_bottoms is None else check_bottoms
    rng = np.random.default_rng(seed + 1)
    _objective(layer, bottom, top, [], seed)  # one forward first: it settles the top shapes
    weights = [rng.standard_normal(t.shape) for t in top]

    for blob in layer.blobs:
        blob.diff[...] = 0
    _objective(layer, bottom, top, weights, seed)
    for w, t in zip(weights, top):
        t.diff[...] = w
    propagate_down = [i in check_bottoms for i in range(len(bottom))]
    layer.backward(top, propagate_down, bottom)
    targets = [(f"bottom[{i}]", bottom[i]) for i in check_bottoms]
    targets += [(f"param[{j}]", b) for j, b in enumerate(layer.blobs) if b.learnable]
    analytic = {name: blob.diff.copy() for name, blob in targets}

    compared = 0
    for name, blob in targets:
        flat = blob.data.reshape(-1)
        for index in _sample(flat.size, max_checks, rng):
            saved = flat[index]
            flat[index] = saved + eps
            plus = _objective(layer, bottom, top, weights, seed)
            flat[index] = saved - eps
            minus = _objective(layer, bottom, top, weights, seed)
            flat[index] = saved
            numeric = (plus - minus) / (2 * eps)
            got = analytic[name].reshape(-1)[index]
            scale = max(abs(numeric), abs(got), 1.0)
            assert abs(got - numeric) <= atol + rtol * scale, (
                f"{name} element {index}: analytic {got:.10g} vs numeric {numeric:.10g}")
            compared += 1
    assert compared > 0, "the gradient check compared nothing"
    return compared
