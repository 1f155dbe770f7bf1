"""Two fused LinearLIF layers in one kernel against the unfused reference (dense ``F.linear`` and
the LIF model's own ``step`` loop, layer after layer): the same output spikes and final membranes,
and the same gradients for input, both weights and biases and the learned LIF parameters.

As in ``test_linear_lif``, weights, biases and input values are multiples of 1/64, so every
synaptic current is exact in any summation order and the spikes must be identical."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from spikeflow import kernels
from spikeflow.errors import InputError
from spikeflow.kernels import linear_lif as single
from spikeflow.kernels import linear_lif_pair as pair
from spikeflow.neurons import MODELS
from spikeflow.surrogate import Surrogate


def _dyadic(t):
    return torch.round(t * 64) / 64


def _rel(a, b):
    return (a - b).abs().max().item() / max(b.abs().max().item(), 1e-12)


def _layer(g, dtype, n_in, n_out, reset, learn, sg, name, uniform=False):
    """``uniform``: every neuron gets the same threshold and time constant (the kernel keeps them in
    registers), else each its own."""
    shape = (n_out,)
    th = (1.0 + 0.5 * torch.rand(1 if uniform else shape, generator=g, dtype=dtype)).expand(shape).clone()
    tau = (8e-3 * (1 + torch.rand(1 if uniform else shape, generator=g, dtype=dtype))).expand(shape).clone()
    th, tau = th.requires_grad_(learn), tau.requires_grad_(learn)
    kw = dict(reset=reset, v_threshold=th, tau_mem=tau, v_leak=0.05, r=3.0)
    if reset == "to_reset":
        kw["v_reset"] = -0.2
    params = MODELS["lif"].params_cls(**kw)
    w = _dyadic(torch.randn((n_out, n_in), generator=g, dtype=dtype) * 0.8).requires_grad_()
    b = _dyadic(torch.randn(n_out, generator=g, dtype=dtype) * 0.2).requires_grad_()
    learned = [th, tau] if learn else []
    return (w, b, params, sg, name), [w, b, *learned]


def _reference(x, layer):
    w, b, params, sg, _ = layer
    m = MODELS["lif"]
    state = m.init_state((*x.shape[1:-1], w.shape[0]), params, dtype=x.dtype)
    out, fin, _ = kernels.multistep(m, F.linear(x, w, b), state, params, sg, backend="reference")
    return out, fin.v


@pytest.mark.parametrize("dtype,n_steps,batch,n_hid,resets,learn,binary,recompute,direct_bytes,uniform", [
    (torch.float32, 70, (3,), 150, ("subtract", "subtract"), True, True, True, 0, False),  # 3 segments, every tile
    (torch.float32, 70, (3,), 150, ("subtract", "subtract"), True, True, False, 1 << 30, True),
    (torch.float32, 40, (2, 2), 20, ("to_reset", "none"), True, False, False, 0, False),
    (torch.float32, 40, (2, 2), 20, ("to_reset", "none"), True, False, True, 1 << 30, True),
    pytest.param(torch.float64, 45, (3,), 37, ("subtract", "to_reset"), False, False, True, 0, True,
                 marks=pytest.mark.slow),  # float64 compiles the kernels again
])
def test_pair_matches_two_unfused_layers(dtype, n_steps, batch, n_hid, resets, learn, binary, recompute,
                                         direct_bytes, uniform, monkeypatch):
    """``direct_bytes``: 0 adds every weight gradient window by window, a huge one event by event;
    ``uniform``: the hidden layer's neurons share their parameters."""
    monkeypatch.setattr(single, "DIRECT_SCATTER_BYTES", direct_bytes)
    g = torch.Generator().manual_seed(n_hid)
    n_in, n_out = 24, 9
    first, leaves1 = _layer(g, dtype, n_in, n_hid, resets[0], learn, Surrogate("fast_sigmoid", 10.0), "first",
                            uniform)
    second, leaves2 = _layer(g, dtype, n_hid, n_out, resets[1], learn, Surrogate("atan", 2.0), "second")
    active = torch.rand((n_steps, *batch, n_in), generator=g) < 0.3
    vals = torch.ones(active.shape, dtype=dtype) if binary else _dyadic(torch.rand(active.shape, generator=g,
                                                                                   dtype=dtype) * 2)
    x = (active * vals).to(dtype).requires_grad_()
    leaves = [x, *leaves1, *leaves2]
    w_out = torch.randn((n_steps, *batch, n_out), generator=g, dtype=dtype)

    def loss(out, v1, v2):
        return (out * w_out).sum() + v1.sum() + 2 * v2.sum()

    out_p, v1_p, v2_p = pair.linear_lif_pair(x, first, second, recompute=recompute)
    grads_p = torch.autograd.grad(loss(out_p, v1_p, v2_p), leaves)
    hid, v1_r = _reference(x, first)
    out_r, v2_r = _reference(hid, second)
    grads_r = torch.autograd.grad(loss(out_r, v1_r, v2_r), leaves)
    assert 0.02 < hid.mean().item() < 0.9 and out_r.sum() > 0  # the case has hidden and output spikes
    assert torch.equal(out_p, out_r)
    assert _rel(v1_p, v1_r) <= 1e-6 and _rel(v2_p, v2_r) <= 1e-6
    for i, (a, r) in enumerate(zip(grads_p, grads_r)):
        assert _rel(a, r) <= 1e-4, f"gradient of leaf {i} differs: rel {_rel(a, r)}"
    with torch.no_grad():  # inference keeps nothing for a backward and computes the same
        out_n, v1_n, v2_n = pair.linear_lif_pair(x, first, second)
    assert torch.equal(out_n, out_p) and torch.equal(v1_n, v1_p) and torch.equal(v2_n, v2_p)


