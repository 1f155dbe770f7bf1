import os
import shutil

import h5py
import numpy as np
import pytest
import torch

from spikeflow.data import DATASETS, Events, load_dataset
from spikeflow.data.datasets import builtin
from spikeflow.data.datasets.cache import cache_root
from spikeflow.data.formats import read_shd, write_nmnist_bin, write_npz, write_shd
from spikeflow.data.transforms import Downsample, Tonic
from spikeflow.errors import ConfigError, DataFormatError
from tests.data.data_helpers import random_events


def test_cache_dir_comes_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKEFLOW_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    assert cache_root(tmp_path / "d") == tmp_path / "d"


def test_digits_matches_sklearn_and_split_is_stratified(tmp_path):
    from sklearn.datasets import load_digits

    tr = load_dataset("digits", "train", cache_dir=tmp_path)
    te = load_dataset("digits", "test", cache_dir=tmp_path)
    assert (len(tr), len(te)) == DATASETS["digits"]["splits"]
    x, y = tr[0]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32 and isinstance(y, int)
    X, Y = tr.as_tensors()
    assert X.shape == (1437, 1, 8, 8) and Y.dtype == torch.int64 and 0 <= X.min() and X.max() <= 1
    ref = load_digits()
    # every train image is one of sklearn's, with its label
    k = int(np.flatnonzero((ref.images / 16.0 == X[5, 0].numpy()).all(axis=(1, 2)))[0])
    assert ref.target[k] == Y[5]
    counts = np.bincount(te.as_tensors()[1].numpy())
    assert counts.min() >= 35 and counts.max() <= 37


def test_mnist5k_fixed_split(tmp_path):
    tr = load_dataset("mnist5k", "train", cache_dir=tmp_path)
    te = load_dataset("mnist5k", "test", cache_dir=tmp_path)
    assert len(tr) == 4000 and len(te) == 1000
    assert np.bincount(te.as_tensors()[1].numpy()).tolist() == [100] * 10
    images, labels = builtin.mnist5k_raw()
    x, y = te[0]
    assert x.shape == (1, 28, 28)
    match = np.flatnonzero((images == np.round(x[0].numpy() * 255)).all(axis=(1, 2)))
    assert labels[match[0]] == y


def test_corrupt_cache_is_detected_and_rebuilt(tmp_path):
    load_dataset("digits", cache_dir=tmp_path)
    f = tmp_path / "digits-v1" / "digits.npz"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="corrupt"):
        ds = load_dataset("digits", cache_dir=tmp_path)
    assert len(ds) == 1437 and ds.as_tensors()[0].max() <= 1
    os.remove(tmp_path / "digits-v1" / "manifest.json")
    with pytest.warns(UserWarning):
        load_dataset("digits", cache_dir=tmp_path)


def test_fsdd_random_and_speaker_splits(tmp_path):
    tr = load_dataset("fsdd", "train", cache_dir=tmp_path, seed=1)
    te = load_dataset("fsdd", "test", cache_dir=tmp_path, seed=1)
    assert len(tr) + len(te) == 3000 and len(te) == 600
    x, y = tr[0]
    assert x.ndim == 2 and x.shape[1] == 13
    X, Y = load_dataset("fsdd", "test", cache_dir=tmp_path, max_frames=30).as_tensors()
    assert X.shape == (600, 30, 13)
    sp_te = load_dataset("fsdd", "test", cache_dir=tmp_path, split_by="speaker", test_speakers=(0,))
    # a speaker group holds roughly 1/6 of the recordings with all ten digits
    assert 400 <= len(sp_te) <= 600
    assert np.bincount(sp_te.y, minlength=10).min() >= 30
    with pytest.raises(ConfigError, match="split_by"):
        load_dataset("fsdd", cache_dir=tmp_path, split_by="nope")


def test_unknown_names_and_options(tmp_path):
    with pytest.raises(ConfigError, match="unknown dataset"):
        load_dataset("nope")
    with pytest.raises(ConfigError, match="unknown options"):
        load_dataset("digits", cache_dir=tmp_path, foo=1)
    with pytest.raises(ConfigError, match="split"):
        load_dataset("digits", "validation", cache_dir=tmp_path)


def test_spoken_digits_without_espeak_names_install_command(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ConfigError, match="apt-get install -y espeak-ng"):
        load_dataset("spoken-digits", cache_dir=tmp_path)


