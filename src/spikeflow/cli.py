"""The ``spikeflow`` command: parses arguments, calls the library, prints.

Each sub-command lives in ``spikeflow.commands.<name>`` and exposes
``register(subparsers)``, which adds its parser and sets ``func(args) -> int``.
A ``SpikeflowError`` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
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
    "sim",
    "stream",
    "eval_time",
    "hw",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spikeflow", description="Spiking neural networks: data, training, runtime, hardware."
    )
    parser.add_argument("--version", action="version", version=f"spikeflow {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"spikeflow.commands.{name}").register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except SpikeflowError as err:
        print(f"spikeflow: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("spikeflow: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
