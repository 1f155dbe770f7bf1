"""spikeflow's Loihi integer run equals Intel Lava's bit-accurate Loihi models, bit for bit.

Each case compiles a NIR graph for ``loihi``, runs spikeflow's integer engine, and hands the same
integers (weights, weight exponent, du, dv, threshold mantissa, bias mantissa and exponent) and input
spikes to tests/hardware/lava_chain.py, which builds Lava ``Dense`` + ``LIF`` processes and runs them
with ``Loihi2SimCfg(select_tag="fixed_pt")`` (``PyDenseModelBitAcc``, ``PyLifModelBitAcc``) in the
Lava venv (benchmarks/peer_venvs.py). Spikes, current ``u`` and voltage ``v`` of every neuron must be
equal at every step. Cases: random LIF chains, random CUBA chains (current state), and a small
model trained on nmnist5k.
"""

import os
import subprocess

import nir
import numpy as np
import pytest

from spikeflow.hardware import compile_network, run_integer
from tests.hardware.hw_nets import chain
from tests.peers import venv_python

pytestmark = pytest.mark.interop

HERE = os.path.dirname(os.path.abspath(__file__))


def lava_runs(cases, tmp_path):
    """Run each ``(compiled, x [T, n_in], name)`` in Lava (one process for all); per case, per layer ``(s, u, v)``."""
    args = []
    for compiled, x, name in cases:
        data = {"x": x.astype(np.int64), "n_layers": len(compiled.layers)}
        for k, layer in enumerate(compiled.layers):
            p = layer.loihi
            data.update({f"w{k}": layer.weight, f"weight_exp{k}": p.weight_exp, f"du{k}": p.du, f"dv{k}": p.dv,
                         f"vth{k}": p.vth, f"bias_mant{k}": p.bias_mant, f"bias_exp{k}": p.bias_exp})
        src, dst = tmp_path / f"{name}-in.npz", tmp_path / f"{name}-out.npz"
        np.savez(src, **data)
        args += [str(src), str(dst)]
    proc = subprocess.run([venv_python("lava"), os.path.join(HERE, "lava_chain.py"), *args],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = []
    for (compiled, _, _), dst in zip(cases, args[1::2]):
        z = np.load(dst, allow_pickle=False)
        out.append([(z[f"s{k}"], z[f"u{k}"], z[f"v{k}"]) for k in range(len(compiled.layers))])
    return out


def assert_equal_to_lava(cases, tmp_path):
    """spikeflow and Lava on each ``(compiled, x [T, 1, n_in], name)``; per case, the spike count of each
    spiking layer and Lava's ``(u, v)`` per layer."""
    results = []
    for (compiled, x, name), lava in zip(cases, lava_runs([(c, x[:, 0], n) for c, x, n in cases], tmp_path)):
        res = run_integer(compiled, x, record_state=True)
        counts = []
        for k, (layer, (s, u, v)) in enumerate(zip(compiled.layers, lava)):
            su, sv = res.states[k][0][:, 0], res.states[k][1][:, 0]
            for what, ours, theirs in (("u", su, u), ("v", sv, v)):
                bad = np.argwhere(ours != theirs)
                assert bad.size == 0, f"{name} layer {k} ({layer.kind}): {what} differs first at (step, neuron) " \
                                      f"{tuple(bad[0])}: spikeflow {ours[tuple(bad[0])]}, Lava {theirs[tuple(bad[0])]}"
            if layer.spiking:
                np.testing.assert_array_equal(res.layer_spikes[k][:, 0], s, err_msg=f"{name} layer {k} spikes")
                counts.append(int(s.sum()))
            else:
                assert s.sum() == 0  # a readout never reaches the largest threshold here
            assert np.abs(v).sum() > 0
        results.append((counts, [(u, v) for _, u, v in lava]))
    return results


def _layers(rng, sizes, cuba, th_range=(0.3, 1.0), bias_sd=0.05):
    nodes = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        w = rng.normal(0.5, 1.0, (b, a)) * (4.0 / np.sqrt(a))  # mostly excitatory: every layer fires
        nodes.append(nir.Affine(w, rng.normal(0.0, bias_sd, b)))
        tau = np.full(b, rng.uniform(5e-3, 40e-3))
        th = np.full(b, rng.uniform(*th_range))
        if cuba:
            nodes.append(nir.CubaLIF(tau_syn=np.full(b, rng.uniform(2e-3, 10e-3)), tau_mem=tau, r=np.full(b, 4.0),
                                     v_leak=np.zeros(b), v_threshold=th, v_reset=np.zeros(b), w_in=np.ones(b)))
        else:
            nodes.append(nir.LIF(tau=tau, r=np.full(b, 2.0), v_leak=np.zeros(b), v_threshold=th, v_reset=np.zeros(b)))
    return nodes


@pytest.mark.parametrize("cuba", [False, True], ids=["lif", "cuba"])
def test_random_chains_equal_lava(cuba, tmp_path):
    cases = []
    for seed in (0, 1, 3):
        rng = np.random.default_rng(100 * seed + cuba)
        sizes = [int(rng.integers(12, 40)) for _ in range(4)]
        # seed 3: thresholds tiny against the weights (weight exponent 7) and large biases (bias exponent > 0),
        # so that u wraps around 24 bits and v saturates
        extreme = {"th_range": (1e-3, 2e-3)} if seed == 3 else {}
        graph = chain(sizes[0], *_layers(rng, sizes, cuba, **extreme))
        compiled = compile_network(graph, "loihi", dt=1e-3)
        assert compiled.latency_steps == 3
        if cuba:
            assert all(L.loihi.du < 4095 for L in compiled.layers)  # a current that persists over steps
        if seed == 3:
            assert max(L.loihi.weight_exp for L in compiled.layers) == 7
            assert max(int(L.loihi.bias_exp.max()) for L in compiled.layers) > 0
        x = (rng.random((40, 1, sizes[0])) < 0.3).astype(np.float64)
        cases.append((compiled, x, f"{'cuba' if cuba else 'lif'}{seed}"))
    results = assert_equal_to_lava(cases, tmp_path)
    fired = [counts for counts, _ in results]
    assert min(min(c) for c in fired) > 0, fired  # every layer of every chain fires
    states = results[-1][1]
    wrapped = sum(int((np.abs(np.diff(u, axis=0)) > 2 ** 23).sum()) for u, _ in states)
    clipped = sum(int((np.abs(v) == 2 ** 23 - 1).sum()) for _, v in states)
    assert wrapped > 0 and clipped > 0, (wrapped, clipped)
    print(f"{'CUBA' if cuba else 'LIF'} chains: spikes per layer {fired}; u wrapped {wrapped}x, v clipped {clipped}x")


def test_trained_nmnist_model_equals_lava(tmp_path):
    import torch
    from torch import nn

    import spikeflow.nn as snn
    from spikeflow.data import load_dataset
    from spikeflow.ir import read_graph, write

    T, dt, tau, n = 30, 10e-3, 50e-3, 200
    ds = load_dataset("nmnist5k", "train", T=T)
    xs, ys = zip(*(ds[i] for i in range(n)))
    x = torch.as_tensor((np.stack([np.asarray(a) for a in xs], axis=1) > 0).astype(np.float32))  # binary spikes
    y = torch.as_tensor(np.array(ys))
    torch.manual_seed(0)
    hidden = snn.LIF(32, tau_mem=tau, dt=dt, v_threshold=0.2, reset="to_reset")  # Loihi resets v to 0
    net = snn.Sequential(nn.Flatten(), nn.Linear(2312, 32), hidden, nn.Linear(32, 10), snn.LI(10, tau_mem=tau, dt=dt))
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for i in range(0, n, 50):
        loss = nn.functional.cross_entropy(net(x[:, i:i + 50]).sum(0), y[i:i + 50])
        opt.zero_grad()
        loss.backward()
        opt.step()
    path = tmp_path / "m.nir"
    write(net, path, input_shape=(2, 34, 34))
    compiled = compile_network(read_graph(path), "loihi")
    assert [L.kind for L in compiled.layers] == ["lif", "li"]
    # the sample (of the first 50) on which the hidden layer is busiest, so that the comparison sees spikes
    xs = x[:, :50].numpy().astype(np.float64).reshape(T, 50, -1)
    busiest = int(run_integer(compiled, xs).layer_spikes[0].sum(axis=(0, 2)).argmax())
    sample = xs[:, busiest:busiest + 1]
    [(counts, _)] = assert_equal_to_lava([(compiled, sample, "nmnist")], tmp_path)
    assert counts[0] > 0, counts
    print(f"nmnist5k model: hidden spikes {counts[0]}")
