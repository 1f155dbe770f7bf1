# %% [markdown]
# # 7. Exchange models with snnTorch and Norse through NIR
#
# NIR (the Neuromorphic Intermediate Representation) describes a spiking network as a graph of
# continuous-time nodes (`Affine`, `LIF`, `LI`, `IF`, `CubaLIF`, ...) stored in an HDF5 file, so
# that a model trained in one library runs in another or on a chip. `spikeflow.ir` writes and
# reads such files. Its time policy: `dt` and every `tau` in seconds, `dt` stored in the graph's
# metadata, and a neuron step that is the exact solution of NIR's differential equation over the
# step (see [the NIR contract](../concepts/nir.md)).

# %%
import importlib.util
import tempfile
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import nir
import numpy as np
import torch

import spikeflow.nn as sfn
from spikeflow import ir

tmp = tempfile.TemporaryDirectory()
folder = Path(tmp.name)

# %% [markdown]
# ## spikeflow -> NIR -> spikeflow

# %%
torch.manual_seed(5)
net = sfn.Sequential(
    torch.nn.Linear(4, 6), sfn.LIF(6, tau_mem=10e-3, reset="to_reset", dt=1e-3),
    torch.nn.Linear(6, 3), sfn.LIF(3, tau_mem=10e-3, reset="to_reset", dt=1e-3),
)
with torch.no_grad():
    net[0].layer.weight.mul_(20)
    net[2].layer.weight.mul_(20)
path = folder / "model.nir"
ir.write(net, path)                                   # dt goes into the file's metadata

graph = ir.read_graph(path)                           # validated before any array is read
for name, node in graph.nodes.items():
    print(f"{name:8s} {type(node).__name__}")
print("dt in the file:", ir.graph_dt(graph), "s")

x = (torch.rand(80, 4, 4, generator=torch.Generator().manual_seed(3)) < 0.5).float()   # [T, B, inputs]
module = ir.from_nir(path)
with torch.no_grad():
    same = torch.equal(module(x), net(x))
print("spikes identical after the round trip:", same, f"({int(net(x).sum())} output spikes)")

# %% [markdown]
# ## The peers' conventions
#
# snnTorch 1.0 and Norse 1.1 step NIR graphs with forward Euler, at `dt = 1e-4 s` (snnTorch) and
# `1e-3 s` (Norse), each with its own units. How a file is meant is its *convention*:
# `from_nir(path, convention="snntorch" | "norse" | "spikeflow")`, else the file's metadata
# `convention`, else its metadata `dt` (spikeflow's files: read as written), else the file's shape
# proposes one, with a warning that says what was assumed. Run by a peer, spikeflow's own file is
# stepped by forward Euler, which `discretization="euler"` reproduces; at this `dt` it differs
# slightly from spikeflow's exact steps:

# %%
with torch.no_grad():
    exact = ir.from_nir(path)(x)
    euler = ir.from_nir(path, discretization="euler")(x)
print(f"output spikes, exact steps: {int(exact.sum())}; forward Euler (as a peer runs this file): {int(euler.sum())}")

fig, ax = plt.subplots(figsize=(6, 2.4))
for j in range(3):
    ax.plot(np.nonzero(exact[:, 0, j].numpy())[0], np.full(int(exact[:, 0, j].sum()), j + 0.1), "|", ms=9,
            color="tab:blue", label="exact steps" if j == 0 else None)
    ax.plot(np.nonzero(euler[:, 0, j].numpy())[0], np.full(int(euler[:, 0, j].sum()), j - 0.1), "|", ms=9,
            color="tab:orange", label="forward Euler" if j == 0 else None)
ax.set_xlabel("step (1 ms)"); ax.set_ylabel("output neuron"); ax.set_yticks([0, 1, 2]); ax.legend(fontsize=8)

# %% [markdown]
# ## The peer half
#
# The peers are not dependencies of spikeflow. They live in the interop environment
# (`make test-interop` builds `.venv-interop` with snnTorch 1.0.0 and Norse 1.1.0); run this
# tutorial with its python (`.venv-interop/bin/python docs/tutorials/07_nir_exchange.py`) and the
# cells below run the other libraries too. The same checks are the interop tests
# (`tests/ir/test_ir_interop.py`).

# %%
if importlib.util.find_spec("norse") is not None:
    import norse.torch as nt

    peer = nt.from_nir(nir.read(str(path)), dt=1e-3)          # spikeflow's file, run by Norse
    state, outs = None, []
    with torch.no_grad():
        for t in range(len(x)):
            o, state = peer(x[t], state)
            outs.append(o)
    print("Norse runs spikeflow's file with the same spikes as spikeflow's Euler import:",
          torch.equal(torch.stack(outs), euler))
else:
    print("Norse is not installed here: the Norse half is skipped")

# %%
if importlib.util.find_spec("snntorch") is not None:
    import snntorch as snn
    from snntorch import utils as snn_utils
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    leaky = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)
    peer_net = torch.nn.Sequential(
        torch.nn.Linear(4, 6), snn.Leaky(beta=torch.full((6,), 0.9), threshold=torch.ones(6), **leaky),
        torch.nn.Linear(6, 3), snn.Leaky(beta=torch.full((3,), 0.8), threshold=torch.ones(3), **leaky),
    )
    with torch.no_grad():
        peer_net[0].weight.mul_(3)
        peer_net[2].weight.mul_(3)
        snn_utils.reset(peer_net)
        ref = torch.stack([peer_net(x[t]) for t in range(len(x))])
    nir.write(str(folder / "snntorch.nir"), export_to_nir(peer_net, torch.randn(1, 4), ignore_dims=[0]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        imported = ir.from_nir(folder / "snntorch.nir")        # no metadata: recognised by its shape
    print("warning:", caught[0].message if caught else None)
    with torch.no_grad():
        print("spikeflow runs snnTorch's file with snnTorch's spikes:", torch.equal(imported(x), ref))
else:
    print("snnTorch is not installed here: the snnTorch half is skipped")
tmp.cleanup()
