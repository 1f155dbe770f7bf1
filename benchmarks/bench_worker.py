"""One benchmark run in its own process: ``python bench_worker.py LIB WORKLOAD --steps N --warmup K``.

Prints one JSON line: per-step times (ms), warm-up step times (the first holds any compilation),
peak RSS, RSS before the first step, CPU time of this process, the hidden layers' spike counts in
the first forward (to check that every library computes the same function), and library versions.
Runs in the project venv (spikeflow, torch.compile, dense floor) or in ``benchmarks/.venv-peers``
(snntorch, spikingjelly, norse); only the chosen library is imported. spyx (JAX) runs in its own
venv with ``bench_worker_spyx.py``, on weights and inputs this module exports (``export_npz``).

Workloads: W1 700 -> Linear 256 -> LIF -> Linear 20 -> LIF, T=100, B=32, Bernoulli
p=0.05 input, decay 0.9 per step (v <- 0.9 v + x), threshold 1, reset by subtraction, loss
cross-entropy on summed output spikes, forward + backward + Adam. W2: 2x32x32 (p=0.1) -> Conv
16 k5 p2 -> LIF -> AvgPool2 -> Conv 32 k5 p2 -> LIF -> AvgPool2 -> Flatten -> Linear 10 -> LIF,
T=20, B=16. W3: W1 forward only without grad. W4: W1 with T=1000, B=8. ``--tiny`` shrinks T and B
(``bench_proc.TINY``) for quick end-to-end checks.

Hidden spike counts: W1/W3/W4 the 256 hidden neurons; W2 the first and the second conv LIF layer.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from bench_proc import DECAY, N_BATCHES, W1_GAIN, WORKLOADS, emit, timed_run, workload

__all__ = ["DECAY", "W1_GAIN", "WORKLOADS", "shared_weights", "make_data", "export_npz", "BUILDERS"]


def shared_weights(kind: str, seed: int = 0):
    """The same initial weights for every library (torch default init, seeded)."""
    torch.manual_seed(seed)
    if kind == "mlp":
        l1, l2 = nn.Linear(700, 256), nn.Linear(256, 20)
        with torch.no_grad():
            l1.weight.mul_(W1_GAIN)
        return [l1, l2]
    c1, c2, fc = nn.Conv2d(2, 16, 5, padding=2), nn.Conv2d(16, 32, 5, padding=2), nn.Linear(32 * 8 * 8, 10)
    with torch.no_grad():
        for m in (c1, c2, fc):
            m.weight.mul_(W1_GAIN)
    return [c1, c2, fc]


def usual_step(forward, opt, x, y):
    """One training step the usual way: the spike-count cross-entropy's ``backward()`` and ``opt.step()``
    (``forward`` as ``build_*`` returns it)."""
    loss = F.cross_entropy(forward(x)[0].sum(0), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def make_data(kind: str, T: int, B: int, n_batches: int = N_BATCHES, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    shape, p = ((700,), 0.05) if kind == "mlp" else ((2, 32, 32), 0.1)
    out = []
    for _ in range(n_batches):
        x = (torch.rand((T, B) + shape, generator=g) < p).float()
        y = torch.randint(0, 20 if kind == "mlp" else 10, (B,), generator=g)
        out.append((x, y))
    return out


def export_npz(name: str, path, tiny: bool = False) -> None:
    """The initial weights and input batches of workload ``name`` as numpy arrays (torch layouts:
    Linear ``[out, in]``, Conv ``[out, in, kh, kw]``, inputs ``[T, B, ...]``), for libraries that
    run without torch."""
    wl = workload(name, tiny)
    arrays = {}
    for i, m in enumerate(shared_weights(wl["kind"])):
        arrays[f"w{i}"] = m.weight.detach().numpy()
        arrays[f"b{i}"] = m.bias.detach().numpy()
    for i, (x, y) in enumerate(make_data(wl["kind"], wl["T"], wl["B"])):
        arrays[f"x{i}"] = x.numpy().astype(np.uint8)  # 0/1: a quarter of the file
        arrays[f"y{i}"] = y.numpy()
    np.savez(path, **arrays)


def _count(*spikes) -> list:
    return [float(s.detach().double().sum()) for s in spikes]


# ---------------------------------------------------------------- per-library networks
# Each builder returns (forward(x, record) -> (out_spikes [T,B,C], hidden), reset(), params, version):
# ``hidden`` is the hidden layers' spike counts (a list of floats) when ``record``, else None.


def build_spikeflow(kind, layers):
    import spikeflow
    import spikeflow.nn as snn

    lif = dict(tau_mem=-1e-3 / math.log(DECAY), r=1.0 / (1.0 - DECAY), dt=1e-3, v_threshold=1.0, reset="subtract")
    if kind == "mlp":
        # Linear + LIF fused into one spike-driven kernel per layer (spikeflow.nn.LinearLIF); in
        # spikeflow.nn.Sequential the two layers run as one kernel that keeps the hidden spikes compressed
        m1, m2 = snn.LinearLIF(700, 256, **lif), snn.LinearLIF(256, 20, **lif)
        m1.linear.load_state_dict(layers[0].state_dict())
        m2.linear.load_state_dict(layers[1].state_dict())
        net = snn.Sequential(m1, m2)

        def forward(x, record=False):
            if not record:
                return net(x), None
            h = m1(x)  # layer by layer, to count the hidden spikes (the same function)
            return m2(h), _count(h)

        forward.net = net  # for spikeflow.train.TrainStep (the spikeflow-step row)
    else:
        # event-path convolutions where the input is sparse enough (spikeflow.nn.SpikeConv2d); each
        # LIF + AvgPool2d pair runs as one kernel (spikeflow.nn.Sequential fuses it)
        c1, c2, fc = layers
        sc1, sc2 = snn.SpikeConv2d(2, 16, 5, padding=2), snn.SpikeConv2d(16, 32, 5, padding=2)
        sc1.load_state_dict(c1.state_dict())
        sc2.load_state_dict(c2.state_dict())
        fc2 = snn.SpikeLinear(2048, 10)
        fc2.load_state_dict(fc.state_dict())
        n1, n2, n3 = snn.LIF(**lif), snn.LIF(**lif), snn.LIF(**lif)
        net = nn.ModuleList([sc1, n1, sc2, n2, fc2, n3])
        seq = snn.Sequential(sc1, n1, nn.AvgPool2d(2), sc2, n2, nn.AvgPool2d(2), nn.Flatten(), fc2, n3)

        def forward(x, record=False):
            if not record:
                return seq(x), None
            # the fused LIF + AvgPool2d kernels never store the spike maps: each layer's count is 4x
            # the sum of its 2x2-averaged spikes, read at the input of the layer after the pool
            seen = []
            hooks = [m.register_forward_pre_hook(lambda _m, inp: seen.append(4.0 * inp[0].detach()))
                     for m in (seq[3], seq[6])]  # sc2 and the Flatten after the second pool
            try:
                out = seq(x)
            finally:
                for hk in hooks:
                    hk.remove()
            return out, _count(*seen)
    return forward, (lambda: None), net.parameters(), f"spikeflow {spikeflow.__version__}"


def build_snntorch(kind, layers):
    import snntorch
    from snntorch import surrogate

    def leaky():
        return snntorch.Leaky(beta=DECAY, threshold=1.0, reset_mechanism="subtract", reset_delay=False,
                              spike_grad=surrogate.fast_sigmoid(slope=25))

    if kind == "mlp":
        l1, l2 = layers
        n1, n2 = leaky(), leaky()
        mods = nn.ModuleList([l1, l2, n1, n2])

        def forward(x, record=False):
            m1, m2 = n1.init_leaky(), n2.init_leaky()
            cur1 = l1(x)  # Linear on all steps at once; the neuron loops over time
            hs, outs = [], []
            for t in range(x.shape[0]):
                s1, m1 = n1(cur1[t], m1)
                s2, m2 = n2(l2(s1), m2)
                hs.append(s1)
                outs.append(s2)
            return torch.stack(outs), (_count(torch.stack(hs)) if record else None)
    else:
        c1, c2, fc = layers
        n1, n2, n3 = leaky(), leaky(), leaky()
        mods = nn.ModuleList([c1, c2, fc, n1, n2, n3])

        def forward(x, record=False):
            m1, m2, m3 = n1.init_leaky(), n2.init_leaky(), n3.init_leaky()
            outs, counts = [], [0.0, 0.0]
            for t in range(x.shape[0]):
                s1, m1 = n1(c1(x[t]), m1)
                s2, m2 = n2(c2(F.avg_pool2d(s1, 2)), m2)
                s3, m3 = n3(fc(F.avg_pool2d(s2, 2).flatten(1)), m3)
                outs.append(s3)
                if record:
                    counts = [a + b for a, b in zip(counts, _count(s1, s2))]
            return torch.stack(outs), (counts if record else None)
    return forward, (lambda: None), mods.parameters(), f"snntorch {snntorch.__version__}"


def build_spikingjelly(kind, layers):
    import importlib.metadata

    from spikingjelly.activation_based import functional, layer, neuron

    def lif():
        return neuron.LIFNode(tau=1.0 / (1.0 - DECAY), decay_input=False, v_threshold=1.0, v_reset=None,
                              step_mode="m")

    if kind == "mlp":
        l1, l2 = layers
        n1, n2 = lif(), lif()
        net = nn.Sequential(layer.SeqToANNContainer(l1), n1, layer.SeqToANNContainer(l2), n2)

        def forward(x, record=False):
            h = n1(net[0](x))
            return n2(net[2](h)), (_count(h) if record else None)
    else:
        c1, c2, fc = layers
        net = nn.Sequential(
            layer.SeqToANNContainer(c1), lif(), layer.SeqToANNContainer(nn.AvgPool2d(2), c2), lif(),
            layer.SeqToANNContainer(nn.AvgPool2d(2), nn.Flatten(), fc), lif(),
        )

        def forward(x, record=False):
            if not record:
                return net(x), None
            s1 = net[1](net[0](x))
            s2 = net[3](net[2](s1))
            return net[5](net[4](s2)), _count(s1, s2)
    return (forward, (lambda: functional.reset_net(net)), net.parameters(),
            f"spikingjelly {importlib.metadata.version('spikingjelly')}")


def build_norse(kind, layers):
    import norse
    import norse.torch as nt
    from norse.torch.functional.reset import reset_subtract

    dt = 1e-3
    # v <- v + dt/tau (v_leak - v + i): dt/tau = 1 - 0.9 gives the 0.9 decay; the input enters
    # scaled by dt/tau, so the synaptic weights are scaled by tau/dt to compute v <- 0.9 v + x.
    p = nt.LIFBoxParameters(tau_mem_inv=torch.as_tensor((1.0 - DECAY) / dt), v_th=torch.as_tensor(1.0),
                            v_reset=torch.as_tensor(0.0), reset_method=reset_subtract)
    with torch.no_grad():
        for m in layers:
            m.weight.mul_(1.0 / (1.0 - DECAY))
            m.bias.mul_(1.0 / (1.0 - DECAY))

    def lif():
        return nt.Lift(nt.LIFBoxCell(p, dt=dt))

    if kind == "mlp":
        l1, l2 = layers
        n1, n2 = lif(), lif()
        mods = nn.ModuleList([l1, l2, n1, n2])

        def forward(x, record=False):
            h, _ = n1(l1(x))
            out, _ = n2(l2(h))
            return out, (_count(h) if record else None)
    else:
        c1, c2, fc = layers
        n1, n2, n3 = lif(), lif(), lif()
        mods = nn.ModuleList([c1, c2, fc, n1, n2, n3])

        def fold(f, x):
            y = f(x.reshape(-1, *x.shape[2:]))
            return y.reshape(x.shape[0], x.shape[1], *y.shape[1:])

        def forward(x, record=False):
            s1, _ = n1(fold(c1, x))
            s2, _ = n2(fold(lambda z: c2(F.avg_pool2d(z, 2)), s1))
            s3, _ = n3(fold(lambda z: fc(F.avg_pool2d(z, 2).flatten(1)), s2))
            return s3, (_count(s1, s2) if record else None)
    return forward, (lambda: None), mods.parameters(), f"norse {norse.__version__}"


class _Spike(torch.autograd.Function):
    """Heaviside step forward; fast-sigmoid surrogate backward, 1 / (1 + 25 |v|)^2 (snnTorch's default slope)."""

    @staticmethod
    def forward(ctx, v):
        ctx.save_for_backward(v)
        return (v > 0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        return grad / (25.0 * v.abs() + 1.0) ** 2


def _lif(v, x):
    """One step of every library's neuron: v <- 0.9 v + x, spike at 1, subtract the threshold."""
    v = DECAY * v + x
    s = _Spike.apply(v - 1.0)
    return s, v - s


def build_torch_compile(kind, layers, mode=None, scope="cell"):
    """A plain torch LIF network under ``torch.compile``. ``scope="cell"``: the per-time-step cell
    (inductor fuses the neuron updates with the layers inside one step; the time loop stays in Python,
    so the compiled graph does not grow with T); ``"forward"``: the whole forward, its time loop
    unrolled into one graph (one compiled forward and one backward per training step; the compile time
    grows with T). The first layer runs on all steps at once, like snnTorch's."""
    options = {} if mode in (None, "default") else {"mode": mode}
    cell_compiled = scope == "cell"

    def state(*shape):
        if not cell_compiled:
            return torch.zeros(*shape)
        # a leaf that requires grad whenever autograd records, so every step (the first too) hits the
        # same compiled cell instead of compiling a second one for a constant initial state
        return torch.zeros(*shape).requires_grad_(torch.is_grad_enabled())

    if kind == "mlp":
        l1, l2 = layers
        mods = nn.ModuleList([l1, l2])

        def cell(c1, v1, v2):
            s1, v1 = _lif(v1, c1)
            s2, v2 = _lif(v2, l2(s1))
            return (s1,), s2, v1, v2

        def run(x, track):
            cur1 = l1(x)
            v = [state(x.shape[1], 256), state(x.shape[1], 20)]
            outs, counts = [], None
            for t in range(x.shape[0]):
                hidden, out, *v = step(cur1[t], *v)
                outs.append(out)
                if track:
                    sums = [h.detach().sum() for h in hidden]
                    counts = sums if counts is None else [a + b for a, b in zip(counts, sums)]
            return torch.stack(outs), counts
    else:
        c1, c2, fc = layers
        mods = nn.ModuleList([c1, c2, fc])

        def cell(cur, v1, v2, v3):
            s1, v1 = _lif(v1, cur)
            s2, v2 = _lif(v2, c2(F.avg_pool2d(s1, 2)))
            s3, v3 = _lif(v3, fc(F.avg_pool2d(s2, 2).flatten(1)))
            return (s1, s2), s3, v1, v2, v3

        def run(x, track):
            T, B = x.shape[:2]
            cur1 = c1(x.reshape(T * B, *x.shape[2:])).reshape(T, B, 16, 32, 32)
            v = [state(B, 16, 32, 32), state(B, 32, 16, 16), state(B, 10)]
            outs, counts = [], None
            for t in range(T):
                hidden, out, *v = step(cur1[t], *v)
                outs.append(out)
                if track:
                    sums = [h.detach().sum() for h in hidden]
                    counts = sums if counts is None else [a + b for a, b in zip(counts, sums)]
            return torch.stack(outs), counts

    if cell_compiled:
        step = torch.compile(cell, **options)

        def forward(x, record=False):
            out, counts = run(x, record)
            return out, ([float(c) for c in counts] if record else None)
    else:
        step = cell
        # one graph whatever ``record``: the counts are always summed (a reduction per step), read when asked
        whole = torch.compile(lambda x: run(x, True), **options)

        def forward(x, record=False):
            out, counts = whole(x)
            return out, ([float(c) for c in counts] if record else None)
    label = "" if mode in (None, "default") else f" ({mode})"
    label += ", whole forward" if scope == "forward" else ""
    return forward, (lambda: None), mods.parameters(), f"torch.compile {torch.__version__}{label}"


def build_dense(kind, layers):
    """The dense floor: the same Linear/Conv work (forward, backward, Adam) without neurons.

    The layers after the first see fixed binary spike tensors of the same shapes (rate 0.1); it
    computes no spiking function, so it has no hidden spike count."""
    g = torch.Generator().manual_seed(3)
    if kind == "mlp":
        l1, l2 = layers
        mods = nn.ModuleList([l1, l2])

        def forward(x, record=False):
            h = (torch.rand(x.shape[:2] + (256,), generator=g) < 0.1).float().requires_grad_()
            y1 = l1(x)
            out = l2(h)
            return out + 0.0 * y1.sum(), None
    else:
        c1, c2, fc = layers
        mods = nn.ModuleList([c1, c2, fc])

        def forward(x, record=False):
            T, B = x.shape[:2]
            s1 = (torch.rand(T * B, 16, 16, 16, generator=g) < 0.1).float().requires_grad_()
            s2 = (torch.rand(T * B, 2048, generator=g) < 0.1).float().requires_grad_()
            y1 = c1(x.reshape(T * B, 2, 32, 32))
            y2 = c2(s1)
            out = fc(s2).reshape(T, B, 10)
            return out + 0.0 * (y1.sum() + y2.sum()), None
    return forward, (lambda: None), mods.parameters(), f"torch {torch.__version__}"


BUILDERS = {"spikeflow": build_spikeflow, "snntorch": build_snntorch, "spikingjelly": build_spikingjelly,
            "norse": build_norse, "torch.compile": build_torch_compile, "dense": build_dense,
            "spikeflow-float32": build_spikeflow, "spikeflow-step": build_spikeflow}
# spikeflow's fused MLP kernels read 0/1 spikes as bytes: its MLP input batches are converted to uint8
# once, before the steps (as spyx's worker converts its batches once); "spikeflow-float32" is the same
# network fed the float32 batches every other library gets
SPIKE_BYTES = {"spikeflow": torch.uint8, "spikeflow-step": torch.uint8}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("lib", choices=sorted(BUILDERS))
    ap.add_argument("workload", choices=sorted(WORKLOADS))
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--warmup-s", type=float, default=0.0, help="warm up for at least this many seconds")
    ap.add_argument("--steps-s", type=float, default=0.0, help="time steps for at least this many seconds")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tiny", action="store_true", help="the workload on a few steps of a small batch (checks)")
    ap.add_argument("--adam", choices=("fused", "default"), default="fused",
                    help="torch's fused CPU Adam (one kernel per step) or its default implementation")
    ap.add_argument("--compile-mode", default="default",
                    help="torch.compile's mode for the torch.compile library (e.g. max-autotune-no-cudagraphs)")
    ap.add_argument("--compile-scope", choices=("cell", "forward"), default="cell",
                    help="torch.compile the per-time-step cell or the whole forward (time loop unrolled)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    wl = workload(args.workload, args.tiny)
    kind = wl["kind"]
    layers = shared_weights(kind)
    extra = {"mode": args.compile_mode, "scope": args.compile_scope} if args.lib == "torch.compile" else {}
    forward, reset, params, version = BUILDERS[args.lib](kind, layers, **extra)
    params = list(params)
    opt = torch.optim.Adam(params, lr=1e-3, fused=args.adam == "fused") if wl["train"] else None
    data = make_data(kind, wl["T"], wl["B"])
    train_step = None
    if args.lib == "spikeflow-step":
        from spikeflow.train.step import TrainStep

        if kind != "mlp" or opt is None:
            raise SystemExit("spikeflow-step: TrainStep is benchmarked on the MLP training workload only")
        train_step = TrainStep(forward.net, opt)
        version += ", TrainStep"
    if kind == "mlp" and args.lib in SPIKE_BYTES:
        data = [(x.to(SPIKE_BYTES[args.lib]), y) for x, y in data]
        version += ", uint8 input"
    elif args.lib == "spikeflow-float32":
        version += ", float32 input"
    hidden = None

    def one_step(i):
        nonlocal hidden
        x, y = data[i % len(data)]
        reset()
        record = i == 0  # the first forward (warm-up) is the same for every library
        if opt is None:
            with torch.no_grad():
                out, h = forward(x, record)
        elif train_step is not None:
            if record:
                with torch.no_grad():
                    h = forward(x, True)[1]
            first_step = "step" not in opt.state.get(opt.param_groups[0]["params"][0], {})
            train_step(x, y)
            if not train_step.fused:
                raise SystemExit(f"spikeflow-step: TrainStep did not fuse the step: {train_step.reason}")
            if not (first_step or train_step.fused_update):  # Adam's first step, which makes its state, is torch's
                raise SystemExit("spikeflow-step: TrainStep did not fuse Adam's update")
        else:
            out, h = forward(x, record)
            loss = F.cross_entropy(out.sum(0), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if record:
            hidden = h

    result = timed_run(one_step, args.warmup, args.steps, args.warmup_s, args.steps_s)
    result.update(lib=args.lib, workload=args.workload, version=version, torch=torch.__version__,
                  threads=torch.get_num_threads(), batch=wl["B"], T=wl["T"], hidden_spikes_first=hidden)
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
