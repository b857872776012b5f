"""Per-layer forward/backward timing of a Net, like `caffe time`."""
import time
from dataclasses import dataclass, field

from layerforge.kernels.threads import blas_on_one_thread


@dataclass
class TimingReport:
    """Mean milliseconds per iteration: per layer (name, type, forward, backward) and in total."""
    iterations: int
    layers: list = field(default_factory=list)      # (name, type, forward_ms, backward_ms)
    # type is e.g. "Convolution (winograd)" for a layer that chose an algorithm
    forward_ms: float = 0.0
    backward_ms: float = 0.0

    @property
    def forward_backward_ms(self):
        return self.forward_ms + self.backward_ms

    def lines(self):
        """The report as text lines: one row per layer, then the totals."""
        width = max([len(name) for name, *_ in self.layers] + [5])
        kinds = max([len(kind) for _, kind, *_ in self.layers] + [4])
        rows = [f"{'layer':<{width}}  {'type':<{kinds}}  {'forward ms':>10}  {'backward ms':>11}"]
        rows += [f"{name:<{width}}  {kind:<{kinds}}  {fwd:10.3f}  {bwd:11.3f}"
                 for name, kind, fwd, bwd in self.layers]
        rows += [f"Average Forward pass: {self.forward_ms:.3f} ms.",
                 f"Average Backward pass: {self.backward_ms:.3f} ms.",
                 f"Average Forward-Backward: {self.forward_backward_ms:.3f} ms.",
                 f"({self.iterations} iterations)"]
        return rows


def time_net(net, iterations=50, warmup=1):
    """Time `iterations` forward+backward passes of `net`, layer by layer, after `warmup`
    untimed passes (the first pass compiles or loads the Numba kernels). Backward runs
    from the loss tops where training would run it (a net without a loss has none);
    parameter diffs are cleared between passes."""
    count = len(net.layers)
    forward, backward = [0.0] * count, [0.0] * count
    with blas_on_one_thread():
        for step in range(warmup + iterations):
            net.clear_param_diffs()
            timed = step >= warmup
            for i in range(count):
                start = time.perf_counter()
                net.forward_layer(i)
                if timed:
                    forward[i] += time.perf_counter() - start
            net.seed_loss_diffs()
            for i in range(count - 1, -1, -1):
                start = time.perf_counter()
                net.backward_layer(i)
                if timed:
                    backward[i] += time.perf_counter() - start
    scale = 1000.0 / max(iterations, 1)
    report = TimingReport(iterations)
    for (name, layer), fwd, bwd in zip(net.layers.items(), forward, backward):
        algorithm = getattr(layer, "algorithm", None)
        kind = f"{layer.param.type} ({algorithm})" if algorithm else layer.param.type
        report.layers.append((name, kind, fwd * scale, bwd * scale))
    report.forward_ms = sum(forward) * scale
    report.backward_ms = sum(backward) * scale
    return report
