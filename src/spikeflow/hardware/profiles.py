"""Chip profiles as data: limits, number formats and per-operation costs.

Every number carries its source in a comment. Where a vendor publishes no
per-operation figure the value is marked ``estimate`` and says what it rests on;
such figures only move energy totals, never the integer arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Tuple

from spikeflow.errors import ConfigError


@dataclass(frozen=True)
class ChipProfile:
    """One neuromorphic chip: capacity (cores, neurons/synapses/axons per core, fan-in and fan-out
    limits), supported synapse and neuron types, number formats (weight and state bits, decay
    arithmetic, overflow), and costs: energies in joules per operation (``e_*``), ``static_power`` in
    watts, times in seconds per operation (``t_*``), with the published ``sources``.
    """
    name: str
    title: str
    # -- capacity -------------------------------------------------------------------
    cores: int
    neurons_per_core: int
    mesh: Tuple[int, int]  # (rows, cols) of the 2D core mesh; rows * cols >= cores
    axons_per_core: int | None = None  # distinct presynaptic sources one core can receive
    synapses_per_core: int | None = None  # synapse memory, in synapses
    max_fan_in: int | None = None  # inputs per neuron
    fan_out_cores: int | None = None  # cores one neuron's spikes may reach
    max_hidden_neurons: int | None = None  # whole chip, spiking layers except the last
    max_input_channels: int | None = None
    max_output_neurons: int | None = None
    max_kernel: int | None = None  # conv kernel side
    max_channels: int | None = None  # conv feature maps per layer
    shared_core: bool = False  # True: one core holds every layer (Xylo); else each layer starts a fresh core
    synapse_types: Tuple[str, ...] = ("linear", "conv2d", "pool")
    neuron_models: Tuple[str, ...] = ("lif", "if", "li")
    recurrent: str = "none"  # none | hidden (spiking layers but the readout) | any: self-recurrent layers mapped
    # -- number formats ---------------------------------------------------------------
    weight_bits: int = 8  # signed; 2 means ternary {-1, 0, +1} x per-layer scale
    state_bits: int = 24  # signed membrane / current registers
    state_frac_bits: int = 0  # weights enter the membrane shifted left by this many bits (finer state units)
    decay: str = "multiplicative"  # multiplicative | shift | linear | none
    decay_bits: int = 12  # multiplicative decay resolution
    overflow: str = "saturate"  # saturate | wrap
    # -- costs (joules, seconds, watts) --------------------------------------------------
    e_synop: float = 0.0  # per synaptic operation (one spike reaching one synapse)
    e_update_active: float = 0.0  # per neuron update of a neuron that received input or is not at rest
    e_update_inactive: float = 0.0  # per neuron update of an idle neuron
    e_spike_local: float = 0.0  # per spike packet delivered inside its own core / tile
    e_hop: float = 0.0  # per router hop of a spike packet
    static_power: float = 0.0  # watts, whole chip, while running
    t_synop: float = 0.0
    t_update: float = 0.0
    t_hop: float = 0.0
    notes: str = ""
    sources: Tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self):
        if self.mesh[0] * self.mesh[1] < self.cores:
            raise ConfigError(f"profile {self.name}: mesh {self.mesh} holds fewer than {self.cores} cores")
        if self.decay not in ("multiplicative", "shift", "linear", "none"):
            raise ConfigError(f"profile {self.name}: decay must be multiplicative|shift|linear|none, "
                              f"got {self.decay!r}")
        if self.recurrent not in ("none", "hidden", "any"):
            raise ConfigError(f"profile {self.name}: recurrent must be none|hidden|any, got {self.recurrent!r}")
        if self.overflow not in ("saturate", "wrap"):
            raise ConfigError(f"profile {self.name}: overflow must be saturate|wrap, got {self.overflow!r}")

    @property
    def state_range(self) -> Tuple[int, int]:
        return -(1 << (self.state_bits - 1)), (1 << (self.state_bits - 1)) - 1

    @property
    def weight_max(self) -> int:
        return (1 << (self.weight_bits - 1)) - 1

    def limits(self) -> Tuple[str, ...]:
        """Names of the limits this profile checks (each can be tripped by some graph)."""
        names = ["threshold_range"]
        if not self.shared_core:
            names.insert(0, "cores")
        if set(self.neuron_models) != {"lif", "if", "li"}:
            names.append("neuron_model")
        if set(self.synapse_types) != {"linear", "conv2d", "pool"}:
            names.append("synapse_type")
        if self.recurrent != "any":
            names.append("recurrent")
        for f in ("axons_per_core", "synapses_per_core", "max_fan_in", "fan_out_cores", "max_hidden_neurons",
                  "max_input_channels", "max_output_neurons", "max_kernel", "max_channels"):
            if getattr(self, f) is not None:
                names.append(f)
        if self.axons_per_core is not None and self.synapses_per_core is not None \
                and self.axons_per_core <= self.synapses_per_core:
            # One neuron cannot exceed the synapse memory before its axons; mapping uses the memory to size cores.
            names.remove("synapses_per_core")
        return tuple(names)


PJ, NJ, NS, US = 1e-12, 1e-9, 1e-9, 1e-6

LOIHI = ChipProfile(
    name="loihi", title="Intel Loihi",
    cores=128,  # Davies et al., IEEE Micro 38(1) 2018: 128 neuromorphic cores per chip
    neurons_per_core=1024,  # Davies 2018: 1,024 compartments per core
    mesh=(8, 16),  # 128 cores on a 2D mesh NoC (Davies 2018); 8 x 16 layout assumed
    axons_per_core=4096,  # Davies 2018: 4,096 fan-in axons per core
    recurrent="any",  # Davies 2018: any core may target any core, itself included (e.g. the recurrent LCA solver)
    # 128 KB synaptic memory (Davies 2018) at ~16 bits per 8-bit synapse incl. format overhead: estimate
    synapses_per_core=64 * 1024,
    weight_bits=8,  # Davies 2018: weights 1-9 bits with a shared exponent; 8-bit signed mantissa here
    state_bits=24,  # Davies 2018: 24-bit current u and voltage v
    state_frac_bits=6,  # Lava's bit-accurate Loihi models shift weights and thresholds left by 6 bits
    decay="multiplicative", decay_bits=12,  # Davies 2018: 12-bit decays, u <- u * (4096 - delta) / 4096
    # Davies 2018 Table 2 (synaptic spike op 23.6 pJ) + 3.5 pJ, as keras-spiking ModelEnergy uses
    e_synop=(23.6 + 3.5) * PJ,
    e_update_active=81 * PJ,  # Davies 2018 Table 2: neuron update (active) 81 pJ; keras-spiking uses the same
    e_update_inactive=52 * PJ,  # Davies 2018 Table 2: neuron update (inactive) 52 pJ
    e_spike_local=1.7 * PJ,  # Davies 2018 Table 2: within-tile spike energy 1.7 pJ
    e_hop=3.5 * PJ,  # Davies 2018 Table 2: tile hop 3.0 pJ (E-W) / 4.0 pJ (N-S), mean
    static_power=0.02,  # estimate: Loihi idle power is not in Davies Table 2; ~20 mW assumed
    t_synop=3.5 * NS,  # Davies 2018 Table 2: synaptic spike op time 3.5 ns
    t_update=8.4 * NS,  # estimate: a few clock cycles per compartment update
    t_hop=5.3 * NS,  # Davies 2018 Table 2: tile hop latency 4.1 ns (E-W) / 6.5 ns (N-S), mean
    sources=("Davies et al., Loihi, IEEE Micro 2018, Table 2", "keras-spiking ModelEnergy device table"),
)

LOIHI2 = ChipProfile(
    name="loihi2", title="Intel Loihi 2",
    cores=128,  # Orchard et al., SiPS 2021 / Intel Loihi 2 brief: 128 neuro cores per chip
    neurons_per_core=8192,  # Intel Loihi 2 brief: up to 1M neurons per chip = 8,192 per core
    mesh=(8, 16),  # estimate: same 2D NoC layout as Loihi
    recurrent="any",  # Orchard 2021: the same any-to-any spike routing as Loihi
    axons_per_core=8192,  # estimate: fan-in doubled with the neuron count (192 KB flexible core memory)
    synapses_per_core=96 * 1024,  # estimate: 192 KB core memory at ~16 bits per synapse
    weight_bits=8,  # Intel Loihi 2 brief: 1-8 bit synaptic weights
    state_bits=24,  # Orchard 2021: microcode neurons on 24-bit state variables
    state_frac_bits=6,  # as Loihi (Lava's bit-accurate models)
    decay="multiplicative", decay_bits=12,  # as Loihi (Lava's Loihi 2 LIF: 12-bit du, dv)
    e_synop=(23.6 + 3.5) * PJ,  # estimate: no per-op table published; Loihi figures reused
    e_update_active=81 * PJ,  # estimate: Loihi figure reused
    e_update_inactive=52 * PJ,  # estimate: Loihi figure reused
    e_spike_local=1.7 * PJ,  # estimate: Loihi figure reused
    e_hop=3.5 * PJ,  # estimate: Loihi figure reused
    static_power=0.02,  # estimate
    t_synop=3.5 * NS / 2,  # estimate: Intel reports up to 10x faster processing; 2x assumed per op
    t_update=8.4 * NS / 2,
    t_hop=5.3 * NS,
    sources=("Orchard et al., Efficient neuromorphic signal processing with Loihi 2, SiPS 2021", "Intel Loihi 2 brief"),
)

TRUENORTH = ChipProfile(
    name="truenorth", title="IBM TrueNorth",
    cores=4096,  # Merolla et al., Science 345 (2014): 4,096 neurosynaptic cores
    neurons_per_core=256,  # Merolla 2014: 256 neurons per core
    mesh=(64, 64),  # Merolla 2014: cores tiled as a 64 x 64 array
    axons_per_core=256,  # Merolla 2014: 256 input axons per core (256 x 256 binary crossbar)
    fan_out_cores=1,  # Merolla 2014: each neuron targets exactly one axon on one core
    neuron_models=("lif", "if"),  # Cassidy et al., IJCNN 2013: LIF with linear leak; no non-spiking readout
    weight_bits=2,  # binary crossbar x 4 axon types (Merolla 2014); mapped as ternary +/-w (Esser et al., PNAS 2016)
    state_bits=20,  # Cassidy 2013: 20-bit signed membrane potential
    decay="linear",  # Cassidy 2013: constant leak per tick
    e_synop=26 * PJ,  # Merolla 2014: 26 pJ per synaptic event
    e_update_active=26 * PJ,  # estimate: neuron update not reported separately; synaptic event figure reused
    e_update_inactive=0.0,  # TrueNorth is event-driven within a tick: idle neurons cost only static power
    e_spike_local=0.0,  # included in the 26 pJ synaptic event (Merolla 2014)
    e_hop=2.3 * PJ,  # estimate: Akopyan et al., IEEE TCAD 2015 give a few pJ per hop
    static_power=0.042,  # estimate from Merolla 2014: 63 mW total at 20 Hz mean rate, ~2/3 of it leakage
    t_synop=1.0 * NS,  # estimate: crossbar read per axon row
    t_update=1.0 * NS,
    t_hop=10 * NS,  # estimate
    sources=("Merolla et al., Science 2014", "Cassidy et al., IJCNN 2013", "Akopyan et al., IEEE TCAD 2015"),
)

SPINNAKER2 = ChipProfile(
    name="spinnaker2", title="SpiNNaker 2",
    cores=152,  # Mayr et al., arXiv:1911.02385 (2019): 152 ARM processing elements per chip
    neurons_per_core=256,  # estimate: software neurons; 256 per core as SpiNNaker's default PyNN mapping
    mesh=(8, 19),  # 38 quad-PEs on a 2D NoC; laid out as 8 x 19 PEs (assumed)
    recurrent="any",  # Mayr 2019: spikes are routed in software tables, any source to any target
    synapses_per_core=32 * 1024,  # 128 KB SRAM per PE (Mayr 2019) at 4 bytes per synapse row entry: estimate
    weight_bits=16,  # estimate: 16-bit fixed-point synaptic weights in the software kernels
    state_bits=32,  # s16.15 fixed-point membrane (SpiNNaker software convention)
    state_frac_bits=8,  # estimate: 16-bit weights placed in the 32-bit accumulator with 8 guard bits
    decay="multiplicative", decay_bits=16,  # fixed-point multiply by exp(-dt/tau) in 16-bit fraction
    e_synop=450 * PJ,  # keras-spiking ModelEnergy: SpiNNaker 2, 450 pJ per synaptic op
    e_update_active=2.19 * NJ,  # keras-spiking ModelEnergy: SpiNNaker 2, 2.19 nJ per neuron update
    e_update_inactive=2.19 * NJ,  # software updates every neuron each tick
    e_spike_local=0.0,
    e_hop=5 * PJ,  # estimate: NoC packet hop
    static_power=0.1,  # estimate
    t_synop=10 * NS,  # estimate: ~ tens of cycles at 200 MHz per synaptic event
    t_update=50 * NS,  # estimate
    t_hop=10 * NS,  # estimate
    sources=("Mayr et al., SpiNNaker 2, arXiv:1911.02385", "keras-spiking ModelEnergy device table"),
)

SPECK = ChipProfile(
    name="speck", title="SynSense Speck",
    cores=9,  # Richter et al., Speck, arXiv:2304.06793 (2023): 9 convolutional SNN cores (one layer each)
    neurons_per_core=65536,  # estimate: 327k neurons over 9 cores (Richter 2023), largest cores 64 K
    mesh=(1, 9),  # cores form a configurable chain; treated as a 1 x 9 line
    max_kernel=16,  # sinabs-dynapcnn documentation: kernel up to 16 x 16
    max_channels=1024,  # sinabs-dynapcnn documentation: up to 1,024 feature maps per layer
    synapse_types=("conv2d", "pool"),  # DYNAP-CNN cores compute convolutions and sum pooling (dense = full-size conv)
    neuron_models=("if",),  # DYNAP-CNN: non-leaky integrate-and-fire neurons
    weight_bits=8,  # sinabs-dynapcnn: 8-bit weights
    state_bits=16,  # sinabs-dynapcnn: 16-bit neuron state
    decay="none",
    e_synop=10 * PJ,  # estimate: Richter 2023 report sub-mW operation; per-op figure not published
    e_update_active=10 * PJ,  # estimate
    e_update_inactive=0.0,  # event-driven: only neurons receiving input are touched
    e_hop=1 * PJ,  # estimate
    static_power=0.0007,  # Richter 2023: ~0.7 mW resting power (order of magnitude)
    t_synop=5 * NS, t_update=5 * NS, t_hop=5 * NS,  # estimates
    sources=("Richter et al., Speck, arXiv:2304.06793", "sinabs-dynapcnn documentation"),
)

XYLO_AUDIO2 = ChipProfile(
    name="xylo", title="SynSense Xylo Audio 2",
    cores=1,  # Bos et al., arXiv:2208.12991 (2022): one synchronous SNN core
    neurons_per_core=1008,  # Bos 2022 / Rockpool Xylo docs: 1,000 hidden + 8 output neurons
    mesh=(1, 1),
    shared_core=True,
    max_fan_in=63,  # Rockpool's Xylo documentation: up to 63 inputs per neuron
    recurrent="hidden",  # Bos 2022: input, recurrent (hidden to hidden) and readout weights; the readout has no loop
    max_hidden_neurons=1000,  # Bos 2022: 1,000 hidden neurons
    max_input_channels=16,  # Bos 2022: 16 input channels
    max_output_neurons=8,  # Bos 2022: 8 output neurons
    weight_bits=8,  # Bos 2022: 8-bit signed weights
    state_bits=16,  # Bos 2022: 16-bit synaptic and membrane state
    decay="shift",  # Bos 2022: decays as bit shifts, v <- v - (v >> dash)
    e_synop=5 * PJ,  # estimate: Bos 2022 report ~ hundreds of uW for audio KWS; per-op not published
    e_update_active=5 * PJ,  # estimate
    e_update_inactive=5 * PJ,  # synchronous core updates every neuron each step
    e_hop=0.0,
    static_power=0.0002,  # estimate: ~200 uW idle (Bos 2022 order of magnitude)
    t_synop=20 * NS, t_update=20 * NS, t_hop=0.0,  # estimate: 50 MHz clock, one op per cycle
    sources=("Bos et al., Sub-mW neuromorphic SNN audio processing with Rockpool and Xylo, arXiv:2208.12991",),
)

PROFILES = {p.name: p for p in (LOIHI, LOIHI2, TRUENORTH, SPINNAKER2, SPECK, XYLO_AUDIO2)}


@dataclass(frozen=True)
class DenseReference:
    """A conventional processor running the same network as an ANN (every MAC computed)."""
    name: str
    e_mac: float  # joules per multiply-accumulate
    source: str


DENSE_REFERENCES = (
    DenseReference("cpu", 8.6 * NJ, "keras-spiking ModelEnergy: CPU 8.6 nJ per op"),
    DenseReference("gpu", 0.3 * NJ, "keras-spiking ModelEnergy: GPU 0.3 nJ per op"),
    DenseReference("45nm-fp32", 4.6 * PJ, "Horowitz, ISSCC 2014: float32 MAC 4.6 pJ (mult 3.7 + add 0.9)"),
    DenseReference("45nm-int8", (0.2 + 0.03) * PJ, "Horowitz, ISSCC 2014: int8 mult 0.2 pJ + int8 add 0.03 pJ"),
)

# Horowitz, ISSCC 2014, 45 nm: energy of one accumulate for spike-driven (AC) work.
E_AC_FP32_45NM = 0.9 * PJ
E_AC_INT8_45NM = 0.03 * PJ


def get_profile(name: str) -> ChipProfile:
    """The ``ChipProfile`` called ``name`` (case-insensitive); ``ConfigError`` lists the valid chips."""
    try:
        return PROFILES[name.lower()]
    except KeyError:
        raise ConfigError(f"hardware: unknown chip {name!r}; valid chips: {sorted(PROFILES)}") from None
