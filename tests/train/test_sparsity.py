"""Training for fewer operations: spike regularisation, pruning, quantisation-aware training, learnable thresholds."""

import pytest
import torch

from spikeflow.errors import ConfigError
from spikeflow.train import zoo
from spikeflow.train.losses import spike_regularizer
from spikeflow.train.metrics import record_spikes, spike_rates, synaptic_operations
from spikeflow.train.sparsity import connection_layers, fake_quantize, layer_targets, magnitude_mask, prune_schedule
from spikeflow.train.trainer import TrainConfig, Trainer, seed_all


def _problem(n=64, features=16, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, features, generator=g)
    y = (x[:, :classes].argmax(1)).long()
    return x, y


def _model(seed=0, **kw):
    seed_all(seed)
    return zoo.mlp(16, 3, hidden=[32], T=8, encoding="direct", **kw)


def _rate(model, x) -> float:
    model.eval()
    with torch.no_grad(), record_spikes(model) as rec:
        model(x)
    return spike_rates(rec)["net.1"]


def _fit(model, x, y, **cfg):
    config = TrainConfig(epochs=cfg.pop("epochs", 6), batch_size=32, lr=cfg.pop("lr", 1e-2), seed=0, progress=False,
                         energy_samples=0, **cfg)
    return Trainer(model, (x, y), config=config).fit()


def test_spike_regularizer_by_hand():
    r = [torch.tensor([0.1, 0.3]), torch.tensor([0.0, 0.4])]
    assert spike_regularizer(r, 2.0).item() == pytest.approx(2 * (0.2 + 0.2))  # L1: the layers' mean rates
    assert spike_regularizer(r, 2.0, [0.1, 0.5]).item() == pytest.approx(2 * (0.1 ** 2 + 0.3 ** 2))
    with pytest.raises(ConfigError, match="2 spiking layers"):
        spike_regularizer(r, 1.0, [0.1, 0.1, 0.1])


def test_layer_targets_one_for_all_or_one_each():
    assert layer_targets([0.1], ["a", "b"]) == [0.1, 0.1]
    assert layer_targets([0.1, 0.2], ["a", "b"]) == [0.1, 0.2]
    with pytest.raises(ConfigError, match="--target-rate: 3 rates .* 2 spiking layers"):
        layer_targets([0.1, 0.2, 0.3], ["a", "b"])


def test_regulariser_moves_the_rate_to_its_target():
    x, y = _problem()
    plain, low, high = _model(), _model(), _model()
    _fit(plain, x, y)
    _fit(low, x, y, spike_reg=20.0, target_rate=[0.02])
    _fit(high, x, y, spike_reg=20.0, target_rate=[0.6])
    r_plain, r_low, r_high = _rate(plain, x), _rate(low, x), _rate(high, x)
    # a large effect each way: the gap to each target shrinks to under half of the unregularised gap
    assert abs(r_low - 0.02) < 0.5 * abs(r_plain - 0.02), (r_plain, r_low)
    assert abs(r_high - 0.6) < 0.5 * abs(r_plain - 0.6), (r_plain, r_high)
    assert r_low < r_plain < r_high


def test_l1_spike_penalty_lowers_the_rate_and_the_synops():
    x, y = _problem()
    plain, sparse = _model(), _model()
    _fit(plain, x, y)
    _fit(sparse, x, y, spike_reg=5.0)
    assert _rate(sparse, x) < 0.5 * _rate(plain, x)
    ops = [synaptic_operations(m, x, spiking=True) for m in (plain, sparse)]
    assert ops[1].acs < ops[0].acs


def test_magnitude_mask_zeroes_exactly_the_smallest():
    w = torch.tensor([[0.5, -0.1, 0.3], [-0.7, 0.05, 0.2]])
    m = magnitude_mask(w, 0.5)  # 3 of 6 zeros: |0.05|, |-0.1|, |0.2|
    assert m.tolist() == [[1, 0, 1], [1, 0, 0]]
    assert magnitude_mask(w, 0.0).sum() == 6
    with pytest.raises(ConfigError, match="prune"):
        magnitude_mask(w, 1.0)


def test_prune_schedule_ramps_then_holds():
    assert [prune_schedule(0.8, e, 6) for e in range(6)] == pytest.approx([0.8 / 3, 1.6 / 3, 0.8, 0.8, 0.8, 0.8])
    assert prune_schedule(0.5, 0, 1) == 0.5


