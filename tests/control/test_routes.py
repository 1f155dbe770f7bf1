"""The other routes write ordinary run directories: ANN->SNN conversion and TD3 (continuous)."""

import numpy as np
import torch

from spikeflow.control.envs import make_env
from spikeflow.control.policy import load_policy, read_spec
from spikeflow.control.train import train_policy


def _observations(env_id, n, seed=0):
    env, rng = make_env(env_id), np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    out = []
    for _ in range(n):
        out.append(obs)
        obs, _, term, trunc, _ = env.step(env.action_space.sample() if env_id == "Pendulum-v1"
                                          else int(rng.integers(2)))
        if term or trunc:
            obs, _ = env.reset()
    return out


def test_converted_policy_runs_the_same_on_both_engines(tmp_path):
    run = train_policy("CartPole-v1", tmp_path, method="convert", encoding="dense", budget=512, progress=False,
                       hidden=16, n_envs=2, n_steps=128, epochs=1, eval_every=100, eval_episodes=1, T=8,
                       ann_episodes=1)
    spec = read_spec(run)
    assert spec["steps_per_decision"] == 8 and spec["reset_each_decision"] and spec["model"]["kind"] == "converted"
    assert abs(spec["dt"] - 0.02 / 8) < 1e-15
    ev, de = load_policy(run, "event"), load_policy(run, "dense")
    with torch.no_grad():  # the IF network: 8 steps per decision, reset before each
        for o in _observations("CartPole-v1", 40):
            assert ev.act(o) == de.act(o)
            np.testing.assert_allclose(ev.last_readout, de.last_readout, atol=1e-9)
            assert ev.last_counts["spikes"] == de.last_counts["spikes"]


def test_td3_writes_a_continuous_policy(tmp_path):
    run = train_policy("Pendulum-v1", tmp_path, encoding="events", budget=300, progress=False, start=100, batch=32,
                       critic_hidden=32, hidden=16, eval_every=300, eval_episodes=1)
    spec = read_spec(run)
    assert spec["decoder"]["kind"] == "tanh" and spec["training"]["method"] == "td3"
    ev, de = load_policy(run, "event"), load_policy(run, "dense")
    for o in _observations("Pendulum-v1", 30):
        a, b = ev.act(o), de.act(o)
        assert a.shape == (1,) and -2.0 <= a[0] <= 2.0
        np.testing.assert_allclose(a, b, atol=1e-6)
