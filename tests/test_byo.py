"""Bring your own data through the command line: an SHD-layout train/test pair written here.

Class ``c`` fires only channels ``8c..8c+7`` of 24 at random times, so the class is read from
the channel alone and a tiny model learns it in a few epochs (accuracy far above the 1/3 of
chance on every draw); the checks on shapes, counts and splits are exact.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from spikeflow.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _write_shd(path, per_class, seed, classes=3, events=200):
    rng, labels = np.random.default_rng(seed), np.repeat(np.arange(classes), per_class)
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (len(labels),), dtype=h5py.vlen_dtype(np.float32))
        units = f.create_dataset("spikes/units", (len(labels),), dtype=h5py.vlen_dtype(np.uint16))
        for i, c in enumerate(labels):
            times[i] = np.sort(rng.uniform(0, 0.5, events))
            units[i] = rng.integers(8 * c, 8 * c + 8, events)
        f.create_dataset("labels", data=labels)


def _cli(*argv, cwd, ok=True):
    """``spikeflow ARGV`` in a child process (the installed command, this checkout's sources)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "spikeflow", *map(str, argv)], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=600)
    if ok:
        assert r.returncode == 0, f"spikeflow {' '.join(map(str, argv))}: {r.stderr[-2000:]}"
    return r


@pytest.fixture(scope="module")
def shd_pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("byo")
    (root / "my_shd").mkdir()
    _write_shd(root / "my_shd" / "train.h5", 20, seed=1)
    _write_shd(root / "my_shd" / "test.h5", 10, seed=2)
    return root


def _json(text):
    return json.loads(text[text.index("{"):])


def test_shd_pair_through_every_command(shd_pair, capsys, monkeypatch):
    """The chain as a user runs it, one ``spikeflow`` process per command."""
    cwd, data = shd_pair, shd_pair / "my_shd"
    r = _cli("train", "--data", data, "--T", "10", "--hidden", "32", "--epochs", "5", "--batch-size", "16",
             "--lr", "0.01", "--val-frac", "0.1", "--out", "run", "--no-progress", cwd=cwd)
    assert "24 channels, 3 classes; binned into T=10 steps of 50 ms over a 500 ms window" in r.stdout
    res = json.loads((cwd / "run" / "result.json").read_text())
    # the channel count and class count come from the data, the test split is the test file
    assert res["model"]["in_features"] == 24 and res["model"]["classes"] == 3 and res["model"]["T"] == 10
    assert res["data"] == str(data.resolve()) and res["test"]["samples"] == 30
    assert res["test"]["accuracy"] >= 0.9

    ev = _json(_cli("eval", "run", "--json", cwd=cwd).stdout)
    assert ev["samples"] == 30 and ev["accuracy"] == pytest.approx(res["test"]["accuracy"])
    _cli("export", "run", "--nir", "m.nir", cwd=cwd)
    hw = _json(_cli("hw", "run", "m.nir", "--chip", "loihi2", "--data", data, "--T", "10", "--json", cwd=cwd).stdout)
    assert hw["samples"] == 30 and hw["float_accuracy"] >= 0.9
    r = _cli("eval-time", "m.nir", "--data", data, "--limit", "6", "--plot", "t.png", "--json", "t.json", cwd=cwd)
    assert f"{data}/test: 6 recordings" in r.stdout
    assert json.loads((cwd / "t.json").read_text())["n"] == 6
    r = _cli("stream", "m.nir", "--input", data / "test.h5", "--index", "12", cwd=cwd)
    assert "200 events" in r.stdout and "label 1" in r.stdout

    # the rest in-process (the same entry point, without a process start each)
    monkeypatch.chdir(cwd)
    assert main(["eval", "run", "--split", "all", "--json"]) == 0
    assert _json(capsys.readouterr().out)["samples"] == 90
    # a single file has no test split of its own: an error naming the options, then --split all
    assert main(["hw", "run", "m.nir", "--data", str(data / "test.h5"), "--T", "10"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nothing is split silently" in err and "--split all" in err
    assert main(["hw", "run", "m.nir", "--data", str(data / "test.h5"), "--split", "all", "--T", "10",
                 "--json"]) == 0
    assert _json(capsys.readouterr().out)["samples"] == 30
    assert main(["eval-time", "m.nir", "--data", str(data / "test.h5"), "--split", "all", "--limit", "3",
                 "--plot", "t2.png", "--json"]) == 0
    assert _json(capsys.readouterr().out)["n"] == 3
    assert main(["nir", "run", "m.nir", "--data", str(data / "test.h5"), "--split", "all", "--json"]) == 0
    assert _json(capsys.readouterr().out)["samples"] == 30
    assert main(["stream", "m.nir", "--data", str(data / "test.h5"), "--split", "all", "--index", "29", "--json"]) == 0
    assert _json(capsys.readouterr().out)["label"] == 2
    # ANN->SNN conversion on the same files: the ANN sees each recording's frames summed, the SNN the
    # frames one step at a time; the saved model is the last T's, and eval reads it with that time base
    assert main(["convert", "--data", str(data), "--model", "mlp", "--hidden", "32", "--epochs", "5",
                 "--batch-size", "16", "--lr", "0.01", "--T-values", "10,20", "--out", "cv", "--no-progress"]) == 0
    conv = json.loads((cwd / "cv" / "result.json").read_text())
    assert [r["T"] for r in conv["snn"]] == [10, 20]
    assert conv["timebase"]["encoding"] == "events" and conv["timebase"]["T"] == 20
    assert conv["timebase"]["dt"] == pytest.approx(0.5 / 20) and conv["timebase"]["input_shape"] == [24]
    capsys.readouterr()
    assert main(["eval", "cv", "--json"]) == 0
    assert _json(capsys.readouterr().out)["accuracy"] == pytest.approx(conv["snn"][-1]["accuracy"])


def test_single_file_is_never_split_silently(shd_pair, capsys):
    train = shd_pair / "my_shd" / "train.h5"
    out = shd_pair / "single"
    assert main(["train", "--data", str(train), "--T", "10", "--epochs", "1", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nothing is split silently" in err
    assert "--test-data" in err and "--test-frac" in err
    # an explicit held-out fraction is recorded in the run, and eval reads the same split
    # (no --T: the window in the default 16 steps, said in the output)
    assert main(["train", "--data", str(train), "--test-frac", "0.2", "--hidden", "16", "--epochs", "1",
                 "--batch-size", "16", "--out", str(out), "--no-progress"]) == 0
    assert "T=16 steps of 31.25 ms over a 500 ms window (default: the window in 16 bins" in capsys.readouterr().out
    meta = json.loads((out / "result.json").read_text())
    assert meta["test"]["samples"] == 12                   # 20 % of 60 recordings, 4 of each class
    assert main(["eval", str(out), "--json"]) == 0
    assert _json(capsys.readouterr().out)["samples"] == 12
    # hw run and eval-time reach the same held-out part with the same fraction
    nir = shd_pair / "single.nir"
    assert main(["export", str(out), "--nir", str(nir)]) == 0
    assert main(["hw", "run", str(nir), "--data", str(train), "--test-frac", "0.2", "--json"]) == 0
    hw = _json(capsys.readouterr().out)
    assert main(["eval-time", str(nir), "--data", str(train), "--test-frac", "0.2", "--plot", str(shd_pair / "t.png"),
                 "--json"]) == 0
    et = _json(capsys.readouterr().out)
    assert hw["samples"] == et["n"] == 12
    assert main(["hw", "run", str(nir), "--data", str(train), "--json"]) == 2   # no split given: an error
    assert "nothing is split silently" in capsys.readouterr().err
    # another data set through the same run: the pair folder's test file
    assert main(["eval", str(out), "--data", str(shd_pair / "my_shd"), "--json"]) == 0
    assert _json(capsys.readouterr().out)["samples"] == 30


def test_readme_bring_your_own_data_runs(tmp_path, monkeypatch, capsys):
    """The README's bring-your-own-data blocks are real code and real commands."""
    readme = (ROOT / "README.md").read_text()
    section = re.search(r"## Bring your own data\n(.*?)\n## ", readme, re.S).group(1)
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    shell = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    outputs = []
    for line in shell.splitlines():
        argv = shlex.split(line, comments=True)
        assert argv[0] == "spikeflow"
        assert main(argv[1:]) == 0, line
        outputs.append(capsys.readouterr().out)
    quoted = re.search(r"`train` prints what it read: `(.*?)`", section.replace("\n", " "), re.S).group(1)
    assert quoted in outputs[0]
    assert re.search(r"test: accuracy (\d+\.\d+) % \(30 samples\)", outputs[1])
    assert float(re.search(r"accuracy (\d+\.\d+) %", outputs[1]).group(1)) >= 90
    assert (tmp_path / "my_shd.nir").is_file()
    full = re.search(r"after 100.0 % of the stream \( *500.0 ms\): +(\d+\.\d+) %", outputs[3])
    assert full and float(full.group(1)) >= 90
    assert "30 samples of" in outputs[4] and "T=10 steps of 50 ms" in outputs[4]
    assert "200 events" in outputs[5]


def _recording(fmt_suffix, label, seed, size):
    rng = np.random.default_rng(seed)
    from spikeflow.data.events import Events

    n = 80
    x = rng.integers(0, size[0] // 2, n) + (size[0] // 2) * label          # class = left/right half
    return Events.from_arrays(x, rng.integers(0, size[1], n), np.sort(rng.integers(0, 100_000, n)),
                              rng.integers(0, size[2], n), size, label)


# (suffix, sensor size the format stores, layout): class folders for single-recording formats,
# labelled files side by side for .npz, one bundle per split for .h5
FORMATS = [(".bin", (34, 34, 2), "class folders"), (".raw", (20, 16, 2), "class folders"),
           (".aedat", (128, 128, 2), "class folders"), (".npz", (20, 16, 2), "labelled files"),
           (".h5", (20, 16, 2), "bundle")]


@pytest.mark.parametrize("suffix, size, layout", FORMATS, ids=[f[0] for f in FORMATS])
def test_every_format_trains_through_the_cli(tmp_path, capsys, suffix, size, layout):
    from spikeflow.data.formats import write_bundle, write_events

    counts = {"train": 6, "test": 2}
    for split, per_class in counts.items():
        recs = [_recording(suffix, c, seed=100 * c + k + (0 if split == "train" else 50), size=size)
                for c in range(2) for k in range(per_class)]
        if layout == "bundle":
            write_bundle(tmp_path / f"{split}.h5", recs, size)
            continue
        for i, r in enumerate(recs):
            folder = tmp_path / split / (str(r.label) if layout == "class folders" else "")
            folder.mkdir(parents=True, exist_ok=True)
            write_events(folder / f"{i}{suffix}", r)
    out = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path), "--T", "4", "--hidden", "8", "--epochs", "1", "--batch-size", "4",
                 "--out", str(out), "--no-progress"]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    w, h, p = size
    assert f"sensor {w}x{h}x{p} (W, H, P), 2 classes; binned into T=4 steps of 25 ms over a 100 ms window" in line
    res = json.loads((out / "result.json").read_text())
    assert res["model"]["in_features"] == w * h * p and res["model"]["classes"] == 2 and res["model"]["T"] == 4
    assert res["test"]["samples"] == 4
    assert main(["eval", str(out), "--json"]) == 0
    assert _json(capsys.readouterr().out)["samples"] == 4
