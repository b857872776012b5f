"""`layerforge oneshot` on a tiny net (Input -> InnerProduct "feat") and tiny LMDBs / image folders."""
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from layerforge.cli import main
from layerforge.data import write_lmdb
from layerforge.data.store import datums
from layerforge.net import Net
from layerforge.tools.oneshot import concatenated_encoder, one_shot_accuracy
from tests.cli import write_net

ROOT = Path(__file__).resolve().parents[2]

TINY = """
name: "tiny"
layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 2 dim: 2 } } }
layer { name: "feat" type: "InnerProduct" bottom: "data" top: "feat"
        inner_product_param { num_output: 4 weight_filler { type: "xavier" } } }
"""
# The same net trained from a Data layer whose transform the evaluation must copy.
WITH_DATA = """
layer { name: "mnist" type: "Data" top: "data" top: "label" include { phase: TRAIN }
        transform_param { scale: 0.1 } data_param { source: "nowhere" batch_size: 4 } }
""" + TINY.replace('layer { name: "input"', 'layer { include { phase: RUN } name: "input"')


def tiny_model(folder, text=TINY, identity=False):
    """The net prototxt and weights (xavier, or feat = the 4 pixels when `identity`)."""
    model = write_net(folder, text, "tiny.prototxt")
    net = Net(model, "RUN", seed=3)
    if identity:
        net.params["feat"][0].data[...] = np.eye(4)
        net.params["feat"][1].data[...] = 0
    weights = folder / "tiny.caffemodel"
    net.save(weights)
    return model, weights


def lmdb_of(folder, images, labels, name="db"):
    return write_lmdb(folder / name, datums(np.asarray(images, np.uint8), labels))


