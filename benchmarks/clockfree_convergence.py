"""How closely the stepped CubaLIF engines follow the clock-free engine, spike by spike, with the
reset at the end of the crossing step (``reset_timing="step"``, the default) and at the crossing
time located inside the step (``reset_timing="crossing"``).

    PYTHONPATH=src python benchmarks/clockfree_convergence.py

Runs the random CubaLIF graphs of ``tests/runtime/test_clockfree.py`` (20-16-4 neurons, 60 input
spikes in 50 ms; seeds 1-3; subtract and to-reset modes) on the clock-free engine and on the event
engine stepped at dt = 100, 10 and 1 µs, and prints the distribution of the stepped spike time's
error in units of dt (a stepped spike is reported at the end of its step: error in [0, 1] dt is
"within one dt"). The row "out|mid" compares the stepped output layer with the clock-free output
layer fed the stepped first-layer spikes at their steps' middles: what ``"step"`` mode delivers
(a spike's charge held over its step), which separates the reset timing from the quantisation of
the first layer's spike times. ``"crossing"`` mode delivers each spike at its crossing time inside
the step (to first order, ``neurons.cuba``'s lag moments), so there "out" is within one dt of the
full clock-free network and "out|mid" is not.
It reuses the tests' graph builders and helpers (run from the repository root).
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.runtime.rt_graphs import mlp  # noqa: E402
from tests.runtime.test_clockfree import _mid_step, _spike_time_errors, _stepped_spike_times  # noqa: E402
from tests.runtime.test_reset_timing import _out_only  # noqa: E402

from spikeflow.runtime import ClockFreeEngine  # noqa: E402

DUR, Q = 0.05, 1e-3  # seconds of input; charge per input spike
MODES = ("step", "crossing")


def errors_in_dt(dt: float):
    """Per reset timing: stepped minus clock-free spike time / dt for every spike (NaN where the
    counts differ), for the hidden layer ``h`` and the output layer ``out``."""
    out = {(m, node): [] for m in MODES for node in ("h", "out", "out|mid")}
    for seed in (1, 2, 3):
        for reset in ("subtract", "to_reset"):
            rng = np.random.default_rng(seed)
            g = mlp(rng, sizes=(20, 16, 4), kind="cubalif", reset=reset, readout_li=False, bias=0.0)
            t_s = np.sort(rng.integers(0, int(DUR * 1e6), 60)) * 1e-6
            idx = rng.integers(0, 20, 60)
            ref = ClockFreeEngine(g, spike_area=Q, xtol=1e-12).run_events(_mid_step(t_s, dt), idx, until=DUR)
            for mode in MODES:
                step = _stepped_spike_times(g, t_s, idx, 20, DUR, dt, Q, reset_timing=mode)
                for (node, _), e in _spike_time_errors(ref, step, dt, ("h", "out")).items():
                    out[(mode, node)].append(np.array([np.nan]) if e is None else e)
                t_h, n_h = np.nonzero(step["h"])
                order = np.argsort(t_h, kind="stable")
                ref_out = ClockFreeEngine(_out_only(g), spike_area=Q, xtol=1e-12).run_events(
                    (t_h[order] + 0.5) * dt, n_h[order], until=DUR)
                for e in _spike_time_errors(ref_out, {"out": step["out"]}, dt, ("out",)).values():
                    out[(mode, "out|mid")].append(np.array([np.nan]) if e is None else e)
    return {k: np.concatenate(v) for k, v in out.items()}


def _row(label, e, dt):
    ok = e[np.isfinite(e)]
    within = np.mean((ok >= -1e-6) & (ok <= 1 + 1e-6))
    a = np.abs(ok)
    return (f"{label:22s} {e.size:6d} {np.isnan(e).sum():10d} {within:11.1%} {np.median(a):9.2f} dt "
            f"{np.percentile(a, 99):7.2f} dt {a.max():7.2f} dt ({a.max() * dt * 1e6:.2f} µs)")


def main() -> None:
    print("dt      reset_timing layer  spikes count diff within 1 dt median |err|  p99 |err|  max |err|")
    for dt in (1e-4, 1e-5, 1e-6):
        errs = errors_in_dt(dt)
        for mode in MODES:
            for node in ("h", "out", "out|mid"):
                print(f"{dt * 1e6:4.0f} µs " + _row(f"{mode:8s}  {node:5s}", errs[(mode, node)], dt))
            both = np.concatenate([errs[(mode, "h")], errs[(mode, "out")]])
            print(f"{dt * 1e6:4.0f} µs " + _row(f"{mode:8s}  h+out", both, dt))


if __name__ == "__main__":
    main()
