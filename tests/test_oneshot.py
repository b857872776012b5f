"""N-way one-shot evaluation (layerforge/tools/oneshot.py) on synthetic encodings, its
Wilson interval, the image loaders and transform, and MNIST LMDBs of chosen digits."""
import numpy as np
import pytest
from PIL import Image

from layerforge.data import DatasetError, build_mnist_lmdbs, read_lmdb, write_lmdb
from layerforge.data.store import datums
from layerforge.io import parse_text
from layerforge.net import Net, NetError
from layerforge.proto import layerforge_pb2 as pb
from layerforge.tools.oneshot import (Z95, OneShotError, concatenated_encoder, input_transform,
                                      load_folder_images, load_lmdb_images, net_encoder,
                                      one_shot_accuracy, wilson_interval)
from tests.data.test_idx import fake_mnist  # noqa: F401  (fixture: small fake MNIST IDX files)


def identity(images):
    return images


def clusters(rng, classes, per_class, dims=4, spread=0.01):
    """Encodings around one far-apart centre per class: labels, encodings."""
    labels = np.repeat(np.arange(classes), per_class)
    centres = 10 * np.eye(classes, dims) if classes <= dims else 10 * rng.standard_normal((classes, dims))
    return labels, centres[labels] + spread * rng.standard_normal((len(labels), dims))


def test_separated_clusters_score_one():
    labels, encodings = clusters(np.random.default_rng(1), classes=6, per_class=5)
    result = one_shot_accuracy(identity, encodings, labels, ways=5, trials=300,
                               rng=np.random.default_rng(0))
    assert (result.correct, result.accuracy, result.trials, result.ways) == (300, 1.0, 300, 5)
    assert result.high == pytest.approx(1.0) and result.low == pytest.approx(300 / (300 + Z95 ** 2))
    assert result.line() == "5-way one-shot accuracy over 300 trials: 1.000 (95% CI 0.987-1.000)"


@pytest.mark.parametrize("ways", [2, 5, 10])
@pytest.mark.parametrize("collapsed", [False, True], ids=["random", "collapsed"])
def test_uninformative_encodings_score_chance(ways, collapsed):
    """Random encodings, and an encoder that maps everything to one point (every distance
    ties, broken at random), are right 1 time in N: the 95 % interval holds 1/N."""
    rng = np.random.default_rng(ways)
    labels = np.repeat(np.arange(20), 200)   # many images: the drawn set itself is near chance
    encodings = np.zeros((len(labels), 3)) if collapsed else rng.standard_normal((len(labels), 3))
    result = one_shot_accuracy(identity, encodings, labels, ways, trials=2000, rng=rng)
    assert result.low < 1 / ways < result.high
    assert result.high - result.low < 0.06           # 2000 trials pin it down to a few percent


def test_query_is_never_its_own_support():
    """Each class has two images on opposite sides of the origin along its own axis: the
    other class's images are nearer (141) than the query's own partner (200), so every trial
    fails; a query compared with itself (distance 0) would succeed."""
    eye = 100 * np.eye(6)
    encodings, labels = np.concatenate([eye, -eye]), np.tile(np.arange(6), 2)
    result = one_shot_accuracy(identity, encodings, labels, ways=3, trials=500, rng=np.random.default_rng(0))
    assert result.correct == 0 and result.low == pytest.approx(0.0, abs=1e-12)


def test_wilson_interval_by_hand():
    # 8 of 10, z = 1.96: z² = 3.8415, centre (0.8 + 0.19207) / 1.38415 = 0.71673,
    # half-width 1.95996 / 1.38415 * sqrt(0.8 * 0.2 / 10 + 3.8415 / 400) = 0.22658.
    low, high = wilson_interval(8, 10)
    assert (low, high) == (pytest.approx(0.49016, abs=1e-5), pytest.approx(0.94332, abs=1e-5))
    assert wilson_interval(0, 20) == (pytest.approx(0.0), pytest.approx(Z95 ** 2 / (20 + Z95 ** 2)))
    assert wilson_interval(20, 20) == (pytest.approx(20 / (20 + Z95 ** 2)), pytest.approx(1.0))


def test_seeded_runs_repeat_and_encode_once():
    labels = np.repeat(np.arange(7), 4)
    encodings = np.random.default_rng(0).standard_normal((len(labels), 2))
    calls = []

    def encode(images):
        calls.append(len(images))
        return images

    runs = [one_shot_accuracy(encode, encodings, labels, 4, 1000, np.random.default_rng(seed))
            for seed in (3, 3, 4)]
    assert runs[0] == runs[1] and runs[0].correct != runs[2].correct
    assert calls == [len(labels)] * 3                 # all images at once, once per run


