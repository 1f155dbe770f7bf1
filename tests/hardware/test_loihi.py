"""Loihi's number formats, what it refuses, and the one-step delay of each layer, by hand (no Lava here:
tests/hardware/test_lava_interop.py compares with Lava itself)."""

import nir
import numpy as np
import pytest

from spikeflow.errors import ConfigError, HardwareLimitError, InputError
from spikeflow.hardware import compile_network, get_profile, run_integer
from spikeflow.hardware.engine import run_aligned
from tests.hardware.hw_nets import chain, dense, if_, li, lif, poisson, random_net


def test_formats_are_lavas():
    rng = np.random.default_rng(0)
    graph = chain(20, nir.Affine(rng.normal(0, 1, (16, 20)), rng.normal(0, 0.2, 16)), lif(16, th=0.7),
                  nir.Affine(np.abs(rng.normal(0, 1, (6, 16))), np.zeros(6)), lif(6, tau=5e-3), nir.Linear(
                      rng.normal(0, 1, (3, 6))), li(3))
    layers = compile_network(graph, "loihi", dt=1e-3).layers
    mixed, excitatory, readout = layers
    for L in layers:
        p = L.loihi
        assert 0 <= p.du <= 4095 and 0 <= p.dv <= 4095 and -8 <= p.weight_exp <= 7
        assert 0 <= p.vth <= 2 ** 17 - 1 and np.all(L.threshold == p.vth << 6) and np.all(L.threshold % 64 == 0)
        assert np.all((-4096 <= p.bias_mant) & (p.bias_mant <= 4095)) and np.all((0 <= p.bias_exp) & (p.bias_exp <= 7))
        assert np.array_equal(L.bias, p.bias_mant << p.bias_exp)
        assert p.du == 4095  # LIF and LI carry no current from step to step (decay factor 4096 - 4096 = 0)
    # mixed-sign weights: Lava truncates their lowest bit, so they are even, in [-256, 254]; the largest is used
    assert mixed.loihi.sign_mode == "mixed" and np.all(mixed.weight % 2 == 0)
    assert np.abs(mixed.weight).max() == 254 and mixed.weight.min() >= -256
    assert excitatory.loihi.sign_mode == "excitatory"
    assert excitatory.weight.max() == 255 and excitatory.weight.min() >= 0
    # dv = 4096 (1 - exp(-dt/tau)): tau = 20 ms -> 200; 5 ms -> 742
    assert mixed.loihi.dv == round(4096 * (1 - np.exp(-1 / 20))) == 200 and excitatory.loihi.dv == 742
    assert readout.loihi.vth == 2 ** 17 - 1 and not readout.spiking
    assert mixed.bias.any()  # the biases are kept (mantissa << exponent)


def test_cuba_keeps_its_current():
    graph = chain(4, nir.Linear(np.full((2, 4), 0.5)),
                  nir.CubaLIF(tau_syn=np.full(2, 5e-3), tau_mem=np.full(2, 20e-3), r=np.ones(2), v_leak=np.zeros(2),
                              v_threshold=np.full(2, 0.1), v_reset=np.zeros(2), w_in=np.ones(2)))
    (layer,) = compile_network(graph, "loihi", dt=1e-3).layers
    # u <- u (4096 - (du + 1)) / 4096 with the factor exp(-dt/tau_syn) = exp(-1/5): du = 4096 (1 - 0.8187) - 1
    assert layer.loihi.du == round(4096 * (1 - np.exp(-1 / 5))) - 1 == 741
    with pytest.raises(HardwareLimitError, match="'neuron_model'"):
        compile_network(graph, "loihi2", dt=1e-3)  # only Loihi (Lava's u state) maps a CubaLIF


def test_one_step_delay_per_layer_by_hand():
    """in -> A (IF) -> B (IF), every weight 1.0, threshold 0.5; one input spike at step 0.

    Weights are one-signed: 1.0 -> 255. The threshold is 127.5 weight integers, so the weight exponent
    is 3 (mantissa 127.5 * 8 = 1020 near 1024) and the threshold 1020 << 6 = 65280. Lava's Dense delivers
    the spikes of step t at step t + 1: A sees 255 << 3 = 2040 at step 1, u = 2040 << 6 = 130560, v = u
    > 65280: A fires at step 1 (v back to 0, u gone the next step since du = 4095); B fires at step 2.
    """
    graph = chain(1, dense(1, 1, w=1.0), if_(1, th=0.5), dense(1, 1, w=1.0), if_(1, th=0.5))
    compiled = compile_network(graph, "loihi", dt=1e-3)
    a, b = compiled.layers
    assert (a.weight[0, 0], a.loihi.weight_exp, a.loihi.vth, a.loihi.dv, a.loihi.du) == (255, 3, 1020, 0, 4095)
    x = np.zeros((5, 1, 1))
    x[0] = 1
    res = run_integer(compiled, x, record_state=True)
    assert res.layer_spikes[0][:, 0, 0].tolist() == [0, 1, 0, 0, 0]
    assert res.layer_spikes[1][:, 0, 0].tolist() == [0, 0, 1, 0, 0]
    assert res.states[0][0][:, 0, 0].tolist() == [0, 130560, 0, 0, 0]  # u
    assert res.states[0][1][:, 0, 0].tolist() == [0, 0, 0, 0, 0]  # v: reset to 0 in the step it fired
    assert res.states[1][0][:, 0, 0].tolist() == [0, 0, 130560, 0, 0]
    assert compiled.latency_steps == 2
    # the idealised chip passes the spike through both layers in step 0
    same = compile_network(graph, "loihi", dt=1e-3, latency="same-step")
    assert run_integer(same, x).layer_spikes[1][:, 0, 0].tolist() == [1, 0, 0, 0, 0]
    # aligned with the float steps (run for T + 2 steps, each layer's record shifted back)
    assert run_aligned(compiled, x).layer_spikes[1][:, 0, 0].tolist() == [1, 0, 0, 0, 0]


