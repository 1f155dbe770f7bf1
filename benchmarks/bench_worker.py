"""One benchmark run in its own process: ``python bench_worker.py LIB WORKLOAD --steps N --warmup K``.

Prints one JSON line: per-step times (ms), peak RSS, RSS before the first step, CPU time of
this process, hidden spike count of the first forward (to check that every library computes
the same function), and library versions. Runs in the project venv (spikeflow, dense floor)
or in ``benchmarks/.venv-peers`` (snntorch, spikingjelly, norse); only the chosen library is
imported.

Workloads: W1 700 -> Linear 256 -> LIF -> Linear 20 -> LIF, T=100, B=32, Bernoulli
p=0.05 input, decay 0.9 per step (v <- 0.9 v + x), threshold 1, reset by subtraction, loss
cross-entropy on summed output spikes, forward + backward + Adam. W2: 2x32x32 (p=0.1) -> Conv
16 k5 p2 -> LIF -> AvgPool2 -> Conv 32 k5 p2 -> LIF -> AvgPool2 -> Flatten -> Linear 10 -> LIF,
T=20, B=16. W3: W1 forward only without grad. W4: W1 with T=1000, B=8.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time

import torch
from torch import nn
from torch.nn import functional as F

WORKLOADS = {
    "W1": dict(kind="mlp", T=100, B=32, train=True),
    "W2": dict(kind="conv", T=20, B=16, train=True),
    "W3": dict(kind="mlp", T=100, B=32, train=False),
    "W4": dict(kind="mlp", T=1000, B=8, train=True),
}
DECAY = 0.9
W1_GAIN = 4.0  # layer-1 weights = 4 x torch's default init, so the hidden layer spikes (~5-15 %)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def release_free_memory() -> None:
    """Hand memory freed by earlier steps back to the OS (glibc ``malloc_trim``), so RSS is live memory."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_hwm() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM; Linux >= 4.0) so it covers only what follows."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def hwm_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


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


