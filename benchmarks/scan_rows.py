"""How fast each way of listing a row's non-zero entries runs on this CPU (``kernels.simd``).

    python benchmarks/scan_rows.py [--repeats 50] [--json benchmarks/results/scan-rows.json]

spikeflow's fused kernels list the active inputs of every row themselves: W1's 3200 input rows of
700 spikes as bytes (5 % active) and its 3200 hidden rows of 256 float32 spikes (7 % active). Each
row is listed both ways ``simd`` knows, on one thread: with AVX-512's compress instructions
(``compress``; emulated lane by lane by LLVM where the CPU lacks them) and from bit masks of the
non-zero lanes (``masks``). ``kernels.simd`` picks the compress where the CPU has it
(``WIDE_COMPRESS``, ``WIDE_BYTE_COMPRESS``, printed with the figures). Medians of ``--repeats``.

``float32 silent rows``: 3200 rows of 256 zeros (a layer that never fires) listed into a buffer
fresh from the OS, whose pages nothing has written yet: a store masked to the (empty) count would
leave them unwritten and take a microcode assist on every row (``simd.compress_indices``).
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import sys

import numba as nb
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))

from bench_proc import median_ms  # noqa: E402
from spikeflow.atomic import atomic_write_text  # noqa: E402
from spikeflow.kernels import simd  # noqa: E402
from spikeflow.provenance import commit, machine  # noqa: E402


def _rows(scan):
    @nb.njit
    def run(x, out):
        total = 0
        for r in range(x.shape[0]):
            total += scan(x[r], out)
        return total
    return run


WAYS = {
    ("bytes", "compress"): _rows(nb.njit(lambda v, out: simd.append_nonzero_bytes_compress(v, out, 0, 1.0)[0])),
    ("bytes", "masks"): _rows(nb.njit(lambda v, out: simd.append_nonzero_bytes_masks(v, out, 0, 1.0)[0])),
    ("float32", "compress"): _rows(nb.njit(lambda v, out: simd.append_nonzero_compress(v, out, 0))),
    ("float32", "masks"): _rows(nb.njit(lambda v, out: simd.append_nonzero_masks(v, out, 0))),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--json", default=None, help="write the figures here")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = {"bytes": (rng.random((3200, 700)) < 0.05).astype(np.uint8),
            "float32": (rng.random((3200, 256)) < 0.07).astype(np.float32)}
    rows["float32 silent"] = np.zeros((3200, 256), np.float32)
    ms = {}
    for (kind, way), run in [*WAYS.items(), *[(("float32 silent", way), WAYS["float32", way])
                                               for way in ("compress", "masks")]]:
        x = rows[kind]
        out = np.frombuffer(mmap.mmap(-1, 2 * mmap.PAGESIZE), np.int32)  # pages fresh from the OS
        if run(x, out) != np.count_nonzero(x):
            raise SystemExit(f"scan_rows: {kind} rows listed by {way} miss entries")
        ms[f"{kind} rows, {way}"] = median_ms(lambda run=run, x=x, out=out: run(x, out), args.repeats, warmup=0)
    chosen = {"float32": "compress" if simd.WIDE_COMPRESS else "masks",
              "bytes": "compress" if simd.WIDE_BYTE_COMPRESS else "masks"}
    for name, t in ms.items():
        print(f"{t:8.3f} ms  {name}")
    print(f"chosen on this CPU: {chosen}; vectors of {simd.VECTOR_BYTES} bytes")
    if args.json:
        doc = {"command": "python benchmarks/scan_rows.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               "commit": commit(), "machine": machine(), "threads": 1, "repeats": args.repeats,
               "rows": {"bytes": "3200 x 700 uint8, 5 % active", "float32": "3200 x 256 float32, 7 % active",
                        "float32 silent": "3200 x 256 float32 zeros, listed into pages never written"},
               "median_ms": ms, "chosen": chosen, "vector_bytes": simd.VECTOR_BYTES}
        atomic_write_text(args.json, json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
