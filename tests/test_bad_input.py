"""Bad input to every ``spikeflow`` command: exit code 2 and one line that names the argument or file.

The cases are derived from the argparse parsers themselves: every argument of every sub-command
declares a ``kind`` through its type function (``spikeflow.commands._common``) or has ``choices``,
and each kind has invalid values below. A flag added later is covered without editing this file,
and a flag whose kind has no invalid values here fails ``test_every_argument_has_a_known_kind``.

Two tables:
- values the parser must refuse (zero, negative, NaN, out of range, wrong type, missing and
  unwritable paths, a folder for a file ...), checked without running the command;
- files of the wrong kind (text, a NIR model as data, data as a model, an empty folder as a run)
  and a model and data that do not fit, which the command finds when it reads them.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys

import numpy as np
import pytest

import spikeflow.cli as cli
from spikeflow.data.events import Events, make_events_array
from spikeflow.data.formats import write_events

MISSING = "{tmp}/no-such-file"
TEXT = "{tmp}/notes.txt"
EMPTY = "{tmp}/empty.bin"
FOLDER = "{tmp}/folder"
UNDER_FILE = "{tmp}/notes.txt/sub"  # a path whose parent is a file: cannot be created
NOT_A_FOLDER = "/dev/null/x"

# invalid values of each kind of argument (the lines it is compared with name the argument)
BAD = {
    "positive_int": ["0", "-3", "1.5", "abc", ""],
    "nonneg_int": ["-1", "2.5", "x"],
    "positive_float": ["0", "-1", "nan", "inf", "x"],
    "nonneg_float": ["-0.5", "nan", "-inf", "x"],
    "open_fraction": ["0", "1", "-0.1", "nan", "x"],
    "probability": ["1", "2", "-0.1", "nan"],
    "confidence": ["0", "1.5", "nan", "x"],
    "percentile": ["0", "101", "nan"],
    "int_list": ["0", "a,b", "16,-2", ","],
    "rate_list": ["-0.1", "1.5", "0.1,x", ",", "nan"],
    "nonneg_float_list": ["-1", "2,-0.5", "a", ",", "nan", "inf"],
    "word": ["", " "],
    "input_file": [MISSING, FOLDER, EMPTY],
    "run_dir": [MISSING, TEXT],
    "dataset": ["no-such-dataset", MISSING, EMPTY],
    "output_file": [FOLDER, UNDER_FILE, NOT_A_FOLDER, ""],
    "json_output": [FOLDER, UNDER_FILE, NOT_A_FOLDER],
    "output_dir": [TEXT, UNDER_FILE, NOT_A_FOLDER, ""],
}
CHOICE = "no-such-choice"

# a value of each kind that the parser accepts, for the arguments a case does not test
GOOD = {
    "input_file": TEXT, "run_dir": FOLDER, "dataset": "digits", "output_file": "{tmp}/out/file.x",
    "json_output": "-", "output_dir": "{tmp}/out", "positive_int": "1", "nonneg_int": "0", "positive_float": "1",
    "word": "w",
}


def _walk(parser, prefix=()):
    """``(command words, leaf parser)`` for every sub-command."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix, parser
    for action in subs:
        for name, sub in action.choices.items():
            yield from _walk(sub, prefix + (name,))


def _arguments(parser):
    return [a for a in parser._actions if not isinstance(a, (argparse._HelpAction, argparse._VersionAction,
                                                              argparse._SubParsersAction))]


def _kind(action) -> str | None:
    if action.nargs == 0:
        return "flag"
    if action.choices is not None:
        return "choice"
    return getattr(action.type, "kind", None)


def _label(action) -> str:
    return action.option_strings[0] if action.option_strings else action.dest


def _base_argv(cmd, parser, skip):
    """The command with a valid value for each required argument other than ``skip``."""
    argv, positional = list(cmd), []
    for a in _arguments(parser):
        if a is skip or not (a.required or not a.option_strings):
            continue
        value = GOOD[_kind(a)] if _kind(a) != "choice" else str(a.choices[0])
        if a.option_strings:
            argv += [a.option_strings[0], value]
        else:
            positional.append((a, value))
    return argv, positional


def parse_cases():
    for cmd, parser in _walk(cli.build_parser()):
        for a in _arguments(parser):
            kind = _kind(a)
            values = [CHOICE] if kind == "choice" else BAD.get(kind, [])
            for value in values:
                yield pytest.param(cmd, _label(a), value, id=f"{' '.join(cmd)} {_label(a)}={value!r}")


def _fill(argv, tmp_path):
    return [v.replace("{tmp}", str(tmp_path)) for v in argv]