@pytest.mark.parametrize("fraction", [0.3, 0.75])
def test_pruning_leaves_exactly_the_fraction_of_zeros(fraction):
    x, y = _problem()
    model = _model()
    _fit(model, x, y, prune=fraction, epochs=4)
    layers = connection_layers(model)
    assert len(layers) == 2
    for name, layer in layers.items():
        n = layer.weight.numel()
        assert int((layer.weight == 0).sum()) == round(fraction * n), name
    # zero weights do no work: an all-ones input meets every nonzero weight of the first layer at each of 8 steps
    ones = torch.ones(1, 16)
    assert synaptic_operations(_model(), ones).per_layer["net.0.layer"]["acs"] == 8 * 512
    assert synaptic_operations(model, ones).per_layer["net.0.layer"]["acs"] == 8 * (512 - round(fraction * 512))


def _on_grid(w: torch.Tensor, bits: int) -> bool:
    qmax = 2 ** (bits - 1) - 1
    scale = w.abs().max() / qmax
    k = w / scale
    return bool(torch.allclose(k, k.round(), atol=1e-4) and k.abs().max() <= qmax + 1e-4)


@pytest.mark.parametrize("bits", [8, 4])
def test_qat_weights_lie_on_the_grid(bits):
    x, y = _problem()
    model = _model()
    before = [m.weight.detach().clone() for m in connection_layers(model).values()]
    _fit(model, x, y, qat_bits=bits, epochs=2)
    for w0, layer in zip(before, connection_layers(model).values()):
        w = layer.weight.detach()
        assert _on_grid(w, bits)
        assert len(torch.unique(w)) <= 2 ** bits - 1
        assert not torch.equal(w, fake_quantize(w0, bits))  # the straight-through gradient trained them


def test_qat_ternary_and_chip_bits():
    from spikeflow.hardware.profiles import get_profile

    x, y = _problem()
    model = _model()
    _fit(model, x, y, qat_bits=get_profile("truenorth").weight_bits, epochs=2)
    for layer in connection_layers(model).values():
        values = torch.unique(layer.weight.detach())
        assert len(values) == 3 and values[1] == 0 and values[0] == -values[2]
    assert get_profile("loihi").weight_bits == 8


def test_fake_quantize_by_hand():
    w = torch.tensor([1.0, -0.5, 0.26, 0.0])
    # 3 bits: qmax 3, scale 1/3 -> k = 3, -1.5 -> -2 (round half to even), 0.78 -> 1, 0
    assert fake_quantize(w, 3).tolist() == pytest.approx([1.0, -2 / 3, 1 / 3, 0.0])


def test_learnable_thresholds_train():
    x, y = _problem()
    model = _model(learn_threshold=True)
    assert model.spec["learn_threshold"] is True
    th = [p for n, p in model.named_parameters() if n.endswith("v_threshold")]
    assert len(th) == 1 and th[0].shape == (32,)
    start = th[0].detach().clone()
    _fit(model, x, y, epochs=2)
    assert not torch.equal(start, th[0].detach())
    rebuilt = zoo.build(model.spec)
    rebuilt.load_state_dict(model.state_dict())
    assert torch.equal(rebuilt(x[:4]), model(x[:4]))


def test_bad_sparsity_config():
    with pytest.raises(ConfigError, match="'prune'"):
        TrainConfig(prune=1.0)
    with pytest.raises(ConfigError, match="'target_rate'"):
        TrainConfig(target_rate=[1.5])
    with pytest.raises(ConfigError, match="'qat_bits'"):
        TrainConfig(qat_bits=1)


def test_chip_choices_match_the_profiles():
    from spikeflow.commands.train import CHIP_CHOICES
    from spikeflow.hardware.profiles import PROFILES

    assert sorted(CHIP_CHOICES) == sorted(PROFILES)


def test_train_command_prunes_and_quantises(tmp_path, capsys):
    from spikeflow.cli import main
    from spikeflow.commands._common import load_run

    out = tmp_path / "run"
    assert main(["train", "--data", "digits", "--model", "mlp", "--hidden", "16", "--T", "2", "--epochs", "2",
                 "--prune", "0.5", "--qat", "loihi", "--spike-reg", "1", "--target-rate", "0.05", "--learn-threshold",
                 "--out", str(out), "--no-progress", "--threads", "1"]) == 0
    model, meta = load_run(str(out))
    assert meta["spec"]["learn_threshold"] is True
    for name, layer in connection_layers(model).items():
        w = layer.weight.detach()
        assert int((w == 0).sum()) == round(0.5 * w.numel()), name
        assert _on_grid(w, 8), name
    capsys.readouterr()
    assert main(["train", "--data", "digits", "--target-rate", "0.1", "--out", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--target-rate needs --spike-reg" in err[0]
