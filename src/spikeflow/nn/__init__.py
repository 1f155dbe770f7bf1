"""Torch modules for spiking networks: neuron layers, recurrent layers, time folding, Sequential."""

from spikeflow.nn.conv import SpikeConv2d
from spikeflow.nn.elementwise import Delay, Scale, SumPool2d, Threshold
from spikeflow.nn.fold import TimeFold
from spikeflow.nn.linear_lif import LinearLIF
from spikeflow.nn.neuron import ALIF, IF, LI, LIF, CubaLI, CubaLIF, Izhikevich, NeuronLayer
from spikeflow.nn.recurrent import RALIF, RIF, RLIF, RCubaLIF, Recurrent
from spikeflow.nn.sequential import Sequential
from spikeflow.nn.synapse import SpikeLinear

__all__ = [
    "ALIF", "Delay", "IF", "LI", "LIF", "LinearLIF", "CubaLI", "CubaLIF", "Izhikevich", "NeuronLayer", "RALIF", "RIF",
    "RLIF", "RCubaLIF", "Recurrent", "Scale", "Sequential", "SpikeConv2d", "SpikeLinear", "SumPool2d", "Threshold",
    "TimeFold",
]
