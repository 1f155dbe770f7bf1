"""What every sub-command shares: argument types, the shared flags, run-directory loading.

The flag vocabulary these implement is in ``spikeflow.cli``'s docstring.

Every argument's type is one of the functions below. Each carries a ``kind`` (e.g.
``"positive_int"``, ``"input_file"``) that says what it accepts, so the bad-input test can
derive invalid values for every flag of every command, including flags added later.
Types reject bad values while the command line is parsed, with a message that says what
was expected; ``cli`` prints it as one line and exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from spikeflow.errors import CheckpointError, ConfigError


def _kind(name: str):
    def mark(fn):
        fn.kind = name
        return fn

    return mark


def _number(text: str, cast, what: str):
    try:
        v = cast(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if isinstance(v, float) and not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return v


@_kind("positive_int")
def positive_int(text: str) -> int:
    v = _number(text, int, "a positive integer")
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


@_kind("nonneg_int")
def nonneg_int(text: str) -> int:
    v = _number(text, int, "an integer >= 0")
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return v


@_kind("positive_float")
def positive_float(text: str) -> float:
    v = _number(text, float, "a positive number")
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


@_kind("nonneg_float")
def nonneg_float(text: str) -> float:
    v = _number(text, float, "a number >= 0")
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return v


@_kind("open_fraction")
def open_fraction(text: str) -> float:
    """A fraction strictly between 0 and 1 (``--val-frac``)."""
    v = _number(text, float, "a fraction between 0 and 1")
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1 (exclusive), got {text!r}")
    return v


@_kind("probability")
def probability(text: str) -> float:
    """A probability in [0, 1) (``--dropout``: 1 would drop everything)."""
    v = _number(text, float, "a probability in [0, 1)")
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1), got {text!r}")
    return v


@_kind("confidence")
def confidence(text: str) -> float:
    """A confidence threshold on a probability, in (0, 1]."""
    v = _number(text, float, "a number in (0, 1]")
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}")
    return v


@_kind("percentile")
def percentile(text: str) -> float:
    v = _number(text, float, "a percentile in (0, 100]")
    if not 0 < v <= 100:
        raise argparse.ArgumentTypeError(f"expected a percentile in (0, 100], got {text!r}")
    return v


@_kind("int_list")
def int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 256,128, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers like 256,128, got {text!r}")
    return values


@_kind("rate_list")
def rate_list(text: str) -> list[float]:
    """Comma-separated firing rates in [0, 1] (spikes per neuron per step), e.g. ``0.05`` or ``0.1,0.02``."""
    problem = f"expected comma-separated rates in [0, 1] like 0.1,0.02, got {text!r}"
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(problem) from None
    if not values or any(not 0 <= v <= 1 for v in values):  # also rejects nan
        raise argparse.ArgumentTypeError(problem)
    return values


@_kind("nonneg_float_list")
def nonneg_float_list(text: str) -> list[float]:
    """Comma-separated finite numbers >= 0, e.g. ``0,2,8``."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers >= 0 like 0,2,8, got {text!r}") from None
    if not values or any(not (0 <= v < math.inf) for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers >= 0 like 0,2,8, got {text!r}")
    return values


@_kind("word")
def word(text: str) -> str:
    """A non-empty word (an array key, a voice name)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a non-empty name")
    return text


def _missing(path: Path) -> str | None:
    if not path.exists():
        return f"{path}: no such file or folder"
    return None


@_kind("input_file")
def input_file(text: str) -> str:
    """An existing, non-empty regular file (a model, an event file)."""
    path = Path(text)
    problem = _missing(path)
    if problem is None and path.is_dir():
        problem = f"{path} is a folder; expected a file"
    if problem is None and not path.is_file():
        problem = f"{path} is not a regular file"
    if problem is None and path.stat().st_size == 0:
        problem = f"{path} is empty"
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


@_kind("run_dir")
def run_dir(text: str) -> str:
    """A run folder written by ``spikeflow train`` or ``convert``."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{path}: no such run folder")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a file; expected a run folder written by 'spikeflow train'")
    return text


@_kind("dataset")
def dataset(text: str) -> str:
    """A dataset name or an existing data file or folder (read later, when the command runs)."""
    from spikeflow.data.datasets import DATASETS

    if text in DATASETS:
        return text
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text!r} is neither a dataset ({', '.join(DATASETS)}) "
                                         f"nor an existing file or folder")
    if path.is_file() and path.stat().st_size == 0:
        raise argparse.ArgumentTypeError(f"{path} is empty")
    return text


def _creatable(path: Path) -> str | None:
    """Why ``path`` cannot be created, or None."""
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"{path}: {parent} is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{path}: folder {parent} is not writable"
    return None


@_kind("output_file")
def output_file(text: str) -> str:
    """A file to write (its folders are made as needed)."""
    path = Path(text)
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a file name")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a folder; expected a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise argparse.ArgumentTypeError(f"{path} is not writable")
    problem = _creatable(path)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


