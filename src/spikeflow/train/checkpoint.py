"""Checkpoints that are never unpickled.

A checkpoint is two files in a run directory:
``ckpt-<step>.pt`` (``torch.save`` of plain state dicts, read back with ``weights_only=True``)
and ``latest.json`` (which file is current, its SHA-256, and JSON metadata). Both are
written to a temp file and ``os.replace``d, the ``.pt`` first, so a kill at any moment
leaves either the old or the new checkpoint complete. A checksum mismatch, a truncated
file or a missing key raises ``CheckpointError``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Optional

import torch

from spikeflow.atomic import atomic_write_bytes, atomic_write_text
from spikeflow.errors import CheckpointError

POINTER = "latest.json"
BEST = "best.pt"
KEEP = 2  # step checkpoints kept on disk (the current one and the one before)


def _tensor_bytes(obj: dict) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def save_state(path: Path, state: dict) -> str:
    """Write ``state`` (tensors, numbers, strings, lists, dicts) atomically; return its SHA-256."""
    data = _tensor_bytes(state)
    atomic_write_bytes(Path(path), data)
    return hashlib.sha256(data).hexdigest()


def load_state(path: Path, sha256: Optional[str] = None) -> dict:
    """Read a state file with ``weights_only=True``; check its SHA-256 when given."""
    import io

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {path} does not exist")
    data = path.read_bytes()
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise CheckpointError(
            f"checkpoint file {path} is corrupt: its SHA-256 does not match the one recorded in {POINTER}"
        )
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for a damaged zip / pickle stream
        raise CheckpointError(
            f"checkpoint file {path} is corrupt or not a spikeflow checkpoint "
            f"(cannot be read as a weights-only torch state: {type(err).__name__})"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint file {path} does not hold a state dict")
    return state


def write_checkpoint(run_dir: Path, step: int, state: dict, meta: dict) -> Path:
    """Write ``ckpt-<step>.pt`` then point ``latest.json`` at it; prune older ones."""
    run_dir = Path(run_dir)
    name = f"ckpt-{step:08d}.pt"
    sha = save_state(run_dir / name, state)
    pointer = {"file": name, "sha256": sha, "step": step, **meta}
    atomic_write_text(run_dir / POINTER, json.dumps(pointer, indent=1, sort_keys=True))
    olds = sorted(run_dir.glob("ckpt-*.pt"))
    for old in olds[:-KEEP]:
        if old.name != name:
            old.unlink(missing_ok=True)
    return run_dir / name


def read_pointer(run_dir: Path) -> dict:
    path = Path(run_dir) / POINTER
    if not path.is_file():
        raise CheckpointError(f"no checkpoint in {run_dir}: {POINTER} is missing (train with --out {run_dir} first)")
    try:
        pointer = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"checkpoint pointer {path} is corrupt: {getattr(err, 'msg', err)}") from None
    for key in ("file", "sha256", "step"):
        if key not in pointer:
            raise CheckpointError(f"checkpoint pointer {path} lacks the field {key!r}")
    return pointer


def read_checkpoint(run_dir: Path) -> tuple[dict, dict]:
    """The latest checkpoint's ``(state, pointer metadata)``; ``CheckpointError`` if damaged."""
    pointer = read_pointer(run_dir)
    state = load_state(Path(run_dir) / pointer["file"], pointer["sha256"])
    return state, pointer


def has_checkpoint(run_dir: Path) -> bool:
    return (Path(run_dir) / POINTER).is_file()


def write_model(path: Path, model: torch.nn.Module, meta: dict[str, Any]) -> None:
    """A model file: the state dict (weights-only) and a JSON sidecar ``<path>.json``."""
    path = Path(path)
    sha = save_state(path, {k: v.detach().cpu() for k, v in model.state_dict().items()})
    atomic_write_text(path.with_suffix(".json"), json.dumps({**meta, "sha256": sha}, indent=1, sort_keys=True))


def read_model_file(path: Path) -> tuple[dict, dict]:
    """``(state_dict, meta)`` of a file written by ``write_model``."""
    path = Path(path)
    side = path.with_suffix(".json")
    if not side.is_file():
        raise CheckpointError(f"model file {path} has no metadata file {side.name} beside it")
    try:
        meta = json.loads(side.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"model metadata {side} is corrupt: {err.msg}") from None
    return load_state(path, meta.get("sha256")), meta
