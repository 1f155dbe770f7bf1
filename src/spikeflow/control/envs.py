"""The gymnasium classic-control tasks spikeflow trains policies for, and their observation scales."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from spikeflow.errors import ConfigError


@dataclass(frozen=True)
class EnvInfo:
    """What a policy needs to know about a task: the simulator's step ``dt`` (s), whether the
    action is continuous, and a typical half-range for observations whose bounds are infinite."""
    dt: float
    continuous: bool
    typical: tuple  # per observation channel: half-range used where the space's bound is infinite
    target: float  # mean return over 100 episodes counted as solved here


# dt: the simulators' own step (CartPole ``tau``, Acrobot/Pendulum ``dt``; MountainCar has none,
# 0.02 s is chosen). ``typical``: CartPole's cart speed and pole rate stay within about +-2 m/s and
# +-3 rad/s in balancing episodes; the other tasks have finite bounds everywhere.
ENVS = {
    "CartPole-v1": EnvInfo(0.02, False, (4.8, 2.0, 0.41887903, 3.0), 475.0),
    "Acrobot-v1": EnvInfo(0.2, False, (1.0, 1.0, 1.0, 1.0, 4 * np.pi, 9 * np.pi), -100.0),
    "Pendulum-v1": EnvInfo(0.05, True, (1.0, 1.0, 8.0), -200.0),
    "MountainCar-v0": EnvInfo(0.02, False, (0.9, 0.07), -110.0),
}


def env_info(env_id: str) -> EnvInfo:
    if env_id not in ENVS:
        raise ConfigError(f"control: unknown environment {env_id!r}; known: {', '.join(ENVS)}")
    return ENVS[env_id]


def make_env(env_id: str, seed: Optional[int] = None, render_mode: Optional[str] = None):
    """A gymnasium environment of one of ``ENVS`` (reset with ``seed`` once when given)."""
    env_info(env_id)
    import gymnasium as gym

    env = gym.make(env_id, render_mode=render_mode)
    if seed is not None:
        env.reset(seed=int(seed))
        env.action_space.seed(int(seed))
    return env


def observation_scale(env_id: str) -> np.ndarray:
    """Per observation channel, a half-range: the space's bounds where finite, else ``typical``."""
    info = env_info(env_id)
    space = _space(env_id)
    lo, hi = np.asarray(space.low, np.float64), np.asarray(space.high, np.float64)
    finite = np.isfinite(lo) & np.isfinite(hi)
    return np.where(finite, (np.where(finite, hi, 0.0) - np.where(finite, lo, 0.0)) / 2, np.asarray(info.typical))


def _space(env_id: str):
    import gymnasium as gym

    env = gym.make(env_id)
    try:
        return env.observation_space
    finally:
        env.close()


def action_bounds(env_id: str):
    """``(low, high)`` arrays of a continuous action space; ``None`` for a discrete one."""
    import gymnasium as gym

    env = gym.make(env_id)
    try:
        space = env.action_space
        if isinstance(space, gym.spaces.Discrete):
            return None
        return np.asarray(space.low, np.float64), np.asarray(space.high, np.float64)
    finally:
        env.close()


def n_actions(env_id: str) -> int:
    """Number of discrete actions, or the action dimension of a continuous task."""
    import gymnasium as gym

    env = gym.make(env_id)
    try:
        space = env.action_space
        return int(space.n) if isinstance(space, gym.spaces.Discrete) else int(np.prod(space.shape))
    finally:
        env.close()
