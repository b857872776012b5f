"""Test kit for layer authors: build one layer from prototxt text, run it, check its gradients.

`make_layer` / `forward` build and run one layer from its prototxt text. `check_gradient`
compares backward() with central differences in float64 for every bottom element and every
parameter element (a seeded sample of at most `max_checks` elements per blob); the objective
is sum_i <w_i, top_i> with fixed random weights w_i, so every top and every element of it
contributes. `check_in_place` runs a layer with top[0] sharing bottom[0]'s Blob.
`LayerTestCase` bundles them: a test class declares the layer's text, its inputs and a
reference, and inherits the forward, gradient, dtype and in-place tests.
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


def _run(layer, bottom, top, top_diffs):
    """Forward, then backward with `top_diffs` into every bottom; the tops, bottom diffs and
    parameter diffs it gives."""
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    tops = [t.data.copy() for t in top]
    for blob in layer.blobs:
        blob.diff[...] = 0
    for t, diff in zip(top, top_diffs):
        t.diff[...] = diff
    if layer.has_backward:
        layer.backward(top, [True] * len(bottom), bottom)
    return tops, [b.diff.copy() for b in bottom], [b.diff.copy() for b in layer.blobs]


def check_in_place(text, bottoms, phase="TRAIN", seed=0):
    """Assert the layer run with top[0] and bottom[0] as one Blob gives the same tops, bottom
    diffs and parameter diffs as with separate Blobs (bit for bit up to 1e-12)."""
    layer, bottom, top = make_layer(text, bottoms, phase, seed)
    rng = np.random.default_rng(seed + 7)
    top_diffs = [rng.standard_normal(t.shape) for t in top]
    want = _run(layer, bottom, top, top_diffs)

    bottom = [Blob.from_array(b, np.float64) for b in bottoms]
    top = [bottom[0]] + [Blob(dtype=np.float64) for _ in top[1:]]
    layer = create_layer(layer_param(text), PHASES[phase], np.random.default_rng(seed))
    layer.set_up(bottom, top)
    got = _run(layer, bottom, top, top_diffs)

    for kind, mine, theirs in zip(("top", "bottom diff", "param diff"), got, want):
        for i, (g, w) in enumerate(zip(mine, theirs)):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=0, err_msg=f"in place: {kind} {i}")


class LayerTestCase:
    """Base of a layer's test class, in the style of Chainer's layer tests.

    A subclass (named Test..., so pytest collects it) declares:
    - `cases`: a list of dicts, each one test case; every test below runs once per case.
    - `text(**case)`: the layer's prototxt (LayerParameter text).
    - `inputs(**case)`: the bottom arrays (float64).
    - `reference(bottoms, **case)`: the expected top arrays (a list, or one array), from
      plain numpy.
    and may set `phase`, `rtol` / `atol` (forward against the reference in float64),
    `dtype_rtol` / `dtype_atol` (float32 against the reference), `max_checks` and `check_bottoms` (the
    gradient check), or override `in_place_ok(**case)` for cases the layer rejects in place.

    Inherited tests: forward against the reference; the float64 gradient check on every
    checked bottom and every parameter; float32 and float64 tops keep the bottoms' dtype and
    match the reference; for layers whose class allows it, the in-place check.
    """

    cases = [{}]
    phase = "TRAIN"
    rtol, atol = 1e-6, 0.0
    dtype_rtol, dtype_atol = 1e-5, 1e-6
    max_checks = 40
    check_bottoms = None

    def pytest_generate_tests(self, metafunc):
        if "case" in metafunc.fixturenames:
            ids = ["-".join(f"{k}={v}" for k, v in case.items()) or "default" for case in self.cases]
            metafunc.parametrize("case", self.cases, ids=ids)

    def text(self, **case):
        raise NotImplementedError

    def inputs(self, **case):
        raise NotImplementedError

    def reference(self, bottoms, **case):
        raise NotImplementedError

    def in_place_ok(self, **case):
        return True

    def _expected(self, bottoms, case):
        expected = self.reference(bottoms, **case)
        return list(expected) if isinstance(expected, (list, tuple)) else [expected]

    def test_forward(self, case):
        bottoms = self.inputs(**case)
        tops = forward(self.text(**case), bottoms, self.phase)
        expected = self._expected(bottoms, case)
        assert len(tops) == len(expected)
        for top, want in zip(tops, expected):
            np.testing.assert_allclose(top, want, rtol=self.rtol, atol=self.atol)

    def test_gradient(self, case):
        layer, _, _ = make_layer(self.text(**case), self.inputs(**case), self.phase)
        if not layer.has_backward:
            import pytest
            pytest.skip(f"{layer.type_name} has no backward")
        assert check_gradient(self.text(**case), self.inputs(**case), self.phase,
                              check_bottoms=self.check_bottoms, max_checks=self.max_checks) > 0

    def test_dtype_is_kept(self, case):
        for dtype, rtol, atol in ((np.float32, self.dtype_rtol, self.dtype_atol),
                                  (np.float64, self.rtol, self.atol)):
            bottoms = [np.asarray(b, dtype) for b in self.inputs(**case)]
            layer, bottom, top = make_layer(self.text(**case), bottoms, self.phase, dtype=dtype)
            layer.forward(bottom, top)
            expected = self._expected([b.astype(np.float64) for b in bottoms], case)
            for blob, want in zip(top, expected):
                assert blob.data.dtype == dtype
                np.testing.assert_allclose(blob.data, want, rtol=rtol, atol=atol)

    def test_in_place(self, case):
        layer, _, _ = make_layer(self.text(**case), self.inputs(**case), self.phase)
        if not (layer.allow_in_place and self.in_place_ok(**case)):
            import pytest
            pytest.skip(f"{layer.type_name} does not run in place here")
        check_in_place(self.text(**case), self.inputs(**case), self.phase)
