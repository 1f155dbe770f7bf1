"""TD3 (Fujimoto, van Hoof & Meger 2018, "Addressing Function Approximation Error in Actor-Critic
Methods", ICML) with the spiking actor, for continuous actions.

As in ``ppo``, the actor's state is part of each stored transition: the replay buffer keeps the
actor's input and state of both steps, and updates recompute the actor's output from them (one
step of surrogate gradient, stored states detached). The action is ``gain * tanh(readout)``.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn


@dataclass
class TD3Config:
    budget: int = 20_000  # environment steps
    start: int = 1_000  # random-action steps before learning
    batch: int = 128
    lr_actor: float = 1e-3
    lr_critic: float = 1e-3
    gamma: float = 0.99
    tau: float = 0.005
    noise: float = 0.1  # exploration noise, fraction of the action gain
    target_noise: float = 0.2
    noise_clip: float = 0.5
    policy_delay: int = 2
    hidden: int = 64
    critic_hidden: int = 64
    eval_every: int = 1_000  # environment steps
    eval_episodes: int = 10

    def to_dict(self) -> dict:
        return asdict(self)


class QNet(nn.Module):
    def __init__(self, n_obs: int, n_act: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_obs + n_act, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1)).double()

    def forward(self, obs, act):
        return self.net(torch.cat([obs, act], -1))[..., 0]


def train_td3(env_id: str, actor, encoder, cfg: TD3Config, *, seed: int, gain: np.ndarray, target: float,
              progress: bool = True):
    """Train ``actor`` in place; returns ``(best_state_dict, history)``."""
    from spikeflow.control.envs import make_env
    from spikeflow.control.ppo import evaluate_actor

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    scale = np.asarray(actor.scale)
    n_obs, n_act = actor.n_obs, actor.n_out
    events = actor.encoding == "events"
    g_in = np.asarray(actor.thresholds) / scale if events else None
    q1, q2 = QNet(n_obs, n_act, cfg.critic_hidden), QNet(n_obs, n_act, cfg.critic_hidden)
    q1_t, q2_t, actor_t = copy.deepcopy(q1), copy.deepcopy(q2), copy.deepcopy(actor)
    opt_a = torch.optim.Adam(actor.parameters(), lr=cfg.lr_actor)
    opt_q = torch.optim.Adam(list(q1.parameters()) + list(q2.parameters()), lr=cfg.lr_critic)
    N = cfg.budget
    st_shapes = [s.shape[1:] for s in actor.init_state(1)]
    buf = {"inp": np.zeros((N, n_obs)), "lev": np.zeros((N, n_obs)), "obs": np.zeros((N, n_obs)),
           "act": np.zeros((N, n_act)), "rew": np.zeros(N), "done": np.zeros(N),
           "inp2": np.zeros((N, n_obs)), "lev2": np.zeros((N, n_obs)), "obs2": np.zeros((N, n_obs))}
    st = [np.zeros((N, *s)) for s in st_shapes]
    st2 = [np.zeros((N, *s)) for s in st_shapes]

    env = make_env(env_id)
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    encoder.reset()

    def encode(o):
        x = encoder(o)
        if not events:
            return np.asarray(o, np.float64) / scale, np.zeros(n_obs)
        d = (x[0::2] - x[1::2]).astype(np.float64)
        return d * g_in, (encoder.level - d) * g_in

    inp, lev = encode(obs)
    state = actor.init_state(1)
    history, best, best_score = [], None, -math.inf
    ep_ret, finished = 0.0, []
    t0 = time.perf_counter()
    for t in range(N):
        with torch.no_grad():
            y, new_state, _ = actor.step(torch.from_numpy(inp)[None], torch.from_numpy(lev)[None] if events else None,
                                         state)
        a = np.tanh(y[0].numpy())
        if t < cfg.start:
            a = rng.uniform(-1, 1, n_act)
        else:
            a = np.clip(a + rng.normal(0, cfg.noise, n_act), -1, 1)
        obs2, r, term, trunc, _ = env.step(gain * a)
        ep_ret += r
        buf["inp"][t], buf["lev"][t], buf["obs"][t] = inp, lev, np.asarray(obs) / scale
        buf["act"][t], buf["rew"][t], buf["done"][t] = a, r, float(term)
        for k in range(len(st)):
            st[k][t] = state[k][0].numpy()
            st2[k][t] = new_state[k][0].numpy()
        inp2, lev2 = encode(obs2)
        buf["inp2"][t], buf["lev2"][t], buf["obs2"][t] = inp2, lev2, np.asarray(obs2) / scale
        obs, inp, lev, state = obs2, inp2, lev2, new_state
        if term or trunc:
            finished.append(ep_ret)
            ep_ret = 0.0
            obs, _ = env.reset()
            encoder.reset()
            inp, lev = encode(obs)
            state = actor.init_state(1)
        if t >= cfg.start:
            idx = rng.integers(0, t + 1, cfg.batch)
            b = {k: torch.from_numpy(v[idx]) for k, v in buf.items()}
            s1 = [torch.from_numpy(s[idx]) for s in st]
            s2 = [torch.from_numpy(s[idx]) for s in st2]
            with torch.no_grad():
                y2, _, _ = actor_t.step(b["inp2"], b["lev2"] if events else None, s2)
                noise = (torch.randn_like(y2) * cfg.target_noise).clamp(-cfg.noise_clip, cfg.noise_clip)
                a2 = (torch.tanh(y2) + noise).clamp(-1, 1)
                qt = torch.min(q1_t(b["obs2"], a2), q2_t(b["obs2"], a2))
                target_q = b["rew"] + cfg.gamma * (1 - b["done"]) * qt
            lq = ((q1(b["obs"], b["act"]) - target_q) ** 2).mean() + ((q2(b["obs"], b["act"]) - target_q) ** 2).mean()
            opt_q.zero_grad()
            lq.backward()
            opt_q.step()
            if t % cfg.policy_delay == 0:
                y1, _, _ = actor.step(b["inp"], b["lev"] if events else None, s1)
                la = -q1(b["obs"], torch.tanh(y1)).mean()
                opt_a.zero_grad()
                la.backward()
                opt_a.step()
                with torch.no_grad():
                    for net, tgt in ((q1, q1_t), (q2, q2_t), (actor, actor_t)):
                        for p, pt in zip(net.parameters(), tgt.parameters()):
                            pt.mul_(1 - cfg.tau).add_(p, alpha=cfg.tau)
        if (t + 1) % cfg.eval_every == 0 or t + 1 == N:
            score = evaluate_actor(env_id, actor, encoder, cfg.eval_episodes, seed=10_000 + seed, continuous=True,
                                   gain=gain, bounds=(-gain, gain), squash="tanh")
            entry = {"steps": t + 1, "wall_s": round(time.perf_counter() - t0, 2),
                     "train_return": float(np.mean(finished[-10:])) if finished else None, "eval_return": score}
            history.append(entry)
            if score >= best_score:
                best_score, best = score, {k: v.detach().clone() for k, v in actor.state_dict().items()}
            if progress:
                print(f"[{env_id}] steps {t + 1}/{N} train {entry['train_return']} eval {score} "
                      f"({entry['wall_s']} s)", flush=True)
            if score >= target:
                break
    env.close()
    return best, history
