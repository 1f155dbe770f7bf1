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
    chips: int = 1  # chips powered (static power counts each)
    interchip_latency_s: float = 0.0  # per inference: the part of latency spent on chip-to-chip links


def counts_per_sample(result: RunResult) -> Dict[str, float]:
    B = result.synops.shape[1]
    c = {
        "synops": result.synops.sum() / B,
        "updates_active": result.updates_active.sum() / B,
        "updates_inactive": result.updates_inactive.sum() / B,
        "spikes": result.spikes.sum() / B,
        "packets_local": result.packets_local.sum() / B,
        "hops": result.hops.sum() / B,
    }
    if result.interchip is not None and result.interchip.any():
        c["interchip_messages"] = result.interchip.sum() / B
        c["chip_hops"] = result.chip_hops.sum() / B
    return c


def step_latency(result: RunResult, profile: ChipProfile) -> np.ndarray:
    """``[T, B]`` seconds: slowest core plus the step's longest route."""
    core_time = (result.synops * profile.t_synop
                 + (result.updates_active + result.updates_inactive) * profile.t_update)
    return core_time.max(axis=2) + result.max_route * profile.t_hop


def chip_cost(result: RunResult, profile: ChipProfile, board=None) -> CostReport:
    """Energy (J) and latency (s) per inference of an integer run on ``profile``: counts x energy per
    operation, plus static power x latency (slowest core per step plus its longest route).

    ``board`` (a ``spikeflow.hardware.board.BoardUse``, several chips): chip-to-chip links crossed cost
    ``e_chip_hop`` each, a step's longest chip route adds ``t_chip_hop`` per link to its latency, and
    every chip used draws static power.
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
    chips, chip_lat = 1, 0.0
    if board is not None:
        chips = board.chips_used
        breakdown["interchip"] = c.get("chip_hops", 0.0) * board.board.e_chip_hop
        link = result.max_chip_route * board.board.t_chip_hop  # [T, B]
        lat = lat + link
        chip_lat = float(link.sum(axis=0).mean())
    latency = float(lat.sum(axis=0).mean())
    static = profile.static_power * latency * chips
    dynamic = float(sum(breakdown.values()))
    breakdown["static"] = static
    return CostReport(energy_j=dynamic + static, dynamic_j=dynamic, static_j=static, latency_s=latency,
                      step_latency_s=float(lat.mean()), counts=c, breakdown_j=breakdown, chips=chips,
                      interchip_latency_s=chip_lat)


def dense_macs(compiled, steps: int = 1) -> int:
    """MACs of the network on dense hardware: every synapse once per pass.

    ``steps=1`` is the network as an ANN (one pass per inference); ``steps=T`` is the SNN
    run clock-driven on dense hardware (every synapse every step). A convolution costs its kernel
    once per output neuron (as a dense accelerator computes it), not the zeros of its dense matrix.
    """
    return int(sum(layer.syn.macs() for layer in compiled.float_net.layers)) * steps


def dense_costs(compiled, steps: int = 1) -> Dict[str, float]:
    """Energy per inference on each dense reference (joules), for ``steps`` passes (see ``dense_macs``)."""
    macs = dense_macs(compiled, steps)
    return {ref.name: macs * ref.e_mac for ref in DENSE_REFERENCES}
