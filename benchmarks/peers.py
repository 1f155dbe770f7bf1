"""spikeflow against snnTorch, SpikingJelly, Norse, spyx (JAX) and a plain torch LIF loop under
``torch.compile`` on the CPU (workloads W1-W4, defined in ``bench_worker.py``), plus the dense floor.

    python benchmarks/peers.py                 # all workloads, writes benchmarks/RESULTS.md
    python benchmarks/peers.py --runs 3        # the whole measurement 3 times: ratios per run
    python benchmarks/peers.py --workloads W1 --rounds 1 --out /tmp/r.md

Each library runs in its own process: spikeflow, torch.compile and the dense floor run
``bench_worker.py`` in this interpreter with ``src`` on the path; snnTorch, SpikingJelly and Norse
run it in ``benchmarks/.venv-peers``; spyx runs ``bench_worker_spyx.py`` in
``benchmarks/.venv-spyx`` (``make bench`` creates both) on weights and inputs exported from the
same seeds. Rounds alternate the order of the libraries; every run does warm-up steps then timed
steps, each at least a count and at least a time (``--warmup-s``, ``--steps-s``: a step of a
millisecond reaches its steady pace only after tens of steps, so a warm-up of two steps times the
fastest libraries before they get there); the table shows the median over all timed steps of all
rounds and runs. Compilation
(torch.compile's inductor, from an empty cache every run; spyx's ``jax.jit``) happens before or in
the first warm-up step and is reported apart. The worker records how busy the other processes kept
the CPUs during its timed steps; a run above ``--load-limit`` is retried (a shared core wrecks
2-thread torch timings) and flagged if it never gets a quiet machine.

``--runs N`` repeats the whole measurement N times and reports, per workload, spikeflow's speed-up
over the fastest peer of each run (median and range over the runs) and, for W4, its step memory
against the lowest peer's; ``benchmarks/results/peers.json`` keeps every run's raw medians with the
command, commit and machine. Each run starts with ``core_probe.probe``: on a virtual machine the
two CPUs are sometimes one core's two hardware threads, which share the L2 cache that W1's
kernels are bound by, and its two ratios say how far apart they were for that run. A run waits for
both ratios to be at most ``--probe-limit`` (probing again every ``--probe-wait`` seconds, at most
``--probe-tries`` times), as a library's measurement waits for a quiet machine: the condition is
the host's, measured apart from every library.

Every library computes the same function from the same weights and inputs: the hidden layers'
spike counts in the first forward must equal spikeflow's within ``COUNT_TOLERANCE`` (snnTorch's
``Leaky`` resets by its own convention, so it gets ``CONVENTION_TOLERANCE``); a library outside its
tolerance is marked DIFFERS in the table.

Every library trains with the same optimizer, torch's fused CPU Adam by default (``--adam``):
the Adam update is the same whatever library computed the gradients, and the fused one spends
less of every library's step on it (spyx uses optax's Adam with the same hyper-parameters).

Every library's process gets the same glibc malloc settings (``--malloc``). By default
(``keep``) freed memory stays in the process for reuse instead of going back to the OS after
each step, which otherwise makes the next step page-fault its large buffers in again (tens of
MB per W2 step on this machine); PyTorch's CPU performance guide gives the same advice (a
caching allocator such as jemalloc or tcmalloc). ``--malloc default`` runs glibc as it comes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import core_probe
from bench_proc import TINY, W1_GAIN
from bench_worker_spyx import XLA_FLAGS
from spikeflow.atomic import atomic_write_text
from spikeflow.provenance import commit, machine

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS_PY = HERE / ".venv-peers" / "bin" / "python"
SPYX_PY = HERE / ".venv-spyx" / "bin" / "python"
TORCH_PEERS = ("snntorch", "spikingjelly", "norse")
PEERS = TORCH_PEERS + ("spyx", "spyx-uint8", "torch.compile")
# the MLP workloads' input formats: spikeflow reads the 0/1 batches as uint8 ("spikeflow-float32": the
# same network fed float32), spyx takes them as float32 or as uint8 converted inside its jit
# ("spyx-uint8"); the conv workload's input is float32 for every library
MLP_ONLY = ("spikeflow-float32", "spyx-uint8")
# "spikeflow-step": the W1 network trained by ``spikeflow.train.TrainStep`` (the pair's kernels called
# without autograd, as spyx jits its whole step) instead of the autograd loop every library runs
STEP_ONLY = {"spikeflow-step": ("W1",)}
LIBS = ("spikeflow", "spikeflow-float32", "spikeflow-step") + PEERS + ("dense",)
# other spikeflow rows whose ratio to the fastest peer is reported apart: (row, what it is)
OTHER_ROWS = (("spikeflow-float32", "spikeflow fed float32 input"),
              ("spikeflow-step", "spikeflow's `TrainStep`"))
VENV_OF = {**{lib: PEERS_PY for lib in TORCH_PEERS}, "spyx": SPYX_PY, "spyx-uint8": SPYX_PY}
# hidden spike counts of the first forward vs spikeflow's, relative, per hidden layer
COUNT_TOLERANCE = 0.001
# snnTorch's Leaky subtracts the threshold before the decay: measured 0.9 % fewer hidden spikes in W1/W3/W4 and
# 4 % / 8 % fewer in W2's two conv layers (the difference compounds through the layers)
CONVENTION_TOLERANCE = {"snntorch": 0.10}
# glibc malloc settings given to every worker: never trim the heap, and serve blocks up to 32 MiB
# (glibc's largest mmap threshold) from it, so freed activations are reused without page faults
MALLOC_KEEP = {"MALLOC_TRIM_THRESHOLD_": str(1 << 40), "MALLOC_MMAP_THRESHOLD_": str(32 << 20)}
WORKLOADS = ("W1", "W2", "W3", "W4")
TITLES = {
    "W1": "W1 train: 700-256-20 LIF MLP, T=100, B=32, p=0.05 input (fwd + bwd + Adam)",
    "W2": "W2 train: conv 2x32x32 -> C16 -> C32 -> FC10 LIF, T=20, B=16, p=0.1 (fwd + bwd + Adam)",
    "W3": "W3 inference: W1 network, forward only, no grad",
    "W4": "W4 train, long sequence: W1 network, T=1000, B=8 (time and peak memory)",
}
JSON_OUT = HERE / "results" / "peers.json"


def cpu_busy_jiffies():
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    vals = [int(v) for v in parts]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return sum(vals[:8]) - idle


def stat_cpus() -> int:
    """CPUs that /proc/stat accounts for (the load fraction is over these)."""
    with open("/proc/stat") as f:
        return max(1, sum(1 for ln in f if ln.startswith("cpu") and ln[3:4].isdigit()))


def worker_command(lib: str, workload: str, args, data_dir: Path) -> list:
    common = ["--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads),
              "--warmup-s", str(args.warmup_s), "--steps-s", str(args.steps_s)]
    if args.tiny:
        common.append("--tiny")
    if lib in ("spyx", "spyx-uint8"):
        npz = data_dir / f"{workload}.npz"
        if not npz.exists():
            import bench_worker  # torch: only here, in the project venv

            bench_worker.export_npz(workload, npz, tiny=args.tiny)
        form = ["--input", "uint8"] if lib == "spyx-uint8" else []
        return [str(SPYX_PY), str(HERE / "bench_worker_spyx.py"), workload, str(npz)] + common + form
    py = str(VENV_OF.get(lib, sys.executable))
    return [py, str(HERE / "bench_worker.py"), lib, workload, "--adam", args.adam,
            "--compile-mode", args.compile_mode, "--compile-scope", args.compile_scope] + common


def run_worker(lib: str, workload: str, args, data_dir: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads), NUMBA_NUM_THREADS=str(args.threads))
    if args.malloc == "keep":
        env.update(MALLOC_KEEP)
    cache = None
    if lib == "torch.compile":  # inductor compiles from an empty cache every run: the cold compile time
        cache = tempfile.mkdtemp(prefix="peers-inductor-")
        env["TORCHINDUCTOR_CACHE_DIR"] = cache
        # compile in this process: inductor's pool of compile workers would otherwise count as other
        # processes' load, and every run would be retried and flagged LOADED
        env["TORCHINDUCTOR_COMPILE_THREADS"] = "1"
    cmd = worker_command(lib, workload, args, data_dir)
    hz = os.sysconf("SC_CLK_TCK")
    ncpu = stat_cpus()
    busy0, t0 = cpu_busy_jiffies(), time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
    finally:
        if cache:
            shutil.rmtree(cache, ignore_errors=True)
    busy1, t1 = cpu_busy_jiffies(), time.perf_counter()
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"{lib} {workload} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    res = json.loads(line[len("RESULT "):])
    # CPU use of every other process during this run, as a fraction of all cores
    own = res["own_cpu_total_s"]
    res["other_load"] = max(0.0, ((busy1 - busy0) / hz - own) / ((t1 - t0) * ncpu))
    # compilation, apart from the step times: spyx compiles ahead of its first step, the others in it
    res["first_step_s"] = res.get("compile_s", 0.0) + res["warmup_ms"][0] / 1e3 if res["warmup_ms"] else None
    return res


def machine_line() -> str:
    m = machine()
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / 1024 / 1024:.0f} GiB RAM"
    except OSError:
        mem = "RAM unknown"
    family, model = m.get("cpu_family_model") or (None, None)
    cpu = m["cpu"] + (f" (family {family}, model {model})" if family and model else "")
    return (f"{cpu}, {m['cores']} logical CPUs, vector extensions {' '.join(m['vector_extensions']) or 'none'}, "
            f"{mem}, {platform.system()} {platform.release()}")


def measure(args, data_dir: Path, on_workload_done=None) -> dict:
    results = {}
    for wl in args.workloads:
        libs = [lib for lib in args.libs if f"{wl}:{lib}" not in args.skip and not (wl == "W2" and lib in MLP_ONLY)
                and wl in STEP_ONLY.get(lib, (wl,))]
        for rnd in range(args.rounds):
            order = libs if rnd % 2 == 0 else list(reversed(libs))
            for lib in order:
                best = None
                for attempt in range(args.max_retries + 1):
                    res = run_worker(lib, wl, args, data_dir)
                    tag = f"{wl} round {rnd + 1} {lib:13s}"
                    med = statistics.median(res["times_ms"])
                    print(f"{tag} median {med:9.2f} ms  other-process load {res['other_load']:.0%}", flush=True)
                    if best is None or res["other_load"] < best["other_load"]:
                        best = res
                    if res["other_load"] <= args.load_limit:
                        break
                    more = "retrying" if attempt < args.max_retries else "no retries left: result flagged LOADED"
                    print(f"  WARNING: other processes used {res['other_load']:.0%} of the CPUs; {more}", flush=True)
                best["loaded"] = best["other_load"] > args.load_limit
                results.setdefault(wl, {}).setdefault(lib, []).append(best)
        if on_workload_done is not None:
            on_workload_done(results)
    return results


def summarise(runs: list) -> dict:
    times = [t for r in runs for t in r["times_ms"]]
    med = statistics.median(times)
    firsts = [r["first_step_s"] for r in runs if r.get("first_step_s") is not None]
    return dict(
        median_ms=med, n=len(times), samples_per_s=runs[0]["batch"] / (med / 1e3),
        peak_rss_mb=max(r["peak_rss_mb"] for r in runs),
        rss_growth_mb=max(r["step_peak_rss_mb"] - r["rss_before_mb"] for r in runs),
        load=max(r["other_load"] for r in runs), loaded=any(r["loaded"] for r in runs),
        version=runs[0]["version"], hidden=runs[0]["hidden_spikes_first"],
        first_step_s=statistics.median(firsts) if firsts else None,
    )


def count_differs(lib: str, hidden, reference) -> bool:
    """Whether a library's hidden spike counts differ from spikeflow's beyond its tolerance."""
    if hidden is None or reference is None or lib in ("spikeflow", "dense"):
        return False
    if len(hidden) != len(reference):
        return True
    tol = CONVENTION_TOLERANCE.get(lib, COUNT_TOLERANCE)
    return any(abs(h - r) > tol * max(abs(r), 1.0) for h, r in zip(hidden, reference))


def fastest_peer(summ: dict):
    peers = {k: v for k, v in summ.items() if k in PEERS}
    return min(peers, key=lambda k: peers[k]["median_ms"]) if peers else None


def lowest_memory_peer(summ: dict):
    peers = {k: v for k, v in summ.items() if k in PEERS}
    return min(peers, key=lambda k: peers[k]["rss_growth_mb"]) if peers else None


def table(wl: str, summ: dict) -> list:
    sf = summ.get("spikeflow")
    ref = sf["hidden"] if sf else None
    lines = [f"### {TITLES[wl]}", "",
             "| library | ms/step (median) | samples/s | peak RSS MB | step memory MB | spikeflow speed-up "
             "| 1st step s (compile) | other-process CPU load | hidden spikes, 1st batch |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for lib, s in summ.items():
        ratio = f"{s['median_ms'] / sf['median_ms']:.2f}x" if sf and lib != "spikeflow" else "-"
        flag = " (LOADED)" if s["loaded"] else ""
        hidden = "-" if s["hidden"] is None else " / ".join(f"{h:.0f}" for h in s["hidden"])
        if count_differs(lib, s["hidden"], ref):
            hidden += " **DIFFERS**"
        first = "-" if s["first_step_s"] is None else f"{s['first_step_s']:.1f}"
        lines.append(f"| {s['version']} | {s['median_ms']:.2f} | {s['samples_per_s']:.0f} | {s['peak_rss_mb']:.0f} "
                     f"| {s['rss_growth_mb']:.1f} | {ratio} | {first} | {s['load']:.0%}{flag} | {hidden} |")
    fastest = fastest_peer(summ)
    if sf and fastest:
        speedup = summ[fastest]["median_ms"] / sf["median_ms"]
        line = f"spikeflow vs the fastest peer ({fastest}): **{speedup:.2f}x**"
        if "dense" in summ:
            line += f"; vs the dense floor: {summ['dense']['median_ms'] / sf['median_ms']:.2f}x"
        lines += ["", line]
        for row, what in OTHER_ROWS:
            if row in summ:
                lines.append(f"{what} vs the fastest peer: "
                             f"**{summ[fastest]['median_ms'] / summ[row]['median_ms']:.2f}x**")
        if wl == "W4":
            low = lowest_memory_peer(summ)
            lines.append(f"W4 memory: spikeflow's step memory {sf['rss_growth_mb']:.1f} MB vs the lowest peer's "
                         f"({low}) {summ[low]['rss_growth_mb']:.1f} MB: ratio "
                         f"**{sf['rss_growth_mb'] / max(summ[low]['rss_growth_mb'], 1e-9):.2f}**")
    return lines + [""]


def per_run_ratios(all_runs: list, wl: str, row: str = "spikeflow") -> dict:
    """Per run: spikeflow's speed-up over that run's fastest peer, and (W4) its step memory over the
    lowest peer's; ``row``: which spikeflow row (``spikeflow-float32``: fed float32 input)."""
    speed, memory = [], []
    for run in all_runs:
        if wl not in run:
            continue
        summ = {lib: summarise(r) for lib, r in run[wl].items()}
        sf, fastest = summ.get(row), fastest_peer(summ)
        if not sf or not fastest:
            continue
        speed.append((fastest, summ[fastest]["median_ms"] / sf["median_ms"]))
        low = lowest_memory_peer(summ)
        memory.append((low, sf["rss_growth_mb"] / max(summ[low]["rss_growth_mb"], 1e-9)))
    return {"speed": speed, "memory": memory}


