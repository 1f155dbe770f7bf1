"""``spikeflow frontier``: the Pareto bookkeeping by hand, and the command end to end on tiny settings."""

import json

import pytest

from spikeflow.cli import main
from spikeflow.errors import ConfigError
from spikeflow.train.frontier import compare, pareto


def _pt(name, kind, acc, e, synops, **kw):
    return {"name": name, "kind": kind, "accuracy": acc, "energy_j": e, "synops": synops, **kw}


def test_pareto_by_hand():
    pts = [_pt("ann", "ann", 0.96, 10.0, 100), _pt("a", "snn", 0.95, 2.0, 40), _pt("b", "snn", 0.94, 3.0, 30),
           _pt("c", "snn", 0.90, 1.0, 10), _pt("d", "snn", 0.95, 2.0, 50)]
    # b is beaten by a (more accurate, cheaper); a and d tie (neither beats the other)
    assert pareto(pts) == [True, True, False, True, True]
    assert pareto(pts, key="synops") == [True, True, True, True, False]
    # 956 of 1000 as two float32 means: the same accuracy, so the cheaper point wins
    same = [_pt("ann", "ann", 0.9559999704360962, 1.0, 1), _pt("snn", "snn", 0.9560000228881836, 3.0, 1)]
    assert pareto(same) == [True, False]


def test_compare_by_hand():
    pts = [_pt("ann", "ann", 0.96, 10.0, 200, macs_nonzero=100, energy_skip_zeros_j=5.0),
           _pt("a", "snn", 0.955, 1.5, 40), _pt("b", "snn", 0.94, 1.0, 30), _pt("c", "snn", 0.958, 3.0, 40)]
    cmp = compare(pts)
    a, b, c = cmp["rows"]
    assert a["accuracy_gap_points"] == pytest.approx(0.5)
    assert a["energy_ratio"] == pytest.approx(0.15) and a["energy_ratio_vs_zero_skipping_ann"] == pytest.approx(0.3)
    assert a["synops_ratio"] == pytest.approx(0.4) and a["synops_ratio_vs_dense_ann"] == pytest.approx(0.2)
    assert [r["meets"] for r in (a, b, c)] == [True, False, False]  # b: 2 points below; c: 0.3x the energy
    assert cmp["met"] and cmp["best"]["name"] == "a"
    missed = compare([pts[0], pts[2], pts[3]])
    assert not missed["met"] and missed["best"]["name"] == "c"  # the smallest worst excess over a target
    with pytest.raises(ConfigError, match="no ANN"):
        compare(pts[1:])
    # 965 and 955 of 1000 as float32 means: exactly 1 point apart, within the 1-point target
    tie = compare([_pt("ann", "ann", 0.965000006198883, 10.0, 100), _pt("s", "snn", 0.9549999833106995, 1.0, 10)])
    assert tie["rows"][0]["accuracy_gap_points"] == 1.0 and tie["met"]


def test_frontier_command_end_to_end(tmp_path, capsys):
    out = tmp_path / "fr"
    argv = ["frontier", "--data", "digits", "--out", str(out), "--limit", "64", "--epochs", "1", "--T-values", "2",
            "--spike-reg-values", "1", "--prune", "0.5", "--batch-size", "32", "--chip", "loihi", "--no-progress",
            "--threads", "1"]
    assert main(argv) == 0
    result = json.loads((out / "frontier.json").read_text())
    names = [p["name"] for p in result["points"]]
    assert names == ["ANN", "SNN T2 reg 1", "SNN T2 reg 1 early exit 0.9", "SNN T2 reg 1 prune 0.5",
                     "SNN T2 reg 1 prune 0.5 early exit 0.9"]
    assert result["command"].startswith("spikeflow frontier --data digits") and "machine" in result
    for p in result["points"]:
        assert p["energy_j"] > 0 and p["synops"] >= 0 and isinstance(p["pareto"], bool)
        assert p["test_samples"] == 64
        if p["kind"] != "ann":
            assert p["energy_loihi_j"] > 0 and 1 <= p["mean_steps"] <= 2
    ann = result["points"][0]
    assert ann["macs_nonzero"] <= ann["macs"] and ann["energy_skip_zeros_j"] <= ann["energy_j"]
    assert any(p["pareto"] for p in result["points"])
    assert [r["name"] for r in result["comparison"]["rows"]] == names[1:]
    assert result["points"][3]["variant"]["prune"] == 0.5
    html = (out / "report.html").read_text()
    assert "Accuracy-energy frontier" in html and "frontier.png" in html and "SNNs against the ANN" in html
    assert (out / "frontier.png").read_bytes()[:4] == b"\x89PNG"
    assert "frontier.json" in capsys.readouterr().out


