"""Loader options: event datasets are cut into time bins, images and sequences need none."""

from spikeflow.data import DATASETS
from spikeflow.train.datasets import DEFAULT_BINS, data_options


def test_event_datasets_get_time_bins():
    events = [name for name, info in DATASETS.items() if info["kind"] == "events"]
    assert "nmnist5k" in events
    for name in events:
        assert data_options(name) == {"T": DEFAULT_BINS[name]}
        assert data_options(name, 12) == {"T": 12}


def test_static_and_sequence_datasets_need_no_options():
    assert data_options("mnist5k", 4) == {}
    assert data_options("fsdd") == {}
    assert data_options("/some/file.h5", 8) == {}  # a file's own format decides
