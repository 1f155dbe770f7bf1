"""NIR in and out: spikeflow modules <-> NIR graphs (HDF5 files), with one time policy.

Interface:

* ``to_nir(module, *, dt=None, input_shape=None) -> nir.NIRGraph`` exports a spikeflow
  ``Sequential`` (TimeFold-wrapped torch layers: Linear -> Affine/Linear, Conv1d, Conv2d,
  AvgPool2d, SumPool2d, Flatten; neuron layers LIF, IF, LI, CubaLIF, CubaLI; Scale, Delay,
  Threshold; ``Recurrent`` layers as subgraphs with a cycle), or a single such layer.
  Parameters are per-neuron arrays, Input/Output types batch-free, ``dt`` in metadata.
* ``write(module_or_graph, path, **kw)`` writes a file atomically (``kw`` go to ``to_nir``).
* ``read_graph(path, *, max_bytes=1 GiB) -> nir.NIRGraph`` reads a file safely: it is
  validated with h5py before arrays are read (links, storage, dtypes, declared sizes,
  node types and fields, edges, shapes); any problem raises ``spikeflow.errors.NIRError``
  naming the node. Nothing in the file is executed.
* ``from_nir(graph_or_path, *, dt=None, discretization=None, convention="auto", reset=None)
  -> GraphModule``, a ``torch.nn.Module`` that runs the graph on time-major input
  ``[T, B, ...]`` in topological order; cycles run step by step through a one-step delay.
  ``convention`` (``ir.conventions``): how the file is meant, as declared by the caller or the
  file's metadata; shape heuristics only propose, with a warning.
* For engines that run graphs themselves: ``flatten``/``components`` (subgraphs inlined,
  cycles and their delayed edges), ``infer_shapes`` (batch-free shape of every node) and
  ``node_module`` (the spikeflow module of one node under the time policy).

Time policy: ``dt`` and tau in seconds; a neuron step is the
exact solution of NIR's ODE with the input held over the step: leak ``exp(-dt/tau)``,
input ``r * I * (1 - exp(-dt/tau))`` (LIF, LI, CubaLIF/CubaLI's current); CubaLIF/CubaLI's
membrane takes the exact solution of the coupled current/membrane ODEs (``neurons.cuba``);
IF (``dv/dt = R I`` in NIR, ``v += r x`` per step in spikeflow) converts as ``R = r / dt``.
``dt`` for import: the caller's, else the graph's metadata, else ``DEFAULT_DT`` (1 ms)
with a warning. snnTorch 1.0 files assume 1e-4 s and Norse 1.1 files 1e-3 s, and both
libraries step forward Euler in their own order: ``convention="snntorch"`` / ``"norse"`` (or
``discretization="snntorch"`` / ``"norse"``) reproduces their spikes exactly.
"""

from spikeflow.ir.export import to_nir
from spikeflow.ir.importer import (
    CONVENTIONS,
    DEFAULT_DT,
    GraphModule,
    from_nir,
    graph_dt,
    guess_convention,
    node_module,
    resolve_convention,
)
from spikeflow.ir.reader import read_graph
from spikeflow.ir.shapes import infer as infer_shapes
from spikeflow.ir.topology import components, flatten
from spikeflow.ir.writer import write

__all__ = [
    "CONVENTIONS", "DEFAULT_DT", "GraphModule", "components", "flatten", "from_nir", "graph_dt", "guess_convention",
    "infer_shapes", "node_module", "read_graph", "resolve_convention", "to_nir", "write",
]
