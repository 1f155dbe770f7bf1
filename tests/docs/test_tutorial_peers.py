"""Tutorial 7's peer half: with snnTorch and Norse installed (the interop venv), the tutorial runs
both libraries and their spikes match spikeflow's."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs" / "tools"))
import render  # noqa: E402

pytestmark = pytest.mark.interop


def test_nir_tutorial_runs_the_peers():
    import norse  # noqa: F401  (the interop venv has both peers; a missing one fails, it does not skip)
    import snntorch  # noqa: F401

    page = render.run_tutorial(ROOT / "docs" / "tutorials" / "07_nir_exchange.py", fast=True)
    text = "\n".join(page.outputs)
    assert "Norse runs spikeflow's file with the same spikes as spikeflow's Euler import: True" in text
    assert "spikeflow runs snnTorch's file with snnTorch's spikes: True" in text
    assert "recognised as a snntorch file" in text