def make_data(kind: str, T: int, B: int, n_batches: int = 4, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    shape, p = ((700,), 0.05) if kind == "mlp" else ((2, 32, 32), 0.1)
    out = []
    for _ in range(n_batches):
        x = (torch.rand((T, B) + shape, generator=g) < p).float()
        y = torch.randint(0, 20 if kind == "mlp" else 10, (B,), generator=g)
        out.append((x, y))
    return out


# ---------------------------------------------------------------- per-library networks
# Each builder returns (forward(x) -> (out_spikes [T,B,C], hidden_spikes), reset(), params, version).


def build_spikeflow(kind, layers):
    import spikeflow
    import spikeflow.nn as snn

    lif = dict(tau_mem=-1e-3 / math.log(DECAY), r=1.0 / (1.0 - DECAY), dt=1e-3, v_threshold=1.0, reset="subtract")
    if kind == "mlp":
        # Linear + LIF fused into one spike-driven kernel per layer (spikeflow.nn.LinearLIF)
        m1, m2 = snn.LinearLIF(700, 256, **lif), snn.LinearLIF(256, 20, **lif)
        m1.linear.load_state_dict(layers[0].state_dict())
        m2.linear.load_state_dict(layers[1].state_dict())
        net = nn.ModuleList([m1, m2])

        def forward(x):
            h = m1(x)
            return m2(h), h
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

        def forward(x):
            out = seq(x)
            return out, None
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

        def forward(x):
            m1, m2 = n1.init_leaky(), n2.init_leaky()
            cur1 = l1(x)  # Linear on all steps at once; the neuron loops over time
            hs, outs = [], []
            for t in range(x.shape[0]):
                s1, m1 = n1(cur1[t], m1)
                s2, m2 = n2(l2(s1), m2)
                hs.append(s1)
                outs.append(s2)
            return torch.stack(outs), torch.stack(hs)
    else:
        c1, c2, fc = layers
        n1, n2, n3 = leaky(), leaky(), leaky()
        mods = nn.ModuleList([c1, c2, fc, n1, n2, n3])

        def forward(x):
            m1, m2, m3 = n1.init_leaky(), n2.init_leaky(), n3.init_leaky()
            outs = []
            for t in range(x.shape[0]):
                s1, m1 = n1(c1(x[t]), m1)
                s2, m2 = n2(c2(F.avg_pool2d(s1, 2)), m2)
                s3, m3 = n3(fc(F.avg_pool2d(s2, 2).flatten(1)), m3)
                outs.append(s3)
            return torch.stack(outs), None
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

        def forward(x):
            h = n1(net[0](x))
            return n2(net[2](h)), h
    else:
        c1, c2, fc = layers
        net = nn.Sequential(
            layer.SeqToANNContainer(c1), lif(), layer.SeqToANNContainer(nn.AvgPool2d(2), c2), lif(),
            layer.SeqToANNContainer(nn.AvgPool2d(2), nn.Flatten(), fc), lif(),
        )

        def forward(x):
            return net(x), None
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

        def forward(x):
            h, _ = n1(l1(x))
            out, _ = n2(l2(h))
            return out, h
    else:
        c1, c2, fc = layers
        n1, n2, n3 = lif(), lif(), lif()
        mods = nn.ModuleList([c1, c2, fc, n1, n2, n3])

        def fold(f, x):
            y = f(x.reshape(-1, *x.shape[2:]))
            return y.reshape(x.shape[0], x.shape[1], *y.shape[1:])

        def forward(x):
            s1, _ = n1(fold(c1, x))
            s2, _ = n2(fold(lambda z: c2(F.avg_pool2d(z, 2)), s1))
            s3, _ = n3(fold(lambda z: fc(F.avg_pool2d(z, 2).flatten(1)), s2))
            return s3, None
    return forward, (lambda: None), mods.parameters(), f"norse {norse.__version__}"


def build_dense(kind, layers):
    """The dense floor: the same Linear/Conv work (forward, backward, Adam) without neurons.

    The layers after the first see fixed binary spike tensors of the same shapes (rate 0.1)."""
    g = torch.Generator().manual_seed(3)
    if kind == "mlp":
        l1, l2 = layers
        mods = nn.ModuleList([l1, l2])

        def forward(x):
            h = (torch.rand(x.shape[:2] + (256,), generator=g) < 0.1).float().requires_grad_()
            y1 = l1(x)
            out = l2(h)
            return out + 0.0 * y1.sum(), h.detach()
    else:
        c1, c2, fc = layers
        mods = nn.ModuleList([c1, c2, fc])

        def forward(x):
            T, B = x.shape[:2]
            s1 = (torch.rand(T * B, 16, 16, 16, generator=g) < 0.1).float().requires_grad_()
            s2 = (torch.rand(T * B, 2048, generator=g) < 0.1).float().requires_grad_()
            y1 = c1(x.reshape(T * B, 2, 32, 32))
            y2 = c2(s1)
            out = fc(s2).reshape(T, B, 10)
            return out + 0.0 * (y1.sum() + y2.sum()), None
    return forward, (lambda: None), mods.parameters(), f"torch {torch.__version__}"


BUILDERS = {"spikeflow": build_spikeflow, "snntorch": build_snntorch, "spikingjelly": build_spikingjelly,
            "norse": build_norse, "dense": build_dense}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("lib", choices=sorted(BUILDERS))
    ap.add_argument("workload", choices=sorted(WORKLOADS))
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--adam", choices=("fused", "default"), default="fused",
                    help="torch's fused CPU Adam (one kernel per step) or its default implementation")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    wl = WORKLOADS[args.workload]
    kind = wl["kind"]
    layers = shared_weights(kind)
    forward, reset, params, version = BUILDERS[args.lib](kind, layers)
    params = list(params)
    opt = torch.optim.Adam(params, lr=1e-3, fused=args.adam == "fused") if wl["train"] else None
    data = make_data(kind, wl["T"], wl["B"])
    hidden = None

    def one_step(i):
        nonlocal hidden
        x, y = data[i % len(data)]
        reset()
        if opt is None:
            with torch.no_grad():
                out, h = forward(x)
        else:
            out, h = forward(x)
            loss = F.cross_entropy(out.sum(0), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if i == 0 and h is not None:  # the first forward (warm-up) is the same for every library
            hidden = float(h.detach().sum())

    for i in range(args.warmup):
        one_step(i)
    # steady state after warm-up (parameters, optimizer state, compiled kernels), with the memory
    # the warm-up freed returned to the OS; the peak of the timed steps above it is the step's own
    # working memory (activations, tensors saved for the backward, gradients)
    release_free_memory()
    rss_before = rss_mb()
    hwm_ok = reset_hwm()
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    times = []
    for i in range(args.warmup, args.warmup + args.steps):
        t0 = time.perf_counter()
        one_step(i)
        times.append((time.perf_counter() - t0) * 1e3)
    step_peak = hwm_mb() if hwm_ok else peak_rss_mb()
    result = dict(
        lib=args.lib, workload=args.workload, version=version, torch=torch.__version__,
        threads=torch.get_num_threads(), times_ms=times, batch=wl["B"], T=wl["T"],
        rss_before_mb=rss_before, step_peak_rss_mb=step_peak, peak_rss_mb=peak_rss_mb(),
        cpu_s=time.process_time() - cpu0,
        own_cpu_total_s=sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
        wall_s=time.perf_counter() - wall0, hidden_spikes_first=hidden,
        pid=os.getpid(),
    )
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
