"""The ``spikeflow`` command: parses arguments, calls the library, prints.

Each sub-command lives in ``spikeflow.commands.<name>`` and exposes
``register(subparsers)``, which adds its parser and sets ``func(args) -> int``.

The flag vocabulary: every command that takes one of these ideas spells it this way. The argument
types that enforce it live in ``spikeflow.commands._common``.

==================  =====================================================================
``--data``          a dataset name (``spikeflow data list``) or a path to data files
``--split``         ``train``, ``test`` (or ``all``): the part of the data a command reads
``--val-frac``      part of the training split held out for validation, in (0, 1)
``--T``             number of time steps, an integer >= 1 (nothing else)
``--dt``            length of one time step in seconds, > 0
``--batch-size``    samples per batch
``--limit``         use N samples spread evenly over the split (absent: all)
``--threads``       compute threads (torch and numba) of this process
``--no-progress``   no progress bars
``--json [PATH]``   the result as JSON: on stdout, or written to PATH
``--out``           the output file or folder a command writes
``--plot``          a PNG a command draws
==================  =====================================================================

Bad input never ends in a traceback: a parse error, a ``SpikeflowError`` or an
``OSError`` (a file that cannot be read or written) becomes one line on stderr and
exit code 2. Any other exception is a bug in spikeflow: one line, exit code 1
(``SPIKEFLOW_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from spikeflow import __version__
from spikeflow.errors import SpikeflowError

# Sub-command modules, in the order ``spikeflow --help`` lists them.
COMMAND_MODULES = [
    "info",
    "data",
    "nir",
    "train",
    "eval",
    "convert",
    "export",
    "demo",
    "frontier",
    "sim",
    "stream",
    "eval_time",
    "hw",
    "control",
    "precompile",
]


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` for every option that has a default value."""

    def _get_help_string(self, action):
        if action.required or action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose help shows every default and whose errors are one line."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="spikeflow", description="Spiking neural networks: data, training, runtime, hardware.")
    parser.add_argument("--version", action="version", version=f"spikeflow {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"spikeflow.commands.{name}").register(sub)
    return parser


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv=None) -> int:
    from spikeflow.commands._common import apply_threads

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version or a parse error (already printed): its exit code
        return done.code if isinstance(done.code, int) else 2
    try:
        apply_threads(args)
        return int(args.func(args) or 0)
    except SpikeflowError as err:
        print(f"spikeflow: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except OSError as err:  # a file that cannot be read or written: name it
        where = f"{err.filename}: " if err.filename else ""
        print(f"spikeflow: error: {where}{_one_line(err.strerror or err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("spikeflow: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug: say so in one line unless asked for the traceback
        if os.environ.get("SPIKEFLOW_DEBUG"):
            raise
        print(f"spikeflow: internal error: {type(err).__name__}: {_one_line(err)} "
              "(set SPIKEFLOW_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