def _tries(probe: dict) -> str:
    n = probe.get("tries", 1)
    return f" (after {n} probes)" if n > 1 else ""


def runs_section(all_runs: list, workloads: list, probes: list = (), limit: float = 0.0, wait: float = 0.0,
                 tries: int = 1) -> list:
    """The per-run ratios to the fastest peer, and ``probes`` (``core_probe.probe`` at each run's start)."""
    lines = [f"### Over {len(all_runs)} full run(s)", "",
             "| workload | spikeflow vs the fastest peer, per run | median | range |", "|---|---|---:|---|"]
    w4_memory = None
    for wl in workloads:
        r = per_run_ratios(all_runs, wl)
        if not r["speed"]:
            continue
        vals = [v for _, v in r["speed"]]
        each = ", ".join(f"{v:.2f}x ({lib})" for lib, v in r["speed"])
        lines.append(f"| {wl} | {each} | **{statistics.median(vals):.2f}x** | {min(vals):.2f}x - {max(vals):.2f}x |")
        if wl == "W4":
            w4_memory = r["memory"]
    for row, what in OTHER_ROWS:
        ratios = [(wl, [v for _, v in per_run_ratios(all_runs, wl, row)["speed"]]) for wl in workloads]
        ratios = [(wl, vals) for wl, vals in ratios if vals]
        if ratios:
            lines += ["", f"{what} (the `{row}` rows) vs the fastest peer, per run: "
                      + "; ".join(f"{wl} " + ", ".join(f"{v:.2f}x" for v in vals)
                                  + f" (median **{statistics.median(vals):.2f}x**, range {min(vals):.2f}x - "
                                  f"{max(vals):.2f}x)" for wl, vals in ratios)]
    if w4_memory:
        vals = [v for _, v in w4_memory]
        lines += ["", "W4 step memory, spikeflow's over the lowest peer's, per run: "
                  + ", ".join(f"{v:.2f} ({lib})" for lib, v in w4_memory)
                  + f"; median **{statistics.median(vals):.2f}**, range {min(vals):.2f} - {max(vals):.2f}"]
    if probes:
        lines += ["", "Two-core probe at the start of each run (`benchmarks/core_probe.py`: the time "
                  f"{probes[0]['threads']} threads take for a share each over 1 thread's for one share; 1.00x: "
                  "separate cores, 2.00x: one core's hardware threads): "
                  + "; ".join(f"run {n + 1} {core_probe.describe(p)}" + _tries(p) for n, p in enumerate(probes))
                  + (f". A run starts when both ratios are at most {limit:.2f}x (probed again every "
                     f"{wait:.0f} s, at most {tries} times)" if limit else "")]
    return lines + [""]


