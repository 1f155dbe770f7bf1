"""``spikeflow precompile [--half 1|2]``: compile the numba kernels into numba's on-disk cache ahead
of their first use.

A kernel compiles on its first call (seconds each, minutes for all of them) and is then loaded from
the cache next to its source file, by any process with the same Python and numba. This runs small
workloads through the public modules (fused Linear+LIF layers in float32, ``TrainStep``; conv+LIF+pool, event
synapse and LIF kernels in float32 and float64; the clock-free, event and stream engines), so that a
training run, a real-time stream or a test suite started afterwards starts without compiling.
Kernels this does not reach still compile on their first call, as always. ``--half`` splits the
work in two halves that can run side by side.
"""

from __future__ import annotations

LIF = dict(tau_mem=5e-3, r=5.0)


def _train_step(model, x):
    import torch

    out = model(x)
    (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum().backward()
    with torch.no_grad():
        model(x)
        model(x)  # the second call reuses the first's input-major weights (linear_lif.input_major)


def _spikes():
    import torch

    return (torch.rand(12, 2, 24, generator=torch.Generator().manual_seed(0)) < 0.3).float()


def linear_kernels() -> None:
    """Fused Linear+LIF as a pair in ``Sequential``, on float32 and on uint8 spikes (which the pair
    reads as they are): float32 weights only (float64 compiles them again)."""
    import torch

    from spikeflow import nn as snn

    pair = snn.Sequential(snn.LinearLIF(24, 16, event="always", **LIF), snn.LinearLIF(16, 6, event="always", **LIF))
    _train_step(pair, _spikes())
    _train_step(pair, _spikes().to(torch.uint8))


def single_linear_kernels() -> None:
    """One fused ``LinearLIF`` alone, float32 (``synapse_kernels`` compiles its kernels for float64)."""
    from spikeflow import nn as snn

    _train_step(snn.LinearLIF(24, 16, event="always", **LIF), _spikes())


def train_step_kernels() -> None:
    """``spikeflow.train.TrainStep`` on a fused pair: the count cross-entropy's kernel and, from Adam's
    second step, its fused update (the pair's own kernels as ``linear_kernels`` compiles them)."""
    import torch

    from spikeflow import nn as snn
    from spikeflow.train import TrainStep

    x = (torch.rand(12, 2, 24, generator=torch.Generator().manual_seed(0)) < 0.3).to(torch.uint8)
    pair = snn.Sequential(snn.LinearLIF(24, 16, event="always", **LIF), snn.LinearLIF(16, 6, event="always", **LIF))
    step = TrainStep(pair, torch.optim.Adam(pair.parameters(), lr=0.0))
    for _ in range(2):
        step(x, torch.zeros(2, dtype=torch.long))


def conv_kernels() -> None:
    """Event conv + LIF + AvgPool2d and LIF + AvgPool2d: float32 and float64."""
    import torch

    from spikeflow import nn as snn

    g = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        img = (torch.rand(6, 2, 2, 12, 12, generator=g) < 0.2).to(dtype)
        _train_step(snn.Sequential(snn.SpikeConv2d(2, 4, 3, padding=1, event="always"), snn.LIF(**LIF),
                                   torch.nn.AvgPool2d(2), snn.LIF(**LIF), torch.nn.AvgPool2d(2)).to(dtype), img)


def synapse_kernels() -> None:
    """An event ``SpikeLinear`` + ``LIF`` (the fused Linear+LIF kernels) in float64; ``linear_kernels``
    compiles the same kernels for float32."""
    import torch

    from spikeflow import nn as snn

    x = (torch.rand(12, 2, 24, generator=torch.Generator().manual_seed(0)) < 0.3).double()
    _train_step(snn.Sequential(snn.SpikeLinear(24, 16, event="always"), snn.LIF(16, **LIF)).double(), x)


def _nir_mlp(rng, n_in=2 * 8 * 8, n_h=16, n_out=4, dt=1e-3):
    import nir
    import numpy as np

    def lif(n):
        return nir.LIF(tau=rng.uniform(5e-3, 30e-3, n), r=np.ones(n), v_leak=np.zeros(n),
                       v_threshold=rng.uniform(0.5, 1.5, n), v_reset=np.zeros(n))

    return nir.NIRGraph(
        nodes={"input": nir.Input(np.array([2, 8, 8])),
               "flat": nir.Flatten(input_type={"input": np.array([2, 8, 8])}, start_dim=0, end_dim=-1),
               "fc1": nir.Affine(rng.normal(0.3, 1.0, (n_h, n_in)), np.zeros(n_h)), "h": lif(n_h),
               "fc2": nir.Affine(rng.normal(0.3, 1.0, (n_out, n_h)), np.zeros(n_out)), "out": lif(n_out),
               "output": nir.Output(np.array([n_out]))},
        edges=[("input", "flat"), ("flat", "fc1"), ("fc1", "h"), ("h", "fc2"), ("fc2", "out"), ("out", "output")],
        metadata={"dt": dt}, type_check=False)


def runtime_kernels() -> None:
    """The clock-free engine (one sample and a batch) and a stream of camera events on the event engine."""
    import numpy as np

    from spikeflow.runtime.clockfree import ClockFreeEngine
    from spikeflow.runtime.stream import Stream

    rng = np.random.default_rng(0)
    graph = _nir_mlp(rng)
    t = np.sort(rng.uniform(0, 0.03, 200))
    idx = rng.integers(0, 128, 200)
    engine = ClockFreeEngine(graph, spike_area=1e-3)
    engine.run_events(t, idx, until=0.04)
    engine.run_events_batch([(t, idx), (t[:50], idx[:50])], until=0.04)
    n = 2000
    ev = np.zeros(n, dtype=[("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)])
    ev["x"], ev["y"], ev["p"] = rng.integers(0, 8, n), rng.integers(0, 8, n), rng.integers(0, 2, n)
    ev["t"] = np.sort(rng.integers(0, 20_000, n))
    stream = Stream(graph, engine="event")
    for lo in range(0, n, 100):
        stream.push(ev[lo:lo + 100])


# two halves of about equal compile time (about 3 minutes each when both run beside the test setup);
# TrainStep's last: it reuses the pair's kernels, which half 1 compiles first
HALVES = ((linear_kernels, runtime_kernels), (conv_kernels, synapse_kernels, single_linear_kernels, train_step_kernels))


def precompile(half: int | None = None) -> None:
    """Runs the workloads of ``HALVES[half - 1]``, or of both halves."""
    for i, workloads in enumerate(HALVES, 1):
        if half in (None, i):
            for compile_kernels in workloads:
                compile_kernels()


def register(sub) -> None:
    p = sub.add_parser("precompile", help="compile the numba kernels into their on-disk cache, so that later runs "
                                          "start without compiling (minutes on one core)")
    p.add_argument("--half", type=int, choices=(1, 2), default=None,
                   help="compile one of two halves of about equal time (two processes side by side); "
                        "default: both")
    p.set_defaults(func=run)


def run(args) -> int:
    import time

    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    precompile(args.half)
    which = "all" if args.half is None else f"half {args.half} of the"
    print(f"spikeflow: {which} kernels compiled (or loaded from the cache) in {time.perf_counter() - t0:.0f} s")
    return 0
