"""Venvs for the peer simulators that need another Python than spikeflow's own.

    python benchmarks/peer_venvs.py lava     # create benchmarks/.venv-lava when missing; print its python
    python benchmarks/peer_venvs.py brian2   # the same for benchmarks/.venv-brian2
    python benchmarks/peer_venvs.py spyx     # the same for benchmarks/.venv-spyx (JAX; benchmarks/peers.py)

Brian2 2.11 needs Python >= 3.13, Intel's lava-nc 0.10.0 exactly 3.10, spyx 1.0.0 (JAX 0.10) >= 3.11. Each venv
is created on first use from the first interpreter that fits: ``$BRIAN2_PYTHON`` / ``$LAVA_PYTHON`` /
``$SPYX_PYTHON``; the newest matching version under ``$(pyenv root)/versions``; ``python3.13`` / ``python3.10`` /
``python3.11`` on ``PATH``; for a minimum version, the interpreter running this script. Without one,
``PeerUnavailable`` says in one line what is missing and how to get it. Installs pin torch through
``PIP_CONSTRAINT`` like every spikeflow venv; a ``.installed`` stamp marks a finished install, so an
interrupted one is redone. Only the peer (and numpy) runs there: spikeflow stays in its own venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Optional, Tuple

from spikeflow.atomic import atomic_write_text

HERE = os.path.dirname(os.path.abspath(__file__))
TORCH = os.environ.get("TORCH", "torch==2.13.0")  # the Makefile's pin


class PeerUnavailable(RuntimeError):
    """No interpreter to create a peer's venv from; the message says how to get one."""


def python_version(python: str) -> Optional[Tuple[int, int]]:
    """``(major, minor)`` of an interpreter, or ``None`` when it does not run (e.g. a pyenv shim
    for a version that is not selected)."""
    try:
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True,
                             text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = out.stdout.split()
    return (int(parts[0]), int(parts[1])) if out.returncode == 0 and len(parts) == 2 else None


def pyenv_versions(minor: int) -> list[str]:
    """pyenv's 3.<minor>.x interpreters, newest first (``pyenv root``; without pyenv on ``PATH``,
    ``$PYENV_ROOT`` or ``~/.pyenv``)."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    pyenv = shutil.which("pyenv")
    if pyenv:
        try:
            root = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=60).stdout.strip() or root
        except (OSError, subprocess.TimeoutExpired):
            pass
    versions = os.path.join(root, "versions")
    prefix = f"3.{minor}."
    names = sorted((v for v in (os.listdir(versions) if os.path.isdir(versions) else ())
                    if v.startswith(prefix) and v[len(prefix):].isdigit()),
                   key=lambda v: int(v[len(prefix):]), reverse=True)
    return [os.path.join(versions, v, "bin", "python") for v in names]


@dataclass(frozen=True)
class PeerVenv:
    """One peer's venv: where it lives, what it installs and which Python it needs (3.<minor>,
    or any later one unless ``exact``)."""

    key: str  # "lava", "brian2": the command-line name and the env variable's stem
    requirement: str  # the pip requirement(s), space-separated, e.g. "lava-nc==0.10.0"
    minor: int
    exact: bool

    @property
    def folder(self) -> str:
        return os.path.join(HERE, f".venv-{self.key}")

    @property
    def python(self) -> str:
        return os.path.join(self.folder, "bin", "python")

    @property
    def env_var(self) -> str:
        return f"{self.key.upper()}_PYTHON"

    @property
    def needs(self) -> str:
        return f"{self.requirement.split()[0]} needs Python 3.{self.minor}" + ("" if self.exact else " or later")

    def fits(self, version: Optional[Tuple[int, int]]) -> bool:
        if version is None:
            return False
        return version == (3, self.minor) if self.exact else version >= (3, self.minor)

    def base_python(self) -> str:
        """The interpreter to create the venv from, or ``PeerUnavailable`` (one line)."""
        chosen = os.environ.get(self.env_var)
        if chosen:
            version = python_version(chosen)
            if not self.fits(version):
                found = "does not run" if version is None else f"is Python {version[0]}.{version[1]}"
                raise PeerUnavailable(f"{self.env_var}={chosen} {found}; {self.needs}: point {self.env_var} at one "
                                      f"(e.g. installed with `pyenv install 3.{self.minor}`)")
            return chosen
        here = [] if self.exact else [sys.executable]
        for candidate in [*pyenv_versions(self.minor), shutil.which(f"python3.{self.minor}") or "", *here]:
            if candidate and self.fits(python_version(candidate)):
                return candidate
        raise PeerUnavailable(f"{self.needs} and none was found ({self.env_var} is not set, no 3.{self.minor}.x under "
                              f"`pyenv root`/versions, no python3.{self.minor} on PATH): install one (`pyenv install "
                              f"3.{self.minor}` or your system's python3.{self.minor} package) or set "
                              f"{self.env_var}=/path/to/python3.{self.minor}")

    def ensure(self) -> str:
        """The venv's interpreter, creating the venv and installing the peer when missing."""
        stamp = os.path.join(self.folder, ".installed")
        if os.path.exists(stamp):
            return self.python
        if not os.path.exists(self.python):
            subprocess.run([self.base_python(), "-m", "venv", self.folder], check=True)
        constraints = os.path.join(self.folder, "constraints.txt")
        atomic_write_text(constraints, TORCH + "\n")
        env = {**os.environ, "PIP_CONSTRAINT": constraints, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        subprocess.run([self.python, "-m", "pip", "install", "-q", *self.requirement.split()], check=True, env=env)
        atomic_write_text(stamp, self.requirement + "\n")
        return self.python


BRIAN2 = PeerVenv("brian2", "brian2==2.11.0", minor=13, exact=False)
LAVA = PeerVenv("lava", "lava-nc==0.10.0", minor=10, exact=True)
# JAX and its flax/optax pinned with spyx: the versions benchmarks/RESULTS.md was measured with
SPYX = PeerVenv("spyx", "spyx==1.0.0 jax==0.10.2 jaxlib==0.10.2 flax==0.12.8 optax==0.2.8", minor=11, exact=False)
VENVS = {v.key: v for v in (BRIAN2, LAVA, SPYX)}


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in VENVS:
        sys.exit(f"usage: python {sys.argv[0]} {{{','.join(VENVS)}}}")
    try:
        print(VENVS[sys.argv[1]].ensure())
    except PeerUnavailable as err:
        sys.exit(f"error: {err}")