def separate_cores(args) -> dict:
    """The two-core probe, taken again every ``--probe-wait`` seconds while either ratio is above
    ``--probe-limit`` (at most ``--probe-tries`` probes): a run starts on two separate cores when
    the host gives them within that time. Returns the last probe with its count of ``tries``."""
    for tries in range(1, max(1, args.probe_tries) + 1):
        ratios = core_probe.probe(args.threads)
        print(f"two-core probe: {core_probe.describe(ratios)}", flush=True)
        if not args.probe_limit or max(ratios["compute"], ratios["l2"]) <= args.probe_limit:
            break
        if tries < args.probe_tries:
            time.sleep(args.probe_wait)
    return {**ratios, "tries": tries}


def header(args, started: str, n_runs: int, json_out: Path) -> list:
    import torch  # only for the version line

    try:
        json_name = json_out.resolve().relative_to(ROOT)
    except ValueError:
        json_name = json_out
    tiny = ["- **--tiny: every workload on a few steps of a small batch (" + ", ".join(
        f"{wl} T={TINY[wl]['T']} B={TINY[wl]['B']}" for wl in args.workloads) + "), a check of the workers, not a "
        "measurement**"] if args.tiny else []
    return [
        "# spikeflow vs peer SNN libraries (CPU)", "",
        f"- machine: {machine_line()}",
        f"- commit: {args.commit or 'unknown (not a git checkout)'}",
        f"- date (UTC): {started}; torch {torch.__version__}; {args.threads} threads per library",
        f"- command: `{' '.join(['python', 'benchmarks/peers.py'] + sys.argv[1:])}` (run by `make bench`)",
        f"- method: {n_runs} full run(s) of everything; in each, every library in its own process, {args.rounds} "
        f"round(s) alternating the order, per process at least {args.warmup} warm-up steps and "
        f"{args.warmup_s:g} s of them, then at least {args.steps} timed steps and {args.steps_s:g} s of them "
        f"(a millisecond step reaches its steady pace only after tens of steps); the tables "
        f"show the median over all timed steps of all rounds and runs. Runs where other processes used more than "
        f"{args.load_limit:.0%} of the CPUs were retried (up to {args.max_retries}x); LOADED marks those that never "
        f"got a quiet machine. Raw medians of every run: `{json_name}`.",
        *tiny,
        "- allocator: " + ("every library's process runs with glibc malloc keeping freed memory for reuse ("
                           + ", ".join(f"`{k}={v}`" for k, v in MALLOC_KEEP.items())
                           + "), so large per-step buffers are not page-faulted in again every step; "
                           "`--malloc default` measures plain glibc" if args.malloc == "keep"
                           else "plain glibc malloc (`--malloc default`)"),
        "- the same seeded initial weights and input spikes for every library; 'hidden spikes' counts the "
        "hidden layer's spikes in the first forward (W2: the first / the second conv LIF layer): equal counts show "
        f"the libraries compute the same function. A count more than {COUNT_TOLERANCE:.1%} from spikeflow's is marked "
        "DIFFERS; snnTorch's `Leaky` resets with its own convention (threshold subtracted before the decay), so its "
        "count differs (about 1 % in the MLP, 4 % and 8 % in the conv net's two layers) and its tolerance is "
        f"{CONVENTION_TOLERANCE['snntorch']:.0%}.",
        "- step memory = peak RSS during the timed steps (VmHWM, reset after warm-up) minus RSS before them "
        "(the training step's own working memory: activations, saved tensors, gradients); "
        "peak RSS is the whole process (interpreter, torch or JAX, compiled kernels, weights).",
        "- 1st step s (compile): wall time of the first warm-up step, with any compilation: numba's (from its "
        "on-disk cache after the first run), torch.compile's inductor (from an empty cache in every run) and "
        "spyx's `jax.jit` (compiled ahead of the first step and added to it). The step medians exclude it.",
        "- GPU: not measured on GPU (no GPU was lent to this task). The triton kernels (LIF/IF, `LinearLIF`, "
        "LIF + AvgPool2d) are checked against the CPU kernels under `TRITON_INTERPRET=1` and compiled for sm_90 "
        "(tests/kernels/test_gpu*.py, interop suite); `bash benchmarks/gpu_check.sh` runs those tests on an "
        "NVIDIA GPU and times W1-W4 there against SpikingJelly and spyx (writes benchmarks/results/gpu.json).",
        "- networks: the same layer sizes in every library; layer weights are torch's default init times "
        f"{W1_GAIN:g} (so the hidden layer fires at ~7 %); neurons v <- 0.9 v + x, threshold 1, reset by "
        "subtraction; Norse's LIFBox integrates dt/tau (i - v), so its synaptic weights are scaled by 10 to "
        "compute the same function. Surrogates: each library's fast-sigmoid/default. "
        + ("torch's fused CPU Adam (`Adam(fused=True)`, the same update in one kernel) for every torch library; "
           "`--adam default` uses torch's default Adam" if args.adam == "fused" else "torch's default Adam everywhere")
        + ". spikeflow: in W1/W3/W4 two `LinearLIF` layers in `spikeflow.nn.Sequential`, which runs them as "
        "one numba kernel (spike-driven Linear and LIF fused: the synaptic current is never stored; the kernel "
        "finds each step's active inputs as it reads the input, with no compression pass of its own; the hidden "
        "spikes stay index lists, so neither the hidden spike map nor its gradient is stored; the backward "
        "keeps 4 bytes per neuron-step, the membrane before reset, or in W4 a checkpoint every 32 steps and "
        "recomputes the rest; the index lists' buffers are reused from step to step, and in W1 every buffer of "
        "the training call (two sets taking turns, `kernels.pair_training`), so they are in the RSS before the "
        "timed steps, as the weights are); "
        "in W2 `SpikeConv2d` (event path for the first conv, whose input is 10 % active; the second conv "
        "sees 30 % non-zero pooled input, above the measured crossover, so it runs torch's dense conv) and "
        "each LIF + AvgPool2d pair fused in one kernel by `spikeflow.nn.Sequential` (no full-size spike "
        "map; channels-last memory kept from the event conv through the LIF kernel). Input format: in "
        "W1/W3/W4 spikeflow gets the 0/1 input batches as uint8, converted once before the steps (its fused "
        "pair reads bytes: a quarter of float32's memory traffic for the same values); the `float32 input` row "
        "is the same network fed the float32 batches; spyx runs both ways (float32, and uint8 converted inside "
        "its jit: the `uint8 input` row) and the faster counts as the peer; the torch libraries get float32 "
        "(their layers compute in float); W2's input is float32 for every library. The `TrainStep` row (W1): the "
        "same network and Adam, each step one call of `spikeflow.train.TrainStep` (the pair's forward kernel, "
        "the count cross-entropy and its gradient in one numba call, the one-sweep backward kernel, then the "
        "threads' gradient parts summed and Adam's update on torch's optimizer state in one numba call, the weights' "
        "and biases' `.grad` set), which skips autograd's graph, the per-call checks and tensors around the "
        "kernels and a separate optimizer pass, as spyx's `jax.jit` compiles its whole step with optax's "
        "Adam; the autograd row is the loop every library runs.",
        "- spyx (JAX, `bench_worker_spyx.py`, its own venv `benchmarks/.venv-spyx`): flax `nnx` layers on all time "
        "steps at once, each LIF layer one `jax.lax.scan` over time (`spyx.nn.run`), the whole training step "
        "(forward, `jax.value_and_grad`, optax Adam with torch's hyper-parameters) one `jax.jit`, NHWC convolutions. "
        "spyx's `nn.LIF` fires on the membrane before the step's input (snnTorch's convention), so the neuron is "
        "spyx's LIF with the other libraries' order (integrate, fire, subtract) and spyx's SuperSpike surrogate "
        "(k=25, snnTorch's fast sigmoid). Threads: the process restricts itself to "
        f"{args.threads} CPUs (`sched_setaffinity`, as `taskset` does; XLA sizes its CPU thread pool by them) and "
        f"runs with `XLA_FLAGS={XLA_FLAGS}`.",
        "- torch.compile (`bench_worker.py`, the project venv): a plain torch LIF loop, the same neuron and a "
        "fast-sigmoid surrogate (slope 25) as a custom autograd function, under `torch.compile` (mode "
        f"`{args.compile_mode}`). "
        + ("The per-time-step cell (neurons and the layers after the first; inductor fuses the neuron updates with "
           "the layers) is compiled, the first layer runs on all steps at once and the time loop stays in Python, "
           "so the graph does not grow with T (`--compile-scope forward`, the whole forward with its time loop "
           "unrolled, had not finished compiling W1 after 150 s of CPU time, 15 minutes wall, on this machine)."
           if args.compile_scope == "cell" else
           "The whole forward is compiled, its time loop unrolled into one graph (`--compile-scope forward`).")
        + " It counts as a peer.",
        "",
    ]


