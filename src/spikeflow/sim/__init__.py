"""Large spiking networks: populations, connectivity rules, delays, monitors, multi-process runs.

>>> from spikeflow import sim
>>> net = sim.Network(dt=1e-4, seed=1)
>>> e = net.add(sim.LIF(3200, v_threshold=-50, v_leak=-49, v_reset=-60, v_init=("uniform", -60, -50)))
>>> net.connect(e, e, sim.FixedProbability(0.02), weight=1.62, channel="exc")   # doctest: +SKIP
>>> mon = net.spike_monitor(e); net.run(1.0)                                    # doctest: +SKIP
"""

from spikeflow.sim.connectivity import FixedInDegree, FixedOutDegree, FixedProbability, FromArrays, OneToOne, Rule
from spikeflow.sim.network import Network, Projection, SpikeMonitor, StateMonitor
from spikeflow.sim.populations import LIF, CubaLIF, Izhikevich, PoissonInput, SpikeSource
from spikeflow.sim.stats import cv_isi, mean_rate

__all__ = [
    "CubaLIF", "FixedInDegree", "FixedOutDegree", "FixedProbability", "FromArrays", "Izhikevich", "LIF",
    "Network", "OneToOne", "PoissonInput", "Projection", "Rule", "SpikeMonitor", "SpikeSource", "StateMonitor",
    "cv_isi", "mean_rate",
]
