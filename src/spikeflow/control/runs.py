"""Environment ids and policy run folders as the closed loop opens them.

An environment is the toy task (``Track1D-v0``) or one of the trained tasks of
``spikeflow.control.envs``. A run folder is a hand-built policy (``handbuilt.json``) or a trained one
(``spikeflow.control.policy.load_policy``).
"""

from __future__ import annotations

from pathlib import Path

from spikeflow.control.loop import encoding_name, spec_value
from spikeflow.control.toy import ENV_ID as TOY_ID
from spikeflow.errors import CheckpointError, ConfigError


def known_envs() -> list:
    """Environment ids ``control run`` accepts: the toy task and the trained tasks."""
    try:
        from spikeflow.control.envs import ENVS
    except ImportError:  # the trained tasks are not in this build: CartPole is still known
        ENVS = {"CartPole-v1": None}
    return [TOY_ID, *ENVS]


def make_control_env(env_id: str, seed=None, render_mode=None):
    """The environment ``env_id`` (a ``ConfigError`` naming ``--env`` for an unknown one)."""
    if env_id not in known_envs():
        raise ConfigError(f"--env: unknown environment {env_id!r}; known: {', '.join(known_envs())}")
    if render_mode == "rgb_array":
        import os

        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # off-screen frames: no display needed
    if env_id == TOY_ID:
        from spikeflow.control.toy import TargetTracking

        env = TargetTracking(render_mode=render_mode)
        if seed is not None:
            env.reset(seed=int(seed))
        return env
    try:
        from spikeflow.control.envs import make_env
    except ImportError:
        import gymnasium as gym

        return gym.make(env_id, render_mode=render_mode)
    return make_env(env_id, seed=seed, render_mode=render_mode)


def load_control_policy(run_dir, engine: str = "event", encoding=None):
    """The policy of a run folder, checked against ``encoding`` when one is asked for."""
    from spikeflow.control.handbuilt import is_handbuilt, load_handbuilt

    run = Path(run_dir)
    if not run.is_dir():
        raise ConfigError(f"RUN: {run} is not a run folder")
    if is_handbuilt(run):
        return load_handbuilt(run, engine=engine, encoding=encoding)
    try:
        from spikeflow.control.policy import load_policy
    except ImportError:
        raise CheckpointError(f"RUN: {run} holds no hand-built policy (handbuilt.json) and trained policies "
                              "are not in this build") from None
    policy = load_policy(run, engine=engine)
    have = encoding_name(policy.spec)
    if encoding is not None and have is not None and _norm(have) != _norm(encoding):
        raise ConfigError(f"--encoding: run {run} was trained with {have!r} input, not {encoding!r}")
    return policy


def _norm(name: str) -> str:
    return {"event": "events", "send-on-delta": "events", "delta": "events"}.get(str(name), str(name))


def check_env(policy, env_id) -> str:
    """The run's environment, or ``--env`` when it names the same one (a ``ConfigError`` otherwise)."""
    have = spec_value(policy.spec, "env_id")
    if env_id is not None and env_id not in known_envs():
        raise ConfigError(f"--env: unknown environment {env_id!r}; known: {', '.join(known_envs())}")
    if env_id is None:
        if have is None:
            raise ConfigError("--env: the run does not say which environment it controls; give --env")
        return have
    if have is not None and have != env_id:
        raise ConfigError(f"--env: the run controls {have}, not {env_id}")
    return env_id
