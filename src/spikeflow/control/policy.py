"""Trained policies that act one decision at a time: ``load_policy(run_dir, engine)``.

A run directory holds ``policy.json`` (the spec), ``policy.nir`` (the network, with its ``dt``)
and ``model.pt`` (the torch weights). ``engine="event"`` runs the NIR graph on
``spikeflow.runtime.event.EventEngine`` at batch 1, keeping the network state between decisions;
``engine="dense"`` runs the torch ``spikeflow.nn.Sequential`` step by step. Both give the same
actions (up to floating-point summation order; float64).

Per decision: the encoder turns the observation into input (send-on-delta event counts or the
observation itself), the network runs ``steps_per_decision`` steps (input held over them, or given
at the first step only; reset before each decision when the spec says so), and the decoder reads
the readout of the last step (``readout="last"``) or its mean over the steps (``"mean"``):
``argmax`` (discrete actions), ``clip`` (``clip(gain * y, low, high)``) or ``tanh``
(``gain * tanh(y)``) for continuous actions.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from spikeflow.control.encoding import make_encoder
from spikeflow.errors import ConfigError

SPEC, NIR_FILE, MODEL_FILE = "policy.json", "policy.nir", "model.pt"
ENGINES = ("event", "dense")
_SPEC_FIELDS = ("env_id", "dt", "steps_per_decision", "encoding", "decoder", "n_in", "n_out", "model")


def read_spec(run_dir) -> dict:
    path = Path(run_dir) / SPEC
    if not path.is_file():
        raise ConfigError(f"policy: {path} does not exist (a run directory written by train_policy is expected)")
    try:
        spec = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"policy: {path} is not valid JSON: {getattr(err, 'msg', err)}") from None
    missing = [k for k in _SPEC_FIELDS if not isinstance(spec, dict) or k not in spec]
    if missing:
        raise ConfigError(f"policy: {path} lacks the field(s) {', '.join(missing)}")
    return spec


class Decoder:
    """Readout vector -> action (module doc)."""

    def __init__(self, config: dict):
        self.kind = config.get("kind")
        self.readout = config.get("readout", "last")
        if self.kind not in ("argmax", "clip", "tanh") or self.readout not in ("last", "mean"):
            raise ConfigError(f"policy spec: 'decoder' must have kind argmax|clip and readout last|mean, got {config}")
        if self.kind in ("clip", "tanh"):
            self.gain = np.asarray(config["gain"], np.float64)
            self.low, self.high = np.asarray(config["low"], np.float64), np.asarray(config["high"], np.float64)

    def __call__(self, y: np.ndarray):
        if self.kind == "argmax":
            return int(y.argmax())
        if self.kind == "tanh":
            return np.clip(self.gain * np.tanh(y), self.low, self.high)
        return np.clip(self.gain * y, self.low, self.high)


class Policy:
    """Common part: the spec, encoder, decoder and per-decision counts."""

    engine_name = ""

    def __init__(self, spec: dict):
        self.spec = spec
        self.encoder = make_encoder(spec["encoding"])
        self.decoder = Decoder(spec["decoder"])
        self.steps = int(spec["steps_per_decision"])
        if self.steps < 1:
            raise ConfigError(f"policy spec: 'steps_per_decision' must be >= 1, got {spec['steps_per_decision']}")
        if self.encoder.n_channels != int(spec["n_in"]):
            raise ConfigError(f"policy spec: the encoding gives {self.encoder.n_channels} input channels but "
                              f"'n_in' is {spec['n_in']}")
        self.hold = bool(spec.get("hold_input", True))
        self.reset_each = bool(spec.get("reset_each_decision", False))
        self.last_counts = {"synops": 0, "spikes": 0, "neuron_updates": 0}
        self.last_readout = None

    def reset(self, obs=None) -> None:
        """A new episode: network at rest, encoder at its origin (the first ``act`` reports ``obs``)."""
        self.encoder.reset()
        self._reset_network()

    def act(self, obs):
        """The action for observation ``obs`` (one decision)."""
        if self.reset_each:
            self._reset_network()
        y = self._run(obs)
        self.last_readout = y
        return self.decoder(y)


class EventPolicy(Policy):
    """The NIR graph on the event-driven engine, batch 1, state kept between decisions."""

    engine_name = "event"

    def __init__(self, spec: dict, graph):
        super().__init__(spec)
        from spikeflow.runtime.event import EventEngine

        self.engine = EventEngine(graph, dt=float(spec["dt"]))
        self.output = self.engine.graph.outputs[0]
        # neuron updates and spikes of every population but the input's (its counts are its events)
        self._not_input = (self.engine.plan.pop_i[:, 2] != 6).astype(np.int64)
        self._idx = np.zeros(self.encoder.n_channels, np.int64)
        self._val = np.zeros(self.encoder.n_channels, np.float64)
        n = self.steps
        self._ptr1 = np.zeros(2, np.int64)
        self._steps_idx = np.arange(n + 1, dtype=np.int64)
        self.engine.reset(1)
        self._step = self.engine.output_stepper(self.output, n)
        self._last = self.decoder.readout == "last"
        self._c0 = self._c1 = self.engine.counters  # counters before/after the last decision
        self._counts = {"synops": 0, "spikes": 0, "neuron_updates": 0}

    @property
    def last_counts(self) -> dict:
        """The last decision's counts, from counter snapshots taken by ``act`` (summed when asked)."""
        if self._counts is None:
            c0, c1 = self._c0, self._c1
            d = self._not_input @ (c1 - c0)
            self._counts = {"synops": int((c1[:, 0] - c0[:, 0]).sum()), "neuron_updates": int(d[1]),
                            "spikes": int(d[2])}
        return self._counts

    @last_counts.setter
    def last_counts(self, value: dict) -> None:
        self._counts = value

    def _reset_network(self) -> None:
        self.engine.reset(1)

    def _run(self, obs) -> np.ndarray:
        m = self.encoder.sparse(obs, self._idx, self._val)
        idx, val = self._idx[:m], self._val[:m]
        n = self.steps
        if n == 1:
            ptr = self._ptr1
            ptr[1] = m
        elif self.hold:
            ptr = self._steps_idx * idx.size
            idx, val = np.tile(idx, n), np.tile(val, n)
        else:
            ptr = np.full(n + 1, idx.size, np.int64)
            ptr[0] = 0
        c = self.engine.counters
        c0 = c.copy()
        y = self._step(ptr, idx, val)  # a view of the engine's buffer: copied below
        self._c0, self._c1, self._counts = c0, c.copy(), None
        return y[-1].copy() if self._last else y.mean(0)


