"""The spyx (JAX) run of one workload, in spyx's own venv (no torch there):

    python bench_worker_spyx.py WORKLOAD DATA.npz --steps N --warmup K --threads 2

``DATA.npz`` holds the initial weights and input batches that ``bench_worker.export_npz`` wrote
from the same seeds as every other library's run. Prints the same ``RESULT {json}`` line as
``bench_worker.py``, plus the jit compile time (``compile_s``), which the step times exclude.

The networks are flax ``nnx`` modules, as spyx 1.0 builds them: each Linear/Conv layer runs on all
time steps at once and each LIF layer is one ``jax.lax.scan`` over time (``spyx.nn.run``); the whole
training step (forward, ``jax.grad``, optax Adam) is one ``jax.jit``. spyx's ``nn.LIF`` tests the
threshold on the membrane *before* this step's input and subtracts the threshold after the decay
(snnTorch's convention, one step later), so it cannot be set to compute the same function as the
other libraries; ``SubtractLIF`` below is spyx's LIF with the order of every other library
(v <- 0.9 v + x, spike when v > 1, v <- v - 1): the same state, the same three element-wise
operations and spyx's SuperSpike surrogate (1 / (1 + 25 |v|)^2, snnTorch's fast sigmoid).

Threads: XLA's CPU client sizes its thread pool by the CPUs the process may run on, so the worker
first restricts itself to ``--threads`` CPUs (``sched_setaffinity``, what ``taskset`` does) and
runs with ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=true`` (Eigen's multi-threaded matmul/conv).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

XLA_FLAGS = "--xla_cpu_multi_thread_eigen=true"


def pin_cpus(threads: int) -> list:
    """Restrict this process to ``threads`` of the CPUs it may use (before JAX starts its pool)."""
    allowed = sorted(os.sched_getaffinity(0))
    if threads < len(allowed):
        os.sched_setaffinity(0, allowed[:threads])
    return sorted(os.sched_getaffinity(0))


def main(argv=None) -> int:
    from bench_proc import DECAY, emit, timed_run, workload

    ap = argparse.ArgumentParser()
    ap.add_argument("workload", choices=("W1", "W2", "W3", "W4"))
    ap.add_argument("data", help="the .npz that bench_worker.export_npz wrote for this workload")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--warmup-s", type=float, default=0.0, help="warm up for at least this many seconds")
    ap.add_argument("--steps-s", type=float, default=0.0, help="time steps for at least this many seconds")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--input", choices=("float32", "uint8"), default="float32",
                    help="the MLP input batches as float32, or as uint8 0/1 converted inside the jit")
    args = ap.parse_args(argv)
    cpus = pin_cpus(args.threads)
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + XLA_FLAGS).strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")

    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    import spyx
    from flax import nnx

    wl = workload(args.workload, args.tiny)
    with np.load(args.data, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    n_batches = sum(1 for k in arrays if k.startswith("x"))
    if arrays["x0"].shape[:2] != (wl["T"], wl["B"]):
        sys.exit(f"error: {args.data} holds T, B = {arrays['x0'].shape[:2]}, the workload needs "
                 f"{(wl['T'], wl['B'])} (--tiny must match the export)")
    spike = spyx.axn.superspike(k=25)

    class SubtractLIF(nnx.Module):
        """spyx's LIF (``spyx.nn.LIF``) with every other library's order: integrate, fire, subtract."""

        def __init__(self, hidden_shape, beta=DECAY, threshold=1.0):
            self.hidden_shape = tuple(hidden_shape)
            self.beta = beta  # a constant, as in the other libraries (spyx.nn.LIF would train it)
            self.threshold = threshold

        def __call__(self, x, V):
            V = self.beta * V + x
            spikes = spike(V - self.threshold)
            return spikes, V - spikes * self.threshold

        def initial_state(self, batch_size):
            return jnp.zeros((batch_size,) + self.hidden_shape)

    def param(a):
        return nnx.Param(jnp.asarray(a, dtype=jnp.float32))

    def linear(i):
        w = arrays[f"w{i}"]
        layer = nnx.Linear(w.shape[1], w.shape[0], rngs=nnx.Rngs(0))
        layer.kernel, layer.bias = param(w.T), param(arrays[f"b{i}"])
        return layer

    def conv(i):
        w = arrays[f"w{i}"]  # [out, in, kh, kw] -> flax's [kh, kw, in, out]
        layer = nnx.Conv(w.shape[1], w.shape[0], w.shape[2:], padding=w.shape[2] // 2, rngs=nnx.Rngs(0))
        layer.kernel, layer.bias = param(w.transpose(2, 3, 1, 0)), param(arrays[f"b{i}"])
        return layer

    def scan(neuron, cur):
        return spyx.nn.run(neuron, cur)[0]  # one jax.lax.scan over the leading (time) axis

    class MLP(nnx.Module):
        def __init__(self):
            self.l1, self.l2 = linear(0), linear(1)
            self.n1, self.n2 = SubtractLIF((256,)), SubtractLIF((20,))

        def __call__(self, x):
            h = scan(self.n1, self.l1(x.astype(jnp.float32)))  # a no-op for float32 input
            return scan(self.n2, self.l2(h)), jnp.stack([h.sum()])

    class ConvNet(nnx.Module):
        def __init__(self):
            self.c1, self.c2 = conv(0), conv(1)
            w, b = arrays["w2"], arrays["b2"]  # torch flattens (C, H, W); NHWC flattens (H, W, C)
            self.fc = nnx.Linear(2048, 10, rngs=nnx.Rngs(0))
            self.fc.kernel = param(w.reshape(10, 32, 8, 8).transpose(0, 2, 3, 1).reshape(10, 2048).T)
            self.fc.bias = param(b)
            self.n1, self.n2, self.n3 = SubtractLIF((32, 32, 16)), SubtractLIF((16, 16, 32)), SubtractLIF((10,))

        def __call__(self, x):
            T, B = x.shape[:2]

            def fold(f, z):  # a layer on all T * B frames at once
                y = f(z.reshape((T * B,) + z.shape[2:]))
                return y.reshape((T, B) + y.shape[1:])

            s1 = scan(self.n1, fold(self.c1, x))
            s2 = scan(self.n2, fold(lambda z: self.c2(nnx.avg_pool(z, (2, 2), strides=(2, 2))), s1))
            s3 = scan(self.n3, fold(lambda z: self.fc(nnx.avg_pool(z, (2, 2), strides=(2, 2)).reshape(z.shape[0], -1)),
                                    s2))
            return s3, jnp.stack([s1.sum(), s2.sum()])

    model = MLP() if wl["kind"] == "mlp" else ConvNet()
    graphdef, params = nnx.split(model, nnx.Param)
    tx = optax.adam(1e-3)  # torch's defaults: betas (0.9, 0.999), eps 1e-8
    opt_state = tx.init(params) if wl["train"] else None

    def to_input(x):
        x = x.astype(np.uint8 if args.input == "uint8" and wl["kind"] == "mlp" else np.float32)
        return jnp.asarray(x if wl["kind"] == "mlp" else x.transpose(0, 1, 3, 4, 2))  # NCHW -> NHWC

    data = [(to_input(arrays[f"x{i}"]), jnp.asarray(arrays[f"y{i}"])) for i in range(n_batches)]

    def loss_fn(p, x, y):
        out, hidden = nnx.merge(graphdef, p)(x)
        return optax.softmax_cross_entropy_with_integer_labels(out.sum(0), y).mean(), hidden

    def train_step(p, s, x, y):
        (loss, hidden), grads = jax.value_and_grad(loss_fn, has_aux=True)(p, x, y)
        updates, s = tx.update(grads, s, p)
        return optax.apply_updates(p, updates), s, loss, hidden

    def infer(p, x):
        return nnx.merge(graphdef, p)(x)

    x0, y0 = data[0]
    t0 = time.perf_counter()
    if wl["train"]:
        compiled = jax.jit(train_step).lower(params, opt_state, x0, y0).compile()
    else:
        compiled = jax.jit(infer).lower(params, x0).compile()
    compile_s = time.perf_counter() - t0
    hidden = None

    def one_step(i):
        nonlocal params, opt_state, hidden
        x, y = data[i % n_batches]
        if wl["train"]:
            params, opt_state, loss, h = compiled(params, opt_state, x, y)
            jax.block_until_ready((params, opt_state, loss))
        else:
            out, h = jax.block_until_ready(compiled(params, x))
        if i == 0:  # the first forward (warm-up) is the same for every library
            hidden = [float(v) for v in np.asarray(h)]

    result = timed_run(one_step, args.warmup, args.steps, args.warmup_s, args.steps_s)
    uint8 = ", uint8 input" if args.input == "uint8" else ""
    result.update(lib="spyx", workload=args.workload, version=f"spyx {spyx.__version__} (JAX {jax.__version__}){uint8}",
                  threads=len(cpus), cpus=cpus, xla_flags=os.environ["XLA_FLAGS"], batch=wl["B"], T=wl["T"],
                  hidden_spikes_first=hidden, compile_s=compile_s)
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
