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


def distinct(series):
    """`series` without the ones that repeat an earlier series point for point (e.g. a
    smoothed loss equal to the loss when average_loss is 1), in order."""
    kept = {}
    for key, points in series.items():
        if not any(points == other for other in kept.values()):
            kept[key] = points
    return kept


def net_name(events):
    """The net's name from a log's start record ("net"), else None."""
    return next((e["net"] for e in events if e.get("event") == "start" and e.get("net")), None)


def log_figure(events, source):
    """The Figure of plot_log: train and test losses on top, other test outputs below, titled
    with the net's name and the log file; plain tick labels (no 10^k or offsets)."""
    from matplotlib.figure import Figure   # no pyplot: renders with Agg, no display needed

    series = distinct(dict(sorted(curves(events).items(),
                                  key=lambda kv: (isinstance(kv[0], tuple), str(kv[0])))))
    if not series:
        raise ConfigError(f"{source}: the log holds no train or test records to plot")
    losses = {k: v for k, v in series.items() if not isinstance(k, tuple) or "loss" in k[2]}
    others = {k: v for k, v in series.items() if k not in losses}
    figure = Figure(figsize=(8, 7 if others else 4), layout="constrained")
    axes = figure.subplots(2 if others else 1, 1, sharex=True, squeeze=False)[:, 0]
    for ax, group, ylabel in zip(axes, (losses, others), ("loss", "test output")):
        for key, points in group.items():
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
        _plain_ticks(ax)
    axes[-1].set_xlabel("iteration")
    name = net_name(events)
    log_name = os.path.basename(os.fspath(source))
    axes[0].set_title(f"{name} ({log_name})" if name else log_name)
    return figure


def plot_log(log_path, out_path):
    """Write the training curves of a log to a PNG (log_figure); returns out_path."""
    log_figure(read_log(log_path), log_path).savefig(out_path, dpi=100)
    return out_path


def _plain_ticks(ax):
    """Tick labels as plain numbers: 0.05 and 2000, not 5×10⁻² or 2 with a ×10³ offset."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plain = FuncFormatter(lambda value, _: f"{value:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.yaxis.set_major_formatter(plain)
    if ax.get_yscale() == "log":
        ax.yaxis.set_minor_formatter(NullFormatter())


def _all_positive(group):
    values = [v for points in group.values() for v in points.values()]
    return all(math.isfinite(v) and v > 0 for v in values) and max(values) > 10 * min(values)
