"""Net construction and running: filtering, splits, in-place, tied weights, loss weights, weights I/O."""
import sys
import textwrap

import numpy as np
import pytest

from layerforge import registry
from layerforge.io import ConfigError
from layerforge.net import Net, NetError
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import UnknownLayerError
from layerforge.io import parse_text


def net_param(text):
    return parse_text(textwrap.dedent(text), pb.NetParameter())


def make_net(text, phase=pb.TRAIN, **kwargs):
    return Net(net_param(text), phase, dtype=np.float64, **kwargs)


def ip(name, bottom, top, num_output, params=("", ""), extra=""):
    specs = "".join(f'param {{ name: "{p}" }} ' if p else "param { } " for p in params)
    return (f'layer {{ name: "{name}" type: "InnerProduct" bottom: "{bottom}" top: "{top}" {specs}'
            f'inner_product_param {{ num_output: {num_output} weight_filler {{ type: "gaussian" std: 0.5 }} '
            f'bias_filler {{ type: "gaussian" std: 0.5 }} }} {extra}}}\n')


INPUTS = '''
layer { name: "in" type: "Input" top: "x" top: "x2" top: "t"
        input_param { shape { dim: 3 dim: 4 } shape { dim: 3 dim: 4 } shape { dim: 3 dim: 5 } } }
'''


def twin_net(tied=True, names=("w", "b")):
    params = names if tied else ("", "")
    return (INPUTS + ip("a", "x", "ya", 5, params) + 'layer { name: "ra" type: "ReLU" bottom: "ya" top: "ya" }\n'
            + ip("a_p", "x2", "yb", 5, params) + 'layer { name: "rb" type: "ReLU" bottom: "yb" top: "yb" }\n'
            + 'layer { name: "s" type: "Eltwise" bottom: "ya" bottom: "yb" top: "s" }\n'
            + 'layer { name: "loss" type: "EuclideanLoss" bottom: "s" bottom: "t" top: "loss" }\n')


def feed(seed=0):
    rng = np.random.default_rng(seed)
    return dict(x=rng.standard_normal((3, 4)), x2=rng.standard_normal((3, 4)), t=rng.standard_normal((3, 5)))


# ---------------------------------------------------------------- tied weights

def test_tied_parameters_are_one_blob():
    net = make_net(twin_net())
    assert net.params["a"][0] is net.params["a_p"][0]
    assert net.params["a"][1] is net.params["a_p"][1]
    assert len(net.learnable_params) == 2 and net.param_names == ["w", "b"]


def test_shared_diff_is_the_sum_of_each_branch():
    tied = make_net(twin_net())
    untied = make_net(twin_net(tied=False))
    for i in range(2):   # same values in both branches of the untied net
        untied.params["a"][i].data[...] = tied.params["a"][i].data
        untied.params["a_p"][i].data[...] = tied.params["a"][i].data
    inputs = feed()
    tied.clear_param_diffs()
    untied.clear_param_diffs()
    assert tied.forward_backward(**inputs) == pytest.approx(untied.forward_backward(**inputs))
    for i in range(2):
        branch_sum = untied.params["a"][i].diff + untied.params["a_p"][i].diff
        assert np.abs(untied.params["a"][i].diff).sum() > 0 and np.abs(untied.params["a_p"][i].diff).sum() > 0
        np.testing.assert_allclose(tied.params["a"][i].diff, branch_sum, rtol=1e-12)


def test_net_gradient_matches_finite_differences():
    net = make_net(twin_net())
    inputs = feed(1)
    net.clear_param_diffs()
    net.forward_backward(**inputs)
    weight = net.params["a"][0]
    analytic = weight.diff.copy()
    eps = 1e-6
    for index in [(0, 0), (2, 3), (4, 1)]:
        saved = weight.data[index]
        weight.data[index] = saved + eps
        net.forward(**inputs)
        plus = net.loss
        weight.data[index] = saved - eps
        net.forward(**inputs)
        minus = net.loss
        weight.data[index] = saved
        assert analytic[index] == pytest.approx((plus - minus) / (2 * eps), rel=1e-6, abs=1e-9)


def test_shared_shape_mismatch_names_both_layers():
    text = INPUTS + ip("a", "x", "ya", 5, ("w", "")) + ip("a_p", "x2", "yb", 6, ("w", ""))
    with pytest.raises(NetError, match=r"parameter 'w' is shared by layer 'a' with shape \(5, 4\) "
                                       r"and layer 'a_p' with shape \(6, 4\)"):
        make_net(text)


