"""How closely the stepped CubaLIF engines follow the clock-free engine, spike by spike.

    PYTHONPATH=src python benchmarks/clockfree_convergence.py

Runs the random CubaLIF graphs of ``tests/runtime/test_clockfree.py`` (20-16-4 neurons, 60 input
spikes in 50 ms; seeds 1-3; subtract and to-reset modes) on the clock-free engine and on the event
engine stepped at dt = 100, 10 and 1 µs, and prints the distribution of the stepped spike time's
error in units of dt. It reuses that test's graph builder and helpers (run from the repository root).
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.runtime.rt_graphs import mlp  # noqa: E402
from tests.runtime.test_clockfree import _mid_step, _spike_time_errors, _stepped_spike_times  # noqa: E402

from spikeflow.runtime import ClockFreeEngine  # noqa: E402

DUR, Q = 0.05, 1e-3  # seconds of input; charge per input spike


def errors_in_dt(dt: float) -> np.ndarray:
    """Stepped minus clock-free spike time / dt for every spike (NaN where the counts differ)."""
    out = []
    for seed in (1, 2, 3):
        for reset in ("subtract", "to_reset"):
            rng = np.random.default_rng(seed)
            g = mlp(rng, sizes=(20, 16, 4), kind="cubalif", reset=reset, readout_li=False, bias=0.0)
            t_s = np.sort(rng.integers(0, int(DUR * 1e6), 60)) * 1e-6
            idx = rng.integers(0, 20, 60)
            ref = ClockFreeEngine(g, spike_area=Q, xtol=1e-12).run_events(_mid_step(t_s, dt), idx, until=DUR)
            step = _stepped_spike_times(g, t_s, idx, 20, DUR, dt, Q)
            for e in _spike_time_errors(ref, step, dt, ("h", "out")).values():
                out.append(np.array([np.nan]) if e is None else e)
    return np.concatenate(out)


def main() -> None:
    print("   dt   spikes  count mismatches  within 1 dt  median |err|  p99 |err|  max |err|")
    for dt in (1e-4, 1e-5, 1e-6):
        e = errors_in_dt(dt)
        ok = np.abs(e[np.isfinite(e)])
        print(f"{dt * 1e6:4.0f} µs {e.size:7d} {np.isnan(e).sum():17d} {np.mean(ok <= 1 + 1e-6):11.1%} "
              f"{np.median(ok):10.2f} dt {np.percentile(ok, 99):7.2f} dt {ok.max():7.2f} dt "
              f"({ok.max() * dt * 1e6:.0f} µs)")


if __name__ == "__main__":
    main()
