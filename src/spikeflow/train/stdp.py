"""Unsupervised STDP learning in the style of Diehl & Cook, Front. Comput. Neurosci. 2015.

Poisson input -> one excitatory layer (all-to-all plastic weights) with lateral inhibition
(each spike inhibits every other excitatory neuron, standing in for the paper's inhibitory
population), adaptive thresholds (homeostasis) and a trace-based STDP rule:
on a post-synaptic spike ``dw = eta_post * (x_pre - x_tar) * (w_max - w)``; on a pre-synaptic
spike ``dw = -eta_pre * x_post * w``; incoming weights are renormalised to a fixed sum
(the paper's 78 for 784 inputs = ``norm`` 0.1 per input). After learning each neuron is
labelled with the class it responds to most; a sample's class is the label group with the
highest mean response.

The excitatory neuron is ``spikeflow.neurons.alif`` (LIF with threshold ``v_threshold +
beta * a``): ``a`` counts spikes with a very slow decay, i.e. the paper's ``theta``.
Samples are simulated ``batch`` at a time with a shared weight matrix and summed updates,
a speed-up over the paper's one-sample-at-a-time presentation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from spikeflow.errors import ConfigError, ShapeError
from spikeflow.neurons import alif
from spikeflow.neurons.alif import ALIFParams, ALIFState


@dataclass
class STDPConfig:
    neurons: int = 100
    steps: int = 100  # time steps per sample presentation
    dt: float = 1e-3
    max_rate: float = 200.0  # Hz at input intensity 1
    tau_mem: float = 100e-3  # Diehl & Cook: 100 ms excitatory membrane
    tau_trace: float = 20e-3  # pre/post trace time constant (Diehl & Cook: 20 ms)
    v_threshold: float = 0.25
    theta_plus: float = 0.03  # threshold increase per spike
    inhibition: float = 10.0  # lateral inhibition per spike of another neuron
    eta_post: float = 0.05
    eta_pre: float = 0.0001
    x_tar: float = 0.2
    w_max: float = 1.0
    norm: float = 0.1  # sum of incoming weights per input
    gain: float = 2.0  # scales the synaptic input current
    batch: int = 16
    epochs: int = 1
    seed: int = 0
    progress: bool = True

    def __post_init__(self):
        for name in ("neurons", "steps", "batch", "epochs"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"STDP config: '{name}' must be >= 1, got {getattr(self, name)}")
        for name in ("dt", "max_rate", "tau_mem", "tau_trace", "v_threshold", "w_max", "norm", "gain"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"STDP config: '{name}' must be > 0, got {getattr(self, name)}")


class STDPNetwork:
    """Diehl & Cook style network; ``fit(x, y)`` learns and labels, ``predict(x)`` classifies."""

    def __init__(self, n_inputs: int, config: STDPConfig | None = None):
        self.config = c = config or STDPConfig()
        self.n_inputs = int(n_inputs)
        self.gen = torch.Generator().manual_seed(c.seed)
        self.weights = torch.rand(self.n_inputs, c.neurons, generator=self.gen) * 0.3 * c.w_max
        self._normalise()
        self.theta = torch.zeros(c.neurons)  # adaptive threshold state (spike count with slow decay)
        self.labels = torch.full((c.neurons,), -1, dtype=torch.long)
        self.params = ALIFParams(tau_mem=c.tau_mem, tau_adapt=1e4, v_threshold=c.v_threshold, beta=c.theta_plus,
                                 dt=c.dt, reset="to_reset")

    def _normalise(self):
        total = self.config.norm * self.n_inputs
        self.weights.mul_(total / self.weights.sum(0, keepdim=True).clamp_min(1e-9))

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(len(x), -1).float()
        if x.shape[1] != self.n_inputs:
            raise ShapeError(f"STDP network: expected {self.n_inputs} input features, got {x.shape[1]}")
        return x.clamp(0, 1)

    @torch.no_grad()
    def _present(self, x: torch.Tensor, learn: bool) -> torch.Tensor:
        """Simulate one batch; returns spike counts ``[B, neurons]``."""
        c = self.config
        b = len(x)
        p = x * (c.max_rate * c.dt)
        decay = torch.exp(torch.tensor(-c.dt / c.tau_trace))
        state = ALIFState(torch.zeros(b, c.neurons), self.theta.expand(b, -1).clone())
        pre_trace = torch.zeros(b, self.n_inputs)
        post_trace = torch.zeros(b, c.neurons)
        z = torch.zeros(b, c.neurons)
        counts = torch.zeros(b, c.neurons)
        for _ in range(c.steps):
            pre = (torch.rand(p.shape, generator=self.gen) < p).float()
            drive = c.gain * pre @ self.weights - c.inhibition * (z.sum(1, keepdim=True) - z)
            z, state = alif.step(drive, state, self.params)
            counts += z
            if learn:
                pre_trace = pre_trace * decay + pre
                post_trace = post_trace * decay + z
                dw = c.eta_post * (pre_trace - c.x_tar).T @ z * (c.w_max - self.weights)
                dw -= c.eta_pre * pre.T @ post_trace * self.weights
                self.weights.add_(dw / b).clamp_(0, c.w_max)
        if learn:
            # the batch's threshold increases, shared by all samples (theta decays very slowly)
            self.theta += (state.a - self.theta).mean(0)
            self._normalise()
        return counts

    def responses(self, x: torch.Tensor, desc: str = "STDP response") -> torch.Tensor:
        x = self._flat(x)
        out = []
        for i in tqdm(range(0, len(x), self.config.batch), desc=desc, disable=not self.config.progress, leave=False):
            out.append(self._present(x[i:i + self.config.batch], learn=False))
        return torch.cat(out)

    def fit(self, x: torch.Tensor, y: torch.Tensor) -> STDPNetwork:
        c = self.config
        x = self._flat(x)
        for epoch in range(c.epochs):
            order = torch.randperm(len(x), generator=self.gen)
            for i in tqdm(range(0, len(x), c.batch), desc=f"STDP epoch {epoch + 1}/{c.epochs}",
                          disable=not c.progress, leave=False):
                self._present(x[order[i:i + c.batch]], learn=True)
        self.assign_labels(x, y)
        return self

    def assign_labels(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Label each neuron with the class of highest mean response (Diehl & Cook 2015)."""
        r = self.responses(x, "STDP labelling")
        classes = int(y.max()) + 1
        mean = torch.stack([r[y == k].mean(0) if (y == k).any() else torch.zeros(r.shape[1]) for k in range(classes)])
        self.labels = mean.argmax(0)
        self.labels[mean.max(0).values == 0] = -1
        self.classes = classes

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        r = self.responses(x, "STDP test")
        votes = torch.stack([r[:, self.labels == k].mean(1) if (self.labels == k).any()
                             else torch.zeros(len(r)) for k in range(self.classes)], 1)
        return votes.argmax(1)
