"""The explicit vector intrinsics against numpy: loads, stores and arithmetic lane by lane, and
the compressed positions of the non-zero entries of 16 floats."""

from __future__ import annotations

import os

import numba as nb
import numpy as np
import pytest

from spikeflow.kernels import simd
from spikeflow.kernels.simd import (
    append_nonzero,
    append_nonzero_bytes_compress,
    append_nonzero_bytes_masks,
    append_nonzero_checked,
    append_nonzero_checked_compress,
    append_nonzero_checked_masks,
    append_nonzero_compress,
    append_nonzero_masks,
    compress_indices,
    lanes,
    prefetch,
    scan_row,
    vabs,
    vadd,
    vadd_rows,
    vdiv,
    vload,
    vload2,
    vload_rows,
    vmul,
    vneg,
    vselect_gt,
    vsplat,
    vstore,
    vstore2,
    vstore_rows,
    vtranspose,
)


@nb.njit
def _axpy_rows(x, s, w, r, out):
    """``out[r] = s * w[r] + x`` vector by vector, then the same into row ``r`` of ``w`` itself."""
    lw = lanes(x)
    for j in range(0, x.shape[0], lw):
        v = vadd(vmul(vsplat(s), vload2(w, r, j)), vload(x, j))
        vstore(out, j, v)
        vstore2(w, r, j, v)
    return lw


def _cpu_flags() -> set:
    with open("/proc/cpuinfo") as f:
        return set(next(line for line in f if line.startswith("flags")).split(":", 1)[1].split())


@pytest.mark.skipif(not os.path.exists("/proc/cpuinfo"), reason="the CPU's flags are read from /proc/cpuinfo")
def test_vector_width_and_compress_follow_the_cpus_instructions():
    """64-byte vectors and the compress instructions where the CPU has AVX-512 (as Linux lists its
    flags), 32-byte vectors and bit masks elsewhere."""
    flags = _cpu_flags()
    assert simd.VECTOR_BYTES == (64 if "avx512f" in flags else 32)
    assert simd.WIDE_COMPRESS == ("avx512f" in flags)
    assert simd.WIDE_BYTE_COMPRESS == ({"avx512f", "avx512bw", "avx512_vbmi2"} <= flags)


