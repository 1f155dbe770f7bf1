"""How a NIR file is read: the convention passed, declared in metadata or proposed by the shape
heuristics (with a warning that says what was assumed and how to turn it off); Norse's units are
corrected only while a file is in them; a tau below dt is a warning naming node, value and dt."""

import warnings

import nir
import numpy as np
import pytest
import torch

from spikeflow import ir
from spikeflow.errors import NIRError
from spikeflow.ir import conventions

T, B = 60, 3
W = np.array([[1.5, 0.5, 1.0], [0.8, 1.2, 0.3]], np.float32)


def _x(seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, 3, generator=g) < 0.5).float()


def _norse_shaped(tau_mem, tau_syn, w_in=1.0):
    """A graph as Norse 1.1 writes one: 0-d neuron parameters, an Input with a batch axis of 1, no dt."""
    f = lambda v: np.array(v, np.float32)  # noqa: E731
    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([1, 3])), "fc": nir.Affine(W, np.zeros(2, np.float32)),
               "lif": nir.CubaLIF(tau_syn=f(tau_syn), tau_mem=f(tau_mem), r=f(1.0), v_leak=f(0.0),
                                  v_threshold=f(1.0), w_in=f(w_in)),
               "output": nir.Output(output_type=np.array([1, 2]))},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")], type_check=False)


