"""The fused pair's autograd call through kept buffers (``kernels.pair_training``) against the same
call through ``linear_lif_pair.PairFunction``, which makes everything afresh: the same spikes,
membranes and gradients, bit for bit (the same kernels in the same order), whatever the order of
forwards and backwards, and the plans kept, reused and released as the autograd contexts come and go."""

from __future__ import annotations

import pytest
import torch

from spikeflow.errors import InputError
from spikeflow.kernels import linear_lif_pair as pair
from spikeflow.kernels import pair_training
from spikeflow.neurons import MODELS
from spikeflow.surrogate import Surrogate

N_IN, N_HID, N_OUT = 40, 48, 7


def _dyadic(t):
    return torch.round(t * 64) / 64


def _operands(seed, bias=True, per_neuron=False):
    g = torch.Generator().manual_seed(seed)
    layers = []
    for n_in, n_out, name in ((N_IN, N_HID, "LinearLIF(40->48)"), (N_HID, N_OUT, "LinearLIF(48->7)")):
        th = 1.0 + 0.5 * torch.rand(n_out, generator=g) if per_neuron else 1.0
        params = MODELS["lif"].params_cls(reset="subtract", v_threshold=th, tau_mem=10e-3, r=10.0)
        w = _dyadic(torch.randn((n_out, n_in), generator=g) * 0.7).requires_grad_()
        b = _dyadic(torch.randn(n_out, generator=g) * 0.2).requires_grad_() if bias else None
        layers.append((w, b, params, Surrogate("fast_sigmoid", 5.0), name))
    return layers


def _batch(seed, n_steps=30, n_batch=5, dtype=torch.uint8):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((n_steps, n_batch, N_IN), generator=g) < 0.15).to(dtype)


def _grads(call, x, layers, seed, use_v=False):
    """Spikes, final membranes and the gradients of a fixed random loss of them."""
    out, v1, v2 = call(x, *layers)
    g = torch.Generator().manual_seed(seed)
    loss = (out * torch.randn(out.shape, generator=g)).sum()
    if use_v:
        loss = loss + (v1 * torch.randn(v1.shape, generator=g)).sum() + (v2 * torch.randn(v2.shape, generator=g)).sum()
    leaves = [t for w, b, *_ in layers for t in (w, b) if t is not None and t.requires_grad]
    return [out.detach(), v1.detach(), v2.detach(), *torch.autograd.grad(loss, leaves)]


def _equal(got, want):
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert torch.equal(a, b)


def _kept(layers):
    return pair_training._PLANS[id(layers[0][0])][2]


@pytest.mark.parametrize("case", [dict(), dict(bias=False), dict(per_neuron=True), dict(use_v=True),
                                  dict(dtype=torch.float32), dict(frozen=True)])
def test_plan_call_equals_the_fresh_call(case):
    """Biases or none, per-neuron thresholds (read at every call), a loss on the final membranes
    too, float input, a frozen first weight: bit-equal outputs and gradients."""
    layers = _operands(1, bias=case.get("bias", True), per_neuron=case.get("per_neuron", False))
    if case.get("frozen"):
        layers[0][0].requires_grad_(False)
    x = _batch(2, dtype=case.get("dtype", torch.uint8))
    got = _grads(pair_training.linear_lif_pair, x, layers, 3, case.get("use_v", False))
    want = _grads(pair.linear_lif_pair, x, layers, 3, case.get("use_v", False))
    _equal(got, want)
    assert len(_kept(layers)) == 1


def test_training_loop_takes_two_plans_in_turn():
    """The usual loop (the loss replaced after the next forward): two plans serve every step, and
    each step equals the fresh call's."""
    layers = _operands(4)
    losses = None
    for k in range(4):
        x = _batch(10 + k)
        out = pair_training.linear_lif_pair(x, *layers)[0]
        want = _grads(pair.linear_lif_pair, x, layers, 20 + k)
        g = torch.Generator().manual_seed(20 + k)
        losses = (out * torch.randn(out.shape, generator=g)).sum()
        leaves = [t for w, b, *_ in layers for t in (w, b)]
        _equal([out.detach(), *torch.autograd.grad(losses, leaves)], [want[0], *want[3:]])
        with torch.no_grad():
            for t in leaves:  # an update, so that each step runs other weights
                t.sub_(_dyadic(0.01 * torch.randn(t.shape, generator=g)))
    assert len(_kept(layers)) == pair_training.PLANS_PER_SHAPE == 2


