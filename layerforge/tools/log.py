"""Training logs: a JSON-lines writer fed by solver events, and a reader that also parses
Caffe-style text logs ("Iteration 500, loss = 0.0421", "Test net output #0: accuracy = 0.97").

Every record is one event dict: `layerforge train` writes {"event": "start", "solver", ...},
then the solver's {"event": "train", "iter", "loss", "smoothed_loss", "lr", "outputs"},
{"event": "test", "iter", "net", "outputs": {name: value}}, {"event": "snapshot", ...} and
{"event": "stop", "iter", "reason"}; the writer adds "time" (seconds since the log was opened).
"""
import json
import os
import re
import time

from layerforge.io import ConfigError


def _plain(value):
    """JSON fallback for numpy scalars and arrays."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to a JSON log")


class JsonLinesLog:
    """Solver callback writing each event as one JSON object per line, flushed at once so
    the log is readable while training runs. `append=True` continues a resumed run's log.
    Per-iteration events are skipped: display steps ("train" events) carry the loss."""

    skip = ("iteration_start", "gradients_ready", "iteration")

    def __init__(self, path, append=False):
        self.path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._file = open(self.path, "a" if append else "w", encoding="utf-8")
        self._start = time.monotonic()

    def __call__(self, event):
        if event.get("event") in self.skip:
            return
        record = dict(event)
        record.setdefault("time", round(time.monotonic() - self._start, 3))
        self._file.write(json.dumps(record, default=_plain) + "\n")
        self._file.flush()

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_NUMBER = r"([-+]?(?:nan|inf|\d*\.?\d+(?:[eE][-+]?\d+)?))"
_TRAIN = re.compile(r"Iteration (\d+)(?: \([^)]*\))?, loss = " + _NUMBER)
_LR = re.compile(r"Iteration (\d+), lr = " + _NUMBER)
_TESTING = re.compile(r"Iteration (\d+), Testing net \(#(\d+)\)")
_TEST_OUTPUT = re.compile(r"Test net output #\d+: (\S+) = " + _NUMBER)
_SOLVING = re.compile(r"Solving (\S+)")


def parse_caffe_log(lines):
    """Events from the lines of a Caffe or layerforge text log (other lines are ignored).
    The loss Caffe displays is already averaged over `average_loss` iterations."""
    events, test, last_iter = [], None, 0
    for line in lines:
        if match := _TEST_OUTPUT.search(line):
            if test is None:
                test = {"event": "test", "iter": last_iter, "net": 0, "outputs": {}}
                events.append(test)
            test["outputs"][match.group(1)] = float(match.group(2))
            continue
        test = None
        if match := _SOLVING.search(line):
            events.append({"event": "start", "net": match.group(1)})
        elif match := _TESTING.search(line):
            last_iter = int(match.group(1))
            test = {"event": "test", "iter": last_iter, "net": int(match.group(2)), "outputs": {}}
            events.append(test)
        elif match := _TRAIN.search(line):
            last_iter = int(match.group(1))
            events.append({"event": "train", "iter": last_iter, "loss": float(match.group(2))})
        elif (match := _LR.search(line)) and events and events[-1].get("iter") == int(match.group(1)):
            events[-1]["lr"] = float(match.group(2))
    events = [e for e in events if e["event"] != "test" or e["outputs"]]
    return events if any(e["event"] != "start" for e in events) else []


def read_log(path):
    """Events of a JSON-lines log or, when the file is not JSON lines, of a Caffe text log."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    first = next((line for line in lines if line.strip()), "")
    if not first.lstrip().startswith("{"):
        events = parse_caffe_log(lines)
        if not events:
            raise ConfigError(f"{path}: neither a JSON-lines log nor a Caffe text log with "
                              f"'Iteration N, loss = X' or 'Test net output' lines")
        return events
    events = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError as err:
            if number == len(lines):
                break   # a line cut short by a run that is still writing or was killed
            raise ConfigError(f"{path}:{number}: not a JSON object: {err.msg}") from None
    return events
