"""Observation encoders: send-on-delta events (up/down channel per observation) or dense input.

``SendOnDelta`` keeps, per observation channel ``i``, a last reported level ``k_i * th_i`` on the
grid of whole thresholds (starting at 0). Each call counts how many whole thresholds the value
has moved past that level, ``n = trunc(obs/th - k)``, emits ``n`` events on channel ``2i`` (up)
or ``-n`` on ``2i + 1`` (down), and advances ``k`` by ``n``. A receiver that adds up the up minus
down events knows the level ``k * th``, which trails the value by less than one threshold.
"""

from __future__ import annotations

from typing import Optional

import numba
import numpy as np

from spikeflow.errors import ConfigError, InputError

DEFAULT_LEVELS = 64  # thresholds per observation half-range


def default_thresholds(env, levels: int = DEFAULT_LEVELS) -> np.ndarray:
    """Per observation channel: its half-range (``envs.observation_scale``) / ``levels``.

    ``env``: an environment id or a gymnasium env (its ``spec.id``)."""
    from spikeflow.control.envs import observation_scale

    env_id = env if isinstance(env, str) else env.spec.id
    if not (isinstance(levels, (int, np.integer)) and levels >= 1):
        raise ConfigError(f"default_thresholds: 'levels' must be an int >= 1, got {levels!r}")
    return observation_scale(env_id) / levels


def _check_obs(obs, n: int, who: str) -> np.ndarray:
    obs = np.asarray(obs, dtype=np.float64).reshape(-1)
    if obs.shape[0] != n:
        raise InputError(f"{who}: observation must have {n} values, got {obs.shape[0]}")
    if not np.all(np.isfinite(obs)):
        raise InputError(f"{who}: observation has NaN/inf values: {obs.tolist()}")
    return obs


@numba.njit(cache=True, nogil=True)
def _sparse_events(obs, th, level, idx, val):
    """``SendOnDelta.__call__``'s events as (channel, count) pairs; -1 for a non-finite value."""
    m = 0
    for i in range(obs.shape[0]):
        if not np.isfinite(obs[i]):
            return -1
    for i in range(obs.shape[0]):
        n = np.int64(np.trunc(obs[i] / th[i] - level[i]))
        level[i] += n
        if n > 0:
            idx[m] = 2 * i
            val[m] = n
            m += 1
        elif n < 0:
            idx[m] = 2 * i + 1
            val[m] = -n
            m += 1
    return m


class SendOnDelta:
    """Send-on-delta events: ``__call__(obs) -> int64 counts [2 * n_obs]`` (module doc)."""

    kind = "events"

    def __init__(self, thresholds):
        th = np.asarray(thresholds, dtype=np.float64).reshape(-1)
        if th.size == 0 or not np.all(np.isfinite(th)) or np.any(th <= 0):
            raise ConfigError(f"SendOnDelta: 'thresholds' must be finite and > 0, got {th.tolist()}")
        self.thresholds = th
        self.n_obs = th.size
        self.n_channels = 2 * th.size
        self.level = np.zeros(th.size, dtype=np.int64)  # k: reported level in thresholds
        self._out = np.zeros(self.n_channels, dtype=np.int64)

    def reset(self, obs=None) -> None:
        """Start again: the level goes to the origin (0), or with ``obs`` to the grid point of
        ``obs`` toward 0 (the receiver is then assumed to know it already)."""
        if obs is None:
            self.level[:] = 0
        else:
            self.level[:] = np.trunc(_check_obs(obs, self.n_obs, "SendOnDelta") / self.thresholds).astype(np.int64)

    def __call__(self, obs) -> np.ndarray:
        obs = _check_obs(obs, self.n_obs, "SendOnDelta")
        n = np.trunc(obs / self.thresholds - self.level).astype(np.int64)
        self.level += n
        out = np.zeros(self.n_channels, dtype=np.int64)
        out[0::2] = np.maximum(n, 0)
        out[1::2] = np.maximum(-n, 0)
        return out

    def sparse(self, obs, idx: np.ndarray, val: np.ndarray) -> int:
        """The same events as ``__call__``, written as channel indices ``idx[:m]`` (int64) and
        counts ``val[:m]`` (float64) into preallocated arrays of ``n_channels``; returns ``m``."""
        obs = np.asarray(obs, dtype=np.float64).reshape(-1)
        if obs.shape[0] != self.n_obs:
            raise InputError(f"SendOnDelta: observation must have {self.n_obs} values, got {obs.shape[0]}")
        m = _sparse_events(obs, self.thresholds, self.level, idx, val)
        if m < 0:
            raise InputError(f"SendOnDelta: observation has NaN/inf values: {obs.tolist()}")
        return m

    def config(self) -> dict:
        return {"kind": "events", "thresholds": self.thresholds.tolist()}


class DenseInput:
    """The observation itself, fed as an input current every step: ``__call__(obs) -> float64 [n_obs]``."""

    kind = "dense"

    def __init__(self, n_obs: int):
        if not (isinstance(n_obs, (int, np.integer)) and n_obs >= 1):
            raise ConfigError(f"DenseInput: 'n_obs' must be an int >= 1, got {n_obs!r}")
        self.n_obs = int(n_obs)
        self.n_channels = int(n_obs)

    def reset(self, obs=None) -> None:
        """Nothing to forget (the input has no memory)."""

    def sparse(self, obs, idx: np.ndarray, val: np.ndarray) -> int:
        """Every channel as ``(idx, val)`` (zeros included): returns ``n_channels``."""
        val[:] = _check_obs(obs, self.n_obs, "DenseInput")
        idx[:] = np.arange(self.n_obs)
        return self.n_obs

    def __call__(self, obs) -> np.ndarray:
        return _check_obs(obs, self.n_obs, "DenseInput").copy()

    def config(self) -> dict:
        return {"kind": "dense", "n_obs": self.n_obs}


def make_encoder(config: dict):
    """An encoder from its ``config()`` (a policy spec's ``encoding``)."""
    kind = config.get("kind") if isinstance(config, dict) else None
    if kind == "events":
        return SendOnDelta(config["thresholds"])
    if kind == "dense":
        return DenseInput(int(config["n_obs"]))
    raise ConfigError(f"policy spec: 'encoding.kind' must be 'events' or 'dense', got {kind!r}")


def encoder_for(env_id: str, encoding: str, levels: Optional[int] = None):
    """The encoder a training run uses for ``env_id``."""
    from spikeflow.control.envs import observation_scale

    if encoding == "events":
        return SendOnDelta(default_thresholds(env_id, levels or DEFAULT_LEVELS))
    if encoding == "dense":
        return DenseInput(len(observation_scale(env_id)))
    raise ConfigError(f"control: 'encoding' must be 'events' or 'dense', got {encoding!r}")
