"""``spikeflow control``: closed-loop control with spiking policies (run, train, hand-built, reflex)."""

from __future__ import annotations

from spikeflow import provenance
from spikeflow.commands._common import (
    add_json,
    add_progress,
    add_threads,
    confidence,
    nonneg_int,
    output_dir,
    positive_float,
    positive_int,
    run_dir,
    word,
)


def register(sub) -> None:
    p = sub.add_parser("control", help="closed-loop control: run a spiking policy on an environment in real time")
    c = p.add_subparsers(dest="control_command", metavar="SUBCOMMAND", required=True)

    r = c.add_parser("run", help="step an environment and a policy at a fixed control rate; latency, misses, energy")
    r.add_argument("run", type=run_dir, help="policy run folder ('control train' or 'control handbuilt')")
    r.add_argument("--env", type=word, default=None, help="environment id (default: the run's; must match it)")
    r.add_argument("--engine", default="event", choices=["event", "dense"], help="runtime engine of the policy")
    r.add_argument("--encoding", default=None, choices=["events", "dense"],
                   help="observation encoding, where the run has both (default: the run's)")
    r.add_argument("--episodes", type=positive_int, default=None,
                   help="episodes to run (default 10 without --duration)")
    r.add_argument("--duration", type=positive_float, default=None, metavar="S",
                   help="seconds of control time to run (simulated or wall clock)")
    r.add_argument("--realtime", action="store_true",
                   help="wall clock: hold a real deadline of one control period per step and count misses")
    r.add_argument("--spin", action="store_true",
                   help="wall clock: busy-wait for every tick instead of sleeping until 0.2 ms before it "
                        "(no sleep between ticks; on a busy machine the loop then loses the CPU more often)")
    r.add_argument("--rt-priority", type=positive_int, default=None, metavar="N",
                   help="wall clock: run the loop under the SCHED_FIFO real-time policy at priority N (1-99; needs "
                        "root or CAP_SYS_NICE)")
    r.add_argument("--rate", type=positive_float, default=1000.0, metavar="HZ",
                   help="control rate in Hz: one decision per 1/HZ s of simulated or wall-clock time")
    r.add_argument("--seed", type=nonneg_int, default=0,
                   help="episode i resets the environment with seed SEED + i")
    r.add_argument("--chip", type=word, default="loihi", help="chip profile for energy per decision")
    r.add_argument("--warmup", type=nonneg_int, default=200, help="unrecorded steps before measuring")
    r.add_argument("--compare", type=run_dir, default=None, metavar="RUN",
                   help="a second run of the same task (e.g. dense input): synaptic ops per decision side by side")
    r.add_argument("--report", type=output_dir, default=None, metavar="DIR",
                   help="HTML report with a GIF of one episode and the latency and activity plots")
    add_json(p=r, what="the measurements")
    add_threads(r)
    r.set_defaults(func=run_run)

    t = c.add_parser("train", help="train a spiking policy for an environment (seeded, resumable)")
    t.add_argument("--env", type=word, required=True, help="environment id")
    t.add_argument("--out", type=output_dir, required=True, help="run folder to write")
    t.add_argument("--seed", type=nonneg_int, default=0, help="random seed")
    t.add_argument("--encoding", default="events", choices=["events", "dense"], help="observation encoding")
    t.add_argument("--method", type=word, default=None, help="training method (default: the task's)")
    t.add_argument("--budget", type=positive_int, default=None, help="training budget (default: the task's)")
    t.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    add_progress(t)
    add_threads(t)
    t.set_defaults(func=run_train)

    h = c.add_parser("handbuilt", help="write a run folder with a hand-built (untrained) spiking policy")
    h.add_argument("policy", choices=["track-sign", "cartpole-linear"],
                   help="track-sign: the optimal move of Track1D-v0; cartpole-linear: a linear rule for CartPole-v1")
    h.add_argument("--out", type=output_dir, required=True, help="run folder to write")
    h.set_defaults(func=run_handbuilt)

    x = c.add_parser("reflex", help="withdraw from a ramping stimulus: early (anytime) vs full-window decisions")
    x.add_argument("--trials", type=positive_int, default=200, help="seeded trials per controller")
    x.add_argument("--seed", type=nonneg_int, default=0, help="first trial's seed")
    x.add_argument("--confidence", type=confidence, default=0.9, help="early-exit threshold on the top probability")
    x.add_argument("--window-ms", type=positive_int, default=50, help="integration window of one decision (ms)")
    add_json(x, "the comparison")
    x.set_defaults(func=run_reflex)


