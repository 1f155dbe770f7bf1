"""The clock-free engine in pure Python: the reference the compiled engine (``clockfree``) is
checked against, spike for spike. The semantics are described in ``spikeflow.runtime.clockfree``.
"""

from __future__ import annotations

import collections
import heapq
import itertools
from typing import Dict, List, Optional

import numpy as np
import scipy.sparse as sp

from spikeflow.errors import InputError, NIRError
from spikeflow.runtime.event_plan import KIND_CODE, STAGE_CSR, build_plan
from spikeflow.runtime.graph import compile_graph

LIF, IF, LI, CUBALIF, CUBALI, IDENT, INPUT = (KIND_CODE[k] for k in ("lif", "if", "li", "cubalif", "cubali",
                                                                       "ident", "input"))
MAX_BURST = 10_000  # spikes of one neuron at one instant before we call it a runaway


def runaway_error(node: str, t: float) -> NIRError:
    return NIRError(f"runtime: node '{node}' fires without bound at t={t:.9f} s (reset 'none'?)")


def cascade_error(t: float) -> NIRError:
    return NIRError(f"runtime: spikes cascade without end at t={t:.9f} s (a recurrent loop above "
                    "threshold); give the clock-free engine recurrent_delay > 0")


class ClockFreeSetup:
    """What both clock-free engines share: arguments, per-population parameters, one CSR per projection.

    Args:
        graph: ``nir.NIRGraph`` or ``CompiledGraph``.
        spike_area: seconds; area of one spike's Dirac impulse (default: the graph's dt).
        xtol: bisection tolerance in seconds for CubaLIF crossings.
        recurrent_delay: seconds between a spike and its arrival through a recurrent edge.
    """

    name = "clockfree"

    def __init__(self, graph, spike_area: Optional[float] = None, xtol: float = 1e-9,
                 recurrent_delay: float = 0.0, dt: Optional[float] = None):
        self.graph = compile_graph(graph, dt)
        q = spike_area if spike_area is not None else self.graph.dt
        if q is None or not q > 0:
            raise NIRError("runtime: clockfree needs spike_area=... (seconds) when the graph has no 'dt'")
        self.q = float(q)
        self.xtol = float(xtol)
        self.recurrent_delay = float(recurrent_delay)
        self.plan = build_plan(self.graph, self.graph.dt or self.q)
        self._build()

    # ------------------------------------------------------------------ set-up
    def _build(self):
        pl, cg = self.plan, self.graph
        self.pops = []
        for p, name in enumerate(pl.pop_names):
            off, size, kind = (int(v) for v in pl.pop_i[p, :3])
            nd = cg.nodes[name]
            prm = {
                "r": np.asarray(nd.params.get("r", np.ones(nd.out_shape)), float).reshape(-1),
                "tau_mem": np.asarray(nd.params.get("tau_mem", np.ones(nd.out_shape)), float).reshape(-1),
                "tau_syn": np.asarray(nd.params.get("tau_syn", np.ones(nd.out_shape)), float).reshape(-1),
                "w_in": np.asarray(nd.params.get("w_in", np.ones(nd.out_shape)), float).reshape(-1),
                "v_leak": np.asarray(nd.params.get("v_leak", np.zeros(nd.out_shape)), float).reshape(-1),
                "v_th": np.asarray(nd.params.get("v_threshold", np.ones(nd.out_shape)), float).reshape(-1),
                "v_reset": np.asarray(nd.params.get("v_reset", np.zeros(nd.out_shape)), float).reshape(-1),
                "drive": pl.prm[off:off + size, 7].copy(),
            } if kind != INPUT else {}
            if kind in (CUBALIF, CUBALI):
                near = np.abs(prm["tau_syn"] - prm["tau_mem"]) < 1e-12 * prm["tau_mem"]
                prm["equal"] = near
            self.pops.append({"name": name, "kind": kind, "size": size, "prm": prm, "reset": int(pl.pop_i[p, 5]),
                              "spiking": kind in (LIF, IF, CUBALIF), "out": []})
        # one CSR (source -> target) per projection; convolutions made explicit here
        self.proj: Dict[int, List] = {}
        for src, dst, delay, s0, s1 in pl.proj_i:
            m = None
            for s in range(s0, s1):
                sm = self._stage_matrix(s)
                m = sm if m is None else (m @ sm).tocsr()
            m = m.tocsr()
            m.sum_duplicates()
            m.sort_indices()  # a spike's targets in ascending order, in both engines
            self.proj.setdefault(int(src), []).append((int(dst), m, bool(delay)))

    def _stage_matrix(self, s) -> sp.csr_matrix:
        pl = self.plan
        st = pl.stage_i[s]
        n_in, n_out = int(st[1]), int(st[2])
        if st[0] == STAGE_CSR:
            lo, hi = pl.indptr[st[3]], pl.indptr[st[3] + n_in]
            ptr = pl.indptr[st[3]:st[3] + n_in + 1]
            return sp.csr_matrix((pl.data[st[4] + lo:st[4] + hi], pl.indices[st[4] + lo:st[4] + hi], ptr - lo),
                                 shape=(n_in, n_out))
        cin, h, w, cout, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, groups = (int(v) for v in st[6:21])
        weight = pl.weights[st[5]:st[5] + cout * (cin // groups) * kh * kw].reshape(cout, cin // groups, kh, kw)
        rows, cols, vals = [], [], []
        co, oy, ox = np.meshgrid(np.arange(cout), np.arange(oh), np.arange(ow), indexing="ij")
        co, oy, ox = co.ravel(), oy.ravel(), ox.ravel()
        cin_g, cout_g = cin // groups, cout // groups
        for ci in range(cin_g):
            for ky in range(kh):
                for kx in range(kw):
                    y, x = oy * sh - ph + ky * dh, ox * sw - pw + kx * dw
                    ok = (y >= 0) & (y < h) & (x >= 0) & (x < w)
                    c_in = (co // cout_g) * cin_g + ci
                    rows.append(((c_in * h + y) * w + x)[ok])
                    cols.append(((co * oh + oy) * ow + ox)[ok])
                    vals.append(weight[co, ci, ky, kx][ok])
        return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(n_in, n_out))

    def _check_input(self, times_s, idx, val, now=None):
        now = self.now if now is None else now
        times_s = np.asarray(times_s, dtype=np.float64)
        idx = np.asarray(idx, dtype=np.int64)
        val = np.ones(times_s.size) if val is None else np.asarray(val, dtype=np.float64)
        if times_s.size and (np.any(np.diff(times_s) < 0) or times_s[0] < now):
            raise InputError("runtime: clockfree input timestamps must be non-decreasing and not before the "
                             f"engine's time ({now:.6f} s)")
        n_in = self.pops[self.plan.input_pop]["size"]
        if idx.size and (idx.min() < 0 or idx.max() >= n_in):
            raise InputError(f"runtime: input index outside 0..{n_in - 1}")
        return times_s, idx, val

    def _pop_index(self, node: str) -> int:
        for p, pop in enumerate(self.pops):
            if pop["name"] == node:
                return p
        raise NIRError(f"runtime: no neuron node named {node!r}; nodes: {[p['name'] for p in self.pops]}")


class PyClockFreeEngine(ClockFreeSetup):
    """The clock-free engine in Python (the reference; ``ClockFreeEngine(..., impl="python")``)."""

    def __init__(self, graph, spike_area: Optional[float] = None, xtol: float = 1e-9,
                 recurrent_delay: float = 0.0, dt: Optional[float] = None):
        super().__init__(graph, spike_area, xtol, recurrent_delay, dt)
        self.reset()

    def reset(self) -> None:
        self.now = 0.0
        self._heap: list = []
        self._fifo = collections.deque()
        self._seq = itertools.count()
        for pop in self.pops:
            n = pop["size"]
            pop["v"] = pop["prm"]["v_leak"].copy() if pop["kind"] not in (INPUT, IF, IDENT) else np.zeros(n)
            pop["i"] = np.zeros(n)
            pop["t"] = np.zeros(n)
            pop["version"] = np.zeros(n, dtype=np.int64)
            pop["out"] = []
            pop["count"] = np.zeros(n, dtype=np.int64)
        self.counters = {"synaptic_ops": {}, "neuron_updates": {}, "spikes": {}}
        for p, pop in enumerate(self.pops):
            if pop["spiking"]:
                self._schedule(p, np.arange(pop["size"]))

    # ------------------------------------------------------------------ dynamics
    def _advance(self, p, idx, t):
        """Bring neurons ``idx`` of population ``p`` analytically to time ``t``."""
        pop = self.pops[p]
        prm, kind = pop["prm"], pop["kind"]
        ds = t - pop["t"][idx]
        if kind in (LIF, LI):
            vinf = prm["v_leak"][idx] + prm["r"][idx] * prm["drive"][idx]
            pop["v"][idx] = vinf + (pop["v"][idx] - vinf) * np.exp(-ds / prm["tau_mem"][idx])
        elif kind == IF:
            pop["v"][idx] = pop["v"][idx] + prm["r"][idx] * prm["drive"][idx] * ds
        elif kind in (CUBALIF, CUBALI):
            v, i = self._cuba_at(p, idx, ds)
            pop["v"][idx], pop["i"][idx] = v, i
        pop["t"][idx] = t

    def _cuba_terms(self, p, idx):
        prm = self.pops[p]["prm"]
        pop = self.pops[p]
        iinf = prm["w_in"][idx] * prm["drive"][idx]
        vinf = prm["v_leak"][idx] + prm["r"][idx] * iinf
        d0 = pop["i"][idx] - iinf
        u0 = pop["v"][idx] - vinf
        tm, ts = prm["tau_mem"][idx], prm["tau_syn"][idx]
        eq = prm["equal"][idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            k = np.where(eq, 0.0, prm["r"][idx] * d0 * ts / (ts - tm))
        c = prm["r"][idx] * d0 / tm  # equal time constants: u = (u0 + c s) exp(-s / tm)
        return iinf, vinf, d0, u0, tm, ts, eq, k, c

    def _cuba_at(self, p, idx, s, terms=None):
        """State after ``s`` seconds: ``u = u0 e^{-s/tm} + r d0 K(s)`` with the coupling
        ``K(s) = ts/(ts - tm) (e^{-s/ts} - e^{-s/tm}) = e^{-s/tm} (s/tm) expm1(z)/z``,
        ``z = s (1/tm - 1/ts)`` (stable for equal and nearly equal taus; ``neurons.cuba``)."""
        iinf, vinf, d0, u0, tm, ts, eq, k, c = terms or self._cuba_terms(p, idx)
        em, es = np.exp(-s / tm), np.exp(-s / ts)
        z = s * (1.0 / tm - 1.0 / ts)
        small = np.abs(z) < 1e-5
        with np.errstate(divide="ignore", invalid="ignore"):
            phi = np.where(small, 1.0 + z * (0.5 + z / 6.0), np.expm1(z) / np.where(small, 1.0, z))
        u = u0 * em + c * s * em * phi  # c = r d0 / tm
        return vinf + u, iinf + d0 * es

    def _crossing(self, p, idx) -> np.ndarray:
        """Time from now (each neuron's last update) to its next threshold crossing; inf if none."""
        pop = self.pops[p]
        prm, kind = pop["prm"], pop["kind"]
        v, th = pop["v"][idx], prm["v_th"][idx]
        out = np.full(idx.size, np.inf)
        if kind == LIF:
            vinf = prm["v_leak"][idx] + prm["r"][idx] * prm["drive"][idx]
            ok = vinf > th
            with np.errstate(divide="ignore", invalid="ignore"):
                s = prm["tau_mem"][idx] * np.log((v - vinf) / (th - vinf))
            out[ok] = np.maximum(s[ok], 0.0)
        elif kind == IF:
            rate = prm["r"][idx] * prm["drive"][idx]
            ok = rate > 0
            out[ok] = np.maximum((th[ok] - v[ok]) / rate[ok], 0.0)
        elif kind == CUBALIF:
            out = self._cuba_crossing(p, idx)
        return out

    def _cuba_crossing(self, p, idx):
        terms = self._cuba_terms(p, idx)
        iinf, vinf, d0, u0, tm, ts, eq, k, c = terms
        th = self.pops[p]["prm"]["v_th"][idx]
        a = vinf - th
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            ratio = -k * tm / (ts * (u0 - k))
            sp_neq = np.log(ratio) / (1.0 / ts - 1.0 / tm)
            sp_eq = tm - u0 / c
        s_peak = np.where(eq, sp_eq, sp_neq)
        s_peak = np.where(np.isfinite(s_peak) & (s_peak > 0), s_peak, 0.0)

        def f(s):
            return self._cuba_at(p, idx, s, terms)[0] - th

        peak_above = (s_peak > 0) & (f(s_peak) > 0)
        late = ~peak_above & (a > 0)
        lo = np.where(peak_above, 0.0, s_peak)
        hi = np.where(peak_above, s_peak, s_peak + tm)
        grow = late.copy()
        for _ in range(200):  # f rises towards a > 0 after the peak: double the bracket until above
            if not grow.any():
                break
            above = f(hi) > 0
            grow &= ~above
            hi = np.where(grow, lo + 2 * (hi - lo), hi)
        found = peak_above | late
        while True:  # bisection keeps f(lo) <= 0 < f(hi)
            wide = found & (hi - lo > self.xtol)
            if not wide.any():
                break
            mid = 0.5 * (lo + hi)
            fm = f(mid) > 0
            hi = np.where(wide & fm, mid, hi)
            lo = np.where(wide & ~fm, mid, lo)
        return np.where(found, hi, np.inf)

    def _schedule(self, p, idx):
        pop = self.pops[p]
        if not pop["spiking"] or idx.size == 0:
            return
        pop["version"][idx] += 1
        s = self._crossing(p, idx)
        for j in np.flatnonzero(np.isfinite(s)):
            n = idx[j]
            heapq.heappush(self._heap, (pop["t"][n] + s[j], next(self._seq), 0, p, int(n), int(pop["version"][n])))

    def _deliver(self, src, idx, val, t, only=None):
        """Spikes of population ``src`` (neurons ``idx``, values ``val``) at time ``t``
        (through projection number ``only`` of ``src``: a delayed delivery arriving)."""
        for k, (dst, m, delayed) in enumerate(self.proj.get(src, ())):
            if only is not None and k != only:
                continue
            if delayed and self.recurrent_delay > 0 and only is None:
                heapq.heappush(self._heap, (t + self.recurrent_delay, next(self._seq), 1, src,
                                            (np.array(idx), np.array(val)), k))
                continue
            idx = np.asarray(idx, dtype=np.int64)
            val = np.asarray(val, dtype=np.float64)
            lo, hi = m.indptr[idx], m.indptr[idx + 1]
            n = hi - lo
            if n.sum() == 0:
                continue
            pos = np.repeat(lo - np.concatenate([[0], np.cumsum(n)[:-1]]), n) + np.arange(n.sum())
            tg = m.indices[pos]
            w = m.data[pos] * np.repeat(val, n)
            if idx.size > 1:
                tg, inv = np.unique(tg, return_inverse=True)
                w = np.bincount(inv, weights=w)
            self._jump(dst, tg.astype(np.int64), w, t, int(n.sum()))

    def _jump(self, p, tg, w, t, n_ops):
        pop = self.pops[p]
        name = pop["name"]
        ops = self.counters["synaptic_ops"]
        ops[name] = ops.get(name, 0) + n_ops
        upd = self.counters["neuron_updates"]
        upd[name] = upd.get(name, 0) + tg.size
        self._advance(p, tg, t)
        prm, kind = pop["prm"], pop["kind"]
        if kind in (LIF, LI):
            pop["v"][tg] += prm["r"][tg] * w * self.q / prm["tau_mem"][tg]
        elif kind == IF:
            pop["v"][tg] += prm["r"][tg] * w * self.q
        elif kind in (CUBALIF, CUBALI):
            pop["i"][tg] += prm["w_in"][tg] * w * self.q / prm["tau_syn"][tg]
        elif kind == IDENT:
            pop["v"][tg] += w  # identity outputs integrate delivered charge (their value is a running sum)
        if pop["spiking"]:
            self._fire_now(p, tg, t)

    def _fire_now(self, p, tg, t):
        pop = self.pops[p]
        for _ in range(MAX_BURST):
            above = tg[pop["v"][tg] > pop["prm"]["v_th"][tg]]
            if above.size == 0:
                break
            self._emit(p, above, t)
        else:
            raise runaway_error(pop["name"], t)
        self._schedule(p, tg)

    def _emit(self, p, idx, t):
        pop = self.pops[p]
        prm = pop["prm"]
        if pop["reset"] == 0:
            pop["v"][idx] -= prm["v_th"][idx]
        elif pop["reset"] == 1:
            pop["v"][idx] = prm["v_reset"][idx]
        pop["out"].append((np.full(idx.size, t), idx.copy()))
        pop["count"][idx] += 1
        sc = self.counters["spikes"]
        sc[pop["name"]] = sc.get(pop["name"], 0) + idx.size
        self._fifo.append((p, idx.copy(), t))  # delivered by _drain, in order, without recursion

    def _drain(self):
        """Deliver queued spikes (and the spikes they cause at the same instant) in FIFO order."""
        n_same, t_last = 0, None
        limit = 1000 + 100 * sum(pop["size"] for pop in self.pops)  # deliveries at one instant
        while self._fifo:
            p, idx, t = self._fifo.popleft()
            n_same = n_same + 1 if t == t_last else 0
            t_last = t
            if n_same > limit:
                raise cascade_error(t)
            self._deliver(p, idx, np.ones(idx.size), t)

    # ------------------------------------------------------------------ driving
    def advance(self, times_s, idx, val=None, until: Optional[float] = None, sample_times=None):
        """Process input events (seconds, flat input index, value) in time order up to ``until``.

        Returns readout samples ``[len(sample_times), n_out]`` per Output node, taken at each
        sample time after every input event strictly before it.
        """
        times_s, idx, val = self._check_input(times_s, idx, val)
        until = float(until) if until is not None else (float(times_s[-1]) if times_s.size else self.now)
        samples = np.asarray(sample_times if sample_times is not None else [], dtype=np.float64)
        out = {name: np.zeros((samples.size, self.graph.nodes[name].size)) for name in self.graph.outputs}
        e, s_i = 0, 0
        inp = self.plan.input_pop
        while True:
            t_in = times_s[e] if e < times_s.size else np.inf
            t_q = self._heap[0][0] if self._heap else np.inf
            t_s = samples[s_i] if s_i < samples.size else np.inf
            t_next = min(t_in, t_q, t_s)
            if t_next > until or t_next == np.inf:
                break
            if t_s <= t_in and t_s <= t_q and t_s == t_next:
                self._sample(out, s_i, t_s)
                s_i += 1
                continue
            if t_in <= t_q:
                e2 = e + 1
                while e2 < times_s.size and times_s[e2] == t_in:
                    e2 += 1
                self.now = t_in
                sc = self.counters["spikes"]
                sc["input"] = sc.get("input", 0) + (e2 - e)
                self._deliver(inp, idx[e:e2], val[e:e2], t_in)
                self._drain()
                e = e2
                continue
            t, _, typ, p, payload, extra = heapq.heappop(self._heap)
            self.now = t
            if typ == 1:  # delayed recurrent delivery
                self._deliver(p, payload[0], payload[1], t, only=extra)
                self._drain()
                continue
            pop = self.pops[p]
            n = payload
            if pop["version"][n] != extra:
                continue  # superseded by a later input
            tg = np.array([n])
            self._advance(p, tg, t)
            pop["v"][n] = max(pop["v"][n], np.nextafter(pop["prm"]["v_th"][n], np.inf))  # crossing reached
            self._fire_now(p, tg, t)
            self._drain()
        while s_i < samples.size and samples[s_i] <= until:
            self._sample(out, s_i, samples[s_i])
            s_i += 1
        self.now = max(self.now, until)
        return out

    def _sample(self, out, row, t):
        pl = self.plan
        for name, p in pl.output_pop.items():
            pop = self.pops[p]
            idx = np.arange(pop["size"])
            if pop["kind"] in (LI, CUBALI):
                self._advance(p, idx, t)
                out[name][row] = pop["v"]
            elif pop["kind"] == IDENT:
                out[name][row] = pop["v"] + pop["prm"]["drive"]
            else:
                out[name][row] = pop["count"]

    def spike_times(self, node: str):
        """(times in seconds, flat neuron index) of every spike of ``node`` since ``reset``."""
        pop = self.pops[self._pop_index(node)]
        if not pop["out"]:
            return np.zeros(0), np.zeros(0, dtype=np.int64)
        t = np.concatenate([a for a, _ in pop["out"]])
        i = np.concatenate([b for _, b in pop["out"]])
        return t, i

    def run_events(self, times_s, idx, val=None, until=None):
        """From rest: process all input events; returns ``{node: (times, index)}`` for spiking nodes."""
        self.reset()
        self.advance(times_s, idx, val, until=until)
        return {pop["name"]: self.spike_times(pop["name"]) for pop in self.pops if pop["spiking"]}
