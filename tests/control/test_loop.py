"""The closed loop against known answers: the toy task's optimal return, hand-counted activity,
deadline accounting on a fake clock, and energy per decision from the chip profile."""

import numpy as np
import pytest

from spikeflow.control.handbuilt import CARTPOLE_W, cartpole_policy, track_policy
from spikeflow.control.loop import control_period, realtime_priority, run_loop
from spikeflow.control.toy import TargetTracking, optimal_action, optimal_return
from spikeflow.errors import ConfigError
from spikeflow.hardware.profiles import get_profile


def test_optimal_return_counts_targets_within_the_steps():
    # |offsets| 3, 2, 4: reached at steps 3, 5, 9
    assert optimal_return([3, -2, 4], 8) == 2
    assert optimal_return([3, -2, 4], 9) == 3
    assert optimal_return([-5], 4) == 0


def test_the_greedy_move_scores_the_optimal_return():
    env = TargetTracking(length=60, max_offset=5)
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            obs, r, term, trunc, _ = env.step(optimal_action(obs))
            total += r
            done = term or trunc
        assert total == optimal_return(env.offsets, 60)


@pytest.mark.parametrize("engine", ["event", "dense"])
def test_spiking_track_policy_gets_the_optimal_return(engine):
    env = TargetTracking(length=120, max_offset=6)
    policy = track_policy(engine)
    res = run_loop(env, policy, episodes=1, seed=7)
    assert res.returns == [optimal_return(env.offsets, 120)]
    assert res.lengths == [120] and res.steps == 120
    # every step is timed and counted; the target is never under the agent at a decision (it moves on when
    # reached), so each decision is one input event -> one synaptic op -> one neuron update -> one output spike
    assert len(res.latency_ns) == 120 and np.all(res.latency_ns > 0)
    if engine == "event":
        assert np.all(res.synops == 1) and np.all(res.neuron_updates == 1)
        assert np.all(res.spikes == 1)  # the output spike (input events are not neuron spikes)
    assert res.misses == 0


def test_duration_counts_control_steps_and_restarts_episodes():
    env = TargetTracking(length=50)
    policy = track_policy()
    assert control_period(policy) == pytest.approx(1e-3)
    res = run_loop(env, policy, duration_s=0.12, seed=0)
    assert res.steps == 120
    assert len(res.returns) == 2 and res.lengths == [50, 50]  # the third episode is cut off after 20 steps


def test_episode_runs_outgrow_the_first_buffers():
    """Episode counts are open-ended: the per-step arrays grow (4096 first) and keep every step."""
    env = TargetTracking(length=200)
    res = run_loop(env, track_policy(), episodes=25, seed=0)
    assert res.steps == 5000 and len(res.returns) == 25
    assert np.all(res.latency_ns > 0) and np.all(res.synops == 1)


class FakeClock:
    """Nanoseconds that move only when told: the policy's act and the wait advance it."""

    def __init__(self):
        self.now = 0
        self.waits = []

    def __call__(self):
        return self.now

    def wait(self, t):
        self.waits.append(t)
        self.now = max(self.now, t)


class SlowPolicy:
    """Takes the given decision times (ns) on the fake clock; always action 1 (stay)."""

    spec = None

    def __init__(self, clock, costs_ns):
        self.clock, self.costs = clock, list(costs_ns)
        self.k = 0
        self.last_counts = {"synops": 3, "spikes": 2, "neuron_updates": 5}

    def reset(self, obs):
        pass

    def act(self, obs):
        self.clock.now += self.costs[self.k % len(self.costs)]
        self.k += 1
        return 1


