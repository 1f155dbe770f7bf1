"""Energy and latency from counted work, and the dense-ANN comparison.

energy  = sum(counts x energy per operation) + static power x run time
latency = per step: the slowest core (its synaptic ops and neuron updates) + the
          longest route of that step (hops x time per hop); run time is the sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

import numpy as np

from spikeflow.hardware.engine import RunResult
from spikeflow.hardware.profiles import DENSE_REFERENCES, ChipProfile
from spikeflow.runtime.graph import dense_macs as node_macs


@dataclass
class CostReport:
    """Energy (joules) and latency (seconds) per inference, from counted work: total, dynamic and
    static energy, latency summed over steps and mean per step, the counts and the energy per kind of work.
    """
    energy_j: float  # per inference (sample)
    dynamic_j: float
    static_j: float
    latency_s: float  # per inference: sum over steps
    step_latency_s: float  # mean per step
    counts: Dict[str, float]  # per inference
    breakdown_j: Dict[str, float]  # per inference


def counts_per_sample(result: RunResult) -> Dict[str, float]:
    B = result.synops.shape[1]
    return {
        "synops": result.synops.sum() / B,
        "updates_active": result.updates_active.sum() / B,
        "updates_inactive": result.updates_inactive.sum() / B,
        "spikes": result.spikes.sum() / B,
        "packets_local": result.packets_local.sum() / B,
        "hops": result.hops.sum() / B,
    }


def step_latency(result: RunResult, profile: ChipProfile) -> np.ndarray:
    """``[T, B]`` seconds: slowest core plus the step's longest route."""
    core_time = (result.synops * profile.t_synop
                 + (result.updates_active + result.updates_inactive) * profile.t_update)
    return core_time.max(axis=2) + result.max_route * profile.t_hop


def chip_cost(result: RunResult, profile: ChipProfile) -> CostReport:
    """Energy (J) and latency (s) per inference of an integer run on ``profile``: counts x energy per
    operation, plus static power x latency (slowest core per step plus its longest route).
    """
    c = counts_per_sample(result)
    breakdown = {
        "synops": c["synops"] * profile.e_synop,
        "updates_active": c["updates_active"] * profile.e_update_active,
        "updates_inactive": c["updates_inactive"] * profile.e_update_inactive,
        "packets_local": c["packets_local"] * profile.e_spike_local,
        "hops": c["hops"] * profile.e_hop,
    }
    lat = step_latency(result, profile)  # [T, B]
    latency = float(lat.sum(axis=0).mean())
    static = profile.static_power * latency
    dynamic = float(sum(breakdown.values()))
    breakdown["static"] = static
    return CostReport(energy_j=dynamic + static, dynamic_j=dynamic, static_j=static, latency_s=latency,
                      step_latency_s=float(lat.mean()), counts=c, breakdown_j=breakdown)


def dense_macs(compiled, steps: int = 1) -> int:
    """MACs of the network on dense hardware: every synapse once per pass.

    ``steps=1`` is the network as an ANN (one pass per inference); ``steps=T`` is the SNN
    run clock-driven on dense hardware (every synapse every step). Each synaptic node counts as a
    dense accelerator computes it (a convolution: its kernel once per output neuron, not the zeros of
    its dense matrix; pooling: its window per output).
    """
    return sum(layer_macs(compiled.float_net, layer) for layer in compiled.float_net.layers) * steps


def layer_macs(net, layer) -> int:
    """MACs of one pass through the synaptic nodes of ``layer`` (the runtime's count per node)."""
    names = layer.synapse.split("+")
    if net.graph is not None and all(n in net.graph.nodes for n in names):
        return int(sum(node_macs(net.graph.nodes[n]) for n in names))
    return layer.syn.macs()


def dense_costs(compiled, steps: int = 1) -> Dict[str, float]:
    """Energy per inference on each dense reference (joules), for ``steps`` passes (see ``dense_macs``)."""
    macs = dense_macs(compiled, steps)
    return {ref.name: macs * ref.e_mac for ref in DENSE_REFERENCES}