def test_spoken_digits_split_is_speaker_disjoint():
    """No test utterance comes from a base voice (before '+variant') that any training utterance uses."""
    rows = builtin.spoken_digit_table()
    base = {"train": set(), "test": set()}
    for voice, *_, split in rows:
        base[split].add(voice.split("+")[0])
    assert base["train"] and base["test"] and not base["train"] & base["test"]
    # every variant of a test speaker is in the test split, all 10 words in every split
    assert {v for v, *_, s in rows if s == "test"} == {b + var for b in base["test"] for var in builtin.VARIANTS}
    assert {w for _, w, *_, s in rows if s == "test"} == set(range(10)) == {w for _, w, *_, s in rows if s == "train"}
    n_test = sum(s == "test" for *_, s in rows)
    assert n_test == 2 * 2 * 10 * 3 * 3                # 2 base voices x 2 variants x 10 words x 3 speeds x 3 pitches
    assert DATASETS["spoken-digits"]["splits"] == (len(rows) - n_test, n_test)
    # the cache key names the split's version, so a cache built with the old split is not reused
    assert DATASETS["spoken-digits"]["cache_key"] == "spoken-digits-v2-c64"


def test_bring_your_own_class_folders(tmp_path):
    root = tmp_path / "mine"
    for label in range(3):
        (root / str(label)).mkdir(parents=True)
        for k in range(5):
            write_nmnist_bin(root / str(label) / f"{k}.bin", random_events(40, seed=label * 10 + k))
    ds = load_dataset(root, "all")
    assert len(ds) == 15 and sorted(set(ds.labels.tolist())) == [0, 1, 2]
    ev, y = ds[0]
    assert isinstance(ev, Events) and y == 0
    with pytest.raises(ConfigError, match="nothing is split silently.*--test-frac"):
        load_dataset(root, "train", T=4)
    tr = load_dataset(root, "train", T=4, dt=None, test_frac=0.2)
    te = load_dataset(root, "test", T=4, test_frac=0.2)
    # 3 of 15 held out, one per class (stratified), disjoint from train, the same every time
    assert (len(tr), len(te)) == (12, 3) and sorted(te.labels.tolist()) == [0, 1, 2]
    assert not set(tr.indices.tolist()) & set(te.indices.tolist())
    assert np.array_equal(load_dataset(root, "test", test_frac=0.2).indices, te.indices)
    x, _ = tr.as_tensors()
    assert x.shape == (len(tr), 4, 2, 34, 34) and x.dtype == torch.uint8
    # per-sample binning and the fast stacked path agree
    assert torch.equal(x[1].float(), tr[1][0])


def test_bring_your_own_shd_and_npz(tmp_path):
    samples = [random_events(30, size=(700, 1, 1), seed=i, label=i % 2) for i in range(10)]
    write_shd(tmp_path / "train.h5", samples)
    write_shd(tmp_path / "test.h5", samples[:4])
    ds = load_dataset(tmp_path, "test", T=5)
    x, y = ds[0]
    assert x.shape == (5, 700) and x.sum() == 30
    folder = tmp_path / "npz"
    for i, s in enumerate(samples):
        write_npz(folder / f"{i}.npz", s)
    assert len(load_dataset(folder, "all")) == 10


def _shd_by_hand(path, units, labels, times=None):
    """An SHD-layout file written with h5py alone (no 'channels' attribute, as the published files)."""
    with h5py.File(path, "w") as f:
        tt = f.create_dataset("spikes/times", (len(units),), dtype=h5py.vlen_dtype(np.float32))
        uu = f.create_dataset("spikes/units", (len(units),), dtype=h5py.vlen_dtype(np.uint16))
        for i, u in enumerate(units):
            uu[i] = np.asarray(u, np.uint16)
            tt[i] = np.asarray(times[i] if times else np.linspace(0, 0.1, len(u)), np.float32)
        f.create_dataset("labels", data=np.asarray(labels, np.uint8))


def test_shd_channel_count_comes_from_the_file(tmp_path):
    _shd_by_hand(tmp_path / "a.h5", [[0, 5, 23], [1, 2]], [0, 1])
    recs = read_shd(tmp_path / "a.h5")
    assert [r.sensor_size for r in recs] == [(24, 1, 1)] * 2            # largest unit 23 + 1, not 700
    assert load_dataset(tmp_path / "a.h5", "all", T=2)[0][0].shape == (2, 24)
    with h5py.File(tmp_path / "a.h5", "a") as f:
        f.attrs["channels"] = 32                                          # an explicit count wins
    assert read_shd(tmp_path / "a.h5")[0].sensor_size == (32, 1, 1)
    with h5py.File(tmp_path / "a.h5", "a") as f:
        f.attrs["channels"] = 10                                          # ... but must hold every unit
    with pytest.raises(DataFormatError, match="unit 23 outside 0..9"):
        read_shd(tmp_path / "a.h5")


