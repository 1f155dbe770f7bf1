"""The closed loop: an environment and a spiking policy stepped together at a fixed control rate, batch 1.

Two clocks:

- simulated time (default): control step ``k`` stands for ``period`` seconds (the policy's
  ``dt * steps_per_decision``, 1 ms by default) of network time; steps run back to back.
- wall clock (``realtime=True``): step ``k`` starts at tick ``T0 + k * period``; the loop waits for
  the tick, takes the observation, and the decision (encode + act) must be ready by tick ``k + 1``,
  else it is a deadline miss. A late step does not skip ticks: the next one is still due at its own
  tick, so an overrun shows up as misses until the loop has caught up. An episode's first tick is
  the moment its reset finished (resets happen between episodes, outside any deadline).

Every step records its decision latency (``perf_counter_ns`` around ``policy.act``, which encodes
the observation and runs the network), the thread's CPU time over the same call (``thread_time_ns``:
the latency less the time the OS ran other processes) and the policy's ``last_counts``, into arrays preallocated
before the loop; the garbage collector is off while the loop runs.
"""

from __future__ import annotations

import contextlib
import gc
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from spikeflow.errors import ConfigError

SPIN_NS = 200_000  # the last 0.2 ms before a tick is busy-waited (sleep overshoots by ~0.1 ms)


def wait_until(t_ns: int, clock=time.perf_counter_ns, spin_ns: int | None = SPIN_NS) -> None:
    """Sleep, then spin for the last ``spin_ns``, until ``clock() >= t_ns`` (``spin_ns=None``: spin only)."""
    left = t_ns - clock()
    if spin_ns is not None and left > spin_ns:
        time.sleep((left - spin_ns) * 1e-9)
    while clock() < t_ns:
        pass


@contextlib.contextmanager
def realtime_priority(priority: Optional[int]):
    """Run the block under the OS's ``SCHED_FIFO`` real-time policy at ``priority`` (1-99), then restore
    the previous policy; ``None``: unchanged. A loop that sleeps between ticks is then woken on time
    even on a busy machine (Linux caps real-time tasks at 95% of a CPU by default)."""
    if priority is None:
        yield
        return
    import os

    if not hasattr(os, "sched_setscheduler"):
        raise ConfigError("--rt-priority: this OS has no SCHED_FIFO scheduling")
    lo, hi = os.sched_get_priority_min(os.SCHED_FIFO), os.sched_get_priority_max(os.SCHED_FIFO)
    if not lo <= priority <= hi:
        raise ConfigError(f"--rt-priority: expected {lo}..{hi}, got {priority}")
    old_policy, old_param = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError:
        raise ConfigError("--rt-priority: the OS refused SCHED_FIFO (it needs root or CAP_SYS_NICE)") from None
    try:
        yield
    finally:
        os.sched_setscheduler(0, old_policy, old_param)


def rt_runtime_cap() -> Optional[float]:
    """The share of each second a real-time task may run (Linux ``sched_rt_runtime_us`` over its period),
    or None when unlimited or unknown."""
    try:
        runtime = int(open("/proc/sys/kernel/sched_rt_runtime_us").read())
        period = int(open("/proc/sys/kernel/sched_rt_period_us").read())
    except (OSError, ValueError):
        return None
    return None if runtime < 0 or period <= 0 else runtime / period


def spec_value(spec, key: str, default=None):
    """A field of a policy spec, a mapping or an object with attributes."""
    if spec is None:
        return default
    if isinstance(spec, dict):
        return spec.get(key, default)
    return getattr(spec, key, default)


def encoding_name(spec):
    """``"events"`` or ``"dense"``: the spec's ``encoding``, or its ``kind`` when it is a mapping."""
    enc = spec_value(spec, "encoding")
    return enc.get("kind") if isinstance(enc, dict) else enc


def control_period(policy) -> float:
    """Seconds of network time one decision stands for: the spec's ``dt * steps_per_decision``."""
    spec = getattr(policy, "spec", None)
    dt = float(spec_value(spec, "dt", 1e-3) or 1e-3)
    return dt * int(spec_value(spec, "steps_per_decision", 1) or 1)


