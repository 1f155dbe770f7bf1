"""benchmarks/peers.py and its workers: the same-function check, the per-run ratios, and the spyx and
torch.compile workers end to end at ``--tiny`` size, whose hidden spike counts must equal spikeflow's."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


@pytest.fixture(scope="module")
def peers():
    sys.path.insert(0, str(BENCH))  # peers.py imports its sibling modules
    try:
        spec = importlib.util.spec_from_file_location("peers_bench", BENCH / "peers.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCH))


def _run(median_ms, step_mb=10.0, hidden=(100.0,), first=None):
    return dict(times_ms=[median_ms] * 3, batch=4, peak_rss_mb=300.0, step_peak_rss_mb=100.0 + step_mb,
                rss_before_mb=100.0, other_load=0.0, loaded=False, version="v", hidden_spikes_first=list(hidden),
                first_step_s=first)


def test_timed_run_keeps_going_for_the_minimum_seconds(peers):
    """Steps of 10 ms: at least 5 warm-up steps fill 50 ms, at least 3 timed ones 30 ms; the step
    indices run on from the warm-up without a gap, and the step counts hold when the times are short."""
    import time

    from bench_proc import timed_run

    seen = []

    def step(i):
        seen.append(i)
        time.sleep(0.01)

    res = timed_run(step, 1, 1, warmup_s=0.05, steps_s=0.03)
    assert len(res["warmup_ms"]) >= 5 and len(res["times_ms"]) >= 3
    assert seen == list(range(len(res["warmup_ms"]) + len(res["times_ms"])))
    seen.clear()
    res = timed_run(step, 2, 3)
    assert (len(res["warmup_ms"]), len(res["times_ms"])) == (2, 3) and seen == [0, 1, 2, 3, 4]


def test_count_check_flags_only_beyond_the_tolerance(peers):
    ref = [10000.0, 2000.0]
    assert not peers.count_differs("spyx", [10000.0, 2000.0], ref)
    assert not peers.count_differs("spyx", [10010.0, 2000.0], ref)  # 0.1 %: at the tolerance
    assert peers.count_differs("spyx", [10000.0, 2003.0], ref)  # 0.15 % in the second layer
    assert peers.count_differs("torch.compile", [10000.0], ref)  # a layer missing
    assert not peers.count_differs("snntorch", [9100.0, 1900.0], ref)  # its own reset convention: 10 %
    assert peers.count_differs("snntorch", [8900.0, 2000.0], ref)
    assert not peers.count_differs("dense", [1.0, 1.0], ref)  # computes no spiking function


def test_table_marks_a_differing_library_and_names_the_fastest_peer(peers):
    summ = {lib: peers.summarise([_run(ms, hidden=h)]) for lib, ms, h in [
        ("spikeflow", 10.0, (500.0, 80.0)), ("spyx", 25.0, (500.0, 80.0)), ("norse", 40.0, (500.0, 81.0)),
        ("dense", 5.0, (1.0, 1.0))]}
    text = "\n".join(peers.table("W2", summ))
    assert "| 500 / 80 |" in text and "| 500 / 81 **DIFFERS** |" in text and "| 1 / 1 |" in text
    assert "fastest peer (spyx): **2.50x**" in text and "dense floor: 0.50x" in text


def test_runs_section_gives_each_runs_ratio_to_its_fastest_peer(peers):
    # run 1: spyx is the fastest peer (30 ms vs spikeflow 10 ms: 3x); run 2: torch.compile (20 vs 10: 2x);
    # run 3: spyx again (40 vs 8: 5x). W4 memory: spikeflow 5 MB vs the lowest peer 20, 10, 25 MB
    runs = []
    for sf, peer_ms, peer_mb in [
        (10.0, {"spyx": 30.0, "torch.compile": 35.0, "norse": 90.0}, {"spyx": 20.0, "torch.compile": 40.0}),
        (10.0, {"spyx": 30.0, "torch.compile": 20.0, "norse": 90.0}, {"spyx": 30.0, "torch.compile": 10.0}),
        (8.0, {"spyx": 40.0, "torch.compile": 50.0, "norse": 90.0}, {"spyx": 25.0, "torch.compile": 40.0})]:
        wl = {"spikeflow": [_run(sf, 5.0)], **{lib: [_run(ms, peer_mb.get(lib, 60.0))] for lib, ms in peer_ms.items()}}
        runs.append({"W1": wl, "W4": wl})
    ratios = peers.per_run_ratios(runs, "W1")
    assert ratios["speed"] == [("spyx", 3.0), ("torch.compile", 2.0), ("spyx", 5.0)]
    assert ratios["memory"] == [("spyx", 0.25), ("torch.compile", 0.5), ("spyx", 0.2)]
    text = "\n".join(peers.runs_section(runs, ["W1", "W4"]))
    assert "| W1 | 3.00x (spyx), 2.00x (torch.compile), 5.00x (spyx) | **3.00x** | 2.00x - 5.00x |" in text
    assert "median **0.25**, range 0.20 - 0.50" in text


def test_results_keep_the_sections_other_benchmarks_wrote(peers, tmp_path):
    out = tmp_path / "RESULTS.md"
    out.write_text("# old peers tables\n\n### W1\n\n## Chip energy\n\nkept text\n")
    assert peers.keep_tail(out) == "\n## Chip energy\n\nkept text\n"
    assert peers.keep_tail(tmp_path / "missing.md") == ""


def _worker(python, *args, env=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1",
           **(env or {})}
    proc = subprocess.run([str(python), *map(str, args)], capture_output=True, text=True, env=env, timeout=600)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert proc.returncode == 0 and line, proc.stderr[-3000:]
    return json.loads(line[len("RESULT "):])


def _tiny_counts(lib, workload, python=sys.executable, env=None):
    res = _worker(python, BENCH / "bench_worker.py", lib, workload, "--tiny", "--steps", "1", "--warmup", "1",
                  "--threads", "1", env=env)
    assert len(res["times_ms"]) == 1 and len(res["warmup_ms"]) == 1
    return res["hidden_spikes_first"]


def test_train_step_worker_computes_spikeflows_function_and_runs_fused():
    """The ``spikeflow-step`` row (``spikeflow.train.TrainStep``): the same hidden spike counts as the
    autograd loop's in the first forward (counted here, in process, as the ``spikeflow`` worker counts
    them), and two timed steps: the worker stops with an error where the step, or from the second step
    Adam's update, did not fuse."""
    res = _worker(sys.executable, BENCH / "bench_worker.py", "spikeflow-step", "W1", "--tiny", "--steps", "2",
                  "--warmup", "1", "--threads", "1")
    sys.path.insert(0, str(BENCH))
    try:
        import bench_worker
    finally:
        sys.path.remove(str(BENCH))
    forward = bench_worker.build_spikeflow("mlp", bench_worker.shared_weights("mlp"))[0]
    wl = bench_worker.workload("W1", True)
    x, _ = bench_worker.make_data("mlp", wl["T"], wl["B"])[0]
    with torch.no_grad():
        counts = forward(x.to(torch.uint8), True)[1]
    assert res["hidden_spikes_first"] == counts and min(counts) > 0
    assert res["version"].endswith(", TrainStep, uint8 input") and len(res["times_ms"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("workload", ["W1", "W2"])
def test_torch_compile_worker_computes_spikeflows_function(workload, tmp_path):
    """A cold inductor compile of the training cell takes ~25 s of one core, hence slow."""
    ref = _tiny_counts("spikeflow", workload)
    got = _tiny_counts("torch.compile", workload, env={"TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")})
    assert len(ref) == (1 if workload == "W1" else 2) and min(ref) > 0
    assert got == ref


@pytest.mark.interop
@pytest.mark.parametrize("workload", ["W1", "W2", "W3"])
def test_spyx_worker_computes_spikeflows_function(workload, tmp_path):
    """spyx (JAX) in its own venv, on the exported weights and inputs: the same hidden spike counts as
    spikeflow's in the first forward, in both layers of the conv net; the step times exclude the jit."""
    from tests.peers import venv_python

    spyx_python = venv_python("spyx")  # created when missing; fails (not skips) without a Python for it
    sys.path.insert(0, str(BENCH))
    try:
        import bench_worker
    finally:
        sys.path.remove(str(BENCH))
    npz = tmp_path / f"{workload}.npz"
    bench_worker.export_npz(workload, npz, tiny=True)
    res = _worker(spyx_python, BENCH / "bench_worker_spyx.py", workload, npz, "--tiny", "--steps", "2",
                  "--warmup", "1", "--threads", "1")
    ref = _tiny_counts("spikeflow", workload)
    assert len(ref) == (2 if workload == "W2" else 1) and min(ref) > 0
    assert res["hidden_spikes_first"] == ref
    assert res["compile_s"] > 0 and len(res["times_ms"]) == 2 and res["cpus"] and len(res["cpus"]) == 1
    assert res["version"].startswith("spyx 1.0.0")
    if workload != "W2":  # the MLP's other input formats: spyx on uint8, spikeflow on float32 (spikeflow's is uint8)
        res8 = _worker(spyx_python, BENCH / "bench_worker_spyx.py", workload, npz, "--tiny", "--steps", "1",
                       "--warmup", "1", "--threads", "1", "--input", "uint8")
        assert res8["hidden_spikes_first"] == ref and res8["version"].endswith(", uint8 input")
        assert _tiny_counts("spikeflow-float32", workload) == ref


def test_main_writes_results_and_json_per_run(peers, tmp_path, monkeypatch):
    """Two full runs (the measurement faked): RESULTS names the CPU's vector extensions and the commit, keeps
    the sections after the tables, and the JSON holds every run's raw medians and ratios."""
    speeds = iter([{"spikeflow": 10.0, "spyx": 20.0, "torch.compile": 30.0},
                   {"spikeflow": 10.0, "spyx": 40.0, "torch.compile": 30.0}])

    def fake_measure(args, data_dir, done):
        ms = next(speeds)
        done({"W1": {lib: [_run(v, hidden=(700.0,))] for lib, v in ms.items()}})

    monkeypatch.setattr(peers, "measure", fake_measure)
    # run 1 starts on its first probe; run 2 waits through one probe above the limit
    probes = iter([{"threads": 2, "compute": 1.0, "l2": 1.25}, {"threads": 2, "compute": 2.0, "l2": 2.0},
                   {"threads": 2, "compute": 1.2, "l2": 1.1}])
    monkeypatch.setattr(peers.core_probe, "probe", lambda threads: next(probes))
    waits = []
    monkeypatch.setattr(peers.time, "sleep", waits.append)
    monkeypatch.setattr(peers, "machine", lambda: {"cpu": "Test CPU", "cpu_family_model": ["25", "17"],
                                                   "vector_extensions": ["avx2", "fma"], "cores": 2,
                                                   "load_average": [0.0], "python": "3"})
    monkeypatch.setattr(peers, "commit", lambda: "c0ffee")
    out, js = tmp_path / "R.md", tmp_path / "r.json"
    out.write_text("# old\n\n## Chip energy\n\nkept\n")
    assert peers.main(["--workloads", "W1", "--libs", "spikeflow,torch.compile", "--runs", "2", "--out", str(out),
                       "--json", str(js), "--probe-limit", "1.25", "--probe-wait", "7"]) == 0
    assert waits == [7.0]
    text = out.read_text()
    assert "Test CPU (family 25, model 17), 2 logical CPUs, vector extensions avx2 fma" in text
    assert "- commit: c0ffee" in text
    assert "| W1 | 2.00x (spyx), 3.00x (torch.compile) | **2.50x** | 2.00x - 3.00x |" in text
    assert text.endswith("\n## Chip energy\n\nkept\n") and text.count("## Chip energy") == 1
    assert ("run 1 compute 1.00x, L2-bound 1.25x; run 2 compute 1.20x, L2-bound 1.10x (after 2 probes). A run "
            "starts when both ratios are at most 1.25x (probed again every 7 s, at most 10 times)" in text
            and "the time 2 threads take" in text)
    doc = json.loads(js.read_text())
    assert doc["commit"] == "c0ffee" and doc["machine"]["vector_extensions"] == ["avx2", "fma"]
    assert [run["W1"]["spyx"]["median_ms"] for run in doc["runs"]] == [20.0, 40.0]
    assert doc["spikeflow_vs_fastest_peer"]["W1"] == [{"peer": "spyx", "ratio": 2.0},
                                                      {"peer": "torch.compile", "ratio": 3.0}]
    assert [(p["l2"], p["tries"]) for p in doc["core_probe_per_run"]] == [(1.25, 1), (1.1, 2)]


def test_core_probe_times_both_loops_against_one_thread():
    """The probe runs both loops on 1 and on 2 threads and gives positive ratios (not their values:
    those depend on the host), leaving numba's thread count as it was."""
    import numba

    sys.path.insert(0, str(BENCH))
    try:
        import core_probe
    finally:
        sys.path.remove(str(BENCH))
    kept = numba.get_num_threads()
    ratios = core_probe.probe(threads=2, rounds=2, compute_steps=1000, rows=8)
    assert set(ratios) == {"threads", "compute", "l2"} and ratios["threads"] == min(2, numba.config.NUMBA_NUM_THREADS)
    assert all(0 < ratios[k] < float("inf") for k in ("compute", "l2"))
    assert numba.get_num_threads() == kept
