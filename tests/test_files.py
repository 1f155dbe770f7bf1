"""Files users can share: every kind of output gets the mode ``open()`` would give under the
umask (0644 files and 0755 folders under 022, 0600 and 0700 under 077), writes are atomic, and
a line log survives a kill -9 without a torn line."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from spikeflow.atomic import append_line, atomic_output, atomic_write_bytes, atomic_write_text

SRC = str(Path(__file__).resolve().parents[1] / "src")

# umask -> (file mode, folder mode): what open(..., 'w') and os.mkdir give under it.
EXPECTED = {0o022: (0o644, 0o755), 0o077: (0o600, 0o700)}

# One child process per umask runs the CLI commands in-process (one interpreter start, not one per
# command) and the writers a command reaches only after a long run (the eval-time and hw plots).
DRIVER = textwrap.dedent("""
    import os, sys, types
    import numpy as np
    import nir
    from spikeflow import ir
    from spikeflow.cli import main
    from spikeflow.data.events import Events, make_events_array
    from spikeflow.data.formats import write_bundle, write_npz

    os.chdir(sys.argv[1])

    def cli(*argv):
        code = main(list(argv))
        if code != 0:
            raise SystemExit(f"spikeflow {' '.join(argv)} exited with {code}")

    rng = np.random.default_rng(0)

    def events(n, size, label):
        a = make_events_array(rng.integers(0, size[0], n), rng.integers(0, size[1], n),
                              np.sort(rng.integers(0, 10_000, n)), rng.integers(0, size[2], n))
        return Events(a, size, label)

    # a train run directory (checkpoint, best model, logs, result.json) on the digits dataset
    cli("train", "--data", "digits", "--model", "mlp", "--hidden", "16", "--epochs", "1", "--T", "2",
        "--no-progress", "--out", "run")
    cli("export", "run", "--nir", "model.nir")
    # event files: written by the library, then converted by the CLI (a new nested folder too)
    write_npz("ev.npz", events(200, (34, 34, 2), 3))
    write_npz("audio.npz", events(200, (16, 1, 1), 1))
    for suffix in (".bin", ".raw", ".aedat", ".h5"):
        cli("data", "convert", "ev.npz", "new/sub/conv" + suffix)
    cli("data", "convert", "audio.npz", "conv-shd.h5", "--to", "shd")
    cli("data", "show", "ev.npz", "--out", "show-events.png")
    cli("data", "show", "ev.npz", "--out", "show-no-suffix")
    cli("data", "show", "digits", "--out", "show-digits.png")
    # eval-time: a small NIR model on a bundle of 4x4 event recordings, plot and JSON
    write_bundle("bundle.h5", [events(40, (4, 4, 2), i % 2) for i in range(4)], (4, 4, 2))
    w = rng.normal(0, 1, (2, 32)).astype(np.float32)
    g = nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([2, 4, 4])),
        "flat": nir.Flatten(input_type=np.array([2, 4, 4]), start_dim=0),
        "fc": nir.Linear(weight=w),
        "lif": nir.LIF(tau=np.full(2, 0.01), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2)),
        "output": nir.Output(output_type=np.array([2]))},
        edges=[("input", "flat"), ("flat", "fc"), ("fc", "lif"), ("lif", "output")], metadata={"dt": 1e-3})
    ir.write(g, "tiny.nir")
    cli("eval-time", "tiny.nir", "--data", "bundle.h5", "--split", "all", "--limit", "4", "--engine", "dense",
        "--plot", "eval-time.png", "--json", "eval-time.json")
    # the hardware energy chart (what `spikeflow hw ... --plot` writes)
    from spikeflow.hardware.evaluate import energy_chart
    from spikeflow.hardware.cost import CostReport
    cost = CostReport(energy_j=1e-8, dynamic_j=1e-9, static_j=9e-9, latency_s=1e-6, step_latency_s=1e-7, counts={},
                      breakdown_j={}, clock="realtime", dt=1e-3, powered_s=1e-2)
    ev = types.SimpleNamespace(dense_j={"cpu": 1e-6}, cost=cost, int_accuracy=0.5, float_accuracy=0.5, samples=4)
    energy_chart(ev, "chip", "hw.png")
    # the demo in a fast setting: report.html, summary.json, PNGs, two run directories
    cli("demo", "--data", "digits", "--epochs", "1", "--limit", "100", "--T", "2", "--threads", "1",
        "--no-progress", "--out", "demo")
