"""``kernels.borrow``: a borrowed array is the same memory, shape and strides as its owner."""

import numba as nb
import numpy as np

from spikeflow.kernels.borrow import borrow, keep


@nb.njit
def _rows_plus_index(a):
    b = borrow(a)
    for i in range(b.shape[0]):
        row = b[i]  # a view of a borrowed array
        for j in range(row.shape[0]):
            row[j] += i * 10 + j
    return b.shape[0], b.shape[1], b.strides[0], b.strides[1]


@nb.njit
def _scratch_sum(n):
    own = np.arange(n).astype(np.float64)
    s = borrow(own)
    total = 0.0
    for i in range(s.shape[0]):
        total += s[i]
    keep(own)
    return total


def test_borrowed_array_writes_through_to_its_owner():
    a = np.zeros((3, 4), np.float32)
    shape0, shape1, stride0, stride1 = _rows_plus_index(a)
    assert (shape0, shape1, stride0, stride1) == (3, 4, 16, 4)
    np.testing.assert_array_equal(a, np.arange(3)[:, None] * 10 + np.arange(4)[None, :])


def test_borrowed_view_of_a_strided_array_keeps_its_strides():
    base = np.zeros((6, 8), np.float32)
    a = base[::2, 1::2]  # rows 0, 2, 4 and columns 1, 3, 5, 7
    _rows_plus_index(a)
    expected = np.zeros((6, 8), np.float32)
    expected[::2, 1::2] = np.arange(3)[:, None] * 10 + np.arange(4)[None, :]
    np.testing.assert_array_equal(base, expected)


def test_kept_scratch_array_stays_valid_to_its_keep():
    assert _scratch_sum(1000) == 999 * 1000 / 2
