"""CUBA network (Vogels & Abbott 2005; Brette et al. 2007, Benchmark 2) with spikeflow.sim.

    PYTHONPATH=src python examples/cuba.py --neurons 4000 --seed 1 [--plot raster.png]

Builds the network explicitly (the same as ``spikeflow.sim.cuba.build``) so it reads as a
tutorial: two LIF populations with exponential current synapses, random 2 % connectivity,
a spike monitor, 1 s of biological time at dt = 0.1 ms.
"""

import argparse

from spikeflow import sim
from spikeflow.sim import cuba


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--neurons", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--plot", default=None, help="save a raster plot of the first 500 neurons here")
    args = ap.parse_args()

    dt = 1e-4
    net = sim.Network(dt=dt, seed=args.seed)
    neuron = dict(tau_mem=cuba.TAUM, v_threshold=cuba.VT, v_leak=cuba.EL, v_reset=cuba.VR,
                  refractory=cuba.REFRACTORY - dt,  # Brian2's refractory=5 ms holds v for 49 steps
                  tau_syn={"exc": cuba.TAUE, "inh": cuba.TAUI}, v_init=("uniform", cuba.VR, cuba.VT))
    n_exc = args.neurons * 4 // 5
    exc = net.add(sim.LIF(n_exc, name="exc", **neuron))
    inh = net.add(sim.LIF(args.neurons - n_exc, name="inh", **neuron))
    p = cuba.connection_probability(args.neurons)
    for src, weight, channel in ((exc, cuba.WE, "exc"), (inh, cuba.WI, "inh")):
        for tgt in (exc, inh):
            net.connect(src, tgt, sim.FixedProbability(p), weight=weight, channel=channel, delay=dt)
    mon_e, mon_i = net.spike_monitor(exc), net.spike_monitor(inh)
    net.run(1.0)

    idx, t = cuba.spikes(net, (mon_e, mon_i))
    print(f"{args.neurons} neurons, {net.n_synapses_local} synapses: build {net.timings['build']:.2f} s, "
          f"loop {net.timings['run']:.3f} s")
    print(f"mean rate {sim.mean_rate(idx, args.neurons, 1.0):.2f} Hz, CV(ISI) {sim.cv_isi(idx, t):.3f}")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        sel = idx < 500
        plt.figure(figsize=(8, 4))
        plt.plot(t[sel] * 1e3, idx[sel], ",k")
        plt.xlabel("time (ms)")
        plt.ylabel("neuron")
        plt.title("CUBA, first 500 neurons")
        plt.savefig(args.plot, dpi=120)


if __name__ == "__main__":
    main()
