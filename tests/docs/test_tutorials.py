"""The tutorials run, in their fast setting, and what they show holds.

Each tutorial in ``docs/tutorials`` is executed cell by cell exactly as ``make docs`` executes it
for the site (``docs/tools/render.py``); a cell that raises fails its test with the tutorial, the
cell and the error. Checks a tutorial prints (``<check>: True``) must come out ``True``.
"""

import argparse
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs" / "tools"))
import render  # noqa: E402

TUTORIALS = render.tutorial_paths()

# Checks each tutorial prints as "<check>: True" (deterministic by construction:
# exact round trips, identical spike trains, analytic bounds).
CHECKS = {
    "01_neuron": ["layer and hand-stepped neuron agree"],
    "03_event_cameras": ["identical events"],
    "06_ann_to_snn": ["within the bound lambda / T"],
    "07_nir_exchange": ["spikes identical after the round trip"],
    "10_large_networks": ["identical spike trains"],
}


def test_there_are_ten_tutorials_in_order():
    assert [p.name[:3] for p in TUTORIALS] == [f"{k:02d}_" for k in range(1, 11)]


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(path):
    page = render.run_tutorial(path, fast=True)
    text = "\n".join(page.outputs)
    assert page.title and not page.title.startswith(path.stem), "a tutorial starts with a '# title' text cell"
    assert text.strip(), "a tutorial prints what it shows"
    for check in CHECKS.get(path.stem, []):
        lines = [ln for ln in text.splitlines() if check in ln]
        assert lines, f"{path.name} no longer prints the check '{check}'"
        assert all(f"{check}: True" in ln for ln in lines), f"{path.name}: {lines}"
    # every figure is embedded in the page, and every embedded figure exists
    assert sorted(re.findall(r"\(img/([^)]+\.png)\)", page.markdown)) == sorted(page.images)
    for png in page.images.values():
        assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_failing_cell_fails_with_its_location(tmp_path):
    script = tmp_path / "99_broken.py"
    script.write_text("# %% [markdown]\n# # Broken\n\n# %%\nx = 1\n\n# %%\nraise ValueError('boom')\n")
    with pytest.raises(render.TutorialError, match=r"99_broken.py: cell 3 \(line 8\) raised ValueError: boom"):
        render.run_tutorial(script, fast=True)


def test_cells_and_markdown_are_split_as_jupytext_does():
    cells = render.parse_cells("# %% [markdown]\n# # Title\n#\n# text\n\n# %%\nimport os\nprint(1)\n")
    assert [(c.kind, c.line) for c in cells] == [("markdown", 2), ("code", 7)]
    assert render._markdown_text(cells[0].source) == "# Title\n\ntext"


def test_cli_reference_covers_every_command():
    from spikeflow.cli import build_parser

    page = render.cli_reference()
    names = []

    def walk(parser, prefix):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    names.append(f"{prefix} {name}")
                    walk(sub, f"{prefix} {name}")

    walk(build_parser(), "spikeflow")
    assert len(names) >= 12
    for name in names:
        assert f"`{name}`" in page, name
    assert "| `--T` |" in page  # the flag vocabulary table, read from spikeflow.cli's docstring


def test_site_navigation_lists_every_generated_page():
    nav = (ROOT / "mkdocs.yml").read_text()
    for path in TUTORIALS:
        assert f"tutorials/{path.stem}.md" in nav
    for uri, _title, _body in render.api_pages():
        assert uri in nav
    assert "reference/cli.md" in nav and "benchmarks.md" in nav


def test_commands_quoted_in_the_docs_exist_with_their_flags():
    """Every `spikeflow ...` the hand-written pages, the tutorials and the README quote (inline or as a
    line of a code block) names a real (sub-)command, and every --flag it uses is one of its options."""
    from spikeflow.cli import build_parser

    def sub(parser, name):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction) and name in action.choices:
                return action.choices[name]
        return None

    pages = [*TUTORIALS, *(ROOT / "docs").glob("*.md"), *(ROOT / "docs" / "concepts").glob("*.md"),
             ROOT / "docs" / "tutorials" / "index.md", ROOT / "README.md"]
    texts = [p.read_text() for p in pages]
    quoted = {m for t in texts for m in re.findall(r"`spikeflow ([^`]+)`", t.replace("\n# ", " "))}
    blocks = [b for t in texts for b in re.findall(r"^```[^\n]*\n(.*?)^```", t, re.S | re.M)]
    for block in blocks:  # code-block lines: "spikeflow train ... # comment ; spikeflow eval ..."
        for line in re.findall(r"^\s*(spikeflow [a-z-].*)$", block, re.M):
            quoted |= {c.strip().removeprefix("spikeflow ") for c in line.split("#")[0].split(";")
                       if c.strip().startswith("spikeflow ")}
    quoted = sorted(quoted)
    assert len(quoted) >= 20
    for cmd in quoted:
        words = cmd.split()
        if words[0].isupper():  # a placeholder: `spikeflow COMMAND --help`
            continue
        parser, i = build_parser(), 0
        while i < len(words) and (child := sub(parser, words[i])) is not None:
            parser, i = child, i + 1
        assert i > 0 or words[0].startswith("--"), f"`spikeflow {cmd}`: no such command"
        options = {s for a in parser._actions for s in a.option_strings}
        flags = re.findall(r"(?<![\w-])--[A-Za-z][\w-]*", " ".join(words[i:]))
        assert set(flags) <= options, f"`spikeflow {cmd}`: unknown {sorted(set(flags) - options)}"
