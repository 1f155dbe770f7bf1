"""The pool of large scratch buffers: a live lease's buffers are never handed out again, a released
lease's are (the same memory, so the pages it touched stay the ones in use), and at most ``KEEP``
free buffers of a size are kept."""

from __future__ import annotations

import gc

import torch

from spikeflow.kernels import scratch


def _address(a):
    return a.__array_interface__["data"][0]


def test_live_buffers_are_not_shared_and_released_ones_are_reused():
    n = 123_457  # a size no other test takes
    first = scratch.Lease()
    a, b = first.take(n, torch.int32), first.take(n, torch.int32)
    assert _address(a) != _address(b)
    second = scratch.Lease()
    c = second.take(n, torch.int32)
    assert _address(c) not in (_address(a), _address(b))  # the first lease still holds its buffers
    seen = {_address(a), _address(b)}
    del a, b, first
    gc.collect()
    third = scratch.Lease()
    d, e = third.take(n, torch.int32), third.take(n, torch.float32)
    assert _address(d) in seen  # reused
    assert d.dtype.name == "int32" and e.dtype.name == "float32" and d.shape == (n,)
    del c, d, e, second, third
    gc.collect()
    assert len(scratch._FREE[(n, torch.int32)]) == scratch.KEEP  # three int32 buffers were released


def test_only_the_most_recently_used_sizes_are_kept():
    leases = [scratch.Lease() for _ in range(scratch.SIZES + 3)]
    for k, lease in enumerate(leases):
        lease.take(1000 + k, torch.float32)  # a sequence length of its own each
    del lease
    while leases:  # released in the order they were taken
        leases.pop(0)
    gc.collect()
    assert len(scratch._FREE) == scratch.SIZES
    kept = {n for n, _ in scratch._FREE}
    assert kept == {1000 + k for k in range(3, scratch.SIZES + 3)}  # the latest released sizes
