"""benchmarks/gpu_check.sh and benchmarks/gpu_bench.py, the GPU run, checked where no GPU is: the script's
syntax and its stop without one, and the benchmark's logic on the CPU (``--device cpu --dry-run``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}


def test_gpu_check_script_parses_and_stops_without_a_gpu():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
    if torch.cuda.is_available():
        pytest.skip("a GPU is here: gpu_check.sh would run for real")
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=120,
                          env={**ENV, "GPU_PYTHON": sys.executable})
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith("gpu_check: torch ")
    assert "sees no CUDA GPU here" in proc.stderr
    if shutil.which("nvidia-smi") is None:  # without GPU_PYTHON: no venv is made where no GPU is
        venvs = [ROOT / "benchmarks" / name for name in (".venv-gpu", ".venv-spyx-gpu")]
        before = [v.exists() for v in venvs]
        env = {k: v for k, v in ENV.items() if k not in ("GPU_PYTHON", "SPYX_GPU_PYTHON")}
        proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=60, env=env)
        assert proc.returncode == 1
        assert proc.stderr.strip() == "gpu_check: nvidia-smi finds no NVIDIA GPU here; run this on a machine with one"
        assert [v.exists() for v in venvs] == before


def _bench(tmp_path, libs, workloads):
    out = tmp_path / "gpu.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu_bench.py"), "--device", "cpu", "--dry-run", "--libs", libs,
           "--workloads", workloads, "--steps", "1", "--warmup", "1", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=ENV, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["device"] == "cpu" and report["dry_run"] is True and report["commit"]
    return {(r["lib"], r["workload"]): r for r in report["runs"]}


def test_gpu_bench_dry_run_on_the_cpu(tmp_path):
    runs = _bench(tmp_path, "spikeflow,spikeflow-unfused,spyx", "W1")
    fused, unfused = runs["spikeflow", "W1"], runs["spikeflow-unfused", "W1"]
    for r in (fused, unfused):
        assert (r["T"], r["batch"], len(r["times_ms"])) == (4, 2, 1) and r["median_ms"] > 0
    # the fused and unfused layers compute the same function (a spike may flip by float rounding)
    assert fused["hidden_spikes_first"] > 50
    assert abs(fused["hidden_spikes_first"] - unfused["hidden_spikes_first"]) <= 2
    assert runs["spyx", "W1"]["error"].startswith("no --spyx-python")


@pytest.mark.slow
def test_gpu_bench_dry_run_every_workload(tmp_path):
    runs = _bench(tmp_path, "spikeflow,spikeflow-unfused", "W1,W2,W3,W4")
    for (lib, name), r in runs.items():
        assert "error" not in r, (lib, name, r)
        assert r["median_ms"] > 0
