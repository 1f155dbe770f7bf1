"""``spikeflow.train.TrainStep`` against the autograd step it replaces: the same loss, output spikes and
gradients where it fuses, the autograd step itself where it does not, one-line errors for bad labels.

Weights, biases and input values are multiples of 1/64, so every synaptic current is exact in any
summation order and both paths must produce the same spikes; the gradients then differ only by the
loss gradient's rounding (numpy in float64 against torch's float32)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.nn import functional as F

import spikeflow.nn as snn
from spikeflow.errors import InputError
from spikeflow.surrogate import Surrogate
from spikeflow.train import TrainStep, classification_loss


def _dyadic(t):
    return torch.round(t * 64) / 64


def _net(seed, n_in=30, n_hid=40, n_out=7, *, bias=True, reset="subtract", surrogate=None, split=False,
         threshold=1.0, **kw):
    """Two fused units: ``LinearLIF`` layers, or (``split``) ``SpikeLinear`` + ``LIF`` pairs;
    ``threshold``: the hidden layer's (a tensor: per neuron)."""
    torch.manual_seed(seed)
    lif = dict(tau_mem=10e-3, r=10.0, reset=reset, surrogate=surrogate, **kw)
    if split:
        net = snn.Sequential(snn.SpikeLinear(n_in, n_hid, bias=bias), snn.LIF(n_hid, v_threshold=threshold, **lif),
                             snn.SpikeLinear(n_hid, n_out, bias=bias), snn.LIF(n_out, v_threshold=1.0, **lif))
    else:
        net = snn.Sequential(snn.LinearLIF(n_in, n_hid, bias=bias, v_threshold=threshold, **lif),
                             snn.LinearLIF(n_hid, n_out, bias=bias, v_threshold=1.0, **lif))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(_dyadic(p * 4))
    return net


def _batch(seed, n_steps=25, n_batch=5, n_in=30, n_out=7, dtype=torch.uint8, values=False):
    g = torch.Generator().manual_seed(seed)
    active = torch.rand((n_steps, n_batch, n_in), generator=g) < 0.1
    x = active.to(torch.float32)
    if values:  # non-binary input
        x = x * _dyadic(torch.rand(x.shape, generator=g) * 2)
    return x.to(dtype), torch.randint(0, n_out, (n_batch,), generator=g)


def _autograd_grads(net, x, y, loss="ce_count"):
    net.zero_grad(set_to_none=True)
    out = net(x)
    value = classification_loss(out, y, loss)
    value.backward()
    return value.detach(), out.detach(), [p.grad.clone() for p in net.parameters() if p.grad is not None]


@pytest.mark.parametrize("case", [
    dict(),
    dict(bias=False, reset="to_reset", surrogate=Surrogate("atan", 2.0)),
    dict(split=True, n_batch=3, dtype=torch.bool),
    dict(n_batch=1, dtype=torch.float32, values=True),
    dict(n_hid=150, n_out=20, n_steps=12),  # the output layer padded to whole vectors
])
def test_fused_step_equals_the_autograd_step(case):
    net_kw = {k: case[k] for k in ("bias", "reset", "surrogate", "split", "n_hid", "n_out") if k in case}
    batch_kw = {k: case[k] for k in ("n_steps", "n_batch", "dtype", "values", "n_out") if k in case}
    net = _net(1, **net_kw)
    x, y = _batch(2, **batch_kw)
    ref_loss, ref_out, ref_grads = _autograd_grads(net, x, y)
    step = TrainStep(net, torch.optim.SGD(net.parameters(), lr=0.0))  # no update: the gradients stay comparable
    loss, out = step(x, y)
    assert step.fused and step.reason is None
    assert torch.equal(out, ref_out) and out.sum() > 0
    assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-6)
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert len(grads) == len(ref_grads) == (4 if case.get("bias", True) else 2)
    for got, ref in zip(grads, ref_grads):
        assert ref.abs().max() > 0
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6 * ref.abs().max().item())


def _both_steps(nets, ref_opt, step, x, y):
    """The autograd step on ``nets[0]`` (with ``ref_opt``), ``step`` (on ``nets[1]``): the same spikes
    and loss, then the same weights."""
    ref_loss, ref_out, _ = _autograd_grads(nets[0], x, y)
    ref_opt.step()
    loss, out = step(x, y)
    assert step.fused and torch.equal(out, ref_out)
    assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-6)
    for p, q in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(q, p, rtol=0, atol=1e-6)


def test_fused_steps_train_as_the_autograd_steps():
    """Three SGD steps each way from the same weights: the same weights after every step (the spikes of
    the next step depend on them, so a wrong update would show in the loss too)."""
    nets = [_net(3), _net(3)]
    opts = [torch.optim.SGD(n.parameters(), lr=0.05, momentum=0.9) for n in nets]
    step = TrainStep(nets[1], opts[1])
    for k in range(3):
        _both_steps(nets, opts[0], step, *_batch(10 + k))


