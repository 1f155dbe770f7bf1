"""Train a spiking policy for a control task and write its run directory; evaluate a policy.

``train_policy`` writes into ``out_dir``: ``model.pt`` (+ ``model.json``), ``policy.nir`` (the
network, ``dt`` in its metadata), ``policy.json`` (the spec ``load_policy`` reads), ``history.json``
(per update: steps, wall time, training and evaluation returns) and checkpoints (``latest.json``,
``ckpt-*.pt``; ``resume=True`` continues from them with fresh episodes).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from spikeflow.atomic import atomic_write_text
from spikeflow.errors import ConfigError

METHODS = ("ppo", "td3", "convert")

# Per task: PPO settings that reach the task's target here (budget = environment steps).
PPO_SETTINGS = {
    "CartPole-v1": dict(n_envs=8, n_steps=128, lr=1e-3, budget=200_000, hidden=64),
    "Acrobot-v1": dict(n_envs=8, n_steps=128, lr=1e-3, budget=400_000, hidden=128, lam=0.94, eval_episodes=50),
    "Pendulum-v1": dict(n_envs=8, n_steps=256, lr=1e-3, budget=600_000, hidden=64, gamma=0.9, reward_scale=0.1,
                        eval_every=4),
    "MountainCar-v0": dict(n_envs=8, n_steps=128, lr=1e-3, budget=300_000, hidden=64),
}


def _spec(env_id: str, actor, encoder, continuous: bool, gain, bounds) -> dict:
    if continuous:
        decoder = {"kind": "clip", "readout": "last", "gain": gain.tolist(), "low": bounds[0].tolist(),
                   "high": bounds[1].tolist()}
    else:
        decoder = {"kind": "argmax", "readout": "last"}
    n_in = encoder.n_channels
    return {"env_id": env_id, "dt": actor.dt, "steps_per_decision": 1, "hold_input": True,
            "reset_each_decision": False, "encoding": encoder.config(), "decoder": decoder, "n_in": n_in,
            "n_out": actor.n_out, "model": {"kind": "spiking_actor", "n_obs": actor.n_obs,
                                            "scale": np.asarray(actor.scale).tolist(), **actor.config()},
            "nir": "policy.nir", "weights": "model.pt"}


def write_run(out_dir: Path, spec: dict, model: torch.nn.Module, seq, meta: dict) -> None:
    """The run directory's model, NIR graph and spec."""
    from spikeflow.control.network import export_graph
    from spikeflow.control.policy import MODEL_FILE, NIR_FILE, SPEC
    from spikeflow.ir import write
    from spikeflow.train.checkpoint import write_model

    write_model(out_dir / MODEL_FILE, model, meta)
    write(export_graph(seq, spec["dt"], spec["n_in"]), out_dir / NIR_FILE)
    atomic_write_text(out_dir / SPEC, json.dumps(spec, indent=1))


def train_policy(env_id: str, out_dir, *, seed: int = 0, encoding: str = "events", method: Optional[str] = None,
                 budget: Optional[int] = None, progress: bool = True, resume: bool = False, **overrides) -> Path:
    """Train a spiking policy for ``env_id``; returns the run directory (module doc).

    ``method``: ``"ppo"`` (default for discrete actions; surrogate gradients, the SNN is the actor),
    ``"td3"`` (default for continuous actions; the SNN is the actor, ``spikeflow.control.td3``) or ``"convert"``
    (an ANN actor trained by PPO, converted to IF neurons: ``spikeflow.control.convert``; dense input).
    ``budget``: environment steps (default per task in ``PPO_SETTINGS``). ``overrides``: PPO settings.
    """
    from spikeflow.control.encoding import encoder_for
    from spikeflow.control.envs import action_bounds, env_info, n_actions, observation_scale
    from spikeflow.control.network import SpikingActor
    from spikeflow.control.ppo import PPOConfig, train_ppo
    from spikeflow.train.checkpoint import has_checkpoint, read_checkpoint, write_checkpoint

    info = env_info(env_id)
    method = method or ("td3" if info.continuous else "ppo")
    if method not in METHODS:
        raise ConfigError(f"train_policy: 'method' must be one of {METHODS}, got {method!r}")
    if budget is not None and not (isinstance(budget, (int, np.integer)) and budget >= 1):
        raise ConfigError(f"train_policy: 'budget' must be an int >= 1 (environment steps), got {budget!r}")
    if method == "convert":
        from spikeflow.control.convert import train_converted

        if encoding != "dense":
            raise ConfigError("train_policy: method='convert' takes encoding='dense' (the converted IF network "
                              "reads the observation as input current)")
        return train_converted(env_id, out_dir, seed=seed, budget=budget, progress=progress, **overrides)
    if method == "td3":
        return _train_td3(env_id, Path(out_dir), seed=seed, encoding=encoding, budget=budget, progress=progress,
                          **overrides)
    settings = {**PPO_SETTINGS[env_id], **overrides}
    if budget is not None:
        settings["budget"] = int(budget)
    unknown = set(settings) - set(PPOConfig.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"train_policy: unknown PPO setting(s) {sorted(unknown)}")
    cfg = PPOConfig(**settings)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    scale = observation_scale(env_id)
    encoders = [encoder_for(env_id, encoding) for _ in range(cfg.n_envs)]
    th = getattr(encoders[0], "thresholds", None)
    actor = SpikingActor(len(scale), n_actions(env_id), encoding=encoding, dt=info.dt, scale=scale, thresholds=th,
                         hidden=cfg.hidden, seed=seed)
    bounds = action_bounds(env_id)
    gain = bounds[1] if info.continuous else None
    state = None
    if resume:
        if not has_checkpoint(out_dir):
            raise ConfigError(f"train_policy: resume=True but {out_dir} holds no checkpoint")
        state, _ = read_checkpoint(out_dir)

    def on_eval(update, payload):
        write_checkpoint(out_dir, update, payload, {"env_id": env_id, "encoding": encoding, "seed": seed})

    t0 = time.perf_counter()
    best, history = train_ppo(env_id, actor, encoders, cfg, seed=seed, continuous=info.continuous, gain=gain,
                              bounds=bounds, target=_stop_at(env_id), state=state, on_eval=on_eval,
                              progress=progress)
    wall = time.perf_counter() - t0
    if best is not None:
        actor.load_state_dict(best)
    spec = _spec(env_id, actor, encoders[0], info.continuous, gain, bounds)
    spec["training"] = {"method": "ppo", "seed": seed, "ppo": cfg.to_dict(), "wall_s": round(wall, 1),
                        "steps": history[-1]["steps"] if history else 0, "torch_threads": 1}
    write_run(out_dir, spec, actor, actor.to_sequential(), {"env_id": env_id, "encoding": encoding})
    atomic_write_text(out_dir / "history.json", json.dumps(history, indent=1))
    return out_dir


