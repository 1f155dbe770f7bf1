"""PPO (Schulman et al. 2017, "Proximal Policy Optimization Algorithms", arXiv:1707.06347) with the
spiking actor as the policy and a small ANN critic.

The actor keeps its state across environment steps. Rollouts store each step's state, and the
update recomputes each step's output from its stored state (one step of surrogate gradient, the
stored state detached): the forward pass is exactly the one that chose the action. Advantages by
GAE (Schulman et al. 2016, arXiv:1506.02438); episodes cut by the time limit bootstrap from the
critic's value of their last observation.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn


@dataclass
class PPOConfig:
    n_envs: int = 8
    n_steps: int = 128
    epochs: int = 10
    minibatch: int = 256
    lr: float = 1e-3
    gamma: float = 0.99
    lam: float = 0.95
    clip: float = 0.2
    ent: float = 0.0
    vf: float = 0.5
    max_grad: float = 0.5
    hidden: int = 64
    budget: int = 200_000  # environment steps
    eval_every: int = 2  # updates
    eval_episodes: int = 20
    reward_scale: float = 1.0
    log_std0: float = -0.5  # continuous actions: initial log standard deviation (in readout units)

    def to_dict(self) -> dict:
        return asdict(self)


class Critic(nn.Module):
    def __init__(self, n_obs: int, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_obs, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                                 nn.Linear(hidden, 1)).double()

    def forward(self, x):
        return self.net(x)[..., 0]


class Rollout:
    """Runs ``n_envs`` environments with their encoders and the actor's state."""

    def __init__(self, env_id: str, encoders, actor, scale: np.ndarray, seed: int, continuous: bool, gain=None,
                 bounds=None):
        from spikeflow.control.envs import make_env

        self.envs = [make_env(env_id) for _ in encoders]
        self.encoders = encoders
        self.actor = actor
        self.scale = scale
        self.continuous = continuous
        self.gain, self.bounds = gain, bounds
        self.events = actor.encoding == "events"
        self.th = np.asarray(actor.thresholds) if self.events else None
        n = len(encoders)
        self.obs = np.zeros((n, actor.n_obs))
        self.state = actor.init_state(n)
        self.ep_ret, self.ep_len = np.zeros(n), np.zeros(n, np.int64)
        self.finished = []  # (return, length) of finished episodes
        for i, env in enumerate(self.envs):
            self.obs[i] = env.reset(seed=seed * 1000 + i)[0]
            env.action_space.seed(seed * 1000 + i)
            encoders[i].reset()

    def encode(self):
        """``(inp, level)`` of this step for all envs, in the actor's units."""
        if not self.events:
            return torch.from_numpy(self.obs / self.scale), None
        n = len(self.encoders)
        d = np.zeros((n, self.actor.n_obs))
        lev = np.zeros((n, self.actor.n_obs))
        for i, enc in enumerate(self.encoders):
            c = enc(self.obs[i])
            delta = c[0::2] - c[1::2]
            d[i] = delta
            lev[i] = enc.level - delta
        g = self.th / self.scale
        return torch.from_numpy(d * g), torch.from_numpy(lev * g)

    def reset_env(self, i: int):
        self.obs[i] = self.envs[i].reset()[0]
        self.encoders[i].reset()
        init = self.actor.init_state(1)
        for s, s0 in zip(self.state, init):
            s[i] = s0[0]


def _dist(actor_out, log_std, continuous):
    if continuous:
        return torch.distributions.Normal(actor_out, log_std.exp().expand_as(actor_out))
    return torch.distributions.Categorical(logits=actor_out * LOGIT_GAIN)


LOGIT_GAIN = 10.0  # readout membrane -> logits: the readout is small (a leaky integrator of spikes)


def _logp(dist, a, continuous):
    lp = dist.log_prob(a)
    return lp.sum(-1) if continuous else lp


