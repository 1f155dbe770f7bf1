"""SequenceFeatures: training-split standardisation, causal deltas, padding kept at zero,
streaming equal to whole-sequence; the zoo/CLI path carries the statistics to eval."""

import json

import numpy as np
import pytest
import torch

from spikeflow.errors import ConfigError, ShapeError
from spikeflow.train.features import SequenceFeatures


def _padded(seed=0, n=6, t=9, f=4):
    """Batch-major sequences [N, T, F] of uneven length, zero-padded at the end; and their lengths."""
    g = np.random.default_rng(seed)
    lengths = g.integers(3, t + 1, n)
    x = np.zeros((n, t, f), np.float32)
    for i, k in enumerate(lengths):
        x[i, :k] = g.normal(5.0, 3.0, (k, f)) * np.arange(1, f + 1)
    return x, lengths


def test_standardises_valid_frames_with_numpy_statistics():
    x, lengths = _padded()
    valid = np.concatenate([x[i, :k] for i, k in enumerate(lengths)])
    mu, sd = valid.mean(0), valid.std(0)
    feats = SequenceFeatures(4).fit(torch.from_numpy(x))
    assert np.allclose(feats.mean.numpy(), mu, rtol=1e-5)
    assert np.allclose(feats.std.numpy(), sd, rtol=1e-5)
    out = feats(torch.from_numpy(x).transpose(0, 1)).transpose(0, 1).numpy()
    for i, k in enumerate(lengths):
        assert np.allclose(out[i, :k], (x[i, :k] - mu) / sd, atol=1e-5)
        assert np.all(out[i, k:] == 0)  # padding adds no input


def test_causal_deltas_and_log():
    x, lengths = _padded(1)
    x = np.abs(x)
    feats = SequenceFeatures(4, deltas=1, log=True).fit(torch.from_numpy(x))
    out = feats(torch.from_numpy(x).transpose(0, 1)).transpose(0, 1).numpy()
    assert out.shape == (6, 9, 8)
    z = [(np.log1p(x[i, :k]) - feats.mean[:4].numpy()) / feats.std[:4].numpy() for i, k in enumerate(lengths)]
    raw_d = [np.vstack([np.zeros((1, 4)), np.diff(zi, axis=0)]) for zi in z]
    inner = np.concatenate([d[1:] for d in raw_d])  # differences inside each recording
    assert np.allclose(feats.mean[4:].numpy(), inner.mean(0), atol=1e-5)
    assert np.allclose(feats.std[4:].numpy(), inner.std(0), rtol=1e-4)
    for i, k in enumerate(lengths):
        d = (raw_d[i] - feats.mean[4:].numpy()) / feats.std[4:].numpy()
        d[0] = 0.0  # the first frame has no predecessor: no delta
        assert np.allclose(out[i, :k, :4], z[i], atol=1e-5)
        assert np.allclose(out[i, :k, 4:], d, atol=1e-5)
        assert np.all(out[i, k:] == 0)


def test_step_by_step_equals_whole_sequence():
    x, _ = _padded(2)
    feats = SequenceFeatures(4, deltas=1).fit(torch.from_numpy(x))
    xt = torch.from_numpy(x).transpose(0, 1)
    whole = feats(xt)
    state, outs = None, []
    for t in range(xt.shape[0]):
        o, state = feats.step(xt[t], state)
        outs.append(o)
    assert torch.allclose(torch.stack(outs), whole, atol=1e-6)
    # a sequence split in two, the state carried across, gives the same frames
    first, state = feats.multistep(xt[:4])
    second, _ = feats.multistep(xt[4:], state)
    assert torch.allclose(torch.cat([first, second]), whole, atol=1e-6)


def test_bad_input_is_named():
    with pytest.raises(ConfigError, match="deltas"):
        SequenceFeatures(3, deltas=2)
    feats = SequenceFeatures(3)
    with pytest.raises(ShapeError, match="3 features"):
        feats(torch.zeros(5, 2, 4))
    with pytest.raises(ConfigError, match="no non-zero frame"):
        feats.fit(torch.zeros(2, 5, 3))


