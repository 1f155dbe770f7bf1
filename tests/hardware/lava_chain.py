"""Run a chain of Lava LIF + Dense processes (Loihi bit-accurate, ``fixed_pt``) from an .npz of integers.

Run inside the Lava venv (Python 3.10, lava-nc 0.10.0); it imports numpy and Lava only, never spikeflow:

    python lava_chain.py IN.npz OUT.npz [IN2.npz OUT2.npz ...]    # one network (and Lava run) per pair

``IN.npz`` holds ``x`` (input spikes ``[T, n_in]``, 0/1) and, per layer ``l``, ``w{l}`` (weights
``[n_out, n_in]``), ``weight_exp{l}``, ``du{l}``, ``dv{l}``, ``vth{l}``, ``bias_mant{l}``, ``bias_exp{l}``.
The input enters through a source ring buffer into the first Dense. ``OUT.npz`` holds, per layer,
``s{l}``, ``u{l}``, ``v{l}`` (``[T, n_out]``): the spikes of each step (from a sink ring buffer) and the
current and voltage after each step (Lava monitors).
"""

import sys

import numpy as np
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.dense.process import Dense
from lava.proc.io.sink import RingBuffer as Sink
from lava.proc.io.source import RingBuffer as Source
from lava.proc.lif.process import LIF
from lava.proc.monitor.process import Monitor


def main(src: str, dst: str) -> None:
    z = np.load(src, allow_pickle=False)
    x = z["x"].astype(np.int32)
    steps = x.shape[0]
    n_layers = int(z["n_layers"])
    source = Source(data=x.T.copy())
    port = source.s_out
    lifs, sinks, sizes = [], [], []
    for k in range(n_layers):
        w = z[f"w{k}"].astype(np.int32)
        dense = Dense(weights=w, weight_exp=int(z[f"weight_exp{k}"]), num_weight_bits=8)
        lif = LIF(shape=(w.shape[0],), du=int(z[f"du{k}"]), dv=int(z[f"dv{k}"]), vth=int(z[f"vth{k}"]),
                  bias_mant=z[f"bias_mant{k}"].astype(np.int32), bias_exp=z[f"bias_exp{k}"].astype(np.int32))
        port.connect(dense.s_in)
        dense.a_out.connect(lif.a_in)
        sink = Sink(shape=(w.shape[0],), buffer=steps)
        lif.s_out.connect(sink.a_in)
        lifs.append(lif)
        sizes.append(w.shape[0])
        sinks.append(sink)
        port = lif.s_out
    monitors = []
    for lif in lifs:
        for var in (lif.u, lif.v):
            mon = Monitor()
            mon.probe(var, steps)
            monitors.append((mon, lif.name, var.name))
    try:
        source.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        out = {f"s{k}": sink.data.get().T.astype(np.int64) for k, sink in enumerate(sinks)}
        for i, (mon, proc, var) in enumerate(monitors):
            out[f"{var}{i // 2}"] = np.asarray(mon.get_data()[proc][var], dtype=np.int64).reshape(steps, -1)
    finally:
        source.stop()
    np.savez(dst, **out)


if __name__ == "__main__":
    for a, b in zip(sys.argv[1::2], sys.argv[2::2]):
        main(a, b)
