"""benchmarks/hw_published.py: its committed results file matches a rerun, and its ratios are modelled / published."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("hw_published", ROOT / "benchmarks" / "hw_published.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def committed():
    return {r["case"]: r for r in json.loads((ROOT / "benchmarks/results/hw_published.json").read_text())["results"]}


@pytest.mark.parametrize("case", ["xylo-aloha", "loihi-kws"])
def test_results_file_matches_a_rerun(bench, committed, case):
    old = committed[case]
    new = bench.run_case(case, old["samples"])
    for key in ("counts_per_inference", "breakdown_j"):
        assert new[key] == pytest.approx(old[key], rel=1e-9)
    for a, b in zip(new["rows"], old["rows"]):
        assert a["quantity"] == b["quantity"] and a["modelled"] == pytest.approx(b["modelled"], rel=1e-9)
        assert a["ratio"] == pytest.approx(a["modelled"] / a["published"])


def test_rows_follow_from_the_counts_and_the_profile(bench, committed):
    from spikeflow.hardware import get_profile

    r = committed["xylo-aloha"]
    p, c = get_profile("xylo"), r["counts_per_inference"]
    dynamic = (c["synops"] * p.e_synop + c["updates_active"] * p.e_update_active
               + c["updates_inactive"] * p.e_update_inactive + c["steps"] * p.e_step)
    row = {x["quantity"]: x for x in r["rows"]}
    assert row["dynamic_energy_per_inference_j"]["modelled"] == pytest.approx(dynamic)
    assert row["dynamic_power_w"]["modelled"] == pytest.approx(dynamic / (r["steps_per_inference"] * r["dt_s"]))
    assert r["realtime"]["clock"] == "realtime" and r["afap"]["clock"] == "afap"