def test_shared_lr_mult_disagreement_names_both_layers():
    text = (INPUTS + ip("a", "x", "ya", 5).replace('param { } param { }', 'param { name: "w" lr_mult: 1 }')
            + ip("a_p", "x2", "yb", 5).replace('param { } param { }', 'param { name: "w" lr_mult: 2 }'))
    with pytest.raises(NetError, match=r"parameter 'w' has lr_mult 1 in layer 'a' but 2 in layer 'a_p'"):
        make_net(text)


# ---------------------------------------------------------------- structure

def test_phase_level_and_stage_filtering():
    text = INPUTS + '''
    layer { name: "train_only" type: "ReLU" bottom: "x" top: "r1" include { phase: TRAIN } }
    layer { name: "not_run" type: "ReLU" bottom: "x" top: "r2" exclude { phase: RUN } }
    layer { name: "deep" type: "ReLU" bottom: "x" top: "r3" include { min_level: 2 } }
    layer { name: "staged" type: "ReLU" bottom: "x" top: "r4" include { stage: "deploy" } }
    layer { name: "unstaged" type: "ReLU" bottom: "x" top: "r5" include { not_stage: "deploy" } }
    '''
    def kept(net):
        return {e.param.name for e in net.entries if e.param.type != "Split"}

    assert kept(make_net(text, pb.TRAIN)) == {"in", "train_only", "not_run", "unstaged"}
    assert kept(make_net(text, pb.RUN, level=2)) == {"in", "deep", "unstaged"}
    assert kept(make_net(text, "TEST", stages=["deploy"])) == {"in", "not_run", "staged"}


def test_split_sums_gradients_of_a_top_read_twice():
    text = INPUTS + ip("a", "x", "y", 5) + '''
    layer { name: "l1" type: "EuclideanLoss" bottom: "y" bottom: "t" top: "l1" }
    layer { name: "l2" type: "EuclideanLoss" bottom: "y" bottom: "t" top: "l2" loss_weight: 3 }
    '''
    net = make_net(text)
    assert any(e.param.type == "Split" for e in net.entries)
    single = make_net(INPUTS + ip("a", "x", "y", 5) +
                      'layer { name: "l" type: "EuclideanLoss" bottom: "y" bottom: "t" top: "l" loss_weight: 4 }')
    for i in range(2):
        single.params["a"][i].data[...] = net.params["a"][i].data
    inputs = feed()
    net.clear_param_diffs()
    single.clear_param_diffs()
    assert net.forward_backward(**inputs) == pytest.approx(single.forward_backward(**inputs))
    np.testing.assert_allclose(net.params["a"][0].diff, single.params["a"][0].diff, rtol=1e-12)


def test_in_place_layers_share_the_blob_and_outputs():
    net = make_net(INPUTS + ip("a", "x", "y", 5) + 'layer { name: "r" type: "ReLU" bottom: "y" top: "y" }')
    assert net.entries[-1].top[0] is net.entries[-1].bottom[0]
    out = net.forward(**feed())
    assert set(out) == {"x2", "t", "y"} and np.all(out["y"] >= 0)


def test_loss_weight_scales_loss_and_gradient():
    base = INPUTS + ip("a", "x", "y", 5)
    loss = 'layer { name: "l" type: "EuclideanLoss" bottom: "y" bottom: "t" top: "l" %s }'
    one, two = make_net(base + loss % ""), make_net(base + loss % "loss_weight: 2.5")
    for i in range(2):
        two.params["a"][i].data[...] = one.params["a"][i].data
    one.clear_param_diffs()
    two.clear_param_diffs()
    assert two.forward_backward(**feed()) == pytest.approx(2.5 * one.forward_backward(**feed()))
    np.testing.assert_allclose(two.params["a"][0].diff, 2.5 * one.params["a"][0].diff)


def test_propagate_down_false_and_force_backward():
    text = INPUTS + ip("a", "x", "y", 5) + ip("b", "y", "z", 5) + \
        'layer { name: "l" type: "EuclideanLoss" bottom: "z" bottom: "t" top: "l" }'
    net = make_net(text.replace('top: "z"', 'top: "z" propagate_down: false'))
    net.forward_backward(**feed())
    assert np.all(net.params["a"][0].diff == 0) and np.any(net.params["b"][0].diff != 0)
    assert np.all(net.blobs["x"].diff == 0)
    forced = make_net("force_backward: true\n" + text)
    forced.forward_backward(**feed())
    assert np.any(forced.blobs["x"].diff != 0)


