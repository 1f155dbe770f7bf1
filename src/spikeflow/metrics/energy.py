"""Energy per inference that counts memory traffic, for SNNs and ANNs on the same footing.

``measure(model, x)`` runs a torch model and counts, per layer, per time step and per sample: input
events (spikes, with their multiplicity after average pooling, or non-zero analog inputs),
synaptic operations (one per event and non-zero fan-out weight, as NeuroBench's effective
operations), the dense operation count, neurons and spikes. ``energy(counts, tech)`` prices
them at a technology (``TECHNOLOGIES``: 45 nm figures of Horowitz, ISSCC 2014) or on a chip of
``spikeflow.hardware.PROFILES``.

The accounting (docs/energy.md derives it and works an example by hand):

SNN, event-driven and clock-stepped (after Lemaire et al., ICONIP 2022):
  per synaptic op: one add (AC; a multiply-add for analog input), one weight read, one read and
  one write of the target neuron's state (the accumulate is a read-modify-write);
  per neuron per step: read and write of every state variable, one multiply per decaying state
  variable, one add per coupling between state variables and one comparison per threshold;
  per input event: one event word read; per output spike: one event word written.
ANN, dense and output-stationary (the partial sum stays in a register):
  per MAC: one multiply-add, one weight read, one input activation read;
  per output neuron: bias add and activation (one comparison) and one activation write.

Memory access energy is Horowitz's per-64-bit figure scaled by the word width; each memory
(weights, neuron state, activations/events) is priced at the smallest SRAM tier that holds it,
or DRAM beyond the on-chip size. No data reuse: every operand is fetched from its memory at
each use, for both networks. BatchNorm is taken as folded into the weights, average pooling as
folded into the next layer's fan-out (the events are counted with their multiplicity).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from spikeflow.errors import ConfigError, ShapeError
from spikeflow.nn import LinearLIF, NeuronLayer, Recurrent, TimeFold

__all__ = ["TECHNOLOGIES", "Counts", "EnergyReport", "NeuronCount", "SynapseCount", "Technology", "break_even_rate",
           "counts_until", "decision_steps", "energy", "fmt_energy", "get_technology", "measure", "memory_sizes",
           "rate_table"]

PJ = 1e-12
KB = 1024
CATEGORIES = ("compute", "state", "weights", "activations")


@dataclass(frozen=True)
class Technology:
    """Per-operation energies (joules) and word widths of one technology; memories priced by size.

    ``sram``: ``(capacity in bytes, joules per 64-bit access)`` tiers, smallest first; a memory
    larger than ``onchip_bytes`` is priced at ``dram`` per 64-bit access.
    """
    name: str
    title: str
    e_add: float  # accumulate (AC) at the state precision
    e_mult: float  # multiply at the operand precision; a MAC is e_mult + e_add
    weight_bits: int
    state_bits: int
    act_bits: int  # an analog activation (ANN, or analog SNN input)
    event_bits: int  # a spike event word (neuron address)
    sram: Tuple[Tuple[int, float], ...]
    dram: float
    onchip_bytes: int
    sources: Tuple[str, ...] = ()

    @property
    def e_mac(self) -> float:
        return self.e_mult + self.e_add

    def memory(self, size_bytes: float) -> Tuple[str, float]:
        """``(tier name, joules per 64-bit access)`` of a memory holding ``size_bytes``."""
        if size_bytes <= self.onchip_bytes:
            for cap, e in self.sram:
                if size_bytes <= cap:
                    return _size_name(cap) + " SRAM", e
        return "DRAM", self.dram

    def access(self, bits: int, size_bytes: float) -> float:
        """Joules to read or write one ``bits``-wide word in a memory of ``size_bytes``."""
        return self.memory(size_bytes)[1] * bits / 64


def _size_name(n: int) -> str:
    return f"{n // (KB * KB)} MB" if n >= KB * KB else f"{n // KB} kB"


# Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, Fig. 1.1.9
# ("rough energy costs for various operations in 45nm 0.9V"): 64-bit cache access 8 kB 10 pJ,
# 32 kB 20 pJ, 1 MB 100 pJ; DRAM 1.3-2.6 nJ (the lower figure used here).
_HOROWITZ_SRAM = ((8 * KB, 10 * PJ), (32 * KB, 20 * PJ), (KB * KB, 100 * PJ))
_HOROWITZ_DRAM = 1300 * PJ
_HOROWITZ = "Horowitz, Computing's energy problem, ISSCC 2014, Fig. 1.1.9 (45 nm, 0.9 V)"

TECH_45NM = Technology(
    name="45nm", title="45 nm, float32",
    e_add=0.9 * PJ,  # Horowitz 2014 Fig. 1.1.9: 32-bit float add 0.9 pJ
    e_mult=3.7 * PJ,  # Horowitz 2014 Fig. 1.1.9: 32-bit float multiply 3.7 pJ
    weight_bits=32, state_bits=32, act_bits=32,
    event_bits=16,  # assumption: a spike travels as a 16-bit neuron address word
    sram=_HOROWITZ_SRAM, dram=_HOROWITZ_DRAM,
    onchip_bytes=KB * KB,  # assumption: on-chip memories up to Horowitz's largest tier, 1 MB
    sources=(_HOROWITZ,),
)

TECH_45NM_INT8 = Technology(
    name="45nm-int8", title="45 nm, int8 weights and activations, int32 state",
    e_add=0.1 * PJ,  # Horowitz 2014 Fig. 1.1.9: 32-bit int add 0.1 pJ (accumulator)
    e_mult=0.2 * PJ,  # Horowitz 2014 Fig. 1.1.9: 8-bit int multiply 0.2 pJ
    weight_bits=8, state_bits=32, act_bits=8,
    event_bits=16,  # assumption, as for 45nm
    sram=_HOROWITZ_SRAM, dram=_HOROWITZ_DRAM, onchip_bytes=KB * KB,
    sources=(_HOROWITZ,),
)

TECHNOLOGIES = {t.name: t for t in (TECH_45NM, TECH_45NM_INT8)}


# ----------------------------------------------------------------------------------------------- counts
@dataclass
class SynapseCount:
    """One connection layer. Arrays are ``[T, B]`` (step, sample)."""
    name: str
    type: str  # linear | conv | recurrent
    weights: int  # parameters (weights and bias)
    in_size: int  # input values per step and sample
    out_size: int  # output neurons per step and sample
    dense_ops: int  # every input x every fan-out weight, per step and sample
    events: np.ndarray  # input events: spikes (with multiplicity) or non-zero analog inputs
    ops: np.ndarray  # synaptic operations: events x non-zero fan-out weights
    targets: np.ndarray  # output neurons that received at least one event
    spike_input: np.ndarray  # [T] bool: this step's input is made of spikes (ACs) or not (MACs)


@dataclass
class NeuronCount:
    """One neuron layer (SNN). ``spikes`` is ``[T, B]``; ``received`` the targets of the layer feeding it."""
    name: str
    model: str
    neurons: int  # per sample
    state_vars: int
    decaying: int  # state variables multiplied by a decay factor each step
    spiking: bool
    spikes: np.ndarray
    received: Optional[np.ndarray] = None


@dataclass
class Counts:
    """What ``measure`` counted on ``samples`` inputs over ``steps`` time steps (1 for an ANN).

    ``steps_used [B]``: the steps counted for each sample (all, or fewer after ``until``).
    """
    kind: str  # snn | ann
    samples: int
    steps: int
    synapses: List[SynapseCount]
    neurons: List[NeuronCount]
    steps_used: np.ndarray

    def _mask(self) -> np.ndarray:
        """``[T, B]``: 1 where the step is counted for the sample."""
        return (np.arange(self.steps)[:, None] < self.steps_used[None, :]).astype(np.float64)

    def until(self, decision_steps) -> Counts:
        """The counts up to each sample's decision step (``[B]`` ints in 1..steps): early exit."""
        d = np.asarray(decision_steps, dtype=np.int64).reshape(-1)
        if d.shape != (self.samples,) or (d < 1).any() or (d > self.steps).any():
            raise ConfigError(f"energy: decision_steps must be {self.samples} step counts in 1..{self.steps}, "
                              f"got {np.asarray(decision_steps).tolist()}")
        return replace(self, steps_used=np.minimum(self.steps_used, d))

    def per_inference(self) -> Dict[str, float]:
        """Totals per sample: ACs, MACs, dense ops, input events, spikes, neuron updates."""
        m = self._mask()
        n = max(self.samples, 1)
        acs = sum(float((s.ops * m)[s.spike_input].sum()) for s in self.synapses) / n
        macs = sum(float((s.ops * m)[~s.spike_input].sum()) for s in self.synapses) / n
        dense = sum(s.dense_ops * float(self.steps_used.sum()) for s in self.synapses) / n
        return {"acs": acs, "macs": macs, "synops": acs + macs, "dense_ops": dense,
                "events": sum(float((s.events * m).sum()) for s in self.synapses) / n,
                "spikes": sum(float((c.spikes * m).sum()) for c in self.neurons) / n,
                "neuron_updates": sum(c.neurons * float(self.steps_used.sum()) for c in self.neurons) / n,
                "steps": float(self.steps_used.mean()) if self.samples else 0.0}

    def spike_rate(self) -> float:
        """Mean spikes per spiking neuron per counted step."""
        m = self._mask()
        spk = sum(float((c.spikes * m).sum()) for c in self.neurons if c.spiking)
        slots = sum(c.neurons * float(self.steps_used.sum()) for c in self.neurons if c.spiking)
        return spk / slots if slots else 0.0


