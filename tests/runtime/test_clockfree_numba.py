"""The compiled clock-free engine (``ClockFreeEngine``, numba) against the Python reference
(``impl="python"``): the same spikes (node, neuron, order) at the same times to 1 ns, the same
readouts, the same one-line errors, on random graphs of every neuron kind, recurrent ones included,
and on a model built with spikeflow.nn and exported to NIR."""

import warnings
import zlib

import nir
import numpy as np
import pytest
import torch

import spikeflow.nn as snn
from spikeflow.errors import InputError, NIRError
from spikeflow.ir import to_nir
from spikeflow.runtime.clockfree import ClockFreeEngine, PyClockFreeEngine
from spikeflow.runtime.stream import Stream
from tests.runtime.rt_graphs import convnet, mlp

NS = 1e-9


def _events(rng, n, n_in, dur):
    t = np.sort(rng.integers(0, int(dur * 1e6), n)) * 1e-6
    return t, rng.integers(0, n_in, n)


def assert_same_spikes(ref, got, tol=NS):
    assert ref.keys() == got.keys()
    for node in ref:
        (tr, ir), (tg, ig) = ref[node], got[node]
        assert tr.size == tg.size, f"{node}: {tr.size} spikes (python) vs {tg.size} (numba)"
        np.testing.assert_array_equal(ir, ig, err_msg=node)
        assert np.all(np.abs(tr - tg) <= tol), f"{node}: max difference {np.abs(tr - tg).max():.3g} s"


def both(graph, **kw):
    return ClockFreeEngine(graph, impl="python", **kw), ClockFreeEngine(graph, **kw)


def compare(graph, t, idx, until, samples=None, n_min=10, **kw):
    """Run both engines (spikes and readout samples) and check they agree; returns the spike count."""
    py, nb = both(graph, **kw)
    assert isinstance(py, PyClockFreeEngine) and isinstance(nb, ClockFreeEngine)
    samples = np.linspace(0.0, until, 7)[1:] if samples is None else samples
    out_py = py.advance(t, idx, until=until, sample_times=samples)
    out_nb = nb.advance(t, idx, until=until, sample_times=samples)
    for name in out_py:
        np.testing.assert_allclose(out_nb[name], out_py[name], rtol=1e-9, atol=1e-12, err_msg=name)
    ref = {p["name"]: py.spike_times(p["name"]) for p in py.pops if p["spiking"]}
    got = {p["name"]: nb.spike_times(p["name"]) for p in nb.pops if p["spiking"]}
    assert_same_spikes(ref, got)
    assert nb.counters == py.counters
    n = sum(v[0].size for v in ref.values())
    assert n >= n_min, f"only {n} spikes: the comparison would prove little"
    return n


def _cubali(rng, n):
    return nir.CubaLI(tau_syn=rng.uniform(2e-3, 10e-3, n), tau_mem=rng.uniform(5e-3, 30e-3, n), r=np.ones(n),
                      v_leak=np.zeros(n), w_in=np.ones(n))


@pytest.mark.parametrize("kind", ["lif", "if", "cubalif"])
@pytest.mark.parametrize("readout, reset", [("li", "subtract"), ("spiking", "to_reset"), ("cubali", "to_reset"),
                                            ("identity", "subtract")])
def test_random_mlp_same_spikes_and_readout(kind, reset, readout):
    rng = np.random.default_rng(zlib.crc32(f"{kind} {reset} {readout}".encode()))
    g = mlp(rng, sizes=(20, 16, 4), kind=kind, reset=reset if kind != "if" else None, readout_li=readout == "li",
            bias=0.3)
    if readout == "cubali":
        g.nodes["out"] = _cubali(rng, 4)
    elif readout == "identity":  # Output fed by a synaptic node: an identity population
        del g.nodes["out"]
        g = nir.NIRGraph(nodes=g.nodes, edges=[e for e in g.edges if "out" not in e] + [("fc2", "output")],
                         metadata=g.metadata, type_check=False)
    t, idx = _events(rng, 80, 20, 0.05)
    compare(g, t, idx, until=0.06, spike_area=1e-3)


