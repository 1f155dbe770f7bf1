import pytest


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path_factory, monkeypatch):
    """Every test uses a temporary dataset cache, never the user's."""
    monkeypatch.setenv("SPIKEFLOW_CACHE", str(tmp_path_factory.getbasetemp() / "spikeflow-cache"))
    monkeypatch.setenv("SPIKEFLOW_PROGRESS", "0")
