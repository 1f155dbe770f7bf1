"""The Lava venv (``benchmarks/.venv-lava``): Intel's lava-nc 0.10.0, which needs Python 3.10.

    python benchmarks/lava_venv.py      # create it (when missing) and print its interpreter

The venv is created (and lava-nc pip-installed into it, torch pinned through ``PIP_CONSTRAINT``
like every spikeflow venv) from the first of: ``$LAVA_PYTHON``; the newest 3.10.x under
``$(pyenv root)/versions``; ``python3.10`` on ``PATH``. Without any, ``LavaUnavailable`` says so in
one line. Only numpy and Lava run in it (tests/hardware/lava_chain.py); spikeflow stays in its own venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(HERE, ".venv-lava")
VPY = os.path.join(VENV, "bin", "python")
LAVA = "lava-nc==0.10.0"
TORCH = os.environ.get("TORCH", "torch==2.13.0")  # the Makefile's pin; lava-nc itself does not need torch
WANT = (3, 10)  # lava-nc 0.10.0: Requires-Python >=3.10,<3.11


class LavaUnavailable(RuntimeError):
    """No Python 3.10 to create the Lava venv from; the message says how to get one."""


def _version(python: str) -> tuple[int, int] | None:
    """``(major, minor)`` of an interpreter, or ``None`` when it does not run (e.g. a pyenv shim
    for a version that is not selected)."""
    try:
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True,
                             text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = out.stdout.split()
    return (int(parts[0]), int(parts[1])) if out.returncode == 0 and len(parts) == 2 else None


def _pyenv_candidates() -> list[str]:
    """pyenv's 3.10.x interpreters, newest first (``pyenv root``; without pyenv on ``PATH``,
    ``$PYENV_ROOT`` or ``~/.pyenv``)."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    pyenv = shutil.which("pyenv")
    if pyenv:
        try:
            root = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=60).stdout.strip() or root
        except (OSError, subprocess.TimeoutExpired):
            pass
    versions = os.path.join(root, "versions")
    names = sorted((v for v in (os.listdir(versions) if os.path.isdir(versions) else ())
                    if v.startswith("3.10.") and v[5:].isdigit()), key=lambda v: int(v[5:]), reverse=True)
    return [os.path.join(versions, v, "bin", "python") for v in names]


def find_lava_python() -> str:
    """The interpreter to build the Lava venv from: ``$LAVA_PYTHON``, else pyenv's newest 3.10.x,
    else ``python3.10`` on ``PATH``; ``LavaUnavailable`` (one line) when none runs."""
    chosen = os.environ.get("LAVA_PYTHON")
    if chosen:
        version = _version(chosen)
        if version != WANT:
            found = "does not run" if version is None else f"is Python {version[0]}.{version[1]}"
            raise LavaUnavailable(f"LAVA_PYTHON={chosen} {found}; lava-nc 0.10.0 needs Python 3.10: point "
                                  f"LAVA_PYTHON at one (e.g. installed with `pyenv install 3.10`)")
        return chosen
    for candidate in [*_pyenv_candidates(), shutil.which("python3.10") or ""]:
        if candidate and _version(candidate) == WANT:
            return candidate
    raise LavaUnavailable("lava-nc 0.10.0 needs Python 3.10 and none was found (LAVA_PYTHON is not set, no 3.10.x "
                          "under `pyenv root`/versions, no python3.10 on PATH): install one (`pyenv install 3.10` or "
                          "your system's python3.10 package) or set LAVA_PYTHON=/path/to/python3.10")


def ensure_lava_venv() -> str:
    """``benchmarks/.venv-lava/bin/python``, creating the venv (and installing lava-nc) when missing.

    A ``.installed`` stamp marks a finished install, so an interrupted one is redone."""
    stamp = os.path.join(VENV, ".installed")
    if os.path.exists(stamp):
        return VPY
    base = find_lava_python()
    if not os.path.exists(VPY):
        subprocess.run([base, "-m", "venv", VENV], check=True)
    constraints = os.path.join(VENV, "constraints.txt")
    with open(constraints, "w") as f:
        f.write(TORCH + "\n")
    env = {**os.environ, "PIP_CONSTRAINT": constraints, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run([VPY, "-m", "pip", "install", "-q", LAVA], check=True, env=env)
    with open(stamp, "w") as f:
        f.write(LAVA + "\n")
    return VPY


if __name__ == "__main__":
    try:
        print(ensure_lava_venv())
    except LavaUnavailable as err:
        sys.exit(str(err))
