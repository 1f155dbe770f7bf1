"""Where a result came from: the commit of the spikeflow source that ran and the machine it ran on.

Every results file (benchmarks, ``spikeflow frontier``, ``spikeflow control run``) records both, so a
figure can be traced to code and hardware; speed figures also need the CPU's vector extensions.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Optional

SOURCE = Path(__file__).resolve().parent
VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
                "amx_tile")


def commit() -> Optional[str]:
    """The checked-out commit of spikeflow's source tree, with ``-dirty`` when tracked files other than
    ``benchmarks/results`` differ from it; ``None`` outside a git checkout (an installed package)."""
    def git(*args):
        try:
            out = subprocess.run(["git", "-C", str(SOURCE), *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return ""
        return out.stdout.strip() if out.returncode == 0 else ""

    head = git("rev-parse", "HEAD")
    if not head:
        return None
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ":/", ":(top,exclude)benchmarks/results")
    return head + ("-dirty" if dirty else "")


def _cpuinfo() -> dict:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    info = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    return info


def machine() -> dict:
    """CPU model (name, family and model numbers) and vector extensions, logical cores, load average now,
    Python and torch versions."""
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    out = {"cpu": info.get("model name") or platform.processor() or platform.machine(),
           # a model name may not tell the core: "AMD EPYC" alone is given for Zen 3, 4 and 5
           "cpu_family_model": [info.get("cpu family"), info.get("model")],
           "vector_extensions": [f for f in VECTOR_FLAGS if f in flags], "cores": os.cpu_count(),
           "load_average": [round(v, 2) for v in os.getloadavg()], "python": platform.python_version()}
    try:
        import torch

        out.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    except ImportError:
        pass
    return out
