"""Hand-built spiking controllers: fixed-weight NIR graphs that follow the ``Policy`` protocol.

A ``Policy`` has ``reset(obs)``, ``act(obs) -> action``, ``last_counts`` (``synops``, ``spikes``,
``neuron_updates`` of the last decision) and ``spec`` (``env_id``, ``dt``, ``steps_per_decision``,
``encoding``, ``decoder``). Trained policies follow the same protocol; these need no training, so
the closed loop can be tested against known answers:

- ``track_policy``: two integrate-and-fire neurons fed by the sign of ``target - position``
  implement the optimal move of ``spikeflow.control.toy``.
- ``cartpole_policy``: the linear rule ``push right iff w . obs > 0`` (``CARTPOLE_W`` balances
  CartPole-v1 for 500 steps) as two neurons driven by ``+w . obs`` and ``-w . obs``. With
  ``encoding="dense"`` every observation is sent each step into memoryless LIF neurons; with
  ``encoding="events"`` only changes of at least ``delta`` are sent (send-on-delta) into
  integrate-and-fire neurons without reset, whose membrane is then ``w . (obs as last sent)``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import nir
import numpy as np

from spikeflow.errors import CheckpointError, ConfigError

HANDBUILT_FILE = "handbuilt.json"
CARTPOLE_W = np.array([0.1, 0.5, 10.0, 2.0])  # cart x, cart v, pole angle, pole angular velocity
POLICIES = ("track-sign", "cartpole-linear")


@dataclass(frozen=True)
class PolicySpec:
    """What the loop reads of a policy: its environment, network step ``dt`` (s), steps per decision,
    input encoding and output decoding."""
    env_id: str
    dt: float = 1e-3
    steps_per_decision: int = 1
    encoding: str = "events"
    decoder: str = "count"


def _graph(weight: np.ndarray, neuron: str, dt: float) -> nir.NIRGraph:
    n_out, n_in = weight.shape  # NIR's IF is dv/dt = R I: R = 1/dt adds one input per step
    ones, zeros, below = np.ones(n_out), np.zeros(n_out), -np.ones(n_out)
    if neuron == "if-noreset":  # membrane = sum of its inputs; fires every step while above 0
        cell = nir.IF(r=ones / dt, v_threshold=zeros, v_reset=below, metadata={"reset": "none"})
    elif neuron == "if":  # fires on every input above 1/2, then back to 0
        cell = nir.IF(r=ones / dt, v_threshold=np.full(n_out, 0.5), v_reset=zeros)
    else:  # memoryless: tau << dt, so the membrane is this step's input alone
        cell = nir.LIF(tau=np.full(n_out, dt * 1e-6), r=ones, v_leak=zeros, v_threshold=zeros, v_reset=below)
    nodes = {"input": nir.Input(input_type=np.array([n_in])), "fc": nir.Linear(weight=weight.astype(np.float64)),
             "cell": cell, "output": nir.Output(output_type=np.array([n_out]))}
    return nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "cell"), ("cell", "output")],
                        metadata={"dt": dt})


class SpikingPolicy:
    """A NIR graph run one decision at a time (batch 1) on the ``event`` or ``dense`` engine.

    ``encode(obs, idx, val) -> n`` writes the input events of one decision (channel, value) into the
    preallocated ``idx``/``val`` and returns how many; the same events feed every step of the
    decision. ``decode(counts) -> action`` maps the output spike counts of the decision to an action.
    """

    def __init__(self, graph, spec: PolicySpec, encode, decode, engine: str = "event", on_reset=None):
        from spikeflow.runtime.dense import DenseEngine
        from spikeflow.runtime.event import EventEngine

        if engine not in ("event", "dense"):
            raise ConfigError(f"policy: engine must be 'event' or 'dense', got {engine!r}")
        self.spec, self.engine_name = spec, engine
        self.engine = (EventEngine if engine == "event" else DenseEngine)(graph, dt=spec.dt)
        self._encode, self._decode, self._on_reset = encode, decode, on_reset
        self.n_in = int(np.prod(self.engine.graph.input_shape))
        n = spec.steps_per_decision
        self._idx, self._val = np.zeros(self.n_in, np.int64), np.zeros(self.n_in)
        self._ptr = np.zeros(n + 1, np.int64)
        self._step_idx = np.zeros(n * self.n_in, np.int64)
        self._step_val = np.zeros(n * self.n_in)
        self._x = np.zeros((n, 1, self.n_in))
        if engine == "event":  # the event kernel with this policy's own buffers: no per-step allocation
            pl = self.engine.plan
            p = pl.output_pop["output"]
            self._out_off, self._out_size = int(pl.pop_i[p, 0]), int(pl.pop_i[p, 1])
            self._pop_i, n_rec = self.engine._record_table(False)
            self._trace = np.zeros((n, max(pl.n_trace, 1)))
            self._out_col = int(pl.pop_i[p, 4])
            cap = max(16, n * n_rec)
            self._rec_t, self._rec_g = np.zeros(cap, np.int64), np.zeros(cap, np.int64)
            self._rec_n = np.zeros(1, np.int64)
            self._counts = np.zeros(self._out_size)
        self.last_counts = {"synops": 0, "spikes": 0, "neuron_updates": 0}
        self._totals = np.zeros(3, np.int64)
        if engine == "event":  # spikes and updates of neurons only (the input population counts its events)
            self._neurons = self.engine.plan.pop_i[:, 2] != 6

    def reset(self, obs) -> None:
        self.engine.reset(1)
        self._totals[:] = 0
        if self._on_reset is not None:
            self._on_reset(obs)

    def act(self, obs) -> int:
        m = self._encode(obs, self._idx, self._val)
        n = self.spec.steps_per_decision
        if self.engine_name == "event":
            for s in range(n):
                self._step_idx[s * m:(s + 1) * m] = self._idx[:m]
                self._step_val[s * m:(s + 1) * m] = self._val[:m]
                self._ptr[s + 1] = (s + 1) * m
            self._rec_n[0] = 0
            self.engine._run_steps(n, self._ptr, self._step_idx[:n * m], self._step_val[:n * m], self._pop_i,
                                   self._trace, self._rec_t, self._rec_g, self._rec_n)
            self.engine.t += n
            counts = self._counts
            if self._out_col >= 0:  # a traced (non-spiking) output: its values summed over the steps
                counts[:] = self._trace[:, self._out_col:self._out_col + self._out_size].sum(0)
            else:  # spiking: the output neurons' spikes
                counts[:] = 0.0
                for g in self._rec_g[:self._rec_n[0]]:
                    counts[g - self._out_off] += 1.0
            c = self.engine.counters
            totals = c[self._neurons].sum(0)
            totals[0] = c[:, 0].sum()
            d = totals - self._totals
            self._totals[:] = totals
            lc = self.last_counts
            lc["synops"], lc["neuron_updates"], lc["spikes"] = int(d[0]), int(d[1]), int(d[2])
            return self._decode(counts)
        else:
            self._x[:] = 0.0
            self._x[:, 0, self._idx[:m]] = self._val[:m]
            res = self.engine.advance(self._x)
            out = res.outputs["output"].reshape(n, -1)
            c = res.counters
            totals = np.array([sum(c.get(k, {}).values()) for k in ("synaptic_ops", "neuron_updates", "spikes")])
        d = totals - self._totals
        self._totals[:] = totals
        lc = self.last_counts
        lc["synops"], lc["neuron_updates"], lc["spikes"] = int(d[0]), int(d[1]), int(d[2])
        return self._decode(out.sum(0))


def track_policy(engine: str = "event") -> SpikingPolicy:
    """The optimal move of ``Track1D-v0``: channel 0 fires when the target is right, 1 when left."""
    from spikeflow.control.toy import ENV_ID

    def encode(obs, idx, val):
        d = obs[0]
        if d == 0:
            return 0
        idx[0], val[0] = (0 if d > 0 else 1), 1.0
        return 1

    def decode(counts):
        return 2 if counts[0] > counts[1] else (0 if counts[1] > counts[0] else 1)

    spec = PolicySpec(ENV_ID, encoding="events")
    return SpikingPolicy(_graph(np.eye(2), "if", spec.dt), spec, encode, decode, engine)


def cartpole_policy(encoding: str = "events", engine: str = "event", delta: float = 0.01,
                    env_id: str = "CartPole-v1") -> SpikingPolicy:
    """``push right iff CARTPOLE_W . obs > 0`` as two spiking neurons (see the module docstring)."""
    if encoding not in ("events", "dense"):
        raise ConfigError(f"policy: encoding must be 'events' or 'dense', got {encoding!r}")
    w = np.vstack([CARTPOLE_W, -CARTPOLE_W])
    sent = np.zeros(4)
    n4 = np.arange(4)

    def encode_dense(obs, idx, val):
        idx[:4], val[:4] = n4, obs
        return 4

    def encode_delta(obs, idx, val):
        m = 0
        for i in range(4):
            change = float(obs[i]) - sent[i]
            if abs(change) >= delta:
                idx[m], val[m] = i, change
                sent[i] += change
                m += 1
        return m

    def reset_delta(obs):
        sent[:] = 0.0

    def decode(counts):
        return 1 if counts[0] > 0 else 0

    spec = PolicySpec(env_id, encoding=encoding)
    if encoding == "dense":
        return SpikingPolicy(_graph(w, "lif", spec.dt), spec, encode_dense, decode, engine)
    return SpikingPolicy(_graph(w, "if-noreset", spec.dt), spec, encode_delta, decode, engine, on_reset=reset_delta)


def write_handbuilt(run_dir, name: str, encoding: str = "events") -> Path:
    """A run folder that ``load_handbuilt`` (and ``spikeflow control run``) reads."""
    from spikeflow.atomic import atomic_write_text

    if name not in POLICIES:
        raise ConfigError(f"hand-built policy must be one of {POLICIES}, got {name!r}")
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    env_id = "Track1D-v0" if name == "track-sign" else "CartPole-v1"
    encodings = ["events"] if name == "track-sign" else ["events", "dense"]
    atomic_write_text(run / HANDBUILT_FILE, json.dumps({"policy": name, "env_id": env_id, "encodings": encodings,
                                                        "spec": asdict(PolicySpec(env_id))}, indent=2) + "\n")
    return run


def is_handbuilt(run_dir) -> bool:
    """Whether ``run_dir`` holds a hand-built policy (``handbuilt.json``)."""
    return (Path(run_dir) / HANDBUILT_FILE).is_file()


def read_handbuilt(run_dir) -> dict:
    """The ``handbuilt.json`` of a run folder, checked (a ``CheckpointError`` names the file otherwise)."""
    path = Path(run_dir) / HANDBUILT_FILE
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable hand-built policy file ({err})") from None
    if not isinstance(meta, dict) or meta.get("policy") not in POLICIES:
        raise CheckpointError(f"{path}: field 'policy' must be one of {POLICIES}")
    return meta


def load_handbuilt(run_dir, engine: str = "event", encoding: str | None = None) -> SpikingPolicy:
    """The hand-built policy of a run folder on ``engine``, with ``encoding`` where it has both."""
    meta = read_handbuilt(run_dir)
    if meta["policy"] == "track-sign":
        if encoding not in (None, "events"):
            raise ConfigError(f"--encoding: run {run_dir} has only 'events', got {encoding!r}")
        return track_policy(engine)
    return cartpole_policy(encoding or "events", engine)