class DensePolicy(Policy):
    """The torch ``Sequential`` stepped one network step at a time (float64, no gradients).

    ``last_counts`` are dense: every synapse (``synops``: inputs x outputs of each weight layer)
    and every neuron is computed each step; ``spikes`` are the spikes of the spiking layers."""

    engine_name = "dense"

    def __init__(self, spec: dict, seq):
        super().__init__(spec)
        from spikeflow.nn.neuron import NeuronLayer

        self.seq = seq.double().eval()
        self.layers = list(self.seq)
        self._spiking = [isinstance(m, NeuronLayer) and m.model.name not in ("li", "cubali") for m in self.layers]
        self._synops = sum(int(np.prod(p.shape)) for n, p in self.seq.named_parameters() if n.endswith("weight"))
        self._is_neuron = [isinstance(m, NeuronLayer) for m in self.layers]
        self._states = None

    def _reset_network(self) -> None:
        self._states = None

    def _run(self, obs) -> np.ndarray:
        xt0 = torch.from_numpy(np.asarray(self.encoder(obs), np.float64))[None]
        zero = torch.zeros_like(xt0)
        if self._states is None:
            self._states = [None] * len(self.layers)
        ys, spikes, neurons = [], 0, 0
        with torch.no_grad():
            for s in range(self.steps):
                xt = xt0 if (s == 0 or self.hold) else zero
                for i, layer in enumerate(self.layers):
                    xt, self._states[i] = layer.step(xt, self._states[i])
                    if self._spiking[i]:
                        spikes += int(xt.sum())
                    if self._is_neuron[i]:
                        neurons += xt.numel()
                ys.append(xt[0].numpy().copy())
        self.last_counts = {"synops": self._synops * self.steps, "neuron_updates": neurons, "spikes": spikes}
        y = np.stack(ys)
        return y[-1] if self.decoder.readout == "last" else y.mean(0)


def load_policy(run_dir, engine: str = "event") -> Policy:
    """The policy of a run directory on ``engine`` (``"event"`` or ``"dense"``)."""
    if engine not in ENGINES:
        raise ConfigError(f"load_policy: 'engine' must be one of {ENGINES}, got {engine!r}")
    run_dir = Path(run_dir)
    spec = read_spec(run_dir)
    if engine == "event":
        from spikeflow.ir import read_graph

        path = run_dir / NIR_FILE
        if not path.is_file():
            raise ConfigError(f"policy: {path} does not exist")
        return EventPolicy(spec, read_graph(path))
    from spikeflow.control.models import build_sequential

    return DensePolicy(spec, build_sequential(spec, run_dir / MODEL_FILE))
