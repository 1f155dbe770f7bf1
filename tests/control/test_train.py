"""A short fixed-seed PPO run learns CartPole far above chance; training resumes from its checkpoint."""

import json

import numpy as np
import pytest

from spikeflow.control.network import SpikingActor
from spikeflow.control.policy import load_policy
from spikeflow.control.train import evaluate_policy, train_policy
from spikeflow.errors import ConfigError


def test_short_ppo_run_balances_far_longer_than_chance(tmp_path):
    run = train_policy("CartPole-v1", tmp_path / "run", seed=1, encoding="events", budget=4096, progress=False,
                       hidden=32, eval_every=100, eval_episodes=5)
    for name in ("policy.json", "policy.nir", "model.pt", "history.json", "latest.json"):
        assert (run / name).is_file(), name
    trained = evaluate_policy(load_policy(run, "event"), "CartPole-v1", episodes=10, seed=0)
    # chance: uniformly random actions on the same episodes
    from spikeflow.control.envs import make_env

    env, rng, rand = make_env("CartPole-v1"), np.random.default_rng(0), []
    for i in range(10):
        env.reset(seed=i)
        done, total = False, 0.0
        while not done:
            _, r, term, trunc, _ = env.step(int(rng.integers(2)))
            total, done = total + r, term or trunc
        rand.append(total)
    # this run reaches a mean of about 130 (and seeds 0-2 60-130); random play about 22
    assert trained.mean() >= max(45.0, 2 * np.mean(rand)), (trained.mean(), np.mean(rand))


def test_resume_continues_from_the_checkpoint(tmp_path):
    kw = dict(seed=0, encoding="dense", progress=False, hidden=16, n_envs=2, n_steps=64, epochs=1, minibatch=64,
              eval_every=1, eval_episodes=1)
    run = train_policy("CartPole-v1", tmp_path / "r", budget=256, **kw)  # 2 updates of 128 steps
    first = json.loads((run / "history.json").read_text())
    assert [h["update"] for h in first] == [1, 2] and first[-1]["steps"] == 256
    run = train_policy("CartPole-v1", tmp_path / "r", budget=512, resume=True, **kw)
    hist = json.loads((run / "history.json").read_text())
    assert [h["update"] for h in hist] == [1, 2, 3, 4] and hist[-1]["steps"] == 512
    assert hist[:2] == first  # the first part of the history is the checkpoint's


def test_bad_arguments(tmp_path):
    with pytest.raises(ConfigError, match="unknown environment"):
        train_policy("Walker-v9", tmp_path)
    with pytest.raises(ConfigError, match="encoding"):
        train_policy("CartPole-v1", tmp_path, encoding="rate")
    with pytest.raises(ConfigError, match="method"):
        train_policy("CartPole-v1", tmp_path, method="dqn")
    with pytest.raises(ConfigError, match="budget"):
        train_policy("CartPole-v1", tmp_path, budget=0)
    with pytest.raises(ConfigError, match="resume"):
        train_policy("CartPole-v1", tmp_path / "empty", resume=True, budget=100)
    with pytest.raises(ConfigError, match="encoding"):
        SpikingActor(4, 2, encoding="rate", dt=0.02, scale=np.ones(4))