def test_voltage_decay_truncates_toward_zero_by_hand():
    # LIF tau = 20 ms at dt = 1 ms: dv = 200, v <- trunc(v * 3896 / 4096); no input after step 1.
    graph = chain(1, dense(1, 1, w=1.0), lif(1, th=2.0))
    compiled = compile_network(graph, "loihi", dt=1e-3)
    (layer,) = compiled.layers
    assert layer.loihi.weight_exp == 0 and layer.loihi.dv == 200
    x = np.zeros((4, 1, 1))
    x[0] = 1
    v = run_integer(compiled, x, record_state=True).states[0][1][:, 0, 0].tolist()
    first = 255 << 6
    assert v[:2] == [0, first]
    assert v[2] == first * 3896 // 4096 and v[3] == v[2] * 3896 // 4096


@pytest.mark.parametrize("case,limit", [
    ({"reset": "subtract"}, "reset"),
    ({"v_reset": 0.1}, "v_reset"),
    ({"v_leak": 0.1}, "v_leak"),
    ({"tau": [10e-3, 20e-3]}, "dv"),
    ({"th": [0.5, 0.7]}, "threshold"),
])
def test_loihi_refuses_what_it_does_not_have(case, limit):
    node = lif(2, th=0.5)
    if "v_reset" in case:
        node.v_reset = np.full(2, case["v_reset"])
    if "v_leak" in case:
        node.v_leak = np.full(2, case["v_leak"])
    if "tau" in case:
        node.tau = np.array(case["tau"])
    if "th" in case:
        node.v_threshold = np.array(case["th"])
    with pytest.raises(HardwareLimitError) as info:
        compile_network(chain(3, dense(3, 2), node), "loihi", dt=1e-3, reset=case.get("reset", "to_reset"))
    msg = str(info.value)
    assert len(msg.splitlines()) == 1 and "Intel Loihi" in msg and "'lif'" in msg and f"'{limit}'" in msg
    assert info.value.layer == "lif" and info.value.limit == limit


def test_loihi_input_is_binary():
    compiled = compile_network(random_net(0, n_in=8, hidden=4, n_out=2), "loihi", dt=1e-3)
    x = poisson(1, 6, 2, 8)
    run_integer(compiled, x)
    x[3, 1, 5] = 2
    with pytest.raises(InputError, match=r"at most 1 spike per input channel per step "
                                         r"\(binary spikes\); got 2 at step 3, sample 1, channel 5"):
        run_integer(compiled, x)


def test_latency_option_is_checked():
    with pytest.raises(ConfigError, match="latency must be per-layer or same-step"):
        compile_network(random_net(0, n_in=8, hidden=4, n_out=2), "loihi", dt=1e-3, latency="instant")
    assert get_profile("loihi").arithmetic == "lava-loihi" and get_profile("loihi2").arithmetic == "generic"


def test_bias_and_current_decay_formats_are_checked():
    # A bias of 1e4 thresholds: 4095 << 7 voltage units (the largest bias) is far below it.
    graph = chain(3, nir.Affine(np.full((2, 3), 0.5), np.full(2, 1e4)), lif(2, th=0.5))
    with pytest.raises(HardwareLimitError, match=r"layer 'lif' exceeds limit 'bias_range'"):
        compile_network(graph, "loihi", dt=1e-3, reset="to_reset")
    cuba = nir.CubaLIF(tau_syn=np.array([2e-3, 8e-3]), tau_mem=np.full(2, 20e-3), r=np.ones(2), v_leak=np.zeros(2),
                       v_threshold=np.full(2, 0.1), v_reset=np.zeros(2), w_in=np.ones(2))
    with pytest.raises(HardwareLimitError, match=r"layer 'cubalif' exceeds limit 'du' \(needs 2 different values"):
        compile_network(chain(3, nir.Linear(np.full((2, 3), 0.5)), cuba), "loihi", dt=1e-3)


@pytest.mark.parametrize("key,minor", [("lava", 10), ("brian2", 13)])
def test_missing_peer_python_is_one_line(monkeypatch, tmp_path, key, minor):
    """Without a fitting Python a peer's venv cannot be made: one line saying what is missing and how to get it."""
    from tests.peers import _peer_venvs

    mod = _peer_venvs()
    venv = mod.VENVS[key]
    monkeypatch.setenv(venv.env_var, str(tmp_path / "no-python"))
    with pytest.raises(mod.PeerUnavailable, match=rf"{venv.env_var}=.*no-python does not run; .* Python 3.{minor}"):
        venv.base_python()
    monkeypatch.delenv(venv.env_var)
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))  # no versions/3.x.* there
    monkeypatch.setenv("PATH", str(tmp_path))  # no pyenv, no python3.x
    with pytest.raises(mod.PeerUnavailable) as info:
        venv.base_python()
    assert len(str(info.value).splitlines()) == 1 and f"pyenv install 3.{minor}" in str(info.value)
