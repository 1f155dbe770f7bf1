"""Neuromorphic hardware model: chip profiles, quantisation, core mapping, integer runs, energy and latency."""

from spikeflow.hardware.board import BOARDS, Board, BoardUse, board_report
from spikeflow.hardware.compiler import CompiledNetwork, QuantizationWarning, compile_network, limit_error
from spikeflow.hardware.cost import CostReport, chip_cost, dense_costs, dense_macs
from spikeflow.hardware.engine import RunResult, float_run, run_integer
from spikeflow.hardware.network import FloatLayer, FloatNet, float_reference, from_nir
from spikeflow.hardware.precision import LayerPrecision, PrecisionLossError
from spikeflow.hardware.profiles import DENSE_REFERENCES, PROFILES, ChipProfile, get_profile
from spikeflow.hardware.synapse import ConvSynapse, DenseSynapse, Synapse

__all__ = [
    "CompiledNetwork", "QuantizationWarning", "compile_network", "limit_error", "CostReport", "chip_cost",
    "dense_costs", "dense_macs", "RunResult", "float_run", "run_integer", "FloatLayer", "FloatNet",
    "float_reference", "from_nir", "DENSE_REFERENCES", "PROFILES", "ChipProfile", "get_profile",
    "ConvSynapse", "DenseSynapse", "Synapse", "BOARDS", "Board", "BoardUse", "board_report", "LayerPrecision",
    "PrecisionLossError",
]