@pytest.mark.parametrize("n_in,n_hid,resets,binary,batch", [
    (24, 40, ("subtract", "subtract"), True, (3,)),  # the hidden weight gradient added event by event
    (100, 150, ("subtract", "subtract"), True, (5,)),  # ... window by window (its part past 32 KB)
    (100, 150, ("to_reset", "none"), False, (2, 3)),  # non-binary input values
    (24, 40, ("none", "to_reset"), False, (1,)),
    (100, 150, ("to_reset", "subtract"), False, (9,)),  # 4 samples at once, then 1 left; 22 columns past the tiles
    (24, 40, ("subtract", "none"), True, (4, 2)),
])
def test_one_sweep_backward_equals_one_kernel_call_per_layer_bit_for_bit(n_in, n_hid, resets, binary, batch,
                                                                        monkeypatch):
    """Where neither the input nor a LIF parameter needs a gradient, the backward runs both layers in
    one sweep over the steps: the same weight and bias gradients, bit for bit, as a kernel call per
    layer, and as the unfused layers' to rounding."""
    g = torch.Generator().manual_seed(n_hid)
    first, leaves1 = _layer(g, torch.float32, n_in, n_hid, resets[0], False, Surrogate("fast_sigmoid", 10.0),
                            "first")
    second, leaves2 = _layer(g, torch.float32, n_hid, 9, resets[1], False, Surrogate("atan", 2.0), "second")
    first = (torch.randn(n_hid, n_in, generator=g).requires_grad_(), *first[1:])  # summation order shows
    leaves = [first[0], leaves1[1], *leaves2]
    n_steps = 45  # windows of 16 steps and a last one of 13
    active = torch.rand((n_steps, *batch, n_in), generator=g) < 0.3
    x = (active * (1.0 if binary else _dyadic(torch.rand(active.shape, generator=g) * 2))).float()
    w_out = torch.randn((n_steps, *batch, 9), generator=g)
    sweeps = []
    kernel = pair.backward
    monkeypatch.setattr(pair, "backward", lambda *a: sweeps.append(1) or kernel(*a))

    def grads(one_sweep):
        monkeypatch.setattr(pair, "ONE_SWEEP", one_sweep)
        out, v1, v2 = pair.linear_lif_pair(x, first, second, recompute=False)
        return torch.autograd.grad((out * w_out).sum() + v1.sum() + 2 * v2.sum(), leaves)

    swept, per_layer = grads(True), grads(False)
    assert len(sweeps) == 1
    for a, b in zip(swept, per_layer):
        assert torch.equal(a, b)
    hid, v1_r = _reference(x, first)
    out_r, v2_r = _reference(hid, second)
    assert 0.02 < hid.mean().item() < 0.9 and out_r.sum() > 0  # the case has hidden and output spikes
    reference = torch.autograd.grad((out_r * w_out).sum() + v1_r.sum() + 2 * v2_r.sum(), leaves)
    for i, (a, r) in enumerate(zip(swept, reference)):
        assert _rel(a, r) <= 1e-4, f"gradient of leaf {i} differs: rel {_rel(a, r)}"