def counts_until(counts: Counts, decision_steps) -> Counts:
    """``counts`` cut at each sample's early-exit step (see ``decision_steps``)."""
    return counts.until(decision_steps)


def decision_steps(readout: torch.Tensor, confidence: float, decoder: str = "max") -> np.ndarray:
    """Per sample, the number of steps after which ``spikeflow.runtime.Stream``'s early exit decides.

    ``readout [T, B, C]``: the network's output per step. As the stream does, the decoder's logits
    over the steps so far (``max``, ``count`` = sum, ``mean``, ``last``) go through a softmax and
    the answer is decided at the first step whose top probability reaches ``confidence``; samples
    that never reach it count all ``T`` steps.
    """
    if readout.dim() != 3:
        raise ShapeError(f"energy: readout must be [T, B, C], got shape {tuple(readout.shape)}")
    if not 0.0 < confidence <= 1.0:
        raise ConfigError(f"energy: confidence must be in (0, 1], got {confidence}")
    y = readout.detach().double()
    T = y.shape[0]
    if decoder == "max":
        z = torch.cummax(y, 0).values
    elif decoder in ("count", "mean"):
        z = torch.cumsum(y, 0)
        if decoder == "mean":
            z = z / torch.arange(1, T + 1, dtype=z.dtype).view(T, 1, 1)
    elif decoder == "last":
        z = y
    else:
        raise ConfigError(f"energy: decoder must be max, count, mean or last, got {decoder!r}")
    conf = torch.softmax(z, -1).max(-1).values  # [T, B]
    hit = conf >= confidence
    first = torch.where(hit.any(0), hit.float().argmax(0) + 1, torch.full_like(hit[0], T, dtype=torch.long))
    return first.long().numpy()


