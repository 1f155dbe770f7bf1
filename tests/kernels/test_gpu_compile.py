"""The triton kernels compile for an NVIDIA GPU (H100, sm_90) on a machine without one: the interpreter
tests check what the kernels compute, this checks that triton's compiler takes them (the interpreter
accepts code the compiler rejects) and that the Linear+LIF current is full float32, not TF32."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.peers import require

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.interop
def test_triton_kernels_compile_for_an_h100():
    require("triton")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "kernels" / "gpu_aot.py"), "90"], capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(res) == 6
    for name, r in res.items():
        assert {"ttir", "ptx", "cubin"} <= set(r["stages"]), name
        assert r["cubin_bytes"] > 1000, name
        assert not r["tf32"], name