@dataclass
class LoopResult:
    """What one closed-loop run measured (arrays hold one entry per control step)."""
    returns: list  # return of each completed episode
    lengths: list  # steps of each completed episode
    latency_ns: np.ndarray  # decision latency of each step
    synops: np.ndarray
    spikes: np.ndarray
    neuron_updates: np.ndarray
    missed: np.ndarray  # bool: the decision was not ready by its deadline (wall-clock mode only)
    start_late_ns: np.ndarray  # wall-clock mode: how long after its tick the step started
    cpu_ns: np.ndarray  # CPU time of this thread during the decision (excludes time the OS ran others)
    period_s: float
    realtime: bool
    wall_s: float
    partial_return: float = 0.0  # return of an episode cut off by the duration
    frames: list = field(default_factory=list)

    @property
    def steps(self) -> int:
        return int(len(self.latency_ns))

    @property
    def misses(self) -> int:
        return int(self.missed.sum())

    def latency_us(self) -> dict:
        lat = self.latency_ns / 1e3
        if not len(lat):
            return {"p50": None, "p99": None, "max": None, "mean": None}
        p50, p99 = np.percentile(lat, [50, 99])
        return {"p50": float(p50), "p99": float(p99), "max": float(lat.max()), "mean": float(lat.mean())}

    def cpu_us(self) -> dict:
        """The decisions' CPU time: their latency without the time the OS gave to other processes."""
        cpu = self.cpu_ns / 1e3
        if not len(cpu):
            return {"p50": None, "p99": None, "max": None}
        p50, p99 = np.percentile(cpu, [50, 99])
        return {"p50": float(p50), "p99": float(p99), "max": float(cpu.max())}

    def start_late_us(self) -> dict:
        """How long after its tick each step started (the wait's overshoot, or a previous step's overrun)."""
        late = self.start_late_ns / 1e3
        if not len(late):
            return {"p50": None, "p99": None, "max": None}
        p50, p99 = np.percentile(late, [50, 99])
        return {"p50": float(p50), "p99": float(p99), "max": float(late.max())}

    def per_decision(self) -> dict:
        n = max(self.steps, 1)
        return {k: float(getattr(self, k).sum() / n) for k in ("synops", "spikes", "neuron_updates")}

    def energy_per_decision(self, profile) -> dict:
        """Joules per decision on a chip: synops x e_synop + neuron updates x e_update_active."""
        d = self.per_decision()
        syn, upd = d["synops"] * profile.e_synop, d["neuron_updates"] * profile.e_update_active
        return {"chip": profile.name, "synops_j": syn, "updates_j": upd, "total_j": syn + upd,
                "e_synop_j": profile.e_synop, "e_update_j": profile.e_update_active}

    def summary(self, profile=None) -> dict:
        r = np.asarray(self.returns, dtype=np.float64)
        out = {
            "mode": "wall-clock" if self.realtime else "simulated-time",
            "rate_hz": 1.0 / self.period_s, "period_us": self.period_s * 1e6,
            "steps": self.steps, "episodes": int(len(r)),
            "return_mean": float(r.mean()) if len(r) else None, "return_std": float(r.std()) if len(r) else None,
            "returns": [float(v) for v in r], "lengths": [int(v) for v in self.lengths],
            "partial_return": float(self.partial_return),
            "latency_us": self.latency_us(),
            "decision_cpu_us": self.cpu_us(),
            "deadline_misses": self.misses if self.realtime else None,
            "start_late_us": self.start_late_us() if self.realtime else None,
            "per_decision": self.per_decision(),
            "wall_s": self.wall_s,
        }
        if profile is not None:
            out["energy_per_decision"] = self.energy_per_decision(profile)
        return out


class _Recorder:
    """Per-step arrays, preallocated; doubled (rarely) when an episode-count run outgrows them."""

    def __init__(self, capacity: int):
        self.n = 0
        self._alloc(max(int(capacity), 16))

    def _alloc(self, cap):
        old = getattr(self, "lat", None)
        new = (np.zeros(cap, np.int64), np.zeros(cap, np.int64), np.zeros(cap, np.int64), np.zeros(cap, np.int64),
               np.zeros(cap, np.bool_), np.zeros(cap, np.int64), np.zeros(cap, np.int64))
        if old is not None:
            for a, b in zip(new, (self.lat, self.syn, self.spk, self.upd, self.miss, self.late, self.cpu)):
                a[:self.n] = b[:self.n]
        self.lat, self.syn, self.spk, self.upd, self.miss, self.late, self.cpu = new

    def grow(self):
        self._alloc(2 * len(self.lat))


