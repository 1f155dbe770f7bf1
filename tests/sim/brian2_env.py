"""The Brian2 interpreter for the tests that run Brian2 (``benchmarks/.venv-brian2``).

Found or created by ``benchmarks/sim.py``; when no Python >= 3.13 exists to create it from, the
test fails with that one-line message (what is missing, how to get it) rather than skipping.
"""

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _bench_sim():
    spec = importlib.util.spec_from_file_location("bench_sim", os.path.join(ROOT, "benchmarks", "sim.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def brian2_python() -> str:
    mod = _bench_sim()
    try:
        return mod.ensure_brian2_venv()
    except mod.Brian2Unavailable as err:
        message = str(err)
    pytest.fail(message, pytrace=False)  # outside the except: the report is that one line
