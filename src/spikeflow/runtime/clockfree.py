"""Clock-free engine: asynchronous and exact, no global time step.

A priority queue of timestamped events (input events with µs timestamps, predicted
threshold crossings). Each neuron keeps its state and the time of its last event and
decays analytically between events (NIR's ODEs with a constant bias current):

- LIF/LI: ``v(s) = v_inf + (v0 - v_inf) exp(-s / tau)``, ``v_inf = v_leak + r * bias``;
  the threshold-crossing time is exact: ``s* = tau * ln((v0 - v_inf) / (v_th - v_inf))``.
- IF: ``v(s) = v0 + R * bias * s``; ``s* = (v_th - v0) / (R * bias)``.
- CubaLIF/CubaLI: ``v`` is a constant plus two exponentials (``tau_mem``, ``tau_syn``), with at
  most one extremum (found analytically); the crossing is bracketed and bisected to
  ``xtol`` seconds (default 1 ns): the reported time is at most ``xtol`` after the true one.

Spikes are Dirac impulses of area ``spike_area`` seconds (default: the graph's ``dt``):
a spike of weight ``w`` makes LIF/LI jump by ``r * w * q / tau``, IF by ``R * w * q`` and a
CubaLIF current by ``w_in * w * q / tau_syn``. The stepped engines converge to this as
``dt -> 0`` when a spike there carries ``q / dt`` (``spike_value``); with ``q = dt`` the
stepped engine's jump is ``r w (1 - exp(-dt/tau))``, the same to first order. (The stepped
CubaLIF step is exact for input held over the step: a stepped spike is its charge spread
evenly over the step, whose first-order equivalent Dirac sits at the step's middle; a
crossing is then reported at the end of its step, within one dt. With the stepped engines'
default ``reset_timing="step"`` each reset at the step's end, not at the crossing, leaves a
deficit that delays the neuron's later crossings, by many steps when the drive is barely above
threshold (Hansel et al. 1998); their ``reset_timing="crossing"`` resets at the crossing located
inside the step, and delivers the spike to CubaLIF targets at that time to first order (not at the
step's middle, which would move a later layer's crossings by up to about 1.6 dt), which keeps
every spike of the random CubaLIF graphs within one dt: see tests/runtime/test_reset_timing.py
and benchmarks/clockfree_convergence.py.)
A neuron pushed above threshold by a jump fires at that instant (again while still above,
for reset by subtraction). Spikes caused at the same instant are delivered in FIFO order.
Recurrent edges deliver after ``recurrent_delay`` seconds (default 0; the stepped engines'
one-step delay shrinks to 0 as dt -> 0); a loop that re-excites itself without end at one
instant raises ``NIRError`` asking for a delay.

Two implementations run these semantics: ``ClockFreeEngine`` (the default) runs the event loop
compiled with numba (``clockfree_kernel``), one queue per sample, samples in parallel with
``run_events_batch``; ``ClockFreeEngine(..., impl="python")`` (``PyClockFreeEngine``,
``clockfree_py``) is the readable reference it is tested against spike for spike.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from spikeflow.errors import ConfigError, InputError
from spikeflow.runtime import clockfree_kernel as K
from spikeflow.runtime.clockfree_py import (
    CUBALI,
    CUBALIF,
    IF,
    LI,
    LIF,
    ClockFreeSetup,
    PyClockFreeEngine,
    cascade_error,
    runaway_error,
)

__all__ = ["ClockFreeEngine", "PyClockFreeEngine"]


class ClockFreeEngine(ClockFreeSetup):
    """Run a NIR graph event by event in continuous time (seconds), compiled.

    Args:
        graph: ``nir.NIRGraph`` or ``CompiledGraph``.
        spike_area: seconds; area of one spike's Dirac impulse (default: the graph's dt).
        xtol: bisection tolerance in seconds for CubaLIF crossings.
        recurrent_delay: seconds between a spike and its arrival through a recurrent edge.
        impl: ``"numba"`` (default) or ``"python"`` (returns a ``PyClockFreeEngine``, the reference).
    """

    def __new__(cls, *args, impl: str = "numba", **kwargs):
        if impl == "python":
            return PyClockFreeEngine(*args, **kwargs)
        if impl != "numba":
            raise ConfigError(f"runtime: clockfree impl must be 'numba' or 'python', got {impl!r}")
        return super().__new__(cls)

    def __init__(self, graph, spike_area: Optional[float] = None, xtol: float = 1e-9,
                 recurrent_delay: float = 0.0, dt: Optional[float] = None, impl: str = "numba"):
        super().__init__(graph, spike_area, xtol, recurrent_delay, dt)
        self._tables()
        self._caps = {"rec": 4096, "ff": 256, "fp": 4 * self.n, "dq": 256, "dp": 4 * self.n}
        self._s = self._alloc(1)
        self.reset()

    # ------------------------------------------------------------------ set-up
    def _tables(self):
        pops = self.pops
        P = len(pops)
        offs = np.concatenate([[0], np.cumsum([p["size"] for p in pops])]).astype(np.int64)
        self.offsets = offs
        self.n = n = int(offs[-1])
        self.limit = 1000 + 100 * n  # spike groups delivered at one instant before we call it a cascade
        pi = np.zeros((P, K.N_PI), dtype=np.int64)
        pf = np.ones(P)
        nf = np.zeros((K.N_NF, n))
        nf[K.F_TAU_M] = nf[K.F_TAU_S] = 1.0
        rows = {"r": K.F_R, "tau_mem": K.F_TAU_M, "tau_syn": K.F_TAU_S, "w_in": K.F_W_IN, "v_leak": K.F_V_LEAK,
                "v_th": K.F_V_TH, "v_reset": K.F_V_RESET, "drive": K.F_DRIVE}
        kr, parts_ptr, parts_idx, parts_dat = [], [], [], []
        n_ptr = n_nz = 0
        for p, pop in enumerate(pops):
            lo, hi, kind, prm = offs[p], offs[p + 1], pop["kind"], pop["prm"]
            for key, row in rows.items():
                if key in prm:
                    nf[row, lo:hi] = prm[key]
            r, tau, th = nf[K.F_R, lo:hi], nf[K.F_TAU_M, lo:hi], nf[K.F_V_TH, lo:hi]
            drive = nf[K.F_DRIVE, lo:hi]
            uniform = kind in (LIF, LI) and hi > lo and bool(np.all(tau == tau[0]))
            if kind in (LIF, LI):
                nf[K.F_VINF, lo:hi] = nf[K.F_V_LEAK, lo:hi] + r * drive
                nf[K.F_JUMP, lo:hi] = r * self.q / tau
            if kind == LIF:
                nf[K.F_CROSS, lo:hi] = nf[K.F_VINF, lo:hi] > th
            elif kind == IF:
                nf[K.F_CROSS, lo:hi] = r * drive > 0
            elif kind == CUBALIF:
                nf[K.F_CROSS, lo:hi] = 1.0
            if kind in (CUBALIF, CUBALI):
                nf[K.F_EQUAL, lo:hi] = prm["equal"]
            pf[p] = tau[0] if uniform else 1.0
            k_lo = len(kr)
            for dst, m, delayed in self.proj.get(p, ()):
                dense = m.nnz == m.shape[0] * m.shape[1] and np.array_equal(
                    m.indices, np.tile(np.arange(m.shape[1]), m.shape[0]))
                exact32 = bool(np.all(m.data.astype(np.float32) == m.data))
                kr.append((dst, int(delayed), n_ptr, int(dense), int(exact32)))
                parts_ptr.append(m.indptr.astype(np.int64) + n_nz)
                parts_idx.append(m.indices.astype(np.int64))
                parts_dat.append(m.data.astype(np.float64))
                n_ptr += m.indptr.size
                n_nz += m.nnz
            any_cross = bool(nf[K.F_CROSS, lo:hi].any())
            pi[p] = (lo, hi - lo, kind, pop["reset"], int(pop["spiking"]), int(uniform), k_lo, len(kr), any_cross)

        def cat(parts, dtype):
            return np.ascontiguousarray(np.concatenate(parts), dtype=dtype) if parts else np.zeros(1, dtype)

        self.pi, self.pf, self.nf = pi, pf, nf
        self.kr = np.array(kr, dtype=np.int64).reshape(-1, K.N_KR)
        self.indptr, self.indices, self.data = cat(parts_ptr, np.int64), cat(parts_idx, np.int64), cat(parts_dat, float)
        self.data32 = self.data.astype(np.float32)
        outs = list(self.graph.outputs)
        self.out_names = outs
        self.out_pop = np.array([self.plan.output_pop[o] for o in outs], dtype=np.int64)
        self.out_col = np.concatenate([[0], np.cumsum([pops[p]["size"] for p in self.out_pop])]).astype(np.int64)

    def _alloc(self, b: int, caps: Optional[dict] = None) -> dict:
        c = caps or self._caps
        n, P = self.n, len(self.pops)
        i64 = np.int64
        return {
            "st": np.zeros((b, 4, n)), "count": np.zeros((b, n), i64), "tref": np.zeros((b, P)),
            "counters": np.zeros((b, P, 3), i64), "si": np.zeros((b, K.N_SI), i64), "sf": np.zeros((b, 2)),
            "acc": np.zeros((b, n)), "mark": np.zeros((b, n), np.bool_), "tl": np.zeros((b, n), i64),
            "tw": np.zeros((b, n)), "abv": np.zeros((b, n), i64), "ff": np.zeros((b, c["ff"], 3), i64),
            "fp": np.zeros((b, c["fp"]), i64), "rec_t": np.zeros((b, c["rec"])), "rec_n": np.zeros((b, c["rec"]), i64),
            "h_t": np.zeros((b, n)), "h_s": np.zeros((b, n), i64), "h_id": np.zeros((b, n), i64),
            "h_pos": np.full((b, n), -1, i64), "dq_t": np.zeros((b, c["dq"])), "dq_i": np.zeros((b, c["dq"], 4), i64),
            "dp": np.zeros((b, c["dp"]), i64),
        }

    def _grow(self, status: int) -> None:
        if status == K.FULL_REC:
            self._caps["rec"] *= 2
        elif status == K.FULL_FIFO:
            self._caps["ff"] *= 2
            self._caps["fp"] *= 2
        else:
            self._caps["dq"] *= 2
            self._caps["dp"] *= 2

    def _raise(self, s: dict, b: int, status: int) -> None:
        if status == K.RUNAWAY:
            raise runaway_error(self.pops[int(s["si"][b, K.I_ERR_POP])]["name"], float(s["sf"][b, K.F_ERR_T]))
        raise cascade_error(float(s["sf"][b, K.F_ERR_T]))

    _STATE = ("st", "count", "tref", "counters", "si", "sf", "h_t", "h_s", "h_id", "h_pos")

    # ------------------------------------------------------------------ driving
    def reset(self) -> None:
        s = self._s
        K.reset_state(self.pi, self.pf, self.nf, s["st"][0], s["count"][0], s["tref"][0], s["counters"][0],
                      s["si"][0], s["sf"][0], s["h_t"][0], s["h_s"][0], s["h_id"][0], s["h_pos"][0], self.xtol,
                      s["tl"][0])

    @property
    def now(self) -> float:
        return float(self._s["sf"][0, K.F_NOW])

    def _call(self, s, b, times, idx, val, until, samples, out):
        return K.advance(times, idx, val, until, samples, out, self.plan.input_pop, self.recurrent_delay,
                         self.limit, self.xtol, self.q, self.pi, self.pf, self.nf, self.kr, self.indptr,
                         self.indices, self.data, self.data32, self.out_pop, self.out_col, s["st"][b], s["count"][b],
                         s["tref"][b], s["counters"][b], s["si"][b], s["sf"][b], s["acc"][b], s["mark"][b],
                         s["tl"][b], s["tw"][b], s["abv"][b], s["ff"][b], s["fp"][b], s["rec_t"][b], s["rec_n"][b],
                         s["h_t"][b], s["h_s"][b], s["h_id"][b], s["h_pos"][b], s["dq_t"][b], s["dq_i"][b],
                         s["dp"][b])

    def advance(self, times_s, idx, val=None, until: Optional[float] = None, sample_times=None):
        """Process input events (seconds, flat input index, value) in time order up to ``until``.

        Returns readout samples ``[len(sample_times), n_out]`` per Output node, taken at each
        sample time after every input event strictly before it.
        """
        times_s, idx, val = self._check_input(times_s, idx, val)
        until = float(until) if until is not None else (float(times_s[-1]) if times_s.size else self.now)
        samples = np.ascontiguousarray(sample_times if sample_times is not None else [], dtype=np.float64)
        return self._advance(times_s, idx, val, until, samples, from_rest=False)

    def _advance(self, times_s, idx, val, until, samples, from_rest: bool):
        s = self._s
        if not from_rest:
            saved = {k: s[k].copy() for k in self._STATE}
            dq = (s["dq_t"].copy(), s["dq_i"].copy(), s["dp"].copy())
        while True:
            out = np.zeros((samples.size, int(self.out_col[-1])))
            status = self._call(s, 0, times_s, idx, val, until, samples, out)
            if status == K.OK:
                break
            if status in (K.RUNAWAY, K.CASCADE):
                self._raise(s, 0, status)
            # a buffer ran full: restore the state from before this call (or from rest), enlarge, run again
            self._grow(status)
            if from_rest:
                self._s = s = self._alloc(1)
                self.reset()
                continue
            new = self._alloc(1)
            for k in self._STATE:
                new[k][...] = saved[k]
            n_rec = int(saved["si"][0, K.I_REC])
            new["rec_t"][:, :n_rec], new["rec_n"][:, :n_rec] = s["rec_t"][:, :n_rec], s["rec_n"][:, :n_rec]
            q, d = min(dq[0].shape[1], new["dq_t"].shape[1]), min(dq[2].shape[1], new["dp"].shape[1])
            new["dq_t"][:, :q], new["dq_i"][:, :q], new["dp"][:, :d] = dq[0][:, :q], dq[1][:, :q], dq[2][:, :d]
            self._s = s = new
        return {name: out[:, self.out_col[o]:self.out_col[o + 1]] for o, name in enumerate(self.out_names)}

    # ------------------------------------------------------------------ results
    def _spikes(self, s, b) -> Dict[str, tuple]:
        n_rec = int(s["si"][b, K.I_REC])
        t, n = s["rec_t"][b, :n_rec], s["rec_n"][b, :n_rec]
        pop = np.searchsorted(self.offsets, n, side="right") - 1
        out = {}
        for p, pp in enumerate(self.pops):
            if pp["spiking"]:
                sel = pop == p
                out[pp["name"]] = (t[sel].copy(), n[sel] - self.offsets[p])
        return out

    def spike_times(self, node: str):
        """(times in seconds, flat neuron index) of every spike of ``node`` since ``reset``."""
        p = self._pop_index(node)
        if not self.pops[p]["spiking"]:
            return np.zeros(0), np.zeros(0, dtype=np.int64)
        return self._spikes(self._s, 0)[node]

    @property
    def counters(self) -> Dict[str, Dict[str, int]]:
        """Synaptic operations and neuron updates per target node, spikes per node (and input events)."""
        c, si = self._s["counters"][0], self._s["si"][0]
        out = {"synaptic_ops": {}, "neuron_updates": {}, "spikes": {}}
        if si[K.I_INPUT]:
            out["spikes"]["input"] = int(si[K.I_INPUT])
        for p, pop in enumerate(self.pops):
            for j, key in enumerate(("synaptic_ops", "neuron_updates", "spikes")):
                if c[p, j]:
                    out[key][pop["name"]] = int(c[p, j])
        return out

    def run_events(self, times_s, idx, val=None, until=None):
        """From rest: process all input events; returns ``{node: (times, index)}`` for spiking nodes."""
        self.reset()
        times_s, idx, val = self._check_input(times_s, idx, val)
        until = float(until) if until is not None else (float(times_s[-1]) if times_s.size else 0.0)
        self._advance(times_s, idx, val, until, np.zeros(0), from_rest=True)
        return self._spikes(self._s, 0)

    def run_events_batch(self, samples: Sequence, until=None) -> List[Dict[str, tuple]]:
        """Independent samples, each from rest with its own queue, in parallel (numba threads).

        ``samples``: a sequence of ``(times_s, idx)`` or ``(times_s, idx, val)``; ``until``: one time or
        one per sample (default: each sample's last event). Returns ``run_events``' answer per sample.
        """
        checked = []
        for j, smp in enumerate(samples):
            if len(smp) not in (2, 3):
                raise InputError(f"runtime: sample {j} must be (times_s, idx) or (times_s, idx, val)")
            checked.append(self._check_input(smp[0], smp[1], smp[2] if len(smp) == 3 else None, now=0.0))
        n_b = len(checked)
        if until is None:
            ends = np.array([t[-1] if t.size else 0.0 for t, _, _ in checked])
        else:
            ends = np.broadcast_to(np.asarray(until, dtype=np.float64), (n_b,)).copy()
        ptr = np.concatenate([[0], np.cumsum([t.size for t, _, _ in checked])]).astype(np.int64)
        cat = [np.concatenate([c[j] for c in checked]) if n_b else np.zeros(0) for j in range(3)]
        times, idx, val = cat[0].astype(np.float64), cat[1].astype(np.int64), cat[2].astype(np.float64)
        results: List[Optional[dict]] = [None] * n_b
        todo = np.arange(n_b, dtype=np.int64)
        while todo.size:
            s = self._alloc(n_b)
            status = np.zeros(n_b, dtype=np.int64)
            K.run_batch(ptr, times, idx, val, ends, self.plan.input_pop, self.recurrent_delay, self.limit, self.xtol,
                        self.q, self.pi, self.pf, self.nf, self.kr, self.indptr, self.indices, self.data, self.data32,
                        self.out_pop, self.out_col, s["st"], s["count"], s["tref"], s["counters"], s["si"], s["sf"],
                        s["acc"], s["mark"], s["tl"], s["tw"], s["abv"], s["ff"], s["fp"], s["rec_t"], s["rec_n"],
                        s["h_t"], s["h_s"], s["h_id"], s["h_pos"], s["dq_t"], s["dq_i"], s["dp"], status, todo)
            for b in todo:
                if status[b] in (K.RUNAWAY, K.CASCADE):
                    self._raise(s, b, int(status[b]))
            for b in todo:
                if status[b] == K.OK:
                    results[b] = self._spikes(s, b)
            full = todo[status[todo] != K.OK]
            for st in set(int(v) for v in status[full]):
                self._grow(st)
            todo = full
        return results
