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
