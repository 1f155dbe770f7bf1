import subprocess
import sys

from spikeflow import __version__
from spikeflow.cli import main


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as e:
        assert e.code == 0
    assert __version__ in capsys.readouterr().out


def test_info_lists_backends_and_threads(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "reference=yes" in out and "threads" in out


def test_unknown_command_exits_nonzero():
    r = subprocess.run([sys.executable, "-m", "spikeflow", "no-such-command"], capture_output=True, text=True)
    assert r.returncode == 2


def test_building_the_parser_imports_no_torch():
    """``spikeflow COMMAND --help`` and parse errors answer without loading torch (fast, even on a busy machine)."""
    code = "import sys; from spikeflow.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr
