"""``Network``: populations, projections and monitors; validated, built and run.

Everything is checked when it is declared or, at the latest, before the first large
allocation (``build``): sizes, probabilities, delays, channels and the memory the
network needs (:class:`spikeflow.errors.ConfigError` otherwise).

Time: ``dt`` in seconds; a delay of ``d`` seconds is ``round(d / dt)`` steps, at least one:
a spike emitted in step ``t`` reaches its targets at the start of step ``t + d/dt``
(Brian2's ``delay = d - dt``). With several processes (``torch.distributed``), each owns a
contiguous slice of the neurons and the synapses onto them, and spikes are exchanged
every ``min_delay`` steps.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import List

import numba
import numpy as np

from spikeflow.errors import ConfigError
from spikeflow.neurons import cuba as cuba_model
from spikeflow.neurons import expsyn
from spikeflow.neurons import izhikevich as izh_model
from spikeflow.sim import engine, rng
from spikeflow.sim.connectivity import FromArrays, Rule
from spikeflow.sim.populations import LIF, CubaLIF, Izhikevich, PoissonInput, Population, SpikeSource

_KIND = {LIF: engine.LIF, CubaLIF: engine.CUBALIF, Izhikevich: engine.IZHIKEVICH,
         PoissonInput: engine.POISSON, SpikeSource: engine.SOURCE}
_RESET = {"to_reset": engine.RESET_TO, "subtract": engine.RESET_SUB, "none": engine.RESET_NONE}
CHUNK = 16384


@dataclass
class Projection:
    """Synapses from one population to another, made by ``Network.connect``: rule, weight, channel,
    delay (seconds; ``delay_steps`` once built) and the number of synapses held by this process.
    """
    source: Population
    target: Population
    rule: Rule
    weight: object
    channel: str
    delay: object
    weight_dtype: str
    index: int
    delay_steps: object = None  # int or int array, set by the network
    n_synapses: int = 0


class SpikeMonitor:
    """Spikes of a population (all neurons or ``indices``): ``indices``, ``steps``, ``times`` (s)."""

    def __init__(self, population, indices=None):
        self.population = population
        self.subset = None if indices is None else np.unique(np.asarray(indices, dtype=np.int64))
        self.indices = np.zeros(0, np.int64)
        self.steps = np.zeros(0, np.int64)
        self.times = np.zeros(0, np.float64)

    def spike_trains(self):
        """``{neuron index: array of spike times}`` for the recorded neurons."""
        return {int(i): self.times[self.indices == i] for i in np.unique(self.indices)}


class StateMonitor:
    """Samples ``variable`` ("v", "u" or "g_<channel>") of ``indices`` every ``every`` seconds,
    before each sampled step's update (the value at that time). ``values``: [samples, indices]."""

    def __init__(self, population, variable, indices, every):
        self.population = population
        self.variable = variable
        self.subset = np.asarray(indices, dtype=np.int64).reshape(-1)
        self.every = every
        self.values = np.zeros((0, self.subset.size))
        self.times = np.zeros(0)


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable`` in /proc/meminfo, else total physical)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


