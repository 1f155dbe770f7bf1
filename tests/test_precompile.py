"""``spikeflow precompile`` fills numba's on-disk cache: a new process then loads the kernels
instead of compiling them."""

import subprocess
import sys

from spikeflow.cli import main
from spikeflow.commands.precompile import single_linear_kernels, train_step_kernels

# a new process: a training step of a fused LinearLIF pair and of one alone, TrainStep's on a pair,
# and a camera stream on the event engine, then what numba did for each kernel they ran: loaded it
# from the cache (hits) or compiled it (misses)
PROBE = """
from spikeflow.commands.precompile import linear_kernels, runtime_kernels, single_linear_kernels, train_step_kernels
from spikeflow.kernels import adam, count_loss, linear_lif, linear_lif_pair
from spikeflow.runtime import clockfree_kernel, stream_kernel
linear_kernels()
single_linear_kernels()
runtime_kernels()
train_step_kernels()
for k in (linear_lif_pair.forward, linear_lif.forward, linear_lif.backward, linear_lif.compress32,
          stream_kernel.feed_chunk, clockfree_kernel.advance, clockfree_kernel.run_batch,
          count_loss.count_cross_entropy, adam.adam_from_parts, adam.adam_bias_from_parts):
    print(k.py_func.__name__, sum(k.stats.cache_hits.values()), sum(k.stats.cache_misses.values()))
"""


def test_precompiled_kernels_load_from_the_cache_in_a_new_process(capsys):
    assert main(["precompile", "--half", "1"]) == 0  # the fused Linear+LIF and runtime kernels
    assert "half 1 of the kernels compiled" in capsys.readouterr().out
    single_linear_kernels()  # of half 2: one fused LinearLIF
    train_step_kernels()  # of half 2: TrainStep's loss and fused Adam kernels
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    counts = [line.split() for line in done.stdout.split("\n") if line]
    assert len(counts) == 10
    for name, hits, misses in counts:  # loaded, not compiled
        assert int(hits) >= 1 and int(misses) == 0, f"{name}: {hits} cache hits, {misses} compiles"


def test_bad_half_is_one_line_naming_the_option(capsys):
    assert main(["precompile", "--half", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--half" in err and "invalid choice" in err