def test_a_forward_kept_for_its_backward_is_not_overwritten():
    """Three forwards, then their backwards in another order: the first two take the two plans, the
    third (both taken) the fresh call, and every backward reads its own forward's buffers."""
    layers = _operands(5)
    xs = [_batch(30 + k) for k in range(3)]
    outs = [pair_training.linear_lif_pair(x, *layers) for x in xs]
    assert outs[2] is None and len(_kept(layers)) == 2  # every plan is taken
    outs[2] = pair.linear_lif_pair(xs[2], *layers)
    leaves = [t for w, b, *_ in layers for t in (w, b)]
    for k in (2, 0, 1):
        g = torch.Generator().manual_seed(40 + k)
        got = torch.autograd.grad((outs[k][0] * torch.randn(outs[k][0].shape, generator=g)).sum(), leaves)
        _equal([outs[k][0].detach(), *got], [_grads(pair.linear_lif_pair, xs[k], layers, 40 + k)[i] for i in
                                              (0, 3, 4, 5, 6)])
    del outs
    assert pair_training.linear_lif_pair(xs[0], *layers) is not None  # released with their contexts


def test_retained_graph_backward_twice_after_another_forward():
    """A graph kept with ``retain_graph`` holds its plan: its second backward, after another forward,
    gives the same gradients as its first."""
    layers = _operands(6)
    leaves = [t for w, b, *_ in layers for t in (w, b)]
    out = pair_training.linear_lif_pair(_batch(50), *layers)[0]
    loss = (out * torch.arange(out.numel()).reshape(out.shape).remainder(3)).sum()
    first = torch.autograd.grad(loss, leaves, retain_graph=True)
    other = pair_training.linear_lif_pair(_batch(51), *layers)[0]
    _ = torch.autograd.grad(other.sum(), leaves)
    _equal(torch.autograd.grad(loss, leaves), first)


def test_a_weight_changed_in_place_before_the_backward_is_refused():
    layers = _operands(7)
    out = pair_training.linear_lif_pair(_batch(60), *layers)[0]
    with torch.no_grad():
        layers[1][0].mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_what_the_plain_case_leaves_out_takes_the_fresh_call():
    """No autograd, an input or a LIF parameter that needs a gradient, recomputed membranes: ``None``."""
    layers = _operands(8)
    x = _batch(70)
    with torch.no_grad():
        assert pair_training.linear_lif_pair(x, *layers) is None
    assert pair_training.linear_lif_pair(x.float().requires_grad_(), *layers) is None
    learned = MODELS["lif"].params_cls(reset="subtract", v_threshold=torch.ones(N_OUT, requires_grad=True),
                                       tau_mem=10e-3, r=10.0)
    assert pair_training.linear_lif_pair(x, layers[0], (*layers[1][:2], learned, *layers[1][3:])) is None
    assert pair_training.linear_lif_pair(x, *layers, recompute=True) is None


def test_nan_input_names_the_layer_and_frees_the_plan():
    layers = _operands(9)
    x = _batch(80, dtype=torch.float32)
    x[4, 2, 5] = float("nan")
    with pytest.raises(InputError, match=r"LinearLIF\(40->48\).*NaN"):
        pair_training.linear_lif_pair(x, *layers)
    x = _batch(81, dtype=torch.float32)
    _equal(_grads(pair_training.linear_lif_pair, x, layers, 82), _grads(pair.linear_lif_pair, x, layers, 82))
    assert len(_kept(layers)) == 1  # the plan the failed call took, free again


def test_sequential_trains_through_the_plans(monkeypatch):
    """``spikeflow.nn.Sequential`` of two ``LinearLIF`` trained by the usual loop takes the plans; the
    same loop with them turned off (every call fresh) ends with the same weights."""
    import spikeflow.nn as snn

    def train(seed):
        torch.manual_seed(seed)
        net = snn.Sequential(snn.LinearLIF(N_IN, N_HID, tau_mem=10e-3, r=10.0),
                             snn.LinearLIF(N_HID, N_OUT, tau_mem=10e-3, r=10.0))
        with torch.no_grad():
            for m in net:
                m.linear.weight.mul_(4)  # (so that both layers fire)
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        for k in range(3):
            opt.zero_grad()
            out = net(_batch(90 + k))
            assert out.sum() > 0  # (the output layer fires)
            ((out.sum(0) - 3.0) ** 2).sum().backward()
            opt.step()
        return net

    planned = train(11)
    assert len(_kept([(planned[0].linear.weight,)])) == 2
    monkeypatch.setattr(pair_training, "linear_lif_pair", lambda *args, **kwargs: None)
    for p, q in zip(planned.parameters(), train(11).parameters()):
        assert torch.equal(p, q)
