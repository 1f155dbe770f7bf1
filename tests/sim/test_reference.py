"""The numba engine against an independent dense torch loop built on ``spikeflow.neurons``.

Weights are multiples of 1/64 so every sum of arrivals is exact in any order; the two
simulations must then produce identical spike trains (and, in float64, identical state).
"""

import numpy as np
import pytest
import torch

from spikeflow import sim
from spikeflow.neurons import cuba, expsyn, izhikevich
from spikeflow.sim import rng

DT = 1e-4
STEPS = 600


def make_network(dtype, seed=3, weight_dtype="float32"):
    r = np.random.default_rng(seed)
    net = sim.Network(dt=DT, seed=seed, dtype=dtype)
    src = net.add(sim.SpikeSource(12, indices=r.integers(0, 12, 150), times=r.uniform(0, STEPS * DT, 150)))
    poi = net.add(sim.PoissonInput(8, rate=200.0))
    lif = net.add(sim.LIF(30, tau_mem=20e-3, v_threshold=-50.0, v_leak=-52.0, v_reset=-60.0, refractory=2e-3,
                          tau_syn={"exc": 5e-3, "inh": 10e-3}, v_init=r.uniform(-60, -50, 30)))
    cub = net.add(sim.CubaLIF(10, tau_syn=5e-3, tau_mem=10e-3, v_threshold=1.0, input_channels=("exc", "inh"),
                              v_init=r.uniform(0, 1, 10)))
    izh = net.add(sim.Izhikevich(6, tau_syn={"exc": 5e-3}))
    conns = []

    def connect(a, b, n_pairs, wlo, whi, channel, dmax):
        s = r.integers(0, a.n, n_pairs)
        t = r.integers(0, b.n, n_pairs)
        w = r.integers(wlo, whi, n_pairs) / 64.0
        w = w.astype(weight_dtype).astype(np.float64)  # the values the network stores
        d = r.integers(1, dmax + 1, n_pairs) * DT
        net.connect(a, b, sim.FromArrays(s, t), weight=w, channel=channel, delay=d, weight_dtype=weight_dtype)
        conns.append((a, b, s, t, w, np.floor(d / DT + 0.5).astype(int), channel))

    connect(src, lif, 120, 64, 400, "exc", 4)
    connect(poi, lif, 60, 64, 300, "exc", 2)
    connect(lif, lif, 200, 16, 200, "exc", 5)
    connect(lif, lif, 80, -400, -16, "inh", 3)
    connect(lif, cub, 60, 3000, 9000, "exc", 3)
    connect(src, cub, 40, -2000, -100, "inh", 2)
    connect(lif, izh, 60, 64, 900, "exc", 4)
    mons = [net.spike_monitor(p) for p in (src, poi, lif, cub, izh)]
    vmon = net.state_monitor(lif, "v", [0, 5, 29], every=2 * DT)
    return net, (src, poi, lif, cub, izh), conns, mons, vmon


def reference(net, pops, conns, dtype):
    src, poi, lif, cub, izh = pops
    td = getattr(torch, dtype)
    off = {id(p): net.offset(p) for p in pops}
    pl = expsyn.ExpSynLIFParams(lif.tau_mem, tuple(lif.tau_syn.values()), lif.v_threshold, lif.v_leak, lif.v_reset,
                                DT, lif.reset, lif.refractory)
    sl = expsyn.init_state((lif.n,), pl, td)
    sl = sl._replace(v=torch.as_tensor(np.asarray(lif.v_init), dtype=td))
    pc = cuba.CubaLIFParams(cub.tau_syn, cub.tau_mem, cub.v_threshold, cub.v_leak, cub.v_reset, cub.r, cub.w_in,
                            DT, cub.reset)
    sc = cuba.init_state((cub.n,), pc, td)._replace(v=torch.as_tensor(np.asarray(cub.v_init), dtype=td))
    pz = izhikevich.IzhikevichParams(izh.a, izh.b, izh.c, izh.d, izh.v_peak, DT)
    sz = izhikevich.init_state((izh.n,), pz, td)
    gz = torch.zeros(izh.n, dtype=td)
    bz = torch.as_tensor(np.exp(-DT / izh.tau_syn["exc"]), dtype=td)
    arrivals = {}  # step -> {pop id: [channels, n]}
    src_steps = np.floor(src.times / DT + 0.5).astype(int)
    spikes, v_samples = [], []
    for s in range(STEPS):
        arr = arrivals.pop(s, {})
        get = lambda p, c, arr=arr: arr.get(id(p), torch.zeros((2, p.n), dtype=td))
        fired = {}
        fired[id(src)] = np.unique(src.indices[src_steps == s])
        g0 = off[id(poi)]
        fired[id(poi)] = np.array([i for i in range(poi.n) if rng.uniform_at(net.seed, rng.STREAM_POISSON,
                                   g0 + i, s, 0) < poi.rate * DT], dtype=int)
        if s % 2 == 0:
            v_samples.append(sl.v[[0, 5, 29]].double().numpy().copy())
        z, sl = expsyn.step(get(lif, 0), sl, pl)
        fired[id(lif)] = np.flatnonzero(z.numpy())
        a = get(cub, 0)
        z, sc = cuba.step(a[0] + a[1], sc, pc)
        fired[id(cub)] = np.flatnonzero(z.numpy())
        gz = gz + get(izh, 0)[0]
        x = gz
        gz = gz * bz
        z, sz = izhikevich.step(x, sz, pz)
        fired[id(izh)] = np.flatnonzero(z.numpy())
        for p in pops:
            for i in fired[id(p)]:
                spikes.append((s, off[id(p)] + int(i)))
        for a_pop, b_pop, s_idx, t_idx, w, d, ch in conns:
            c = b_pop.channels.index(ch)
            for i in fired[id(a_pop)]:
                for q in np.flatnonzero(s_idx == i):
                    slot = arrivals.setdefault(s + d[q], {}).setdefault(id(b_pop), torch.zeros((2, b_pop.n), dtype=td))
                    slot[c, t_idx[q]] += w[q]
    return sorted(spikes), sl, np.array(v_samples)


