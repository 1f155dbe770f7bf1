"""Where the event-path Linear stops paying: time dense vs event forward + weight gradient.

    python benchmarks/crossover.py     # prints a table and the measured crossover activity

The W1 layer (700 -> 256, 3200 rows = T*B), 2 threads, median of 5 after warm-up, for input
activity 1 %..50 %. ``spikeflow.kernels.synapse.CROSSOVER`` holds the value measured here.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from bench_proc import median_ms  # noqa: E402
from spikeflow.kernels import synapse  # noqa: E402


def main() -> int:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    w = (torch.randn(256, 700) * 0.05).requires_grad_()
    g = torch.randn(3200, 256)
    crossover = None
    print("activity  dense ms  event ms")
    for p in (0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5):
        x = (torch.rand(3200, 700) < p).float()
        dense = median_ms(lambda x=x: torch.autograd.grad(F.linear(x, w), w, g), 5)
        event = median_ms(lambda x=x: torch.autograd.grad(synapse.event_linear(x, w), w, g), 5)
        print(f"{p:8.2f}  {dense:8.2f}  {event:8.2f}")
        if crossover is None and event >= dense:
            crossover = p
    print(f"measured crossover: event path slower from activity {crossover} on "
          f"(CROSSOVER in spikeflow.kernels.synapse = {synapse.CROSSOVER})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