def _measure(run, env_id, args, realtime, render, encoding=None):
    from spikeflow.control.loop import realtime_priority, run_loop, wait_until, warmup
    from spikeflow.control.runs import check_env, load_control_policy, make_control_env

    policy = load_control_policy(run, engine=args.engine, encoding=encoding)
    env_id = check_env(policy, env_id)
    env = make_control_env(env_id, render_mode="rgb_array" if render else None)
    seed = args.seed or 0
    period = 1.0 / args.rate if args.rate else None
    episodes = args.episodes if (args.episodes or args.duration) else 10
    if args.warmup:
        warmup(env, policy, args.warmup, seed)
    wait = (lambda t: wait_until(t, spin_ns=None)) if getattr(args, "spin", False) else None
    with realtime_priority(getattr(args, "rt_priority", None) if realtime else None):
        result = run_loop(env, policy, episodes=episodes, duration_s=args.duration, realtime=realtime,
                          period_s=period, seed=seed, wait=wait)
    frames = []
    if render:  # one more episode, untimed, for the GIF
        frames = run_loop(env, policy, episodes=1, seed=seed, render_episode=0, max_frames=400).frames[::2]
    env.close()
    return policy, env_id, result, frames


def run_run(args) -> int:
    import sys

    from spikeflow.commands._common import emit_json
    from spikeflow.errors import ConfigError
    from spikeflow.hardware.profiles import get_profile

    profile = get_profile(args.chip)
    for flag, value in (("--rt-priority", args.rt_priority), ("--spin", args.spin or None)):
        if value is not None and not args.realtime:
            raise ConfigError(f"{flag} applies to the wall-clock loop only; add --realtime")
    if args.spin and args.rt_priority is not None:
        from spikeflow.control import loop

        cap = loop.rt_runtime_cap()
        if cap is not None and cap < 1.0:
            raise ConfigError(f"--spin with --rt-priority: a real-time task that never sleeps is stopped by the kernel "
                              f"for {(1 - cap) * 100:.0f}% of every second (sched_rt_runtime_us); use one of the two")
    policy, env_id, result, frames = _measure(args.run, args.env, args, args.realtime, args.report is not None,
                                              args.encoding)
    summary = result.summary(profile)
    from spikeflow.control.loop import encoding_name, spec_value

    spec = policy.spec
    summary.update({"run": str(args.run), "env": env_id, "engine": args.engine, "encoding": encoding_name(spec),
                    "dt": spec_value(spec, "dt"), "steps_per_decision": spec_value(spec, "steps_per_decision"),
                    "seed": args.seed,
                    "wait": "spin" if args.spin else "sleep, then spin for the last 0.2 ms",
                    "rt_priority": args.rt_priority,
                    "command": "spikeflow " + " ".join(sys.argv[1:]) if "control" in sys.argv[1:3] else None,
                    "commit": provenance.commit(), "machine": provenance.machine()})
    summary["description"] = (f"{env_id}, policy {args.run} ({args.engine} engine, {summary['encoding']} input), "
                              f"{summary['mode']} at {summary['rate_hz']:.0f} Hz, batch 1.")
    compare = None
    if args.compare:
        other = _measure(args.compare, env_id, args, False, False, _other_encoding(args.compare, policy))
        o = other[2]
        compare = {}
        for name, res, run in ((summary["encoding"], result, args.run),
                               (encoding_name(other[0].spec), o, args.compare)):
            key = str(name) if str(name) not in compare else f"{name} ({run})"
            per = res.per_decision()
            compare[key] = {"run": str(run), "synops": per["synops"], "spikes": per["spikes"],
                            "neuron_updates": per["neuron_updates"],
                            "energy_per_decision_j": res.energy_per_decision(profile)["total_j"],
                            "return_mean": float(sum(res.returns) / len(res.returns)) if res.returns else None}
        summary["compare"] = compare
    if args.report:
        from spikeflow.control.report import write_report

        path = write_report(args.report, f"spikeflow control: {env_id}", summary, result, frames, compare)
        summary["report"] = str(path)
    if args.json:
        emit_json(args.json, summary)
    if args.json != "-":
        print(_text(summary))
    return 0


