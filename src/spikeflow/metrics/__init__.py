"""Model metrics with NeuroBench's definitions: footprint, sparsity, synaptic operations, membrane updates.

The energy model that counts memory traffic is ``spikeflow.metrics.energy`` (``measure``, ``energy``)."""

from spikeflow.metrics.neurobench_defs import Workload, connection_sparsity, footprint, workload_metrics

__all__ = ["Workload", "connection_sparsity", "footprint", "workload_metrics"]