class Network:
    """A spiking network simulated with a fixed step ``dt`` (seconds)."""

    def __init__(self, dt: float = 1e-4, seed: int = 0, dtype: str = "float32", threads: int | None = None,
                 parallel: str = "auto", memory_limit: int | None = None):
        if not isinstance(dt, (int, float)) or not math.isfinite(dt) or dt <= 0:
            raise ConfigError(f"Network: 'dt' must be a finite number of seconds > 0, got {dt!r}")
        if dtype not in ("float32", "float64"):
            raise ConfigError(f"Network: 'dtype' must be 'float32' or 'float64', got {dtype!r}")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"Network: 'seed' must be an integer >= 0, got {seed!r}")
        if parallel not in ("auto", "yes", "no"):
            raise ConfigError(f"Network: 'parallel' must be 'auto', 'yes' or 'no', got {parallel!r}")
        self.dt = float(dt)
        self.seed = int(seed)
        self.dtype = np.dtype(dtype)
        self.threads = threads
        self.parallel = parallel
        self.memory_limit = memory_limit
        self.populations: List[Population] = []
        self.projections: List[Projection] = []
        self.spike_monitors: List[SpikeMonitor] = []
        self.state_monitors: List[StateMonitor] = []
        self.timings = {"build": 0.0, "compile": 0.0, "run": 0.0}
        self._offsets = {}
        self._n_total = 0
        self._built = False
        self.step = 0

    # ---------------------------------------------------------------- declaration
    def add(self, population: Population) -> Population:
        if self._built:
            raise ConfigError("Network: cannot add a population after the network was built (run)")
        if not isinstance(population, tuple(_KIND)):
            raise ConfigError(f"Network.add: expected a population ({', '.join(k.__name__ for k in _KIND)}), "
                              f"got {type(population).__name__}")
        if population.name is None:
            population.name = f"{population.kind.lower()}{len(self.populations)}"
        self._offsets[id(population)] = self._n_total
        self._n_total += population.n
        self.populations.append(population)
        return population

    def offset(self, population) -> int:
        """Global index of the population's first neuron."""
        self._check_member(population, "population")
        return self._offsets[id(population)]

    def _check_member(self, pop, what):
        if id(pop) not in self._offsets:
            raise ConfigError(f"Network: {what} {getattr(pop, 'name', pop)!r} was not added with Network.add")

    def connect(self, source, target, rule: Rule, weight, channel: str | None = None, delay=None,
                weight_dtype: str = "float32") -> Projection:
        """Connect ``source`` to ``target``'s synaptic ``channel`` with ``rule``.

        ``weight``: one number shared by all synapses (stored once), or (``FromArrays`` only)
        one per pair; ``delay`` in seconds (default ``dt``), a number or one per pair.
        """
        if self._built:
            raise ConfigError("Network: cannot connect after the network was built (run)")
        self._check_member(source, "source")
        self._check_member(target, "target")
        where = f"projection {len(self.projections)} ({source.name} -> {target.name})"
        if not isinstance(rule, Rule):
            raise ConfigError(f"{where}: 'rule' must be a connectivity rule (FixedProbability, ...), got {rule!r}")
        if isinstance(target, (PoissonInput, SpikeSource)):
            raise ConfigError(f"{where}: target {target.name!r} is an input and cannot receive synapses")
        chans = target.channels
        if channel is None:
            channel = chans[0]
        if channel not in chans:
            raise ConfigError(f"{where}: target has no synaptic channel {channel!r}; valid: {list(chans)}")
        if weight_dtype not in ("float32", "float16"):
            raise ConfigError(f"{where}: 'weight_dtype' must be 'float32' or 'float16', got {weight_dtype!r}")
        rule.check(source.n, target.n, where)
        n_pairs = rule.sources.size if isinstance(rule, FromArrays) else None
        weight = self._check_values(weight, "weight", where, n_pairs)
        delay = self.dt if delay is None else delay
        delay = self._check_values(delay, "delay", where, n_pairs)
        d = np.asarray(delay, dtype=np.float64)
        if (d < 0).any():
            raise ConfigError(f"{where}: delays must be >= dt = {self.dt:g} s; got a negative delay ({d.min():g} s)")
        if (d < self.dt * (1 - 1e-9)).any():
            raise ConfigError(f"{where}: delays must be >= dt = {self.dt:g} s (a spike reaches its target "
                              f"in the next step at the earliest); got {d.min():g} s")
        steps = np.floor(d / self.dt + 0.5).astype(np.int64)
        if steps.max(initial=1) > 32767:
            raise ConfigError(f"{where}: delays must be < {32767 * self.dt:g} s (32767 steps), got {d.max():g} s")
        proj = Projection(source, target, rule, weight, channel, delay, weight_dtype, len(self.projections))
        proj.delay_steps = int(steps) if steps.ndim == 0 else steps.astype(np.int16)
        self.projections.append(proj)
        return proj

    @staticmethod
    def _check_values(value, name, where, n_pairs):
        arr = np.asarray(value, dtype=np.float64) if not isinstance(value, (int, float)) else None
        if arr is None:
            if not math.isfinite(value):
                raise ConfigError(f"{where}: '{name}' must be finite, got {value!r}")
            return float(value)
        if arr.ndim == 0:
            return Network._check_values(float(arr), name, where, n_pairs)
        if n_pairs is None:
            raise ConfigError(f"{where}: per-synapse '{name}' arrays need the FromArrays rule; "
                              f"other rules take one shared number")
        if arr.shape != (n_pairs,):
            raise ConfigError(f"{where}: '{name}' must have one value per pair ({n_pairs}), got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise ConfigError(f"{where}: '{name}' contains NaN or inf")
        return arr

    def spike_monitor(self, population, indices=None) -> SpikeMonitor:
        self._check_member(population, "population")
        mon = SpikeMonitor(population, indices)
        if mon.subset is not None and mon.subset.size and (mon.subset.min() < 0 or mon.subset.max() >= population.n):
            raise ConfigError(f"spike_monitor: indices must lie in [0, {population.n}) for {population.name!r}")
        self.spike_monitors.append(mon)
        return mon

    def state_monitor(self, population, variable, indices, every=None) -> StateMonitor:
        self._check_member(population, "population")
        valid = ["v"] + (["u"] if isinstance(population, (CubaLIF, Izhikevich)) else [])
        if isinstance(population, (LIF, Izhikevich)):
            valid += [f"g_{c}" for c in population.channels]
        if isinstance(population, (PoissonInput, SpikeSource)) or variable not in valid:
            raise ConfigError(f"state_monitor: {population.name!r} has no variable {variable!r}; valid: {valid}")
        every = self.dt if every is None else every
        k = every / self.dt
        if not math.isfinite(k) or k < 1 - 1e-9 or abs(k - round(k)) > 1e-6:
            raise ConfigError(f"state_monitor: 'every' must be a positive multiple of dt = {self.dt:g} s, "
                              f"got {every!r}")
        mon = StateMonitor(population, variable, indices, every)
        if mon.subset.size and (mon.subset.min() < 0 or mon.subset.max() >= population.n):
            raise ConfigError(f"state_monitor: indices must lie in [0, {population.n}) for {population.name!r}")
        mon._every_steps = int(round(k))
        self.state_monitors.append(mon)
        return mon

    # ---------------------------------------------------------------- partition
    def _partition(self, rank, world):
        n = self._n_total
        lo = n * rank // world
        hi = n * (rank + 1) // world
        return lo, hi

    def _local_ranges(self):
        """Per population: (global start of its local part, local array start, count, first index in pop)."""
        out, llo = [], 0
        for p in self.populations:
            g0 = self._offsets[id(p)]
            a, b = max(g0, self._lo), min(g0 + p.n, self._hi)
            cnt = max(0, b - a)
            out.append((a, llo, cnt, a - g0))
            llo += cnt
        return out

    def n_channels(self):
        return max([len(p.channels) for p in self.populations if isinstance(p, (LIF, Izhikevich))] + [1])

    # ---------------------------------------------------------------- memory
    def memory_estimate(self, rank=0, world=1) -> int:
        """Bytes this process will allocate for state, ring buffer and synapses (build peak)."""
        lo, hi = self._partition(rank, world)
        n_loc = hi - lo
        item = self.dtype.itemsize
        n_ch = self.n_channels()
        slots = 1 + max([int(np.max(pr.delay_steps)) for pr in self.projections] + [1])
        need_u = any(isinstance(p, (CubaLIF, Izhikevich)) for p in self.populations)
        per_neuron = item * (1 + n_ch + slots * n_ch + (1 if need_u else 0)) + 4 + 4 + 4 + 1 + 8 * 2
        total = per_neuron * n_loc
        frac = n_loc / max(self._n_total, 1)
        for pr in self.projections:
            syn = pr.rule.expected_synapses(pr.source.n, pr.target.n) * frac
            per_syn = 4 + (0 if isinstance(pr.weight, float) else (2 if pr.weight_dtype == "float16" else 4))
            per_syn += 0 if isinstance(pr.delay_steps, int) else 2
            total += 2 * (syn * per_syn + 8 * (pr.source.n + 1))  # built, then packed
        return int(total)

    def check_memory(self, rank=0, world=1):
        need = self.memory_estimate(rank, world)
        limit = self.memory_limit if self.memory_limit is not None else int(available_memory() * 0.9)
        if need > limit:
            raise ConfigError(
                f"Network: {self._n_total} neurons and {len(self.projections)} projections need about "
                f"{need / 2**30:.2f} GiB per process but only {limit / 2**30:.2f} GiB is available; use fewer "
                f"neurons or synapses, float16 weights, shared scalar weights, or more processes/machines")
        return need

    # ---------------------------------------------------------------- build
    def build(self, rank: int = 0, world: int = 1):
        """Allocate state and generate this process's synapses (done by the first ``run``)."""
        if self._built:
            return
        if not self.populations:
            raise ConfigError("Network: no populations; add one with Network.add")
        self.check_memory(rank, world)
        t_start = time.perf_counter()
        self._rank, self._world = rank, world
        self._lo, self._hi = self._partition(rank, world)
        ranges = self._local_ranges()
        self._ranges = ranges
        n_loc = self._hi - self._lo
        dt, dtype = self.dt, self.dtype
        n_pop = len(self.populations)
        n_ch = self.n_channels()
        slots = 1 + max([int(np.max(pr.delay_steps)) for pr in self.projections] + [1])
        self.min_delay = min([int(np.min(pr.delay_steps)) for pr in self.projections] + [10**9])

        pf = np.zeros((n_pop, 10), dtype)
        pi = np.zeros((n_pop, 3), np.int64)
        kcoef = np.zeros((n_pop, n_ch), dtype)
        beta = np.zeros((n_pop, n_ch), dtype)
        kinds = np.zeros(n_pop, np.int64)
        need_u = any(isinstance(p, (CubaLIF, Izhikevich)) for p in self.populations)
        v = np.zeros(n_loc, dtype)
        u = np.zeros(n_loc if need_u else 1, dtype)
        refr = np.zeros(n_loc, np.int32)
        g = np.zeros((n_ch, n_loc), dtype)
        ring = np.zeros((slots, n_ch, n_loc), dtype)
        ss_steps, ss_ids, ss_ptr = [], [], np.zeros(2 * n_pop, np.int64)
        n_ss = 0
        chunk_pop, chunk_lo, chunk_hi = [], [], []
        for p_i, (pop, (g0, llo, cnt, first)) in enumerate(zip(self.populations, ranges)):
            kinds[p_i] = _KIND[type(pop)]
            sl = slice(llo, llo + cnt)
            if isinstance(pop, LIF):
                prm = expsyn.ExpSynLIFParams(pop.tau_mem, tuple(pop.tau_syn.values()), pop.v_threshold, pop.v_leak,
                                             pop.v_reset, dt, pop.reset, pop.refractory)
                a = dtype.type(prm.alpha)
                pf[p_i, :5] = [a, dtype.type(1) - a, pop.v_leak, pop.v_threshold, pop.v_reset]
                pi[p_i, :2] = [_RESET[pop.reset], prm.refractory_steps]
                kcoef[p_i, : len(prm.k)] = prm.k
                beta[p_i, : len(prm.beta)] = prm.beta
                v[sl] = self._initial_v(pop, g0, cnt, first, pop.v_leak)
            elif isinstance(pop, CubaLIF):
                prm = cuba_model.CubaLIFParams(pop.tau_syn, pop.tau_mem, pop.v_threshold, pop.v_leak, pop.v_reset,
                                               pop.r, pop.w_in, dt, pop.reset)
                a = dtype.type(float(prm.alpha))
                b = dtype.type(float(prm.alpha_syn))
                pf[p_i, :10] = [a, dtype.type(float(prm.input_gain)), pop.v_leak, pop.v_threshold, pop.v_reset, b,
                                dtype.type(1) - b, pop.w_in, pop.r, dtype.type(float(prm.coupling))]
                pi[p_i, 0] = _RESET[pop.reset]
                v[sl] = self._initial_v(pop, g0, cnt, first, pop.v_leak)
            elif isinstance(pop, Izhikevich):
                prm = izh_model.IzhikevichParams(pop.a, pop.b, pop.c, pop.d, pop.v_peak, dt)
                h_ms = dt * 1e3
                pf[p_i, :10] = [pop.a, pop.b, pop.c, pop.d, pop.v_peak, h_ms / prm.substeps, h_ms * pop.a,
                                0.04, 5.0, 140.0]
                pi[p_i, 2] = prm.substeps
                beta[p_i, : len(pop.tau_syn)] = [math.exp(-dt / t) for t in pop.tau_syn.values()]
                v[sl] = self._initial_v(pop, g0, cnt, first, -65.0)
                u[sl] = v[sl] * dtype.type(pop.b)
            elif isinstance(pop, PoissonInput):
                pf[p_i, 0] = pop.rate * dt
            elif isinstance(pop, SpikeSource):
                st = np.floor(pop.times / dt + 0.5).astype(np.int64)
                keep = (pop.indices >= first) & (pop.indices < first + cnt)
                ev = np.unique(np.stack([st[keep], pop.indices[keep] - first + llo], 1), axis=0).reshape(-1, 2)
                ss_steps.append(ev[:, 0])
                ss_ids.append(ev[:, 1])
                ss_ptr[p_i] = n_ss
                n_ss += len(ev)
                ss_ptr[n_pop + p_i] = n_ss
            if cnt:
                step = cnt if isinstance(pop, SpikeSource) else CHUNK
                for c0 in range(llo, llo + cnt, step):
                    chunk_pop.append(p_i)
                    chunk_lo.append(c0)
                    chunk_hi.append(min(c0 + step, llo + cnt))
        local_to_global = np.empty(n_loc, np.int64)
        for g0, llo, cnt, _ in ranges:
            local_to_global[llo : llo + cnt] = np.arange(g0, g0 + cnt)
        self._state = dict(v=v, u=u, refr=refr, g=g, ring=ring)
        self._tables = dict(
            chunk_pop=np.asarray(chunk_pop, np.int64), chunk_lo=np.asarray(chunk_lo, np.int64),
            chunk_hi=np.asarray(chunk_hi, np.int64), pop_kind=kinds,
            pop_glo=np.asarray([r[0] for r in ranges], np.int64), pop_llo=np.asarray([r[1] for r in ranges], np.int64),
            pf=pf, pi=pi, kcoef=kcoef, beta=beta)
        self._ss = dict(ss_steps=np.concatenate(ss_steps + [np.zeros(0, np.int64)]),
                        ss_ids=np.concatenate(ss_ids + [np.zeros(0, np.int64)]), ss_ptr=ss_ptr)
        self._local_to_global = local_to_global
        self._spike_buf = np.zeros(max(n_loc, 1), np.int64)
        self._chunk_count = np.zeros(len(chunk_pop), np.int64)
        self._flag = np.zeros(-(-max(n_loc, 1) // 8) * 8, np.uint8)  # viewed as uint64 words
        self._build_synapses()
        self._build_monitors()
        self._built = True
        self.timings["build"] = time.perf_counter() - t_start
        if self.threads:
            numba.set_num_threads(int(self.threads))
        t_start = time.perf_counter()
        self._warm_up()
        self.timings["compile"] = time.perf_counter() - t_start

    def _initial_v(self, pop, g0, cnt, first, default):
        vi = pop.v_init
        if vi is None:
            return np.full(cnt, default)
        if isinstance(vi, tuple) and len(vi) == 3 and vi[0] == "uniform":
            lo, hi = float(vi[1]), float(vi[2])
            return lo + rng.uniform_array(self.seed, rng.STREAM_INIT, g0, cnt, 0) * (hi - lo)
        arr = np.asarray(vi, dtype=np.float64)
        if arr.ndim == 0:
            return np.full(cnt, float(arr))
        if arr.shape != (pop.n,):
            raise ConfigError(f"{pop.name}: 'v_init' array must have shape ({pop.n},), got {arr.shape}")
        return arr[first : first + cnt]

    def _build_synapses(self):
        projs = self.projections
        n = len(projs)
        src_glo = np.zeros(n, np.int64)
        src_ghi = np.zeros(n, np.int64)
        ind_off = np.zeros(n, np.int64)
        tgt_off = np.zeros(n, np.int64)
        channel = np.zeros(n, np.int64)
        w_scalar = np.zeros(n, self.dtype)
        w_kind = np.zeros(n, np.int64)
        w_off = np.zeros(n, np.int64)
        d_scalar = np.zeros(n, np.int64)
        d_off = np.full(n, -1, np.int64)
        indptrs, indices_l, w32_l, w16_l, d_l = [], [], [], [], []
        n_rows = n_syn = n_w32 = n_w16 = n_d = 0
        pop_index = {id(p): i for i, p in enumerate(self.populations)}
        for k, pr in enumerate(projs):
            t_i = pop_index[id(pr.target)]
            g0, llo, cnt, first = self._ranges[t_i]
            seed = (self.seed * 1_000_003 + pr.index + 1) % (2**62)
            indptr, idx, perm = pr.rule.build(pr.source.n, pr.target.n, first, first + cnt, seed)
            pr.n_synapses = int(idx.size)
            src_glo[k] = self._offsets[id(pr.source)]
            src_ghi[k] = src_glo[k] + pr.source.n
            ind_off[k] = n_rows
            indptrs.append(indptr + n_syn)
            indices_l.append(idx)
            tgt_off[k] = llo
            channel[k] = pr.target.channels.index(pr.channel)
            if isinstance(pr.weight, float):
                w_scalar[k] = pr.weight
            else:
                w = pr.weight[perm]
                if pr.weight_dtype == "float16":
                    w_kind[k], w_off[k] = 2, n_w16 - n_syn
                    w16_l.append(w.astype(np.float16).view(np.uint16))
                    n_w16 += w.size
                else:
                    w_kind[k], w_off[k] = 1, n_w32 - n_syn
                    w32_l.append(w.astype(np.float32))
                    n_w32 += w.size
            if isinstance(pr.delay_steps, int):
                d_scalar[k] = pr.delay_steps
            else:
                d_off[k] = n_d - n_syn
                d_l.append(pr.delay_steps[perm])
                n_d += idx.size
            n_rows += indptr.size
            n_syn += idx.size
        cat = lambda lst, dt: np.concatenate(lst) if len(lst) > 1 else (lst[0] if lst else np.zeros(0, dt))
        self._syn = dict(
            src_glo=src_glo, src_ghi=src_ghi, indptr=cat(indptrs, np.int64), ind_off=ind_off,
            indices=cat(indices_l, np.int32), tgt_off=tgt_off, channel=channel, w_scalar=w_scalar, w_off=w_off,
            w_kind=w_kind, w32=cat(w32_l, np.float32), w16=cat(w16_l, np.uint16), d_scalar=d_scalar, d_off=d_off,
            delays=cat(d_l, np.int16))
        self.n_synapses_local = n_syn

    def _build_monitors(self):
        n_loc = self._hi - self._lo
        mask = np.zeros(max(n_loc, 1), np.uint8)
        pop_index = {id(p): i for i, p in enumerate(self.populations)}
        for mon in self.spike_monitors:
            g0, llo, cnt, first = self._ranges[pop_index[id(mon.population)]]
            if mon.subset is None:
                mask[llo : llo + cnt] = 1
            else:
                sel = mon.subset[(mon.subset >= first) & (mon.subset < first + cnt)]
                mask[sel - first + llo] = 1
        self._rec_mask = mask[:n_loc] if n_loc else np.zeros(0, np.uint8)
        self._rec = [np.zeros(0, np.int64), np.zeros(0, np.int64)]
        self._probes = []  # (monitor, column, local index)
        for mon in self.state_monitors:
            pop = mon.population
            g0, llo, cnt, first = self._ranges[pop_index[id(pop)]]
            var = 0 if mon.variable == "v" else 1 if mon.variable == "u" else 2 + pop.channels.index(mon.variable[2:])
            for col, i in enumerate(mon.subset):
                if first <= i < first + cnt:
                    self._probes.append((mon, col, int(i - first + llo), var))

    def _call(self, kernel, t, t_stop, deliver_local, rec_steps, rec_ids, rec_n, emit_steps, emit_ids, emit_n,
              probe_var, probe_idx, probe_every, probe_off, probe_out):
        st, tb, ss, sy = self._state, self._tables, self._ss, self._syn
        return kernel(
            t, t_stop, deliver_local, tb["chunk_pop"], tb["chunk_lo"], tb["chunk_hi"], tb["pop_kind"],
            tb["pop_glo"], tb["pop_llo"], tb["pf"], tb["pi"], tb["kcoef"], tb["beta"], st["v"], st["u"],
            st["refr"], st["g"], st["ring"], self._spike_buf, self._flag, self._chunk_count, self.seed,
            ss["ss_steps"], ss["ss_ids"], ss["ss_ptr"], sy["src_glo"], sy["src_ghi"], sy["indptr"], sy["ind_off"],
            sy["indices"], sy["tgt_off"], sy["channel"], sy["w_scalar"], sy["w_off"], sy["w_kind"], sy["w32"],
            sy["w16"], sy["d_scalar"], sy["d_off"], sy["delays"], self._rec_mask, rec_steps, rec_ids, rec_n,
            emit_steps, emit_ids, emit_n, self._local_to_global, probe_var, probe_idx, probe_every,
            probe_off, probe_out)

    def _kernel(self):
        n_loc = self._hi - self._lo
        use_par = self.parallel == "yes" or (self.parallel == "auto" and n_loc >= 50_000
                                             and numba.get_num_threads() > 1)
        return engine.run_steps_parallel if use_par else engine.run_steps_serial

    def _warm_up(self):
        """Compile (or load from numba's cache) the time loop with a zero-step call."""
        z, e = np.zeros(1, np.int64), np.zeros(0, np.int64)
        self._call(self._kernel(), 0, 0, True, z, z, np.zeros(1, np.int64), z, z, np.zeros(1, np.int64), e, e,
                   np.ones(0, np.int64), e, np.zeros(0, np.float64))

    # ---------------------------------------------------------------- checkpoints
    def save_state(self, path):
        """Write the dynamic state (step, neurons, synaptic currents, delay buffer) to ``path``
        (.npz, atomic). Connectivity is not saved: it is rebuilt from the seed."""
        if not self._built:
            raise ConfigError("Network.save_state: nothing to save before the network is built (run)")
        arrays = {k: v for k, v in self._state.items()}
        arrays.update(step=np.int64(self.step), ss_ptr=self._ss["ss_ptr"], layout=np.array(
            [self._rank, self._world, self._n_total, self.seed], np.int64))
        from spikeflow.atomic import atomic_output

        with atomic_output(path, "wb") as fh:
            np.savez(fh, **arrays)

    def load_state(self, path):
        """Restore a state written by :meth:`save_state` into this (identically declared) network."""
        from spikeflow.errors import CheckpointError

        if not self._built:
            import torch.distributed as dist

            on = dist.is_available() and dist.is_initialized()
            self.build(*((dist.get_rank(), dist.get_world_size()) if on else (0, 1)))
        try:
            z = np.load(str(path), allow_pickle=False)
            layout = z["layout"]
            if layout.tolist() != [self._rank, self._world, self._n_total, self.seed]:
                raise CheckpointError(f"{path}: saved for (rank, world, neurons, seed) = {layout.tolist()}, this "
                                      f"network is {[self._rank, self._world, self._n_total, self.seed]}")
            for k, v in self._state.items():
                if z[k].shape != v.shape or z[k].dtype != v.dtype:
                    raise CheckpointError(f"{path}: field '{k}' has shape {z[k].shape} {z[k].dtype}, "
                                          f"expected {v.shape} {v.dtype}")
                v[...] = z[k]
            self._ss["ss_ptr"][...] = z["ss_ptr"]
            self.step = int(z["step"])
        except (OSError, KeyError, ValueError) as err:
            raise CheckpointError(f"{path}: not a spikeflow.sim state file ({err})") from None

    # ---------------------------------------------------------------- run
    def run(self, duration: float, progress: bool = True, steps_per_call: int | None = None):
        """Advance the network by ``duration`` seconds (rounded to whole steps)."""
        import torch.distributed as dist

        if not isinstance(duration, (int, float)) or not math.isfinite(duration) or duration < 0:
            raise ConfigError(f"Network.run: 'duration' must be a finite number of seconds >= 0, got {duration!r}")
        distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
        if not self._built:
            self.build(rank, world)
        elif (rank, world) != (self._rank, self._world):
            raise ConfigError("Network.run: the process layout changed since the network was built")
        if self.threads:
            numba.set_num_threads(int(self.threads))
        n_steps = int(math.floor(duration / self.dt + 0.5))
        t0, t_end = self.step, self.step + n_steps
        n_loc = self._hi - self._lo
        kernel = self._kernel()
        probes = self._probes
        probe_every = np.asarray([p[0]._every_steps for p in probes], np.int64)
        first_sample = np.asarray([-(-t0 // e) for e in probe_every], np.int64)
        probe_len = np.asarray([len(range(f * e, t_end, e)) for f, e in zip(first_sample, probe_every)], np.int64)
        # Samples of this run are stored from index 0: the kernel writes at off + step // every.
        starts = np.concatenate([[0], np.cumsum(probe_len)[:-1]]).astype(np.int64)
        probe_off = (starts - first_sample).astype(np.int64)
        probe_out = np.zeros(int(probe_len.sum()) if probes else 0, np.float64)
        n_rec_max = int(self._rec_mask.sum())
        cap = max(4 * n_rec_max, 1 << 16)
        rec_steps, rec_ids, rec_n = np.zeros(cap, np.int64), np.zeros(cap, np.int64), np.zeros(1, np.int64)
        if distributed:
            interval = min(self.min_delay, max(n_steps, 1))
        else:
            interval = steps_per_call or max(1, int(0.05 / self.dt))
        emit_cap = max(n_loc, 1) * (interval if distributed else 0) + 1
        emit_steps, emit_ids, emit_n = np.zeros(emit_cap, np.int64), np.zeros(emit_cap, np.int64), np.zeros(1, np.int64)
        st, sy = self._state, self._syn
        probe_var = np.asarray([p[3] for p in probes], np.int64)
        probe_idx = np.asarray([p[2] for p in probes], np.int64)
        from tqdm.auto import tqdm

        bar = tqdm(total=n_steps, unit="step", desc="sim", disable=not progress or rank != 0, mininterval=0.5)
        t_start = time.perf_counter()
        t = t0
        while t < t_end:
            t_stop = min(t + interval, t_end)
            while t < t_stop:
                t_next = self._call(kernel, t, t_stop, not distributed, rec_steps, rec_ids, rec_n, emit_steps, emit_ids,
                                    emit_n, probe_var, probe_idx, probe_every, probe_off, probe_out)
                if t_next < t_stop:  # spike record full: grow it
                    rec_steps = np.concatenate([rec_steps, np.zeros(rec_steps.size, np.int64)])
                    rec_ids = np.concatenate([rec_ids, np.zeros(rec_ids.size, np.int64)])
                bar.update(t_next - t)
                t = t_next
            if distributed:
                steps_all, ids_all = _exchange(emit_steps[: emit_n[0]], emit_ids[: emit_n[0]])
                emit_n[0] = 0
                engine.deliver_all(steps_all, ids_all, sy["src_glo"], sy["src_ghi"], sy["indptr"], sy["ind_off"],
                                   sy["indices"], sy["tgt_off"], sy["channel"], sy["w_scalar"], sy["w_off"],
                                   sy["w_kind"], sy["w32"], sy["w16"], sy["d_scalar"], sy["d_off"], sy["delays"],
                                   st["ring"])
        bar.close()
        self.timings["run"] += time.perf_counter() - t_start
        self.step = t_end
        self._collect(rec_steps[: rec_n[0]], rec_ids[: rec_n[0]], probes, probe_out, probe_len, t0, distributed)
        return self

    def _collect(self, steps, gids, probes, probe_out, probe_len, t0, distributed):
        if distributed:
            steps, gids = _exchange(steps, gids)
        for mon in self.spike_monitors:
            g0 = self._offsets[id(mon.population)]
            sel = (gids >= g0) & (gids < g0 + mon.population.n)
            idx = gids[sel] - g0
            st = steps[sel]
            if mon.subset is not None:
                keep = np.isin(idx, mon.subset)
                idx, st = idx[keep], st[keep]
            mon.indices = np.concatenate([mon.indices, idx])
            mon.steps = np.concatenate([mon.steps, st])
            mon.times = mon.steps * self.dt
        offs = np.concatenate([[0], np.cumsum(probe_len)]) if len(probes) else [0]
        per_mon = {}
        for k, (mon, col, _, _) in enumerate(probes):
            per_mon.setdefault(id(mon), (mon, {}))[1][col] = probe_out[offs[k] : offs[k + 1]]
        for mon in self.state_monitors:
            e = mon._every_steps
            n_s = len(range(-(-t0 // e) * e, self.step, e))
            vals = np.full((n_s, mon.subset.size), np.nan)
            for col, arr in per_mon.get(id(mon), (None, {}))[1].items():
                vals[:, col] = arr
            if distributed:
                vals = _merge_nan(vals)
            mon.values = np.concatenate([mon.values, vals]) if mon.values.size else vals
            mon.times = np.arange(mon.values.shape[0]) * mon.every


def _exchange(steps, gids):
    """All processes' spikes of an interval, sorted by (step, global index)."""
    import torch
    import torch.distributed as dist

    world = dist.get_world_size()
    n = torch.tensor([steps.size], dtype=torch.int64)
    counts = [torch.zeros(1, dtype=torch.int64) for _ in range(world)]
    dist.all_gather(counts, n)
    m = max(int(c.item()) for c in counts)
    buf = torch.zeros((2, m), dtype=torch.int64)
    buf[0, : steps.size] = torch.from_numpy(np.ascontiguousarray(steps, np.int64))
    buf[1, : steps.size] = torch.from_numpy(np.ascontiguousarray(gids, np.int64))
    parts = [torch.zeros((2, m), dtype=torch.int64) for _ in range(world)]
    dist.all_gather(parts, buf)
    s = np.concatenate([p[0, : int(c.item())].numpy() for p, c in zip(parts, counts)])
    g = np.concatenate([p[1, : int(c.item())].numpy() for p, c in zip(parts, counts)])
    order = np.lexsort((g, s))
    return s[order], g[order]


def _merge_nan(vals):
    """Combine the probes of all processes (each fills its own columns, NaN elsewhere)."""
    import torch
    import torch.distributed as dist

    t = torch.from_numpy(np.ascontiguousarray(vals))
    parts = [torch.zeros_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t)
    out = np.full(vals.shape, np.nan)
    for p in parts:
        a = p.numpy()
        out = np.where(np.isnan(out), a, out)
    return out
