"""Chip profiles as data: limits, number formats and per-operation costs.

Every energy and time figure has an entry in the profile's ``cite`` table naming its primary
source (paper, table) or, where no vendor or paper publishes the figure, starting with
``estimate:`` and giving the reasoning. Estimates only move energy and latency totals, never
the integer arithmetic. ``spikeflow hw chips --sources`` prints the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Tuple

from spikeflow.errors import ConfigError

COST_FIELDS = ("e_synop", "e_update_active", "e_update_inactive", "e_spike_local", "e_hop", "e_step", "e_interchip",
               "static_power", "t_synop", "t_update", "t_hop")


@dataclass(frozen=True)
class ChipProfile:
    """One neuromorphic chip: capacity (cores, neurons/synapses/axons per core, fan-in and fan-out
    limits, per-core memories where cores differ), supported synapse and neuron types, number formats
    (weight and state bits, decay arithmetic, overflow), and costs: energies in joules per operation
    (``e_*``), ``static_power`` in watts while the chip is powered, times in seconds per operation
    (``t_*``), with a citation or ``estimate:`` note per cost figure in ``cite``.
    """
    name: str
    title: str
    # -- capacity -------------------------------------------------------------------
    cores: int
    neurons_per_core: int  # the largest core's neurons where cores differ (see core_neuron_memory)
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
    # Chips whose cores each hold exactly one layer and differ in memory (DYNAP-CNN/Speck): neuron-state and
    # kernel memory words per core, and the largest output / input feature-map side per layer.
    core_neuron_memory: Tuple[int, ...] | None = None
    core_kernel_memory: Tuple[int, ...] | None = None
    max_output_side: int | None = None
    max_input_side: int | None = None
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
    arithmetic: str = "generic"  # generic (the fields above) | lava-loihi (spikeflow.hardware.loihi, Lava 0.10.0)
    # -- costs (joules, seconds, watts) --------------------------------------------------
    e_synop: float = 0.0  # per synaptic operation (one spike reaching one synapse)
    e_update_active: float = 0.0  # per neuron update of a neuron that received input or is not at rest
    e_update_inactive: float = 0.0  # per neuron update of an idle neuron
    e_spike_local: float = 0.0  # per spike packet delivered inside its own core / tile
    e_hop: float = 0.0  # per router hop of a spike packet
    e_step: float = 0.0  # per time step, whole chip: work a synchronous chip does every step whatever the activity
    e_interchip: float = 0.0  # per spike packet leaving the chip for another chip (multi-chip systems)
    static_power: float = 0.0  # watts, whole chip, for as long as it is powered (see cost.py's clock modes)
    t_synop: float = 0.0
    t_update: float = 0.0
    t_hop: float = 0.0
    notes: str = ""
    sources: Tuple[str, ...] = field(default_factory=tuple)
    cite: Tuple[Tuple[str, str], ...] = field(default_factory=tuple)  # (cost field, source or "estimate: why")

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
        for mem in (self.core_neuron_memory, self.core_kernel_memory):
            if mem is not None and len(mem) != self.cores:
                raise ConfigError(f"profile {self.name}: per-core memory lists {len(mem)} cores, not {self.cores}")

    @property
    def state_range(self) -> Tuple[int, int]:
        return -(1 << (self.state_bits - 1)), (1 << (self.state_bits - 1)) - 1

    @property
    def weight_max(self) -> int:
        return (1 << (self.weight_bits - 1)) - 1

    @property
    def total_neurons(self) -> int:
        if self.core_neuron_memory is not None:
            return int(sum(self.core_neuron_memory))
        return self.cores * self.neurons_per_core

    def citations(self) -> Dict[str, str]:
        """Source (or ``estimate: ...``) of each cost figure, by field name."""
        return dict(self.cite)

    def limits(self) -> Tuple[str, ...]:
        """Names of the limits this profile checks (each can be tripped by some graph)."""
        names = ["threshold_range"]
        if not self.shared_core:
            names.insert(0, "cores")
        if self.arithmetic == "lava-loihi":
            names.append("reset")  # Loihi resets v to 0: a subtract reset is refused (spikeflow.hardware.loihi)
        if not {"lif", "if", "li"} <= set(self.neuron_models):
            names.append("neuron_model")
        if set(self.synapse_types) != {"linear", "conv2d", "pool"}:
            names.append("synapse_type")
        if self.recurrent != "any":
            names.append("recurrent")
        for f in ("axons_per_core", "synapses_per_core", "max_fan_in", "fan_out_cores", "max_hidden_neurons",
                  "max_input_channels", "max_output_neurons", "max_kernel", "max_channels", "core_neuron_memory",
                  "core_kernel_memory", "max_output_side", "max_input_side"):
            if getattr(self, f) is not None:
                names.append(f)
        if self.axons_per_core is not None and self.synapses_per_core is not None \
                and self.axons_per_core <= self.synapses_per_core:
            # One neuron cannot exceed the synapse memory before its axons; mapping uses the memory to size cores.
            names.remove("synapses_per_core")
        return tuple(names)


PJ, NJ, NS, US = 1e-12, 1e-9, 1e-9, 1e-6
KI = 1024

DAVIES = "Davies et al., Loihi, IEEE Micro 38(1):82-99, 2018, Table 2"
BLOUW = "Blouw et al., Benchmarking keyword spotting efficiency on neuromorphic hardware, NICE 2019 (arXiv:1812.01739)"
MEROLLA = "Merolla et al., A million spiking-neuron integrated circuit, Science 345(6197):668-673, 2014"
SINABS = "sinabs DynapcnnConfigBuilder.get_constraints (sinabs/backend/dynapcnn/chips/dynapcnn.py)"
SAMNA = "samna documentation, Speck 2e model page (CNN layer features)"

LOIHI = ChipProfile(
    name="loihi", title="Intel Loihi",
    cores=128,  # Davies 2018: 128 neuromorphic cores per chip
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
    arithmetic="lava-loihi",  # u, v, formats and one-step Dense delay of Lava 0.10.0's bit-accurate models
    neuron_models=("lif", "if", "li", "cubalif", "cubali"),  # Davies 2018: CUBA LIF compartments (u and v)
    e_synop=23.6 * PJ,
    e_update_active=81 * PJ,
    e_update_inactive=52 * PJ,
    e_spike_local=1.7 * PJ,
    e_hop=3.5 * PJ,
    e_interchip=320 * PJ,
    static_power=0.029,
    t_synop=3.5 * NS,
    t_update=8.4 * NS,
    t_hop=5.3 * NS,
    notes="Measured Loihi power (Blouw 2019) also includes the embedded x86 cores' per-step work, which is "
          "not modelled (e_step = 0).",
    sources=(DAVIES, BLOUW),
    cite=(
        ("e_synop", f"{DAVIES}: synaptic spike op (min) 23.6 pJ"),
        ("e_update_active", f"{DAVIES}: neuron update (active) 81 pJ"),
        ("e_update_inactive", f"{DAVIES}: neuron update (inactive) 52 pJ"),
        ("e_spike_local", f"{DAVIES}: within-tile spike energy 1.7 pJ"),
        ("e_hop", f"{DAVIES}: tile hop 3.0 pJ (E-W) and 4.0 pJ (N-S), mean"),
        ("e_step", "estimate: 0, no per-step figure published (barrier sync and x86 work are not in Table 2)"),
        ("e_interchip", "estimate: no Loihi chip-to-chip energy is published; ~10 pJ/bit for an off-chip link "
                        "x a 32-bit spike packet"),
        ("static_power", f"{BLOUW}, Table 1: Loihi idle 0.029 W (Wolf Mountain board, embedded x86 idling "
                         "included)"),
        ("t_synop", f"{DAVIES}: synaptic spike op time 3.5 ns"),
        ("t_update", "estimate: a few clock cycles per compartment update"),
        ("t_hop", f"{DAVIES}: tile hop latency 4.1 ns (E-W) and 6.5 ns (N-S), mean"),
    ),
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
    e_synop=23.6 * PJ, e_update_active=81 * PJ, e_update_inactive=52 * PJ, e_spike_local=1.7 * PJ, e_hop=3.5 * PJ,
    e_interchip=320 * PJ,
    static_power=0.029,
    t_synop=3.5 * NS / 2, t_update=8.4 * NS / 2, t_hop=5.3 * NS,
    sources=("Orchard et al., Efficient neuromorphic signal processing with Loihi 2, SiPS 2021", "Intel Loihi 2 brief"),
    cite=tuple((f, "estimate: no per-operation table is published for Loihi 2; the Loihi figure is reused")
               for f in ("e_synop", "e_update_active", "e_update_inactive", "e_spike_local", "e_hop", "e_interchip",
                         "static_power", "t_hop"))
    + (("e_step", "estimate: 0, no per-step figure published"),
       ("t_synop", "estimate: Intel reports up to 10x faster processing than Loihi; 2x assumed per op"),
       ("t_update", "estimate: Loihi's estimate halved, as t_synop")),
)

TRUENORTH = ChipProfile(
    name="truenorth", title="IBM TrueNorth",
    cores=4096,  # Merolla 2014: 4,096 neurosynaptic cores
    neurons_per_core=256,  # Merolla 2014: 256 neurons per core
    mesh=(64, 64),  # Merolla 2014: cores tiled as a 64 x 64 array
    axons_per_core=256,  # Merolla 2014: 256 input axons per core (256 x 256 binary crossbar)
    fan_out_cores=1,  # Merolla 2014: each neuron targets exactly one axon on one core
    neuron_models=("lif", "if"),  # Cassidy et al., IJCNN 2013: LIF with linear leak; no non-spiking readout
    weight_bits=2,  # binary crossbar x 4 axon types (Merolla 2014); mapped as ternary +/-w (Esser et al., PNAS 2016)
    state_bits=20,  # Cassidy 2013: 20-bit signed membrane potential
    decay="linear",  # Cassidy 2013: constant leak per tick
    # Merolla's 26 pJ is the whole chip's power divided by its synaptic events at one operating point (real time,
    # 1 kHz tick, 20 Hz mean rate, 128 active synapses per neuron), so leakage, neuron updates and routing are in it:
    # it is charged alone, with no separate static, update or hop term.
    e_synop=26 * PJ,
    t_synop=1.0 * NS, t_update=1.0 * NS, t_hop=10 * NS,
    notes="Energy is Merolla 2014's whole-chip energy per synaptic event (static included); it holds near that "
          "paper's operating point and underestimates a nearly idle chip, whose leakage it does not charge.",
    sources=(MEROLLA, "Cassidy et al., IJCNN 2013", "Akopyan et al., IEEE TCAD 2015"),
    cite=(
        ("e_synop", f"{MEROLLA}: 26 pJ per synaptic event, whole chip (static included), real time at 20 Hz mean "
                    "rate and 128 active synapses per neuron"),
        ("e_update_active", "included in the 26 pJ per synaptic event (whole-chip figure)"),
        ("e_update_inactive", "included in the 26 pJ per synaptic event (whole-chip figure)"),
        ("e_spike_local", "included in the 26 pJ per synaptic event (whole-chip figure)"),
        ("e_hop", "included in the 26 pJ per synaptic event (whole-chip figure)"),
        ("e_step", "included in the 26 pJ per synaptic event (whole-chip figure)"),
        ("e_interchip", "estimate: 0, not modelled"),
        ("static_power", "included in the 26 pJ per synaptic event (whole-chip figure), so 0 here"),
        ("t_synop", "estimate: one crossbar row read per axon event"),
        ("t_update", "estimate: one neuron update per clock"),
        ("t_hop", "estimate: ~10 clock cycles per router hop (no per-hop latency published)"),
    ),
)

KERAS_SPIKING = "the keras-spiking ModelEnergy device table (secondary; no primary per-op figure found)"
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
    e_synop=450 * PJ, e_update_active=2.19 * NJ, e_update_inactive=2.19 * NJ, e_hop=5 * PJ, static_power=0.1,
    t_synop=10 * NS, t_update=50 * NS, t_hop=10 * NS,
    sources=("Mayr et al., SpiNNaker 2, arXiv:1911.02385",),
    cite=(
        ("e_synop", f"estimate: 450 pJ per synaptic op from {KERAS_SPIKING}"),
        ("e_update_active", f"estimate: 2.19 nJ per neuron update from {KERAS_SPIKING}"),
        ("e_update_inactive", "estimate: software updates every neuron each step, so as e_update_active"),
        ("e_spike_local", "estimate: 0, not modelled"),
        ("e_hop", "estimate: a NoC packet hop of a few pJ"),
        ("e_step", "estimate: 0, not modelled"),
        ("e_interchip", "estimate: 0, not modelled"),
        ("static_power", "estimate: 0.1 W for one chip"),
        ("t_synop", "estimate: tens of cycles at 200 MHz per synaptic event"),
        ("t_update", "estimate: ~10 cycles at 200 MHz per software neuron update"),
        ("t_hop", "estimate: ~2 NoC cycles per hop"),
    ),
)

SPECK = ChipProfile(
    name="speck", title="SynSense Speck",
    cores=9,  # samna, Speck 2e: 9 convolutional layers (cores), one network layer each
    neurons_per_core=64 * KI,  # the largest cores' neuron memory (sinabs); the chip holds 320 Ki = 327,680 neurons
    mesh=(1, 9),  # cores form a configurable chain; treated as a 1 x 9 line
    core_neuron_memory=(64 * KI, 64 * KI, 64 * KI, 32 * KI, 32 * KI, 16 * KI, 16 * KI, 16 * KI, 16 * KI),  # sinabs
    core_kernel_memory=(16 * KI, 16 * KI, 16 * KI, 32 * KI, 32 * KI, 64 * KI, 64 * KI, 16 * KI, 16 * KI),  # sinabs
    max_output_side=64,  # samna, Speck 2e: max feature output size 64 x 64
    max_input_side=128,  # samna, Speck 2e: max input dimension 128 x 128
    max_kernel=16,  # samna, Speck 2e: max kernel size 16 x 16
    max_channels=1024,  # samna, Speck 2e: max feature number 1024
    synapse_types=("conv2d", "pool"),  # DYNAP-CNN cores compute convolutions and sum pooling (dense = full-size conv)
    neuron_models=("if",),  # DYNAP-CNN: non-leaky integrate-and-fire neurons (the optional leak is not modelled)
    weight_bits=8,  # samna, Speck 2e: weight resolution 8 bit
    state_bits=16,  # samna, Speck 2e: neuron state resolution 16 bit
    decay="none",
    e_synop=10 * PJ, e_update_active=10 * PJ, e_update_inactive=0.0, e_hop=1 * PJ, static_power=0.0007,
    t_synop=5 * NS, t_update=5 * NS, t_hop=5 * NS,
    sources=(SAMNA, SINABS, "Richter et al., Speck, arXiv:2304.06793"),
    cite=(
        ("e_synop", "estimate: sub-mW operation reported (Richter 2023); no per-op figure published"),
        ("e_update_active", "estimate: as e_synop"),
        ("e_update_inactive", "by design: event-driven cores touch only neurons that receive input, 0"),
        ("e_spike_local", "estimate: 0, not modelled"),
        ("e_hop", "estimate: 1 pJ per core-to-core event"),
        ("e_step", "by design: asynchronous chip with no clocked step, 0"),
        ("e_interchip", "estimate: 0, not modelled"),
        ("static_power", "estimate: ~0.7 mW resting power, order of magnitude of Richter 2023 and samna's "
                         "'~1 mW average working power'"),
        ("t_synop", "estimate: a few ns per event in the asynchronous convolution pipeline (none published)"),
        ("t_update", "estimate: as t_synop"), ("t_hop", "estimate: as t_synop"),
    ),
)

BOS2022 = "Bos & Muir, Sub-mW neuromorphic SNN audio processing applications with Rockpool and Xylo, arXiv:2208.12991"
XYLO_AUDIO2 = ChipProfile(
    name="xylo", title="SynSense Xylo Audio 2",
    cores=1,  # Bos 2022: one synchronous SNN core
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
    e_synop=5 * PJ, e_update_active=5 * PJ, e_update_inactive=5 * PJ, e_hop=0.0,
    e_step=93 * NJ,
    static_power=0.0002,
    t_synop=20 * NS, t_update=20 * NS, t_hop=0.0,
    notes="Synchronous core: most dynamic energy is the fixed per-step cost e_step, not the counted operations.",
    sources=(BOS2022, "Bos & Muir, Micro-power spoken keyword spotting on Xylo Audio 2, arXiv:2406.15112"),
    cite=(
        ("e_synop", "estimate: no per-op figure published; a few pJ per 8-bit synaptic add"),
        ("e_update_active", "estimate: as e_synop"),
        ("e_update_inactive", "estimate: the synchronous core updates every neuron each step, so as e_update_active"),
        ("e_spike_local", "by design: one core, 0"), ("e_hop", "by design: one core, 0"),
        ("e_step", f"estimate: {BOS2022} (2022) report <100 uW inference power for a small audio SNN on Xylo at "
                   "1 ms steps (93 uW, i.e. 93 nJ per step, in summaries of the paper); taken as the chip's fixed "
                   "per-step cost"),
        ("e_interchip", "by design: one chip, 0"),
        ("static_power", f"estimate: ~0.2 mW, the order of the idle power measured in {BOS2022}"),
        ("t_synop", "estimate: 50 MHz clock, one op per cycle"), ("t_update", "estimate: as t_synop"),
        ("t_hop", "by design: one core, 0"),
    ),
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