def keep_tail(path: Path) -> str:
    """The sections after the peers' tables (``## ...`` headings other benchmarks write by hand), kept."""
    try:
        old = path.read_text()
    except OSError:
        return ""
    at = old.find("\n## ")
    return old[at:] if at >= 0 else ""


def write_results(all_runs: list, args, path: Path, started: str, json_out: Path, probes: list = ()) -> None:
    lines = header(args, started, len(all_runs), json_out)
    if any(r["loaded"] for run in all_runs for wl in run.values() for runs in wl.values() for r in runs):
        lines += ["**Warning: some runs never got a quiet machine (LOADED below): other processes kept the "
                  "CPUs busy, which slows 2-thread torch and numba code unevenly. Treat those numbers as "
                  "preliminary and re-run `make bench` on an idle machine.**", ""]
    if args.skip:
        lines += [f"- skipped in this run: {', '.join(sorted(args.skip))}", ""]
    for wl in args.workloads:
        pooled = {}
        for run in all_runs:
            for lib, runs in run.get(wl, {}).items():
                pooled.setdefault(lib, []).extend(runs)
        if pooled:
            lines += table(wl, {lib: summarise(runs) for lib, runs in pooled.items()})
    lines += runs_section(all_runs, args.workloads, probes, args.probe_limit, args.probe_wait, args.probe_tries)
    text = "\n".join(lines) + "\n"
    atomic_write_text(path, text.rstrip("\n") + "\n" + keep_tail(path) if keep_tail(path) else text)
    print(text)


