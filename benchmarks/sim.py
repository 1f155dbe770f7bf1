"""CUBA benchmark: spikeflow.sim against Brian2 2.11 (runtime/Cython and cpp_standalone).

    python benchmarks/sim.py                 # 4k, 16k, 64k side by side + rate/CV over 8 seeds
    python benchmarks/sim.py --huge          # also 4,000,000 neurons (about 80 synapses each), 1 s
    python benchmarks/sim.py --skip-brian2   # spikeflow only
    python benchmarks/sim.py --sizes 4000 --brian2-modes standalone --repeats 7 --stat-seeds 1
                                             # loop times: medians of 7 alternating runs

Brian2 2.11 needs Python >= 3.13: when ``benchmarks/.venv-brian2`` is missing the script creates it
(and pip-installs Brian2 into it) from the first of: ``$BRIAN2_PYTHON``; the newest 3.13.x under
``$(pyenv root)/versions``; ``python3.13`` on ``PATH``. Without any, it stops with one line that
says so.
Every simulator runs 1 s of biological time at dt = 0.1 ms in its own process; build time
(network construction incl. synapses; for Brian2 also code generation and compilation)
and loop time (the simulation loop alone) are reported separately. spikeflow's numba
kernels come from numba's on-disk cache after the first run ("compile" column).
With ``--repeats R`` the loop times are medians of R runs that alternate between
spikeflow (a fresh process each) and the already-built Brian2 standalone binary (run
again as Brian2's ``device.run`` does, loop time from its ``last_run_info.txt``), so
that both see the same machine load; all runs are kept in the JSON.
Results go to ``benchmarks/results/sim.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from peer_venvs import BRIAN2, PeerUnavailable
from spikeflow.atomic import atomic_write_text

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VPY = BRIAN2.python


def spikeflow_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "src"), env.get("PYTHONPATH", "")])
    return env


def run_spikeflow(n, seed=1, extra=()):
    cmd = [sys.executable, "-m", "spikeflow", "sim", "cuba", "--neurons", str(n), "--seed", str(seed), "--json",
           "--no-progress", *extra]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=spikeflow_env()).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_brian2(mode, n, seeds, threads=0):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "b2.npz")
        subprocess.run([VPY, os.path.join(HERE, "brian2_cuba.py"), "--mode", mode, "--neurons", str(n), "--seeds",
                        *map(str, seeds), "--threads", str(threads), "--out", out], check=True)
        z = np.load(out)
        return [{"seed": int(s), "build_s": float(z[f"build_{s}"]), "loop_s": float(z[f"loop_{s}"]),
                 "indices": z[f"i_{s}"], "times": z[f"t_{s}"]} for s in z["seeds"]]


def standalone_dir(n):
    """Where brian2_cuba.py builds the standalone project for ``n`` neurons (its default)."""
    return os.path.join(tempfile.gettempdir(), f"spikeflow_brian2_cuba_{n}")


def rerun_brian2_standalone(n):
    """Run the built standalone binary once more (as ``device.run`` does); its loop time in s."""
    d = standalone_dir(n)
    res = os.path.join(d, "results", "")
    with open(os.path.join(res, "stdout.txt"), "w") as out:
        subprocess.run(["./main", "--results_dir", res], cwd=d, check=True, stdout=out)
    with open(os.path.join(res, "last_run_info.txt")) as f:
        return float(f.read().split()[0])


def stats_over_seeds(rows, n):
    sys.path.insert(0, os.path.join(ROOT, "src"))
    from spikeflow.sim.stats import cv_isi, mean_rate

    rates = np.array([mean_rate(r["indices"], n, 1.0) for r in rows])
    cvs = np.array([cv_isi(r["indices"], r["times"]) for r in rows])
    sem = lambda a: float(a.std(ddof=1) / np.sqrt(a.size)) if a.size > 1 else float("nan")
    return {"seeds": len(rows), "rate_hz": float(rates.mean()), "rate_sem": sem(rates), "cv_isi": float(cvs.mean()),
            "cv_sem": sem(cvs), "rates": rates.round(4).tolist()}


def spikeflow_seeds(n, seeds):
    sys.path.insert(0, os.path.join(ROOT, "src"))
    from spikeflow.sim import cuba

    return [cuba.run(n, seed=s) for s in seeds]


def alternate(n, row, repeats, with_brian2):
    """``repeats`` alternating loop timings; medians replace the single-run loop times."""
    sf_runs, b2_runs = [row["spikeflow"]["loop_s"]], []
    if with_brian2:
        b2_runs.append(row["brian2_standalone"]["loop_s"])
    while len(sf_runs) < repeats or (with_brian2 and len(b2_runs) < repeats):
        if with_brian2 and len(b2_runs) < repeats:
            b2_runs.append(rerun_brian2_standalone(n))
        if len(sf_runs) < repeats:
            sf_runs.append(run_spikeflow(n)["loop_s"])
        print(f"{n:>9} run {len(sf_runs)}: spikeflow {sf_runs[-1]:.3f} s"
              + (f", brian2 standalone {b2_runs[-1]:.3f} s" if with_brian2 else ""), flush=True)
    row["spikeflow"].update(loop_s=float(np.median(sf_runs)), loop_runs=sf_runs)
    print(f"{n:>9} {'spikeflow (median)':<22} {'':>9} {'':>9} {row['spikeflow']['loop_s']:>9.3f}")
    if with_brian2:
        row["brian2_standalone"].update(loop_s=float(np.median(b2_runs)), loop_runs=b2_runs)
        print(f"{n:>9} {'brian2 standalone (med)':<22} {'':>9} {'':>9} {row['brian2_standalone']['loop_s']:>9.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[4000, 16000, 64000])
    ap.add_argument("--stat-seeds", type=int, default=8, help="seeds for the rate/CV comparison at 4k")
    ap.add_argument("--skip-brian2", action="store_true")
    ap.add_argument("--brian2-modes", nargs="+", default=["runtime", "standalone"], choices=["runtime", "standalone"])
    ap.add_argument("--repeats", type=int, default=1, help="loop times: median of this many alternating runs of "
                    "spikeflow and Brian2 standalone (default 1)")
    ap.add_argument("--huge", action="store_true", help="also run 4,000,000 neurons (takes minutes, ~4 GB)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "sim.json"))
    args = ap.parse_args()
    if not args.skip_brian2:
        try:
            BRIAN2.ensure()
        except PeerUnavailable as err:
            sys.exit(f"error: {err} (or run with --skip-brian2)")
    results = {"sizes": {}, "note": "1 s biological time, dt 0.1 ms; spikeflow single-threaded below 50,000 "
               "neurons per process (4k, 16k), all cores above (numba); Brian2 one thread; times in seconds"}
    print(f"{'neurons':>9} {'simulator':<22} {'build s':>9} {'compile s':>9} {'loop s':>9} {'rate Hz':>8}")
    for n in args.sizes:
        row = {}
        run_spikeflow(n)  # first run fills numba's cache
        sf = run_spikeflow(n)
        row["spikeflow"] = sf
        print(f"{n:>9} {'spikeflow':<22} {sf['build_s']:>9.3f} {sf['compile_s']:>9.3f} {sf['loop_s']:>9.3f} "
              f"{sf['rate_hz']:>8.3f}", flush=True)
        if not args.skip_brian2:
            for mode in args.brian2_modes:
                b = run_brian2(mode, n, [1])[0]
                rate = b["indices"].size / n
                row[f"brian2_{mode}"] = {"build_s": b["build_s"], "loop_s": b["loop_s"], "rate_hz": rate}
                print(f"{n:>9} {'brian2 ' + mode:<22} {b['build_s']:>9.3f} {'':>9} {b['loop_s']:>9.3f} "
                      f"{rate:>8.3f}", flush=True)
        if args.repeats > 1:
            alternate(n, row, args.repeats, not args.skip_brian2 and "standalone" in args.brian2_modes)
        if "brian2_standalone" in row:
            row["loop_ratio_vs_standalone"] = row["spikeflow"]["loop_s"] / row["brian2_standalone"]["loop_s"]
            print(f"{n:>9} loop time spikeflow / Brian2 standalone: {row['loop_ratio_vs_standalone']:.3f}"
                  + (f" (medians of {args.repeats} alternating runs)" if args.repeats > 1 else ""), flush=True)
        results["sizes"][str(n)] = row
    seeds = list(range(1, args.stat_seeds + 1))
    results["stats_4k"] = {"spikeflow": stats_over_seeds(spikeflow_seeds(4000, seeds), 4000)}
    if not args.skip_brian2:
        results["stats_4k"]["brian2_standalone"] = stats_over_seeds(
            run_brian2("standalone-realisations", 4000, seeds), 4000)
    for name, st in results["stats_4k"].items():
        print(f"CUBA 4k over {st['seeds']} seeds, {name}: rate {st['rate_hz']:.3f} ± {st['rate_sem']:.3f} Hz, "
              f"CV(ISI) {st['cv_isi']:.3f} ± {st['cv_sem']:.3f}")
    if args.huge:
        results["huge"] = run_spikeflow(4_000_000)
        h = results["huge"]
        print(f"4,000,000 neurons: {h['synapses_rank0']} synapses, build {h['build_s']} s, loop {h['loop_s']} s, "
              f"total {h['total_s']} s, peak RSS {h['peak_rss_gb']} GB")
    atomic_write_text(args.out, json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
