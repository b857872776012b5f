"""`layerforge train`: snapshots, the JSON-lines log, final test outputs, resume, progress bar."""
import json
import warnings

import pytest

from layerforge import cli
from layerforge.cli import main
from layerforge.tools.log import parse_caffe_log
from tests.cli import save_weights, write_solver

pytest.importorskip("layerforge.solvers", reason="layerforge.solvers (the solver helper's module) "
                                                "does not exist yet")


def _events(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_train_writes_snapshots_log_and_final_outputs(tmp_path, capsys):
    solver = write_solver(tmp_path)
    assert main(["train", "--solver", str(solver)]) == 0
    captured = capsys.readouterr()
    snap = tmp_path / "snap"
    for it in (20, 40):
        assert (snap / f"clusters_iter_{it}.caffemodel").is_file()
        assert (snap / f"clusters_iter_{it}.solverstate").is_file()
    log_path = snap / "clusters_log.jsonl"
    events = _events(log_path)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "stop" and events[-1]["reason"] == "max_iter"
    assert [e["iter"] for e in events if e["event"] == "train"] == [0, 10, 20, 30, 40]  # 40: final
    tests = [e for e in events if e["event"] == "test"]
    assert [e["iter"] for e in tests] == [0, 20, 40]
    assert [e["iter"] for e in events if e["event"] == "snapshot"] == [20, 40]
    assert "iteration" not in kinds                          # per-iteration events are not logged
    # stdout: the last test's outputs, as logged; stderr: Caffe-style log lines.
    final = tests[-1]["outputs"]
    assert captured.out.splitlines() == [
        "Test net #0 (iteration 40):",
        f"    accuracy = {final['accuracy']:.6g}",
        f"    loss = {final['loss']:.6g}",
        f"Training log: {log_path}"]
    assert final["accuracy"] > 0.9                           # the clusters are easy to separate
    assert "Iteration 10, loss = " in captured.err
    assert "    Test net output #0: accuracy = " in captured.err
    # `plot` reads the log the run wrote, and the text log on stderr says the same.
    assert main(["plot", str(log_path)]) == 0
    assert (snap / "clusters_log.png").read_bytes().startswith(b"\x89PNG")
    text_events = parse_caffe_log(captured.err.splitlines())
    assert [e["outputs"] for e in text_events if e["event"] == "test"] == [
        pytest.approx(e["outputs"], rel=1e-5) for e in tests]
    text_train = {e["iter"]: e["loss"] for e in text_events if e["event"] == "train"}
    for event in events:
        if event["event"] == "train":
            assert text_train[event["iter"]] == pytest.approx(event["smoothed_loss"], rel=1e-5)


def test_resume_appends_to_the_log_and_matches_the_full_run(tmp_path, capsys):
    solver = write_solver(tmp_path)
    log_path = tmp_path / "run.jsonl"
    assert main(["train", "--solver", str(solver), "--log", str(log_path), "--quiet"]) == 0
    full_run = capsys.readouterr()
    assert full_run.err == ""                               # --quiet: no log lines
    state = tmp_path / "snap" / "clusters_iter_20.solverstate"
    assert main(["train", "--solver", str(solver), "--snapshot", str(state),
                 "--log", str(log_path), "--quiet"]) == 0
    resumed = capsys.readouterr()
    assert resumed.out == full_run.out                       # same final test outputs
    events = _events(log_path)
    starts = [e for e in events if e["event"] == "start"]
    assert [s["resume"] for s in starts] == [None, str(state)]
    assert [e["iter"] for e in events if e["event"] == "train"] == [0, 10, 20, 30, 40, 20, 30, 40]


def test_train_from_weights(tmp_path, capsys):
    weights = save_weights(tmp_path)
    solver = write_solver(tmp_path, max_iter=10, test_interval=10, snapshot=0)
    assert main(["train", "--solver", str(solver), "--weights", str(weights)]) == 0
    assert "Test net #0 (iteration 10):" in capsys.readouterr().out
    start = _events(tmp_path / "snap" / "clusters_log.jsonl")[0]
    assert start["weights"] == str(weights)
    assert main(["train", "--solver", str(solver), "--weights", str(weights),
                 "--snapshot", "x.solverstate"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_progress_bar_on_a_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_show_progress", lambda: True)
    assert main(["train", "--solver", str(write_solver(tmp_path))]) == 0
    err = capsys.readouterr().err
    assert "40/40" in err and "accuracy=" in err and "loss=" in err
    assert "Iteration 30, loss = " not in err                # the bar or log lines, not both
    assert main(["train", "--solver", str(write_solver(tmp_path)), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "Iteration 30, loss = " in err and "40/40" not in err


def test_progress_bar_of_a_resumed_run_starts_at_the_restored_iteration(tmp_path, capsys, monkeypatch):
    solver = write_solver(tmp_path)
    assert main(["train", "--solver", str(solver)]) == 0
    monkeypatch.setattr(cli, "_show_progress", lambda: True)
    capsys.readouterr()
    assert main(["train", "--solver", str(solver), "--snapshot",
                 str(tmp_path / "snap" / "clusters_iter_20.solverstate")]) == 0
    err = capsys.readouterr().err
    assert "| 20/40 [" in err and "| 0/40 [" not in err and "40/40" in err


def test_divergence_is_a_one_line_error_with_status_1(tmp_path, capsys):
    solver = write_solver(tmp_path, base_lr="1e38")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)       # numpy may warn of the overflow
        status = main(["train", "--solver", str(solver)])
    assert status == 1
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("layerforge: error: Iteration ") and "non-finite is 'ip" in err


def test_bad_solver_is_a_one_line_error(tmp_path, capsys):
    solver = write_solver(tmp_path, lr_policy='"sometimes"')
    assert main(["train", "--solver", str(solver)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("layerforge: error: ") and 'unknown lr_policy "sometimes"' in err
    assert "Traceback" not in err
