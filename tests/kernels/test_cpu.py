import subprocess
import sys


def test_a_kernel_call_keeps_the_thread_count_torch_was_given():
    """Numba's first parallel call starts its OpenMP threads, which resets the process's OpenMP thread
    count, torch's included, to numba's default (the machine's CPUs): after a fused layer's first
    call torch must still run on the one thread it was given, and so must numba. A fresh process:
    numba's threads start once per process."""
    code = ("import torch; torch.set_num_threads(1)\n"
            "import numba, spikeflow.nn as snn\n"
            "x = (torch.rand(5, 2, 8) < 0.3).float()\n"
            "with torch.no_grad(): snn.LinearLIF(8, 4, event='always')(x)\n"
            "print(torch.get_num_threads(), numba.get_num_threads())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={"NUMBA_NUM_THREADS": "2", "PATH": "", "HOME": "/tmp"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["1", "1"]