def _state_vars(layer: NeuronLayer, shape) -> Tuple[int, int]:
    state = layer.init_state((1,) + tuple(shape))
    fields = state._asdict().values() if hasattr(state, "_asdict") else (
        state if isinstance(state, (tuple, list)) else [state])
    n = sum(isinstance(v, torch.Tensor) for v in fields)
    return n, 0 if layer.model.name == "if" else n


class _Recorder:
    """Forward hooks that fill the per-step counts of ``measure``."""

    def __init__(self, model: nn.Module, kind: str):
        self.kind = kind
        self.synapses: Dict[str, dict] = {}
        self.neurons: Dict[str, dict] = {}
        self.order: List[Tuple[str, str]] = []  # (synapse|neuron, name) in first-call order
        self.T = self.B = 0
        self.pool = 1.0  # the window of an average pooling since the last connection layer
        self.analog_input = False  # the network input is a current (direct encoding), never events
        self.handles = []
        inner = {id(m.neuron) for m in model.modules() if isinstance(m, Recurrent)}
        folded = {id(m.layer) for m in model.modules() if isinstance(m, TimeFold)}
        for name, m in model.named_modules():
            name = name or type(m).__name__
            if id(m) in folded:  # a torch layer Sequential wrapped: named as the Sequential's item
                name = name.removesuffix(".layer")
            if isinstance(m, LinearLIF):
                raise ConfigError(f"energy: layer {name} (LinearLIF) is not counted; build it as SpikeLinear + LIF")
            if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
                self.handles.append(m.register_forward_pre_hook(self._synapse_hook(name)))
            elif isinstance(m, nn.AvgPool2d):
                self.handles.append(m.register_forward_pre_hook(self._pool_hook))
            elif isinstance(m, Recurrent) or (isinstance(m, NeuronLayer) and id(m) not in inner):
                self.handles.append(m.register_forward_hook(self._neuron_hook(name)))

    def close(self):
        for h in self.handles:
            h.remove()

    def _steps(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as ``[t, B, ...]``: folded ``[T*B, ...]``, one step ``[B, ...]`` or time-major."""
        if self.kind == "ann":
            return x.unsqueeze(0)
        if x.shape[0] == self.T * self.B and self.T > 1:
            return x.reshape(self.T, self.B, *x.shape[1:])
        if x.shape[0] == self.B:
            return x.unsqueeze(0)
        return x

    def _pool_hook(self, pool, inputs):
        k = pool.kernel_size
        self.pool = float(pool.divisor_override or (k * k if isinstance(k, int) else k[0] * k[1]))

    def _synapse_hook(self, name: str):
        def hook(layer, inputs):
            x = inputs[0].detach()
            xs = self._steps(x)
            if name not in self.synapses:
                self.order.append(("synapse", name))
                self.synapses[name] = {"layer": layer, "rows": [], "spike": []}
            rec = self.synapses[name]
            q, self.pool = self.pool, 1.0
            t, b = xs.shape[:2]
            analog = self.analog_input and len(self.synapses) == 1 and len(self.neurons) == 0
            events, spike = _events(xs, self.kind == "snn" and not analog, q)
            fan = _fanout(layer, events.reshape(t * b, *xs.shape[2:]), all_ones=False).reshape(t, b, -1)
            rec["rows"].append((events.reshape(t, b, -1).double().sum(2), fan.double().sum(2), (fan > 0).sum(2)))
            rec["spike"] += spike.tolist()
            if "dense" not in rec:
                one = torch.ones_like(xs[0, :1])
                rec["dense"] = int(_fanout(layer, one, all_ones=True).double().sum())
                rec["in_size"] = int(xs[0, 0].numel())
                rec["out_size"] = int(fan.shape[2])
        return hook

    def _neuron_hook(self, name: str):
        def hook(layer, inputs, out):
            out = out[0] if isinstance(out, tuple) else out
            ys = out.detach()
            if name not in self.neurons:
                self.order.append(("neuron", name))
                cell = layer.neuron if isinstance(layer, Recurrent) else layer
                n, decaying = _state_vars(cell, ys.shape[2:])
                self.neurons[name] = {"model": cell.model.name, "neurons": int(ys[0, 0].numel()), "state_vars": n,
                                      "decaying": decaying, "spiking": bool(cell.model.spiking), "rows": []}
            self.neurons[name]["rows"].append((ys != 0).flatten(2).sum(2) if self.neurons[name]["spiking"]
                                              else torch.zeros(ys.shape[:2]))
        return hook

    def counts(self, kind: str, T: int, B: int) -> Counts:
        syn, neu = [], []
        for name, r in self.synapses.items():
            ev, ops, tg = (torch.cat([row[i] for row in r["rows"]]).double().numpy() for i in range(3))
            if len(ev) != T:
                raise ShapeError(f"energy: layer {name} ran {len(ev)} steps, expected {T}")
            layer = r["layer"]
            typ = "linear" if isinstance(layer, nn.Linear) else "conv"
            syn.append(SynapseCount(name, typ, sum(p.numel() for p in layer.parameters(recurse=False)),
                                    r["in_size"], r["out_size"], r["dense"], ev, ops, tg, np.array(r["spike"])))
        if kind == "snn":
            last_syn = None
            for what, name in self.order:
                if what == "synapse":
                    last_syn = name
                    continue
                r = self.neurons[name]
                spikes = torch.cat(r["rows"]).double().numpy()
                received = None
                if last_syn is not None:
                    s = next(c for c in syn if c.name == last_syn)
                    received = s.targets if s.out_size == r["neurons"] else None
                neu.append(NeuronCount(name, r["model"], r["neurons"], r["state_vars"], r["decaying"], r["spiking"],
                                       spikes, received))
        return Counts(kind, B, T, syn, neu, np.full(B, T, dtype=np.int64))


def _events(xs: torch.Tensor, snn: bool, pool: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(events per input [t, B, ...], made of spikes [t])`` for each step of ``xs``. In an SNN, a step
    made of whole events (spikes, event counts, or spikes average-pooled over ``pool`` inputs: multiples
    of 1/pool) gives its events with their multiplicity; any other step (analog, signed input) gives its
    non-zero entries, each one MAC per fan-out weight."""
    x = xs.float()
    nz = (x != 0).float()
    if not snn:
        return nz, torch.zeros(x.shape[0], dtype=torch.bool)
    xq = x * pool
    flat = xq.reshape(x.shape[0], -1)
    spike = (flat >= 0).all(1) & (flat == flat.round()).all(1)
    return torch.where(spike.view(-1, *[1] * (x.dim() - 1)), xq, nz), spike


def _fanout(layer: nn.Module, events: torch.Tensor, all_ones: bool) -> torch.Tensor:
    """Operations per output neuron: ``events`` through the layer with unit (non-zero) weights, no bias."""
    w = layer.weight.detach().float()  # 0/1 weights and whole events: float32 sums are exact here
    w = torch.ones_like(w) if all_ones else (w != 0).float()
    e = events.float()
    if isinstance(layer, nn.Linear):
        return torch.nn.functional.linear(e, w)
    pool = getattr(layer, "pool", 1)
    if pool > 1:  # SpikeConv2d(pool=k): every event reaches the conv through the k x k sum
        e = torch.nn.functional.avg_pool2d(e, pool) * pool * pool
    return layer._conv_forward(e, w, None)


def _is_snn(model: nn.Module) -> bool:
    spiking = getattr(model, "spiking", None)
    if isinstance(spiking, bool):
        return spiking
    return any(isinstance(m, (NeuronLayer, Recurrent)) for m in model.modules())


@torch.no_grad()
def measure(model: nn.Module, x: torch.Tensor, *, kind: str = "auto", steps: Optional[int] = None) -> Counts:
    """Per-layer counts of one run of ``model`` on the batch ``x`` (see the module docstring).

    ``model``: a spikeflow SNN (``Sequential`` on time-major ``[T, B, ...]`` input), a plain torch
    ANN on ``[B, ...]``, or a zoo ``Classifier`` (given its data layout; it encodes the input).
    ``kind``: ``snn``, ``ann`` or ``auto``. ``steps``: count only the first ``steps`` time steps.
    The model runs in eval mode with torch's RNG seeded (rate encoding draws the same spikes each
    time); its train/eval mode and the RNG state are restored afterwards.
    """
    if kind == "auto":
        kind = "snn" if _is_snn(model) else "ann"
    if kind not in ("snn", "ann"):
        raise ConfigError(f"energy: kind must be 'snn', 'ann' or 'auto', got {kind!r}")
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"energy: input must be a tensor, got {type(x).__name__}")
    net = model
    was_training = model.training
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # rate encoding draws the same spikes at every measurement
        model.eval()
        try:
            if hasattr(model, "encode") and hasattr(model, "net"):
                x = model.encode(x)
                net = model.net
            if kind == "snn":
                if x.dim() < 3:
                    raise ShapeError(f"energy: an SNN takes time-major [T, B, ...] input, got shape {tuple(x.shape)}")
                if steps is not None:
                    if not isinstance(steps, int) or steps < 1:
                        raise ConfigError(f"energy: steps must be an int >= 1, got {steps!r}")
                    x = x[:steps]
                T, B = int(x.shape[0]), int(x.shape[1])
            else:
                if steps not in (None, 1):
                    raise ConfigError(f"energy: an ANN answers in one pass; steps must be None or 1, got {steps!r}")
                T, B = 1, int(x.shape[0])
            rec = _Recorder(net, kind)
            rec.T, rec.B = T, B
            rec.analog_input = getattr(model, "encoding", None) == "direct"
            try:
                net(x)
            finally:
                rec.close()
        finally:
            model.train(was_training)
    if not rec.synapses:
        raise ConfigError(f"energy: {type(net).__name__} has no Linear or Conv layer to count")
    return rec.counts(kind, T, B)


