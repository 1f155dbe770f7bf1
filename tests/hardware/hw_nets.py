"""Small NIR graphs for the hardware tests, built with the nir package directly."""

import nir
import numpy as np


def lif(n, tau=20e-3, th=1.0, r=1.0):
    return nir.LIF(tau=np.full(n, tau), r=np.full(n, r), v_leak=np.zeros(n), v_threshold=np.full(n, th))


def if_(n, th=1.0, r=1e3):
    """IF with R = 1/dt at dt = 1 ms: one unit of current adds one unit of membrane per step."""
    return nir.IF(r=np.full(n, r), v_threshold=np.full(n, th))


def li(n, tau=20e-3):
    return nir.LI(tau=np.full(n, tau), r=np.ones(n), v_leak=np.zeros(n))


def chain(n_in, *nodes):
    return nir.NIRGraph.from_list(nir.Input(np.array([n_in])), *nodes,
                                  nir.Output(np.array(nodes[-1].output_type["output"])), type_check=False)


def dense(n_in, n_out, w=0.5, rng=None, sd=None):
    weight = rng.normal(0.0, sd, (n_out, n_in)) if rng is not None else np.full((n_out, n_in), float(w))
    return nir.Linear(weight)


def conv(c_in, c_out, k, hw):
    return nir.Conv2d(input_shape=(hw, hw), weight=np.full((c_out, c_in, k, k), 0.5), stride=1, padding=0,
                      dilation=1, groups=1, bias=np.zeros(c_out))


def conv_out(k, hw):
    return hw - k + 1


def random_net(seed, n_in=64, hidden=48, n_out=10, sd=1.5, tau=20e-3):
    rng = np.random.default_rng(seed)
    return chain(n_in, nir.Affine(rng.normal(0, sd, (hidden, n_in)), np.zeros(hidden)), lif(hidden, tau),
                 nir.Linear(rng.normal(0, sd, (n_out, hidden))), lif(n_out, tau))


def poisson(seed, T, B, n, p=0.2):
    return (np.random.default_rng(seed).random((T, B, n)) < p).astype(np.float64)


def recurrent_chain(w_in, w_rec, neuron, readout=None):
    """input -> Linear(w_in) -> neuron <-> Linear(w_rec) (a self-loop, delayed one step) [-> readout pair]."""
    n_hidden, n_in = np.shape(w_in)
    nodes = {"input": nir.Input(np.array([n_in])), "fc": nir.Linear(np.asarray(w_in, dtype=float)), "rec": neuron,
             "loop": nir.Linear(np.asarray(w_rec, dtype=float))}
    edges = [("input", "fc"), ("fc", "rec"), ("rec", "loop"), ("loop", "rec")]
    last, n_out = "rec", n_hidden
    if readout is not None:
        w_out, out_neuron = readout
        nodes.update({"fc_out": nir.Linear(np.asarray(w_out, dtype=float)), "out": out_neuron})
        edges += [("rec", "fc_out"), ("fc_out", "out")]
        last, n_out = "out", np.shape(w_out)[0]
    nodes["output"] = nir.Output(np.array([n_out]))
    edges.append((last, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