def test_zoo_model_keeps_statistics_through_train_and_eval(tmp_path, capsys, monkeypatch):
    """`spikeflow train --input-norm --deltas 1` fits the features on the training part; eval
    rebuilds the model (statistics are buffers) and loads the test split with the same frames."""
    from spikeflow.cli import main
    from spikeflow.commands._common import load_run
    from spikeflow.train import datasets

    g = torch.Generator().manual_seed(0)
    y = torch.arange(120) % 3
    x = torch.randn(120, 7, 5, generator=g) * 4 + 50 + 30 * y.view(-1, 1, 1)  # far from zero mean / unit std
    x[:, 5:] = 0  # padding

    def fake(name, split, **kw):
        assert name == "fake-seq" and kw == {}
        return (x, y) if split == "train" else (x[:30], y[:30])

    monkeypatch.setattr(datasets, "load_tensors", fake)
    import spikeflow.data
    from spikeflow.data.datasets.base import ArraySplit

    def fake_split(name, split, **kw):  # what eval reads, through the run's time base
        assert name == "fake-seq" and kw == {}
        return ArraySplit(*(t.numpy() for t in fake(name, split)))

    monkeypatch.setattr(spikeflow.data, "load_dataset", fake_split)
    from spikeflow.data import DATASETS

    monkeypatch.setitem(DATASETS, "fake-seq", {"kind": "test", "classes": 3})  # a name the CLI's --data accepts
    out = tmp_path / "run"
    assert main(["train", "--data", "fake-seq", "--model", "recurrent", "--hidden", "16", "--loss", "ce_mean",
                 "--epochs", "2", "--batch-size", "16", "--input-norm", "--deltas", "1",
                 "--out", str(out), "--no-progress"]) == 0
    model, meta = load_run(out)
    feats = model.net[0]
    assert isinstance(feats, SequenceFeatures) and feats.out_features == 10
    assert float(feats.mean[0]) > 40  # fitted on the data, stored with the model
    result = json.loads((out / "result.json").read_text())
    capsys.readouterr()
    assert main(["eval", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(result["test"]["accuracy"])


def _shifted(a: np.ndarray, s: int, axis: int) -> np.ndarray:
    """numpy reference: ``a`` moved by ``s`` along ``axis`` (0 or 1 of a 2-D array), zero fill."""
    out = np.zeros_like(a)
    n = a.shape[axis]
    src = slice(max(0, -s), min(n, n - s))
    dst = slice(max(0, s), min(n, n + s))
    if axis == 0:
        out[dst] = a[src]
    else:
        out[:, dst] = a[:, src]
    return out


def test_sequence_augmentations_match_numpy_shifts():
    from spikeflow.train.augment import augment, channel_shift, time_warp

    x = torch.rand(16, 12, 6) + 0.1
    torch.manual_seed(3)
    out = time_warp(x, max_shift=3, stretch=0.0).numpy()
    for i in range(16):  # every sample is its input moved by one of the allowed shifts
        assert any(np.array_equal(out[i], _shifted(x[i].numpy(), s, 0)) for s in range(-3, 4))
    torch.manual_seed(3)
    out = channel_shift(x, max_channels=2).numpy()
    seen = set()
    for i in range(16):
        match = [s for s in range(-2, 3) if np.array_equal(out[i], _shifted(x[i].numpy(), s, 1))]
        assert match
        seen.update(match)
    assert len(seen) > 1  # the draw differs between samples
    # a stretch resamples time: rate r takes input frame round(t * r)
    torch.manual_seed(0)
    y = time_warp(torch.arange(400.0).view(1, 400, 1), max_shift=0, stretch=0.3)[0, :, 0].numpy()
    t = np.arange(400)
    valid = np.round(t * 1.3) < 400  # frames whose source exists for any allowed rate
    r = (y[valid] * t[valid]).sum() / (t[valid] ** 2).sum()  # least-squares rate
    assert 0.7 <= r <= 1.3 and abs(r - 1) > 1e-3
    assert np.abs(y[valid] - t[valid] * r).max() <= 0.52  # nearest frame of a straight line through 0
    torch.manual_seed(5)
    a = augment(x, "time_freq")
    torch.manual_seed(5)
    assert torch.equal(a, augment(x, "time_freq"))  # seeded: reproducible
    with pytest.raises(ShapeError, match="B, T, features"):
        augment(torch.zeros(2, 3), "time")
    with pytest.raises(ConfigError, match="time_freq"):
        augment(x, "pitch")


def test_fsdd_frames_follow_T():
    """`--T` for fsdd keeps that many MFCC frames in both splits (crop or zero-pad)."""
    from spikeflow.train.datasets import data_options, load_tensors

    assert data_options("fsdd", 32) == {"max_frames": 32}
    x, _ = load_tensors("fsdd", "train", **data_options("fsdd", 32))
    xt, _ = load_tensors("fsdd", "test", **data_options("fsdd", 32))
    assert x.shape[1:] == xt.shape[1:] == (32, 13)
