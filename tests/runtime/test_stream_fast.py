"""Stream's chunk path on the event engine (one numba call per chunk) against its reference route
(pending events binned per step, then ``EventEngine.advance_output``): on a dense DVS recording pushed
in 1 ms chunks, every prediction, every layer's spike count and the membranes are bit for bit equal."""

import nir
import numpy as np
import pytest

from spikeflow.data.dvs import DVSEmulator, saccade_events
from spikeflow.errors import InputError
from spikeflow.runtime.stream import Stream
from tests.runtime.rt_graphs import convnet

SIDE = 34


def _shape_image(k: int) -> np.ndarray:
    """A 28x28 ring (k even) or cross (k odd) of size depending on k: something for the DVS to see."""
    yy, xx = np.mgrid[:28, :28] - 13.5
    r = 5 + k % 4 * 2
    if k % 2 == 0:
        return ((np.abs(np.hypot(xx, yy) - r) < 2.0) * 255).astype(np.uint8)
    return (((np.abs(xx) < 2) | (np.abs(yy) < 2)) & (np.hypot(xx, yy) < r + 3)).astype(np.uint8) * 255


@pytest.fixture(scope="module")
def recording():
    """Four emulated saccade recordings end to end, each squeezed into 40 ms (a dense stream)."""
    em = DVSEmulator(contrast_threshold=0.3, threshold_sigma=0.05, refractory=0.0, leak_rate_hz=0.5, seed=3)
    parts = []
    for k in range(4):
        a = saccade_events(_shape_image(k), em, sensor_size=(SIDE, SIDE), noise_seed=k).array.copy()
        a["t"] = a["t"] * 40 // 300 + k * 40_000
        parts.append(a)
    ev = np.concatenate(parts)
    return ev[np.argsort(ev["t"], kind="stable")]


