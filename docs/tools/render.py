"""Builds the generated parts of the documentation site.

* ``run_tutorial(path)`` executes a tutorial script (jupytext "percent" format: ``# %%`` starts a
  code cell, ``# %% [markdown]`` a text cell whose lines are ``# ``-prefixed Markdown) cell by
  cell in one namespace, and returns a ``Rendered`` page: Markdown with each code cell, its
  printed output and the figures it drew (PNG bytes). A cell that raises makes it fail with the
  tutorial, cell number and error, so a broken tutorial breaks the test suite and the site build.
* ``cli_reference()`` is the Markdown of every ``spikeflow`` command, read from
  ``spikeflow.cli.build_parser()`` (the parser the command line uses, so it cannot drift).
* ``api_pages()`` lists the API reference pages (one per public package, rendered by mkdocstrings).

Used by ``docs/tools/hooks.py`` (``mkdocs build``) and ``tests/docs/test_tutorials.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = ROOT / "docs" / "tutorials"
FAST_ENV = "SPIKEFLOW_FAST"

# Public packages and the modules users call directly; every name in their ``__all__`` (or, without
# one, every public module-level function and class defined there) is documented and must have a docstring.
API_MODULES = [
    ("spikeflow.neurons", "Neuron models"),
    ("spikeflow.neurons.lif", "LIF"),
    ("spikeflow.neurons.if_", "IF"),
    ("spikeflow.neurons.li", "LI (readout)"),
    ("spikeflow.neurons.alif", "Adaptive LIF"),
    ("spikeflow.neurons.cuba", "Current-based LIF"),
    ("spikeflow.neurons.izhikevich", "Izhikevich"),
    ("spikeflow.neurons.expsyn", "LIF with exponential synapses"),
    ("spikeflow.surrogate", "Surrogate gradients"),
    ("spikeflow.kernels", "Kernels"),
    ("spikeflow.nn", "Layers (spikeflow.nn)"),
    ("spikeflow.ir", "NIR (spikeflow.ir)"),
    ("spikeflow.runtime", "Engines and streaming"),
    ("spikeflow.hardware", "Hardware model"),
    ("spikeflow.data", "Data"),
    ("spikeflow.data.encoders", "Encoders"),
    ("spikeflow.data.decoders", "Decoders"),
    ("spikeflow.data.transforms", "Tonic transforms"),
    ("spikeflow.data.dvs", "DVS emulator"),
    ("spikeflow.data.cochlea", "Cochlea emulator"),
    ("spikeflow.data.formats", "File formats"),
    ("spikeflow.train", "Training"),
    ("spikeflow.train.convert", "ANN to SNN conversion"),
    ("spikeflow.train.sparsity", "Training for fewer operations"),
    ("spikeflow.train.frontier", "Accuracy-energy frontier"),
    ("spikeflow.sim", "Large networks (spikeflow.sim)"),
    ("spikeflow.metrics", "Metrics"),
    ("spikeflow.metrics.energy", "Energy model"),
    ("spikeflow.viz", "Plots and reports"),
    ("spikeflow.control", "Closed-loop control"),
    ("spikeflow.errors", "Errors"),
]


def tutorial_paths() -> list[Path]:
    """The tutorial scripts, in reading order (their names start with a two-digit number)."""
    return sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))


# --- tutorials ------------------------------------------------------------------------------------------------


class TutorialError(RuntimeError):
    """A tutorial cell raised; the message names the tutorial, the cell and the error."""


@dataclass
class Cell:
    kind: str  # "code" or "markdown"
    source: str
    line: int  # 1-based line of the cell's first line in the script


@dataclass
class Rendered:
    name: str  # file stem, e.g. "01_neuron"
    title: str
    markdown: str
    images: dict = field(default_factory=dict)  # file name -> PNG bytes
    seconds: float = 0.0
    outputs: list = field(default_factory=list)  # printed text of each code cell


def parse_cells(text: str) -> list[Cell]:
    """Splits a percent-format script into cells (a leading docstring-free header before the first
    ``# %%`` is a code cell)."""
    cells: list[Cell] = []
    kind, buf, start = "code", [], 1
    for i, line in enumerate(text.splitlines(), 1):
        m = re.match(r"^# %%(.*)$", line)
        if m:
            if "".join(buf).strip():
                cells.append(Cell(kind, "\n".join(buf).strip("\n"), start))
            kind = "markdown" if "[markdown]" in m.group(1) else "code"
            buf, start = [], i + 1
        else:
            buf.append(line)
    if "".join(buf).strip():
        cells.append(Cell(kind, "\n".join(buf).strip("\n"), start))
    return cells


def _markdown_text(source: str) -> str:
    lines = []
    for line in source.splitlines():
        if line.startswith("# "):
            lines.append(line[2:])
        elif line.strip() == "#":
            lines.append("")
        else:
            lines.append(line)
    return "\n".join(lines)


def _figures() -> list:
    import matplotlib.pyplot as plt

    return [plt.figure(n) for n in plt.get_fignums()]


def run_tutorial(path, fast: bool | None = None) -> Rendered:
    """Executes one tutorial and renders it (see the module docstring). ``fast`` sets ``SPIKEFLOW_FAST``
    for the run (``None``: leave the environment as it is)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    path = Path(path)
    cells = parse_cells(path.read_text())
    old_env = os.environ.get(FAST_ENV)
    if fast is not None:
        os.environ[FAST_ENV] = "1" if fast else "0"
    old_show, old_cwd = plt.show, os.getcwd()
    plt.show = lambda *a, **k: None
    plt.close("all")
    namespace = {"__name__": "__main__", "__file__": str(path)}
    parts, images, outputs = [], {}, []
    title = path.stem
    t0 = time.perf_counter()
    try:
        for k, cell in enumerate(cells, 1):
            if cell.kind == "markdown":
                md = _markdown_text(cell.source)
                if k == 1 and md.lstrip().startswith("# "):
                    title = md.lstrip().splitlines()[0][2:].strip()
                parts.append(md)
                continue
            parts.append(f"```python\n{cell.source}\n```")
            buf = io.StringIO()

            def show_warning(message, category, filename, lineno, file=None, line=None, buf=buf):
                buf.write(f"{category.__name__}: {message}\n")

            try:
                code = compile(cell.source + "\n", f"{path.name} (cell {k}, line {cell.line})", "exec")
                with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf), warnings.catch_warnings():
                    warnings.simplefilter("default")
                    warnings.showwarning = show_warning  # warnings are part of what a reader sees
                    exec(code, namespace)
            except Exception as err:
                tb = traceback.format_exc(limit=-3)
                raise TutorialError(f"{path.name}: cell {k} (line {cell.line}) raised "
                                    f"{type(err).__name__}: {err}\n{tb}") from err
            out = buf.getvalue()
            outputs.append(out)
            if out.strip():
                out = re.sub(r"[^\n]*\r", "", out)  # keep only the last state of progress lines
                parts.append(f'```text title="output"\n{out.rstrip()}\n```')
            for fig in _figures():
                png = io.BytesIO()
                fig.savefig(png, format="png", dpi=90, bbox_inches="tight")
                name = f"{path.stem}-{len(images) + 1}.png"
                images[name] = png.getvalue()
                parts.append(f"![figure {len(images)} of {title}](img/{name})")
            plt.close("all")
    finally:
        plt.show = old_show
        plt.close("all")
        os.chdir(old_cwd)
        if fast is not None:
            if old_env is None:
                os.environ.pop(FAST_ENV, None)
            else:
                os.environ[FAST_ENV] = old_env
    seconds = time.perf_counter() - t0
    mode = "fast setting (SPIKEFLOW_FAST=1)" if os.environ.get(FAST_ENV, "0") == "1" or fast else "full setting"
    source = f"[`docs/tutorials/{path.name}`]({path.name})"
    footer = (f"\n\n---\n\n*The outputs and figures above come from running this script for the site build "
              f"({mode}, {seconds:.1f} s). Source: {source}; run it yourself with "
              f"`python docs/tutorials/{path.name}` (add `SPIKEFLOW_FAST=1` for the quick version).*\n")
    return Rendered(path.stem, title, "\n\n".join(parts) + footer, images, seconds, outputs)


# --- CLI reference ------------------------------------------------------------------------------------------


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def _vocabulary_table() -> str:
    """The flag vocabulary table of ``spikeflow.cli``'s docstring, as Markdown."""
    import spikeflow.cli as cli

    rows, inside = [], 0
    for line in (cli.__doc__ or "").splitlines():
        if line.startswith("====="):
            inside += 1
            continue
        if inside == 1 and line.strip():
            m = re.match(r"^(``.+?``)\s{2,}(.*)$", line)
            if m:
                rows.append((m.group(1).replace("``", "`"), m.group(2).replace("``", "`")))
    if not rows:
        return ""
    body = "\n".join(f"| {a} | {b} |" for a, b in rows)
    return f"| flag | meaning |\n|---|---|\n{body}\n"


def cli_reference() -> str:
    """Markdown for every command and sub-command of ``spikeflow`` (help text as argparse prints it)."""
    from spikeflow.cli import build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps help at $COLUMNS: fixed, so the page does not depend on the terminal
    try:
        root = build_parser()
        out = ["# Command-line reference", "",
               "Generated from the `spikeflow` command's own argument parsers "
               "(`spikeflow.cli.build_parser()`) every time this site is built, so it always matches "
               "`spikeflow COMMAND --help`.", "",
               "## One vocabulary", "",
               "Every command spells the same idea the same way:", "", _vocabulary_table(),
               "Bad input (a zero, negative or NaN value, a missing or unwritable path, a file of the wrong "
               "kind) is one line on stderr naming the argument or file, exit code 2.", "",
               "## `spikeflow`", "", "```text", root.format_help().rstrip(), "```", ""]

        def walk(parser, prefix, depth):
            for name, sub in _subparsers(parser):
                full = f"{prefix} {name}"
                out.extend([f"{'#' * min(depth, 4)} `{full}`", "", "```text", sub.format_help().rstrip(), "```", ""])
                walk(sub, full, depth + 1)

        walk(root, "spikeflow", 2)
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return "\n".join(out)


# --- API reference ------------------------------------------------------------------------------------------


def api_pages() -> list[tuple[str, str, str]]:
    """``(page path, title, markdown)`` of each API reference page."""
    pages = []
    for module, title in API_MODULES:
        body = (f"# {title}\n\n`{module}`\n\n::: {module}\n    options:\n      show_root_heading: false\n"
                f"      show_root_toc_entry: false\n")
        pages.append((f"api/{module.removeprefix('spikeflow.').replace('.', '-')}.md", title, body))
    return pages


def main(argv=None) -> int:
    """``python docs/tools/render.py [--fast] [NAME...]``: runs tutorials and prints their timings."""
    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--fast", action="store_true")
    p.add_argument("names", nargs="*")
    a = p.parse_args(argv)
    total = 0.0
    for path in tutorial_paths():
        if a.names and not any(n in path.stem for n in a.names):
            continue
        r = run_tutorial(path, fast=a.fast)
        total += r.seconds
        print(f"{path.name}: {r.seconds:.1f} s, {len(r.images)} figures")
    print(f"total {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    sys.exit(main())