def write_json(all_runs: list, args, path: Path, started: str, probes: list = ()) -> None:
    raw = []
    for run in all_runs:
        per_wl = {}
        for wl, libs in run.items():
            per_wl[wl] = {}
            for lib, runs in libs.items():
                s = summarise(runs)
                per_wl[wl][lib] = dict(median_ms=s["median_ms"], step_memory_mb=s["rss_growth_mb"],
                                       peak_rss_mb=s["peak_rss_mb"], first_step_s=s["first_step_s"],
                                       hidden_spikes_first=s["hidden"], version=s["version"],
                                       other_load=s["load"], loaded=s["loaded"],
                                       median_ms_per_round=[statistics.median(r["times_ms"]) for r in runs])
        raw.append(per_wl)
    ratios = {wl: per_run_ratios(all_runs, wl) for wl in args.workloads}
    doc = dict(command=" ".join(["python", "benchmarks/peers.py"] + sys.argv[1:]), commit=args.commit,
               machine=machine(), date_utc=started, threads=args.threads, rounds=args.rounds, steps=args.steps,
               warmup=args.warmup, warmup_s=args.warmup_s, steps_s=args.steps_s, tiny=args.tiny, runs=raw,
               spikeflow_vs_fastest_peer={wl: [dict(peer=p, ratio=v) for p, v in r["speed"]]
                                          for wl, r in ratios.items()},
               w4_step_memory_vs_lowest_peer=[dict(peer=p, ratio=v)
                                              for p, v in ratios.get("W4", {}).get("memory", [])],
               core_probe_per_run=list(probes))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(doc, indent=1) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--libs", default=",".join(LIBS))
    ap.add_argument("--runs", type=int, default=1, help="repeat the whole measurement this many times")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--warmup-s", type=float, default=None,
                    help="every process warms up for at least this many seconds as well, to its steady pace "
                    "(default 1; 0 with --tiny)")
    ap.add_argument("--steps-s", type=float, default=None,
                    help="and times steps for at least this many seconds as well (default 0.5; 0 with --tiny)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tiny", action="store_true", help="every workload on a few steps of a small batch (checks)")
    ap.add_argument("--load-limit", type=float, default=0.25)
    ap.add_argument("--max-retries", type=int, default=2)
    ap.add_argument("--probe-limit", type=float, default=None,
                    help="start a run when both two-core probe ratios are at most this (default 1.2; 0, the "
                         "default with --tiny: at once)")
    ap.add_argument("--probe-tries", type=int, default=10, help="probes at most before a run starts anyway")
    ap.add_argument("--probe-wait", type=float, default=30.0, help="seconds between probes")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    ap.add_argument("--json", default=None, help=f"raw results per run (default: {JSON_OUT.relative_to(ROOT)} "
                    "when --out is the default, else next to --out)")
    ap.add_argument("--malloc", choices=("keep", "default"), default="keep",
                    help="glibc malloc settings for every library's process (see the module docstring)")
    ap.add_argument("--adam", choices=("fused", "default"), default="fused",
                    help="every library's optimizer: torch's fused CPU Adam (one kernel per step) or its default")
    ap.add_argument("--compile-mode", default="default",
                    help="torch.compile's mode for the torch.compile peer (e.g. max-autotune-no-cudagraphs)")
    ap.add_argument("--compile-scope", choices=("cell", "forward"), default="cell",
                    help="what the torch.compile peer compiles: the per-time-step cell, or the whole forward with "
                    "its time loop unrolled (W1's had not compiled after 15 minutes here)")
    ap.add_argument("--skip", default="", help="comma-separated WORKLOAD:LIB pairs not to run, e.g. W4:snntorch")
    args = ap.parse_args(argv)
    args.workloads = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    args.libs = [lib.strip() for lib in args.libs.split(",") if lib.strip()]
    args.skip = {p.strip() for p in args.skip.split(",") if p.strip()}
    bad = [w for w in args.workloads if w not in WORKLOADS] + [lib for lib in args.libs if lib not in LIBS]
    if bad:
        ap.error(f"unknown workload(s)/library(ies) {bad}; valid: {WORKLOADS} and {LIBS}")
    if args.runs < 1 or args.rounds < 1 or args.steps < 1 or args.warmup < 1:
        ap.error("--runs, --rounds, --steps and --warmup must be >= 1 (the first warm-up step holds compilation)")
    if args.warmup_s is None:
        args.warmup_s = 0.0 if args.tiny else 1.0
    if args.steps_s is None:
        args.steps_s = 0.0 if args.tiny else 0.5
    if args.probe_limit is None:
        args.probe_limit = 0.0 if args.tiny else 1.2
    if args.warmup_s < 0 or args.steps_s < 0:
        ap.error("--warmup-s and --steps-s must be >= 0 seconds")
    for lib in args.libs:
        if lib in VENV_OF and not VENV_OF[lib].exists():
            ap.error(f"{lib} runs in {VENV_OF[lib].parent.parent}, which is missing: run `make bench` (it creates it)")
    out = Path(args.out)
    json_out = Path(args.json) if args.json else (JSON_OUT if out == HERE / "RESULTS.md" else out.with_suffix(".json"))
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    args.commit = commit()  # before this run rewrites RESULTS.md (which would make the tree look dirty)
    all_runs, probes = [], []
    with tempfile.TemporaryDirectory(prefix="peers-data-") as data_dir:
        for n in range(args.runs):
            if args.runs > 1:
                print(f"=== run {n + 1} of {args.runs}", flush=True)
            all_runs.append({})
            probes.append(separate_cores(args))

            def done(res, n=n):
                all_runs[n] = res
                write_results(all_runs, args, out, started, json_out, probes)
                write_json(all_runs, args, json_out, started, probes)

            measure(args, Path(data_dir), done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
