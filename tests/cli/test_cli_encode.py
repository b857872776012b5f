"""`layerforge encode|classify|verify` and `centroids --images` on image files, checked
against the same net run through the Python API."""
import csv
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from layerforge.cli import main
from layerforge.net import Net

DEPLOY = Path(__file__).resolve().parents[2] / "prototxt" / "mnist_siamese_deploy.prototxt"
CLASSES = ("ant", "bee", "cat")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """ROOT/<class>/<i>.png: 28×28 grayscale, a bar whose row depends on the class; and weights."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    pixels = {}
    for label, name in enumerate(CLASSES):
        (root / name).mkdir()
        for i in range(4):
            image = rng.integers(0, 40, (28, 28), dtype=np.uint8)
            image[6 * label + 3:6 * label + 9, 4:24] = 220
            path = root / name / f"{i}.png"
            Image.fromarray(image).save(path)
            pixels[path] = (image, label)
    weights = root.parent / "siamese.caffemodel"
    Net(DEPLOY, "RUN").save(weights)
    return root, pixels, weights


def reference_features(weights, raw):
    net = Net(DEPLOY, "RUN", weights=weights)
    net.forward(data=raw[:, None])
    return net.blobs["feat"].data.astype(np.float64)


def test_encode_writes_npz_and_csv(images, tmp_path, capsys):
    root, pixels, weights = images
    assert main(["encode", "--model", str(DEPLOY), "--weights", str(weights), str(root),
                 "--out", str(tmp_path / "e.npz")]) == 0
    assert "12 encodings of 'feat', 2 values each" in capsys.readouterr().out
    saved = np.load(tmp_path / "e.npz")
    files = [Path(f) for f in saved["images"]]
    assert files == sorted(pixels)
    want = reference_features(weights, np.stack([pixels[f][0] for f in files]))
    np.testing.assert_allclose(saved["encodings"], want, rtol=1e-5, atol=1e-6)
    one = sorted(pixels)[5]
    assert main(["encode", "--model", str(DEPLOY), "--weights", str(weights), str(one),
                 "--out", str(tmp_path / "e.csv"), "--blob", "ip2"]) == 0
    rows = list(csv.reader(open(tmp_path / "e.csv")))
    assert rows[0] == ["image"] + [f"e{i}" for i in range(10)] and rows[1][0] == str(one)
    assert len(rows) == 2 and len(rows[1]) == 11


def test_centroids_from_images_then_classify_and_verify(images, tmp_path, capsys):
    root, pixels, weights = images
    final = tmp_path / "final.caffemodel"
    assert main(["centroids", "--model", str(DEPLOY), "--weights", str(weights),
                 "--images", str(root), "--out", str(final)]) == 0
    assert "decode1: centroids of 3 classes from 12 images" in capsys.readouterr().out
    files = sorted(pixels)
    features = reference_features(weights, np.stack([pixels[f][0] for f in files]))
    labels = np.array([pixels[f][1] for f in files])
    means = np.stack([features[labels == c].mean(0) for c in range(3)])
    np.testing.assert_allclose(Net(DEPLOY, "RUN", weights=final).params["decode1"][0].data, means,
                               rtol=1e-5, atol=1e-6)

    (tmp_path / "labels.txt").write_text("\n".join(CLASSES) + "\n")
    assert main(["classify", "--model", str(DEPLOY), "--weights", str(final), str(root),
                 "--labels", str(tmp_path / "labels.txt"), "--out", str(tmp_path / "d.csv")]) == 0
    lines = capsys.readouterr().out.splitlines()
    distances = np.sqrt(((features[:, None] - means[None]) ** 2).sum(-1))
    for line, file, row in zip(lines, files, distances):
        first, second = np.argsort(row)[:2]
        match = re.fullmatch(rf"{re.escape(str(file))}: (\w+) \(distance (\S+); next (\w+) at (\S+)\)", line)
        assert match, line
        assert match[1] == CLASSES[first] and match[3] == CLASSES[second]
        assert float(match[2]) == pytest.approx(row[first], rel=1e-3, abs=1e-5)
    table = list(csv.reader(open(tmp_path / "d.csv")))
    assert table[0] == ["image", "class", "d_ant", "d_bee", "d_cat"] and len(table) == 13

    a, b = files[0], files[-1]
    gaps = [np.linalg.norm(means[i] - means[j]) for i in range(3) for j in range(i + 1, 3)]
    assert main(["verify", "--model", str(DEPLOY), "--weights", str(final), str(a), str(b)]) == 0
    line = capsys.readouterr().out.strip()
    distance = np.linalg.norm(features[0] - features[-1])
    match = re.fullmatch(rf"{re.escape(str(a))} {re.escape(str(b))}: (same|different) \(distance (\S+) "
                         r"(<=|>) threshold (\S+), half the smallest centroid distance\)", line)
    assert match, line
    assert float(match[2]) == pytest.approx(distance, rel=1e-3, abs=1e-5)
    assert float(match[4]) == pytest.approx(min(gaps) / 2, rel=1e-3)
    assert match[1] == ("same" if distance <= min(gaps) / 2 else "different")
    assert main(["verify", "--model", str(DEPLOY), "--weights", str(final), str(a), str(a),
                 "--threshold", "0"]) == 0
    assert ": same (distance 0 <= threshold 0, given)" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["classify", "IMAGES"], "the Decode layer knows no class centroid yet; run `layerforge centroids` first"),
    (["verify", "IMAGES", "IMAGES"], "has 0 known class centroids in the weights"),
    (["encode", "nowhere.png", "--out", "x.npz"], "nowhere.png: no such image file or folder"),
    (["encode", "IMAGES", "--out", "x.txt"], "x.txt: the output must end in .npz or .csv"),
])
def test_errors_are_one_line(images, tmp_path, capsys, argv, message):
    root, _, weights = images
    argv = [str(root) if a == "IMAGES" else str(tmp_path / a) if a.startswith(("nowhere", "x.")) else a
            for a in argv]
    assert main([argv[0], "--model", str(DEPLOY), "--weights", str(weights), *argv[1:]]) == 2
    err = capsys.readouterr().err
    last = err.splitlines()[-1]                   # after any log lines (e.g. the weights loaded)
    assert last.startswith("layerforge: error: ") and message in last and "Traceback" not in err, err
