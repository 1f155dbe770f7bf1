"""Model zoo builders and ANN->SNN conversion."""

import pytest
import torch

import spikeflow.nn as snn
from spikeflow.errors import ConfigError
from spikeflow.train import zoo
from spikeflow.train.convert import activation_scales, convert, fold_batchnorm


@pytest.mark.parametrize("neuron", ["lif", "alif", "cuba", "if"])
@pytest.mark.parametrize("arch", ["mlp", "conv", "recurrent"])
def test_builders_forward_backward(arch, neuron):
    torch.manual_seed(0)
    if arch == "recurrent":
        m, x = zoo.recurrent(6, 3, 8, neuron=neuron), torch.rand(2, 5, 6)  # [B, T, F]
    elif arch == "conv":
        m, x = zoo.conv((1, 8, 8), 3, [4], neuron=neuron, T=3), torch.rand(2, 1, 8, 8)
    else:
        m, x = zoo.mlp(64, 3, [8], neuron=neuron, T=3), torch.rand(2, 1, 8, 8)
    out = m(x)
    assert out.shape == ((5 if arch == "recurrent" else 3), 2, 3)
    out.max(0).values.sum().backward()
    grads = [p.grad for p in m.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(isinstance(layer, snn.NeuronLayer) for layer in m.modules())
    rebuilt = zoo.build(m.spec)
    rebuilt.load_state_dict(m.state_dict())  # the spec alone rebuilds the same architecture


def test_zoo_gain_makes_lif_integrate_unit_input():
    layer = zoo.neuron_layer("lif", 1, dt=1e-3, tau_mem=10e-3)
    a = torch.exp(torch.tensor(-0.1))
    _, state, _ = layer.multistep(torch.full((2, 1, 1), 0.5))
    # v1 = 0.5, v2 = a * 0.5 + 0.5 (no spike below threshold 1)
    assert state.v.item() == pytest.approx(float(a * 0.5 + 0.5), rel=1e-5)


def test_zoo_rejects_unknown_names():
    with pytest.raises(ConfigError, match="valid neurons"):
        zoo.mlp(4, 2, [3], neuron="hh")
    with pytest.raises(ConfigError, match="'hidden'"):
        zoo.mlp(4, 2, [0])
    with pytest.raises(ConfigError, match="recurrent"):
        zoo.for_data("recurrent", (1, 8, 8), 10)


def test_fold_batchnorm_preserves_eval_output():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.ReLU())
    net.train()
    for _ in range(3):
        net(torch.randn(8, 2, 6, 6))  # move the running statistics away from the defaults
    net.eval()
    x = torch.randn(4, 2, 6, 6)
    folded = torch.nn.Sequential(*fold_batchnorm(list(net)))
    assert torch.allclose(folded(x), net(x), atol=1e-5)


def test_converted_rates_approach_relu_outputs():
    """One Linear+ReLU layer: the IF spike rate times lambda approaches the ReLU output as T grows."""
    torch.manual_seed(0)
    ann = zoo.mlp(5, 3, [4], neuron="relu")
    x = torch.rand(16, 5)
    torch.set_grad_enabled(False)
    relu_out = ann.net[1](ann.net[0](x))
    lam = activation_scales(list(ann.net), x, percentile=100.0)[0]
    assert lam == pytest.approx(float(relu_out.max()), rel=1e-6)
    snn_model = convert(ann, x, T=400, percentile=100.0)
    spikes = snn_model.net[1](snn_model.net[0](snn_model.encode(x)))
    rate = spikes.mean(0) * lam
    assert torch.allclose(rate, relu_out, atol=lam / 400 * 1.01)
    # the readout (mean of the last layer's input current) approaches the ANN logits
    assert torch.allclose(snn_model(x).mean(0), ann(x), atol=0.05)
    torch.set_grad_enabled(True)


def test_converted_event_model_sees_frames_one_step_at_a_time():
    """Event frames [N, T, ...]: the ANN sees their sum; the SNN gets one frame per step, its first layer
    scaled by T so that the mean input current over the T steps is the ANN's pre-activation / lambda
    (linear, so exact up to rounding): the IF neurons see, on average, what the ReLUs saw."""
    torch.manual_seed(0)
    T = 200
    frames = (torch.rand(16, T, 5) < 0.05).float()  # sparse event counts, 5 channels
    ann = zoo.for_data("mlp", frames.shape[1:], 3, neuron="relu", hidden=[4])
    assert ann.spec["encoding"] == "sum"
    torch.set_grad_enabled(False)
    pre = ann.net[0](ann.encode(frames))  # the ANN's first pre-activation
    snn_model = convert(ann, frames, T=T, percentile=100.0)
    assert snn_model.spec["encoding"] == "sequence" and snn_model.time_steps == T
    lam = activation_scales(list(ann.net), ann.encode(frames), percentile=100.0)[0]
    current = snn_model.net[0](snn_model.encode(frames))  # [T, N, 4]
    assert torch.allclose(current.mean(0), pre / lam, atol=1e-5)
    # the readout is the whole network's: ANN logits from the summed frame, SNN from the frames in turn
    assert snn_model(frames).shape == (T, 16, 3)
    torch.set_grad_enabled(True)


def test_pool_first_pools_the_current_before_the_neurons():
    from spikeflow.metrics.energy import measure

    torch.manual_seed(0)
    snn_model = zoo.conv((2, 8, 8), 3, [4], T=2, pool_first=True)
    ann_model = zoo.conv((2, 8, 8), 3, [4], neuron="relu", pool_first=True)
    x = torch.rand(5, 2, 8, 8) * 3
    net = snn_model.net.eval()
    conv, bn = net[0].layer, net[1].layer
    with torch.no_grad():
        current = torch.nn.functional.avg_pool2d(bn(conv(x)), 2)  # [5, 4, 4, 4]
        spikes, _, _ = net[3].multistep(current.unsqueeze(0))  # one step: the zoo's gain makes v = current
    assert net[3].shape == (4, 4, 4)
    assert torch.equal(spikes[0], (current >= 1.0).to(spikes.dtype))
    ann_model.eval()
    a_conv, a_bn = ann_model.net[0], ann_model.net[1]
    with torch.no_grad():
        want = torch.relu(torch.nn.functional.avg_pool2d(a_bn(a_conv(x)), 2))
        assert torch.allclose(ann_model.net[:4](x), want)
    # a quarter of the neurons: 4 x 4 x 4 hidden and 3 readout neurons per step, against 4 x 8 x 8 + 3
    plain = zoo.conv((2, 8, 8), 3, [4], T=2)
    steps = 2 * 5
    assert measure(snn_model, x).per_inference()["neuron_updates"] * 5 == steps * (64 + 3)
    assert measure(plain, x).per_inference()["neuron_updates"] * 5 == steps * (256 + 3)
    assert snn_model.spec["pool_first"] is True and "pool_first" not in plain.spec
    rebuilt = zoo.build(snn_model.spec)
    rebuilt.load_state_dict(snn_model.state_dict())
    assert rebuilt.net[3].shape == (4, 4, 4)