def spiking_mlp(seed: int = 0, dt: float = 1e-3):
    """AvgPool2d(2) -> Affine -> LIF -> Affine -> LIF -> Output: spikes out (the "count" decoder)."""
    rng = np.random.default_rng(seed)
    n_h, n_out, n_in = 64, 6, 2 * 17 * 17

    def lif(n):
        return nir.LIF(tau=rng.uniform(5e-3, 30e-3, n), r=np.ones(n), v_leak=np.zeros(n),
                       v_threshold=rng.uniform(0.5, 1.5, n))

    return nir.NIRGraph(
        nodes={"input": nir.Input(np.array([2, SIDE, SIDE])),
               "pool": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
               "flat": nir.Flatten(input_type={"input": np.array([2, 17, 17])}, start_dim=0, end_dim=-1),
               "fc1": nir.Affine(rng.normal(0.5, 0.8, (n_h, n_in)), np.zeros(n_h)), "lif1": lif(n_h),
               "fc2": nir.Affine(rng.normal(0.5, 1.5, (n_out, n_h)), np.zeros(n_out)), "lif2": lif(n_out),
               "output": nir.Output(np.array([n_out]))},
        edges=[("input", "pool"), ("pool", "flat"), ("flat", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"),
               ("fc2", "lif2"), ("lif2", "output")], metadata={"dt": dt}, type_check=False)


def _run(graph, ev, fast, decoder, chunk_us=1000, shuffle=False, dt=None):
    s = Stream(graph, engine="event", decoder=decoder, dt=dt)
    s._fast = fast
    rng = np.random.default_rng(1)
    answers = []
    edges = np.arange(chunk_us, int(ev["t"][-1]) + chunk_us + 1, chunk_us)
    lo = 0
    for i, hi in enumerate(np.searchsorted(ev["t"], edges)):
        chunk = ev[lo:hi]
        if shuffle and len(chunk) > 1:
            chunk = chunk[rng.permutation(len(chunk))]  # repaired by sorting, as documented
        p = s.push(chunk)
        if i % 17 == 16:
            p = s.advance_to(int(edges[i]))  # time passes without events: the open step closes
        answers.append((p.label, p.probabilities.tobytes(), p.t_us, p.events_seen, p.decided, s.steps))
        lo = hi
    p = s.advance_to(int(edges[-1]) + 5 * chunk_us)
    answers.append((p.label, p.probabilities.tobytes(), p.t_us, p.events_seen, p.decided, s.steps))
    return answers, s.engine.counters.copy(), s.engine.v.copy(), s


@pytest.mark.parametrize("model,decoder,dt", [("convnet", "mean", None), ("mlp", "count", None),
                                              ("mlp", "max", 0.25e-3), ("mlp", "mean", 4e-3)])
def test_fast_path_equals_reference_on_a_recording(recording, model, decoder, dt):
    """dt 1 ms: each 1 ms chunk closes about one step; 0.25 ms: several steps per chunk; 4 ms: most
    chunks close none (their events wait in the open step)."""
    graph = convnet(np.random.default_rng(4), kind="lif", size=SIDE, n_out=4) if model == "convnet" else spiking_mlp()
    fast, ref = _run(graph, recording, True, decoder, dt=dt), _run(graph, recording, False, decoder, dt=dt)
    assert fast[0] == ref[0]  # every answer, bit for bit
    np.testing.assert_array_equal(fast[1], ref[1])  # synaptic ops, neuron updates, spikes per layer
    np.testing.assert_array_equal(fast[2], ref[2])
    spikes = fast[1][:, 2]  # the input's count is of (pixel, step) entries: at most one per event
    assert 0.3 * len(recording) < spikes[0] <= len(recording) and spikes[1:].sum() > 500  # busy, not silent
    assert len(set(a[1] for a in fast[0])) > 3  # and its answer changed over the stream


def test_fast_path_sorts_unsorted_chunks_like_the_reference(recording):
    graph = spiking_mlp(1)
    a = _run(graph, recording[:6000], True, "count", shuffle=True)
    b = _run(graph, recording[:6000], False, "count", shuffle=True)
    assert a[0] == b[0] and (a[1] == b[1]).all()
    c = _run(graph, recording[:6000], True, "count", shuffle=False)  # sorting repairs the order exactly
    assert c[0] == a[0]


def test_fast_path_keeps_the_errors(recording):
    s = Stream(spiking_mlp(), engine="event")
    s.push(recording[recording["t"] < 10_000])
    bad = recording[recording["t"] >= 10_000][:50].copy()
    bad["x"][7] = SIDE
    with pytest.raises(InputError, match="field 'x' of event 7"):
        s.push(bad)
    with pytest.raises(InputError, match="earlier than time already processed"):
        s.push(recording[:5])
    assert s.events_seen == int((recording["t"] < 10_000).sum())  # the bad chunks changed nothing


@pytest.mark.parametrize("layout", ["uint_fields_other_order", "strided", "read_only", "float_t"])
def test_any_event_layout_gives_the_same_answers(recording, layout):
    """Chunks in other field types/orders, strided or read-only (the in-place check) or with float
    timestamps (the general route) give the answers of the standard ``Events`` layout."""
    ev = recording[:4000]
    if layout == "uint_fields_other_order":
        alt = np.zeros(len(ev), dtype=[("t", "<u4"), ("p", "u1"), ("label", "<f4"), ("y", "u1"), ("x", "<u2")])
    elif layout == "float_t":
        alt = np.zeros(len(ev), dtype=[("x", "<i2"), ("y", "<i2"), ("t", "<f8"), ("p", "i1")])
    else:
        alt = np.zeros(2 * len(ev), dtype=ev.dtype)[::2] if layout == "strided" else np.zeros(len(ev), dtype=ev.dtype)
    for f in "xytp":
        alt[f] = ev[f]
    if layout == "read_only":
        alt.flags.writeable = False
    graph = spiking_mlp(2)
    assert _run(graph, alt, True, "count")[0] == _run(graph, ev, False, "count")[0]
