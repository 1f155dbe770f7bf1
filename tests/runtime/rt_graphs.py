"""Random NIR graphs for the runtime tests (built with the ``nir`` package directly)."""

from __future__ import annotations

import nir
import numpy as np


def _lif(rng, shape, reset=None, bias_free=False):
    node = nir.LIF(
        tau=rng.uniform(5e-3, 30e-3, shape), r=rng.uniform(5.0, 20.0, shape), v_leak=np.zeros(shape),
        v_threshold=rng.uniform(0.5, 1.5, shape), v_reset=np.zeros(shape),
    )
    if reset:
        node.metadata = {"reset": reset}
    return node


def _cuba(rng, shape, reset=None):
    node = nir.CubaLIF(
        tau_syn=rng.uniform(2e-3, 10e-3, shape), tau_mem=rng.uniform(5e-3, 30e-3, shape),
        r=rng.uniform(5.0, 20.0, shape), v_leak=np.zeros(shape), v_threshold=rng.uniform(0.5, 1.5, shape),
        v_reset=np.zeros(shape), w_in=rng.uniform(0.5, 2.0, shape),
    )
    if reset:
        node.metadata = {"reset": reset}
    return node


def _if(rng, shape):
    return nir.IF(r=rng.uniform(200.0, 800.0, shape), v_threshold=rng.uniform(0.5, 1.5, shape), v_reset=np.zeros(shape))


def neuron(rng, kind, shape, reset=None):
    return {"lif": lambda: _lif(rng, shape, reset), "cubalif": lambda: _cuba(rng, shape, reset),
            "if": lambda: _if(rng, shape)}[kind]()


def readout(rng, n):
    return nir.LI(tau=rng.uniform(10e-3, 30e-3, n), r=np.ones(n), v_leak=np.zeros(n))


def mlp(rng, sizes=(40, 32, 10), kind="lif", reset=None, dt=1e-3, recurrent=False, bias=0.05, readout_li=True):
    n_in, n_h, n_o = sizes
    nodes = {
        "input": nir.Input(np.array([n_in])),
        "fc1": nir.Affine(rng.normal(0, 1.0 / np.sqrt(n_in) * 2.5, (n_h, n_in)), rng.normal(0, bias, n_h)),
        "h": neuron(rng, kind, (n_h,), reset),
        "fc2": nir.Affine(rng.normal(0, 1.0 / np.sqrt(n_h) * 2.5, (n_o, n_h)), rng.normal(0, bias, n_o)),
        "out": readout(rng, n_o) if readout_li else neuron(rng, kind, (n_o,), reset),
        "output": nir.Output(np.array([n_o])),
    }
    edges = [("input", "fc1"), ("fc1", "h"), ("h", "fc2"), ("fc2", "out"), ("out", "output")]
    if recurrent:
        nodes["rec"] = nir.Linear(rng.normal(0, 1.0 / np.sqrt(n_h) * 1.5, (n_h, n_h)))
        edges += [("h", "rec"), ("rec", "h")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": dt}, type_check=False)


def convnet(rng, kind="lif", pool="sum", size=12, channels=(2, 4, 6), n_out=5, dt=1e-3, stride=1, groups=1):
    c0, c1, c2 = channels
    h1 = (size + 2 * 1 - 3) // stride + 1
    hp = h1 // 2
    h2 = hp  # 'same'-style conv, stride 1
    pool_cls = nir.SumPool2d if pool == "sum" else nir.AvgPool2d
    k1 = rng.normal(0, 0.6 * groups, (c1, c0 // groups, 3, 3))
    nodes = {
        "input": nir.Input(np.array([c0, size, size])),
        "conv1": nir.Conv2d(input_shape=(size, size), weight=k1, stride=stride, padding=1, dilation=1,
                            groups=groups, bias=rng.normal(0, 0.05, c1)),
        "n1": neuron(rng, kind, (c1, h1, h1)),
        "pool": pool_cls(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "conv2": nir.Conv2d(input_shape=(hp, hp), weight=rng.normal(0, 0.5 if pool == "sum" else 2.0, (c2, c1, 3, 3)),
                            stride=1, padding=1, dilation=1, groups=1, bias=rng.normal(0, 0.05, c2)),
        "n2": neuron(rng, kind, (c2, h2, h2)),
        "flat": nir.Flatten(input_type={"input": np.array([c2, h2, h2])}),
        "fc": nir.Affine(rng.normal(0, 0.3, (n_out, c2 * h2 * h2)), rng.normal(0, 0.05, n_out)),
        "out": readout(rng, n_out),
        "output": nir.Output(np.array([n_out])),
    }
    edges = [("input", "conv1"), ("conv1", "n1"), ("n1", "pool"), ("pool", "conv2"), ("conv2", "n2"),
             ("n2", "flat"), ("flat", "fc"), ("fc", "out"), ("out", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": dt}, type_check=False)


def bernoulli(rng, t, b, shape, p):
    return (rng.random((t, b, *shape)) < p).astype(np.float64)