@pytest.mark.parametrize("kind", ["lif", "if", "cubalif"])
@pytest.mark.parametrize("delay", [1e-3, 0.37e-3])
def test_recurrent_graph_with_delay(kind, delay):
    rng = np.random.default_rng(7)
    g = mlp(rng, sizes=(20, 16, 4), kind=kind, recurrent=True, readout_li=False, bias=0.2)
    t, idx = _events(rng, 60, 20, 0.05)
    compare(g, t, idx, until=0.06, spike_area=1e-3, recurrent_delay=delay)


def test_recurrent_graph_without_delay():
    rng = np.random.default_rng(11)
    g = mlp(rng, sizes=(20, 16, 4), kind="lif", recurrent=True, readout_li=False, bias=0.0)
    t, idx = _events(rng, 60, 20, 0.05)
    compare(g, t, idx, until=0.06, spike_area=1e-3)


def test_conv_pool_graph():
    rng = np.random.default_rng(3)
    g = convnet(rng, kind="lif", size=8, channels=(2, 3, 4), n_out=3)
    t, idx = _events(rng, 80, 128, 0.05)
    compare(g, t, idx, until=0.05, spike_area=1e-3, n_min=50)


def test_cubalif_default_xtol_and_equal_time_constants():
    rng = np.random.default_rng(5)
    g = mlp(rng, sizes=(20, 16, 4), kind="cubalif", readout_li=False, bias=0.0)
    g.nodes["h"].tau_syn[:4] = g.nodes["h"].tau_mem[:4]  # equal time constants take the other closed form
    t, idx = _events(rng, 80, 20, 0.05)
    compare(g, t, idx, until=0.06, spike_area=1e-3)
    compare(g, t, idx, until=0.06, spike_area=1e-3, xtol=1e-12)


def _exported_model(seed=0):
    """The runtime demo model's architecture (AvgPool2d -> Linear -> LIF -> Linear -> LI), exported to NIR."""
    torch.manual_seed(seed)
    net = snn.Sequential(torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(2 * 4 * 4, 24),
                         snn.LIF(tau_mem=20e-3, dt=1e-3, reset="subtract"), torch.nn.Linear(24, 5),
                         snn.LI(tau_mem=20e-3, dt=1e-3))
    first = next(m for m in net.modules() if isinstance(m, torch.nn.Linear))
    with torch.no_grad():
        first.weight.mul_(100.0)  # (a spike of area dt moves the membrane by w dt / tau: make it count)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return to_nir(net, dt=1e-3, input_shape=(2, 8, 8))


def test_exported_model_same_spikes_and_readout():
    g = _exported_model()
    rng = np.random.default_rng(2)
    t, idx = _events(rng, 600, 128, 0.1)
    assert compare(g, t, idx, until=0.1, n_min=50)


def test_batch_equals_one_by_one_and_buffers_grow():
    """``run_events_batch`` (one queue per sample) gives each sample's ``run_events`` answer, also
    when every buffer starts far too small (runs stop, the buffers grow, the runs repeat)."""
    rng = np.random.default_rng(4)
    g = mlp(rng, sizes=(20, 16, 4), kind="lif", recurrent=True, readout_li=False, bias=0.0)
    samples = [_events(rng, int(n), 20, 0.05) for n in rng.integers(0, 80, 6)]
    py = ClockFreeEngine(g, impl="python", spike_area=1e-3, recurrent_delay=0.5e-3)
    refs = [py.run_events(t, i, until=0.05) for t, i in samples]
    nb = ClockFreeEngine(g, spike_area=1e-3, recurrent_delay=0.5e-3)
    nb._caps.update(rec=2, ff=1, fp=1, dq=1, dp=1)
    for ref, got in zip(refs, nb.run_events_batch(samples, until=0.05)):
        assert_same_spikes(ref, got)
    assert nb._caps["rec"] > 2 and nb._caps["ff"] > 1 and nb._caps["dq"] > 1
    nb._caps.update(rec=2, ff=1, fp=1, dq=1, dp=1)
    nb._s = nb._alloc(1)
    for (t, i), ref in zip(samples, refs):
        assert_same_spikes(ref, nb.run_events(t, i, until=0.05))
    assert sum(v[0].size for r in refs for v in r.values()) >= 30


