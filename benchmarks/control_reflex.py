"""Reflex benchmark: early (anytime) vs full-window withdrawal from a ramping stimulus.

    PYTHONPATH=src python benchmarks/control_reflex.py [--trials 300]

Writes benchmarks/results/control-reflex.json (command, commit, machine, both controllers' success,
false-alarm and too-late rates and reaction times, and the early controller's threshold sweep).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    from spikeflow.commands.control import commit, machine
    from spikeflow.control.reflex import ReflexTask, compare_controllers

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=300)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "control-reflex.json"))
    args = ap.parse_args()
    task = ReflexTask()
    t0 = time.perf_counter()
    res = compare_controllers(task, trials=args.trials, seed=0, confidence=0.9, sweep=(0.6, 0.75, 0.95, 0.99))
    res = {"command": "PYTHONPATH=src python benchmarks/control_reflex.py " + " ".join(sys.argv[1:]),
           "commit": commit(), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "machine": machine(), "seconds": round(time.perf_counter() - t0, 1), **res}
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    for name in ("early", "full_window"):
        r = res[name]
        print(f"{name:>11}: success {r['success_rate']:.3f}, false alarms {r['false_alarm_rate']:.3f}, too late "
              f"{r['too_late_rate']:.3f}, reaction median {r['reaction_ms_median']} ms")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
