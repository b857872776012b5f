"""Loss and test-output curves against iteration, from a training log (JSON lines or Caffe text)."""
import math
import os

from layerforge.io import ConfigError
from layerforge.tools.log import read_log


def curves(events):
    """{"loss": {...}, "smoothed_loss": {...}, ("test", net, name): {...}}, each {iter: value}.
    A later record for the same iteration (a resumed run) replaces the earlier one."""
    series = {}
    for event in events:
        kind, iteration = event.get("event"), event.get("iter")
        if iteration is None:
            continue
        if kind == "train":
            for key in ("loss", "smoothed_loss"):
                if isinstance(event.get(key), (int, float)):
                    series.setdefault(key, {})[iteration] = event[key]
        elif kind == "test":
            for name, value in event.get("outputs", {}).items():
                if isinstance(value, (int, float)):
                    series.setdefault(("test", event.get("net", 0), name), {})[iteration] = value
    return series


def plot_log(log_path, out_path):
    """Write a PNG: train and test losses on top, other test outputs (accuracy, ...) below."""
    from matplotlib.figure import Figure   # no pyplot: renders with Agg, no display needed

    series = curves(read_log(log_path))
    if not series:
        raise ConfigError(f"{log_path}: the log holds no train or test records to plot")
    losses = {k: v for k, v in series.items() if not isinstance(k, tuple) or "loss" in k[2]}
    others = {k: v for k, v in series.items() if k not in losses}
    figure = Figure(figsize=(8, 7 if others else 4), layout="constrained")
    axes = figure.subplots(2 if others else 1, 1, sharex=True, squeeze=False)[:, 0]
    for ax, group, ylabel in zip(axes, (losses, others), ("loss", "test output")):
        for key, points in sorted(group.items(), key=lambda kv: (isinstance(kv[0], tuple), str(kv[0]))):
            iterations = sorted(points)
            values = [points[i] for i in iterations]
            label = f"test #{key[1]} {key[2]}" if isinstance(key, tuple) else f"train {key}"
            style = {"alpha": 0.35} if key == "loss" and "smoothed_loss" in group else {}
            marker = "o" if isinstance(key, tuple) and len(iterations) < 30 else None
            ax.plot(iterations, values, label=label, marker=marker, markersize=3, **style)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize="small")
        if ylabel == "loss" and _all_positive(group):
            ax.set_yscale("log")
    axes[-1].set_xlabel("iteration")
    axes[0].set_title(os.path.basename(os.fspath(log_path)))
    figure.savefig(out_path, dpi=100)
    return out_path


def _all_positive(group):
    values = [v for points in group.values() for v in points.values()]
    return all(math.isfinite(v) and v > 0 for v in values) and max(values) > 10 * min(values)
