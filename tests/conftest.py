import os
import random

import numpy as np
import pytest
import torch
from hypothesis import settings

# Small test workloads run best on one thread: on a small shared machine torch's OpenMP threads
# otherwise wait on each other. Override with SPIKEFLOW_TEST_THREADS.
torch.set_num_threads(int(os.environ.get("SPIKEFLOW_TEST_THREADS", "1")))

# Without a CUDA device the triton kernels (spikeflow.kernels.gpu*) run under triton's interpreter on
# CPU tensors; triton reads this when a kernel is defined, so it is set before any test imports one.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# Property tests: the unit suite draws the same examples on every run and machine ("unit", the
# default), so it cannot fail by chance; `make test-slow` searches afresh each time ("random").
# Choose with --hypothesis-profile NAME or the HYPOTHESIS_PROFILE environment variable.
settings.register_profile("unit", derandomize=True, database=None, print_blob=True)
settings.register_profile("random", derandomize=False, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "unit"))


def _seed_global_rngs(seed: int = 0) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


_seed_global_rngs()  # draws made while collecting


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Every test, and the fixtures first set up for it, start from the same global random state,
    whatever ran before: a test that draws from torch's, numpy's or Python's global generator
    without seeding it sees the same numbers alone, in the full suite or in any order."""
    _seed_global_rngs()
