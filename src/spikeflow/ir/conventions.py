"""How a NIR file is to be read: its convention (whose units, dt and discretization it assumes).

NIR's node equations are continuous; a file does not say how its writer stepped them. Two
libraries write files whose parameters only reproduce their networks under their own
discrete steps (read from snntorch 1.0.0 ``export_nir.py``/``import_nir.py``/``_neurons`` and
norse 1.1.0 ``torch/utils/export_nir.py``, ``functional/lif.py``, ``lif_box.py``, ``iaf.py``):

* snnTorch 1.0 writes ``Leaky``/``Synaptic`` (and ``RLeaky``/``RSynaptic`` as subgraphs with a
  cycle) with ``tau = dt / (1 - beta)``, ``r = tau / dt``, ``w_in = tau_syn / dt`` at its fixed
  ``dt = 1e-4 s``, and steps ``syn = alpha syn + x``, ``mem = beta mem + syn`` (discretization
  ``"snntorch"``); its ``RSynaptic`` resets one step late.
* Norse 1.1 writes ``tau = dt / tau_inv`` (i.e. ``dt * tau``, not seconds), ``r = 1``, ``w_in = 1``
  and IF's ``r = 1`` per step, at ``dt = 1e-3 s``; its ``LIFCell`` adds the input to the current
  as a jump and integrates the membrane from that current (discretization ``"norse"``).

What decides: the caller's ``convention`` (``from_nir(convention=...)``, ``spikeflow nir run
--convention``), else the graph's metadata ``convention``, else a metadata ``dt`` (the file states
its time base: read as written), else the shape heuristics of ``guess``, which only propose and
say so in a warning. Norse's units are corrected only while the parameters are in them (some
tau below dt): a file whose taus are already seconds is read as written.
"""

from __future__ import annotations

import copy
from typing import List, Optional, Tuple

import nir
import numpy as np

from spikeflow.errors import NIRError
from spikeflow.ir.topology import FlatGraph

SNNTORCH_DT = 1e-4  # seconds; snnTorch 1.0's export_nir/import_nir hard-code it
NORSE_DT = 1e-3  # seconds; Norse 1.1's to_nir/from_nir default

CONVENTIONS = {
    "snntorch": dict(
        dt=SNNTORCH_DT, discretization="snntorch",
        note="snnTorch 1.0 writes LIF/CubaLIF with r = tau / 1e-4 s and steps them by forward Euler at dt = 1e-4 s, "
             "current first (syn = alpha syn + x, mem = beta mem + syn)",
    ),
    "norse": dict(
        dt=NORSE_DT, discretization="norse",
        note="Norse 1.1 steps by forward Euler at dt = 1e-3 s, the input a jump of the current, and writes every "
             "tau as dt * tau, IF's r and CubaLIF's w_in per step",
    ),
}
NAMES = ("spikeflow",) + tuple(CONVENTIONS)
TAU_FIELDS = ("tau", "tau_mem", "tau_syn")
_NEURONS = (nir.LIF, nir.CubaLIF, nir.LI, nir.CubaLI, nir.IF)


def all_nodes(graph: nir.NIRGraph):
    for n in graph.nodes.values():
        if isinstance(n, nir.NIRGraph):
            yield from all_nodes(n)
        else:
            yield n


def _text(v) -> str:
    if isinstance(v, np.ndarray) and v.size == 1:
        v = v.reshape(-1)[0]
    return v.decode() if isinstance(v, bytes) else str(v)


def declared(graph: nir.NIRGraph) -> Optional[str]:
    """The convention named in the graph's metadata ``convention``, or None."""
    meta = graph.metadata if isinstance(graph.metadata, dict) else {}
    if "convention" not in meta:
        return None
    name = _text(meta["convention"]).lower()
    if name not in NAMES:
        raise NIRError(f"NIR graph: metadata 'convention' must be one of {NAMES}, got {name!r}")
    return name


def min_tau(graph_or_flat) -> Optional[float]:
    nodes = graph_or_flat.nodes.values() if isinstance(graph_or_flat, FlatGraph) else all_nodes(graph_or_flat)
    arrays = [np.asarray(getattr(n, f), np.float64) for n in nodes for f in TAU_FIELDS
              if getattr(n, f, None) is not None]
    taus = [float(a.min()) for a in arrays if a.size > 0]
    return min(taus) if taus else None


