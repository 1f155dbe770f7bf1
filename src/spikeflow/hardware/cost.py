"""Energy and latency from counted work, and the dense-ANN comparison.

dynamic = sum(counts x energy per operation) + steps x e_step
static  = static power x powered time
latency = per step: the slowest core (its synaptic ops and neuron updates) + the
          longest route of that step (hops x time per hop); compute time is the sum.

The powered time depends on how the chip is clocked (``clock``):

- ``realtime``: each step lasts ``dt`` (the chip keeps pace with the world, as a sensor-driven
  neuromorphic chip does); a step whose modelled latency exceeds ``dt`` lasts that latency instead
  and is counted in ``overrun_steps``. Powered time = T x dt when nothing overruns.
- ``afap`` (as fast as possible): each step lasts its modelled latency; powered time = compute time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

import numpy as np

from spikeflow.errors import ConfigError
from spikeflow.hardware.engine import RunResult
from spikeflow.hardware.profiles import DENSE_REFERENCES, ChipProfile
from spikeflow.runtime.graph import dense_macs as node_macs

CLOCKS = ("realtime", "afap")
CLOCK_HELP = {"realtime": "real time: each step lasts dt", "afap": "as fast as possible: each step lasts its "
              "modelled latency"}


@dataclass
class CostReport:
    """Energy (joules) and time (seconds) per inference under one ``clock`` mode: total, dynamic and
    static energy, compute latency (summed over steps, and mean per step), the time the chip is powered,
    mean power, throughput, the counts and the energy per kind of work.
    """
    energy_j: float  # per inference (sample)
    dynamic_j: float
    static_j: float  # static power x powered_s
    latency_s: float  # per inference: modelled compute time, summed over steps
    step_latency_s: float  # mean per step
    counts: Dict[str, float]  # per inference
    breakdown_j: Dict[str, float]  # per inference
    clock: str = "afap"  # realtime | afap
    dt: float | None = None  # seconds per step in realtime mode
    powered_s: float = 0.0  # per inference: how long the chip is powered (static power is charged over this)
    overrun_steps: float = 0.0  # realtime: steps per inference whose latency exceeded dt
    chips: int = 1  # chips powered (static power counts each)
    interchip_latency_s: float = 0.0  # per inference: the part of latency spent on chip-to-chip links

    @property
    def power_w(self) -> float:
        """Mean power while running (energy / powered time)."""
        return self.energy_j / self.powered_s if self.powered_s > 0 else 0.0

    @property
    def dynamic_power_w(self) -> float:
        return self.dynamic_j / self.powered_s if self.powered_s > 0 else 0.0

    @property
    def throughput_hz(self) -> float:
        """Inferences per second, one after another."""
        return 1.0 / self.powered_s if self.powered_s > 0 else float("inf")

    def describe_clock(self) -> str:
        if self.clock == "realtime":
            return f"realtime (each step lasts dt = {self.dt:g} s)"
        return "afap (as fast as possible: each step lasts its modelled latency)"

    def to_dict(self) -> dict:
        return {"clock": self.clock, "dt": self.dt, "energy_j": self.energy_j, "dynamic_j": self.dynamic_j,
                "static_j": self.static_j, "powered_s": self.powered_s, "latency_s": self.latency_s,
                "step_latency_s": self.step_latency_s, "power_w": self.power_w,
                "dynamic_power_w": self.dynamic_power_w, "throughput_hz": self.throughput_hz,
                "overrun_steps": self.overrun_steps, "counts": {k: float(v) for k, v in self.counts.items()},
                "breakdown_j": {k: float(v) for k, v in self.breakdown_j.items()}, "chips": self.chips,
                "interchip_latency_s": self.interchip_latency_s}


def counts_per_sample(result: RunResult) -> Dict[str, float]:
    T, B = result.synops.shape[:2]
    c = {
        "synops": result.synops.sum() / B,
        "updates_active": result.updates_active.sum() / B,
        "updates_inactive": result.updates_inactive.sum() / B,
        "spikes": result.spikes.sum() / B,
        "packets_local": result.packets_local.sum() / B,
        "hops": result.hops.sum() / B,
        "steps": float(T),
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


def check_clock(clock: str, dt: float | None) -> None:
    if clock not in CLOCKS:
        raise ConfigError(f"hardware: clock must be one of {'|'.join(CLOCKS)}, got {clock!r}")
    if clock == "realtime" and (dt is None or not dt > 0):
        raise ConfigError(f"hardware: clock 'realtime' needs the step length dt in seconds (> 0), got {dt!r}")


def chip_cost(result: RunResult, profile: ChipProfile, clock: str = "afap", dt: float | None = None,
              board=None) -> CostReport:
    """Energy (J) and time (s) per inference of an integer run on ``profile``: counts x energy per
    operation plus ``e_step`` per step, plus static power x the powered time of ``clock`` mode
    (``realtime``: each step lasts ``dt``; ``afap``: each step lasts its modelled latency).

    ``board`` (a ``spikeflow.hardware.board.BoardUse``, several chips; default: the run's own): each
    chip-to-chip link a packet crosses (the packet leaves a chip) costs ``profile.e_interchip``, a step's
    longest chip route adds the board's ``t_chip_hop`` per link to its latency, and every chip used draws
    static power.
    """
    check_clock(clock, dt)
    board = board if board is not None else getattr(result, "board", None)
    c = counts_per_sample(result)
    breakdown = {
        "synops": c["synops"] * profile.e_synop,
        "updates_active": c["updates_active"] * profile.e_update_active,
        "updates_inactive": c["updates_inactive"] * profile.e_update_inactive,
        "packets_local": c["packets_local"] * profile.e_spike_local,
        "hops": c["hops"] * profile.e_hop,
        "steps": c["steps"] * profile.e_step,
    }
    lat = step_latency(result, profile)  # [T, B]
    chips, chip_lat = 1, 0.0
    if board is not None:
        chips = board.chips_used
        breakdown["interchip"] = c.get("chip_hops", 0.0) * profile.e_interchip
        link = result.max_chip_route * board.board.t_chip_hop  # [T, B]
        lat = lat + link
        chip_lat = float(link.sum(axis=0).mean())
    latency = float(lat.sum(axis=0).mean())
    overrun = 0.0
    if clock == "realtime":
        powered = float(np.maximum(lat, dt).sum(axis=0).mean())
        overrun = float((lat > dt).sum(axis=0).mean())
    else:
        powered = latency
    static = profile.static_power * powered * chips
    dynamic = float(sum(breakdown.values()))
    breakdown["static"] = static
    return CostReport(energy_j=dynamic + static, dynamic_j=dynamic, static_j=static, latency_s=latency,
                      step_latency_s=float(lat.mean()), counts=c, breakdown_j=breakdown, clock=clock,
                      dt=dt if clock == "realtime" else None, powered_s=powered, overrun_steps=overrun,
                      chips=chips, interchip_latency_s=chip_lat)


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