# ----------------------------------------------------------------------------------------------- energy
@dataclass
class EnergyReport:
    """Energy per inference (joules) with its breakdown by category and by layer."""
    tech: str
    kind: str
    total_j: float
    breakdown_j: Dict[str, float]
    per_layer_j: Dict[str, Dict[str, float]]
    acs: float
    macs: float
    memories: Dict[str, Dict[str, object]] = field(default_factory=dict)

    @property
    def synops(self) -> float:
        return self.acs + self.macs

    def as_dict(self) -> dict:
        return {"tech": self.tech, "kind": self.kind, "energy_j": self.total_j, "breakdown_j": self.breakdown_j,
                "per_layer_j": self.per_layer_j, "synops": self.synops, "acs": self.acs, "macs": self.macs,
                "memories": self.memories}


def memory_sizes(counts: Counts, tech: Technology) -> Dict[str, Dict[str, object]]:
    """Bytes and tier of the weight, state and activation memories the network needs."""
    weights = sum(s.weights for s in counts.synapses) * tech.weight_bits / 8
    state = sum(c.neurons * c.state_vars for c in counts.neurons) * tech.state_bits / 8
    word = tech.event_bits if counts.kind == "snn" else tech.act_bits
    acts = max((s.in_size + s.out_size) for s in counts.synapses) * word / 8
    out = {}
    for key, size in (("weights", weights), ("state", state), ("activations", acts)):
        tier, e64 = tech.memory(size)
        out[key] = {"bytes": size, "tier": tier, "j_per_64bit": e64}
    return out


