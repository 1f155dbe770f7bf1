"""What every benchmark worker shares, without importing torch (the spyx worker's venv has none).

The workload definitions, the ``--tiny`` sizes for quick end-to-end checks, the process-memory probes
(RSS, the kernel's peak-RSS mark) and the timing loop that turns ``step(i)`` calls into the one
``RESULT {json}`` line that ``benchmarks/peers.py`` reads.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time

WORKLOADS = {
    "W1": dict(kind="mlp", T=100, B=32, train=True),
    "W2": dict(kind="conv", T=20, B=16, train=True),
    "W3": dict(kind="mlp", T=100, B=32, train=False),
    "W4": dict(kind="mlp", T=1000, B=8, train=True),
}
# ``--tiny``: the same networks on a few steps of a small batch, for tests of the workers themselves
TINY = {"W1": dict(T=10, B=4), "W2": dict(T=4, B=2), "W3": dict(T=10, B=4), "W4": dict(T=40, B=2)}
DECAY = 0.9
W1_GAIN = 4.0  # layer weights = 4 x torch's default init, so the hidden layers spike (~5-15 %)
N_BATCHES = 4  # input batches, cycled through the steps


def workload(name: str, tiny: bool = False) -> dict:
    wl = dict(WORKLOADS[name])
    if tiny:
        wl.update(TINY[name])
    return wl


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def release_free_memory() -> None:
    """Hand memory freed by earlier steps back to the OS (glibc ``malloc_trim``), so RSS is live memory."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_hwm() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM; Linux >= 4.0) so it covers only what follows."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def hwm_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def median_ms(fn, repeats: int, warmup: int = 1) -> float:
    """The median wall time of ``repeats`` calls of ``fn()`` in ms, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def timed_run(step, warmup: int, steps: int, warmup_s: float = 0.0, steps_s: float = 0.0) -> dict:
    """Warm-up steps (timed apart: they hold compilation), then the timed steps, with the memory figures.

    ``step(i)`` runs training (or inference) step ``i`` to completion (asynchronous libraries block on
    their result inside it). At least ``warmup`` warm-up steps and as many more as ``warmup_s``
    seconds of steps take; at least ``steps`` timed steps and ``steps_s`` seconds of them. A
    millisecond step reaches its steady pace only after tens of steps (caches, the cores' clocks):
    counted in steps alone, the warm-up would leave the fastest libraries timed before they got there."""
    warm = []
    start = time.perf_counter()
    while len(warm) < warmup or time.perf_counter() - start < warmup_s:
        t0 = time.perf_counter()
        step(len(warm))
        warm.append((time.perf_counter() - t0) * 1e3)
    # steady state after warm-up (parameters, optimizer state, compiled kernels), with the memory
    # the warm-up freed returned to the OS; the peak of the timed steps above it is the step's own
    # working memory (activations, tensors saved for the backward, gradients)
    release_free_memory()
    rss_before = rss_mb()
    hwm_ok = reset_hwm()
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    times = []
    while len(times) < steps or time.perf_counter() - wall0 < steps_s:
        t0 = time.perf_counter()
        step(len(warm) + len(times))
        times.append((time.perf_counter() - t0) * 1e3)
    step_peak = hwm_mb() if hwm_ok else peak_rss_mb()
    return dict(times_ms=times, warmup_ms=warm, rss_before_mb=rss_before, step_peak_rss_mb=step_peak,
                peak_rss_mb=peak_rss_mb(), cpu_s=time.process_time() - cpu0,
                # the process and the children it waited for (a compiler's C++ builds)
                own_cpu_total_s=sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
                + sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2]),
                wall_s=time.perf_counter() - wall0, pid=os.getpid())


def emit(result: dict) -> None:
    print("RESULT " + json.dumps(result), flush=True)


def save_json(path: str, script: str, argv, **fields) -> None:
    """``fields`` after the command that made them (``python benchmarks/SCRIPT ARGS``, ``argv`` or the
    process's own arguments), the commit and the machine, written to ``path`` as JSON by one atomic
    write (spikeflow imported here: the spyx worker's venv has no torch)."""
    from spikeflow.atomic import atomic_write_text
    from spikeflow.provenance import commit, machine

    command = f"python benchmarks/{script} " + " ".join(argv if argv is not None else sys.argv[1:])
    doc = {"command": command, "commit": commit(), "machine": machine(), **fields}
    atomic_write_text(path, json.dumps(doc, indent=1) + "\n")