@pytest.fixture
def files(tmp_path):
    (tmp_path / "notes.txt").write_text("some notes, not a model or data\n")
    (tmp_path / "empty.bin").write_bytes(b"")
    (tmp_path / "folder").mkdir()
    return tmp_path


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, f"expected one line on stderr, got {err}"
    assert re.match(r"spikeflow( [\w-]+)*: error: ", err[0]), err[0]
    assert "Traceback" not in err[0]
    return err[0]


def test_every_argument_has_a_known_kind():
    """A new flag must take a typed argument from ``commands._common`` (or choices, or be a switch)."""
    unknown = []
    for cmd, parser in _walk(cli.build_parser()):
        for a in _arguments(parser):
            kind = _kind(a)
            if kind not in BAD and kind not in ("choice", "flag"):
                unknown.append(f"{' '.join(cmd)} {_label(a)} (kind {kind})")
    assert not unknown, unknown


def test_help_shows_every_default(capsys):
    for cmd, parser in _walk(cli.build_parser()):
        assert cli.main([*cmd, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        for a in _arguments(parser):
            assert a.help, f"{' '.join(cmd)} {_label(a)} has no help text"
            if a.option_strings and a.default not in (None, False) and not a.required:
                assert f"(default: {a.default})" in text, f"{' '.join(cmd)} {_label(a)}: default not shown"


PARSE_CASES = list(parse_cases())


@pytest.mark.parametrize("cmd, label, value", PARSE_CASES)
def test_parser_refuses(cmd, label, value, files, capsys, monkeypatch):
    parser = cli.build_parser()
    leaf = dict(_walk(parser))[cmd]

    def must_not_run(args):
        raise AssertionError(f"{' '.join(cmd)} ran with {label}={value!r}")

    leaf.set_defaults(func=must_not_run)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    action = next(a for a in _arguments(leaf) if _label(a) == label)
    argv, positional = _base_argv(cmd, leaf, skip=action)
    value = value.replace("{tmp}", str(files))
    if action.option_strings:
        argv += [label, value]
    else:
        positional.append((action, value))
    order = [a for a in _arguments(leaf) if not a.option_strings]
    positional.sort(key=lambda p: order.index(p[0]))
    argv = _fill(argv, files) + [_fill([v], files)[0] for _, v in positional]
    assert cli.main(argv) == 2
    line = _one_error_line(capsys)
    assert f"argument {label}" in line or f"argument {'/'.join(action.option_strings)}" in line, line


def test_case_count():
    """The table reaches every sub-command (the closing figure of the bad-input test)."""
    commands = {c for c, _ in _walk(cli.build_parser())}
    covered = {p.values[0] for p in PARSE_CASES}
    assert commands - {("hw", "chips"), ("info",)} <= covered
    assert len(PARSE_CASES) > 300


# ---------------------------------------------------------------------------------------------
# Files of the wrong kind, and a model and data that do not fit: found when the command runs.


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small digits run, its NIR export, an event recording and an input array."""
    d = tmp_path_factory.mktemp("trained")
    assert cli.main(["train", "--data", "digits", "--model", "mlp", "--hidden", "16", "--epochs", "1", "--T", "4",
                     "--out", str(d / "run"), "--no-progress"]) == 0
    assert cli.main(["export", str(d / "run"), "--nir", str(d / "m.nir")]) == 0
    t = np.arange(40, dtype=np.int64) * 1000
    write_events(d / "ev.npz", Events(make_events_array(np.arange(40) % 64, 0, t, 0), (64, 1, 1), label=3))
    np.savez(d / "in.npz", spikes=np.zeros((4, 1, 64), np.float32))
    (d / "notes.txt").write_text("not a model, not data\n")
    (d / "empty-run").mkdir()
    (d / "empty-folder").mkdir()
    return d


RUNTIME_CASES = [
    # a text file where a model, data or a run is expected
    (["nir", "info", "{d}/notes.txt"], "notes.txt"),
    (["nir", "run", "{d}/notes.txt", "--input", "{d}/in.npz"], "notes.txt"),
    (["nir", "run", "{d}/m.nir", "--input", "{d}/notes.txt"], "notes.txt"),
    (["stream", "{d}/notes.txt", "--input", "{d}/ev.npz"], "notes.txt"),
    (["stream", "{d}/m.nir", "--input", "{d}/notes.txt"], "notes.txt"),
    (["eval-time", "{d}/notes.txt", "--data", "digits"], "notes.txt"),
    (["hw", "compile", "{d}/notes.txt"], "notes.txt"),
    (["hw", "run", "{d}/notes.txt", "--data", "digits"], "notes.txt"),
    (["data", "show", "{d}/notes.txt"], "notes.txt"),
    (["data", "convert", "{d}/notes.txt", "{d}/out.npz"], "notes.txt"),
    (["train", "--data", "{d}/notes.txt", "--out", "{d}/r1"], "notes.txt"),
    (["convert", "--data", "{d}/notes.txt", "--out", "{d}/r2"], "notes.txt"),
    (["eval", "{d}/run", "--data", "{d}/notes.txt"], "notes.txt"),
    (["hw", "run", "{d}/m.nir", "--data", "{d}/notes.txt"], "notes.txt"),
    (["eval-time", "{d}/m.nir", "--data", "{d}/notes.txt"], "notes.txt"),
    # a NIR model where data are expected, data where a model is expected
    (["nir", "run", "{d}/m.nir", "--input", "{d}/m.nir"], "m.nir"),
    (["stream", "{d}/m.nir", "--input", "{d}/m.nir"], "m.nir"),
    (["train", "--data", "{d}/m.nir", "--out", "{d}/r3"], "m.nir"),
    (["hw", "run", "{d}/m.nir", "--data", "{d}/m.nir"], "m.nir"),
    (["eval-time", "{d}/m.nir", "--data", "{d}/m.nir"], "m.nir"),
    (["nir", "info", "{d}/ev.npz"], "ev.npz"),
    (["stream", "{d}/ev.npz", "--input", "{d}/ev.npz"], "ev.npz"),
    (["hw", "compile", "{d}/in.npz"], "in.npz"),
    (["hw", "compile", "{d}/m.nir", "--chip", "no-such-chip"], "no-such-chip"),
    # a folder with no run in it; data folders with nothing to read
    (["eval", "{d}/empty-run"], "empty-run"),
    (["export", "{d}/empty-run", "--nir", "{d}/x.nir"], "empty-run"),
    (["convert", "--data", "digits", "--ann", "{d}/empty-run", "--out", "{d}/r4"], "empty-run"),
    (["train", "--data", "{d}/empty-folder", "--out", "{d}/r5"], "empty-folder"),
    # a model and data that do not fit: another geometry, event data for an image model, another sensor
    (["eval", "{d}/run", "--data", "mnist5k"], "(1, 28, 28)"),
    (["nir", "run", "{d}/m.nir", "--data", "mnist5k", "--limit", "2"], "(1, 28, 28)"),
    (["hw", "run", "{d}/m.nir", "--data", "nmnist5k", "--limit", "2"], "event data"),
    (["eval-time", "{d}/m.nir", "--data", "nmnist5k", "--limit", "2"], "event data"),
    (["nir", "run", "{d}/m.nir", "--input", "{d}/ev.npz", "--key", "nope"], "nope"),
    (["stream", "{d}/m.nir", "--input", "{d}/ev.npz", "--index", "5"], "--index"),
    # an ANN where a spiking model is expected, a spiking run where an ANN is expected
    (["convert", "--data", "digits", "--ann", "{d}/run", "--out", "{d}/r6"], "spiking"),
]


@pytest.mark.parametrize("argv, words", RUNTIME_CASES, ids=[" ".join(c[0][:3]) + " " + c[1] for c in RUNTIME_CASES])
def test_wrong_files_are_one_line_errors(trained, argv, words, capsys):
    capsys.readouterr()
    argv = [a.replace("{d}", str(trained)) for a in argv]
    assert cli.main(argv) == 2
    line = _one_error_line(capsys)
    assert words in line, line


def test_the_installed_command_prints_no_traceback(tmp_path):
    """The real entry point (not only ``main``): parse and run-time errors are one line, exit 2."""
    (tmp_path / "notes.txt").write_text("hello\n")
    for argv in (["train", "--data", "digits", "--out", str(tmp_path / "r"), "--dropout", "2"],
                 ["nir", "run", str(tmp_path / "notes.txt"), "--input", str(tmp_path / "notes.txt")],
                 ["sim", "cuba", "--neurons", "-5"]):
        r = subprocess.run([sys.executable, "-m", "spikeflow", *argv], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "'-5'" in lines[0]  # the value as given, not a value derived from it


def test_json_goes_to_stdout_alone_or_to_a_file(tmp_path, capsys):
    assert cli.main(["sim", "cuba", "--neurons", "400", "--duration", "0.02", "--json", "--no-progress"]) == 0
    on_stdout = json.loads(capsys.readouterr().out)
    assert cli.main(["sim", "cuba", "--neurons", "400", "--duration", "0.02", "--json", str(tmp_path / "r.json"),
                     "--no-progress"]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["spikes"] == on_stdout["spikes"]
    assert "spikes" in capsys.readouterr().out  # the text report when JSON goes to a file