def test_layers_with_zero_lr_still_pass_gradients_down():
    text = INPUTS + ip("a", "x", "y", 5) + ip("b", "y", "z", 5).replace(
        'param { } param { }', 'param { lr_mult: 0 } param { lr_mult: 0 }') + \
        'layer { name: "l" type: "EuclideanLoss" bottom: "z" bottom: "t" top: "l" }'
    net = make_net(text)
    net.clear_param_diffs()
    net.forward_backward(**feed())
    assert np.any(net.params["a"][0].diff != 0)


def test_legacy_input_fields_become_an_input_layer():
    net = make_net('input: "data" input_dim: 2 input_dim: 3 input_dim: 1 input_dim: 1\n'
                   + ip("a", "data", "y", 4))
    assert net.inputs == ["data"] and net.blobs["data"].shape == (2, 3, 1, 1)


# ---------------------------------------------------------------- weights

def test_save_and_load_round_trip(tmp_path):
    net = make_net(twin_net(), seed=1)
    path = tmp_path / "w.caffemodel"
    net.save(path)
    fresh = make_net(twin_net(), seed=2)
    assert not np.allclose(fresh.params["a"][0].data, net.params["a"][0].data)
    fresh.copy_from(path)
    inputs = feed()
    np.testing.assert_array_equal(fresh.forward(**inputs)["loss"], net.forward(**inputs)["loss"])
    loaded = make_net(twin_net(), weights=str(path))
    np.testing.assert_array_equal(loaded.params["a_p"][0].data, net.params["a"][0].data)


def test_load_shape_mismatch_shows_both_shapes(tmp_path):
    path = tmp_path / "w.caffemodel"
    make_net(INPUTS + ip("a", "x", "y", 5)).save(path)
    other = make_net(INPUTS + ip("a", "x", "y", 7))
    with pytest.raises(NetError, match=r"layer 'a' blob 0 has shape \(5, 4\) in the weights file but "
                                       r"\(7, 4\) in the net"):
        other.copy_from(path)


def test_share_with_uses_the_same_blobs():
    train = make_net(twin_net(), pb.TRAIN)
    test = make_net(twin_net(), pb.TEST)
    test.share_with(train)
    assert test.params["a"][0] is train.params["a"][0] and test.params["a_p"][1] is train.params["a"][1]


# ---------------------------------------------------------------- bad nets

def test_missing_bottom_names_layer_and_suggests():
    with pytest.raises(NetError, match=r"layer 'a' \(InnerProduct\): bottom 'xx' is not produced by any "
                                       r"earlier layer in phase TRAIN\. Did you mean 'x'\?"):
        make_net(INPUTS + ip("a", "xx", "y", 5))


def test_duplicate_top_is_rejected():
    with pytest.raises(NetError, match=r"layer 'b' \(InnerProduct\): top 'y' is already produced by layer 'a'"):
        make_net(INPUTS + ip("a", "x", "y", 5) + ip("b", "x2", "y", 5))


def test_duplicate_layer_name_is_rejected():
    with pytest.raises(NetError, match=r"a layer named 'a' already exists"):
        make_net(INPUTS + ip("a", "x", "y", 5) + ip("a", "x2", "z", 5))


def test_unknown_layer_type_lists_closest():
    with pytest.raises(UnknownLayerError, match=r"unknown layer type 'Convolutoin'\. Did you mean "
                                                r"'Convolution'.*Known types: .*InnerProduct"):
        make_net(INPUTS + 'layer { name: "c" type: "Convolutoin" bottom: "x" top: "c" }')


def test_missing_net_file():
    with pytest.raises(ConfigError, match="file not found"):
        Net("/nonexistent/net.prototxt")


def test_layer_shape_errors_name_the_net_and_layer():
    text = INPUTS + ip("a", "x", "y", 5) + 'layer { name: "l" type: "EuclideanLoss" bottom: "y" bottom: "t" top: "l" }'
    with pytest.raises(NetError, match=r"<NetParameter>: layer 'l'"):
        make_net(text.replace("dim: 3 dim: 5", "dim: 3 dim: 6"))


# ---------------------------------------------------------------- extension points

