"""Model metrics with NeuroBench's definitions: footprint, sparsity, synaptic operations, membrane updates."""

from spikeflow.metrics.neurobench_defs import Workload, connection_sparsity, footprint, workload_metrics

__all__ = ["Workload", "connection_sparsity", "footprint", "workload_metrics"]