def test_flags_of_one_step_do_not_carry_to_the_next():
    """Input with a NaN stops the step with the layer named and nothing changed; the step after it,
    on input with values other than 1, and the one after that, on spikes, each equal the autograd
    step (the forward's per-row flags are cleared at every step)."""
    from spikeflow.errors import InputError

    nets = [_net(4), _net(4)]
    opts = [torch.optim.SGD(n.parameters(), lr=0.05) for n in nets]
    step = TrainStep(nets[1], opts[1])
    x, y = _batch(20, dtype=torch.float32)
    x[3, 1, 2] = float("nan")
    before = [p.detach().clone() for p in nets[1].parameters()]
    with pytest.raises(InputError, match="LinearLIF.*NaN"):
        step(x, y)
    assert all(torch.equal(p, b) for p, b in zip(nets[1].parameters(), before))
    _both_steps(nets, opts[0], step, *_batch(21, dtype=torch.float32, values=True))
    _both_steps(nets, opts[0], step, *_batch(22, dtype=torch.float32))


def test_per_neuron_parameters_changed_between_steps_are_taken():
    """Per-neuron thresholds (buffers, not learned), changed in place after the first step: the fused
    step reads them again, as the autograd step does."""
    nets = [_net(13, threshold=torch.linspace(0.75, 1.25, 40)) for _ in range(2)]
    opts = [torch.optim.SGD(n.parameters(), lr=0.05) for n in nets]
    step = TrainStep(nets[1], opts[1])
    for k in range(2):
        _both_steps(nets, opts[0], step, *_batch(20 + k))
        for net in nets:
            net[0].lif.v_threshold.mul_(0.5)  # every hidden neuron fires more from now on


def test_an_optimizer_parameter_outside_the_pair_loses_its_gradient_as_with_zero_grad():
    net = _net(4)
    extra = torch.nn.Parameter(torch.ones(3))
    extra.grad = torch.ones(3)
    step = TrainStep(net, torch.optim.SGD([*net.parameters(), extra], lr=0.1))
    step(*_batch(5))
    assert step.fused and extra.grad is None and torch.equal(extra, torch.ones(3))


def _three_units():
    net = _net(6)
    return snn.Sequential(*net, snn.LinearLIF(7, 3))  # seeded by _net: the same weights every call


@pytest.mark.parametrize("make, loss_name, dense, reason", [
    (lambda: _net(6), "ce_max", False, "loss 'ce_max'"),
    (_three_units, "ce_count", False, "not a spikeflow.nn.Sequential of two"),
    (lambda: _net(6, learn_tau=True), "ce_count", False, "LIF parameter is learned"),
    (lambda: _net(6), "ce_count", True, "crossover"),
    (lambda: _net(6, recompute=True), "ce_count", False, "recompute"),
    (lambda: _net(6, n_out=300), "ce_count", False, "does not fit in L1"),
])
def test_what_the_fused_step_does_not_cover_runs_the_autograd_step(make, loss_name, dense, reason):
    """The same update as the autograd step, taken by it; ``reason`` says why."""
    ref, net = make(), make()
    x, y = _batch(7)
    if dense:
        x = torch.ones_like(x)
    y = y % list(net.parameters())[-1].shape[0]  # the classes of the last layer
    ref_loss, _, _ = _autograd_grads(ref, x, y, loss_name)
    torch.optim.SGD(ref.parameters(), lr=0.1).step()
    step = TrainStep(net, torch.optim.SGD(net.parameters(), lr=0.1), loss=loss_name)
    loss, _ = step(x, y)
    assert not step.fused and reason in step.reason
    assert loss.item() == ref_loss.item()
    for p, q in zip(ref.parameters(), net.parameters()):
        assert torch.equal(p, q)


def test_a_change_of_thread_count_makes_the_step_anew():
    """The kernels split the batch into one share per thread; the same update on 1 thread and then 2."""
    nets = [_net(16), _net(16)]
    opts = [torch.optim.SGD(n.parameters(), lr=0.05) for n in nets]
    step = TrainStep(nets[1], opts[1])
    _both_steps(nets, opts[0], step, *_batch(30))
    first = step._plan[1]
    torch.set_num_threads(2)  # the conftest fixture sets 1 and restores the count after the test
    _both_steps(nets, opts[0], step, *_batch(31))
    assert step._plan[1] is not first


