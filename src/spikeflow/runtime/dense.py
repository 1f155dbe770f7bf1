"""Dense clock-driven engine: every neuron, every step, in torch.

Neuron math comes only from ``spikeflow.neurons`` (each model's reference ``step``);
synaptic nodes are torch ops (``graph.apply_linear``). An acyclic graph runs node by
node over a whole chunk (synaptic layers fold time into the batch); a graph with
recurrent edges runs step by step.
"""

from __future__ import annotations

from functools import partial
from typing import Dict, Optional

import numpy as np
import torch

from spikeflow.neurons import cuba, if_, lif
from spikeflow.neurons.base import check_reset_timing
from spikeflow.runtime.graph import (
    apply_linear,
    compile_graph,
    constant_drive,
    dense_macs,
    neuron_model,
    neuron_params,
)
from spikeflow.runtime.result import RunResult, as_time_major


class DenseEngine:
    """Run a NIR graph clock-driven.

    Args:
        graph: a ``nir.NIRGraph`` or a ``CompiledGraph``.
        dt: step in seconds (default: the graph's metadata ``dt``).
        dtype: torch dtype of the state (float64 makes engines comparable bit for bit).
        spike_value: what one output spike transmits downstream (1.0; ``q / dt`` makes a
            spike a charge of area ``q`` for ``dt``-convergence studies).
        reset_timing: ``"step"`` (default): reset at the end of the step that crossed threshold,
            the discrete-time model (docs/architecture.md) that trained models and NIR export use. ``"crossing"``:
            the reset is applied at the threshold-crossing time located inside the step (Hansel
            et al. 1998), so spike trains converge to the clock-free engine's spike by spike as
            dt -> 0; the math is each model's ``step_crossing`` in ``spikeflow.neurons`` (CubaLIF:
            linear interpolation; LIF/IF: exact where the constant bias drive crosses inside the
            step, unchanged where an input spike's jump does). Spikes then also carry their time
            inside the step to CubaLIF/CubaLI targets: each synaptic path carries, beside the
            input ``x``, the lag moment ``y`` (the same linear op, without bias, applied to the
            spikes times their lag - 1/2; ``neurons.cuba``'s module doc), which moves a spike's
            delivery from the step's middle to its crossing time to first order.
    """

    name = "dense"

    def __init__(self, graph, dt: Optional[float] = None, dtype=torch.float64, spike_value: float = 1.0,
                 reset_timing: str = "step"):
        check_reset_timing(reset_timing, "DenseEngine")
        self.graph = compile_graph(graph, dt)
        self.dt = self.graph.require_dt()
        self.dtype = dtype
        self.spike_value = float(spike_value)
        self.reset_timing = reset_timing
        self._params = {n: neuron_params(self.graph.nodes[n], self.dt, dtype) for n in self.graph.neuron_nodes}
        self._models = {n: neuron_model(self.graph.nodes[n]) for n in self.graph.neuron_nodes}
        self._steps = self._step_functions()
        self.reset()

    def _step_functions(self):
        """Per neuron node: ``step(x, y, state, params) -> (out, lag, state)`` for this
        ``reset_timing``: ``y`` the input's lag moment (None: none), ``lag`` the spikes' lags
        (None: spikes at the step's end, "step" mode, or a non-spiking node)."""
        steps = {}
        drive = constant_drive(self.graph) if self.reset_timing == "crossing" else {}
        for n in self.graph.neuron_nodes:
            kind = self.graph.nodes[n].kind
            if self.reset_timing != "crossing":
                steps[n] = _no_lag(self._models[n].step)
            elif kind == "cubalif":
                steps[n] = _cuba_crossing
            elif kind == "cubali":
                steps[n] = _cuba_li
            elif kind in ("lif", "if"):
                d = torch.as_tensor(drive[n], dtype=self.dtype)
                steps[n] = partial(_jump_crossing, lif.step_crossing if kind == "lif" else if_.step_crossing, d)
            else:  # LI: inputs are jumps at the step's end, lags not modelled
                steps[n] = _no_lag(self._models[n].step)
        return steps

    def reset(self, batch: int = 1) -> None:
        self.batch = batch
        self.t = 0
        self._state: Dict[str, object] = {}
        self._prev: Dict[str, torch.Tensor] = {}  # previous step's outputs of neuron nodes (delayed edges)
        self._prev_lag: Dict[str, Optional[torch.Tensor]] = {}  # and their lag moments (crossing mode)
        for n in self.graph.neuron_nodes:
            nd = self.graph.nodes[n]
            self._state[n] = self._models[n].init_state((batch, *nd.out_shape), self._params[n], dtype=self.dtype)
            self._prev[n] = torch.zeros(1, batch, *nd.out_shape, dtype=self.dtype)
            self._prev_lag[n] = None
        self.counters = {"neuron_updates": {}, "spikes": {}, "synaptic_ops": {}}

    def run(self, x, record: bool = False) -> RunResult:
        """Run ``x [T, B, *input_shape]`` from rest."""
        x = as_time_major(x, self.graph, self.dtype)
        self.reset(x.shape[1])
        return self.advance(x, record=record)

    def advance(self, x, record: bool = False) -> RunResult:
        """Continue from the current state with ``x [t, B, *input_shape]``."""
        x = as_time_major(x, self.graph, self.dtype)
        if x.shape[1] != self.batch:
            self.reset(x.shape[1])
        if self.graph.cyclic:
            parts = [self._chunk(x[k:k + 1], record) for k in range(x.shape[0])]
            out = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
            spikes = {k: np.concatenate([p[1][k] for p in parts]) for k in parts[0][1]} if record else {}
        else:
            out, spikes = self._chunk(x, record)
        self.t += x.shape[0]
        return RunResult(out, spikes, self._counter_totals(), self.dt)

    def _chunk(self, x: torch.Tensor, record: bool):
        g = self.graph
        t_len, b = x.shape[:2]
        vals: Dict[str, torch.Tensor] = {}
        lags: Dict[str, Optional[torch.Tensor]] = {}  # lag moments (crossing mode; None: none)
        spikes = {}
        for name in g.order:
            nd = g.nodes[name]
            if nd.kind == "input":
                vals[name], lags[name] = x, None
                continue
            total = total_lag = None
            sources = [(vals[p], lags[p]) for p in nd.inputs] + [(self._prev[p], self._prev_lag[p]) for p in nd.delayed]
            for v, lv in sources:
                v = v.reshape(t_len, b, *nd.in_shape)
                total = v if total is None else total + v
                if lv is not None:
                    lv = lv.reshape(t_len, b, *nd.in_shape)
                    total_lag = lv if total_lag is None else total_lag + lv
            if nd.is_neuron:
                outs, out_lags = [], []
                state, params, step = self._state[name], self._params[name], self._steps[name]
                for k in range(t_len):
                    o, lag, state = step(total[k], None if total_lag is None else total_lag[k], state, params)
                    outs.append(o)
                    out_lags.append(lag)
                self._state[name] = state
                o = torch.stack(outs)
                lag = None
                if nd.spiking:
                    if record:
                        spikes[name] = o.numpy().copy()
                    self._count(name, nd.size * t_len * b, float(o.sum()))
                    o = o * self.spike_value if self.spike_value != 1.0 else o
                    if out_lags[0] is not None:  # each spike's value times (lag - 1/2)
                        lag = o * (torch.stack(out_lags) - 0.5)
                else:
                    self._count(name, nd.size * t_len * b, 0.0)
                vals[name], lags[name] = o, lag
                if name in self._prev:
                    self._prev[name] = o[-1:]
                    self._prev_lag[name] = None if lag is None else lag[-1:]
            elif nd.kind == "output":
                vals[name], lags[name] = total, total_lag
            else:
                y = apply_linear(nd, total.reshape(t_len * b, *nd.in_shape))
                ops = self.counters["synaptic_ops"]
                ops[name] = ops.get(name, 0) + dense_macs(nd) * t_len * b
                vals[name] = y.reshape(t_len, b, *nd.out_shape)
                lags[name] = None if total_lag is None else apply_linear(
                    nd, total_lag.reshape(t_len * b, *nd.in_shape), with_bias=False).reshape(t_len, b, *nd.out_shape)
        outs = {name: vals[name].numpy().copy() for name in g.outputs}
        return outs, spikes

    def _count(self, name, updates, spikes):
        c = self.counters
        c["neuron_updates"][name] = c["neuron_updates"].get(name, 0) + updates
        c["spikes"][name] = c["spikes"].get(name, 0) + int(spikes)

    def _counter_totals(self):
        return {k: dict(v) for k, v in self.counters.items()}


def _no_lag(step):
    """A reference ``step`` in the ``(x, y, state, params) -> (out, lag, state)`` form (``y`` ignored)."""
    def run(x, y, state, params):
        out, state = step(x, state=state, params=params)
        return out, None, state
    return run


def _cuba_crossing(x, y, state, params):
    z, state, lag = cuba.step_crossing(x, state, params, lag_input=y, return_lag=True)
    return z, lag, state


def _cuba_li(x, y, state, params):
    v, state = cuba.step_li(x, state, params, lag_input=y)
    return v, None, state


def _jump_crossing(step_crossing, drive, x, y, state, params):
    """LIF/IF in crossing mode: spikes carry their lag; input lags are ignored (jumps at the end)."""
    z, state, lag = step_crossing(x, drive, state, params, return_lag=True)
    return z, lag, state
