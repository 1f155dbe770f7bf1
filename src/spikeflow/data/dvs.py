"""DVS (event camera) emulator: frames or a video → events.

The ideas of ESIM (Rebecq et al., CoRL 2018) and v2e (Hu et al., CVPRW 2021): each
pixel keeps a reference log intensity; whenever the log intensity moves a contrast
threshold ``C`` away from it, the pixel emits an ON (p=1) or OFF (p=0) event and the
reference moves by ``C``. Between two frames the log intensity is taken as linear in
time, so the k-th crossing gets an interpolated timestamp. Per-pixel thresholds are
``C * (1 + sigma * N(0, 1))`` (mismatch); a pixel ignores crossings during its
refractory period (its reference still follows); background-activity (leak, ON)
and shot-noise (ON/OFF) events are Poisson processes per pixel.

``saccade_events`` makes N-MNIST-style recordings (Orchard et al. 2015): a static
image moves along three straight saccades forming a triangle, ~100 ms each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from spikeflow.data.events import Events, make_events_array
from spikeflow.errors import InputError, ParameterError


@numba.njit(cache=True)
def _dvs_kernel(logf, times, c_on, c_off, refractory_us, out_pix, out_t, out_p):
    """Events for log frames ``logf[P, N]`` at ``times[N]`` (µs). Returns the count,
    or ``-needed`` when the output arrays are too small."""
    n_pix, n_frames = logf.shape
    cap = out_t.shape[0]
    n = 0
    for i in range(n_pix):
        ref = logf[i, 0]
        last = -1e300
        for k in range(1, n_frames):
            l0 = logf[i, k - 1]
            l1 = logf[i, k]
            t0 = times[k - 1]
            span = times[k] - t0
            slope = l1 - l0
            while True:
                if l1 - ref >= c_on[i]:
                    ref += c_on[i]
                    pol = 1
                elif ref - l1 >= c_off[i]:
                    ref -= c_off[i]
                    pol = 0
                else:
                    break
                frac = (ref - l0) / slope if slope != 0.0 else 1.0
                if frac < 0.0:
                    frac = 0.0
                elif frac > 1.0:
                    frac = 1.0
                t = t0 + frac * span
                if t - last >= refractory_us:
                    last = t
                    if n < cap:
                        out_pix[n] = i
                        out_t[n] = t
                        out_p[n] = pol
                    n += 1
    return n if n <= cap else -n


@numba.njit(cache=True)
def _render_shifts(img, off_x, off_y, height, width):
    """Frames of ``img`` placed at sub-pixel offsets (bilinear), zeros outside."""
    n = off_x.shape[0]
    ih, iw = img.shape
    out = np.zeros((n, height, width), dtype=np.float32)
    for f in range(n):
        ox = off_x[f]
        oy = off_y[f]
        for y in range(height):
            sy = y - oy
            y0 = int(np.floor(sy))
            fy = sy - y0
            for x in range(width):
                sx = x - ox
                x0 = int(np.floor(sx))
                fx = sx - x0
                acc = 0.0
                for dy in range(2):
                    yy = y0 + dy
                    if yy < 0 or yy >= ih:
                        continue
                    wy = fy if dy else 1.0 - fy
                    for dx in range(2):
                        xx = x0 + dx
                        if xx < 0 or xx >= iw:
                            continue
                        wx = fx if dx else 1.0 - fx
                        acc += wy * wx * img[yy, xx]
                out[f, y, x] = acc
    return out


@numba.njit(cache=True)
def _render_log_pixels(img, off_x, off_y, height, width, eps):
    """``log(frame + eps)`` of the shifted frames, pixel-major ``[H*W, N]`` (the kernel's layout)."""
    frames = _render_shifts(img, off_x, off_y, height, width)
    n = frames.shape[0]
    out = np.empty((height * width, n), dtype=np.float64)
    for f in range(n):
        for y in range(height):
            for x in range(width):
                out[y * width + x, f] = np.log(frames[f, y, x] + eps)
    return out


@dataclass
class DVSEmulator:
    """Per-pixel contrast-threshold event generation (see module docstring).

    contrast_threshold: ``C`` in log-intensity units (ON and OFF alike unless
    ``contrast_threshold_off`` is given); threshold_sigma: relative mismatch across pixels;
    refractory: seconds; leak_rate_hz / shot_noise_rate_hz: noise events per pixel per second;
    log_eps: intensities (0..1) enter as ``log(I + log_eps)`` so dark pixels do not get
    unbounded gain. ``seed`` fixes the mismatch map and the noise.
    """

    contrast_threshold: float = 0.2
    contrast_threshold_off: float | None = None
    threshold_sigma: float = 0.03
    refractory: float = 0.0
    leak_rate_hz: float = 0.0
    shot_noise_rate_hz: float = 0.0
    log_eps: float = 0.1
    seed: int = 0

    def __post_init__(self):
        for name in ("contrast_threshold", "log_eps"):
            if not getattr(self, name) > 0:
                raise ParameterError(f"DVSEmulator: {name} must be > 0, got {getattr(self, name)}")
        if self.contrast_threshold_off is not None and not self.contrast_threshold_off > 0:
            raise ParameterError(f"DVSEmulator: contrast_threshold_off must be > 0, got {self.contrast_threshold_off}")
        for name in ("threshold_sigma", "refractory", "leak_rate_hz", "shot_noise_rate_hz"):
            v = getattr(self, name)
            if not (v >= 0 and np.isfinite(v)):
                raise ParameterError(f"DVSEmulator: {name} must be a finite number >= 0, got {v}")
        self._maps = {}

    def thresholds(self, height: int, width: int):
        """The (ON, OFF) threshold maps of a ``height x width`` sensor (fixed by ``seed``)."""
        key = (height, width)
        if key not in self._maps:
            rng = np.random.default_rng([self.seed, height, width])
            c_off = self.contrast_threshold_off or self.contrast_threshold
            mis = rng.standard_normal((2, height * width)) * self.threshold_sigma
            floor = 0.01 * min(self.contrast_threshold, c_off)
            on = np.maximum(self.contrast_threshold * (1 + mis[0]), floor)
            off = np.maximum(c_off * (1 + mis[1]), floor)
            self._maps[key] = (on, off)
        return self._maps[key]

    def log_intensity(self, frames) -> np.ndarray:
        f = np.asarray(frames)
        if f.dtype == np.uint8:
            f = f.astype(np.float32) / 255.0
        f = f.astype(np.float32, copy=False)
        if not np.all(np.isfinite(f)) or (f.size and f.min() < 0):
            raise InputError("DVSEmulator: frames must be finite intensities >= 0 (uint8 or float in 0..1)")
        return np.log(f + self.log_eps)

    def emulate(self, frames, times=None, *, fps: float | None = None, noise_seed: int | None = None,
                label=None) -> Events:
        """Events of ``frames`` ``[N, H, W]`` (grayscale; RGB ``[N, H, W, 3]`` is averaged).

        ``times`` in seconds (N increasing values) or ``fps``. ``noise_seed`` varies the noise
        between recordings while keeping the sensor (threshold map) fixed.
        """
        frames = np.asarray(frames)
        if frames.ndim == 4 and frames.shape[-1] in (3, 4):
            frames = frames[..., :3].mean(-1).astype(frames.dtype if frames.dtype != np.uint8 else np.float32) \
                if frames.dtype != np.uint8 else frames[..., :3].mean(-1) / 255.0
        if frames.ndim != 3 or frames.shape[0] < 2:
            raise InputError(f"DVSEmulator: frames must be [N>=2, H, W], got shape {frames.shape}")
        n, h, w = frames.shape
        if times is None:
            if not fps or fps <= 0:
                raise ParameterError("DVSEmulator.emulate: give times (seconds) or fps > 0")
            times = np.arange(n) / fps
        times = np.asarray(times, dtype=np.float64)
        if times.shape != (n,) or np.any(np.diff(times) <= 0):
            raise InputError(f"DVSEmulator.emulate: times must be {n} increasing seconds, got shape {times.shape}")
        logf = np.ascontiguousarray(self.log_intensity(frames).reshape(n, h * w).T, dtype=np.float64)
        return self._events(logf, times * 1e6, h, w, noise_seed, label)

    def _events(self, logf, times_us, h, w, noise_seed, label) -> Events:
        c_on, c_off = self.thresholds(h, w)
        cap = max(1024, logf.shape[0] * 4)
        while True:
            pix = np.empty(cap, np.int64)
            t = np.empty(cap, np.float64)
            p = np.empty(cap, np.int8)
            got = _dvs_kernel(logf, times_us, c_on, c_off, self.refractory * 1e6, pix, t, p)
            if got >= 0:
                break
            cap = -got
        pix, t, p = pix[:got], t[:got], p[:got]
        pix, t, p = self._add_noise(pix, t, p, h * w, times_us[0], times_us[-1], noise_seed)
        ti = np.rint(t).astype(np.int64)
        order = np.lexsort((pix, ti))
        arr = make_events_array(pix[order] % w, pix[order] // w, ti[order], p[order])
        return Events(arr, (w, h, 2), label, validate=False)

    def _add_noise(self, pix, t, p, n_pix, t0, t1, noise_seed):
        rate = self.leak_rate_hz + self.shot_noise_rate_hz
        if rate <= 0:
            return pix, t, p
        rng = np.random.default_rng([self.seed, 7919, 0 if noise_seed is None else int(noise_seed)])
        dur = (t1 - t0) * 1e-6
        k = rng.poisson(rate * n_pix * dur)
        npix = rng.integers(0, n_pix, k)
        nt = rng.uniform(t0, t1, k)
        # Leak events are ON; shot noise is ON or OFF with equal chance.
        leak = rng.random(k) < self.leak_rate_hz / rate
        npol = np.where(leak, 1, rng.integers(0, 2, k)).astype(np.int8)
        return np.concatenate([pix, npix]), np.concatenate([t, nt]), np.concatenate([p, npol])


def saccade_offsets(n_frames: int, amplitude: float = 3.0, origin=(1.5, 1.5)):
    """Image offsets (x, y) in pixels along three saccades: right-down, left-down... a triangle.

    The three vertices follow N-MNIST's isosceles-triangle path (Orchard et al. 2015, Fig. 2).
    """
    ox, oy = origin
    a = amplitude
    verts = np.array([[ox, oy + a], [ox + a / 2, oy], [ox + a, oy + a], [ox, oy + a]], dtype=np.float64)
    per = max(n_frames // 3, 1)
    xs, ys = [], []
    for s in range(3):
        u = np.arange(per) / per
        xs.append(verts[s, 0] + (verts[s + 1, 0] - verts[s, 0]) * u)
        ys.append(verts[s, 1] + (verts[s + 1, 1] - verts[s, 1]) * u)
    xs.append(verts[3:, 0])
    ys.append(verts[3:, 1])
    return np.concatenate(xs), np.concatenate(ys)


def saccade_events(image, emulator: DVSEmulator, *, sensor_size=(34, 34), duration: float = 0.3,
                   frames_per_saccade: int = 50, amplitude: float = 3.0, noise_seed=None, label=None) -> Events:
    """N-MNIST-style events of a static image (2-D, uint8 or 0..1) moved in three saccades."""
    img = np.asarray(image)
    if img.ndim != 2:
        raise InputError(f"saccade_events: image must be 2-D [H, W], got shape {img.shape}")
    img = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
    w, h = sensor_size[:2]
    ih, iw = img.shape
    if ih + amplitude > h or iw + amplitude > w:
        raise ParameterError(f"saccade_events: image {img.shape} plus amplitude {amplitude} does "
                             f"not fit sensor {sensor_size}")
    origin = ((w - iw - amplitude) / 2, (h - ih - amplitude) / 2)
    n = 3 * frames_per_saccade + 1
    offx, offy = saccade_offsets(n, amplitude, origin)
    logf = _render_log_pixels(img, offx, offy, h, w, emulator.log_eps)
    times_us = np.linspace(0.0, duration * 1e6, len(offx))
    return emulator._events(logf, times_us, h, w, noise_seed, label)


def read_video(path, *, max_frames: int = 100_000):
    """Grayscale frames ``[N, H, W]`` (float32 0..1) and times (s) of a video OpenCV reads."""
    try:
        import cv2
    except ImportError:
        raise ParameterError("read_video needs OpenCV: pip install opencv-python-headless") from None
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        from spikeflow.errors import DataFormatError

        raise DataFormatError(f"{path}: OpenCV cannot open this video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    while len(frames) < max_frames:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0)
    cap.release()
    if len(frames) < 2:
        from spikeflow.errors import DataFormatError

        raise DataFormatError(f"{path}: fewer than 2 frames could be decoded")
    return np.stack(frames), np.arange(len(frames)) / fps


def video_to_events(path, emulator: DVSEmulator | None = None, **kw) -> Events:
    """Events of a video file (frames and their timestamps, via OpenCV) through ``emulator``
    (or ``DVSEmulator(**kw)``); sensor size ``(width, height, 2)``.
    """
    frames, times = read_video(path)
    return (emulator or DVSEmulator(**kw)).emulate(frames, times)
