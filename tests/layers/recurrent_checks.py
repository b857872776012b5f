"""Checks shared by the RNN and LSTM tests: prototxt, inputs, and Caffe's TestForward."""
import numpy as np

from layerforge.testing import make_layer


def recurrent_text(layer_type, num_output=4, expose_hidden=False, bottoms=2, tops=1):
    names = "".join(f' bottom: "b{i}"' for i in range(bottoms)) + "".join(f' top: "t{i}"' for i in range(tops))
    return (f'name: "rec" type: "{layer_type}"{names} recurrent_param {{ num_output: {num_output} '
            f'expose_hidden: {str(expose_hidden).lower()} weight_filler {{ type: "gaussian" std: 0.4 }} '
            'bias_filler { type: "gaussian" std: 0.3 } }')


def sequence(timesteps=5, num=3, item=(3, 2), cont=(0, 1, 1, 0, 1), seed=0):
    """x (T, N, ...) uniform in [-1, 1] and cont (T, N); `cont` is one marker per timestep, the
    last stream starting its sequence one step later."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (timesteps, num) + item)
    markers = np.repeat(np.asarray(cont, float)[:, None], num, axis=1)
    markers[1, -1] = 0
    return x, markers


def check_caffe_forward(layer_type, extra_bottoms=()):
    """Caffe's TestForward: a sequence run in one batch equals the same steps run one per
    forward (the state carries over); with every cont 0 only the first step agrees."""
    timesteps, num = 3, 3
    rng = np.random.default_rng(1)
    x = rng.standard_normal((timesteps, num, 3, 2))
    cont = np.repeat((np.arange(timesteps) > 0)[:, None], num, axis=1).astype(float)
    text = recurrent_text(layer_type, num_output=7, bottoms=2 + len(extra_bottoms))
    layer, bottom, top = make_layer(text, [x, cont, *extra_bottoms])
    layer.forward(bottom, top)
    full = top[0].data.copy()
    assert full.shape == (timesteps, num, 7)
    for markers, agree in ((cont, [True] * timesteps), (np.zeros_like(cont), [True, False, False])):
        step, step_bottom, step_top = make_layer(text, [x[:1], cont[:1], *extra_bottoms])
        for blob, source in zip(step.blobs, layer.blobs):
            blob.data[...] = source.data
        for t in range(timesteps):
            step_bottom[0].data[...] = x[t:t + 1]
            step_bottom[1].data[...] = markers[t:t + 1]
            step.reshape(step_bottom, step_top)
            step.forward(step_bottom, step_top)
            if agree[t]:
                np.testing.assert_allclose(step_top[0].data[0], full[t], rtol=1e-12, atol=1e-12)
            else:
                assert np.all(step_top[0].data[0] != full[t])