def _tech_energy(counts: Counts, t: Technology, skip_zeros: bool) -> EnergyReport:
    mem = memory_sizes(counts, t)
    e_w = t.access(t.weight_bits, mem["weights"]["bytes"])
    e_s = t.access(t.state_bits, mem["state"]["bytes"])
    e_ev = t.access(t.event_bits, mem["activations"]["bytes"])
    e_act = t.access(t.act_bits, mem["activations"]["bytes"])
    m = counts._mask()
    n = max(counts.samples, 1)
    steps = float(counts.steps_used.sum()) / n  # counted steps per sample
    layers: Dict[str, Dict[str, float]] = {}
    acs = macs = 0.0
    for s in counts.synapses:
        ops = s.ops * m
        if counts.kind == "snn":
            ac = float(ops[s.spike_input].sum()) / n
            mac = float(ops[~s.spike_input].sum()) / n
            ev = s.events * m
            reads = (float(ev[s.spike_input].sum()) * e_ev + float(ev[~s.spike_input].sum()) * e_act) / n
            layers[s.name] = {"compute": ac * t.e_add + mac * t.e_mac, "state": (ac + mac) * 2 * e_s,
                              "weights": (ac + mac) * e_w, "activations": reads}
        else:
            ac, mac = 0.0, (float(ops.sum()) / n if skip_zeros else s.dense_ops * steps)
            outs = s.out_size * steps
            layers[s.name] = {"compute": mac * t.e_mac + outs * 2 * t.e_add, "state": 0.0,
                              "weights": mac * e_w, "activations": mac * e_act + outs * e_act}
        acs, macs = acs + ac, macs + mac
    for c in counts.neurons:
        updates = c.neurons * steps
        spikes = float((c.spikes * m).sum()) / n
        adds = c.state_vars - 1 + int(c.spiking)
        layers[c.name] = {"compute": updates * (c.decaying * t.e_mult + adds * t.e_add),
                          "state": updates * c.state_vars * 2 * e_s, "weights": 0.0, "activations": spikes * e_ev}
    return _report(t.name, counts.kind, layers, acs, macs, mem)


