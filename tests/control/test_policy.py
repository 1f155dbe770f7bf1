"""A fixed spiking actor: the event engine, the torch model and the training step agree."""

import json

import numpy as np
import pytest
import torch

from spikeflow.control.encoding import encoder_for
from spikeflow.control.envs import action_bounds, env_info, make_env, n_actions, observation_scale
from spikeflow.control.network import SpikingActor
from spikeflow.control.policy import load_policy, read_spec
from spikeflow.control.train import _spec, write_run
from spikeflow.errors import ConfigError


def _run_dir(tmp_path, env_id, encoding, seed=3):
    info = env_info(env_id)
    scale = observation_scale(env_id)
    enc = encoder_for(env_id, encoding)
    actor = SpikingActor(len(scale), n_actions(env_id), encoding=encoding, dt=info.dt, scale=scale,
                         thresholds=getattr(enc, "thresholds", None), hidden=32, seed=seed)
    with torch.no_grad():  # a readout large enough that actions change during an episode
        actor.fc3.weight.mul_(20.0)
    bounds = action_bounds(env_id)
    spec = _spec(env_id, actor, enc, info.continuous, None if bounds is None else bounds[1], bounds)
    write_run(tmp_path, spec, actor, actor.to_sequential(), {})
    return tmp_path, actor, enc


def _recorded(env_id, steps=150, seed=0):
    env = make_env(env_id)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    out = []
    for _ in range(steps):
        out.append(obs)
        obs, _, term, trunc, _ = env.step(env.action_space.sample() if env_info(env_id).continuous
                                          else int(rng.integers(env.action_space.n)))
        if term or trunc:
            obs, _ = env.reset()
    return out


@pytest.mark.parametrize("env_id,encoding", [("CartPole-v1", "events"), ("CartPole-v1", "dense"),
                                             ("Pendulum-v1", "events")])
def test_event_and_dense_engines_take_the_same_actions(tmp_path, env_id, encoding):
    run, actor, _ = _run_dir(tmp_path, env_id, encoding)
    ev, de = load_policy(run, "event"), load_policy(run, "dense")
    obs = _recorded(env_id)
    ev.reset(obs[0])
    de.reset(obs[0])
    acts_e, acts_d, spikes_e, spikes_d, syn_e = [], [], [], [], []
    for o in obs:
        acts_e.append(ev.act(o))
        acts_d.append(de.act(o))
        spikes_e.append(ev.last_counts["spikes"])
        spikes_d.append(de.last_counts["spikes"])
        syn_e.append(ev.last_counts["synops"])
        np.testing.assert_allclose(ev.last_readout, de.last_readout, rtol=0, atol=1e-6)  # summation order
    if env_info(env_id).continuous:
        np.testing.assert_allclose(np.array(acts_e), np.array(acts_d), atol=1e-7)
    else:
        assert acts_e == acts_d
        assert len(set(acts_e)) > 1  # the test would not notice a constant policy
    assert spikes_e == spikes_d  # the same spikes in both engines, decision by decision
    assert sum(spikes_e) > 0
    # the event engine only does work for spikes and events: never more than the dense count
    assert max(syn_e) <= de.last_counts["synops"]


@pytest.mark.parametrize("encoding", ["events", "dense"])
def test_training_step_is_the_exported_network(tmp_path, encoding):
    """The surrogate-gradient training step computes the same readout as the exported Sequential."""
    run, actor, enc = _run_dir(tmp_path, "CartPole-v1", encoding)
    seq = actor.to_sequential()
    seq.reset()
    state = actor.init_state(1)
    scale, th = observation_scale("CartPole-v1"), getattr(enc, "thresholds", None)
    enc.reset()
    with torch.no_grad():
        for o in _recorded("CartPole-v1", 100, seed=1):
            x = enc(o)
            if encoding == "events":
                delta = x[0::2] - x[1::2]
                inp = torch.from_numpy(delta * th / scale)[None]
                lev = torch.from_numpy((enc.level - delta) * th / scale)[None]
            else:
                inp, lev = torch.from_numpy(np.asarray(o, np.float64) / scale)[None], None
            y, state, _ = actor.step(inp, lev, state)
            y2 = seq.step(torch.from_numpy(np.asarray(x, np.float64))[None])
            torch.testing.assert_close(y, y2, rtol=0, atol=1e-9)


def test_spec_and_bad_run_dirs(tmp_path):
    run, _, _ = _run_dir(tmp_path / "ok", "CartPole-v1", "events")
    spec = read_spec(run)
    assert spec["env_id"] == "CartPole-v1" and spec["dt"] == 0.02 and spec["steps_per_decision"] == 1
    assert spec["encoding"]["kind"] == "events" and len(spec["encoding"]["thresholds"]) == 4
    assert spec["n_in"] == 8 and spec["decoder"]["kind"] == "argmax"
    with pytest.raises(ConfigError, match="engine"):
        load_policy(run, "gpu")
    with pytest.raises(ConfigError, match="does not exist"):
        load_policy(tmp_path / "missing")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "policy.json").write_text(json.dumps({"env_id": "CartPole-v1"}))
    with pytest.raises(ConfigError, match="lacks the field"):
        load_policy(bad)


def test_event_policy_fast_path_is_the_engines_general_path(tmp_path):
    """``EventPolicy.act`` (the kernel's overload called directly, arrays bound once) gives the same
    readouts, actions and per-decision counts as a second engine stepped with ``advance_sparse``."""
    from spikeflow.control.encoding import make_encoder
    from spikeflow.ir import read_graph
    from spikeflow.runtime.event import EventEngine

    run, _, _ = _run_dir(tmp_path, "CartPole-v1", "events")
    pol = load_policy(run, "event")
    spec = read_spec(run)
    n = int(spec["steps_per_decision"])
    assert spec.get("hold_input", True) and not spec.get("reset_each_decision", False)
    ref = EventEngine(read_graph(run / "policy.nir"), dt=float(spec["dt"]))
    enc = make_encoder(spec["encoding"])
    pl = ref.plan
    inputs = {name for p, name in enumerate(pl.pop_names) if pl.pop_i[p, 2] == 6}
    idx, val = np.zeros(enc.n_channels, np.int64), np.zeros(enc.n_channels)

    def totals():
        c = ref.counter_dict()
        return (sum(c["synaptic_ops"].values()), sum(c["neuron_updates"].values()),
                sum(v for k, v in c["spikes"].items() if k not in inputs))

    obs = _recorded("CartPole-v1", steps=400, seed=1)
    actions, synops = [], []
    for i, o in enumerate(obs):
        if i % 150 == 0:  # a new episode: the policy rebinds the engine's fresh arrays
            pol.reset(o)
            ref.reset(1)
            enc.reset()
        a = pol.act(o)
        m = enc.sparse(o, idx, val)
        before = totals()
        res = ref.advance_sparse(n, np.arange(n + 1, dtype=np.int64) * m, np.tile(idx[:m], n), np.tile(val[:m], n))
        after = totals()
        y = res.outputs[pol.output].reshape(n, -1)[-1]
        np.testing.assert_array_equal(pol.last_readout, y)  # the same kernel: bit for bit
        assert a == int(np.argmax(y))
        assert pol.last_counts == {"synops": after[0] - before[0], "neuron_updates": after[1] - before[1],
                                   "spikes": after[2] - before[2]}
        actions.append(a)
        synops.append(pol.last_counts["synops"])
    assert len(set(actions)) > 1 and max(synops) > 0  # the comparison saw a policy that does something