def _messages(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    return result, " | ".join(str(w.message) for w in caught)


def test_norse_file_with_physical_taus_is_not_corrected_twice():
    dt = 1e-3
    scaled = _norse_shaped(tau_mem=dt * 10e-3, tau_syn=dt * 5e-3)  # Norse's dt * tau
    physical = _norse_shaped(tau_mem=10e-3, tau_syn=5e-3, w_in=5e-3 / dt)  # the same network in seconds
    ref, text = _messages(lambda: ir.from_nir(scaled))
    assert "recognised as a norse file" in text and "dt * tau" in text  # the guess and what it assumed
    lif = ref.flat.nodes["lif"]
    assert float(lif.tau_mem) == pytest.approx(10e-3) and float(lif.w_in) == pytest.approx(5.0)
    y_ref = ref(_x())
    assert y_ref.sum() > 10
    # the physical file looks the same, but its taus are >= dt: read as written, and the warning says so
    m, text = _messages(lambda: ir.from_nir(physical))
    assert "looks like a Norse file" in text and "not divided by dt" in text and "convention='norse'" in text
    assert float(m.flat.nodes["lif"].tau_mem) == pytest.approx(10e-3)
    assert m(_x()).sum() > 10  # divided again, tau would be 1e-5 s and nothing would fire
    # asked for Norse's discretization, it is still not divided: the same network as the scaled file
    m, text = _messages(lambda: ir.from_nir(physical, convention="norse"))
    assert "taken as seconds already" in text
    assert float(m.flat.nodes["lif"].tau_mem) == pytest.approx(10e-3)
    assert torch.equal(m(_x()), y_ref)


def test_tau_below_dt_warns_naming_node_value_and_dt():
    g = nir.NIRGraph.from_list(
        nir.Affine(W, np.zeros(2, np.float32)),
        nir.LIF(tau=np.full(2, 2e-4, np.float32), r=np.ones(2, np.float32), v_leak=np.zeros(2, np.float32),
                v_threshold=np.ones(2, np.float32)))
    g.metadata = {"dt": 1e-3}
    name = next(k for k, v in g.nodes.items() if isinstance(v, nir.LIF))
    for disc, what in (("exact", "forgets its state"), ("norse", "decay 1 - dt/tau is negative"),
                       ("snntorch", "decay 1 - dt/tau is negative")):
        with pytest.warns(UserWarning, match=rf"node '{name}' \(LIF\): tau = 0\.0002 s is below dt = 0\.001 s "
                                             rf"\(.*{what}"):
            ir.from_nir(g, discretization=disc)
    g.metadata = {"dt": 1e-4}  # the same taus at a finer step: nothing to warn about
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ir.from_nir(g)


def test_heuristic_warning_says_what_it_assumed_and_how_to_turn_it_off():
    tau = np.full(2, 1e-3, np.float32)
    g = nir.NIRGraph.from_list(
        nir.Affine(W, np.zeros(2, np.float32)),
        nir.LIF(tau=tau, r=tau / np.float32(1e-4), v_leak=np.zeros(2, np.float32), v_threshold=np.ones(2, np.float32)))
    m, text = _messages(lambda: ir.from_nir(g))
    assert "recognised as a snntorch file by its shape (every LIF/CubaLIF has r = tau / 1e-4 s" in text
    assert "dt = 0.0001 s, discretization = 'snntorch'" in text
    assert "convention='spikeflow' (CLI: --convention spikeflow)" in text
    assert m.dt == 1e-4 and m.layers["lif"].model.name == "lif_euler"
    m, text = _messages(lambda: ir.from_nir(g, convention="spikeflow", dt=1e-3))
    assert text == "" and m.dt == 1e-3 and m.layers["lif"].model.name == "lif"
    g.metadata = {"dt": 1e-3}  # a file that states its time base is read as written: nothing is guessed
    m, text = _messages(lambda: ir.from_nir(g))
    assert text == "" and m.dt == 1e-3


def test_metadata_declares_the_convention():
    g = _norse_shaped(tau_mem=1e-5, tau_syn=5e-6)
    g.metadata = {"convention": "norse"}
    m, text = _messages(lambda: ir.from_nir(g))
    assert "recognised" not in text and m.dt == 1e-3
    assert float(m.flat.nodes["lif"].tau_mem) == pytest.approx(1e-2)
    assert m.layers["lif"].model.name == "cubalif_euler"
    g.metadata = {"convention": "spikeflow", "dt": 1e-3}  # declared as written: Norse's 1e-5 s taus are warned about
    with pytest.warns(UserWarning, match=r"node 'lif' \(CubaLIF\): tau_mem = 1e-05 s is below dt = 0\.001 s"):
        m = ir.from_nir(g)
    assert m.layers["lif"].model.name == "cubalif"
    g.metadata = {"convention": "brian"}
    with pytest.raises(NIRError, match="metadata 'convention' must be one of"):
        ir.from_nir(g)
    with pytest.raises(NIRError, match="convention must be"):
        ir.from_nir(_norse_shaped(1e-5, 5e-6), convention="brian")


def test_cli_convention_flag_decides_and_the_guess_says_how_to_turn_it_off(tmp_path, capsys):
    from spikeflow.cli import main

    path = tmp_path / "norse_shaped.nir"
    ir.write(_norse_shaped(tau_mem=1e-5, tau_syn=5e-6), path)
    np.savez(tmp_path / "in.npz", spikes=_x().numpy())
    assert main(["nir", "info", str(path)]) == 0
    assert "looks like a norse file; --convention spikeflow reads it as written" in capsys.readouterr().out
    assert main(["nir", "run", str(path), "--input", str(tmp_path / "in.npz")]) == 0
    err = capsys.readouterr().err
    assert "recognised as a norse file" in err and "--convention spikeflow" in err
    assert main(["nir", "run", str(path), "--input", str(tmp_path / "in.npz"), "--convention", "spikeflow",
                 "--dt", "0.001"]) == 0
    err = capsys.readouterr().err
    assert "recognised" not in err and "node 'lif' (CubaLIF): tau_mem = 1e-05 s is below dt = 0.001 s" in err


def test_norse_taus_invert_norses_float32_writing():
    # Norse writes tau = dt / tau_inv as float32 (1 / tau_inv) * dt and steps with dt * tau_inv in float32
    dt = 1e-3
    inv = np.array([100.0, 200.0, 50.0, 123.456, 1 / 0.0073], np.float32)
    written = (np.float32(1) / inv) * np.float32(dt)
    tau = conventions.norse_tau(written, dt)
    assert np.array_equal(np.float32(dt) * (1.0 / tau).astype(np.float32), np.float32(dt) * inv)
    assert tau == pytest.approx(1.0 / inv.astype(np.float64), rel=1e-6)
    # any written tau is, to float32 precision, tau / dt
    assert conventions.norse_tau(np.float64(2.5e-5), dt) == pytest.approx(2.5e-2)
