"""Spike times and membrane traces equal Brian2's on a small network (float64, method='exact').

This pins down how spikeflow's conventions map onto Brian2's: Brian2's ``delay=0`` is our
one-step delay ``dt``; Brian2's ``refractory=5*ms`` is our ``refractory=4.9 ms`` at dt=0.1 ms.
"""

import os
import subprocess

import numpy as np
import pytest

from spikeflow import sim
from tests.peers import venv_python

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.interop
def test_small_network_equals_brian2(tmp_path):
    out = tmp_path / "b2.npz"
    subprocess.run([venv_python("brian2"), os.path.join(HERE, "brian2_small_net.py"), str(out)], check=True)
    b = np.load(out)
    dt = 1e-4
    net = sim.Network(dt=dt, dtype="float64")
    src = net.add(sim.SpikeSource(2, indices=[0, 1, 0, 0, 1], times=np.array([3, 7, 20, 21, 40]) * 1e-3))
    g = net.add(sim.LIF(3, tau_mem=20e-3, v_threshold=-50.0, v_leak=-49.0, v_reset=-60.0, refractory=5e-3 - dt,
                        tau_syn={"exc": 5e-3, "inh": 10e-3}, v_init=np.array([-60.0, -55.0, -51.0])))
    net.connect(src, g, sim.FromArrays([0, 0, 1, 1], [0, 2, 1, 2]), weight=np.array([3.0, 2.0, 4.0, -1.0]),
                channel="exc", delay=dt)
    m = net.spike_monitor(g)
    vm = net.state_monitor(g, "v", [0, 1, 2])
    net.run(0.1, progress=False)
    assert len(b["i"]) >= 6
    np.testing.assert_array_equal(m.indices, b["i"])
    np.testing.assert_array_equal(m.steps, np.round(b["t"] / dt).astype(int))
    np.testing.assert_allclose(vm.values.T, b["v"], rtol=0, atol=1e-9)
