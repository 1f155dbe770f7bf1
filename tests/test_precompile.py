"""``spikeflow precompile`` fills numba's on-disk cache: a new process then loads the kernels
instead of compiling them."""

import subprocess
import sys

from spikeflow.cli import main

# a new process: one training step of a fused LinearLIF pair, then what numba did for each kernel it ran
PROBE = """
import torch
from spikeflow.commands.precompile import linear_kernels
from spikeflow.kernels import linear_lif, linear_lif_pair
linear_kernels()
for k in (linear_lif_pair.forward, linear_lif_pair.pack_rows, linear_lif.backward, linear_lif.compress32):
    print(sum(k.stats.cache_hits.values()), sum(k.stats.cache_misses.values()))
"""


def test_precompiled_kernels_load_from_the_cache_in_a_new_process(capsys):
    assert main(["precompile", "--half", "1"]) == 0
    assert "half 1 of the kernels compiled" in capsys.readouterr().out
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    counts = [tuple(map(int, line.split())) for line in done.stdout.split("\n") if line]
    assert len(counts) == 4
    for hits, misses in counts:  # loaded, not compiled
        assert hits >= 1 and misses == 0, done.stdout


def test_bad_half_is_one_line_naming_the_option(capsys):
    assert main(["precompile", "--half", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--half" in err and "invalid choice" in err
