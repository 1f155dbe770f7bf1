"""Engines that execute NIR graphs: ``dense`` (clock-driven, torch), ``event`` (event-driven,
numba), ``clockfree`` (asynchronous, exact), and ``Stream`` (anytime answers)."""

from spikeflow.runtime.dense import DenseEngine
from spikeflow.runtime.event import EventEngine
from spikeflow.runtime.graph import CompiledGraph, compile_graph
from spikeflow.runtime.result import RunResult

__all__ = ["CompiledGraph", "DenseEngine", "EventEngine", "RunResult", "compile_graph"]
