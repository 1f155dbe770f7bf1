"""A deterministic 1-D target-tracking task whose optimal return is known exactly.

An agent on an integer line moves left, stays or moves right (actions 0, 1, 2). A target sits at
``offset`` cells from it; reaching it scores +1 and the next target appears at the next offset of a
seeded sequence (each in ``±[1, max_offset]``, drawn once per episode and independent of the actions).
An episode lasts ``length`` steps. Target ``i`` takes at least ``|offset_i|`` steps to reach (one cell
per step at most), so no policy scores more than the largest ``k`` with ``sum(|offset_1..k|) <= length``;
moving by ``sign(target - position)`` every step scores exactly that (``optimal_return``).

The observation is ``[target - position]`` (float32); ``render_mode="rgb_array"`` draws the line.
"""

from __future__ import annotations

import numpy as np

from spikeflow.errors import ConfigError

ENV_ID = "Track1D-v0"


def optimal_return(offsets, length: int) -> int:
    """Targets reached by the best possible policy in ``length`` steps (see the module docstring)."""
    need = np.cumsum(np.abs(np.asarray(offsets, dtype=np.int64)))
    return int(np.searchsorted(need, length, side="right"))


def optimal_action(obs) -> int:
    """The greedy move: ``1 + sign(target - position)``."""
    d = float(obs[0])
    return 2 if d > 0 else (0 if d < 0 else 1)


class TargetTracking:
    """The task (gymnasium's ``reset``/``step``/``render`` interface, no registration needed)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, length: int = 200, max_offset: int = 8, render_mode: str | None = None):
        if length < 1 or max_offset < 1:
            raise ConfigError(f"{ENV_ID}: length and max_offset must be >= 1, got {length}, {max_offset}")
        if render_mode not in (None, "rgb_array"):
            raise ConfigError(f"{ENV_ID}: render_mode must be None or 'rgb_array', got {render_mode!r}")
        import gymnasium as gym

        self.length, self.max_offset, self.render_mode = int(length), int(max_offset), render_mode
        self.action_space = gym.spaces.Discrete(3)
        self.observation_space = gym.spaces.Box(-2.0 * max_offset, 2.0 * max_offset, (1,), np.float32)
        self.spec = None
        self._rng = np.random.default_rng()
        self.offsets = np.zeros(0, np.int64)
        self._obs = np.zeros(1, np.float32)

    def reset(self, *, seed: int | None = None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        n = self.length + 1  # enough targets for any episode (each takes >= 1 step)
        mag = self._rng.integers(1, self.max_offset + 1, n)
        self.offsets = np.where(self._rng.random(n) < 0.5, -mag, mag).astype(np.int64)
        self.position, self.k, self.t, self.reached = 0, 0, 0, 0
        self.target = int(self.offsets[0])
        return self._observe(), {}

    def _observe(self):
        self._obs[0] = self.target - self.position
        return self._obs.copy()

    def step(self, action):
        a = int(action)
        if a not in (0, 1, 2):
            raise ConfigError(f"{ENV_ID}: action must be 0, 1 or 2, got {action!r}")
        self.position += a - 1
        self.t += 1
        reward = 0.0
        if self.position == self.target:
            reward = 1.0
            self.reached += 1
            self.k += 1
            self.target = self.position + int(self.offsets[self.k])
        truncated = self.t >= self.length
        return self._observe(), reward, False, truncated, {}

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        w = 4 * self.max_offset + 1
        img = np.full((24, w * 8, 3), 255, np.uint8)
        img[11:13] = 200
        for cell, colour in ((self.target - self.position, (220, 40, 40)), (0, (40, 90, 220))):
            x = (int(cell) + 2 * self.max_offset) * 8
            if 0 <= x < img.shape[1]:
                img[4:20, x:x + 8] = colour
        return img

    def close(self) -> None:
        pass
