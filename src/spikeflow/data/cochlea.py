"""Cochlea emulator: audio waveform → spikes per frequency channel.

Pipeline (as in the SHD's artificial cochlea, Cramer et al. 2020, simplified):
band-pass filterbank on the mel scale (tonic's ``MelButterFilterBank``), half-wave
rectification, an envelope (mean over ``dt`` windows), compression (``x ** exponent``,
a power law like the inner hair cell's), then per channel either LIF neurons
(``spikeflow.neurons.lif``, the single source of neuron math) or send-on-delta
threshold crossings. The result is ``Events`` with ``x = channel`` and sensor size
``(channels, 1, 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from spikeflow.data.events import Events, make_events_array
from spikeflow.errors import InputError, ParameterError


@dataclass
class Cochlea:
    """Silicon-cochlea emulator: audio -> spike ``Events`` with ``x`` = channel, sensor ``(channels, 1, 1)``.

    ``channels`` mel-spaced Butterworth band-pass filters of ``order`` above ``low_freq`` (Hz) (tonic's
    ``MelButterFilterBank``); the half-wave rectified output is averaged per ``dt`` (s) window and
    compressed (``** exponent``), normalised to max 1 per recording (``normalize``), and encoded by one
    LIF neuron per channel (``encoding="lif"``: ``gain`` x envelope as input, ``tau_mem`` in s, threshold
    1) or by send-on-delta steps of ``threshold`` (``"threshold"``). Call it as ``cochlea(audio, sample_rate)``.
    """
    channels: int = 64
    low_freq: float = 100.0
    order: int = 2
    dt: float = 1e-3             # envelope / neuron step (s)
    exponent: float = 0.3        # compression
    encoding: str = "lif"        # "lif" | "threshold"
    gain: float = 20.0           # input scale to the LIF neurons (after normalisation)
    tau_mem: float = 10e-3
    threshold: float = 0.05      # send-on-delta step for "threshold" encoding (normalised units)
    normalize: bool = True       # scale the compressed envelope to max 1 per recording

    def __post_init__(self):
        if int(self.channels) < 1:
            raise ParameterError(f"Cochlea: channels must be >= 1, got {self.channels}")
        if self.encoding not in ("lif", "threshold"):
            raise ParameterError(f"Cochlea: encoding must be 'lif' or 'threshold', got {self.encoding!r}")
        for name in ("dt", "exponent", "gain", "tau_mem", "threshold", "low_freq"):
            if not getattr(self, name) > 0:
                raise ParameterError(f"Cochlea: {name} must be > 0, got {getattr(self, name)}")
        self._banks = {}

    def _bank(self, sr: int):
        if sr not in self._banks:
            from tonic.audio_transforms import MelButterFilterBank

            if self.low_freq * (1 + 2 / self.channels) >= sr / 2:
                raise ParameterError(f"Cochlea: low_freq {self.low_freq} Hz is not below Nyquist of {sr} Hz")
            self._banks[sr] = MelButterFilterBank(order=self.order, low_freq=self.low_freq, sampling_freq=sr,
                                                  num_filters=int(self.channels), rectify=False)
        return self._banks[sr]

    def envelope(self, audio, sample_rate: int) -> np.ndarray:
        """Compressed, rectified filterbank output per ``dt`` window: ``[steps, channels]``."""
        a = np.asarray(audio, dtype=np.float64)
        if a.ndim == 2:
            a = a.mean(axis=1)
        if a.ndim != 1 or len(a) < 2 or not np.all(np.isfinite(a)):
            raise InputError(f"Cochlea: audio must be a finite 1-D waveform (or [samples, "
                             f"channels]), got shape {np.shape(audio)}")
        return self.envelope_batch(a[None, :], sample_rate)[0]

    def envelope_batch(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """``envelope`` of equally long recordings ``[N, samples]`` at once: ``[N, steps, channels]``."""
        n, length = audio.shape
        band = self._bank(int(sample_rate))(audio)               # [channels * N, samples], channel-major
        rect = np.maximum(band, 0.0).reshape(int(self.channels), n, length)  # half-wave rectification
        hop = max(int(round(self.dt * sample_rate)), 1)
        steps = length // hop
        env = rect[:, :, :steps * hop].reshape(int(self.channels), n, steps, hop).mean(-1).transpose(1, 2, 0)
        env = env ** self.exponent
        if self.normalize:
            peak = env.reshape(n, -1).max(axis=1)
            env = env / np.where(peak > 0, peak, 1.0)[:, None, None]
        return env.astype(np.float32)

    def spikes(self, env: np.ndarray) -> np.ndarray:
        """Binary spikes from an envelope ``[steps, channels]`` (or ``[steps, N, channels]``)."""
        if self.encoding == "threshold":
            return send_on_delta(env, self.threshold)
        from spikeflow.neurons import lif

        params = lif.LIFParams(tau_mem=self.tau_mem, v_threshold=1.0, dt=self.dt, reset="subtract")
        x = torch.from_numpy(np.ascontiguousarray(env)) * self.gain
        state = lif.init_state(x.shape[1:], params)
        out = torch.empty_like(x)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # small per-step tensors: extra threads only wait (and stall on a busy machine)
        try:
            with torch.no_grad():
                for k in range(x.shape[0]):
                    out[k], state = lif.step(x[k], state, params)
        finally:
            torch.set_num_threads(threads)
        return out.numpy()

    def __call__(self, audio, sample_rate: int, label=None) -> Events:
        spk = self.spikes(self.envelope(audio, sample_rate))
        step, ch = np.nonzero(spk)
        t = np.rint(step * self.dt * 1e6).astype(np.int64)
        return Events(make_events_array(ch, 0, t, 0), (int(self.channels), 1, 1), label, validate=False)

    def batch(self, audios, sample_rate: int, labels=None, *, chunk: int = 256) -> list[Events]:
        """Events of many recordings: envelopes one by one, neurons for ``chunk`` recordings at once
        (envelopes padded with zeros to one length)."""
        out = []
        for s0 in range(0, len(audios), chunk):
            envs = [self.envelope(a, sample_rate) for a in audios[s0:s0 + chunk]]
            steps = max(len(e) for e in envs)
            stack = np.zeros((steps, len(envs), int(self.channels)), dtype=np.float32)
            for i, e in enumerate(envs):
                stack[:len(e), i] = e
            spk = self.spikes(stack)                                  # [steps, n, C]
            for i in range(len(envs)):
                step, ch = np.nonzero(spk[:, i])
                t = np.rint(step * self.dt * 1e6).astype(np.int64)
                lab = None if labels is None else int(labels[s0 + i])
                out.append(Events(make_events_array(ch, 0, t, 0), (int(self.channels), 1, 1), lab, validate=False))
        return out


def send_on_delta(env: np.ndarray, threshold: float) -> np.ndarray:
    """One spike per step where the signal has risen ``threshold`` above its last spike level."""
    ref = np.zeros(env.shape[1:], dtype=np.float64)
    out = np.zeros(env.shape, dtype=np.float32)
    for k in range(env.shape[0]):
        up = env[k] - ref >= threshold
        out[k] = up
        ref = np.where(up, ref + threshold, np.minimum(ref, env[k]))
    return out