def run(capsys, *argv):
    status = main(["oneshot", *map(str, argv)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def digits(tmp_path):
    """Digits 5-9 as far-apart 2×2 patterns (6 noisy copies each) and digits 0-4 all alike."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 6)
    patterns = rng.integers(0, 200, (10, 1, 2, 2))
    patterns[:5] = 100
    images = patterns[labels] + rng.integers(0, 3, (len(labels), 1, 2, 2))
    return lmdb_of(tmp_path, images, labels)


def test_held_out_classes_are_told_apart(tmp_path, digits, capsys):
    model, weights = tiny_model(tmp_path, identity=True)
    status, out, err = run(capsys, "--model", model, "--weights", weights, "--source", digits,
                           "--classes", "5,6,7,8,9", "--trials", 200)
    assert status == 0, err
    assert out == "5-way one-shot accuracy over 200 trials: 1.000 (95% CI 0.981-1.000)\n"
    assert "Encoding 30 images of classes 5, 6, 7, 8, 9 (6 per class)" in err
    # With digits 0-4 (all one pattern) among the candidates, ties make some trials fail.
    status, out, _ = run(capsys, "--model", model, "--weights", weights, "--source", digits, "--trials", 200)
    accuracy = float(re.fullmatch(r"5-way one-shot accuracy over 200 trials: (\S+) \(95% CI \S+\)\n", out)[1])
    assert status == 0 and accuracy < 0.9


@pytest.mark.parametrize("text, scale", [(TINY, 0.5), (WITH_DATA, 0.1)], ids=["scale-option", "data-layer"])
def test_line_matches_the_evaluation_of_the_net_encodings(tmp_path, capsys, text, scale):
    """The printed result is one_shot_accuracy on feat = W·(scale·pixels) + b, same seed;
    the scale comes from the model's Data layer when it has one, else from --scale."""
    rng = np.random.default_rng(1)
    images, labels = rng.integers(0, 256, (40, 1, 2, 2)), np.repeat(np.arange(4), 10)
    source = lmdb_of(tmp_path, images, labels)
    model, weights = tiny_model(tmp_path, text)
    weight, bias = (b.data for b in Net(model, "RUN", weights=weights).params["feat"])
    encodings = (scale * images.reshape(40, 4)) @ weight.T + bias
    expected = one_shot_accuracy(lambda _: encodings, images, labels, 3, 300, np.random.default_rng(7))
    status, out, err = run(capsys, "--model", model, "--weights", weights, "--source", source,
                           "--ways", 3, "--trials", 300, "--seed", 7, "--scale", 0.5)
    assert status == 0, err
    assert out == expected.line() + "\n"
    assert 0 < expected.correct < 300       # neither trivial nor hopeless: the numbers matter


def test_image_folder(tmp_path, capsys):
    for name, value, size in (("a/1.png", 40, 3), ("a/2.png", 45, 5), ("b/1.png", 140, 4),
                              ("b/2.jpg", 150, 2), ("c/1.png", 240, 6), ("c/2.png", 250, 3)):
        (tmp_path / "faces" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (size, size + 1), (value, value, value)).save(tmp_path / "faces" / name)
    model, weights = tiny_model(tmp_path, identity=True)
    status, out, err = run(capsys, "--model", model, "--weights", weights, "--images", tmp_path / "faces",
                           "--ways", 3, "--trials", 50)
    assert status == 0, err
    assert out == "3-way one-shot accuracy over 50 trials: 1.000 (95% CI 0.929-1.000)\n"
    status, out, err = run(capsys, "--model", model, "--weights", weights, "--images", tmp_path / "faces",
                           "--classes", "a,c", "--ways", 2, "--trials", 10)
    assert status == 0 and out.startswith("2-way one-shot accuracy over 10 trials: 1.000")


def test_seeded_runs_repeat(tmp_path, capsys):
    rng = np.random.default_rng(2)
    source = lmdb_of(tmp_path, rng.integers(0, 256, (60, 1, 2, 2)), np.repeat(np.arange(6), 10))
    model, weights = tiny_model(tmp_path)
    outs = [run(capsys, "--model", model, "--weights", weights, "--source", source, "--seed", seed,
                "--trials", 500)[1] for seed in (0, 0, 1)]
    assert outs[0] == outs[1] != outs[2]


@pytest.mark.parametrize("model", ["mnist_siamese_train_test", "mnist_siamese_deploy"])
def test_the_siamese_models_run(tmp_path, capsys, model):
    images = np.random.default_rng(0).integers(0, 256, (9, 1, 28, 28))
    source = lmdb_of(tmp_path, images, [5, 6, 7] * 3)
    prototxt = ROOT / "prototxt" / f"{model}.prototxt"
    weights = tmp_path / "siamese.caffemodel"
    Net(prototxt, "RUN").save(weights)
    status, out, err = run(capsys, "--model", prototxt, "--weights", weights, "--source", source,
                           "--ways", 3, "--trials", 20)
    assert status == 0, err
    assert re.fullmatch(r"3-way one-shot accuracy over 20 trials: \d\.\d{3} "
                        r"\(95% CI \d\.\d{3}-\d\.\d{3}\)\n", out)
    run_input = "run_input" if model.endswith("train_test") else "input"
    assert f"transformed by the net's Input layer '{run_input}' (scale 0.00390625)" in err


@pytest.mark.parametrize("case, message", [
    ("blob", "the net has no blob 'code' in phase RUN; blobs: data, feat"),
    ("ways", r"6-way one-shot needs 6 classes but the images hold 5 \(0, 1, 2, 3, 4\); lower --ways"),
    ("single", "class 4 has 1 image; one-shot trials need at least 2 images per class"),
    ("size", "the images are 1x3x3 after the transform but the net's input 'data' is 1x2x2 per item"),
    ("class", r"no images of class 12 \(classes there: 0, 1, 2, 3, 4\)"),
    ("missing", "nowhere: no LMDB there"),
])
def test_errors_are_one_line(tmp_path, capsys, case, message):
    model, weights = tiny_model(tmp_path)
    labels = [0, 0, 1, 1, 2, 2, 3, 3, 4] + ([] if case == "single" else [4])
    side = 3 if case == "size" else 2
    source = lmdb_of(tmp_path, np.zeros((len(labels), 1, side, side)), labels)
    argv = {"blob": ["--blob", "code"], "ways": ["--ways", 6], "class": ["--classes", "3,12"],
            "missing": ["--source", tmp_path / "nowhere"]}.get(case, [])
    status, out, err = run(capsys, "--model", model, "--weights", weights, "--source", source, *argv)
    assert status == 2 and out == ""
    assert re.fullmatch(f"layerforge: error: .*{message}.*\n", err.splitlines(True)[-1])
    assert "Traceback" not in err


def test_help_and_usage(capsys):
    assert main(["oneshot", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: layerforge oneshot")
    assert "95% Wilson score interval" in " ".join(out.split())
    assert main(["oneshot", "--model", "m", "--weights", "w", "--source", "s", "--images", "d"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err
    assert main(["oneshot", "--model", "m", "--weights", "w", "--source", "s", "--ways", "1"]) == 2
    assert "argument --ways: must be at least 2, got 1" in capsys.readouterr().err


def weights_seeing(folder, name, pixels):
    """Weights of TINY whose feat copies the chosen pixels (the other outputs zero)."""
    net = Net(write_net(folder, TINY, "tiny.prototxt"), "RUN")
    net.params["feat"][0].data[...] = 0
    net.params["feat"][1].data[...] = 0
    for row, pixel in enumerate(pixels):
        net.params["feat"][0].data[row, pixel] = 1
    net.save(folder / name)
    return folder / name


def test_several_models_are_scored_together(tmp_path, capsys):
    """Classes 0/1 differ only in pixel 0, 1/2 only in pixel 3: a model seeing pixels 0-1 and
    one seeing pixels 2-3 each confuse two classes; their encodings concatenated, each scaled
    to unit mean norm, tell all three apart, and the line is one_shot_accuracy's on them."""
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(3), 8)
    centres = np.array([[20, 20, 20, 20], [200, 20, 20, 20], [200, 20, 20, 200]]).reshape(3, 1, 2, 2)
    images = centres[labels] + rng.integers(0, 3, (24, 1, 2, 2))
    source = lmdb_of(tmp_path, images, labels)
    model = write_net(tmp_path, TINY, "tiny.prototxt")
    left = weights_seeing(tmp_path, "left.caffemodel", [0, 1])
    right = weights_seeing(tmp_path, "right.caffemodel", [2, 3])
    argv = ["--source", source, "--ways", 3, "--trials", 200, "--seed", 4, "--scale", 0.5]
    alone = [run(capsys, "--model", model, "--weights", w, *argv) for w in (left, right)]
    assert all(status == 0 and float(out.split(": ")[1].split()[0]) < 0.9 for status, out, _ in alone)
    pixels = 0.5 * images.reshape(24, 4).astype(np.float64)
    expected = one_shot_accuracy(concatenated_encoder([lambda x: x[:, :2], lambda x: x[:, 2:]]), pixels,
                                 labels, 3, 200, np.random.default_rng(4))
    assert expected.accuracy == 1.0
    for models in ([model], [model, model]):      # one --model for all the --weights, or one each
        status, out, err = run(capsys, *[a for m in models for a in ("--model", m)],
                               "--weights", left, "--weights", right, *argv)
        assert status == 0, err
        assert out == expected.line() + "\n"
        assert "the 2 models' 'feat' concatenated, each scaled to unit mean norm" in err


@pytest.mark.parametrize("case, message", [
    ("count", "give one --model for all the --weights or one per --weights, got 2 --model and 3 --weights"),
    ("size", "big.prototxt: the images are 1x2x2 after the transform but the net's input 'data' is 1x3x3"),
])
def test_several_models_errors(tmp_path, capsys, case, message):
    model, weights = tiny_model(tmp_path)
    source = lmdb_of(tmp_path, np.zeros((6, 1, 2, 2)), [0, 0, 1, 1, 2, 2])
    if case == "count":
        argv = ["--model", model, "--model", model] + ["--weights", weights] * 3
    else:
        big = write_net(tmp_path, TINY.replace("dim: 2 dim: 2", "dim: 3 dim: 3"), "big.prototxt")
        Net(big, "RUN").save(tmp_path / "big.caffemodel")
        argv = ["--model", model, "--weights", weights, "--model", big, "--weights", tmp_path / "big.caffemodel"]
    status, out, err = run(capsys, *argv, "--source", source, "--ways", 3)
    assert status == 2 and out == ""
    assert message in err.splitlines()[-1] and "Traceback" not in err
