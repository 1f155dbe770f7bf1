import os

import torch

# Small test workloads run best on one thread; on a shared 2-core machine torch's OpenMP
# threads otherwise wait on each other (see ECOSYSTEM.md). Override with SPIKEFLOW_TEST_THREADS.
torch.set_num_threads(int(os.environ.get("SPIKEFLOW_TEST_THREADS", "1")))