def _chip_energy(counts: Counts, p) -> EnergyReport:
    """On a neuromorphic chip: the profile's energy per synaptic op (memory included), per neuron
    update (active: received input that step; else inactive), per spike delivered locally and per
    time step (``e_step``, under ``per step``). Router hops and static power depend on the mapping
    and the clocking: ``spikeflow.hardware.chip_cost`` prices those on an integer run."""
    if counts.kind != "snn":
        raise ConfigError(f"energy: chip {p.name} prices spiking networks; price an ANN with tech='45nm'")
    m = counts._mask()
    n = max(counts.samples, 1)
    steps = float(counts.steps_used.sum()) / n
    layers, acs = {}, 0.0
    for s in counts.synapses:
        ops = float((s.ops * m).sum()) / n
        acs += ops
        layers[s.name] = {"compute": ops * p.e_synop, "state": 0.0, "weights": 0.0, "activations": 0.0}
    for c in counts.neurons:
        updates = c.neurons * steps
        active = float((c.received * m).sum()) / n if c.received is not None else updates
        spikes = float((c.spikes * m).sum()) / n
        state = active * p.e_update_active + (updates - active) * p.e_update_inactive
        layers[c.name] = {"compute": 0.0, "state": state, "weights": 0.0, "activations": spikes * p.e_spike_local}
    layers["per step"] = {"compute": steps * getattr(p, "e_step", 0.0), "state": 0.0, "weights": 0.0,
                          "activations": 0.0}
    return _report(p.name, "snn", layers, acs, 0.0, {})