def _train_td3(env_id: str, out_dir: Path, *, seed: int, encoding: str, budget, progress: bool, **overrides) -> Path:
    from spikeflow.control.encoding import encoder_for
    from spikeflow.control.envs import action_bounds, env_info, n_actions, observation_scale
    from spikeflow.control.network import SpikingActor
    from spikeflow.control.td3 import TD3Config, train_td3

    info = env_info(env_id)
    if not info.continuous:
        raise ConfigError(f"train_policy: method='td3' needs continuous actions; {env_id} has discrete ones")
    unknown = set(overrides) - set(TD3Config.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"train_policy: unknown TD3 setting(s) {sorted(unknown)}")
    cfg = TD3Config(**overrides)
    if budget is not None:
        cfg.budget = int(budget)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    scale = observation_scale(env_id)
    enc = encoder_for(env_id, encoding)
    actor = SpikingActor(len(scale), n_actions(env_id), encoding=encoding, dt=info.dt, scale=scale,
                         thresholds=getattr(enc, "thresholds", None), hidden=cfg.hidden, seed=seed)
    bounds = action_bounds(env_id)
    gain = bounds[1]
    t0 = time.perf_counter()
    best, history = train_td3(env_id, actor, enc, cfg, seed=seed, gain=gain, target=_stop_at(env_id),
                              progress=progress)
    wall = time.perf_counter() - t0
    if best is not None:
        actor.load_state_dict(best)
    spec = _spec(env_id, actor, enc, True, gain, bounds)
    spec["decoder"]["kind"] = "tanh"
    spec["training"] = {"method": "td3", "seed": seed, "td3": cfg.to_dict(), "wall_s": round(wall, 1),
                        "steps": history[-1]["steps"] if history else 0, "torch_threads": 1}
    write_run(out_dir, spec, actor, actor.to_sequential(), {"env_id": env_id, "encoding": encoding})
    atomic_write_text(out_dir / "history.json", json.dumps(history, indent=1))
    return out_dir


def _stop_at(env_id: str) -> float:
    """Evaluation mean (torch actor, ``eval_episodes`` episodes) at which training stops early."""
    from spikeflow.control.envs import env_info

    return {"CartPole-v1": 500.0, "Acrobot-v1": -75.0, "Pendulum-v1": -150.0}.get(env_id, env_info(env_id).target)


def evaluate_policy(policy, env_id: str, episodes: int = 100, seed: int = 20_000) -> np.ndarray:
    """Returns of ``episodes`` episodes (episode ``i`` reset with ``seed + i``) of ``policy.act``."""
    from spikeflow.control.envs import make_env

    if not (isinstance(episodes, (int, np.integer)) and episodes >= 1):
        raise ConfigError(f"evaluate_policy: 'episodes' must be an int >= 1, got {episodes!r}")
    env = make_env(env_id)
    out = np.zeros(episodes)
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=int(seed) + i)
            policy.reset(obs)
            done, total = False, 0.0
            while not done:
                obs, r, term, trunc, _ = env.step(policy.act(obs))
                total += float(r)
                done = term or trunc
            out[i] = total
    finally:
        env.close()
    return out
