"""The second route: an ANN policy trained by PPO, converted to an IF network.

The ANN actor (ReLU MLP on observation / scale) is trained with ``ppo.train_ppo``; its
observations from evaluation episodes calibrate ``spikeflow.train.convert.convert`` (threshold
balancing, reset by subtraction, membranes starting at 0 so the NIR file holds the whole model).
The converted policy runs ``T`` network steps per decision with the observation held as input
current, starts each decision from rest, and takes the action with the largest mean output over
the ``T`` steps (the converter's readout). Network ``dt`` = the task's step / ``T``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import spikeflow.nn as snn
from spikeflow.atomic import atomic_write_text
from spikeflow.errors import ConfigError


class ANNActor(nn.Module):
    """ReLU MLP with the spiking actor's ``step`` interface (no state), for ``train_ppo``."""

    encoding = "dense"

    def __init__(self, n_obs: int, n_out: int, scale, hidden: int = 64, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.n_obs, self.n_out, self.hidden = int(n_obs), int(n_out), int(hidden)
        self.register_buffer("scale", torch.as_tensor(np.asarray(scale, np.float64)))
        self.net = nn.Sequential(nn.Linear(n_obs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, n_out)).double()
        with torch.no_grad():
            self.net[-1].weight.mul_(0.01)

    def init_state(self, batch: int):
        return ()

    def step(self, inp, level, state):
        return self.net(inp), (), ()

    def raw_layers(self) -> list[nn.Module]:
        """The MLP with 1/scale folded into its first layer: it takes the raw observation."""
        import copy

        layers = [copy.deepcopy(m) for m in self.net]
        with torch.no_grad():
            layers[0].weight.div_(self.scale)
        return layers


def _sequential(n_obs: int, n_out: int, hidden: int, dt: float) -> snn.Sequential:
    return snn.Sequential(nn.Linear(n_obs, hidden), snn.IF(None, v_threshold=1.0, reset="subtract", dt=dt),
                          nn.Linear(hidden, hidden), snn.IF(None, v_threshold=1.0, reset="subtract", dt=dt),
                          nn.Linear(hidden, n_out)).double()


def converted_sequential(spec: dict, state: dict) -> snn.Sequential:
    """The converted network of a run directory, from its spec and weights."""
    m = spec["model"]
    seq = _sequential(int(m["n_obs"]), int(spec["n_out"]), int(m["hidden"]), float(spec["dt"]))
    seq.load_state_dict(state)
    return seq


def _calibration(env_id: str, actor: ANNActor, episodes: int, seed: int) -> torch.Tensor:
    """Observations of the ANN's own deterministic episodes."""
    from spikeflow.control.envs import make_env

    env = make_env(env_id)
    obs_all = []
    with torch.no_grad():
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            done = False
            while not done:
                obs_all.append(obs)
                y = actor.net(torch.from_numpy(np.asarray(obs, np.float64) / actor.scale.numpy())[None])
                obs, _, term, trunc, _ = env.step(int(y.argmax()))
                done = term or trunc
    return torch.from_numpy(np.asarray(obs_all, np.float64))


def train_converted(env_id: str, out_dir, *, seed: int = 0, budget=None, progress: bool = True, T: int = 32,
                    ann_episodes: int = 100, **overrides) -> Path:
    """PPO-train an ANN actor, convert it to IF neurons, write the run directory (as ``train_policy``).

    ``ann_episodes``: evaluation episodes of the ANN itself (its mean return goes in the spec)."""
    from spikeflow.control.encoding import DenseInput
    from spikeflow.control.envs import env_info, n_actions, observation_scale
    from spikeflow.control.ppo import PPOConfig, train_ppo
    from spikeflow.control.train import PPO_SETTINGS, _stop_at, write_run
    from spikeflow.train.checkpoint import write_checkpoint
    from spikeflow.train.convert import convert
    from spikeflow.train.zoo import Classifier

    info = env_info(env_id)
    if info.continuous:
        raise ConfigError(f"train_converted: {env_id} has continuous actions; the converted route decodes argmax")
    if not (isinstance(T, int) and T >= 1):
        raise ConfigError(f"train_converted: 'T' must be an int >= 1, got {T!r}")
    settings = {**PPO_SETTINGS[env_id], **overrides}
    if budget is not None:
        settings["budget"] = int(budget)
    cfg = PPOConfig(**settings)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    scale = observation_scale(env_id)
    n_obs, n_out = len(scale), n_actions(env_id)
    actor = ANNActor(n_obs, n_out, scale, cfg.hidden, seed)
    encoders = [DenseInput(n_obs) for _ in range(cfg.n_envs)]

    def on_eval(update, payload):
        write_checkpoint(out_dir, update, payload, {"env_id": env_id, "route": "convert", "seed": seed})

    t0 = time.perf_counter()
    best, history = train_ppo(env_id, actor, encoders, cfg, seed=seed, continuous=False, target=_stop_at(env_id),
                              on_eval=on_eval, progress=progress)
    wall = time.perf_counter() - t0
    if best is not None:
        actor.load_state_dict(best)
    from spikeflow.control.ppo import evaluate_actor

    ann_return = evaluate_actor(env_id, actor, encoders[0], ann_episodes, seed=20_000, continuous=False)
    calib = _calibration(env_id, actor, min(5, ann_episodes), seed=50_000 + seed)
    ann = Classifier(nn.Sequential(*actor.raw_layers()), {"arch": "mlp", "neuron": "relu", "encoding": "none"})
    snn_model = convert(ann, calib, T=T, v_init=0.0)
    seq = _sequential(n_obs, n_out, cfg.hidden, info.dt / T)
    seq.load_state_dict(snn_model.net.state_dict())
    spec = {"env_id": env_id, "dt": info.dt / T, "steps_per_decision": T, "hold_input": True,
            "reset_each_decision": True, "encoding": DenseInput(n_obs).config(),
            "decoder": {"kind": "argmax", "readout": "mean"}, "n_in": n_obs, "n_out": n_out,
            "model": {"kind": "converted", "n_obs": n_obs, "hidden": cfg.hidden, "T": T,
                      "scales": [float(s) for s in snn_model.spec["scales"]]},
            "nir": "policy.nir", "weights": "model.pt",
            "training": {"method": "ppo-ann+convert", "seed": seed, "ppo": cfg.to_dict(), "wall_s": round(wall, 1),
                         "steps": history[-1]["steps"] if history else 0, "torch_threads": 1,
                         "ann_mean_return": ann_return, "ann_episodes": ann_episodes}}
    write_run(out_dir, spec, seq, seq, {"env_id": env_id, "route": "convert"})
    atomic_write_text(out_dir / "history.json", json.dumps(history, indent=1))
    return out_dir