@pytest.mark.parametrize("uniform", [False, True, "floats"])
def test_pair_equals_two_single_kernel_calls_bit_for_bit(uniform):
    """Same operations in the same order as two chained ``linear_lif`` calls: equal outputs, not just
    close. ``"floats"``: every LIF parameter a Python float (no tensor among them)."""
    g = torch.Generator().manual_seed(3)
    dtype = torch.float32
    first, _ = _layer(g, dtype, 50, 64, "subtract", False, Surrogate("fast_sigmoid", 10.0), "first", bool(uniform))
    second, _ = _layer(g, dtype, 64, 10, "subtract", False, Surrogate("fast_sigmoid", 10.0), "second")
    if uniform == "floats":
        params = MODELS["lif"].params_cls(tau_mem=9e-3, v_threshold=1.3, v_leak=0.05, r=3.0, reset="subtract")
        first, second = (*first[:2], params, *first[3:]), (*second[:2], params, *second[3:])
    # weights that are not dyadic: the summation order shows in the bits
    first = (torch.randn(64, 50, generator=g), *first[1:])
    x = (torch.rand(33, 4, 50, generator=g) < 0.2).float()
    with torch.no_grad():
        out_p, v1_p, v2_p = pair.linear_lif_pair(x, first, second)
        h, v1_s = single.linear_lif(x, first[0], first[1], first[2], first[3])
        out_s, v2_s = single.linear_lif(h, second[0], second[1], second[2], second[3])
    assert torch.equal(out_p, out_s) and torch.equal(v1_p, v1_s) and torch.equal(v2_p, v2_s)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.bool])
@pytest.mark.parametrize("grad", [False, True])
def test_pair_reads_bool_and_uint8_spikes_as_their_float_values(dtype, grad):
    """Spikes as bytes: the kernel scans them 16 at a time and a tail of 2 (50 inputs), a uint8 count
    above 1 is a non-binary row; spikes, membranes and gradients equal those of the same values in
    float32, bit for bit."""
    g = torch.Generator().manual_seed(13)
    first, _ = _layer(g, torch.float32, 50, 64, "subtract", False, Surrogate("fast_sigmoid", 10.0), "first")
    second, _ = _layer(g, torch.float32, 64, 10, "subtract", False, Surrogate("fast_sigmoid", 10.0), "second")
    spikes = torch.rand(33, 4, 50, generator=g) < 0.2
    spikes[:, :, 48:] = True  # the scalar tail
    x = spikes.to(dtype)
    if dtype == torch.uint8:
        x[3, 1, 7] = 3  # an event count: that row is not binary
    weights = [first[0].detach().requires_grad_(grad), second[0].detach().requires_grad_(grad)]

    def run(inp):
        with torch.set_grad_enabled(grad):
            out = pair.linear_lif_pair(inp, (weights[0], *first[1:]), (weights[1], *second[1:]))
        if not grad:
            return out
        return (*out, *torch.autograd.grad(out[0].sum() + out[1].sum() + out[2].sum(), weights))

    got, expected = run(x), run(x.float())
    assert expected[0].sum() > 0  # the case has output spikes
    assert all(torch.equal(a, b) for a, b in zip(got, expected))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("where", [5, 29])  # in a row's first 16-lane vector, in its scalar tail (30 = 16 + 14)
def test_pair_names_the_first_layer_for_nan_or_inf_input(bad, grad, where):
    """The forward scans the input itself: a NaN/inf among its active entries is an ``InputError``
    naming the first layer, with or without a backward to serve."""
    g = torch.Generator().manual_seed(5)
    first, _ = _layer(g, torch.float32, 30, 40, "subtract", False, Surrogate("fast_sigmoid", 10.0), "first")
    second, _ = _layer(g, torch.float32, 40, 7, "subtract", False, Surrogate("fast_sigmoid", 10.0), "second")
    x = (torch.rand(12, 3, 30, generator=g) < 0.2).float()
    x[7, 2, where] = bad
    with torch.set_grad_enabled(grad), pytest.raises(InputError, match=r"^first: input contains NaN or inf"):
        pair.linear_lif_pair(x.requires_grad_(grad), first, second)


