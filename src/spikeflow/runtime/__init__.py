"""Engines that execute NIR graphs: ``dense`` (clock-driven, torch), ``event`` (event-driven,
numba), ``clockfree`` (asynchronous, exact), and ``Stream`` (anytime answers).

Every engine runs the same ``CompiledGraph`` (``graph.compile_graph``): one validated form
of a ``nir.NIRGraph`` with NIR units and the time/cycle policy stated in ``graph``.
"""

from spikeflow.runtime.anytime import AnytimeReport, evaluate_over_time
from spikeflow.runtime.clockfree import ClockFreeEngine
from spikeflow.runtime.dense import DenseEngine
from spikeflow.runtime.event import EventEngine
from spikeflow.runtime.graph import CompiledGraph, compile_graph
from spikeflow.runtime.result import RunResult
from spikeflow.runtime.stream import Prediction, Stream, load_model

__all__ = [
    "AnytimeReport", "ClockFreeEngine", "CompiledGraph", "DenseEngine", "EventEngine", "Prediction", "RunResult",
    "Stream", "compile_graph", "evaluate_over_time", "load_model",
]