def run_loop(env, policy, *, episodes: Optional[int] = None, duration_s: Optional[float] = None,
             realtime: bool = False, period_s: Optional[float] = None, seed: int = 0,
             clock: Callable[[], int] = time.perf_counter_ns, cpu_clock: Callable[[], int] = time.thread_time_ns,
             wait: Optional[Callable[[int], None]] = None,
             render_episode: Optional[int] = None, max_frames: int = 600, disable_gc: bool = True) -> LoopResult:
    """Run ``env`` and ``policy`` in closed loop for ``episodes`` episodes or ``duration_s`` seconds of
    control time (``duration_s * rate`` steps), whichever is given (both: the first reached).

    Episode ``i`` resets the environment with seed ``seed + i``. ``clock`` (ns) and ``wait(t_ns)``
    can be replaced (tests use a fake clock). ``render_episode``: collect ``env.render()`` frames
    of that episode (an ``rgb_array`` environment; rendering costs time, so not for timing runs).
    """
    if episodes is None and duration_s is None:
        raise ConfigError("control loop: give episodes or duration_s")
    if episodes is not None and episodes < 1:
        raise ConfigError(f"control loop: episodes must be >= 1, got {episodes}")
    if duration_s is not None and not duration_s > 0:
        raise ConfigError(f"control loop: duration_s must be > 0, got {duration_s}")
    period_s = control_period(policy) if period_s is None else float(period_s)
    if not period_s > 0:
        raise ConfigError(f"control loop: the control period must be > 0 s, got {period_s}")
    period = int(round(period_s * 1e9))
    if wait is None:
        def wait(t_ns):
            wait_until(t_ns, clock)
    max_steps = int(round(duration_s / period_s)) if duration_s is not None else None
    rec = _Recorder(max_steps if max_steps is not None else 4096)
    returns, lengths, frames = [], [], []
    ep, ep_ret, ep_len = 0, 0.0, 0
    obs, _ = env.reset(seed=seed)
    policy.reset(obs)
    act = policy.act
    counts = policy.last_counts
    gc_was = gc.isenabled()
    if disable_gc:
        gc.collect()
        gc.disable()
    stop_at = max_steps if max_steps is not None else -1
    lat, cpu, late, syn, spk, upd, miss = rec.lat, rec.cpu, rec.late, rec.syn, rec.spk, rec.upd, rec.miss
    cap, k = len(lat), 0
    t_start = clock()
    tick = t_start
    try:
        while True:
            if render_episode == ep and len(frames) < max_frames:
                frames.append(env.render())
            if realtime:
                wait(tick)
            c0 = cpu_clock()
            t0 = clock()
            action = act(obs)
            t1 = clock()
            c1 = cpu_clock()
            if k == cap:
                rec.n = k
                rec.grow()
                lat, cpu, late, syn, spk, upd, miss = rec.lat, rec.cpu, rec.late, rec.syn, rec.spk, rec.upd, rec.miss
                cap = len(lat)
            counts = policy.last_counts
            lat[k] = t1 - t0
            cpu[k] = c1 - c0
            late[k] = t0 - tick
            syn[k] = counts["synops"]
            spk[k] = counts["spikes"]
            upd[k] = counts["neuron_updates"]
            tick += period
            if realtime and t1 > tick:
                miss[k] = True
            k += 1
            obs, reward, terminated, truncated, _ = env.step(action)
            ep_ret += reward
            ep_len += 1
            if k == stop_at:
                if terminated or truncated:
                    returns.append(float(ep_ret))
                    lengths.append(ep_len)
                    ep_ret = 0.0
                break
            if terminated or truncated:
                if render_episode == ep and len(frames) < max_frames:
                    frames.append(env.render())
                returns.append(float(ep_ret))
                lengths.append(ep_len)
                ep += 1
                ep_ret, ep_len = 0.0, 0
                if episodes is not None and ep >= episodes:
                    break
                obs, _ = env.reset(seed=seed + ep)
                policy.reset(obs)
                tick = clock()
    finally:
        rec.n = k
        if disable_gc and gc_was:
            gc.enable()
    wall = (clock() - t_start) * 1e-9
    n = rec.n
    return LoopResult(returns, lengths, rec.lat[:n].copy(), rec.syn[:n].copy(), rec.spk[:n].copy(),
                      rec.upd[:n].copy(), rec.miss[:n].copy(), rec.late[:n].copy(), rec.cpu[:n].copy(), period_s,
                      bool(realtime), wall,
                      partial_return=float(ep_ret), frames=frames)


def warmup(env, policy, steps: int = 200, seed: int = 0) -> None:
    """A few unrecorded steps (the kernels compile on the first call), then a clean reset."""
    run_loop(env, policy, duration_s=steps * control_period(policy), seed=seed, disable_gc=False)
    obs, _ = env.reset(seed=seed)
    policy.reset(obs)
