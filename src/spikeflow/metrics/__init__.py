"""Model metrics with NeuroBench's definitions: footprint, sparsity, synaptic operations, membrane updates."""

from spikeflow.metrics.energy import (
                                      TECHNOLOGIES,
                                      Counts,
                                      EnergyReport,
                                      Technology,
                                      counts_until,
                                      decision_steps,
                                      energy,
                                      measure,
)
from spikeflow.metrics.neurobench_defs import Workload, connection_sparsity, footprint, workload_metrics

__all__ = ["Counts", "EnergyReport", "TECHNOLOGIES", "Technology", "Workload", "connection_sparsity", "counts_until",
           "decision_steps", "energy", "footprint", "measure", "workload_metrics"]