LANES = [(np.float32, simd.VECTOR_BYTES // 4), (np.float64, simd.VECTOR_BYTES // 8)]


@pytest.mark.parametrize("dtype,n_lanes", LANES)
def test_vector_arithmetic_matches_numpy(dtype, n_lanes):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(4 * n_lanes).astype(dtype)
    w = rng.standard_normal((3, 4 * n_lanes)).astype(dtype)
    expect = dtype(1.5) * w[1] + x
    out = np.zeros_like(x)
    assert _axpy_rows(x, dtype(1.5), w, 1, out) == n_lanes
    np.testing.assert_array_equal(out, expect)
    np.testing.assert_array_equal(w[1], expect)


@nb.njit
def _unary_and_division(x, y, out_abs, out_neg, out_div, out_pos):
    lw = lanes(x)
    for j in range(0, x.shape[0], lw):
        prefetch(y, j)  # a hint only: no effect on the results
        a, b = vload(x, j), vload(y, j)
        vstore(out_abs, j, vabs(a))
        vstore(out_neg, j, vneg(a))
        vstore(out_div, j, vdiv(a, b))
        vstore(out_pos, j, vselect_gt(a, vsplat(x[0] - x[0]), a, vsplat(x[0] - x[0])))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_abs_neg_div_and_select_match_numpy_bit_for_bit(dtype):
    x = np.array([1.5, -2.0, 0.0, -0.0, np.inf, -np.inf, np.nan, 3e-39] * 4, dtype)
    y = np.array([3.0, 0.0, -0.0, 7.0, 2.0, np.inf, 1.0, -3.0] * 4, dtype)
    outs = [np.empty_like(x) for _ in range(4)]
    with np.errstate(divide="ignore", invalid="ignore"):
        expect = [np.abs(x), -x, x / y, np.where(x > 0, x, dtype(0))]
    _unary_and_division(x, y, *outs)
    for got, want in zip(outs, expect):  # the same bits: signs of zeros and NaNs included
        assert got.tobytes() == want.tobytes()


@nb.njit
def _positions(bits, out):
    m = 0
    for i in range(0, bits.shape[0], 16):
        m = compress_indices(bits, i, out, m)
    return m


def test_compress_indices_finds_nonzero_entries_in_order():
    x = np.zeros(48, np.float32)
    x[[0, 3, 15, 16, 31, 47]] = [1.0, -2.0, np.nan, np.inf, 0.5, 1e-40]  # a subnormal is non-zero too
    x[[5, 20]] = -0.0  # negative zero is zero
    out = np.full(48 + 16, -1, np.int32)
    m = _positions(x.view(np.uint32), out)
    assert m == 6 and out[:m].tolist() == [0, 3, 15, 16, 31, 47]
    assert (out[m + 16:] == -1).all()  # nothing written past the 16 free slots after the last position


# each way of listing positions (a compress where the CPU has one, bit masks elsewhere): both compile
# and must give the same lists on any CPU, the one not chosen for this CPU only slower
CHECKED = {"chosen": nb.njit(lambda v, out: append_nonzero_checked(v, out, 0, v.dtype.type(1))),
           "compress": nb.njit(lambda v, out: append_nonzero_checked_compress(v, out, 0, v.dtype.type(1))),
           "masks": nb.njit(lambda v, out: append_nonzero_checked_masks(v, out, 0, v.dtype.type(1)))}
PLAIN = {"chosen": nb.njit(lambda v, out: append_nonzero(v, out, 0)),
         "compress": nb.njit(lambda v, out: append_nonzero_compress(v, out, 0)),
         "masks": nb.njit(lambda v, out: append_nonzero_masks(v, out, 0))}
BYTES = {"chosen": nb.njit(lambda v, out: scan_row(v, out, 0, np.float32(1))),
         "compress": nb.njit(lambda v, out: append_nonzero_bytes_compress(v, out, 0, np.float32(1))),
         "masks": nb.njit(lambda v, out: append_nonzero_bytes_masks(v, out, 0, np.float32(1)))}


@pytest.mark.parametrize("way", sorted(CHECKED))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [5, 16, 37, 150])  # the scalar tail only, whole vectors only, both, 64 at a time
@pytest.mark.parametrize("value,binary,finite", [(1.0, True, True), (0.5, False, True), (-1.0, False, True),
                                                 (np.nan, False, False), (np.inf, False, False),
                                                 (-np.inf, False, False), (-0.0, True, True)])
def test_append_nonzero_checked_flags_each_place_of_a_row(way, dtype, n, value, binary, finite):
    """Positions of the non-zero entries, whether all are 1 and whether all are finite, with the odd
    value at every place of a row of spikes, in a vector or in the tail."""
    base = np.zeros(n, dtype)
    base[::3] = 1
    for k in range(n):
        v = base.copy()
        v[k] = value
        out = np.full(n + 16, -1, np.int32)
        m, got_binary, got_finite = CHECKED[way](v, out)
        want = np.flatnonzero(v != 0) if value == value else np.flatnonzero((v != 0) | np.isnan(v))
        assert out[:m].tolist() == want.tolist(), k
        assert (got_binary, got_finite) == (binary, finite), k
        plain = np.full(n + 16, -1, np.int32)
        assert plain[:PLAIN[way](v, plain)].tolist() == want.tolist(), k


@pytest.mark.parametrize("way", sorted(PLAIN))
@pytest.mark.parametrize("n", [16, 64, 200, 256])
@pytest.mark.parametrize("density", [0.05, 0.3, 0.6, 1.0])
def test_append_nonzero_of_dense_float_rows_lists_every_position_within_16_slots_past_the_end(way, n, density):
    """More than 8 active floats in one bit mask (listed by the loop after the first 8): every position
    in order, and nothing written 16 slots or more past the end."""
    rng = np.random.default_rng(n)
    for _ in range(20):
        v = (rng.random(n) < density).astype(np.float32) * rng.choice([-2.0, 0.5, 1.0], n).astype(np.float32)
        out = np.full(n + 64, -1, np.int32)
        m = PLAIN[way](v, out)
        assert out[:m].tolist() == np.flatnonzero(v).tolist()
        assert (out[m + 16:] == -1).all()



@pytest.mark.parametrize("way", sorted(BYTES))
@pytest.mark.parametrize("n", [5, 64, 150])  # a part of one 64-byte load, one whole, two and a part
@pytest.mark.parametrize("value,binary", [(1, True), (2, False), (255, False), (0, True)])
def test_scan_row_of_bytes_flags_each_place_of_a_row(way, n, value, binary):
    """A row of uint8 spikes (``scan_row`` on bytes): the positions of its non-zero entries, and
    whether all are 1, with the odd value at every place, in a whole 64-byte load or in the last one."""
    base = np.zeros(n, np.uint8)
    base[::3] = 1
    for k in range(n):
        v = base.copy()
        v[k] = value
        out = np.full(n + 16, -1, np.int32)
        m, got_binary, got_finite = BYTES[way](v, out)
        assert out[:m].tolist() == np.flatnonzero(v).tolist(), k
        assert (got_binary, got_finite) == (binary, True), k


@pytest.mark.parametrize("way", sorted(BYTES))
@pytest.mark.parametrize("n", [17, 64, 100, 200])
@pytest.mark.parametrize("density", [0.05, 0.3, 0.6, 1.0])
def test_scan_row_of_dense_bytes_lists_every_position_and_writes_16_slots_past_the_end_at_most(way, n, density):
    """Rows with more than 16, 32 and 48 active bytes in one 64-byte load (each 16 positions are
    stored apart): every position listed in order, and nothing written 16 slots or more past the end."""
    rng = np.random.default_rng(n)
    for _ in range(20):
        v = (rng.random(n) < density).astype(np.uint8)
        out = np.full(n + 64, -1, np.int32)
        m, binary, finite = BYTES[way](v, out)
        assert out[:m].tolist() == np.flatnonzero(v).tolist()
        assert binary and finite
        assert (out[m + 16:] == -1).all()


@nb.njit
def _transposed_sum(a, b, r, j, out, r2, j2):
    vstore_rows(out, r2, j2, vtranspose(vadd_rows(vload_rows(a, r, j), vload_rows(b, r, j))))


@pytest.mark.parametrize("dtype,n_lanes", LANES)
def test_block_of_rows_summed_and_transposed_in_registers(dtype, n_lanes):
    """A square block of two arrays at an offset, summed and written transposed at another offset
    of a third: every element lands where numpy's transpose puts it, and nothing else is written."""
    rng = np.random.default_rng(3)
    a, b = (rng.standard_normal((n_lanes + 3, n_lanes + 5)).astype(dtype) for _ in range(2))
    out = np.full((n_lanes + 4, n_lanes + 2), -7, dtype)
    _transposed_sum(a, b, 2, 3, out, 1, 2)
    want = np.full_like(out, -7)
    want[1:1 + n_lanes, 2:2 + n_lanes] = (a + b)[2:2 + n_lanes, 3:3 + n_lanes].T
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("cpu,features,want", [("generic", None, False), ("skylake-avx512", "+avx512f,+avx2", True),
                                               ("znver3", "+avx2,+fma", False)])
def test_target_features_are_those_numba_is_told_when_it_is_told_a_cpu(monkeypatch, cpu, features, want):
    """With NUMBA_CPU_NAME (a portable cache), the vectors follow NUMBA_CPU_FEATURES, not this host."""
    from numba.core import config

    monkeypatch.setattr(config, "CPU_NAME", cpu)
    monkeypatch.setattr(config, "CPU_FEATURES", features)
    assert simd.target_has("avx512f") is want
    monkeypatch.setattr(config, "CPU_NAME", "host")
    assert simd.target_has("avx512f") == ("avx512f" in _cpu_flags())