@pytest.mark.parametrize("dtype,weight_dtype", [("float64", "float32"), ("float32", "float16")])
def test_engine_equals_reference_loop(dtype, weight_dtype):
    net, pops, conns, mons, vmon = make_network(dtype, weight_dtype=weight_dtype)  # k/64 weights are exact in fp16
    net.run(STEPS * DT / 2, progress=False)
    net.run(STEPS * DT / 2, progress=False)  # two runs continue seamlessly
    got = sorted((int(s), net.offset(m.population) + int(i)) for m in mons for s, i in zip(m.steps, m.indices))
    want, lif_state, v_samples = reference(net, pops, conns, dtype)
    counts = {p.name: sum(1 for _, g in want if net.offset(p) <= g < net.offset(p) + p.n) for p in pops}
    assert all(c > 5 for c in counts.values()), counts  # every population is active
    assert got == want
    if dtype == "float64":
        np.testing.assert_array_equal(net._state["v"][net._ranges[2][1]:net._ranges[2][1] + 30], lif_state.v.numpy())
        np.testing.assert_array_equal(vmon.values, v_samples)
    else:
        np.testing.assert_allclose(vmon.values, v_samples, rtol=0, atol=1e-5)
    assert vmon.values.shape == (STEPS // 2, 3)


def test_save_and_resume_continue_exactly(tmp_path):
    net, _, _, mons, _ = make_network("float32")
    net.run(STEPS * DT, progress=False)
    straight = [(s, i) for m in mons for s, i in zip(m.steps, m.indices) if s >= STEPS // 2]
    first, _, _, _, _ = make_network("float32")
    first.run(STEPS * DT / 2, progress=False)
    first.save_state(tmp_path / "state.npz")
    resumed, _, _, mons2, _ = make_network("float32")
    resumed.load_state(tmp_path / "state.npz")
    resumed.run(STEPS * DT / 2, progress=False)
    again = [(s, i) for m in mons2 for s, i in zip(m.steps, m.indices)]
    assert sorted(again) == sorted(straight) and len(straight) > 50
    from spikeflow.errors import CheckpointError

    other = sim.Network(dt=DT, seed=99)
    other.add(sim.LIF(5))
    with pytest.raises(CheckpointError, match="saved for"):
        other.load_state(tmp_path / "state.npz")


def test_parallel_kernel_equals_serial():
    """The threaded time loop (used from 50,000 local neurons on) gives the serial loop's spikes and state."""
    runs = []
    for parallel in ("no", "yes"):
        net, _, _, mons, vmon = make_network("float32")
        net.parallel = parallel
        net.run(STEPS * DT, progress=False)
        spikes = sorted((int(s), net.offset(m.population) + int(i)) for m in mons for s, i in zip(m.steps, m.indices))
        runs.append((spikes, net._state["v"].copy(), vmon.values.copy()))
    (s0, v0, m0), (s1, v1, m1) = runs
    assert len(s0) > 50 and s0 == s1
    np.testing.assert_array_equal(v0, v1)
    np.testing.assert_array_equal(m0, m1)
