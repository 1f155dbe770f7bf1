"""The closed loop's own cost per control step: a policy and an environment that do nothing.

    PYTHONPATH=src python benchmarks/control_loop_overhead.py [--steps 200000]

Writes benchmarks/results/control-loop-overhead.json: wall time per step of ``run_loop`` in simulated
time (the clock reads, the bookkeeping into preallocated arrays, the counts), and the decision latency
it measures around a policy that returns at once (the floor of every latency it reports); and the step
without the two reads of the thread's CPU clock.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


class NullEnv:
    """Returns the same observation at once; never ends an episode."""

    def __init__(self):
        self.obs = np.zeros(4, np.float32)

    def reset(self, *, seed=None, options=None):
        return self.obs, {}

    def step(self, action):
        return self.obs, 0.0, False, False, {}


class NullPolicy:
    """Decides at once."""

    spec = {"dt": 1e-3, "steps_per_decision": 1}
    last_counts = {"synops": 0, "spikes": 0, "neuron_updates": 0}

    def reset(self, obs):
        pass

    def act(self, obs):
        return 0


def main() -> int:
    from spikeflow.commands.control import commit, machine
    from spikeflow.control.loop import run_loop

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200_000)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "control-loop-overhead.json"))
    args = ap.parse_args()
    run_loop(NullEnv(), NullPolicy(), duration_s=1e-3 * 1000)  # warm
    res = run_loop(NullEnv(), NullPolicy(), duration_s=1e-3 * args.steps)
    bare = run_loop(NullEnv(), NullPolicy(), duration_s=1e-3 * args.steps, cpu_clock=int)  # no CPU-time reads
    out = {"command": "PYTHONPATH=src python benchmarks/control_loop_overhead.py " + " ".join(sys.argv[1:]),
           "commit": commit(), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "machine": machine(), "steps": res.steps,
           "wall_us_per_step": res.wall_s / res.steps * 1e6,
           "wall_us_per_step_without_cpu_time": bare.wall_s / bare.steps * 1e6,
           "null_decision_latency_us": res.latency_us(), "null_decision_cpu_us": res.cpu_us()}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"loop: {out['wall_us_per_step']:.2f} µs per step with a null policy and environment; measured latency "
          f"of a null decision p50 {out['null_decision_latency_us']['p50']:.2f} µs, "
          f"p99 {out['null_decision_latency_us']['p99']:.2f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