@_kind("json_output")
def json_output(text: str) -> str:
    """``-`` (stdout, when ``--json`` has no value) or a file to write."""
    return text if text == "-" else output_file(text)


@_kind("output_dir")
def output_dir(text: str) -> str:
    """A folder to write into (made as needed)."""
    path = Path(text)
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a folder name")
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a file; expected a folder")
    if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"folder {path} is not writable")
    problem = None if path.is_dir() else _creatable(path)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


# ---------------------------------------------------------------------------------------------
# The shared flags, so each is spelled, typed and explained once.


def add_json(p, what: str = "the result") -> None:
    p.add_argument("--json", nargs="?", const="-", default=None, type=json_output, metavar="PATH",
                   help=f"{what} as JSON, on stdout or written to PATH")


def add_threads(p) -> None:
    p.add_argument("--threads", type=positive_int, default=None,
                   help="compute threads (torch and numba) of this process (default: all cores)")


def add_progress(p) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_limit(p, what: str = "samples") -> None:
    p.add_argument("--limit", type=positive_int, default=None,
                   help=f"use only N {what}, spread evenly over the split (default: all)")


def add_batch_size(p, default: int = 64) -> None:
    p.add_argument("--batch-size", type=positive_int, default=default, help="samples per batch")


def add_time(p, T_help: str = "number of time steps", dt_help: str = "length of one time step in seconds") -> None:
    p.add_argument("--T", type=positive_int, default=None, help=T_help)
    p.add_argument("--dt", type=positive_float, default=None, help=dt_help)


def add_split(p, test_frac: bool = False) -> None:
    """``--split`` of a command that reads one part of the data (and ``--test-frac`` for event files)."""
    p.add_argument("--split", default="test", choices=["train", "test", "all"],
                   help="part of the data to read ('all': a whole event file or folder; a single file has no "
                        "test split of its own)")
    if test_frac:
        p.add_argument("--test-frac", type=open_fraction, default=None,
                       help="event files: the test split is this held-out fraction (as 'spikeflow train --test-frac')")


def add_stream_options(p) -> None:
    """The options of commands that run a model as a stream of events (``stream``, ``eval-time``)."""
    p.add_argument("--engine", default="event", choices=["event", "clockfree", "dense"], help="runtime engine")
    p.add_argument("--confidence", type=confidence, default=0.9, help="early-exit threshold on the top probability")
    p.add_argument("--decoder", default="auto", choices=["auto", "count", "max", "mean", "last"],
                   help="how output activity becomes class scores (auto: the one the model was trained with)")
    p.add_argument("--chunk-us", type=positive_int, default=10_000, help="events per update, as a time window in µs")
    p.add_argument("--dt", type=positive_float, default=None,
                   help="length of one time step in seconds (default: the model's)")
    p.add_argument("--T", type=positive_int, default=None,
                   help="time steps per recorded window (sets dt = window / T; default: the model's)")


def apply_threads(args) -> None:
    """Honour ``--threads`` for torch and numba (numba cannot go above its start-up maximum)."""
    n = getattr(args, "threads", None)
    if not n:
        return
    import torch

    torch.set_num_threads(n)
    try:
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except ImportError:  # pragma: no cover - numba is a dependency
        pass


def emit_json(target: str | None, obj) -> None:
    """Print ``obj`` as JSON (``target`` '-') or write it atomically to the file ``target``."""
    text = json.dumps(obj, indent=2, default=_jsonable)
    if target == "-":
        sys.stdout.write(text + "\n")
    elif target:
        from spikeflow.atomic import atomic_write_text

        atomic_write_text(target, text + "\n")


def _jsonable(v):
    try:
        import numpy as np

        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, np.ndarray):
            return v.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(v, Path):
        return str(v)
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def load_run(run_dir: str):
    """``(model, meta)`` from a run directory: its best model, else its latest checkpoint."""
    from spikeflow.train import checkpoint as ckpt
    from spikeflow.train.convert import rebuild
    from spikeflow.train.zoo import build

    run = Path(run_dir)
    if not run.is_dir():
        raise ConfigError(f"run directory {run} does not exist")
    if (run / ckpt.BEST).is_file():
        state, meta = ckpt.read_model_file(run / ckpt.BEST)
    else:
        full, meta = ckpt.read_checkpoint(run)
        state = full.get("model")
        if state is None:
            raise CheckpointError(f"checkpoint in {run} holds no 'model' state")
    spec = meta.get("spec")
    if not isinstance(spec, dict):
        raise CheckpointError(f"run {run}: the model metadata lacks its 'spec' (cannot rebuild the model)")
    model = rebuild(spec) if spec.get("converted") else build(spec)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"run {run}: weights do not fit the model spec: {str(err).splitlines()[0]}") from None
    return model, meta