def test_chunked_advance_equals_one_run():
    """Streaming: advancing chunk by chunk (with readout samples) is one run, also when buffers grow mid-stream."""
    rng = np.random.default_rng(7)
    g = mlp(rng, sizes=(20, 16, 4), kind="lif", recurrent=True, bias=0.0)
    t, idx = _events(rng, 120, 20, 0.06)
    py = ClockFreeEngine(g, impl="python", spike_area=1e-3, recurrent_delay=1e-3)
    nb = ClockFreeEngine(g, spike_area=1e-3, recurrent_delay=1e-3)
    nb._caps.update(rec=2, ff=1, fp=1, dq=1, dp=1)
    nb._s = nb._alloc(1)
    nb.reset()
    for lo in range(0, 61, 10):
        a, b = lo * 1e-3, (lo + 10) * 1e-3
        sel = (t >= a) & (t < b)
        samples = np.arange(a + 1e-3, b + 1e-12, 1e-3)
        ref = py.advance(t[sel], idx[sel], until=b, sample_times=samples)
        got = nb.advance(t[sel], idx[sel], until=b, sample_times=samples)
        np.testing.assert_allclose(got["output"], ref["output"], rtol=1e-9, atol=1e-12)
    assert_same_spikes({"h": py.spike_times("h")}, {"h": nb.spike_times("h")})
    assert py.spike_times("h")[0].size >= 20


def _same_error(make, run, exc, match):
    msgs = []
    for impl in ("python", "numba"):
        with pytest.raises(exc, match=match) as err:
            run(make(impl))
        msgs.append(str(err.value))
    assert msgs[0] == msgs[1] and "\n" not in msgs[0]


def test_same_errors():
    w = np.array([[0.0, 50.0], [50.0, 0.0]])
    loop = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([2])), "fc": nir.Linear(np.eye(2) * 50.0),
               "h": nir.LIF(tau=np.full(2, 0.01), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2)),
               "rec": nir.Linear(w), "output": nir.Output(np.array([2]))},
        edges=[("input", "fc"), ("fc", "h"), ("h", "rec"), ("rec", "h"), ("h", "output")],
        metadata={"dt": 1e-3}, type_check=False)
    _same_error(lambda impl: ClockFreeEngine(loop, impl=impl),
                lambda e: e.run_events(np.array([1e-3]), np.array([0]), until=0.002), NIRError, "recurrent_delay")
    h = nir.LIF(tau=np.full(2, 0.01), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2))
    h.metadata = {"reset": "none"}
    runaway = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([2])), "fc": nir.Linear(np.eye(2) * 50.0), "h": h,
               "output": nir.Output(np.array([2]))},
        edges=[("input", "fc"), ("fc", "h"), ("h", "output")], metadata={"dt": 1e-3}, type_check=False)
    _same_error(lambda impl: ClockFreeEngine(runaway, impl=impl),
                lambda e: e.run_events(np.array([1e-3]), np.array([1]), until=0.002), NIRError, "without bound")
    no_dt = nir.NIRGraph(nodes=loop.nodes, edges=loop.edges, metadata={}, type_check=False)
    _same_error(lambda impl: ClockFreeEngine(no_dt, impl=impl), lambda e: None, NIRError, "spike_area")
    _same_error(lambda impl: ClockFreeEngine(loop, impl=impl, recurrent_delay=1e-3),
                lambda e: e.advance(np.array([2e-3, 1e-3]), np.array([0, 0])), InputError, "non-decreasing")
    _same_error(lambda impl: ClockFreeEngine(loop, impl=impl, recurrent_delay=1e-3),
                lambda e: e.advance(np.array([1e-3]), np.array([2])), InputError, "outside")


def test_stream_runs_the_compiled_engine():
    g = convnet(np.random.default_rng(8), kind="lif", size=12)
    s = Stream(g, engine="clockfree")
    assert type(s.engine) is ClockFreeEngine
