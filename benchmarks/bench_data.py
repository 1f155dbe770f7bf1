"""Data benchmarks: dataset build times and cache sizes on a fresh cache, reader throughput,
stacked binning speed. One command: ``python benchmarks/bench_data.py [--skip-spoken]``.

Prints one line per measurement; records the load average so numbers taken on a busy
machine can be recognised.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-spoken", action="store_true",
                    help="skip spoken-digits (needs espeak-ng, the longest build)")
    args = ap.parse_args()
    os.environ["SPIKEFLOW_PROGRESS"] = "0"
    from spikeflow.data import DATASETS, load_dataset
    from spikeflow.data.events import Events
    from spikeflow.data.formats import encode_evt2, encode_nmnist_bin, read_evt2, read_nmnist_bin

    print(f"load average at start: {os.getloadavg()}")
    cache = tempfile.mkdtemp(prefix="spikeflow-bench-")
    try:
        for name in DATASETS:
            if name == "spoken-digits" and args.skip_spoken:
                continue
            t0 = time.perf_counter()
            ds = load_dataset(name, "train", cache_dir=cache)
            build = time.perf_counter() - t0
            t0 = time.perf_counter()
            load_dataset(name, "train", cache_dir=cache)
            reload = time.perf_counter() - t0
            print(f"{name:14s} build {build:7.1f} s  cache {ds.info['bytes'] / 2**20:7.1f} MiB  "
                  f"reload (checksum verified) {reload:5.2f} s")
        if "nmnist5k" in DATASETS:
            ds = load_dataset("nmnist5k", "train", T=10, cache_dir=cache)
            t0 = time.perf_counter()
            x, _ = ds.as_tensors()
            print(f"nmnist5k as_tensors T=10: {x.shape} uint8 in {time.perf_counter() - t0:.2f} s")
    finally:
        shutil.rmtree(cache, ignore_errors=True)

    rng = np.random.default_rng(0)
    n = 2_000_000
    e = Events.from_arrays(rng.integers(0, 34, n), rng.integers(0, 34, n), np.sort(rng.integers(0, 1 << 30, n)),
                           rng.integers(0, 2, n), (34, 34, 2))
    for label, enc, dec in (("N-MNIST .bin", encode_nmnist_bin, read_nmnist_bin), ("EVT 2.0", encode_evt2, read_evt2)):
        data = enc(e)
        t0 = time.perf_counter()
        dec(data)
        dt = time.perf_counter() - t0
        print(f"read {label}: {n / dt / 1e6:.1f} M events/s ({len(data) / 2**20:.0f} MiB)")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
