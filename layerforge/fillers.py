"""Weight fillers, as in Caffe: constant, uniform, gaussian, xavier, msra, positive_unitball, bilinear."""
import numpy as np


def _fans(shape):
    """Caffe's fan_in = count / shape[0], fan_out = count / shape[1]."""
    count = int(np.prod(shape))
    fan_in = count // shape[0] if len(shape) > 0 and shape[0] else count
    fan_out = count // shape[1] if len(shape) > 1 and shape[1] else count
    return fan_in, fan_out


def _variance_denominator(param, shape):
    fan_in, fan_out = _fans(shape)
    norm = param.variance_norm
    if norm == param.AVERAGE:
        return (fan_in + fan_out) / 2.0
    if norm == param.FAN_OUT:
        return float(fan_out)
    return float(fan_in)


def filler_values(param, shape, rng):
    """Values for a blob of `shape` drawn as the FillerParameter `param` says (float64)."""
    kind = param.type
    shape = tuple(shape)
    if kind == "constant":
        return np.full(shape, param.value)
    if kind == "uniform":
        return rng.uniform(param.min, param.max, shape)
    if kind == "gaussian":
        values = rng.normal(param.mean, param.std, shape)
        if param.sparse >= 0:
            if len(shape) < 2:
                raise ValueError("a sparse gaussian filler needs a blob of at least 2 axes")
            keep_probability = param.sparse / shape[1]
            values *= rng.random(shape) < keep_probability
        return values
    if kind == "xavier":
        scale = np.sqrt(3.0 / _variance_denominator(param, shape))
        return rng.uniform(-scale, scale, shape)
    if kind == "msra":
        return rng.normal(0.0, np.sqrt(2.0 / _variance_denominator(param, shape)), shape)
    if kind == "positive_unitball":
        values = rng.uniform(0.0, 1.0, shape)
        rows = values.reshape(shape[0], -1)
        rows /= rows.sum(axis=1, keepdims=True)
        return values
    if kind == "bilinear":
        if len(shape) != 4 or shape[2] != shape[3]:
            raise ValueError(f"the bilinear filler needs a 4-D blob with square kernels, got {shape}")
        size = shape[3]
        factor = np.ceil(size / 2.0)
        center = (2 * factor - 1 - factor % 2) / (2.0 * factor)
        ramp = 1 - np.abs(np.arange(size) / factor - center)
        return np.broadcast_to(np.outer(ramp, ramp), shape).copy()
    raise ValueError(f"unknown filler type {kind!r}; known: constant, uniform, gaussian, "
                     f"xavier, msra, positive_unitball, bilinear")


def fill(blob, param, rng):
    """Fill `blob.data` in place."""
    blob.data[...] = filler_values(param, blob.shape, rng)
