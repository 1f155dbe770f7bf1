"""Large scratch buffers that a kernel fills only in part, reused from one call to the next.

The fused LinearLIF pair writes each thread's lists of active inputs and hidden spikes into its own
region of a buffer sized for the worst case (every input active) and keeps them for the backward; a
few percent of each buffer is ever written. Fresh buffers of that size every training step land at
shifting places in the heap, and the pages their regions touch pile up in the resident memory (a
1000-step batch grew by about 10 MB over 5 steps); taken from here, the same memory serves step
after step. Buffers are torch's memory, not numpy's: numpy asks for transparent huge pages on arrays
this large, and then every 2 MiB page a region touches would be resident whole.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import torch

KEEP = 2  # free buffers kept per size and dtype (a training step's lease is released during the next step)
SIZES = 8  # sizes kept at most (varying sequence lengths would otherwise keep buffers of every length seen)
_LOCK = threading.Lock()
_FREE: OrderedDict[tuple[int, torch.dtype], list[torch.Tensor]] = OrderedDict()  # least recently used first


class Lease:
    """Buffers taken from the pool. They go back to it when the lease is garbage collected, so it must
    live as long as anything reads them (the autograd context that keeps them for the backward)."""

    def __init__(self) -> None:
        self._held: list[torch.Tensor] = []

    def take(self, n: int, dtype: torch.dtype) -> np.ndarray:
        """An uninitialised 1-D buffer of ``n`` elements, as a numpy view."""
        with _LOCK:
            free = _FREE.get((n, dtype))
            buf = free.pop() if free else None
            if free is not None:
                _FREE.move_to_end((n, dtype))
        if buf is None:
            buf = torch.empty(n, dtype=dtype)
        self._held.append(buf)
        return buf.numpy()

    def __del__(self) -> None:
        held, self._held = self._held, []
        try:
            with _LOCK:
                for buf in held:
                    free = _FREE.setdefault((buf.numel(), buf.dtype), [])
                    if len(free) < KEEP:
                        free.append(buf)
                while len(_FREE) > SIZES:
                    _FREE.popitem(last=False)
        except (TypeError, AttributeError):  # at interpreter exit the module's globals may be gone
            pass