def _other_encoding(run, policy):
    """For a hand-built run with both encodings: the one the main run does not use (else the run's own)."""
    from spikeflow.control.handbuilt import is_handbuilt, read_handbuilt
    from spikeflow.control.loop import encoding_name

    if not is_handbuilt(run):
        return None
    have = read_handbuilt(run).get("encodings", [])
    rest = [e for e in have if e != encoding_name(policy.spec)]
    return rest[0] if rest else None


def _text(s: dict) -> str:
    lat, per = s["latency_us"], s["per_decision"]
    lines = [s["description"],
             f"steps {s['steps']}, episodes {s['episodes']}, return {_f(s['return_mean'])} ± {_f(s['return_std'])}",
             f"decision latency p50 {_f(lat['p50'])} µs, p99 {_f(lat['p99'])} µs, max {_f(lat['max'])} µs "
             f"(CPU time p50 {_f(s['decision_cpu_us']['p50'])} µs, p99 {_f(s['decision_cpu_us']['p99'])} µs)"]
    if s["deadline_misses"] is not None:
        late = s["start_late_us"]
        lines.append(f"deadline misses {s['deadline_misses']} of {s['steps']} "
                     f"(step start after its tick: p99 {_f(late['p99'])} µs, max {_f(late['max'])} µs)")
    lines.append(f"per decision: {per['synops']:.2f} synaptic ops, {per['spikes']:.2f} spikes, "
                 f"{per['neuron_updates']:.2f} neuron updates")
    e = s.get("energy_per_decision")
    if e:
        lines.append(f"energy per decision on {e['chip']}: {e['total_j'] * 1e9:.4g} nJ "
                     f"(synops {e['synops_j'] * 1e9:.4g} nJ + updates {e['updates_j'] * 1e9:.4g} nJ)")
    for name, c in (s.get("compare") or {}).items():
        lines.append(f"  {name:>8} input: {c['synops']:.2f} synaptic ops / decision, {c['spikes']:.2f} spikes, "
                     f"{c['energy_per_decision_j'] * 1e9:.4g} nJ, return {_f(c['return_mean'])}  ({c['run']})")
    lines.append(f"load average {s['machine']['load_average']}")
    if s.get("report"):
        lines.append(f"report: {s['report']}")
    return "\n".join(lines)


def _f(v) -> str:
    return "-" if v is None else f"{v:.4g}"


def run_train(args) -> int:
    from spikeflow.control.runs import known_envs
    from spikeflow.errors import ConfigError

    if args.env not in known_envs():
        raise ConfigError(f"--env: unknown environment {args.env!r}; known: {', '.join(known_envs())}")
    try:
        from spikeflow.control.train import train_policy
    except ImportError:
        raise ConfigError("control train: policy training is not in this build") from None
    out = train_policy(args.env, args.out, seed=args.seed or 0, encoding=args.encoding, method=args.method,
                       budget=args.budget, progress=not args.no_progress, resume=args.resume)
    print(f"policy written to {out}")
    return 0


def run_handbuilt(args) -> int:
    from spikeflow.control.handbuilt import write_handbuilt

    run = write_handbuilt(args.out, args.policy)
    print(f"hand-built policy {args.policy} written to {run}")
    return 0


def run_reflex(args) -> int:
    from spikeflow.commands._common import emit_json
    from spikeflow.control.reflex import ReflexTask, compare_controllers

    result = compare_controllers(ReflexTask(window_ms=args.window_ms), trials=args.trials, seed=args.seed or 0,
                                 confidence=args.confidence)
    if args.json:
        emit_json(args.json, result)
    if args.json != "-":
        for name in ("early", "full_window"):
            r = result[name]
            print(f"{name:>11}: success {r['success_rate']:.3f}, reaction time median {_f(r['reaction_ms_median'])} ms "
                  f"(mean {_f(r['reaction_ms_mean'])}), false alarms {r['false_alarm_rate']:.3f}, "
                  f"too late {r['too_late_rate']:.3f}")
    return 0
