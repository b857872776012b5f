"""`layerforge test|time|plot|embed` on a tiny net, and the log writer/reader behind `plot`
(`draw`: tests/test_draw.py)."""
import json
import re
from pathlib import Path

import numpy as np
import pytest

from layerforge.cli import main
from layerforge.io import ConfigError, read_net
from layerforge.net import Net
from layerforge.tools.log import JsonLinesLog, parse_caffe_log, read_log
from layerforge.tools.plot import curves
from layerforge.tools.timing import time_net
from tests.cli import write_net

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture
def weights(tmp_path):
    """A .caffemodel of the clusters net whose ip2 always predicts class 1 (known accuracy)."""
    net = Net(write_net(tmp_path), "TEST")
    net.params["ip2"][0].data[...] = 0
    net.params["ip2"][1].data[...] = [0, 5, 0]
    path = tmp_path / "clusters.caffemodel"
    net.save(path)
    return path


def test_test_prints_mean_accuracy_and_loss(tmp_path, weights, capsys):
    assert main(["test", "--model", str(tmp_path / "net.prototxt"), "--weights", str(weights),
                 "--iterations", "4"]) == 0
    captured = capsys.readouterr()
    # The reference: the same batches (same seed) scored directly.
    net = Net(tmp_path / "net.prototxt", "TEST", weights=weights)
    batches = [{name: np.array(value) for name, value in net.forward().items()}
               | {"label": net.blobs["label"].data.copy()} for _ in range(4)]
    accuracy = np.mean([np.mean(b["label"] == 1) for b in batches])
    loss = np.mean([float(b["loss"]) for b in batches])
    lines = captured.out.splitlines()
    assert lines[0] == f"accuracy = {accuracy:.6g}"
    assert lines[1] == f"loss = {loss:.6g} (* 1 = {loss:.6g} loss)"
    assert "Batch 3, accuracy = " in captured.err


def test_time_prints_a_row_per_layer_and_totals(tmp_path, capsys):
    assert main(["time", "--model", str(write_net(tmp_path)), "--iterations", "3"]) == 0
    out = capsys.readouterr().out
    for name, kind in [("data", "Python"), ("ip1", "InnerProduct"), ("ip2", "InnerProduct"),
                       ("loss", "SoftmaxWithLoss")]:
        assert re.search(rf"^{name}\s+{kind}\s+\d+\.\d{{3}}\s+\d+\.\d{{3}}$", out, re.M), out
    assert "accuracy" not in out          # a TEST-only layer; --phase defaults to TRAIN
    for total in ("Forward pass", "Backward pass", "Forward-Backward"):
        assert re.search(rf"^Average {total}: \d+\.\d{{3}} ms\.$", out, re.M)


def test_time_net_sums_layers_into_totals(tmp_path):
    net = Net(write_net(tmp_path), "TRAIN")
    report = time_net(net, iterations=2, warmup=1)
    assert [row[0] for row in report.layers] == [e.param.name for e in net.entries]
    assert report.forward_ms == pytest.approx(sum(row[2] for row in report.layers))
    assert report.backward_ms == pytest.approx(sum(row[3] for row in report.layers))
    assert report.forward_backward_ms == pytest.approx(report.forward_ms + report.backward_ms)
    assert net.params["ip1"][0].diff.any()                                # backward did run


CONVS = """
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 1 dim: 10 dim: 10 } } }
layer { name: "few" type: "Convolution" bottom: "x" top: "y" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "many" type: "Convolution" bottom: "y" top: "z" convolution_param { num_output: 2 kernel_size: 3 } }
layer { name: "caffe" type: "Convolution" bottom: "z" top: "w"
        convolution_param { num_output: 2 kernel_size: 3 engine: CAFFE } }
"""


def test_time_names_each_convolution_algorithm(tmp_path, capsys):
    (tmp_path / "convs.prototxt").write_text(CONVS)
    assert main(["time", "--model", str(tmp_path / "convs.prototxt"), "--iterations", "1"]) == 0
    out = capsys.readouterr().out
    for name, kind in [("few", "direct"), ("many", "winograd"), ("caffe", "im2col")]:
        assert re.search(rf"^{name}\s+Convolution \({kind}\)\s+\d+\.\d{{3}}", out, re.M), out


CAFFE_LOG = """\
I0312 10:23:40.1 solver.cpp:330] Iteration 0, Testing net (#0)
I0312 10:23:40.2 solver.cpp:397]     Test net output #0: accuracy = 0.1
I0312 10:23:40.2 solver.cpp:397]     Test net output #1: loss = 2.3 (* 1 = 2.3 loss)
I0312 10:23:41.0 solver.cpp:218] Iteration 0 (0 iter/s, 0.1s/100 iters), loss = 2.31
I0312 10:23:41.0 solver.cpp:237]     Train net output #0: loss = 2.31 (* 1 = 2.31 loss)
I0312 10:23:41.0 sgd_solver.cpp:105] Iteration 0, lr = 0.01
I0312 10:23:45.0 solver.cpp:218] Iteration 100 (25 iter/s, 4s/100 iters), loss = 0.25
I0312 10:23:45.0 sgd_solver.cpp:105] Iteration 100, lr = 0.0099
I0312 10:23:49.0 solver.cpp:218] Iteration 200, loss = 1.5e-01
I0312 10:23:50.0 solver.cpp:330] Iteration 200, Testing net (#0)
I0312 10:23:50.1 solver.cpp:397]     Test net output #0: accuracy = 0.9712
I0312 10:23:50.1 solver.cpp:397]     Test net output #1: loss = 0.08 (* 1 = 0.08 loss)
I0312 10:23:50.1 solver.cpp:464] Snapshotting to binary proto file x_iter_200.caffemodel
"""