def _report(tech, kind, layers, acs, macs, mem) -> EnergyReport:
    breakdown = {k: sum(v[k] for v in layers.values()) for k in CATEGORIES}
    return EnergyReport(tech, kind, float(sum(breakdown.values())), breakdown, layers, acs, macs, mem)


def get_technology(tech) -> object:
    """A ``Technology`` (by name or given) or a chip profile (by name)."""
    if isinstance(tech, Technology):
        return tech
    from spikeflow.hardware.profiles import PROFILES

    key = str(tech).lower()
    if key in TECHNOLOGIES:
        return TECHNOLOGIES[key]
    if key in PROFILES:
        return PROFILES[key]
    raise ConfigError(f"energy: unknown technology {tech!r}; valid: {sorted(TECHNOLOGIES) + sorted(PROFILES)}")


def energy(counts: Counts, tech="45nm", *, skip_zeros: bool = False) -> EnergyReport:
    """Energy per inference of ``counts`` at ``tech`` (a ``TECHNOLOGIES`` name or ``Technology``, or a
    chip profile name). ``skip_zeros``: the ANN's hardware skips zero activations (only non-zero
    inputs' MACs); by default it computes every MAC, as a dense accelerator does."""
    t = get_technology(tech)
    if isinstance(t, Technology):
        return _tech_energy(counts, t, skip_zeros)
    return _chip_energy(counts, t)