def test_shd_pair_splits_and_shared_geometry(tmp_path):
    # the test file never fires channel 23: it still bins to the pair's 24 channels and window
    _shd_by_hand(tmp_path / "shd_train.h5", [[0, 23]] * 4, [0, 1, 2, 1], times=[[0.0, 0.4]] * 4)
    _shd_by_hand(tmp_path / "shd_test.h5", [[3, 4, 5]] * 2, [2, 0])
    tr = load_dataset(tmp_path, "train", T=4)
    te = load_dataset(tmp_path, "test", T=4)
    assert (len(tr), len(te)) == (4, 2) and te.labels.tolist() == [2, 0]
    assert tr.sensor_size == te.sensor_size == (24, 1, 1) and tr.duration_us == te.duration_us == 401_000
    x, _ = te[0]
    assert x.shape == (4, 24) and x[:, 3:6].sum(0).tolist() == [1, 1, 1]
    assert te.info["classes"] == 3
    # steps of dt: the window grows to whole steps (401 ms -> 3 steps of 150 ms = 450 ms)
    by_dt = load_dataset(tmp_path, "test", dt=0.15)
    assert by_dt.duration_us == 450_000 and by_dt[0][0].shape == (3, 24)
    assert len(load_dataset(tmp_path, "all")) == 6
    # the same pair named explicitly; a test fraction does not apply to a pair
    te2 = load_dataset(tmp_path / "shd_train.h5", "test", T=4, test_path=tmp_path / "shd_test.h5")
    assert torch.equal(te2.as_tensors()[0], te.as_tensors()[0])
    with pytest.raises(ConfigError, match="own test part"):
        load_dataset(tmp_path, "test", test_frac=0.2)
    # a single file is never split silently
    with pytest.raises(ConfigError, match="nothing is split silently"):
        load_dataset(tmp_path / "shd_train.h5", "test", T=4)
    # a model's geometry pins the sensor size: smaller data is placed in it, larger is an error
    assert load_dataset(tmp_path, "test", T=4, sensor_size=(30, 1, 1))[0][0].shape == (4, 30)
    with pytest.raises(ConfigError, match=r"sensor size \(24, 1, 1\) \(W, H, P\) but \(16, 1, 1\) is required"):
        load_dataset(tmp_path, "test", T=4, sensor_size=(16, 1, 1))
    with pytest.raises(ConfigError, match=r"but \(24, 2, 1\) is required"):   # not channel data: exact only
        load_dataset(tmp_path, "test", T=4, sensor_size=(24, 2, 1))


def test_transform_runs_tonic_on_events(tmp_path):
    root = tmp_path / "mine"
    for label in range(2):
        (root / str(label)).mkdir(parents=True)
        for k in range(3):
            write_nmnist_bin(root / str(label) / f"{k}.bin", random_events(40, seed=label * 10 + k))
    ds = load_dataset(root, "all", T=2, transform=Tonic(Downsample(spatial_factor=0.5, sensor_size=(34, 34, 2))))
    x, _ = ds[0]
    assert x.shape == (2, 2, 17, 17) and x.sum() == 40


@pytest.mark.slow
def test_nmnist5k_build_is_deterministic_and_bins(tmp_path):
    tr = load_dataset("nmnist5k", "test", T=3, cache_dir=tmp_path)
    ev = load_dataset("nmnist5k", "test", cache_dir=tmp_path)[0][0]
    assert ev.sensor_size == (34, 34, 2) and ev.t.max() < 300_000
    x, y = tr.as_tensors()
    assert x.shape == (1000, 3, 2, 34, 34)
    assert torch.equal(x[0].float(), tr[0][0])
    # the same seed regenerates the same events (rebuild in another folder)
    images, _ = builtin.mnist5k_raw()
    from spikeflow.data.dvs import saccade_events

    idx = tr.bundle.attrs["source_index"][0]
    again = saccade_events(images[idx], builtin.nmnist_emulator(0), noise_seed=int(idx))
    assert np.array_equal(again.array, ev.array)