def test_parse_caffe_log():
    events = parse_caffe_log(CAFFE_LOG.splitlines())
    assert events == [
        {"event": "test", "iter": 0, "net": 0, "outputs": {"accuracy": 0.1, "loss": 2.3}},
        {"event": "train", "iter": 0, "loss": 2.31, "lr": 0.01},
        {"event": "train", "iter": 100, "loss": 0.25, "lr": 0.0099},
        {"event": "train", "iter": 200, "loss": 0.15},
        {"event": "test", "iter": 200, "net": 0, "outputs": {"accuracy": 0.9712, "loss": 0.08}},
    ]


def test_jsonl_round_trip_and_resumed_runs_replace_iterations(tmp_path):
    path = tmp_path / "log.jsonl"
    with JsonLinesLog(path) as log:
        log({"event": "train", "iter": 10, "loss": np.float32(0.5), "lr": 0.1})
        log({"event": "test", "iter": 10, "net": 0, "outputs": {"accuracy": np.float64(0.7)}})
        log({"event": "train", "iter": 20, "loss": 0.4, "lr": 0.1})
    with JsonLinesLog(path, append=True) as log:      # resumed from iteration 10
        log({"event": "train", "iter": 20, "loss": 0.3, "lr": 0.1})
    events = read_log(path)
    assert len(events) == 4 and all("time" in e for e in events)
    assert events[0]["loss"] == 0.5 and events[1]["outputs"] == {"accuracy": pytest.approx(0.7)}
    series = curves(events)
    assert series["loss"] == {10: 0.5, 20: 0.3}
    assert series[("test", 0, "accuracy")] == {10: pytest.approx(0.7)}


def test_read_log_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"event": "train", "iter": 1, "loss": 1}\n{oops\n{"event": "stop"}\n')
    with pytest.raises(ConfigError, match=r"bad.jsonl:2: not a JSON object"):
        read_log(bad)
    bad.write_text('{"event": "train", "iter": 1, "loss": 1}\n{"event": "tr')   # still being written
    assert read_log(bad) == [{"event": "train", "iter": 1, "loss": 1}]
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    with pytest.raises(ConfigError, match="neither a JSON-lines log nor a Caffe text log"):
        read_log(text)


@pytest.mark.parametrize("kind", ["jsonl", "caffe"])
def test_plot_writes_png(tmp_path, kind, capsys):
    if kind == "caffe":
        log = tmp_path / "caffe.log"
        log.write_text(CAFFE_LOG)
    else:
        log = tmp_path / "train_log.jsonl"
        log.write_text("".join(json.dumps(e) + "\n" for e in [
            {"event": "start", "solver": "s"},
            {"event": "train", "iter": 0, "loss": 2.0, "smoothed_loss": 2.0, "lr": 0.1},
            {"event": "train", "iter": 10, "loss": 0.5, "smoothed_loss": 1.2, "lr": 0.1},
            {"event": "test", "iter": 10, "net": 0, "outputs": {"accuracy": 0.8, "loss": 0.6}},
            {"event": "stop", "reason": "max_iter"}]))
    assert main(["plot", str(log)]) == 0
    out = log.with_suffix(".png")
    assert capsys.readouterr().out.strip() == f"Wrote {out}"
    assert out.read_bytes().startswith(PNG_MAGIC)
    assert main(["plot", str(log), "--out", str(tmp_path / "curves.png")]) == 0
    assert (tmp_path / "curves.png").read_bytes().startswith(PNG_MAGIC)


def test_plot_of_a_log_without_records_is_an_error(tmp_path, capsys):
    log = tmp_path / "empty.jsonl"
    log.write_text('{"event": "start", "solver": "s"}\n')
    assert main(["plot", str(log)]) == 2
    assert "holds no train or test records" in capsys.readouterr().err


def test_embed_writes_png(tmp_path, weights, capsys):
    out = tmp_path / "embed.png"
    argv = ["embed", "--model", str(tmp_path / "net.prototxt"), "--weights", str(weights),
            "--blob", "ip1", "--iterations", "2", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "Note: 'ip1' is 4-dimensional; projected on its first 2 principal components (PCA)" in printed
    assert f"Wrote {out} (24 encodings of 'ip1', classes from 'label')" in printed
    assert out.read_bytes().startswith(PNG_MAGIC)
    assert main(argv[:-4] + ["--blob", "nope"]) == 2
    assert "the net has no blob 'nope'" in capsys.readouterr().err
    assert main(argv[:-4] + ["--blob", "data", "--out", str(out)]) == 0    # 2-D: nothing cut
    assert "Note" not in capsys.readouterr().out


def test_embed_needs_two_dimensions(tmp_path, weights, capsys):
    assert main(["embed", "--model", str(tmp_path / "net.prototxt"), "--weights", str(weights),
                 "--blob", "loss", "--label-blob", "label", "--out", str(tmp_path / "e.png")]) == 2
    assert "blob 'loss' has shape (); a 2-D scatter needs N×D encodings" in capsys.readouterr().err


def test_collect_encodings_matches_the_net(tmp_path, weights):
    from layerforge.tools.embed import collect_encodings

    encodings, labels = collect_encodings(Net(tmp_path / "net.prototxt", "TEST", weights=weights),
                                          "ip1", "label", iterations=2)
    net = Net(tmp_path / "net.prototxt", "TEST", weights=weights)
    expected, expected_labels = [], []
    for _ in range(2):
        net.forward()
        expected.append(net.blobs["ip1"].data.copy())
        expected_labels.append(net.blobs["label"].data.copy())
    np.testing.assert_array_equal(encodings, np.concatenate(expected))
    np.testing.assert_array_equal(labels, np.concatenate(expected_labels))
