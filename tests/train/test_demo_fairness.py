"""The demo's early answers: the ANN sees a partial event stream at its full-window statistics."""

import torch
from torch import nn

from spikeflow.commands.demo import _partial_accuracy


class _SumJudge(nn.Module):
    """An 'ANN' that answers class 1 only when its summed input frame has the full window's total."""

    def __init__(self, full_total):
        super().__init__()
        self.full_total = full_total

    def forward(self, x):
        total = x.flatten(1).sum(1)
        return torch.stack([torch.zeros_like(total), (total - 0.999 * self.full_total).sign()], 1)


class _Silent(nn.Module):
    def forward(self, x):
        return torch.zeros(x.shape[1] if x.dim() == 5 else 4, x.shape[0], 2)


def test_event_ann_sees_partial_input_rescaled_to_the_full_window():
    T, n = 4, 6
    x = torch.ones(n, T, 2, 3, 3)  # a steady event rate: every bin holds the same counts
    y = torch.ones(n, dtype=torch.long)
    fractions = [0.25, 0.5, 0.75, 1.0]
    _, ann, raw = _partial_accuracy(_Silent(), _SumJudge(float(x[0].sum())), x, y, fractions, sequence=True)
    assert ann == [1.0, 1.0, 1.0, 1.0]  # rescaled by T / t: the full window's totals at every fraction
    assert raw == [0.0, 0.0, 0.0, 1.0]  # the plain partial sum falls short until the end


def test_static_ann_has_no_partial_answer():
    x = torch.ones(5, 1, 3, 3)
    y = torch.ones(5, dtype=torch.long)
    _, ann, _ = _partial_accuracy(_Silent(), _SumJudge(9.0), x, y, [0.25, 0.5, 1.0], sequence=False)
    assert ann == [None, None, 1.0]
