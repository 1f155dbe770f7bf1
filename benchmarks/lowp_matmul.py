"""Whether the CPU's bf16/int8 matrix units could carry W1's first layer: torch's matmuls at its shape.

    python benchmarks/lowp_matmul.py [--repeats 30] [--json benchmarks/results/lowp-matmul.json]

W1's first layer sums, for each of T*B = 3200 rows, the weight rows of its active inputs (700 inputs,
5 % active, 256 outputs). The spikes are exact in bf16 and int8, the fp32 weights are not: an exact
product in low precision needs the weights split into parts (three bf16 parts, or four int8 limbs of
a fixed-point weight), each part one matmul, and the sums accumulated in fp32 or int32. This times,
on 2 threads, torch's fp32 matmul, its bf16 matmul (whose output is bf16: torch has no bf16 matmul
with an fp32 output on the CPU, so the split sums cannot be kept exact this way), and its int8
``_int_mm`` (int32 output, exact) with the four limbs side by side, against spikeflow's
spike-driven forward of the same layer pair (``bench_worker``'s W3). Medians of ``--repeats`` calls.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))

import bench_worker as bw  # noqa: E402
from bench_proc import median_ms  # noqa: E402
from spikeflow.atomic import atomic_write_text  # noqa: E402
from spikeflow.provenance import commit, machine  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--json", default=None, help="write the figures here")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(3200, 700, generator=g) < 0.05).float()
    w = torch.randn(700, 256, generator=g)
    xb, wb = x.bfloat16(), w.bfloat16()
    x8 = torch.nn.functional.pad(x, (0, 4)).to(torch.int8)  # _int_mm wants the inner size a multiple of 8
    w8 = torch.randint(-127, 128, (704, 4 * 256), dtype=torch.int8, generator=g)
    net_forward, _, _, _ = bw.build_spikeflow("mlp", bw.shared_weights("mlp"))
    x_w3, _ = bw.make_data("mlp", 100, 32)[0]

    def spikeflow_w3():
        with torch.no_grad():
            net_forward(x_w3)

    ms = {
        "fp32 matmul [3200,700]x[700,256]": median_ms(lambda: x @ w, args.repeats, warmup=2),
        "bf16 matmul (bf16 output), one part": median_ms(lambda: xb @ wb, args.repeats, warmup=2),
        "bf16 matmul, three parts": median_ms(lambda: (xb @ wb, xb @ wb, xb @ wb), args.repeats, warmup=2),
        "fp32 -> bf16 conversion of the input": median_ms(lambda: x.bfloat16(), args.repeats, warmup=2),
        "int8 _int_mm, four limbs side by side [3200,704]x[704,1024]": median_ms(lambda: torch._int_mm(x8, w8),
                                                                               args.repeats, warmup=2),
        "spikeflow W3 forward (both layers, spike-driven, input compression included)":
            median_ms(spikeflow_w3, args.repeats, warmup=2),
    }
    for name, t in ms.items():
        print(f"{t:8.2f} ms  {name}")
    if args.json:
        out = {"command": "python benchmarks/lowp_matmul.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               "commit": commit(), "machine": machine(), "threads": 2, "repeats": args.repeats,
               "median_ms": ms}
        atomic_write_text(args.json, json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
