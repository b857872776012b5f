"""`plot` and `embed` pictures: titles, labels, tick labels, series and sizes."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from layerforge.cli import main
from layerforge.net import Net
from layerforge.tools.embed import embedding_figure, project
from layerforge.tools.log import read_log
from layerforge.tools.plot import log_figure

DEPLOY = Path(__file__).resolve().parents[2] / "prototxt" / "mnist_siamese_deploy.prototxt"


def tick_texts(figure):
    figure.canvas.draw()
    return [t.get_text() for ax in figure.axes for axis in (ax.xaxis, ax.yaxis)
            for t in axis.get_ticklabels() + axis.get_ticklabels(minor=True)] + \
           [axis.get_offset_text().get_text() for ax in figure.axes for axis in (ax.xaxis, ax.yaxis)]


def write_log(path, events):
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def test_plot_names_the_net_hides_duplicates_and_uses_plain_ticks(tmp_path, capsys):
    events = [{"event": "start", "solver": "s.prototxt", "net": "mnist_siamese"}]
    for it in range(0, 30001, 1000):
        loss = 2.0 * 0.9 ** (it / 1000)
        events.append({"event": "train", "iter": it, "loss": loss, "smoothed_loss": loss})
        if it % 5000 == 0:
            events.append({"event": "test", "iter": it, "net": 0,
                           "outputs": {"accuracy": 0.5 + it / 70000, "loss": loss}})
    log = write_log(tmp_path / "run_log.jsonl", events)
    figure = log_figure(read_log(log), log)
    top, bottom = figure.axes
    assert top.get_title() == "mnist_siamese (run_log.jsonl)"
    # smoothed_loss repeats loss point for point (average_loss 1): one line, not two.
    assert [line.get_label() for line in top.get_lines()] == ["train loss", "test #0 loss"]
    assert [line.get_label() for line in bottom.get_lines()] == ["test #0 accuracy"]
    assert top.get_yscale() == "log" and bottom.get_xlabel() == "iteration"
    texts = [t for t in tick_texts(figure) if t]
    assert texts and not any(mark in t for t in texts for mark in ("$", "×", "^", "e+", "1e"))
    assert "30000" in texts or "25000" in texts                    # iterations written out in full
    assert main(["plot", str(log), "--out", str(tmp_path / "c.png")]) == 0
    assert Image.open(tmp_path / "c.png").size == (800, 700)


def test_plot_of_a_caffe_log_names_the_net(tmp_path):
    log = tmp_path / "caffe.log"
    log.write_text("I0312 10:23:40.1 solver.cpp:48] Solving LeNet\n"
                   "I0312 10:23:41.0 solver.cpp:218] Iteration 0, loss = 2.31\n"
                   "I0312 10:23:45.0 solver.cpp:218] Iteration 100, loss = 0.25\n")
    figure = log_figure(read_log(log), log)
    assert figure.axes[0].get_title() == "LeNet (caffe.log)"
    assert len(figure.axes) == 1                                   # no test outputs: one panel


def test_pca_projection_keeps_a_plane_and_says_so():
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(50, 2)) * [5.0, 1.0]
    basis = np.linalg.qr(rng.normal(size=(4, 2)))[0]
    encodings = plane @ basis.T + 3.0
    points, (centroids,), labels, note = project(encodings, encodings[:3])
    distances = lambda x: np.linalg.norm(x[:, None] - x[None], axis=-1)       # noqa: E731
    np.testing.assert_allclose(distances(points), distances(encodings), atol=1e-9)
    np.testing.assert_allclose(centroids, points[:3], atol=1e-9)
    assert labels[0].startswith("principal component 1 (") and "% of variance" in labels[1]
    assert note == "4-dimensional; projected on its first 2 principal components (PCA)"
    same, _, labels, note = project(encodings[:, :2])
    np.testing.assert_array_equal(same, encodings[:, :2])
    assert labels == ("dimension 0", "dimension 1") and note == ""


def test_embedding_figure_marks_the_centroids():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2], 20)
    encodings = rng.normal(size=(60, 5)) + labels[:, None] * 4.0
    centroids = (np.stack([encodings[labels == c].mean(0) for c in (0, 2)]), np.array([0, 2]))
    figure, note = embedding_figure(encodings, labels, "'feat' of siamese", centroids)
    ax = figure.axes[0]
    assert ax.get_title() == "PCA of 5-D 'feat' of siamese (60 encodings, Decode centroids marked)"
    assert ax.get_xlabel().startswith("principal component 1")
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["0", "1", "2", "centroids"]
    marked = ax.collections[-1].get_offsets()
    points, (projected,), _, _ = project(encodings, centroids[0])
    np.testing.assert_allclose(marked, projected, rtol=1e-6)
    assert figure.get_size_inches().tolist() == [7.0, 6.0]


@pytest.fixture
def digits(tmp_path):
    root = tmp_path / "digits"
    rng = np.random.default_rng(2)
    for label in range(3):
        (root / str(label)).mkdir(parents=True)
        for i in range(4):
            image = rng.integers(0, 50, (28, 28), dtype=np.uint8)
            image[8 * label:8 * label + 6] = 230
            Image.fromarray(image).save(root / str(label) / f"{i}.png")
    train = Net(DEPLOY.with_name("mnist_siamese_train_test.prototxt"), "RUN")
    train.layers["decode1"].set_centroids(rng.normal(size=(3, 2)), np.array([4, 4, 4]))
    train.save(tmp_path / "w.caffemodel")
    return root, tmp_path / "w.caffemodel"


def test_embed_refuses_unfed_inputs_and_encodes_images(digits, tmp_path, capsys):
    root, weights = digits
    argv = ["embed", "--model", str(DEPLOY), "--weights", str(weights), "--blob", "feat",
            "--out", str(tmp_path / "e.png")]
    assert main(argv + ["--phase", "RUN"]) == 2
    err = capsys.readouterr().err
    assert "in phase RUN the net reads its Input blobs (data), which nothing feeds here" in err
    assert main(argv + ["--images", str(root)]) == 0
    assert f"Wrote {tmp_path / 'e.png'} (12 encodings of 'feat', classes from 'folders of {root}')" \
        in capsys.readouterr().out
    assert Image.open(tmp_path / "e.png").size == (700, 600)
    assert main(argv[:-4] + ["--blob", "ip1", "--images", str(root), "--out", str(tmp_path / "p.png")]) == 0
    assert "'ip1' is 500-dimensional; projected on its first 2 principal components" in capsys.readouterr().out