def test_pair_input_of_binary_and_non_binary_steps_has_the_reference_gradients():
    """Steps whose active inputs are all 1 and steps with other values in one input: the backward
    reads the values of every active input, the forward wrote them only for the second kind."""
    g = torch.Generator().manual_seed(11)
    first, leaves1 = _layer(g, torch.float32, 24, 48, "subtract", False, Surrogate("fast_sigmoid", 10.0), "first")
    second, leaves2 = _layer(g, torch.float32, 48, 9, "subtract", False, Surrogate("fast_sigmoid", 10.0), "second")
    active = torch.rand((30, 3, 24), generator=g) < 0.3
    x = active.float()
    x[::3] *= 1.5  # every third step analog
    x.requires_grad_()
    w_out = torch.randn((30, 3, 9), generator=g)
    leaves = [x, *leaves1, *leaves2]
    out_p, v1_p, v2_p = pair.linear_lif_pair(x, first, second)
    grads_p = torch.autograd.grad((out_p * w_out).sum() + v1_p.sum() + v2_p.sum(), leaves)
    hid, v1_r = _reference(x, first)
    out_r, v2_r = _reference(hid, second)
    grads_r = torch.autograd.grad((out_r * w_out).sum() + v1_r.sum() + v2_r.sum(), leaves)
    assert 0.02 < hid.mean().item() < 0.9 and out_r.sum() > 0
    assert torch.equal(out_p, out_r)
    for i, (a, r) in enumerate(zip(grads_p, grads_r)):
        assert _rel(a, r) <= 1e-4, f"gradient of leaf {i} differs: rel {_rel(a, r)}"


def test_pair_backward_refuses_an_output_weight_changed_in_place_after_the_forward():
    """The backward multiplies by the output layer's weight as the forward used it: changed in place
    in between, autograd's version check refuses the backward, as it does for ``F.linear``."""
    g = torch.Generator().manual_seed(2)
    first, _ = _layer(g, torch.float32, 16, 24, "subtract", False, Surrogate("fast_sigmoid", 10.0), "first")
    second, _ = _layer(g, torch.float32, 24, 5, "subtract", False, Surrogate("fast_sigmoid", 10.0), "second")
    x = (torch.rand(8, 2, 16, generator=g) < 0.3).float()
    out, v1, v2 = pair.linear_lif_pair(x, first, second)
    with torch.no_grad():
        second[0].mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        (out.sum() + v1.sum() + v2.sum()).backward()


@pytest.mark.parametrize("path", ["pair", "single"])
@pytest.mark.parametrize("change", ["through .data", "in place without grad", "new tensor bound to .data"])
def test_inference_after_a_weight_change_uses_the_new_weight(path, change):
    """Calls without autograd reuse the input-major weight of the call before while the weight holds
    the same bytes; after a change, whether or not autograd's version counter saw it (``.data``
    hides it), the spikes are the reference's for the new weight."""
    g = torch.Generator().manual_seed(7)
    first, _ = _layer(g, torch.float32, 24, 40, "subtract", False, Surrogate("fast_sigmoid", 10.0), "first")
    second, _ = _layer(g, torch.float32, 40, 6, "subtract", False, Surrogate("fast_sigmoid", 10.0), "second")
    x = (torch.rand(20, 3, 24, generator=g) < 0.3).float()
    w = torch.nn.Parameter(first[0].detach())  # only a parameter's input-major form is kept
    first = (w, *first[1:])

    def run():
        if path == "pair":
            return pair.linear_lif_pair(x, first, second)[0]
        return single.linear_lif(x, *first[:4])[0]

    def reference():
        hid, _ = _reference(x, first)
        return _reference(hid, second)[0] if path == "pair" else hid

    with torch.no_grad():
        before = run()
        kept = single.input_major(w, reuse=True)
        assert single.input_major(w, reuse=True) is kept  # unchanged bytes: the same tensor again
        version = w._version
        if change == "through .data":
            w.data.mul_(-1)  # dyadic weights stay dyadic: exact currents in any order
            assert w._version == version
        elif change == "in place without grad":
            w.mul_(-1)
        else:
            w.data = -w.data.clone()
        assert single.input_major(w, reuse=True) is not kept
        after = run()
        expected = reference()
    assert torch.equal(after, expected) and not torch.equal(after, before)


