import numpy as np
import pytest

from spikeflow.data.cochlea import Cochlea, send_on_delta
from spikeflow.data.dvs import DVSEmulator, saccade_events, saccade_offsets
from spikeflow.errors import InputError, ParameterError


def test_dvs_ramp_count_and_interpolated_timestamps():
    # One pixel whose log intensity rises linearly by 1.0 over 1 s: with C = 0.2 (no mismatch)
    # it crosses at 0.2, 0.4, ... → 5 ON events at 0.2, 0.4, ... s (interpolated between 2 frames).
    em = DVSEmulator(contrast_threshold=0.2, threshold_sigma=0.0, log_eps=1e-9)
    frames = np.exp(np.array([0.0, 1.0]))[:, None, None] * np.ones((2, 1, 1))
    frames = frames / frames.max()
    e = em.emulate(frames, times=[0.0, 1.0])
    assert e.p.tolist() == [1] * 5
    np.testing.assert_allclose(e.t, [200_000, 400_000, 600_000, 800_000, 1_000_000], atol=1)


def test_dvs_off_events_refractory_and_mismatch():
    em = DVSEmulator(contrast_threshold=0.2, threshold_sigma=0.0, log_eps=1e-9)
    frames = np.array([1.0, np.exp(-1.1)])[:, None, None]       # log falls by 1.1 over 1 s
    e = em.emulate(frames, times=[0.0, 1.0])
    assert e.p.tolist() == [0] * 5
    np.testing.assert_allclose(e.t, [round(k * 0.2 / 1.1 * 1e6) for k in range(1, 6)], atol=1)
    em_ref = DVSEmulator(contrast_threshold=0.2, threshold_sigma=0.0, log_eps=1e-9, refractory=0.3)
    e = em_ref.emulate(frames, times=[0.0, 1.0])
    # crossings at 0.18, 0.36, 0.55, 0.73, 0.91 s; those within 0.3 s of the last kept one are dropped
    np.testing.assert_allclose(e.t, [181_818, 545_455, 909_091], atol=1)
    mis = DVSEmulator(contrast_threshold=0.2, threshold_sigma=0.1, seed=3)
    on, off = mis.thresholds(50, 50)
    assert abs(on.std() / on.mean() - 0.1) < 0.01 and abs(on.mean() - 0.2) < 0.005


def test_dvs_noise_rate():
    em = DVSEmulator(leak_rate_hz=5.0, shot_noise_rate_hz=5.0, seed=1)
    frames = np.full((2, 20, 20), 0.5)
    e = em.emulate(frames, times=[0.0, 10.0])      # static scene: only noise
    expected = 10.0 * 400 * 10.0                    # rate * pixels * seconds
    assert abs(len(e) - expected) < 4 * np.sqrt(expected)
    assert 0.70 < e.p.mean() < 0.80                  # leak ON + half of shot noise ON = 0.75


def test_dvs_bad_input():
    with pytest.raises(InputError):
        DVSEmulator().emulate(np.zeros((1, 4, 4)), fps=30)
    with pytest.raises(ParameterError):
        DVSEmulator(contrast_threshold=0)


def test_saccades_three_segments_300ms():
    x, y = saccade_offsets(151, amplitude=3.0, origin=(0, 0))
    assert (x[0], y[0]) == (x[-1], y[-1])            # closed triangle
    img = np.zeros((28, 28), np.uint8)
    img[10:18, 12:16] = 255
    em = DVSEmulator(contrast_threshold=0.4, threshold_sigma=0.0)
    e = saccade_events(img, em)
    assert e.sensor_size == (34, 34, 2) and 250_000 < e.t.max() <= 300_000
    # events in each of the three saccades
    assert all(len(e.time_slice(k * 100_000, (k + 1) * 100_000)) > 20 for k in range(3))


def test_send_on_delta_hand_computed():
    env = np.array([0.0, 0.15, 0.3, 0.1, 0.3])[:, None]
    assert send_on_delta(env, 0.1)[:, 0].tolist() == [0, 1, 1, 0, 1]


def test_cochlea_tone_lands_in_the_right_channel():
    sr = 16000
    t = np.arange(sr // 2) / sr
    c = Cochlea(channels=16, low_freq=100.0)
    bands = c._bank(sr).filterbank.filters
    lo = [f.freq[0] * sr / 2 for f in bands]
    hi = [f.freq[1] * sr / 2 for f in bands]
    k = 8
    tone = np.sin(2 * np.pi * (lo[k] + hi[k]) / 2 * t)
    e = c(tone, sr)
    counts = np.bincount(e.x, minlength=16)
    assert e.sensor_size == (16, 1, 1)
    assert abs(int(np.argmax(counts)) - k) <= 1
    e2 = Cochlea(channels=16, encoding="threshold")(tone, sr)
    assert abs(int(np.argmax(np.bincount(e2.x, minlength=16))) - k) <= 1