def test_frontier_refuses_data_files(tmp_path, capsys):
    f = tmp_path / "events.npz"
    f.write_bytes(b"not really")
    assert main(["frontier", "--data", str(f), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "built-in dataset" in err[0]


def test_early_exit_answers_at_the_first_confident_step():
    import torch

    from spikeflow.train.frontier import early_exit

    # [T=3, B=2, C=2] readout: sample 0 is sure of class 0 at step 1 (p = 0.982) but class 1 wins later;
    # sample 1 is never sure (p < 0.9) and answers at step 3 with the max over all steps: class 1
    out = torch.tensor([[[4.0, 0.0], [0.0, 0.5]], [[0.0, 9.0], [0.0, 1.0]], [[0.0, 9.0], [0.6, 0.0]]])

    class Fixed(torch.nn.Module):
        def forward(self, x):
            return out[:, x.long().flatten()]

    ex = early_exit(Fixed(), torch.tensor([[0.0], [1.0]]), torch.tensor([0, 1]), loss="ce_max", confidence=0.9)
    assert ex["steps"].tolist() == [1, 3]
    assert ex["accuracy"] == 1.0  # the final max would have said class 1 for sample 0


def test_pool_first_and_distill_reach_the_variants_and_the_trainer(monkeypatch):
    import torch

    import spikeflow.train.trainer as trainer_module
    from spikeflow.cli import build_parser
    from spikeflow.commands.frontier import family
    from spikeflow.train.datasets import holdout
    from spikeflow.train.frontier import _load, train_variant

    args = build_parser().parse_args(["frontier", "--data", "digits", "--out", "x", "--T-values", "2",
                                      "--spike-reg-values", "1", "--prune", "0", "--pool-first", "--distill", "0.5"])
    after, ann, snn = family(args)  # with --pool-first the ANN comes in both layouts
    assert (after.name, ann.name, snn.name) == ("ANN pool-after", "ANN pool-first", "SNN T2 kd 0.5 reg 1")
    assert not after.pool_first and after.channels == ann.channels and after.neuron == ann.neuron == "relu"
    assert ann.pool_first and snn.pool_first and ann.distill == 0 and snn.distill == 0.5
    assert not ann.init_from_ann and not snn.init_from_ann
    for flag in ("--pool-first", "--init-from-ann"):  # the recurrent models have no conv stage to pool or copy
        with pytest.raises(ConfigError, match=flag):
            family(build_parser().parse_args(["frontier", "--data", "spoken-digits", "--out", "x", flag]))

    class Stop(Exception):
        pass

    seen = {}

    class Spy:  # stands in for the Trainer: records what train_variant hands it
        def __init__(self, model, train, val, config, teacher_logits=None):
            seen.update(config=config, teacher=teacher_logits, y=train[1], spec=model.spec)
            raise Stop

    monkeypatch.setattr(trainer_module, "Trainer", Spy)
    torch.manual_seed(0)
    teacher = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    with pytest.raises(Stop):
        train_variant(snn, "digits", epochs=1, limit=64, seed=0, lr=1e-3, batch_size=16, progress=False,
                      teacher=(teacher, ann))
    assert seen["config"].distill == 0.5 and seen["spec"]["pool_first"] is True
    x, y = _load("digits", "train", ann.T, 64, False)
    (xs, ys), _ = holdout(x, y, 0.1, seed=0)
    assert torch.equal(seen["y"], ys)
    with torch.no_grad():
        assert torch.allclose(seen["teacher"], teacher(xs))
    with pytest.raises(ConfigError, match="no trained ANN"):
        train_variant(snn, "digits", epochs=1, limit=64, seed=0, lr=1e-3, batch_size=16, progress=False)


def test_init_from_ann_copies_the_connection_layers():
    import torch

    from spikeflow.train import zoo
    from spikeflow.train.frontier import init_from

    torch.manual_seed(0)
    ann = zoo.conv((2, 8, 8), 3, [4], neuron="relu", pool_first=True)
    ann.net[1].running_mean.fill_(0.25)  # BatchNorm statistics travel with the weights
    snn = zoo.conv((2, 8, 8), 3, [4], T=2, pool_first=True)
    assert init_from(snn, ann) == 3  # conv, BatchNorm, linear
    want = {k.replace(".layer", ""): v for k, v in snn.state_dict().items()}
    for k, v in ann.state_dict().items():
        assert torch.equal(want[k], v), k
    with pytest.raises(ConfigError, match="do not match"):
        init_from(zoo.conv((2, 8, 8), 3, [4, 4], T=2), ann)


def test_compare_against_two_anns_by_hand():
    from spikeflow.commands.frontier import target_region

    after = _pt("ANN pool-after", "ann", 0.968, 10.0, 200, macs_nonzero=100)
    first = _pt("ANN pool-first", "ann", 0.962, 8.0, 200, macs_nonzero=80)
    # a: 0.3 points below pool-after, 1.5/8 = 0.1875x pool-first's energy, 30/80 synops: meets both
    # b: within 1 point of pool-first (0.7) but 1.3 below pool-after; c: 0.18x pool-after's energy, 0.225x
    # pool-first's; d: synops 45/100 and 45/80 = 0.5625x pool-first's
    pts = [after, first, _pt("a", "snn", 0.965, 1.5, 30), _pt("b", "snn", 0.955, 1.0, 20),
           _pt("c", "snn", 0.966, 1.8, 30), _pt("d", "snn", 0.966, 1.0, 45)]
    cmp = compare(pts)
    assert cmp["ann"] == ["ANN pool-after", "ANN pool-first"]
    a, b, c, d = cmp["rows"]
    assert a["accuracy_gap_points"] == pytest.approx(0.3) and a["energy_ratio"] == pytest.approx(0.1875)
    assert a["synops_ratio"] == pytest.approx(0.375)
    assert b["against"]["ANN pool-first"]["meets"] and not b["against"]["ANN pool-after"]["meets"]
    assert b["accuracy_gap_points"] == pytest.approx(1.3)
    assert c["against"]["ANN pool-after"]["energy_ratio"] == pytest.approx(0.18)
    assert c["energy_ratio"] == pytest.approx(0.225) and not c["against"]["ANN pool-first"]["meets"]
    assert d["synops_ratio"] == pytest.approx(0.5625) and d["against"]["ANN pool-after"]["meets"]
    assert [r["meets"] for r in (a, b, c, d)] == [True, False, False, False]
    # two misses equally far from the targets (1.3 points below): the cheaper one is the closest
    near = compare([after, first, _pt("e", "snn", 0.955, 1.5, 30), _pt("f", "snn", 0.955, 1.2, 30)])
    assert not near["met"] and near["best"]["name"] == "f"
    assert cmp["met"] and cmp["best"]["name"] == "a"
    # the plot's target region: the best ANN's accuracy less 1 point, 0.2x the cheaper ANN's energy
    lo, hi = target_region(pts, cmp)
    assert lo == pytest.approx(0.958) and hi == pytest.approx(1.6)


def test_the_teacher_is_the_ann_with_the_better_validation_accuracy():
    import torch

    from spikeflow.commands.frontier import pick_teacher
    from spikeflow.train.frontier import Variant

    torch.manual_seed(0)
    m1, m2 = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    early = {k: torch.zeros_like(t) for k, t in m2.state_dict().items()}
    v1, v2 = Variant("ANN pool-after", neuron="relu"), Variant("ANN pool-first", neuron="relu", pool_first=True)
    # test accuracy says m2, validation says m1: validation decides
    points = [{"name": v1.name, "val_accuracy": 0.97, "accuracy": 0.95},
              {"name": v2.name, "val_accuracy": 0.96, "accuracy": 0.99}]
    (model, v), source = pick_teacher([{"model": m1, "snapshot": None}, {"model": m2, "snapshot": early}],
                                      [v1, v2], points)
    assert model is m1 and v is v1 and source is m1
    points[1]["val_accuracy"] = 0.98
    (model, v), source = pick_teacher([{"model": m1, "snapshot": None}, {"model": m2, "snapshot": early}],
                                      [v1, v2], points)
    assert model is m2 and v is v2 and source is not m2  # the SNNs start from the snapshot, a copy
    assert torch.equal(source.weight, torch.zeros(2, 3)) and not torch.equal(m2.weight, torch.zeros(2, 3))


def test_init_from_the_pool_after_ann_into_a_pool_first_snn():
    import torch

    from spikeflow.train import zoo
    from spikeflow.train.frontier import init_from

    torch.manual_seed(0)
    ann = zoo.conv((2, 8, 8), 3, [4, 6], neuron="relu")  # pooling after the ReLUs
    snn = zoo.conv((2, 8, 8), 3, [4, 6], T=2, pool_first=True)
    assert init_from(snn, ann) == 5  # two convs, two BatchNorms, the linear readout
    kinds = (torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.Linear)
    src = [m for m in ann.modules() if isinstance(m, kinds)]
    dst = [m for m in snn.modules() if isinstance(m, kinds)]
    for a, b in zip(src, dst):
        for (ka, ta), (kb, tb) in zip(a.state_dict().items(), b.state_dict().items()):
            assert ka == kb and torch.equal(ta, tb), ka
    # the layouts differ only in where the pooling sits: one stage's conv+BN output, pooled, is the same
    x = torch.rand(1, 2, 8, 8)
    ann.eval(), snn.eval()
    with torch.no_grad():
        assert torch.allclose(dst[1](dst[0](x)), src[1](src[0](x)))


def test_trainer_calls_on_epoch_after_each_epoch():
    import torch

    from spikeflow.train import zoo
    from spikeflow.train.trainer import TrainConfig, Trainer

    torch.manual_seed(0)
    x, y = torch.rand(32, 6), torch.randint(0, 3, (32,))
    model = zoo.mlp(6, 3, [8], neuron="relu")
    seen = []
    Trainer(model, (x, y), (x, y), TrainConfig(epochs=3, batch_size=16, loss="ce", progress=False, energy_samples=0),
            on_epoch=lambda done: seen.append((done, float(model.net[0].weight.detach().sum())))).fit()
    assert [d for d, _ in seen] == [1, 2, 3]
    assert seen[0][1] != seen[1][1]  # called between epochs, with the weights of that moment


def test_ann_epochs_reach_the_anns_and_the_snn_starts_part_way(tmp_path):
    out = tmp_path / "fr"
    assert main(["frontier", "--data", "digits", "--out", str(out), "--limit", "64", "--epochs", "1",
                 "--ann-epochs", "3", "--T-values", "2", "--spike-reg-values", "1", "--prune", "0", "--pool-first",
                 "--init-from-ann", "--distill", "0.5", "--batch-size", "32", "--no-progress", "--threads", "1"]) == 0
    result = json.loads((out / "frontier.json").read_text())
    assert "--ann-epochs 3" in result["command"] and result["ann_epochs"] == 3 and result["epochs"] == 1
    by = {p["name"]: p for p in result["points"]}
    assert set(by) == {"ANN pool-after", "ANN pool-first", "SNN T2 init kd 0.5 reg 1",
                       "SNN T2 init kd 0.5 reg 1 early exit 0.9"}
    assert by["ANN pool-after"]["epochs"] == by["ANN pool-first"]["epochs"] == 3
    snn = by["SNN T2 init kd 0.5 reg 1"]
    assert snn["epochs"] == 1 and snn["total_epochs"] == 3  # from the ANN's weights after 2 epochs, then 1 more
    assert result["teacher"] in ("ANN pool-after", "ANN pool-first")
    row = result["comparison"]["rows"][0]
    assert set(row["against"]) == {"ANN pool-after", "ANN pool-first"}
    html = (out / "report.html").read_text()
    assert "SNNs against each ANN" in html and "SNN T2 init kd 0.5 reg 1 3 (1 its own)" in html


def test_an_ann_keeps_its_weights_part_way_through():
    import torch

    from spikeflow.train.frontier import Variant, train_variant

    keep = []
    v = Variant("ANN", neuron="relu", T=2, channels=[4])
    train_variant(v, "digits", epochs=2, limit=64, seed=0, lr=1e-2, batch_size=32, progress=False, keep=keep,
                  snapshot_epoch=1, log=lambda s: None)
    model, snap = keep[0]["model"], keep[0]["snapshot"]
    final = model.state_dict()
    assert set(snap) == set(final)
    assert any(not torch.equal(snap[k], final[k]) for k in final)  # a copy, taken before the second epoch
    keep2 = []
    train_variant(v, "digits", epochs=2, limit=64, seed=0, lr=1e-2, batch_size=32, progress=False, keep=keep2,
                  log=lambda s: None)
    assert keep2[0]["snapshot"] is None  # no snapshot asked for
