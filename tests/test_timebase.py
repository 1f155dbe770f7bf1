"""A model's time base: dictionaries, NIR metadata, overrides and the data-fit check."""

import nir
import numpy as np
import pytest

from spikeflow.errors import ConfigError
from spikeflow.timebase import TimeBase, decoder_for_loss

EVENTS = TimeBase(dt=0.05, T=6, encoding="events", input_shape=(2, 34, 34), classes=10, decoder="max",
                  duration_us=300_000, data="nmnist5k")
STATIC = TimeBase(dt=1e-3, T=8, encoding="rate", input_shape=(1, 8, 8), classes=10, decoder="count", data="digits")


@pytest.mark.parametrize("tb", [EVENTS, STATIC])
def test_dict_roundtrip(tb):
    d = tb.to_dict()
    assert TimeBase.from_dict(d) == tb
    assert ("duration_us" in d) == tb.is_events  # unset fields are left out


@pytest.mark.parametrize("tb", [EVENTS, STATIC])
def test_nir_metadata_roundtrip_through_spikeflow_and_nir_readers(tb, tmp_path):
    from spikeflow import ir

    graph = nir.NIRGraph(nodes={"input": nir.Input(np.array([4])), "fc": nir.Linear(np.eye(4)),
                                "output": nir.Output(np.array([4]))},
                         edges=[("input", "fc"), ("fc", "output")], metadata=tb.to_nir_metadata())
    path = tmp_path / "m.nir"
    ir.write(graph, path)
    assert TimeBase.from_nir_metadata(ir.read_graph(path).metadata) == tb
    assert TimeBase.from_nir_metadata(nir.read(str(path)).metadata) == tb  # nir's own reader
    assert ir.graph_dt(ir.read_graph(path)) == tb.dt  # the graph's dt is the step width


def test_file_without_time_base_reads_as_none():
    assert TimeBase.from_nir_metadata({"dt": 1e-3}) is None
    assert TimeBase.from_nir_metadata({}) is None


def test_overrides_keep_the_event_window():
    assert EVENTS.with_overrides(T=3).dt == pytest.approx(0.1)  # 300 ms in 3 bins
    tb = EVENTS.with_overrides(dt=0.025)
    assert tb.T == 12 and tb.window_us == 300_000
    assert STATIC.with_overrides(T=20) == TimeBase(**{**STATIC.to_dict(), "T": 20, "input_shape": (1, 8, 8)})
    with pytest.raises(ConfigError, match="--dt 0.01 and --T 6 span 60 ms"):
        EVENTS.with_overrides(dt=0.01, T=6)


def test_fit_check_names_what_differs():
    with pytest.raises(ConfigError, match=r"shape \(1, 28, 28\) but the model takes \(1, 8, 8\)"):
        STATIC.check_fits((1, 28, 28), 10, "--data mnist5k")
    with pytest.raises(ConfigError, match="20 classes but the model has 10 outputs"):
        STATIC.check_fits((1, 8, 8), 20, "--data x")
    STATIC.check_fits((1, 8, 8), 10, "--data digits")  # fits
    STATIC.check_fits((1, 8, 8), 4, "--data digits")  # fewer classes are fine


@pytest.mark.parametrize("field,value,words", [("dt", 0.0, "'dt'"), ("T", 0, "'T'"), ("encoding", "latency", "one of"),
                                               ("decoder", "vote", "'decoder'"), ("input_shape", (), "'input_shape'")])
def test_invalid_fields_are_config_errors(field, value, words):
    d = {**EVENTS.to_dict(), "input_shape": EVENTS.input_shape, field: value}
    with pytest.raises(ConfigError, match=words):
        TimeBase(**d)


def test_decoder_follows_the_training_loss():
    assert [decoder_for_loss(k) for k in ("ce_max", "ce_mean", "ce_last", "ce_count")] == ["max", "mean", "last",
                                                                                            "count"]