def train_ppo(env_id: str, actor, encoders, cfg: PPOConfig, *, seed: int, continuous: bool, gain=None, bounds=None,
              target: float, state: dict | None = None, on_eval=None, progress: bool = True):
    """Train ``actor`` in place; returns ``(best_state_dict, history)``. ``on_eval(update, payload)`` is
    called after each evaluation (checkpointing); ``state`` resumes from such a payload."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n_obs = actor.n_obs
    scale = np.asarray(actor.scale)
    critic = Critic(n_obs, cfg.hidden)
    log_std = nn.Parameter(torch.full((actor.n_out,), cfg.log_std0, dtype=torch.float64)) if continuous else None
    params = list(actor.parameters()) + list(critic.parameters()) + ([log_std] if continuous else [])
    opt = torch.optim.Adam(params, lr=cfg.lr, eps=1e-5)
    n_updates = max(1, cfg.budget // (cfg.n_envs * cfg.n_steps))
    update0, steps, history, best, best_score = 0, 0, [], None, -math.inf
    if state is not None:
        actor.load_state_dict(state["actor"])
        critic.load_state_dict(state["critic"])
        opt.load_state_dict(state["opt"])
        if continuous:
            log_std.data.copy_(state["log_std"])
        update0, steps, history = int(state["update"]), int(state["steps"]), list(state["history"])
        best, best_score = state["best"], float(state["best_score"])
        rng = np.random.default_rng(seed + 7919 * update0)
        torch.manual_seed(seed + 7919 * update0)
    roll = Rollout(env_id, encoders, actor, scale, seed + update0, continuous, gain, bounds)
    N, S = cfg.n_envs, cfg.n_steps
    t_start = time.perf_counter()
    for update in range(update0, n_updates):
        frac = 1.0 - update / n_updates
        for g in opt.param_groups:
            g["lr"] = cfg.lr * frac
        buf_inp = torch.zeros(S, N, n_obs, dtype=torch.float64)
        buf_lev = torch.zeros(S, N, n_obs, dtype=torch.float64) if actor.encoding == "events" else None
        buf_state = [torch.zeros(S, *s.shape, dtype=torch.float64) for s in roll.state]
        buf_obs = torch.zeros(S, N, n_obs, dtype=torch.float64)
        buf_a = torch.zeros(S, N, actor.n_out, dtype=torch.float64) if continuous else torch.zeros(S, N,
                                                                                                    dtype=torch.long)
        buf_logp, buf_v = torch.zeros(S, N, dtype=torch.float64), torch.zeros(S, N, dtype=torch.float64)
        buf_r, buf_done = np.zeros((S, N)), np.zeros((S, N))
        with torch.no_grad():
            for t in range(S):
                inp, lev = roll.encode()
                buf_inp[t] = inp
                if lev is not None:
                    buf_lev[t] = lev
                for k, s in enumerate(roll.state):
                    buf_state[k][t] = s
                obs_t = torch.from_numpy(roll.obs / scale)
                buf_obs[t] = obs_t
                out, roll.state, _ = actor.step(inp, lev, roll.state)
                dist = _dist(out, log_std, continuous)
                a = dist.sample()
                buf_a[t] = a
                buf_logp[t] = _logp(dist, a, continuous)
                buf_v[t] = critic(obs_t)
                acts = a.numpy()
                for i, env in enumerate(roll.envs):
                    if continuous:
                        act = np.clip(gain * acts[i], bounds[0], bounds[1])
                    else:
                        act = int(acts[i])
                    obs, r, term, trunc, _ = env.step(act)
                    roll.ep_ret[i] += r
                    roll.ep_len[i] += 1
                    r = r * cfg.reward_scale
                    if trunc and not term:  # time limit: bootstrap from the last observation's value
                        r += cfg.gamma * float(critic(torch.from_numpy(obs / scale)[None])[0])
                    buf_r[t, i] = r
                    roll.obs[i] = obs
                    if term or trunc:
                        buf_done[t, i] = 1.0
                        roll.finished.append((roll.ep_ret[i], int(roll.ep_len[i])))
                        roll.ep_ret[i], roll.ep_len[i] = 0.0, 0
                        roll.reset_env(i)
            last_v = critic(torch.from_numpy(roll.obs / scale)).numpy()
        steps += S * N
        adv = np.zeros((S, N))
        gae = np.zeros(N)
        vals = buf_v.numpy()
        for t in reversed(range(S)):
            nv = last_v if t == S - 1 else vals[t + 1]
            nonterm = 1.0 - buf_done[t]
            delta = buf_r[t] + cfg.gamma * nv * nonterm - vals[t]
            gae = delta + cfg.gamma * cfg.lam * nonterm * gae
            adv[t] = gae
        ret = torch.from_numpy(adv + vals).reshape(-1)
        adv_t = torch.from_numpy(adv).reshape(-1)
        flat = lambda x: x.reshape(S * N, *x.shape[2:])  # noqa: E731
        f_inp, f_lev = flat(buf_inp), (flat(buf_lev) if buf_lev is not None else None)
        f_state = [flat(s) for s in buf_state]
        f_obs, f_a, f_logp = flat(buf_obs), flat(buf_a), flat(buf_logp)
        for _ in range(cfg.epochs):
            perm = rng.permutation(S * N)
            for lo in range(0, S * N, cfg.minibatch):
                idx = torch.from_numpy(perm[lo:lo + cfg.minibatch])
                out, _, _ = actor.step(f_inp[idx], None if f_lev is None else f_lev[idx], [s[idx] for s in f_state])
                dist = _dist(out, log_std, continuous)
                lp = _logp(dist, f_a[idx], continuous)
                a_mb = adv_t[idx]
                a_mb = (a_mb - a_mb.mean()) / (a_mb.std() + 1e-8)
                ratio = (lp - f_logp[idx]).exp()
                pg = -torch.min(ratio * a_mb, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * a_mb).mean()
                vloss = ((critic(f_obs[idx]) - ret[idx]) ** 2).mean()
                ent = dist.entropy().mean()
                loss = pg + cfg.vf * vloss - cfg.ent * ent
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(params, cfg.max_grad)
                opt.step()
        recent = [r for r, _ in roll.finished[-20:]]
        entry = {"update": update + 1, "steps": steps, "wall_s": round(time.perf_counter() - t_start, 2),
                 "train_return": float(np.mean(recent)) if recent else None}
        if (update + 1) % cfg.eval_every == 0 or update + 1 == n_updates:
            score = evaluate_actor(env_id, actor, encoders[0], cfg.eval_episodes, seed=10_000 + seed,
                                   continuous=continuous, gain=gain, bounds=bounds)
            entry["eval_return"] = score
            if score >= best_score:
                best_score = score
                best = {k: v.detach().clone() for k, v in actor.state_dict().items()}
        history.append(entry)
        if progress:
            print(f"[{env_id}] update {update + 1}/{n_updates} steps {steps} train {entry['train_return']} "
                  f"eval {entry.get('eval_return')} ({entry['wall_s']} s)", flush=True)
        if "eval_return" in entry and on_eval is not None:
            on_eval(update + 1, {"actor": actor.state_dict(), "critic": critic.state_dict(), "opt": opt.state_dict(),
                                 "log_std": log_std.detach() if continuous else torch.zeros(1),
                                 "update": update + 1, "steps": steps, "history": history, "best": best,
                                 "best_score": best_score})
        if "eval_return" in entry and entry["eval_return"] >= target:
            break
    return best, history


def evaluate_actor(env_id, actor, encoder, episodes: int, *, seed: int, continuous: bool, gain=None,
                   bounds=None, squash: str = "clip") -> float:
    """Mean return of the torch actor's deterministic policy over ``episodes`` run side by side."""
    from spikeflow.control.encoding import make_encoder
    from spikeflow.control.envs import make_env

    envs = [make_env(env_id) for _ in range(episodes)]
    encs = [make_encoder(encoder.config()) for _ in range(episodes)]
    roll = Rollout.__new__(Rollout)
    roll.envs, roll.encoders, roll.actor = envs, encs, actor
    roll.scale = np.asarray(actor.scale)
    roll.events = actor.encoding == "events"
    roll.th = np.asarray(actor.thresholds) if roll.events else None
    roll.obs = np.zeros((episodes, actor.n_obs))
    roll.state = actor.init_state(episodes)
    for i, env in enumerate(envs):
        roll.obs[i] = env.reset(seed=seed + i)[0]
        encs[i].reset()
    done = np.zeros(episodes, bool)
    total = np.zeros(episodes)
    with torch.no_grad():
        while not done.all():
            inp, lev = roll.encode()
            out, roll.state, _ = actor.step(inp, lev, roll.state)
            y = out.numpy()
            for i, env in enumerate(envs):
                if done[i]:
                    continue
                if not continuous:
                    act = int(np.argmax(y[i]))
                elif squash == "tanh":
                    act = gain * np.tanh(y[i])
                else:
                    act = np.clip(gain * y[i], bounds[0], bounds[1])
                obs, r, term, trunc, _ = env.step(act)
                total[i] += r
                roll.obs[i] = obs
                done[i] = term or trunc
    for env in envs:
        env.close()
    return float(total.mean())