def test_deadline_misses_on_a_fake_clock():
    clock = FakeClock()
    # 1 ms ticks. Step 0 takes 0.3 ms (in time); step 1 takes 1.5 ms (miss: ready at 2.5 > 2 ms); step 2 is due
    # at 2 ms but starts at 2.5 ms and takes 0.9 ms (miss: ready at 3.4 > 3 ms); step 3 takes 0.2 ms at 3.4 ms
    # (ready at 3.6 <= 4 ms: caught up).
    policy = SlowPolicy(clock, [300_000, 1_500_000, 900_000, 200_000])
    res = run_loop(TargetTracking(length=100), policy, duration_s=0.004, realtime=True, period_s=1e-3,
                   clock=clock, cpu_clock=clock, wait=clock.wait)
    assert res.steps == 4
    assert res.missed.tolist() == [False, True, True, False]
    assert res.misses == 2
    assert res.latency_ns.tolist() == [300_000, 1_500_000, 900_000, 200_000]
    assert res.cpu_ns.tolist() == res.latency_ns.tolist()
    assert res.start_late_ns.tolist() == [0, 0, 500_000, 400_000]
    assert clock.waits == [0, 1_000_000, 2_000_000, 3_000_000]
    s = res.summary()
    assert s["deadline_misses"] == 2 and s["latency_us"]["max"] == 1500.0
    assert s["per_decision"] == {"synops": 3.0, "spikes": 2.0, "neuron_updates": 5.0}


def test_simulated_time_never_waits_nor_counts_misses():
    clock = FakeClock()
    policy = SlowPolicy(clock, [5_000_000])  # 5 ms per decision: every one would miss a 1 ms deadline
    res = run_loop(TargetTracking(length=100), policy, duration_s=0.01, period_s=1e-3, clock=clock, wait=clock.wait)
    assert res.steps == 10 and clock.waits == [] and res.misses == 0
    assert res.summary()["deadline_misses"] is None


def test_energy_per_decision_uses_the_chip_profile():
    clock = FakeClock()
    res = run_loop(TargetTracking(length=100), SlowPolicy(clock, [1000]), duration_s=0.005, period_s=1e-3,
                   clock=clock, wait=clock.wait)
    for chip in ("loihi", "speck"):
        prof = get_profile(chip)
        e = res.energy_per_decision(prof)
        assert e["total_j"] == pytest.approx(3 * prof.e_synop + 5 * prof.e_update_active)


@pytest.mark.parametrize("encoding", ["dense", "events"])
def test_cartpole_policy_implements_its_linear_rule(encoding):
    """With delta 0 the send-on-delta membrane is w . obs exactly, so both encodings act as the rule."""
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    policy = cartpole_policy(encoding, delta=0.0)
    obs, _ = env.reset(seed=3)
    policy.reset(obs)
    for _ in range(100):
        a = policy.act(obs)
        u = float(CARTPOLE_W @ obs)
        if abs(u) > 1e-9:
            assert a == int(u > 0)
        obs, _, term, trunc, _ = env.step(a)
        if term or trunc:
            break


def test_send_on_delta_never_costs_more_synops_than_dense():
    import gymnasium as gym

    runs = {}
    for enc in ("dense", "events"):
        runs[enc] = run_loop(gym.make("CartPole-v1"), cartpole_policy(enc), episodes=1, seed=1, disable_gc=False)
    dense, events = runs["dense"], runs["events"]
    # dense: 4 input values x 2 synapses each, every decision
    assert np.all(dense.synops == 8)
    n = min(dense.steps, events.steps)
    assert np.all(events.synops[:n] <= 8) and np.all(events.synops % 2 == 0)
    assert events.synops.mean() < dense.synops.mean()


def test_realtime_priority_none_changes_nothing_and_range_is_checked():
    with realtime_priority(None):
        pass
    with pytest.raises(ConfigError, match="--rt-priority"):
        with realtime_priority(1000):
            pass


def test_cpu_time_of_a_sleeping_policy_is_small():
    """A decision that sleeps 2 ms takes 2 ms of wall time and almost no CPU time."""
    import time

    class Sleeper(SlowPolicy):
        def act(self, obs):
            time.sleep(0.002)
            return 1

    res = run_loop(TargetTracking(length=100), Sleeper(None, [0]), duration_s=0.003, period_s=1e-3)
    assert np.all(res.latency_ns >= 2_000_000)
    assert np.all(res.cpu_ns < res.latency_ns / 2)


def test_bad_loop_arguments():
    with pytest.raises(ConfigError, match="episodes or duration"):
        run_loop(TargetTracking(), track_policy())
    with pytest.raises(ConfigError, match="encoding"):
        cartpole_policy("spikes")
