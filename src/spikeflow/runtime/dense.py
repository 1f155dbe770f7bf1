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
            the discrete model of DESIGN.md that trained models and NIR export use. ``"crossing"``:
            the reset is applied at the threshold-crossing time located inside the step (Hansel
            et al. 1998), so spike trains converge to the clock-free engine's spike by spike as
            dt -> 0; the math is each model's ``step_crossing`` in ``spikeflow.neurons`` (CubaLIF:
            linear interpolation; LIF/IF: exact where the constant bias drive crosses inside the
            step, unchanged where an input spike's jump does).
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
        """Per neuron node: ``step(x, state, params) -> (out, state)`` for this ``reset_timing``."""
        steps = {n: self._models[n].step for n in self.graph.neuron_nodes}
        if self.reset_timing == "crossing":
            drive = constant_drive(self.graph)
            for n in self.graph.neuron_nodes:
                kind = self.graph.nodes[n].kind
                if kind == "cubalif":
                    steps[n] = cuba.step_crossing
                elif kind in ("lif", "if"):
                    d = torch.as_tensor(drive[n], dtype=self.dtype)
                    steps[n] = partial(lif.step_crossing if kind == "lif" else if_.step_crossing, drive=d)
        return steps

    def reset(self, batch: int = 1) -> None:
        self.batch = batch
        self.t = 0
        self._state: Dict[str, object] = {}
        self._prev: Dict[str, torch.Tensor] = {}  # previous step's outputs of neuron nodes (delayed edges)
        for n in self.graph.neuron_nodes:
            nd = self.graph.nodes[n]
            self._state[n] = self._models[n].init_state((batch, *nd.out_shape), self._params[n], dtype=self.dtype)
            self._prev[n] = torch.zeros(1, batch, *nd.out_shape, dtype=self.dtype)
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
        spikes = {}
        for name in g.order:
            nd = g.nodes[name]
            if nd.kind == "input":
                vals[name] = x
                continue
            total = None
            for p in nd.inputs:
                v = vals[p].reshape(t_len, b, *nd.in_shape)
                total = v if total is None else total + v
            for p in nd.delayed:
                v = self._prev[p].reshape(t_len, b, *nd.in_shape)
                total = v if total is None else total + v
            if nd.is_neuron:
                outs = []
                state, params, step = self._state[name], self._params[name], self._steps[name]
                for k in range(t_len):
                    o, state = step(total[k], state=state, params=params)
                    outs.append(o)
                self._state[name] = state
                o = torch.stack(outs)
                if nd.spiking:
                    if record:
                        spikes[name] = o.numpy().copy()
                    self._count(name, nd.size * t_len * b, float(o.sum()))
                    o = o * self.spike_value if self.spike_value != 1.0 else o
                else:
                    self._count(name, nd.size * t_len * b, 0.0)
                vals[name] = o
                if name in self._prev:
                    self._prev[name] = o[-1:]
            elif nd.kind == "output":
                vals[name] = total
            else:
                y = apply_linear(nd, total.reshape(t_len * b, *nd.in_shape))
                ops = self.counters["synaptic_ops"]
                ops[name] = ops.get(name, 0) + dense_macs(nd) * t_len * b
                vals[name] = y.reshape(t_len, b, *nd.out_shape)
        outs = {name: vals[name].numpy().copy() for name in g.outputs}
        return outs, spikes

    def _count(self, name, updates, spikes):
        c = self.counters
        c["neuron_updates"][name] = c["neuron_updates"].get(name, 0) + updates
        c["spikes"][name] = c["spikes"].get(name, 0) + int(spikes)

    def _counter_totals(self):
        return {k: dict(v) for k, v in self.counters.items()}
