"""Train a spiking control policy, evaluate it on the event engine, time its decisions.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/control.py --env CartPole-v1 --encoding events \
        --out /work/shared-runs/cartpole-events [--budget STEPS] [--seed 0] [--eval-only]

Writes benchmarks/results/control-<env>.json (one entry per encoding): the command, commit,
machine (with its load average), the training wall time and environment steps, the mean/std
return over 100 evaluation episodes of the policy running on the event engine (episode i reset
with seed 20000 + i), whether the torch model took the same actions on a few episodes, and the
latency percentiles of ``Policy.act`` (time.perf_counter_ns around each call, batch 1).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from spikeflow.provenance import commit, machine

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def act_latency(policy, env_id: str, steps: int, seed: int = 30_000) -> dict:
    """Percentiles (µs) of ``policy.act`` over ``steps`` control steps of real episodes: wall time
    (``perf_counter_ns``; on a loaded machine its tail is time the process was not running) and
    the thread's CPU time (``thread_time_ns``: the work itself)."""
    from spikeflow.control.envs import make_env

    env = make_env(env_id)
    obs, _ = env.reset(seed=seed + 1)
    policy.reset(obs)
    for _ in range(200):  # warm-up: the first calls load compiled kernels
        obs, _, term, trunc, _ = env.step(policy.act(obs))
        if term or trunc:
            obs, _ = env.reset()
    obs, _ = env.reset(seed=seed)
    policy.reset(obs)
    wall, cpu = np.empty(steps), np.empty(steps)
    load = os.getloadavg()[0]
    for k in range(steps):
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        a = policy.act(obs)
        wall[k] = time.perf_counter_ns() - t0
        cpu[k] = time.thread_time_ns() - c0
        obs, _, term, trunc, _ = env.step(a)
        if term or trunc:
            obs, _ = env.reset()
            policy.reset(obs)

    def pct(x):
        us = x / 1e3
        return {**{f"p{q}": round(float(np.percentile(us, q)), 1) for q in (50, 90, 99, 99.9)},
                "max": round(float(us.max()), 1)}
    return {"steps": steps, "load_average": round(load, 2), "wall": pct(wall), "thread_cpu": pct(cpu)}


def same_actions(run: Path, env_id: str, episodes: int) -> dict:
    from spikeflow.control.envs import make_env
    from spikeflow.control.policy import load_policy

    ev, de = load_policy(run, "event"), load_policy(run, "dense")
    env = make_env(env_id)
    n = same = 0
    for i in range(episodes):
        obs, _ = env.reset(seed=40_000 + i)
        ev.reset(obs)
        de.reset(obs)
        done = False
        while not done:
            a, b = ev.act(obs), de.act(obs)
            n += 1
            same += bool(np.all(np.asarray(a) == np.asarray(b)) if np.ndim(a) == 0 else np.allclose(a, b, atol=1e-6))
            obs, _, term, trunc, _ = env.step(a)
            done = term or trunc
    return {"episodes": episodes, "decisions": n, "identical": same}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", required=True)
    ap.add_argument("--encoding", default="events", choices=["events", "dense"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--eval-only", action="store_true")
    ap.add_argument("--latency-only", action="store_true", help="only measure act() again (entry must exist)")
    ap.add_argument("--method", default=None, choices=["ppo", "td3", "convert"])
    ap.add_argument("--T", type=int, default=32, help="network steps per decision of a converted policy")
    args = ap.parse_args(argv)
    from spikeflow.control.policy import load_policy, read_spec
    from spikeflow.control.train import evaluate_policy, train_policy

    mach = machine()
    out = Path(args.out)
    path = RESULTS / f"control-{args.env}.json"
    key = (f"convert-T{args.T}" if args.method == "convert" else args.encoding) + (f"-seed{args.seed}" if args.seed
                                                                                    else "")
    if args.latency_only:
        data = json.loads(path.read_text())
        data[key]["act_latency_us_event"] = act_latency(load_policy(out, "event"), args.env, 5000)
        data[key]["act_latency_us_dense"] = act_latency(load_policy(out, "dense"), args.env, 1000)
        data[key]["act_latency_command"] = "OMP_NUM_THREADS=1 PYTHONPATH=src python " + " ".join(
            ["benchmarks/control.py", *sys.argv[1:]])
        path.write_text(json.dumps(data, indent=1) + "\n")
        print(json.dumps(data[key]["act_latency_us_event"]))
        return 0
    if not args.eval_only:
        extra = {"T": args.T} if args.method == "convert" else {}
        train_policy(args.env, out, seed=args.seed, encoding=args.encoding, budget=args.budget, progress=True,
                     method=args.method, **extra)
    spec = read_spec(out)
    t0 = time.perf_counter()
    returns = evaluate_policy(load_policy(out, "event"), args.env, episodes=args.episodes)
    eval_s = time.perf_counter() - t0
    hist = json.loads((out / "history.json").read_text())
    entry = {
        "command": "OMP_NUM_THREADS=1 PYTHONPATH=src python " + " ".join(["benchmarks/control.py", *sys.argv[1:]]),
        "commit": commit(), "machine": mach, "env_id": args.env, "encoding": args.encoding, "seed": args.seed,
        "method": {"ppo": "PPO, spiking actor (surrogate gradients), ANN critic",
                   "td3": "TD3, spiking actor (surrogate gradients), ANN twin critics",
                   "ppo-ann+convert": "PPO-trained ReLU actor converted to IF neurons (spikeflow.train.convert), "
                                      "T steps per decision"}[spec["training"]["method"]],
        "training": spec["training"],
        "train_wall_s": spec["training"]["wall_s"], "train_env_steps": spec["training"]["steps"],
        "network": spec["model"],
        "eval": {"engine": "event", "episodes": args.episodes, "seeds": f"20000..{20000 + args.episodes - 1}",
                 "mean_return": round(float(returns.mean()), 2), "std_return": round(float(returns.std()), 2),
                 "min_return": float(returns.min()), "wall_s": round(eval_s, 1)},
        "event_vs_dense": same_actions(out, args.env, 3),
        "act_latency_us_event": act_latency(load_policy(out, "event"), args.env, 5000),
        "act_latency_us_dense": act_latency(load_policy(out, "dense"), args.env, 1000),
        "history_last": hist[-1] if hist else None,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[key] = entry
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps(entry["eval"]), json.dumps(entry["act_latency_us_event"]), json.dumps(entry["event_vs_dense"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