def test_a_hook_added_after_a_fused_step_is_seen_at_the_next_call():
    net = _net(14)
    step = TrainStep(net, torch.optim.SGD(net.parameters(), lr=0.1))
    x, y = _batch(15)
    step(x, y)
    assert step.fused
    seen = []
    handle = net[1].register_forward_hook(lambda m, inp, out: seen.append(out))
    step(x, y)
    assert not step.fused and "hooks" in step.reason and len(seen) == 1
    handle.remove()
    step(x, y)
    assert step.fused and len(seen) == 1


@pytest.mark.parametrize("y, message", [
    (torch.zeros(5), "'y' must be an integer tensor"),
    (torch.zeros(4, dtype=torch.long), "'y' must have shape (5,)"),
    (torch.full((5,), -1), "'y' must be class indices >= 0"),
    (torch.full((5,), 7), "'y' must be below the network's 7 outputs"),
])
def test_bad_labels_get_one_line_errors(y, message):
    net = _net(8)
    before = [p.detach().clone() for p in net.parameters()]
    step = TrainStep(net, torch.optim.SGD(net.parameters(), lr=0.1))
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        step(_batch(9)[0], y)
    assert "\n" not in str(err.value)
    assert all(torch.equal(p, b) for p, b in zip(net.parameters(), before))


def test_unknown_loss_is_named():
    with pytest.raises(InputError, match="'loss' must be one of"):
        TrainStep(_net(8), torch.optim.SGD(_net(8).parameters(), lr=0.1), loss="hinge")


def test_the_loss_is_cross_entropy_on_the_spike_counts():
    """The fused loss against its definition, computed here from the returned spikes."""
    net = _net(11)
    x, y = _batch(12)
    loss, out = TrainStep(net, torch.optim.SGD(net.parameters(), lr=0.0))(x, y)
    assert loss.item() == pytest.approx(F.cross_entropy(out.sum(0), y).item(), rel=1e-6)


def _adam_reference(parts, w, m, v, t, lr, betas, eps):
    """torch's own Adam (single-tensor implementation) from the same state, on ``sum over c of parts[c].T``."""
    p = torch.nn.Parameter(w.clone())
    opt = torch.optim.Adam([p], lr=lr, betas=betas, eps=eps, foreach=False)
    p.grad = parts.sum(0).t()[:w.shape[0]].contiguous() if w.dim() == 2 else parts.sum(0)[:w.shape[0]].clone()
    opt.state[p] = {"step": torch.tensor(float(t - 1)), "exp_avg": m.clone(), "exp_avg_sq": v.clone()}
    opt.step()
    state = opt.state[p]
    return p.grad, p.detach(), state["exp_avg"], state["exp_avg_sq"]


@pytest.mark.parametrize("n_out,n_in", [(40, 37), (20, 256), (7, 5)])  # whole blocks and edges; edges only
def test_adam_kernel_equals_torch_adam_on_the_summed_parts(n_out, n_in):
    """``kernels.adam``: the threads' input-major gradient parts summed into ``grad [out, in]`` and
    Adam's update from a state some steps in, against ``torch.optim.Adam`` on the same numbers."""
    from spikeflow.kernels import adam
    from spikeflow.train.fused_adam import _scalars

    g = torch.Generator().manual_seed(n_in)
    width = -(-n_out // 16) * 16
    lr, betas, eps, t = 3e-3, (0.8, 0.95), 1e-6, 4
    for dim in (2, 1):
        shape = (n_out, n_in) if dim == 2 else (n_out,)
        parts = torch.randn((2, n_in, width) if dim == 2 else (2, width), generator=g)
        w, m = torch.randn(shape, generator=g), 0.1 * torch.randn(shape, generator=g)
        v = 0.01 * torch.rand(shape, generator=g)
        ref = _adam_reference(parts, w, m, v, t, lr, betas, eps)
        grad = torch.empty(shape)
        kernel = adam.adam_from_parts if dim == 2 else adam.adam_bias_from_parts
        kernel(parts.numpy(), grad.numpy(), w.numpy(), m.numpy(), v.numpy(), *_scalars(lr, betas, eps, t))
        for got, want in zip((grad, w, m, v), ref):
            torch.testing.assert_close(got, want, rtol=2e-6, atol=1e-7)
        assert not torch.equal(w, ref[1] - 1)  # (w was updated in place)


def _adam_nets(seed, **adam_kw):
    nets = [_net(seed), _net(seed)]
    opts = [torch.optim.Adam(n.parameters(), lr=0.01, **adam_kw) for n in nets]
    return nets, opts


def test_fused_adam_steps_update_as_torch_adam():
    """``TrainStep`` with plain ``torch.optim.Adam``: the first step is torch's (it makes the state),
    the next ones are Adam's update fused with the gradients' reduction. Each step starts both
    networks from the same weights and optimizer state (copied after the step before, so the spikes
    cannot part through a rounding difference of an earlier update) and ends with the same gradients,
    weights and state as torch's step, the step counts included."""
    nets, opts = _adam_nets(30)
    step = TrainStep(nets[1], opts[1])
    for k in range(3):
        x, y = _batch(40 + k)
        nets[0].load_state_dict(nets[1].state_dict())
        opts[0].load_state_dict(copy.deepcopy(opts[1].state_dict()))  # (loaded as they are: shared)
        versions = [p._version for p in nets[1].parameters()]
        _autograd_grads(nets[0], x, y)
        opts[0].step()
        step(x, y)
        assert step.fused and step.fused_update == (k > 0)
        for p, q in zip(nets[0].parameters(), nets[1].parameters()):
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=1e-7)
            torch.testing.assert_close(q, p, rtol=0, atol=2e-6)
            for key in ("exp_avg", "exp_avg_sq"):
                torch.testing.assert_close(opts[1].state[q][key], opts[0].state[p][key], rtol=1e-4, atol=1e-9)
            assert opts[1].state[q]["step"].item() == k + 1
        assert all(p._version > v for p, v in zip(nets[1].parameters(), versions))  # changed in place, seen