""")

FILES = [
    "run/best.pt", "run/best.json", "run/latest.json", "run/steps.csv", "run/epochs.csv", "run/history.json",
    "run/result.json", "model.nir", "ev.npz", "audio.npz", "new/sub/conv.bin", "new/sub/conv.raw",
    "new/sub/conv.aedat", "new/sub/conv.h5", "conv-shd.h5", "show-events.png", "show-no-suffix", "show-digits.png",
    "bundle.h5",
    "tiny.nir", "eval-time.png", "eval-time.json", "hw.png", "demo/report.html", "demo/summary.json",
    "demo/accuracy.png", "demo/accuracy_vs_stream.png", "demo/synops.png", "demo/energy.png", "demo/raster.png",
    "demo/input.png", "demo/snn/best.pt", "demo/snn/steps.csv", "demo/ann/latest.json",
    "cache/digits-v1/digits.npz", "cache/digits-v1/manifest.json",
]
FOLDERS = ["run", "new", "new/sub", "demo", "demo/snn", "demo/ann", "cache", "cache/digits-v1"]


@pytest.fixture(scope="module", params=sorted(EXPECTED), ids=lambda m: f"umask{m:03o}")
def outputs(request, tmp_path_factory):
    mask = request.param
    work = tmp_path_factory.mktemp(f"umask{mask:03o}")
    env = dict(os.environ, PYTHONPATH=SRC, SPIKEFLOW_CACHE=str(work / "cache"), OMP_NUM_THREADS="1",
               NUMBA_NUM_THREADS="1", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(work)], env=env, capture_output=True, text=True,
                          timeout=300, preexec_fn=lambda: os.umask(mask))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return mask, work


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_output_gets_the_umask_mode(outputs):
    mask, work = outputs
    file_mode, folder_mode = EXPECTED[mask]
    checkpoints = sorted((work / "run").glob("ckpt-*.pt"))
    assert checkpoints, "the train run wrote no step checkpoint"
    wrong = {}
    for rel in FILES + [str(p.relative_to(work)) for p in checkpoints]:
        p = work / rel
        assert p.is_file(), f"{rel} was not written"
        if _mode(p) != file_mode:
            wrong[rel] = oct(_mode(p))
    for rel in FOLDERS:
        p = work / rel
        assert p.is_dir(), f"{rel} was not made"
        if _mode(p) != folder_mode:
            wrong[rel + "/"] = oct(_mode(p))
    pngs = [rel for rel in FILES if rel.endswith(".png") or rel == "show-no-suffix"]
    assert all((work / rel).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for rel in pngs)
    assert not wrong, f"under umask {mask:03o} expected files {file_mode:o}, folders {folder_mode:o}; got {wrong}"


def test_no_temp_files_left_behind(outputs):
    _, work = outputs
    leftovers = [str(p.relative_to(work)) for p in work.rglob("*") if ".tmp" in p.name or p.name.startswith(".")]
    assert leftovers == []


def test_steps_log_has_a_header_and_whole_lines(outputs):
    _, work = outputs
    lines = (work / "run" / "steps.csv").read_text().splitlines()
    assert lines[0].split(",")[0] == "global_step"
    steps = [int(line.split(",")[0]) for line in lines[1:]]
    assert steps == list(range(1, len(steps) + 1)) and all(len(line.split(",")) == 6 for line in lines)


# ------------------------------------------------------------------------ the writer alone
@pytest.mark.parametrize("mode", ["path", "wb", "w"])
def test_an_exception_leaves_the_old_file_and_no_temp_file(tmp_path, mode):
    target = tmp_path / "out.dat"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_output(target, mode) as out:
            if mode == "path":
                Path(out).write_bytes(b"half")
            else:
                out.write(b"half" if mode == "wb" else "half")
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.dat"]
    assert target.read_bytes() == b"old"


def test_writes_replace_whole_files_and_make_parents(tmp_path):
    atomic_write_text(tmp_path / "a" / "b" / "x.txt", "first")
    atomic_write_bytes(tmp_path / "a" / "b" / "x.txt", b"second")
    with atomic_output(tmp_path / "a" / "y.png") as p:
        assert p.suffix == ".png" and p.parent == tmp_path / "a"  # libraries pick the format from it
        p.write_bytes(b"png")
    assert (tmp_path / "a" / "b" / "x.txt").read_bytes() == b"second"
    assert (tmp_path / "a" / "y.png").read_bytes() == b"png"
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b", "y.png"]


def test_append_line_writes_the_header_once_and_cuts_a_torn_tail(tmp_path):
    log = tmp_path / "log" / "steps.csv"
    append_line(log, "1,a", header="step,value")
    append_line(log, "2,b\n", header="step,value")
    with open(log, "ab") as f:
        f.write(b"3,par")          # what a crash inside a write could leave
    append_line(log, "3,c", header="step,value")
    assert log.read_text() == "step,value\n1,a\n2,b\n3,c\n"


# Each line is 64 bytes, so no line crosses a 4096-byte page of the file: a single write() of a
# line within one page is never cut by a signal, which makes the check below exact, not likely.
APPENDER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[2])
    from spikeflow.atomic import append_line
    i = 0
    while True:
        append_line(sys.argv[1], f"{i:010d}," + "x" * 52, header="step," + "h" * 58)
        i += 1
""")


def test_append_survives_kill_9_without_a_torn_line(tmp_path):
    log = tmp_path / "steps.csv"
    for _ in range(3):  # kill it three times; each new writer goes on where the last stopped
        before = len(log.read_text().splitlines()) if log.exists() else 0
        child = subprocess.Popen([sys.executable, "-c", APPENDER, str(log), SRC])
        deadline = time.monotonic() + 30
        while (not log.exists() or log.stat().st_size < (before + 200) * 64) and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        assert child.returncode == -signal.SIGKILL
        data = log.read_bytes()
        assert data.endswith(b"\n")
        lines = data.decode().splitlines()
        assert lines[0] == "step," + "h" * 58
        assert len(lines) >= before + 200
        for line in lines[1:]:
            step, pad = line.split(",")
            assert len(step) == 10 and step.isdigit() and pad == "x" * 52, line
        # one header; each writer counts from 0 again, so steps restart but never skip within a writer
        steps = [int(line.split(",")[0]) for line in lines[1:]]
        assert all(b == a + 1 or b == 0 for a, b in zip(steps, steps[1:]))
    assert sum(1 for line in lines if line.startswith("step,")) == 1