def break_even_rate(sizes: Sequence[int], T: int, tech="45nm") -> float:
    """Spike rate (spikes per neuron per step, every layer's input alike) below which the SNN MLP of
    ``sizes`` (LIF hidden, LI readout) costs less than the same-shape dense ANN, by this model."""
    return _break_even([int(s) for s in sizes], int(T), get_technology(tech))


def _layer_energies(sizes: List[int], T: int, rate: float, t: Technology, kind: str) -> float:
    """Energy of an MLP ``sizes[0] -> ... -> sizes[-1]`` with every layer's input active at ``rate``
    (SNN: spikes per neuron per step; ANN: dense), LIF hidden and LI output neurons."""
    weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    acts = max(a + b for a, b in zip(sizes[:-1], sizes[1:]))
    neurons = sum(sizes[1:])
    if kind == "ann":
        e_w, e_a = t.access(t.weight_bits, weights * t.weight_bits / 8), t.access(t.act_bits, acts * t.act_bits / 8)
        macs = weights
        return macs * (t.e_mac + e_w + e_a) + neurons * (2 * t.e_add + e_a)
    e_w = t.access(t.weight_bits, weights * t.weight_bits / 8)
    e_s = t.access(t.state_bits, neurons * t.state_bits / 8)
    e_ev = t.access(t.event_bits, acts * t.event_bits / 8)
    total = 0.0
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        events = a * rate * T
        ops = events * b
        total += ops * (t.e_add + e_w + 2 * e_s) + events * e_ev
        spiking = i < len(sizes) - 2
        total += b * T * (t.e_mult + int(spiking) * t.e_add + 2 * e_s) + (b * rate * T * e_ev if spiking else 0.0)
    return total


def _break_even(sizes: List[int], T: int, t: Technology) -> float:
    ann = _layer_energies(sizes, T, 0.0, t, "ann")
    lo, hi = 0.0, 1.0
    if _layer_energies(sizes, T, 0.0, t, "snn") >= ann:
        return 0.0
    if _layer_energies(sizes, T, 1.0, t, "snn") <= ann:
        return 1.0
    for _ in range(60):  # the SNN's energy grows linearly with the rate: bisection is exact enough
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _layer_energies(sizes, T, mid, t, "snn") < ann else (lo, mid)
    return (lo + hi) / 2


def rate_table(sizes: Sequence[int], T_values: Sequence[int] = (1, 2, 4, 8, 16, 32),
               techs: Sequence[str] = ("45nm", "45nm-int8")) -> List[dict]:
    """For an MLP of ``sizes``: the break-even spike rate at each T and technology (see docs/energy.md)."""
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ConfigError(f"energy: sizes must be at least two positive layer widths, got {list(sizes)}")
    rows = []
    for T in T_values:
        row = {"T": int(T)}
        for name in techs:
            row[name] = _break_even(sizes, int(T), get_technology(name))
        rows.append(row)
    return rows


def fmt_energy(j: float) -> str:
    """Joules with an SI prefix (``3.1 uJ``)."""
    if j == 0 or not math.isfinite(j):
        return f"{j:.3g} J"
    for scale, unit in ((1, "J"), (1e-3, "mJ"), (1e-6, "uJ"), (1e-9, "nJ"), (1e-12, "pJ")):
        if abs(j) >= scale:
            return f"{j / scale:.3g} {unit}"
    return f"{j / 1e-15:.3g} fJ"