def test_python_layer(tmp_path, monkeypatch):
    (tmp_path / "my_layers.py").write_text(textwrap.dedent('''
        from layerforge import Layer

        class Double(Layer):
            exact_num_bottom = 1
            def setup(self, bottom, top):
                self.factor = float(self.param_str or 2)
            def reshape(self, bottom, top):
                top[0].reshape_like(bottom[0])
            def forward(self, bottom, top):
                top[0].data[...] = self.factor * bottom[0].data
            def backward(self, top, propagate_down, bottom):
                bottom[0].diff[...] = self.factor * top[0].diff
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    net = make_net(INPUTS + 'layer { name: "d" type: "Python" bottom: "x" top: "d" '
                   'python_param { module: "my_layers" layer: "Double" param_str: "3" } }')
    inputs = feed()
    np.testing.assert_allclose(net.forward(**inputs)["d"], 3 * inputs["x"])
    sys.modules.pop("my_layers", None)


def test_reshape_runs_again_only_when_a_blob_changes_except_for_python_layers(tmp_path, monkeypatch):
    (tmp_path / "counting_layers.py").write_text(textwrap.dedent('''
        from layerforge import Layer

        class Counted(Layer):
            reshapes = 0
            def reshape(self, bottom, top):
                self.reshapes += 1
                top[0].reshape_like(bottom[0])
            def forward(self, bottom, top):
                top[0].data[...] = bottom[0].data
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    net = make_net(INPUTS + 'layer { name: "p" type: "Python" bottom: "x" top: "p" '
                   'python_param { module: "counting_layers" layer: "Counted" } }' + ip("fc", "x", "y", 2))
    fc, python = net.layers["fc"], net.layers["p"]
    calls = []
    monkeypatch.setattr(fc, "reshape", lambda bottom, top: (calls.append(bottom[0].shape),
                                                            type(fc).reshape(fc, bottom, top)))
    inputs = feed()
    for _ in range(3):
        net.forward(**inputs)
    assert calls == [(3, 4)], "a built-in layer is reshaped once while its blobs keep their arrays"
    assert python.reshapes == 1 + 3, "a Python layer is reshaped at set-up and before every forward"
    inputs["x"] = np.ones((5, 4))
    out = net.forward(**inputs)
    assert calls == [(3, 4), (5, 4)] and out["y"].shape == (5, 2)
    sys.modules.pop("counting_layers", None)


def test_filter_follows_its_selector_on_every_forward():
    net = make_net('''
        layer { name: "in" type: "Input" top: "x" top: "s" input_param { shape { dim: 4 dim: 2 } shape { dim: 4 } } }
        layer { name: "f" type: "Filter" bottom: "x" bottom: "s" top: "y" }
    ''', phase=pb.TEST)
    x = np.arange(8.0).reshape(4, 2)
    np.testing.assert_array_equal(net.forward(x=x, s=np.array([1, 0, 1, 0]))["y"], x[[0, 2]])
    np.testing.assert_array_equal(net.forward(x=x, s=np.array([0, 1, 1, 1]))["y"], x[[1, 2, 3]])


def test_python_layer_bad_module():
    with pytest.raises(UnknownLayerError, match=r"layer 'd': cannot import python_param.module 'no_such_mod'"):
        make_net(INPUTS + 'layer { name: "d" type: "Python" bottom: "x" top: "d" '
                 'python_param { module: "no_such_mod" layer: "X" } }')


def test_entry_point_plugin(monkeypatch):
    from layerforge.layer import Layer

    class Negate(Layer):
        def reshape(self, bottom, top):
            top[0].reshape_like(bottom[0])

        def forward(self, bottom, top):
            top[0].data[...] = -bottom[0].data

    class FakeEntryPoint:
        name = "NegatePlugin"

        def load(self):
            return Negate

    monkeypatch.setattr(registry.metadata, "entry_points",
                        lambda group: [FakeEntryPoint()] if group == "layerforge.layers" else [])
    monkeypatch.setattr(registry, "_PLUGINS_LOADED", False)
    monkeypatch.setitem(registry._LAYERS, "__placeholder__", Negate)
    try:
        net = make_net(INPUTS + 'layer { name: "n" type: "NegatePlugin" bottom: "x" top: "n" }')
        inputs = feed()
        np.testing.assert_array_equal(net.forward(**inputs)["n"], -inputs["x"])
    finally:
        registry._LAYERS.pop("NegatePlugin", None)


def test_run_phase_drops_label_bottoms_nobody_produces():
    text = '''
    layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }
    layer { name: "labels" type: "Input" top: "t" include { phase: TRAIN } input_param { shape { dim: 2 dim: 3 } } }
    layer { name: "d" type: "Decode" bottom: "x" bottom: "t" top: "d" }
    '''
    run = make_net(text, pb.RUN)
    assert run.entries[-1].bottom_names == ["x"]
    with pytest.raises(NetError, match=r"bottom 't' is not produced"):
        make_net(text, pb.TEST)


def test_forward_returns_copies_that_later_passes_leave_alone():
    net = make_net(INPUTS + ip("a", "x", "y", 5))
    first = net.forward(**feed(0))["y"]
    kept = first.copy()
    net.forward(**feed(1))
    np.testing.assert_array_equal(first, kept)


# ---------------------------------------------------------------- public helpers

def test_helpers_name_loss_weights_layers_of_a_type_and_blob_names():
    net = make_net(twin_net().replace('top: "loss" }', 'top: "loss" loss_weight: 2 }'))
    assert net.loss_weights == {"loss": 2.0}
    assert [layer.name for layer in net.layers_of_type("InnerProduct")] == ["a", "a_p"]
    assert net.layers_of_type("Decode") == []
    assert net.bottom_names["s"] == ["ya", "yb"] and net.top_names["ra"] == ["ya"]
    assert net.inputs == ["x", "x2", "t"]
    net.forward(**feed())
    net.seed_loss_diffs()
    assert net.blobs["loss"].diff == pytest.approx(2.0)


def test_weights_of_another_net_are_an_error(tmp_path):
    path = tmp_path / "other.caffemodel"
    make_net(INPUTS + ip("other", "x", "y", 5)).save(path)
    net = make_net(INPUTS + ip("a", "x", "y", 5))
    with pytest.raises(NetError, match=r"none of its 1 layers with weights \(other\) is a layer of net"):
        net.copy_from(path)


def test_partial_weights_name_what_was_skipped_and_kept(tmp_path, caplog):
    path = tmp_path / "w.caffemodel"
    make_net(INPUTS + ip("a", "x", "y", 5) + ip("gone", "x", "z", 3)).save(path)
    net = make_net(INPUTS + ip("a", "x", "y", 5) + ip("new", "x", "z", 3))
    with caplog.at_level("INFO", logger="layerforge"):
        net.copy_from(path)
    messages = [r.getMessage() for r in caplog.records]
    assert any("ignoring source layer 'gone'" in m for m in messages)
    assert any("layer 'new' keeps its initial values" in m for m in messages)
    assert messages[-1].endswith("copied 1 of 2 layers with weights")


def test_a_loss_layer_without_top_gets_an_anonymous_one_as_in_caffe():
    text = INPUTS + ip("a", "x", "y", 5) + 'layer { name: "loss" type: "EuclideanLoss" bottom: "y" bottom: "t" }'
    net = make_net(text)
    rng = np.random.default_rng(0)
    inputs = {"x": rng.standard_normal((3, 4)), "x2": rng.standard_normal((3, 4)), "t": rng.standard_normal((3, 5))}
    outputs = net.forward(**inputs)
    y = net.blobs["y"].data
    assert net.loss == pytest.approx(np.sum((y - inputs["t"]) ** 2) / 6)
    assert "loss (automatic)" not in outputs and "loss (automatic)" not in net.param.layer[-1].top
    net.backward()
    assert net.params["a"][0].diff.any()


@pytest.mark.parametrize("kernel, channels, engine", [(5, 1, ""), (3, 4, ""), (3, 4, "engine: CAFFE"), (2, 4, "")],
                         ids=["direct", "winograd", "im2col", "im2row"])
@pytest.mark.parametrize("frozen", ["weight", "bias"])
def test_frozen_convolution_parameter_gets_no_gradient(kernel, channels, engine, frozen):
    """Caffe's param_propagate_down: lr_mult 0 means backward leaves that diff alone."""
    lr = {"weight": (0, 1), "bias": (1, 0)}[frozen]
    for kind in ("Convolution", "Deconvolution"):
        text = (f'layer {{ name: "in" type: "Input" top: "x" top: "t" input_param {{ shape {{ dim: 2 dim: {channels} '
                f'dim: 9 dim: 9 }} shape {{ dim: 1 }} }} }}\n'
                f'layer {{ name: "c" type: "{kind}" bottom: "x" top: "y" param {{ lr_mult: {lr[0]} }} '
                f'param {{ lr_mult: {lr[1]} }} convolution_param {{ num_output: 4 kernel_size: {kernel} {engine} '
                f'weight_filler {{ type: "gaussian" }} bias_filler {{ type: "gaussian" }} }} }}\n'
                'layer { name: "r" type: "Reduction" bottom: "y" top: "loss" loss_weight: 1 }\n')
        net = make_net(text)
        assert kind == "Deconvolution" or net.layers["c"].algorithm.startswith(("direct", "winograd", "im2"))
        net.forward(x=np.random.default_rng(0).standard_normal(net.blobs["x"].shape), t=np.zeros(1))
        net.clear_param_diffs()
        net.backward()
        weight, bias = net.params["c"]
        assert (not weight.diff.any()) == (frozen == "weight") and (not bias.diff.any()) == (frozen == "bias"), kind
