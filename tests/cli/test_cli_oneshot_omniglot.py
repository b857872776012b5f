"""`layerforge oneshot --runs` (Lake's run folders) and `--alphabets` (within-alphabet trials
from Omniglot zips), with nets that compare raw pixels: an encoder (Flatten "feat") and a
verification net (minus the L1 distance of the pair)."""
import os
import re
import zipfile

import numpy as np
import pytest

from layerforge.cli import main
from layerforge.data.omniglot import read_image
from layerforge.net import Net
from layerforge.tools.oneshot import euclidean_scores, read_runs, score_trials
from tests.omniglot_zips import make_runs, make_zip

PIXELS = """
layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 28 dim: 28 } } }
layer { name: "feat" type: "Flatten" bottom: "data" top: "feat" }
"""
VERIFY = """
layer { name: "a" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 28 dim: 28 } } }
layer { name: "b" type: "Input" top: "data_p" input_param { shape { dim: 1 dim: 1 dim: 28 dim: 28 } } }
layer { name: "difference" type: "Eltwise" bottom: "data" bottom: "data_p" top: "difference"
        eltwise_param { operation: SUM coeff: 1 coeff: -1 } }
layer { name: "l1" type: "AbsVal" bottom: "difference" top: "l1" }
layer { name: "score" type: "InnerProduct" bottom: "l1" top: "score"
        inner_product_param { num_output: 1 weight_filler { type: "constant" value: -1 } } }
"""
LINE = r"(\d+)-way one-shot accuracy over (\d+) trials: (\S+) \(95% CI \S+-\S+\)\n"


def model(folder, text, name):
    path = folder / f"{name}.prototxt"
    path.write_text(text)
    weights = folder / f"{name}.caffemodel"
    Net(str(path), "RUN").save(weights)
    return str(path), str(weights)


def oneshot(capsys, *argv):
    status = main(["oneshot", *map(str, argv)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    match = re.fullmatch(LINE, captured.out)
    assert match, captured.out
    return int(match[1]), int(match[2]), float(match[3]), captured.err


@pytest.mark.parametrize("text", [PIXELS, VERIFY], ids=["encoder", "verification"])
def test_runs_on_synthetic_runs(tmp_path, capsys, text):
    make_runs(tmp_path / "runs", runs=3, ways=6)
    net, weights = model(tmp_path, text, "net")
    ways, trials, accuracy, err = oneshot(capsys, "--model", net, "--weights", weights, "--runs", tmp_path / "runs")
    assert (ways, trials, accuracy) == (6, 18, 1.0)
    assert ("verification score" if text is VERIFY else "Euclidean distance of 'feat'") in err


def test_alphabets_within_alphabet_trials(tmp_path, capsys):
    make_zip(tmp_path / "eval.zip", "images_evaluation", {"Atlantean": 8, "Ojibwe": 6}, drawers=5)
    for text in (PIXELS, VERIFY):
        net, weights = model(tmp_path, text, "net")
        ways, trials, accuracy, err = oneshot(capsys, "--model", net, "--weights", weights, "--alphabets",
                                              "Atlantean,Ojibwe", "--from", tmp_path / "eval.zip",
                                              "--ways", 6, "--trials", 50)
        assert (ways, trials, accuracy) == (6, 50, 1.0)
        assert "50 trials of alphabets Atlantean, Ojibwe" in err
    status = main(["oneshot", "--model", net, "--weights", weights, "--alphabets", "Ojibwe",
                   "--from", str(tmp_path / "eval.zip"), "--ways", "7"])
    assert status == 2 and "7-way trials within a group need a group with 7 classes" in capsys.readouterr().err


def test_several_encoders_together_and_not_a_verification_net(tmp_path, capsys):
    """Two encoders score --runs together (raw pixels twice: still every trial right); a
    verification net compares pairs itself and cannot be joined with another model."""
    make_runs(tmp_path / "runs", runs=2, ways=5)
    pixels, pixel_weights = model(tmp_path, PIXELS, "pixels")
    ways, trials, accuracy, err = oneshot(capsys, "--model", pixels, "--weights", pixel_weights,
                                          "--weights", pixel_weights, "--runs", tmp_path / "runs")
    assert (ways, trials, accuracy) == (5, 10, 1.0)
    assert "the 2 models' 'feat' concatenated" in err
    verify, verify_weights = model(tmp_path, VERIFY, "verify")
    status = main(["oneshot", "--model", verify, "--weights", verify_weights, "--model", pixels,
                   "--weights", pixel_weights, "--runs", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert status == 2
    assert "verify.prototxt is a verification net (inputs 'data' and 'data_p'): only encoders" in err


def lake_runs_from_zips(zip_dir, folder, alphabets=("Korean", "Sanskrit"), ways=20):
    """Lake's layout from the background zips: per run, 20 characters of one alphabet, the
    training images by one drawer and the test items (shuffled) by another."""
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(zip_dir / "images_background_small1.zip") as one, \
            zipfile.ZipFile(zip_dir / "images_background_small2.zip") as two:
        members = [(archive, name) for archive in (one, two) for name in archive.namelist()
                   if name.endswith(".png")]
        for r, alphabet in enumerate(alphabets, 1):
            characters = sorted({n.split("/")[2] for a, n in members if n.split("/")[1] == alphabet})
            chosen = rng.choice(characters, ways, replace=False)
            first, second = rng.choice(np.arange(1, 21), 2, replace=False)
            run = folder / f"run{r:02d}"
            (run / "training").mkdir(parents=True)
            (run / "test").mkdir()
            order = rng.permutation(ways)
            lines = []
            for i, character in enumerate(chosen):
                def drawing(drawer):
                    return next(a.read(n) for a, n in members if n.split("/")[1:3] == [alphabet, character]
                                and n.endswith(f"_{drawer:02d}.png"))
                (run / "training" / f"class{i + 1:02d}.png").write_bytes(drawing(first))
                (run / "test" / f"item{order[i] + 1:02d}.png").write_bytes(drawing(second))
                lines.append(f"run{r:02d}/test/item{order[i] + 1:02d}.png run{r:02d}/training/class{i + 1:02d}.png")
            (run / "class_labels.txt").write_text("\n".join(sorted(lines)) + "\n")
    return folder


@pytest.mark.skipif(not os.environ.get("LAYERFORGE_OMNIGLOT"),
                    reason="set LAYERFORGE_OMNIGLOT to the folder of images_background_small{1,2}.zip "
                           "to build Lake-format runs from the real drawings")
def test_runs_built_from_the_background_zips(tmp_path, capsys):
    from pathlib import Path
    runs = lake_runs_from_zips(Path(os.environ["LAYERFORGE_OMNIGLOT"]), tmp_path / "runs")
    net, weights = model(tmp_path, PIXELS, "pixels")
    ways, trials, accuracy, _ = oneshot(capsys, "--model", net, "--weights", weights, "--runs", runs)
    assert (ways, trials) == (20, 40)
    images, query, support = read_runs(runs, (28, 28))
    pixels = images.reshape(len(images), -1) / 256.0
    expected = score_trials(euclidean_scores(pixels), query, support, np.random.default_rng(0))
    assert accuracy == round(expected.accuracy, 3)
    item = (runs / "run01" / "class_labels.txt").read_text().split()[0]
    np.testing.assert_array_equal(images[query[0], 0], read_image(str(runs / item), (28, 28)))
