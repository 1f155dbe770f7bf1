"""The Lava interpreter for the tests that run Lava (``benchmarks/.venv-lava``).

Found or created by ``benchmarks/lava_venv.py``; when no Python 3.10 exists to create it from, the
test fails with that one-line message (what is missing, how to get it) rather than skipping.
"""

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _lava_venv():
    spec = importlib.util.spec_from_file_location("lava_venv", os.path.join(ROOT, "benchmarks", "lava_venv.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def lava_python() -> str:
    mod = _lava_venv()
    try:
        return mod.ensure_lava_venv()
    except mod.LavaUnavailable as err:
        message = str(err)
    pytest.fail(message, pytrace=False)  # outside the except: the report is that one line
