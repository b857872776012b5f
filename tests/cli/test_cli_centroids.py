"""`layerforge centroids`: Decode centroids set to exact class means of a trained net's encodings."""
from pathlib import Path

import numpy as np
import pytest

from layerforge.cli import main
from layerforge.data import write_lmdb
from layerforge.data.store import datums
from layerforge.net import Net
from layerforge.tools.centroids import class_means
from tests.cli import write_net

# Input -> feat (InnerProduct, 3-D) -> Decode, as the Siamese deploy net: RUN feeds 'data',
# TEST reads an LMDB and scores the nearest centroid.
NET = """
name: "tiny"
layer { name: "input" type: "Input" top: "data" include { phase: RUN }
        input_param { shape { dim: 1 dim: 1 dim: 2 dim: 2 } } }
layer { name: "db" type: "Data" top: "data" top: "label" include { phase: TEST }
        transform_param { scale: 0.01 } data_param { source: "SOURCE" backend: LMDB batch_size: 5 } }
layer { name: "feat" type: "InnerProduct" bottom: "data" top: "feat"
        inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 1 } } }
layer { name: "decode" type: "Decode" bottom: "feat" top: "dist" include { phase: RUN }
        decode_param { target: TARGET } }
layer { name: "decode" type: "Decode" bottom: "feat" bottom: "label" top: "dist" include { phase: TEST }
        decode_param { target: TARGET } }
layer { name: "accuracy" type: "AccuracyDecode" bottom: "dist" bottom: "label" top: "accuracy"
        include { phase: TEST } }
"""


def setup_net(folder, target="CENTROID", labels=(0, 1, 3), decode=""):
    rng = np.random.default_rng(0)
    labels = np.repeat(labels, 5)                      # by default class 2 never appears
    images = rng.integers(0, 255, (len(labels), 1, 2, 2)).astype(np.uint8)
    source = write_lmdb(folder / "db", datums(images, labels))
    text = NET.replace("SOURCE", str(source)).replace("TARGET", target + decode)
    model = write_net(folder, text, "tiny.prototxt")
    net = Net(model, "RUN", seed=1)
    weights = folder / "tiny.caffemodel"
    net.save(weights)
    weight, bias = (blob.data.astype(np.float64) for blob in net.params["feat"])
    encodings = (images.reshape(len(images), -1) * 0.01) @ weight.T + bias
    return model, weights, source, encodings, labels


def test_class_means_leave_absent_classes_empty():
    means, counts = class_means(np.array([[1.0, 2.0], [3.0, 4.0], [10.0, 0.0]]), [0, 0, 2])
    np.testing.assert_allclose(means, [[2.0, 3.0], [0.0, 0.0], [10.0, 0.0]])
    np.testing.assert_array_equal(counts, [2, 0, 1])
    with pytest.raises(ValueError, match="labels must be >= 0"):
        class_means(np.zeros((1, 2)), [-1])


def test_centroids_are_the_class_means_and_the_test_net_uses_them(tmp_path, capsys):
    model, weights, source, encodings, labels = setup_net(tmp_path)
    out = tmp_path / "with_centroids.caffemodel"
    assert main(["centroids", "--model", str(model), "--weights", str(weights), "--source", str(source),
                 "--out", str(out)]) == 0
    assert f"decode: centroids of 3 classes from 15 images -> {out}" in capsys.readouterr().out

    expected, counts = class_means(encodings, labels)
    test_net = Net(model, "TEST", weights=out)
    decode = test_net.layers["decode"]
    np.testing.assert_allclose(decode.blobs[0].data, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(decode.blobs[1].data, counts)
    np.testing.assert_array_equal(decode.blobs[2].data, counts > 0)
    distances = ((encodings[:, None, :] - expected[None]) ** 2).sum(-1)
    distances[:, counts == 0] = np.inf
    expected_accuracy = np.mean(distances.argmin(1) == labels)
    accuracy = np.mean([test_net.forward()["accuracy"] for _ in range(3)])   # 3 batches of 5 = all 15
    assert accuracy == pytest.approx(expected_accuracy)
    assert Path(weights).read_bytes() != out.read_bytes()   # --out leaves the input weights alone


def test_images_labelled_with_an_ignore_label_are_left_out(tmp_path, capsys):
    model, weights, source, encodings, labels = setup_net(tmp_path, labels=(0, -1, 1), decode=" ignore_label: -1")
    assert main(["centroids", "--model", str(model), "--weights", str(weights), "--source", str(source)]) == 0
    assert f"decode: centroids of 2 classes from 10 images -> {weights}" in capsys.readouterr().out
    kept = labels >= 0
    np.testing.assert_allclose(Net(model, "RUN", weights=weights).layers["decode"].blobs[0].data,
                               class_means(encodings[kept], labels[kept])[0], rtol=1e-5, atol=1e-6)


def test_a_negative_label_decode_does_not_ignore_is_an_error(tmp_path, capsys):
    model, weights, source, _, _ = setup_net(tmp_path, labels=(0, -1, 1))
    assert main(["centroids", "--model", str(model), "--weights", str(weights), "--source", str(source)]) == 2
    assert "layer 'decode' (Decode): label -1 is negative and not in decode_param.ignore_label" \
        in capsys.readouterr().err


def test_without_out_the_weights_file_is_updated(tmp_path):
    model, weights, source, encodings, labels = setup_net(tmp_path)
    assert main(["centroids", "--model", str(model), "--weights", str(weights), "--source", str(source)]) == 0
    np.testing.assert_allclose(Net(model, "RUN", weights=weights).layers["decode"].blobs[0].data,
                               class_means(encodings, labels)[0], rtol=1e-5, atol=1e-6)


def test_knn_decode_and_nets_without_decode_are_errors(tmp_path, capsys):
    model, weights, source, _, _ = setup_net(tmp_path, target="KNN")
    assert main(["centroids", "--model", str(model), "--weights", str(weights), "--source", str(source)]) == 2
    assert "target KNN keeps encodings" in capsys.readouterr().err

    plain = write_net(tmp_path, NET.split('layer { name: "decode"')[0].replace("SOURCE", str(source)), "plain.prototxt")
    Net(plain, "RUN", seed=1).save(tmp_path / "plain.caffemodel")
    assert main(["centroids", "--model", str(plain), "--weights", str(tmp_path / "plain.caffemodel"),
                 "--source", str(source)]) == 2
    assert "no Decode layer" in capsys.readouterr().err