@pytest.mark.parametrize("layer", [0, 1])
@pytest.mark.parametrize("where", [0, -1])
def test_pair_inference_sees_a_weight_changed_through_data(layer, where):
    """Without autograd the pair's kernel takes the kept input-major weights unchecked and compares
    each weight with the copy its form was made from, every thread its share: one row changed
    through ``.data`` (no version change), in either layer and in the first or the last share, and
    the call gives the reference's spikes for the new weight."""
    g = torch.Generator().manual_seed(9)
    first, _ = _layer(g, torch.float32, 24, 40, "subtract", False, Surrogate("fast_sigmoid", 10.0), "first")
    second, _ = _layer(g, torch.float32, 40, 6, "subtract", False, Surrogate("fast_sigmoid", 10.0), "second")
    x = (torch.rand(20, 4, 24, generator=g) < 0.3).float()
    first, second = [(torch.nn.Parameter(unit[0].detach()), *unit[1:]) for unit in (first, second)]
    w = (first, second)[layer][0]
    with torch.no_grad():
        before = pair.linear_lif_pair(x, first, second)
        version = w._version
        w.data[where] = 4.0  # the first or the last row: its neuron's membrane changes
        assert w._version == version
        out, v1, v2 = pair.linear_lif_pair(x, first, second)
        hid, v1_r = _reference(x, first)
        out_r, v2_r = _reference(hid, second)
    assert torch.equal(out, out_r) and _rel(v1, v1_r) <= 1e-6 and _rel(v2, v2_r) <= 1e-6
    assert not torch.equal((v1, v2)[layer], before[1 + layer])


def test_input_major_keeps_only_a_live_parameter():
    import gc

    w = torch.randn(8, 5)
    single.input_major(w, reuse=True)
    assert id(w) not in single._INPUT_MAJOR  # a plain tensor may be computed afresh for each call
    p = torch.nn.Parameter(w)
    single.input_major(p, reuse=True)
    key = id(p)
    assert key in single._INPUT_MAJOR
    del p
    gc.collect()
    assert key not in single._INPUT_MAJOR


def _parameter_pair(seed, n_in=24, n_hid=40, n_out=6):
    g = torch.Generator().manual_seed(seed)
    units = [_layer(g, torch.float32, a, b, "subtract", False, Surrogate("fast_sigmoid", 10.0), name)[0]
             for a, b, name in ((n_in, n_hid, "first"), (n_hid, n_out, "second"))]
    return g, [(torch.nn.Parameter(u[0].detach()), torch.nn.Parameter(u[1].detach()), *u[2:]) for u in units]


def _pair_reference(x, first, second):
    hid, v1 = _reference(x, first)
    out, v2 = _reference(hid, second)
    return out, v1, v2


def test_pair_inference_keeps_its_plan_and_reads_biases_and_parameters_at_every_call():
    """Calls without autograd of one input shape reuse one plan (layers at rest, the kernel's
    arguments); a bias and a per-neuron threshold changed in place between calls are read again, and
    a second input shape gets a plan of its own: every call equals the unfused reference."""
    g, (first, second) = _parameter_pair(11)
    xs = [(torch.rand(20, b, 24, generator=g) < 0.3).float() for b in (3, 5)]
    with torch.no_grad():
        pair.linear_lif_pair(xs[0], first, second)
        plan = pair._INFERENCE[id(first[0])][2]
        pair.linear_lif_pair(xs[0], first, second)
        assert pair._INFERENCE[id(first[0])][2] is plan  # the same shape: the same plan
        first[1].add_(0.25)  # a dyadic change: exact currents in any order
        first[2].v_threshold[::2] += 0.5
        second[1].sub_(0.5)
        for x in (xs[0], xs[1], xs[0]):
            out, v1, v2 = pair.linear_lif_pair(x, first, second)
            out_r, v1_r, v2_r = _pair_reference(x, first, second)
            assert torch.equal(out, out_r) and _rel(v1, v1_r) <= 1e-6 and _rel(v2, v2_r) <= 1e-6
        assert pair._INFERENCE[id(first[0])][2] is not plan  # the last call's shape was made again


def test_pair_inference_plan_follows_the_thread_count_and_goes_with_its_weight():
    """The plan's key holds the kernel's thread count (each thread lists its own rows); a plan kept
    for a weight does not keep the weight alive."""
    import gc

    def run():
        g, (first, second) = _parameter_pair(12)
        x = (torch.rand(20, 4, 24, generator=g) < 0.3).float()
        threads = torch.get_num_threads()
        keys = []
        try:
            with torch.no_grad():
                outs = []
                for n in (1, 2):
                    torch.set_num_threads(n)
                    outs.append(pair.linear_lif_pair(x, first, second))
                    keys.append(pair._INFERENCE[id(first[0])][1])
                expected = _pair_reference(x, first, second)
        finally:
            torch.set_num_threads(threads)
        for out in outs:
            assert torch.equal(out[0], expected[0]) and _rel(out[1], expected[1]) <= 1e-6
        return id(first[0]), keys

    key, plan_keys = run()
    assert [k[2] for k in plan_keys] == [1, 2]
    gc.collect()
    assert key not in pair._INFERENCE
