"""Peer libraries for interop tests: imported inside the tests, so the unit run never imports them,
and a peer missing from the interop venv fails the test instead of skipping it."""

import importlib

import pytest


def require(module: str):
    """The imported module, or a failing test that says which peer is missing and where it belongs."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        pytest.fail(f"interop test needs {module!r}, which cannot be imported here ({err}); run interop tests "
                    "with the peer venv's python (`make test-interop` builds .venv-interop)", pytrace=False)


def _peer_venvs():
    """benchmarks/peer_venvs.py, loaded by path (benchmarks/ is not a package)."""
    import importlib.util
    import os
    import sys

    if "peer_venvs" in sys.modules:
        return sys.modules["peer_venvs"]
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "peer_venvs.py")
    spec = importlib.util.spec_from_file_location("peer_venvs", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["peer_venvs"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def venv_python(key: str) -> str:
    """The interpreter of a peer simulator's own venv (``"brian2"``, ``"lava"``), created on first use;
    when no Python fits to create it from, the test fails with that one-line message instead of skipping."""
    mod = _peer_venvs()
    try:
        return mod.VENVS[key].ensure()
    except mod.PeerUnavailable as err:
        message = str(err)
    pytest.fail(message, pytrace=False)  # outside the except: the report is that one line
