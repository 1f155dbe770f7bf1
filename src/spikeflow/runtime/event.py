"""Event-driven engine: stepped by ``dt``, but work is done only where spikes happen.

For each spike, its weight row (CSR) or its convolution footprint (computed from the
kernel) is added to its targets; only neurons that received input, or that could fire on
their own, are updated; the rest decay lazily from their last update step. Counts
synaptic events, neuron updates and spikes per layer. Spikes are identical to the dense
engine's for the same ``dt`` (up to floating-point summation order; use float64).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from spikeflow.errors import ShapeError
from spikeflow.neurons.base import check_reset_timing
from spikeflow.runtime.event_kernel import run_steps
from spikeflow.runtime.event_plan import build_plan
from spikeflow.runtime.graph import compile_graph
from spikeflow.runtime.result import RunResult, as_time_major_numpy


class EventEngine:
    """Run a NIR graph event-driven (numba). One sample at a time; ``run`` loops over the batch.

    Args:
        graph: a ``nir.NIRGraph`` or ``CompiledGraph``.
        dt: step in seconds (default: the graph's metadata ``dt``).
        spike_value: what one spike transmits downstream (see ``DenseEngine``).
        reset_timing: ``"step"`` (default) or ``"crossing"``: when a spiking neuron is reset (see
            ``DenseEngine``; both engines give the same spikes in either mode).
    """

    name = "event"

    def __init__(self, graph, dt: Optional[float] = None, spike_value: float = 1.0, reset_timing: str = "step"):
        check_reset_timing(reset_timing, "EventEngine")
        self.graph = compile_graph(graph, dt)
        self.dt = self.graph.require_dt()
        self.spike_value = float(spike_value)
        self.reset_timing = reset_timing
        self.plan = build_plan(self.graph, self.dt)
        self._act0 = None
        self.reset()

    def reset(self, batch: int = 1) -> None:
        pl = self.plan
        n, m = pl.n_neurons, max(pl.max_stage, pl.n_neurons)
        n_pop = len(pl.pop_names)
        self.t = 0
        self.v = pl.v0.copy()
        self.isyn = np.zeros(n)
        self.last = np.full(n, -1, dtype=np.int64)
        self.active = np.zeros(n, dtype=np.bool_)
        self.act_list = np.zeros(n, dtype=np.int64)
        self.act_n = np.zeros(n_pop, dtype=np.int64)
        if self._act0 is None:
            self._init_active()
            self._act0 = (self.act_list.copy(), self.act_n.copy())
        else:
            self.act_list[:], self.act_n[:] = self._act0
        self.cur_idx, self.cur_val = np.zeros(n, dtype=np.int64), np.zeros(n)
        self.prev_idx, self.prev_val = np.zeros(n, dtype=np.int64), np.zeros(n)
        self.cur_lag, self.prev_lag, self.inp_lag = np.zeros(n), np.zeros(n), np.zeros(n)  # crossing mode
        self.cur_n, self.prev_n = np.zeros(n_pop, dtype=np.int64), np.zeros(n_pop, dtype=np.int64)
        self.inp, self.markn, self.touch = np.zeros(n), np.zeros(n, dtype=np.bool_), np.zeros(n, dtype=np.int64)
        self.buf, self.markb, self.tbuf = np.zeros(m), np.zeros(m, dtype=np.bool_), np.zeros(m, dtype=np.int64)
        self.a_idx, self.a_val = np.zeros(m, dtype=np.int64), np.zeros(m)
        self.b_idx, self.b_val = np.zeros(m, dtype=np.int64), np.zeros(m)
        self.counters = np.zeros((n_pop, 3), dtype=np.int64)
        self._output_meta = {}  # advance_output: per Output node (size, trace column, record table, n_rec)
        self._output_bufs = {}  # advance_output: reusable kernel buffers per chunk length
        self.epoch = getattr(self, "epoch", -1) + 1  # OutputStepper rebinds the state after a reset

    def _init_active(self):
        """Neurons that fire from rest without input (bias drive above threshold)."""
        pl = self.plan
        for p, row in enumerate(pl.pop_i):
            off, size, kind = int(row[0]), int(row[1]), int(row[2])
            if kind not in (0, 1, 3):
                continue
            prm = pl.prm[off:off + size]
            r, v_leak, v_th, drive = prm[:, 2], prm[:, 3], prm[:, 4], prm[:, 7]
            if kind == 1:
                act = (r * drive > 0) | (self.v[off:off + size] > v_th)
            else:
                w_in = prm[:, 6] if kind == 3 else 1.0
                act = v_leak + r * w_in * drive > v_th - 1e-9 * (1 + np.abs(v_th))
                act |= self.v[off:off + size] > v_th
            idx = np.flatnonzero(act)
            self.act_list[off:off + idx.size] = idx
            self.act_n[p] = idx.size

    def run(self, x, record: bool = False) -> RunResult:
        """Run ``x [T, B, *input_shape]``, each sample from rest."""
        x = as_time_major_numpy(x, self.graph)
        results = []
        for b in range(x.shape[1]):
            self.reset()
            results.append(self._advance_dense(x[:, b:b + 1], record))
        outs = {k: np.concatenate([r.outputs[k] for r in results], axis=1) for k in results[0].outputs}
        spikes = {k: np.concatenate([r.spikes[k] for r in results], axis=1) for k in results[0].spikes}
        counters = {}
        for r in results:
            for c, per in r.counters.items():
                d = counters.setdefault(c, {})
                for k, val in per.items():
                    d[k] = d.get(k, 0) + val
        return RunResult(outs, spikes, counters, self.dt)

    def advance(self, x, record: bool = False) -> RunResult:
        """Continue one sample from its current state with ``x [t, 1, *input_shape]``."""
        x = as_time_major_numpy(x, self.graph)
        if x.shape[1] != 1:
            raise ShapeError(f"EventEngine.advance runs one sample: input must be [t, 1, ...], got {x.shape}")
        return self._advance_dense(x, record)

    def _advance_dense(self, x, record):
        flat = x.reshape(x.shape[0], -1)
        steps, idx = np.nonzero(flat)
        in_ptr = np.searchsorted(steps, np.arange(x.shape[0] + 1)).astype(np.int64)
        return self.advance_sparse(x.shape[0], in_ptr, idx.astype(np.int64), flat[steps, idx].astype(np.float64),
                                   record)

    def advance_sparse(self, n_steps: int, in_ptr, in_idx, in_val, record: bool = False,
                       counters: bool = True) -> RunResult:
        """Advance ``n_steps`` with input given as CSR over steps (``in_ptr [n_steps + 1]``)."""
        pl = self.plan
        pop_i, n_rec = self._record_table(bool(record))
        cap = max(16, n_steps * n_rec)  # at most one spike per neuron and step: never overflows
        trace = np.zeros((n_steps, max(pl.n_trace, 1)))
        rec_t, rec_g, rec_n = np.zeros(cap, dtype=np.int64), np.zeros(cap, dtype=np.int64), np.zeros(1, np.int64)
        self._run_steps(n_steps, in_ptr, in_idx, in_val, pop_i, trace, rec_t, rec_g, rec_n)
        t0 = self.t
        self.t += n_steps
        rec_t, rec_g = rec_t[:rec_n[0]] - t0, rec_g[:rec_n[0]]
        spikes = {}
        for p, name in enumerate(pl.pop_names):
            if pop_i[p, 3] and pop_i[p, 4] < 0 and pop_i[p, 2] != 6:
                spikes[name] = self._dense_spikes(p, rec_t, rec_g, n_steps)
        outputs = {}
        for out_name, p in pl.output_pop.items():
            off, size, _, _, col, _ = pl.pop_i[p]
            shape = self.graph.nodes[out_name].out_shape
            if col >= 0:
                arr = trace[:, col:col + size]
            else:
                arr = spikes[pl.pop_names[p]].reshape(n_steps, size) * self.spike_value
            outputs[out_name] = arr.reshape(n_steps, 1, *shape).copy()
        spikes = {k: s for k, s in spikes.items() if record or k in self.graph.nodes and
                  self.graph.nodes[k].is_neuron}
        return RunResult(outputs, spikes if record else {}, self.counter_dict() if counters else {}, self.dt)

    def _run_steps(self, n_steps, in_ptr, in_idx, in_val, pop_i, trace, rec_t, rec_g, rec_n) -> None:
        """One call of the numba kernel over ``n_steps`` on this engine's state."""
        pl = self.plan
        run_steps(
            self.t, n_steps, in_ptr, in_idx, in_val, self.spike_value,
            pop_i, pl.prm, pl.proj_i, pl.pop_proj_ptr, pl.stage_i, pl.indptr, pl.indices, pl.data, pl.weights,
            self.v, self.isyn, self.last, self.active, self.act_list, self.act_n,
            self.cur_idx, self.cur_val, self.cur_lag, self.cur_n, self.prev_idx, self.prev_val, self.prev_lag,
            self.prev_n, self.inp, self.inp_lag, self.markn, self.touch, self.buf, self.markb, self.tbuf,
            self.a_idx, self.a_val, self.b_idx, self.b_val,
            trace, rec_t, rec_g, rec_n, self.counters, pl.has_delay, self.reset_timing == "crossing",
        )

    def advance_output(self, n_steps: int, in_ptr, in_idx, in_val, output: str) -> np.ndarray:
        """``advance_sparse`` for one Output node, without counters or a ``RunResult``: the
        ``[n_steps, n_out]`` output (``Stream``'s per-chunk path; buffers are reused)."""
        pl = self.plan
        if output not in self._output_meta:
            p = pl.output_pop[output]
            pop_i, n_rec = self._record_table(False)
            self._output_meta[output] = (int(pl.pop_i[p, 1]), int(pl.pop_i[p, 4]), pop_i, n_rec)
        size, col, pop_i, n_rec = self._output_meta[output]
        if col < 0 or n_rec:  # a spiking output: its spikes are recorded
            res = self.advance_sparse(n_steps, in_ptr, in_idx, in_val, counters=False)
            return res.outputs[output].reshape(n_steps, size)
        if n_steps not in self._output_bufs:
            self._output_bufs[n_steps] = (np.empty((n_steps, max(pl.n_trace, 1))), np.empty(16, np.int64),
                                          np.empty(16, np.int64), np.zeros(1, np.int64))
        trace, rec_t, rec_g, rec_n = self._output_bufs[n_steps]
        self._run_steps(n_steps, in_ptr, in_idx, in_val, pop_i, trace, rec_t, rec_g, rec_n)
        self.t += n_steps
        return trace[:, col:col + size].copy()

    def output_stepper(self, output: str, n_steps: int) -> OutputStepper:
        """A fast ``advance_output`` for a caller that always advances ``n_steps`` (see ``OutputStepper``)."""
        return OutputStepper(self, output, n_steps)

    def _record_table(self, record: bool):
        """Population table with the record flags set (cached): spikes of outputs, or of every node."""
        cache = self.__dict__.setdefault("_rec_tables", {})
        if record not in cache:
            pl = self.plan
            pop_i = pl.pop_i.copy()
            spiking_out = set(pl.output_pop.values())
            for p in range(len(pop_i)):
                pop_i[p, 3] = 1 if (record or p in spiking_out) else 0
            n_rec = int(sum(pop_i[p, 1] for p in range(len(pop_i)) if pop_i[p, 3] and pop_i[p, 4] < 0))
            cache[record] = (pop_i, n_rec)
        return cache[record]

    def _dense_spikes(self, p, rec_t, rec_g, n_steps):
        off, size = int(self.plan.pop_i[p, 0]), int(self.plan.pop_i[p, 1])
        sel = (rec_g >= off) & (rec_g < off + size)
        arr = np.zeros((n_steps, size))
        arr[rec_t[sel], rec_g[sel] - off] = 1.0
        shape = self.graph.nodes[self.plan.pop_names[p]].out_shape
        return arr.reshape(n_steps, 1, *shape)

    def counter_dict(self):
        """Totals since ``reset``: ``synaptic_ops``, ``neuron_updates`` and ``spikes`` per node."""
        names = self.plan.pop_names
        return {
            "synaptic_ops": {n: int(self.counters[p, 0]) for p, n in enumerate(names) if self.counters[p, 0]},
            "neuron_updates": {n: int(self.counters[p, 1]) for p, n in enumerate(names)
                               if self.plan.pop_i[p, 2] != 6},
            "spikes": {n: int(self.counters[p, 2]) for p, n in enumerate(names)},
        }


class OutputStepper:
    """``advance_output`` at a fixed ``n_steps`` for a per-decision caller (batch 1, latency-bound).

    Calls the kernel's compiled overload directly with the engine's arrays bound once (after each
    ``reset``), instead of having numba's dispatcher type-check ~45 arguments every call; the
    trace is returned as a view of a reused buffer (valid until the next call). The same kernel,
    so the same state, outputs and counters as ``advance_output``. ``in_ptr``/``in_idx`` must be
    C-contiguous int64 and ``in_val`` float64 1-D arrays: they are not checked.
    """

    def __init__(self, engine: EventEngine, output: str, n_steps: int):
        pl = engine.plan
        if output not in pl.output_pop:
            raise ShapeError(f"OutputStepper: the graph has no Output node {output!r}")
        p = pl.output_pop[output]
        self.engine, self.output = engine, output
        self.n_steps = int(n_steps)
        self.size, col = int(pl.pop_i[p, 1]), int(pl.pop_i[p, 4])
        self._pop_i, n_rec = engine._record_table(False)
        self.spiking = col < 0 or n_rec > 0  # a spiking output: its spikes are recorded (advance_output)
        self._trace = np.zeros((self.n_steps, max(pl.n_trace, 1)))
        self._view = self._trace[:, col:col + self.size] if col >= 0 else None
        self._rec = (np.empty(16, np.int64), np.empty(16, np.int64), np.zeros(1, np.int64))
        self._epoch = -1
        self._kernel = run_steps
        if not self.spiking:
            self._bind()  # compiles (or loads) the kernel now, not at the first call

    def _bind(self) -> None:
        e, pl = self.engine, self.engine.plan
        self._tail = (e.spike_value, self._pop_i, pl.prm, pl.proj_i, pl.pop_proj_ptr, pl.stage_i, pl.indptr,
                      pl.indices, pl.data, pl.weights,
                      e.v, e.isyn, e.last, e.active, e.act_list, e.act_n,
                      e.cur_idx, e.cur_val, e.cur_lag, e.cur_n, e.prev_idx, e.prev_val, e.prev_lag,
                      e.prev_n, e.inp, e.inp_lag, e.markn, e.touch, e.buf, e.markb, e.tbuf,
                      e.a_idx, e.a_val, e.b_idx, e.b_val,
                      self._trace, *self._rec, e.counters, bool(pl.has_delay), e.reset_timing == "crossing")
        self._epoch = e.epoch
        if self._kernel is run_steps and hasattr(run_steps, "compile"):  # not under NUMBA_DISABLE_JIT
            import numba

            head = (int(e.t), self.n_steps, np.zeros(2, np.int64), np.zeros(1, np.int64), np.zeros(1))
            self._kernel = run_steps.compile(tuple(numba.typeof(a) for a in head + self._tail))

    def __call__(self, in_ptr, in_idx, in_val) -> np.ndarray:
        """Advance ``n_steps`` (input as CSR over steps): the output's ``[n_steps, size]`` trace (a view)."""
        e = self.engine
        if self.spiking:
            return e.advance_output(self.n_steps, in_ptr, in_idx, in_val, self.output)
        if self._epoch != e.epoch:
            self._bind()
        self._kernel(e.t, self.n_steps, in_ptr, in_idx, in_val, *self._tail)
        e.t += self.n_steps
        return self._view
