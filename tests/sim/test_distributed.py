"""Two gloo processes give the same spike trains and state samples as one process."""

import os
import subprocess
import sys
import textwrap

import numpy as np

from spikeflow import sim
from spikeflow.sim.distributed import free_port

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "src")

NET = textwrap.dedent(
    """
    import numpy as np
    from spikeflow import sim

    def build():
        net = sim.Network(dt=1e-4, seed=11)
        poi = net.add(sim.PoissonInput(50, rate=400.0))
        e = net.add(sim.LIF(160, tau_mem=20e-3, v_threshold=-50.0, v_leak=-49.0, v_reset=-60.0,
                            refractory=2e-3, v_init=("uniform", -60.0, -50.0)))
        i = net.add(sim.LIF(41, tau_mem=20e-3, v_threshold=-50.0, v_leak=-49.0, v_reset=-60.0,
                            v_init=("uniform", -60.0, -50.0)))
        net.connect(poi, e, sim.FixedOutDegree(20), weight=2.0, delay=5e-4)
        for src, w, ch in ((e, 1.62, "exc"), (i, -9.0, "inh")):
            for tgt in (e, i):
                net.connect(src, tgt, sim.FixedProbability(0.1), weight=w, channel=ch, delay=3e-4)
        net.connect(e, i, sim.FixedInDegree(5), weight=0.5, delay=4e-4)
        mons = [net.spike_monitor(e), net.spike_monitor(i, indices=[0, 3, 40]), net.spike_monitor(poi)]
        vm = net.state_monitor(e, "v", [0, 100, 159], every=5e-4)
        return net, mons, vm
    """
)

CHILD = NET + textwrap.dedent(
    """
    import sys
    from spikeflow.sim import distributed
    rank, world = distributed.init_from_env()
    net, mons, vm = build()
    net.run(0.06, progress=False)
    net.run(0.04, progress=False)
    if rank == 0:
        np.savez(sys.argv[1], *[a for m in mons for a in (m.indices, m.steps)], vm.values)
    distributed.shutdown()
    """
)


def test_two_ranks_equal_one_process(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    out = tmp_path / "two.npz"
    port = free_port()
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                   PYTHONPATH=os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]))
        procs.append(subprocess.Popen([sys.executable, str(script), str(out)], env=env))
    assert [p.wait(timeout=600) for p in procs] == [0, 0]

    ns = {}
    exec(NET, ns)
    net, mons, vm = ns["build"]()
    net.run(0.06, progress=False)
    net.run(0.04, progress=False)
    two = np.load(out)
    one = [a for m in mons for a in (m.indices, m.steps)] + [vm.values]
    assert len(mons[0].indices) > 100 and len(mons[1].indices) > 5
    for k, a in enumerate(one):
        b = two[f"arr_{k}"]
        if a.ndim == 1:  # spike lists: same (step, index) pairs
            a = a.reshape(-1)
        np.testing.assert_array_equal(a, b)
    assert not np.isnan(vm.values).any() and vm.values.shape == (200, 3)
    assert isinstance(net, sim.Network)