def test_fused_adam_takes_again_a_state_replaced_between_steps():
    """The fused update keeps the moments' numpy views from step to step. A state loaded anew (new
    tensors), the moments moved to new memory under the same tensors (``.data =``), and a weight
    moved so, are each noticed: every step still ends as torch's, in the tensors the optimizer holds."""
    nets, opts = _adam_nets(33)
    step = TrainStep(nets[1], opts[1])
    for k in range(5):
        if k == 2:
            opts[1].load_state_dict(copy.deepcopy(opts[1].state_dict()))
        if k == 3:
            for s in opts[1].state.values():
                s["exp_avg"].data = s["exp_avg"].clone()
                s["exp_avg_sq"].data = s["exp_avg_sq"].clone()
        if k == 4:
            w = next(nets[1].parameters())
            w.data = w.data.clone()
        x, y = _batch(70 + k)
        nets[0].load_state_dict(nets[1].state_dict())
        opts[0].load_state_dict(copy.deepcopy(opts[1].state_dict()))
        _autograd_grads(nets[0], x, y)
        opts[0].step()
        step(x, y)
        assert step.fused and step.fused_update == (k > 0)
        for p, q in zip(nets[0].parameters(), nets[1].parameters()):
            torch.testing.assert_close(q, p, rtol=0, atol=2e-6)
            for key in ("exp_avg", "exp_avg_sq"):
                torch.testing.assert_close(opts[1].state[q][key], opts[0].state[p][key], rtol=1e-4, atol=1e-9)
            assert opts[1].state[q]["step"].item() == k + 1


def test_fused_adam_follows_the_learning_rate_of_a_scheduler():
    """A scheduler sets the learning rate to 0 after the second step: the fused third step leaves the
    weights as they are (their moments still move on), and the scheduler sees each step taken."""
    import warnings

    nets, opts = _adam_nets(31)
    step = TrainStep(nets[1], opts[1])
    sched = torch.optim.lr_scheduler.LambdaLR(opts[1], lambda epoch: 1.0 if epoch < 2 else 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "lr_scheduler.step() before optimizer.step()" would fail
        for k in range(3):
            before = [p.detach().clone() for p in nets[1].parameters()]
            step(*_batch(50 + k))
            sched.step()
            changed = [not torch.equal(p, b) for p, b in zip(nets[1].parameters(), before)]
            assert all(changed) if k < 2 else not any(changed)
            assert step.fused_update == (k > 0)
    assert step.fused and opts[1].state[nets[1][0].linear.weight]["step"].item() == 3


@pytest.mark.parametrize("adam_kw", [dict(weight_decay=1e-3), dict(amsgrad=True), dict(maximize=True),
                                     dict(hook=True)])
def test_adam_options_the_fused_update_does_not_cover_take_torch_step(adam_kw):
    """Weight decay, AMSGrad, ``maximize`` or a step hook: torch's step runs (the kernels still fuse), so
    the weights follow the autograd step's."""
    from spikeflow.train.fused_adam import adam_terms

    hook = adam_kw.pop("hook", False)
    nets, opts = _adam_nets(32, **adam_kw)
    calls = []
    if hook:
        for opt in opts:
            opt.register_step_post_hook(lambda *_: calls.append(1))
    step = TrainStep(nets[1], opts[1])
    for k in range(2):
        _both_steps(nets, opts[0], step, *_batch(60 + k))
        assert not step.fused_update
    assert adam_terms(opts[1], list(nets[1].parameters())) is None  # the decision itself, past the first step
    assert len(calls) == (4 if hook else 0)