@pytest.mark.parametrize("ways, labels, message", [
    (4, [0, 0, 1, 1, 2, 2], r"4-way one-shot needs 4 classes but the images hold 3 \(0, 1, 2\)"),
    (2, [0, 0, 1, 2, 2], "class 1 has 1 image; one-shot trials need at least 2 images per class"),
    (1, [0, 0, 1, 1], "need ways >= 2 and trials >= 1, got ways 1"),
])
def test_errors(ways, labels, message):
    encodings = np.zeros((len(labels), 2))
    with pytest.raises(OneShotError, match=message):
        one_shot_accuracy(identity, encodings, labels, ways, 10, np.random.default_rng(0))
    with pytest.raises(OneShotError, match="the encoder returned 3 encodings for 4 images"):
        one_shot_accuracy(lambda x: x[:3], np.zeros((4, 2)), [0, 0, 1, 1], 2, 10, np.random.default_rng(0))


# ---------------------------------------------------------------- net encoder and inputs

TINY = """
layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 2 dim: 3 } } }
layer { name: "feat" type: "InnerProduct" bottom: "data" top: "feat"
        inner_product_param { num_output: 3 weight_filler { type: "gaussian" }
                              bias_filler { type: "gaussian" } } }
"""


def test_net_encoder_batches_and_transforms():
    net = Net(parse_text(TINY, pb.NetParameter()), "RUN")
    images = np.random.default_rng(0).integers(0, 256, (7, 1, 2, 3)).astype(np.uint8)
    weight, bias = (b.data for b in net.params["feat"])
    expected = (images.reshape(7, -1) / 256.0) @ weight.T + bias
    encode = net_encoder(net, "feat", transform=lambda x: x / 256.0, batch_size=3)
    np.testing.assert_allclose(encode(images), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(NetError, match="the net has no blob 'fet' in phase RUN; blobs: data, feat"):
        net_encoder(net, "fet")


def test_input_transform_follows_the_data_layer():
    raw = np.full((2, 1, 4, 4), 128, np.uint8)
    plain = parse_text(TINY, pb.NetParameter())
    transform, shape, how = input_transform(plain, 0.5, raw.shape[1:])
    assert shape == (1, 4, 4) and "with --scale (scale 0.5)" in how
    np.testing.assert_array_equal(transform(raw), np.full(raw.shape, 64.0))
    with_data = parse_text('layer { name: "d" type: "Data" top: "data" transform_param '
                           '{ scale: 0.1 mean_value: 28 crop_size: 2 } }' + TINY, pb.NetParameter())
    transform, shape, how = input_transform(with_data, 0.5, raw.shape[1:])
    assert shape == (1, 2, 2) and how == "as layer 'd' does (scale 0.1, mean subtracted, centre crop 2)"
    np.testing.assert_allclose(transform(raw), np.full((2, 1, 2, 2), 10.0), rtol=1e-6)


def test_load_lmdb_images_by_class(tmp_path):
    images = np.arange(6 * 4, dtype=np.uint8).reshape(6, 1, 2, 2)
    path = write_lmdb(tmp_path / "db", datums(images, [5, 6, 7, 5, 6, 7]))
    got, labels = load_lmdb_images(path, ["5", "7"])
    np.testing.assert_array_equal(labels, [5, 7, 5, 7])
    np.testing.assert_array_equal(got, images[[0, 2, 3, 5]])
    with pytest.raises(OneShotError, match=r"db: no images of class 8 \(classes there: 5, 6, 7\)"):
        load_lmdb_images(path, [5, 8])
    with pytest.raises(OneShotError, match="the classes of an LMDB are integer labels, got five"):
        load_lmdb_images(path, ["five"])


def test_load_folder_images_by_class(tmp_path):
    for name, value in (("cat/a.png", 10), ("cat/b.png", 20), ("dog/c.png", 30), ("owl/d.png", 40)):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.new("RGB", (5 + value // 10, 4), (value, value, value)).save(tmp_path / name)
    images, labels = load_folder_images(tmp_path, ["cat", "owl"], size=(2, 3), gray=True)
    assert images.shape == (3, 1, 2, 3) and list(labels) == ["cat", "cat", "owl"]
    np.testing.assert_array_equal(images[:, 0, 0, 0], [10, 20, 40])
    with pytest.raises(OneShotError, match="no images of class emu"):
        load_folder_images(tmp_path, ["emu"], size=(2, 3))


# ---------------------------------------------------------------- MNIST LMDBs of some digits

def test_mnist_lmdbs_of_chosen_digits(fake_mnist, tmp_path):  # noqa: F811
    folder, arrays = fake_mnist
    train, test = build_mnist_lmdbs(tmp_path / "low", folder, classes=[4, 0, 1, 2, 3])
    for path, (images, labels) in ((train, arrays["train"]), (test, arrays["test"])):
        stored_images, stored_labels = read_lmdb(path)
        keep = labels < 5
        np.testing.assert_array_equal(stored_labels, labels[keep])
        np.testing.assert_array_equal(stored_images, images[keep][:, None])
    # Kept when it holds exactly the asked records; rebuilt for other digits or all of them.
    before = (train / "data.mdb").stat().st_mtime_ns
    assert build_mnist_lmdbs(tmp_path / "low", folder, classes=range(5)) == (train, test)
    assert (train / "data.mdb").stat().st_mtime_ns == before
    build_mnist_lmdbs(tmp_path / "low", folder, classes=[5, 6, 7, 8, 9])
    assert set(read_lmdb(train)[1]) == {5, 6, 7, 8, 9}
    build_mnist_lmdbs(tmp_path / "low", folder)
    np.testing.assert_array_equal(read_lmdb(test)[1], arrays["test"][1])
    with pytest.raises(DatasetError, match=r"MNIST classes are the digits 0-9, got \[3, 10\]"):
        build_mnist_lmdbs(tmp_path / "bad", folder, classes=[10, 3])


def test_mnist_command_classes(fake_mnist, tmp_path, capsys):  # noqa: F811
    from layerforge.cli import main

    out = tmp_path / "high"
    assert main(["data", "mnist", "--out", str(out), "--from", str(fake_mnist[0]),
                 "--classes", "5,6,7,8,9"]) == 0
    assert set(read_lmdb(out / "mnist_test_lmdb")[1]) == {5, 6, 7, 8, 9}
    capsys.readouterr()
    assert main(["data", "mnist", "--out", str(out), "--classes", "5,x"]) == 2
    assert "invalid digit list (0-9, comma-separated) value: '5,x'" in capsys.readouterr().err


def test_input_transform_leaves_the_images_raw_for_an_input_layer_that_transforms():
    raw = np.full((2, 1, 4, 4), 128, np.uint8)
    net = parse_text('layer { name: "d" type: "Data" top: "data" transform_param { scale: 0.1 } }\n'
                     'layer { name: "in" type: "Input" top: "data" transform_param { scale: 0.5 '
                     'crop_size: 2 } input_param { shape { dim: 1 dim: 1 dim: 2 dim: 2 } } }', pb.NetParameter())
    transform, shape, how = input_transform(net, 1.0, raw.shape[1:])
    assert shape == (1, 2, 2) and how == "by the net's Input layer 'in' (scale 0.5, centre crop 2)"
    assert transform(raw) is raw


def raw_pixels(images):
    return images.reshape(len(images), -1).astype(np.float64)


def test_lake_runs_format(tmp_path):
    """Synthetic runs in Lake's layout: every test item against all training images of its
    run, the right answer first; raw pixels already tell the drawings apart."""
    from layerforge.tools.oneshot import euclidean_scores, read_runs, score_trials
    from tests.omniglot_zips import make_runs
    make_runs(tmp_path, runs=3, ways=5)
    images, query, support = read_runs(tmp_path, (28, 28))
    assert images.shape == (30, 1, 28, 28) and images.dtype == np.uint8
    assert query.shape == (15,) and support.shape == (15, 5)
    for row in support:
        assert len(set(row)) == 5
    labels = (tmp_path / "run02" / "class_labels.txt").read_text().splitlines()
    test_item, train_item = labels[0].split()
    result = score_trials(euclidean_scores(raw_pixels(images)), query, support, np.random.default_rng(0))
    assert (result.ways, result.trials, result.correct) == (5, 15, 15)
    np.testing.assert_array_equal(images[support[5, 0], 0],
                                  read_image_of(tmp_path / train_item, (28, 28)))
    np.testing.assert_array_equal(images[query[5], 0], read_image_of(tmp_path / test_item, (28, 28)))


def read_image_of(path, size):
    from layerforge.data.omniglot import read_image
    return read_image(str(path), size)


def test_lake_runs_errors(tmp_path):
    from layerforge.tools.oneshot import read_runs
    from tests.omniglot_zips import make_runs
    with pytest.raises(OneShotError, match="no runNN/ folders"):
        read_runs(tmp_path)
    make_runs(tmp_path, runs=1, ways=3)
    labels = tmp_path / "run01" / "class_labels.txt"
    labels.write_text(labels.read_text() + "run01/test/item01.png run01/training/class09.png\n")
    with pytest.raises(OneShotError, match=r"class_labels.txt:4: expected .*naming a training image of run01"):
        read_runs(tmp_path)


def test_within_alphabet_trials(tmp_path):
    """Trials stay inside one alphabet with enough characters; supports come from one drawer and
    the query from another; synthetic characters are told apart from their raw pixels."""
    from layerforge.tools.oneshot import alphabet_trials, euclidean_scores, score_trials
    from tests.omniglot_zips import make_zip
    make_zip(tmp_path / "eval.zip", "images_evaluation", {"Atlantean": 6, "Tiny": 3}, drawers=5)
    images, query, support = alphabet_trials(tmp_path / "eval.zip", None, (28, 28), 5, 200,
                                             np.random.default_rng(0))
    assert images.shape == (45, 1, 28, 28) and support.shape == (200, 5)
    classes, drawers = np.arange(45) // 5, np.arange(45) % 5
    assert np.all(classes[support] < 6)                                 # Tiny has 3 < 5 characters
    assert np.all(classes[query] == classes[support[:, 0]])
    assert np.all(drawers[support] == drawers[support[:, :1]])
    assert np.all(drawers[query] != drawers[support[:, 0]])
    assert all(len(set(classes[row])) == 5 for row in support)
    result = score_trials(euclidean_scores(raw_pixels(images)), query, support, np.random.default_rng(0))
    assert result.accuracy == 1.0
    with pytest.raises(OneShotError, match="need a group with 7 classes; the largest has 6"):
        alphabet_trials(tmp_path / "eval.zip", None, (28, 28), 7, 10, np.random.default_rng(0))
    with pytest.raises(OneShotError, match="no alphabet Greek"):
        alphabet_trials(tmp_path / "eval.zip", ["Greek"], (28, 28), 5, 10, np.random.default_rng(0))


def test_verification_net_scores_pairs(tmp_path):
    """A verification net (inputs data, data_p; output: minus the L1 distance) picks the same
    supports as nearest-L1 does, with ties broken alike."""
    from layerforge.tools.oneshot import pair_scores, score_trials
    text = """
layer { name: "a" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 2 dim: 2 } } }
layer { name: "b" type: "Input" top: "data_p" input_param { shape { dim: 1 dim: 1 dim: 2 dim: 2 } } }
layer { name: "diff" type: "Eltwise" bottom: "data" bottom: "data_p" top: "diff"
        eltwise_param { operation: SUM coeff: 1 coeff: -1 } }
layer { name: "l1" type: "AbsVal" bottom: "diff" top: "l1" }
layer { name: "score" type: "InnerProduct" bottom: "l1" top: "score"
        inner_product_param { num_output: 1 weight_filler { type: "constant" value: -1 } } }
"""
    path = tmp_path / "verify.prototxt"
    path.write_text(text)
    net = Net(str(path), "RUN")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 9, (30, 1, 2, 2)).astype(np.float32)
    query = rng.integers(0, 30, 50)
    support = rng.integers(0, 30, (50, 6))
    scores = pair_scores(net, images, batch_size=7)(query, support)
    l1 = np.abs(images[support] - images[query][:, None]).sum(axis=(2, 3, 4))
    np.testing.assert_allclose(scores, -l1)
    result = score_trials(pair_scores(net, images), query, support, np.random.default_rng(1))
    expected = score_trials(lambda q, s: -l1, query, support, np.random.default_rng(1))
    assert result == expected


def test_concatenated_encoder_weighs_each_model_alike():
    """Each model's encodings are divided by their mean L2 norm over the images, then joined."""
    rng = np.random.default_rng(4)
    images = rng.standard_normal((7, 1, 2, 3))
    big, small = rng.standard_normal((6, 5)) * 1000, rng.standard_normal((6, 2)) / 1000
    first, second = (lambda x: x.reshape(7, 6) @ big), (lambda x: x.reshape(7, 6) @ small)
    joined = concatenated_encoder([first, second])(images)
    a, b = first(images), second(images)
    expected = np.hstack([a / np.sqrt((a ** 2).sum(1)).mean(), b / np.sqrt((b ** 2).sum(1)).mean()])
    np.testing.assert_allclose(joined, expected, rtol=1e-12)
    for part in (joined[:, :5], joined[:, 5:]):
        assert np.linalg.norm(part, axis=1).mean() == pytest.approx(1.0)
    collapsed = concatenated_encoder([first, lambda x: np.zeros((len(x), 3))])(images)
    np.testing.assert_array_equal(collapsed[:, 5:], 0)   # an all-zero encoding stays zero


def test_two_models_tell_apart_what_neither_does_alone():
    """Classes 0/1 differ only in the first coordinate, 1/2 only in the second: each model sees
    one coordinate and confuses two classes; together they separate all three."""
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]])
    labels = np.repeat(np.arange(3), 6)
    images = centres[labels] + 0.01 * np.random.default_rng(5).standard_normal((18, 2))

    def accuracy(encode):
        return one_shot_accuracy(encode, images, labels, 3, 300, np.random.default_rng(0)).accuracy
    first, second = (lambda x: x[:, :1]), (lambda x: x[:, 1:])
    assert accuracy(first) < 0.9 and accuracy(second) < 0.9
    assert accuracy(concatenated_encoder([first, second])) == 1.0