def guess(graph: nir.NIRGraph, dt: float | None = None) -> Tuple[Optional[str], str]:
    """A proposed convention for a graph that declares none, and the evidence (or why not).

    snnTorch: every LIF/CubaLIF has ``r = tau / 1e-4 s``. Norse: 0-d neuron parameters or a batch
    axis of 1 in the Input type, while some tau is below ``dt`` (Norse's ``dt * tau``); with every tau
    at or above ``dt`` the parameters are already seconds and nothing is proposed."""
    neurons = [n for n in all_nodes(graph) if isinstance(n, _NEURONS)]
    if not neurons:
        return None, ""
    snn_sig = [n for n in neurons if isinstance(n, (nir.LIF, nir.CubaLIF))]
    if snn_sig and len(snn_sig) == len(neurons) and all(
        np.allclose(np.asarray(n.r, np.float64) * SNNTORCH_DT,
                    np.asarray(getattr(n, "tau", getattr(n, "tau_mem", 0.0)), np.float64), rtol=1e-4)
        for n in snn_sig
    ):
        return "snntorch", "every LIF/CubaLIF has r = tau / 1e-4 s"
    zero_d = any(np.ndim(getattr(n, "v_leak", getattr(n, "r", None))) == 0 for n in neurons)
    batch_input = any(
        isinstance(n, nir.Input) and np.size(n.input_type.get("input")) >= 2
        and int(np.asarray(n.input_type["input"]).reshape(-1)[0]) == 1
        for n in graph.nodes.values()
    )
    if not (zero_d or batch_input):
        return None, ""
    signs = " and ".join(s for s, on in (("0-d neuron parameters", zero_d), ("a batch axis in Input", batch_input))
                         if on)
    step = NORSE_DT if dt is None else dt
    low = min_tau(graph)
    if low is not None and low >= step:
        return None, (f"{signs} as Norse 1.1 writes, but every tau is >= dt = {step:g} s (min {low:g} s): the "
                      "parameters are taken as seconds already and not divided by dt")
    return "norse", signs + (f", taus below dt = {step:g} s (min {low:g} s)" if low is not None else "")


def norse_tau(written, dt: float) -> np.ndarray:
    """Seconds from Norse's written ``dt / tau_inv`` (float32: ``(1 / tau_inv) * dt``): ``1 / tau_inv`` for
    the float32 ``tau_inv`` that writes back to the stored value, so Norse's own ``dt * tau_inv`` can be
    recomputed bit for bit; ``written / dt`` where no float32 does."""
    tw = np.asarray(written, np.float32)
    out = np.asarray(written, np.float64) / dt
    found = np.zeros(tw.shape, bool)
    guess = (dt / tw.astype(np.float64)).astype(np.float32)
    up = down = guess
    candidates = [guess]
    for _ in range(3):
        up, down = np.nextafter(up, np.float32(np.inf)), np.nextafter(down, np.float32(0))
        candidates += [up, down]
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        for c in candidates:  # nearest first
            ok = ~found & ((np.float32(1) / c) * np.float32(dt) == tw)
            out = np.where(ok, 1.0 / c.astype(np.float64), out)
            found |= ok
    return out


def norse_units(flat: FlatGraph, dt: float) -> List[str]:
    """Norse 1.1's units to NIR's, in place: tau / dt, IF's r / dt, CubaLIF's w_in * tau_syn / dt.

    Only while the file is in those units: if it has taus and none is below ``dt`` they are
    seconds already and nothing changes. Returns what was changed (one phrase per kind)."""
    low = min_tau(flat)
    if low is not None and low >= dt:
        return []
    done = set()
    for name, node in list(flat.nodes.items()):
        if not isinstance(node, _NEURONS):
            continue
        node = copy.copy(node)
        for f in TAU_FIELDS:
            if getattr(node, f, None) is not None:
                setattr(node, f, norse_tau(getattr(node, f), dt))
                done.add("tau / dt")
        if isinstance(node, nir.IF):
            node.r = np.asarray(node.r, np.float64) / dt
            done.add("IF's r / dt")
        if isinstance(node, (nir.CubaLIF, nir.CubaLI)):
            node.w_in = np.asarray(node.w_in, np.float64) * np.asarray(node.tau_syn, np.float64) / dt
            done.add("CubaLIF's w_in * tau_syn / dt")
        flat.nodes[name] = node
    return sorted(done)
