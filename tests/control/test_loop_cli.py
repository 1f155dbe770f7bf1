"""``spikeflow control``: hand-built runs, the loop's JSON and report, and one-line errors."""

import json

import pytest

from spikeflow.cli import main
from spikeflow.control.toy import TargetTracking, optimal_return


@pytest.fixture
def track_run(tmp_path):
    run = tmp_path / "track"
    assert main(["control", "handbuilt", "track-sign", "--out", str(run)]) == 0
    return run


def test_run_reports_the_optimal_return_and_counts(track_run, tmp_path, capsys):
    capsys.readouterr()
    out = tmp_path / "m.json"
    assert main(["control", "run", str(track_run), "--env", "Track1D-v0", "--episodes", "2", "--seed", "4",
                 "--warmup", "10", "--chip", "loihi", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "decision latency p50" in text and "energy per decision on loihi" in text
    s = json.loads(out.read_text())
    expected = []
    for seed in (4, 5):
        env = TargetTracking()
        env.reset(seed=seed)
        expected.append(float(optimal_return(env.offsets, env.length)))
    assert s["returns"] == expected and s["steps"] == 400
    assert s["mode"] == "simulated-time" and s["rate_hz"] == pytest.approx(1000.0)
    assert s["per_decision"]["synops"] == 1.0 and s["deadline_misses"] is None
    assert s["latency_us"]["p50"] <= s["latency_us"]["p99"] <= s["latency_us"]["max"]
    assert s["energy_per_decision"]["chip"] == "loihi"


def test_report_has_a_gif_and_plots(track_run, tmp_path, capsys):
    capsys.readouterr()
    rep = tmp_path / "rep"
    assert main(["control", "run", str(track_run), "--episodes", "1", "--warmup", "0", "--report", str(rep),
                 "--compare", str(track_run), "--encoding", "events", "--json", "-"]) == 0
    s = json.loads(capsys.readouterr().out)
    html = (rep / "index.html").read_text()
    for name in ("episode.gif", "latency.png", "activity.png", "returns.png"):
        assert (rep / name).stat().st_size > 0 and name in html
    assert (rep / "episode.gif").read_bytes()[:6] == b"GIF89a"
    assert s["env"] == "Track1D-v0" and s["compare"]["events"]["synops"] == 1.0


def test_realtime_short_run_counts_misses(track_run, tmp_path, capsys):
    capsys.readouterr()
    assert main(["control", "run", str(track_run), "--realtime", "--duration", "0.05", "--warmup", "5",
                 "--json", "-", "--report", str(tmp_path / "rep")]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["mode"] == "wall-clock" and s["steps"] == 50
    assert 0 <= s["deadline_misses"] <= 50 and s["start_late_us"]["max"] >= 0
    assert (tmp_path / "rep" / "deadlines.png").stat().st_size > 0


@pytest.mark.parametrize("argv, words", [
    (["--env", "NoSuchEnv-v0"], "unknown environment"),
    (["--env", "CartPole-v1"], "controls Track1D-v0, not CartPole-v1"),
    (["--encoding", "dense"], "--encoding"),
    (["--chip", "no-such-chip"], "unknown chip"),
    (["--rt-priority", "500", "--realtime"], "--rt-priority: expected 1..99"),
    (["--rt-priority", "5"], "add --realtime"),
    (["--spin"], "add --realtime"),
])
def test_bad_input_is_one_line(track_run, capsys, argv, words):
    capsys.readouterr()
    assert main(["control", "run", str(track_run), "--episodes", "1", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and "Traceback" not in err[0]


def test_spin_under_real_time_priority_is_refused_when_the_kernel_caps_it(track_run, capsys, monkeypatch):
    from spikeflow.control import loop

    monkeypatch.setattr(loop, "rt_runtime_cap", lambda: 0.95)
    argv = ["control", "run", str(track_run), "--realtime", "--spin", "--rt-priority", "5", "--duration", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "5% of every second" in err[0]


def test_a_folder_without_a_policy_is_refused(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["control", "run", str(tmp_path / "empty"), "--episodes", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "empty" in err[0]


def test_train_refuses_an_unknown_environment(tmp_path, capsys):
    assert main(["control", "train", "--env", "NoSuchEnv-v0", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown environment 'NoSuchEnv-v0'" in err[0]


def test_missing_run_folder_is_a_parse_error(tmp_path, capsys):
    assert main(["control", "run", str(tmp_path / "nope")]) == 2
    assert "no such run folder" in capsys.readouterr().err


def test_compare_event_and_dense_input_of_a_hand_built_run(tmp_path, capsys):
    run = tmp_path / "cp"
    assert main(["control", "handbuilt", "cartpole-linear", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["control", "run", str(run), "--episodes", "1", "--warmup", "0", "--compare", str(run),
                 "--json", "-"]) == 0
    s = json.loads(capsys.readouterr().out)
    c = s["compare"]
    assert set(c) == {"events", "dense"} and s["encoding"] == "events"
    assert c["dense"]["synops"] == 8.0  # 4 observation values x 2 synapses, every decision
    assert c["events"]["synops"] < 8.0 and c["events"]["synops"] == s["per_decision"]["synops"]


@pytest.fixture
def trained_format_run(tmp_path):
    """A run folder in the trained-policy format (``policy.json`` + ``policy.nir``) whose network is the
    optimal move of Track1D-v0: readout (-d, 0, d) of the observation d = target - position, argmax."""
    import nir
    import numpy as np

    from spikeflow.ir import write

    run = tmp_path / "trained-format"
    run.mkdir()
    nodes = {"input": nir.Input(input_type=np.array([1])),
             "fc": nir.Linear(weight=np.array([[-1.0], [0.0], [1.0]])),
             "li": nir.LI(tau=np.full(3, 1e-9), r=np.ones(3), v_leak=np.zeros(3)),  # memoryless: readout = input
             "output": nir.Output(output_type=np.array([3]))}
    graph = nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "li"), ("li", "output")], metadata={"dt": 1e-3})
    write(graph, run / "policy.nir")
    spec = {"env_id": "Track1D-v0", "dt": 1e-3, "steps_per_decision": 1, "encoding": {"kind": "dense", "n_obs": 1},
            "decoder": {"kind": "argmax", "readout": "last"}, "n_in": 1, "n_out": 3, "model": {}}
    (run / "policy.json").write_text(json.dumps(spec))
    return run


def test_a_trained_format_run_goes_through_the_loop(trained_format_run, capsys):
    capsys.readouterr()
    assert main(["control", "run", str(trained_format_run), "--episodes", "1", "--seed", "2", "--warmup", "0",
                 "--json", "-"]) == 0
    s = json.loads(capsys.readouterr().out)
    env = TargetTracking()
    env.reset(seed=2)
    assert s["returns"] == [float(optimal_return(env.offsets, env.length))]
    assert s["env"] == "Track1D-v0" and s["encoding"] == "dense" and s["rate_hz"] == pytest.approx(1000.0)
    assert s["per_decision"]["synops"] == 2.0  # one input value, two non-zero weights
    for argv, words in ((["--env", "CartPole-v1"], "controls Track1D-v0"), (["--encoding", "events"], "--encoding")):
        assert main(["control", "run", str(trained_format_run), "--episodes", "1", *argv]) == 2
        assert words in capsys.readouterr().err
