"""Explicit vectors for the numba kernels: 64 bytes (16 float32 or 8 float64 lanes) on CPUs with
AVX-512, 32 bytes elsewhere (``VECTOR_BYTES``).

Numba's auto-vectoriser keeps loops at 256-bit on CPUs that prefer it and reloads an
accumulator from memory on every pass; these intrinsics let a kernel keep a row tile of
accumulators in registers across a whole list of active inputs. They are plain LLVM vector
operations, so they compile (to narrower instructions) on any CPU.

The positions of a row's non-zero entries (``append_nonzero``, ``append_nonzero_checked``,
``append_nonzero_bytes``) are listed one of two ways, chosen for the CPU numba compiles for:
with AVX-512's compress instructions (``compress_indices``: 16 floats, one compress and one
store; ``compress_bytes``: 64 bytes, one byte compress), or, where the CPU lacks them and
LLVM would emulate a compress lane by lane, from a bit mask of the non-zero lanes
(``nonzero_mask16``, ``byte_masks``) whose set bits are turned into positions by
``store_positions``. Both compile and give the same lists on any CPU.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, overload, register_model


def target_has(*features: str) -> bool:
    """Whether the CPU numba compiles for has every one of ``features`` (LLVM names, e.g.
    ``"avx512f"``): the host's, unless numba is told a CPU (``NUMBA_CPU_NAME``), then those
    listed in ``NUMBA_CPU_FEATURES``."""
    from numba.core import config

    if config.CPU_NAME and config.CPU_NAME != "host":
        given = set((config.CPU_FEATURES or "").split(","))
        return all(f"+{f}" in given for f in features)
    host = llvm.get_host_cpu_features()
    return all(host.get(f, False) for f in features)


# A compress of 16 int32 lanes needs AVX-512F, one of 64 bytes (and their masked load) VBMI2 and BW.
# Emulated without them, listing W1's rows took 7x (hidden floats) to 13x (input bytes) as long as from
# bit masks on a Zen 3 core (benchmarks/results/scan-rows.json).
WIDE_COMPRESS = target_has("avx512f")
WIDE_BYTE_COMPRESS = target_has("avx512f", "avx512bw", "avx512vbmi2")
# The vectors are as wide as the CPU's registers: with 32-byte registers a 64-byte vector takes two,
# and a tile of 8 (linear_lif._tile8) needs all 16 of AVX2's with none left for the loads, so LLVM
# spills; on a Zen 3 core W1's step took 6.4 ms with 64-byte vectors, 5.0 ms with 32-byte ones.
VECTOR_BYTES = 64 if WIDE_COMPRESS else 32


class Vec(types.Type):
    """A vector of ``VECTOR_BYTES`` bytes of a float dtype."""

    def __init__(self, dtype):
        self.dtype = dtype
        self.lanes = VECTOR_BYTES * 8 // dtype.bitwidth
        super().__init__(name=f"Vec({dtype}x{self.lanes})")


def _ir_float(dtype):
    return ir.FloatType() if dtype.bitwidth == 32 else ir.DoubleType()


@register_model(Vec)
class _VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.VectorType(_ir_float(fe_type.dtype), fe_type.lanes))


def _vec_type(dtype):
    if not isinstance(dtype, types.Float):
        raise TypeError(f"simd: a float array is needed, got {dtype}")
    return Vec(dtype)


def _pointer(context, builder, aty, arr, row, col):
    """Address of ``arr[row, col]`` (2-D, C order) or of ``arr[col]`` (1-D, ``row`` is None)."""
    a = context.make_array(aty)(context, builder, arr)
    if row is None:
        return cgutils.get_item_pointer2(context, builder, a.data, cgutils.unpack_tuple(builder, a.shape),
                                         cgutils.unpack_tuple(builder, a.strides), aty.layout, [col])
    return cgutils.get_item_pointer2(context, builder, a.data, cgutils.unpack_tuple(builder, a.shape),
                                     cgutils.unpack_tuple(builder, a.strides), aty.layout, [row, col])


@intrinsic
def lanes(typingctx, arr):
    """Lanes of a vector of ``arr``'s dtype (a compile-time constant)."""
    n = _vec_type(arr.dtype).lanes

    def codegen(context, builder, sig, args):
        return context.get_constant(types.intp, n)
    return types.intp(arr), codegen


@intrinsic
def is_float32(typingctx, arr):
    """Whether ``arr`` holds float32 (a compile-time constant)."""
    answer = arr.dtype == types.float32

    def codegen(context, builder, sig, args):
        return context.get_constant(types.boolean, answer)
    return types.boolean(arr), codegen


@intrinsic
def vload(typingctx, arr, i):
    """``arr[i : i + lanes]`` of a 1-D contiguous array."""
    vt = _vec_type(arr.dtype)

    def codegen(context, builder, sig, args):
        p = _pointer(context, builder, sig.args[0], args[0], None, args[1])
        ty = context.get_value_type(vt)
        return builder.load(builder.bitcast(p, ty.as_pointer()), align=arr.dtype.bitwidth // 8)
    return vt(arr, types.intp), codegen


@intrinsic
def vload2(typingctx, arr, r, j):
    """``arr[r, j : j + lanes]`` of a 2-D C-contiguous array."""
    vt = _vec_type(arr.dtype)

    def codegen(context, builder, sig, args):
        p = _pointer(context, builder, sig.args[0], args[0], args[1], args[2])
        ty = context.get_value_type(vt)
        return builder.load(builder.bitcast(p, ty.as_pointer()), align=arr.dtype.bitwidth // 8)
    return vt(arr, types.intp, types.intp), codegen


@intrinsic
def vstore(typingctx, arr, i, v):
    """``arr[i : i + lanes] = v``."""
    def codegen(context, builder, sig, args):
        p = _pointer(context, builder, sig.args[0], args[0], None, args[1])
        ty = context.get_value_type(sig.args[2])
        builder.store(args[2], builder.bitcast(p, ty.as_pointer()), align=arr.dtype.bitwidth // 8)
        return context.get_dummy_value()
    return types.none(arr, types.intp, v), codegen


@intrinsic
def vstore2(typingctx, arr, r, j, v):
    """``arr[r, j : j + lanes] = v``."""
    def codegen(context, builder, sig, args):
        p = _pointer(context, builder, sig.args[0], args[0], args[1], args[2])
        ty = context.get_value_type(sig.args[3])
        builder.store(args[3], builder.bitcast(p, ty.as_pointer()), align=arr.dtype.bitwidth // 8)
        return context.get_dummy_value()
    return types.none(arr, types.intp, types.intp, v), codegen


@intrinsic
def vadd(typingctx, a, b):
    def codegen(context, builder, sig, args):
        return builder.fadd(args[0], args[1])
    return a(a, b), codegen


@intrinsic
def vmul(typingctx, a, b):
    def codegen(context, builder, sig, args):
        return builder.fmul(args[0], args[1])
    return a(a, b), codegen


@intrinsic
def vsub(typingctx, a, b):
    def codegen(context, builder, sig, args):
        return builder.fsub(args[0], args[1])
    return a(a, b), codegen


@intrinsic
def vdiv(typingctx, a, b):
    def codegen(context, builder, sig, args):
        return builder.fdiv(args[0], args[1])
    return a(a, b), codegen


@intrinsic
def vneg(typingctx, a):
    """``-a`` lane by lane (a sign flip: ``-(+0.0)`` is ``-0.0``, as the scalar negation)."""
    def codegen(context, builder, sig, args):
        return builder.fneg(args[0])
    return a(a), codegen


@intrinsic
def vabs(typingctx, a):
    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(args[0].type, [args[0].type]),
                                            f"llvm.fabs.{_vector_suffix(sig.args[0])}")
        return builder.call(fn, [args[0]])
    return a(a), codegen


@intrinsic
def vsqrt(typingctx, a):
    """The square root lane by lane (IEEE, as the scalar ``math.sqrt``)."""
    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(args[0].type, [args[0].type]),
                                            f"llvm.sqrt.{_vector_suffix(sig.args[0])}")
        return builder.call(fn, [args[0]])
    return a(a), codegen


def _vector_suffix(vt):
    return f"v{vt.lanes}f{vt.dtype.bitwidth}"


def _prefetch(write):
    def codegen(context, builder, sig, args):
        p = _pointer(context, builder, sig.args[0], args[0], None, args[1])
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                            "llvm.prefetch.p0i8")
        # read or write, locality 2 (keep in L2 and L3, not L1), data cache
        builder.call(fn, [builder.bitcast(p, i8p), ir.Constant(i32, int(write)), ir.Constant(i32, 2),
                          ir.Constant(i32, 1)])
        return context.get_dummy_value()
    return codegen


@intrinsic
def prefetch(typingctx, arr, i):
    """A hint to bring the cache line holding ``arr[i]`` (1-D) into the caches ahead of a read."""
    return types.none(arr, types.intp), _prefetch(False)


@intrinsic
def prefetch_write(typingctx, arr, i):
    """``prefetch`` for a write: the line comes in owned, so the store that follows need not wait
    for it (stores leave the core in order: one that misses holds back all after it)."""
    return types.none(arr, types.intp), _prefetch(True)


@nb.njit(inline="always")
def prefetch_row(xr, write=False):
    """Asks for the next row while this one is worked on: the rows a thread reads at a step are
    too short a run for the hardware prefetcher to get ahead of them (W3's pair kernel, the next
    input row: about 7 % faster; the backward, the next step's ``h`` and ``dL/dspikes``: 2-5 %).
    ``write``: a row about to be written, asked for owned. Stores leave a core in order, so one
    that misses the cache holds back every store after it (in W1's training step the pair's
    forward, which writes ``h`` row by row, 1.23 -> 0.97 ms; the output layer's backward, which
    writes its ``dL/dI``, 0.26 -> 0.15 ms)."""
    step = 64 // xr.itemsize
    for i in range(0, xr.shape[0], step):
        if write:
            prefetch_write(xr, i)
        else:
            prefetch(xr, i)


@intrinsic
def vselect_gt(typingctx, a, b, x, y):
    """Lane by lane ``x if a > b else y`` (``False`` for NaN, as the scalar comparison)."""
    def codegen(context, builder, sig, args):
        return builder.select(builder.fcmp_ordered(">", args[0], args[1]), args[2], args[3])
    return x(a, b, x, y), codegen


@intrinsic
def vsplat(typingctx, x):
    """A vector with every lane ``x`` (a float scalar)."""
    vt = _vec_type(x)

    def codegen(context, builder, sig, args):
        ty = context.get_value_type(vt)
        v = builder.insert_element(ir.Constant(ty, ir.Undefined), args[0], ir.Constant(ir.IntType(32), 0))
        return builder.shuffle_vector(v, ir.Constant(ty, ir.Undefined), ir.Constant(ir.VectorType(ir.IntType(32),
                                                                                                   vt.lanes), None))
    return vt(x), codegen


def _rows_type(arr):
    vt = _vec_type(arr.dtype)
    return types.UniTuple(vt, vt.lanes)


@intrinsic
def vload_rows(typingctx, arr, r, j):
    """``arr[r + k, j : j + lanes]`` for ``k < lanes`` (2-D C-contiguous): a square block as a
    tuple of row vectors."""
    rt = _rows_type(arr)

    def codegen(context, builder, sig, args):
        ty = context.get_value_type(rt.dtype).as_pointer()
        rows = []
        for k in range(rt.count):
            row = builder.add(args[1], ir.Constant(args[1].type, k))
            p = _pointer(context, builder, sig.args[0], args[0], row, args[2])
            rows.append(builder.load(builder.bitcast(p, ty), align=arr.dtype.bitwidth // 8))
        return context.make_tuple(builder, rt, rows)
    return rt(arr, types.intp, types.intp), codegen


@intrinsic
def vstore_rows(typingctx, arr, r, j, rows):
    """``arr[r + k, j : j + lanes] = rows[k]`` for ``k < lanes``."""
    def codegen(context, builder, sig, args):
        ty = context.get_value_type(sig.args[3].dtype).as_pointer()
        for k, v in enumerate(cgutils.unpack_tuple(builder, args[3], sig.args[3].count)):
            row = builder.add(args[1], ir.Constant(args[1].type, k))
            p = _pointer(context, builder, sig.args[0], args[0], row, args[2])
            builder.store(v, builder.bitcast(p, ty), align=arr.dtype.bitwidth // 8)
        return context.get_dummy_value()
    if rows != _rows_type(arr):
        raise TypeError("vstore_rows: a block of the array's own vectors is needed")
    return types.none(arr, types.intp, types.intp, rows), codegen


@intrinsic
def vadd_rows(typingctx, a, b):
    """Two blocks of ``vload_rows`` added row by row."""
    def codegen(context, builder, sig, args):
        n = sig.args[0].count
        rows = [builder.fadd(x, y) for x, y in zip(cgutils.unpack_tuple(builder, args[0], n),
                                                   cgutils.unpack_tuple(builder, args[1], n))]
        return context.make_tuple(builder, sig.return_type, rows)
    return a(a, b), codegen


@intrinsic
def vtranspose(typingctx, rows):
    """The square block ``rows`` (``vload_rows``) transposed, in registers: each of log2(lanes)
    stages swaps one bit of the row number with the same bit of the column number, one shuffle of
    two rows per output row (4 x 16 shuffles for float32), instead of a scalar load per element."""
    def codegen(context, builder, sig, args):
        n = sig.args[0].count
        vs = list(cgutils.unpack_tuple(builder, args[0], n))
        mask_ty = ir.VectorType(ir.IntType(32), n)
        step = 1
        while step < n:
            low = ir.Constant(mask_ty, [c if not c & step else n + (c ^ step) for c in range(n)])
            high = ir.Constant(mask_ty, [c ^ step if not c & step else n + c for c in range(n)])
            for r in range(n):
                if not r & step:
                    a, b = vs[r], vs[r | step]
                    vs[r], vs[r | step] = builder.shuffle_vector(a, b, low), builder.shuffle_vector(a, b, high)
            step *= 2
        return context.make_tuple(builder, sig.return_type, vs)
    if not (isinstance(rows, types.UniTuple) and isinstance(rows.dtype, Vec) and rows.count == rows.dtype.lanes):
        raise TypeError("vtranspose: a square block of vectors (vload_rows) is needed")
    return rows(rows), codegen


@intrinsic
def compress_indices(typingctx, bits, i, out, m):
    """Store ``i + p`` for each position ``p`` of ``bits[i : i + 16]`` (uint32, the float32 bit
    patterns) that is non-zero (``-0.0`` counts as zero) at ``out[m], out[m + 1], ...``;
    returns ``m`` plus their count. ``out`` (int32) must have 16 free slots from ``m``: the
    positions are packed in a register and all 16 lanes stored, those past the count undefined.
    A compress straight to memory is microcoded on AMD's Zen cores (16 floats scanned in 1.04 ns
    that way against 0.75 ns on an EPYC, and W1's fused forward kernel 1.11 -> 1.01 ms), and a store
    under a mask of the count, when the count is 0 and the page was never written (a buffer fresh
    from the OS that a silent layer never fills), takes a microcode assist every time
    (``benchmarks/scan_rows.py``'s silent rows on a Zen 4 EPYC: 7.9 ms that way, 0.14 ms now)."""
    def codegen(context, builder, sig, args):
        vt = ir.VectorType(ir.IntType(32), 16)
        p = _pointer(context, builder, sig.args[0], args[0], None, args[1])
        v = builder.load(builder.bitcast(p, vt.as_pointer()), align=4)
        v = builder.shl(v, ir.Constant(vt, [1] * 16))  # drop the sign bit
        active = builder.icmp_unsigned("!=", v, ir.Constant(vt, [0] * 16))
        base = builder.insert_element(ir.Constant(vt, ir.Undefined), builder.trunc(args[1], ir.IntType(32)),
                                      ir.Constant(ir.IntType(32), 0))
        base = builder.shuffle_vector(base, ir.Constant(vt, ir.Undefined), ir.Constant(vt, None))
        idx = builder.add(base, ir.Constant(vt, list(range(16))))
        mask = ir.VectorType(ir.IntType(1), 16)
        packed = builder.call(cgutils.get_or_insert_function(builder.module, ir.FunctionType(vt, [vt, mask, vt]),
                                                             "llvm.experimental.vector.compress.v16i32"),
                              [idx, active, ir.Constant(vt, ir.Undefined)])
        count = builder.ctpop(builder.bitcast(active, ir.IntType(16)))
        q = builder.bitcast(_pointer(context, builder, sig.args[2], args[2], None, args[3]), vt.as_pointer())
        builder.store(packed, q, align=4)
        return builder.add(args[3], builder.zext(count, ir.IntType(64)))
    if bits.dtype != types.uint32 or out.dtype != types.int32:
        raise TypeError("compress_indices: uint32 bits and an int32 output are needed")
    return types.intp(bits, types.intp, out, types.intp), codegen


@intrinsic
def compress_bytes(typingctx, values, i, n, out, m):
    """Of the bytes ``values[i : min(i + 64, n)]`` (uint8 spikes): stores ``i + p`` for each non-zero
    position ``p`` at ``out[m], out[m + 1], ...`` and returns ``(m + count, mask of the bytes above 1)``.

    One masked 64-byte load (nothing past ``n`` is read), one byte compress of the positions, then
    each 16 of them widened to int32 and stored whole: ``out`` must have 16 free slots past the new
    end. Four times fewer loads and compares than widening 16 bytes at a time to ``compress_indices``'
    int32 lanes (W1's 3200 rows of 700 bytes, one thread: 0.177 -> 0.054 ms)."""
    def codegen(context, builder, sig, args):
        arr, start, stop, dst, at = args
        i1, i8, i32, i64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
        bytes64, mask64, ints16 = ir.VectorType(i8, 64), ir.VectorType(i1, 64), ir.VectorType(i32, 16)
        left = builder.sub(stop, start)
        cut = builder.select(builder.icmp_signed(">=", left, ir.Constant(i64, 64)), ir.Constant(i64, 0),
                             builder.sub(ir.Constant(i64, 64), left))
        within = builder.bitcast(builder.lshr(ir.Constant(i64, -1), cut), mask64)  # the first min(left, 64)
        load = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(bytes64, [bytes64.as_pointer(), i32, mask64, bytes64]),
            "llvm.masked.load.v64i8.p0v64i8")
        src = builder.bitcast(_pointer(context, builder, sig.args[0], arr, None, start), bytes64.as_pointer())
        zeros = ir.Constant(bytes64, [0] * 64)
        v = builder.call(load, [src, ir.Constant(i32, 1), within, zeros])
        active = builder.icmp_unsigned("!=", v, zeros)
        above = builder.icmp_unsigned(">", v, ir.Constant(bytes64, [1] * 64))
        compress = cgutils.get_or_insert_function(builder.module, ir.FunctionType(bytes64, [bytes64, mask64, bytes64]),
                                                  "llvm.experimental.vector.compress.v64i8")
        packed = builder.call(compress, [ir.Constant(bytes64, list(range(64))), active, zeros])
        count = builder.ctpop(builder.bitcast(active, i64))
        base = builder.insert_element(ir.Constant(ints16, ir.Undefined), builder.trunc(start, i32),
                                      ir.Constant(i32, 0))
        base = builder.shuffle_vector(base, ir.Constant(ints16, ir.Undefined), ir.Constant(ints16, None))

        def store(k):  # the k-th 16 positions as int32 at out[m + 16 k]
            part = builder.shuffle_vector(packed, ir.Constant(bytes64, ir.Undefined),
                                          ir.Constant(ints16, list(range(16 * k, 16 * k + 16))))
            dst_k = _pointer(context, builder, sig.args[3], dst, None, builder.add(at, ir.Constant(i64, 16 * k)))
            builder.store(builder.add(builder.zext(part, ints16), base), builder.bitcast(dst_k, ints16.as_pointer()),
                          align=4)

        store(0)
        for k in range(1, 4):  # only where there are more than 16 k (a 5 % row: almost never)
            with builder.if_then(builder.icmp_unsigned(">", count, ir.Constant(i64, 16 * k)), likely=False):
                store(k)
        return context.make_tuple(builder, sig.return_type, [builder.add(at, count), builder.bitcast(above, i64)])
    if values.dtype != types.uint8 or out.dtype != types.int32:
        raise TypeError("compress_bytes: uint8 values and an int32 output are needed")
    return types.UniTuple(types.int64, 2)(values, types.intp, types.intp, out, types.intp), codegen


@intrinsic
def lane_flags(typingctx, bits, i, one):
    """Of ``bits[i : i + 16]`` (uint32, float32 bit patterns), as lane masks: bit ``p`` set when
    entry ``p`` is non-zero and not ``one`` (a float32), bit ``16 + p`` when it is NaN or inf. The
    raw masks, so that a row's flags are OR-ed together and tested once, not for every vector."""
    def codegen(context, builder, sig, args):
        vt = ir.VectorType(ir.IntType(32), 16)
        p = _pointer(context, builder, sig.args[0], args[0], None, args[1])
        v = builder.load(builder.bitcast(p, vt.as_pointer()), align=4)
        one_bits = builder.bitcast(args[2], ir.IntType(32))
        ones = builder.shuffle_vector(builder.insert_element(ir.Constant(vt, ir.Undefined), one_bits,
                                                             ir.Constant(ir.IntType(32), 0)),
                                      ir.Constant(vt, ir.Undefined), ir.Constant(vt, None))
        active = builder.icmp_unsigned("!=", builder.shl(v, ir.Constant(vt, [1] * 16)), ir.Constant(vt, [0] * 16))
        other = builder.and_(active, builder.icmp_unsigned("!=", v, ones))
        exponent = ir.Constant(vt, [0x7F800000] * 16)
        special = builder.icmp_unsigned("==", builder.and_(v, exponent), exponent)
        i16, i64 = ir.IntType(16), ir.IntType(64)
        other_bits = builder.zext(builder.bitcast(other, i16), i64)
        special_bits = builder.zext(builder.bitcast(special, i16), i64)
        return builder.or_(other_bits, builder.shl(special_bits, ir.Constant(i64, 16)))
    if bits.dtype != types.uint32 or one != types.float32:
        raise TypeError("lane_flags: uint32 bits and a float32 one are needed")
    return types.int64(bits, types.intp, one), codegen


@intrinsic
def nonzero_mask16(typingctx, bits, i):
    """Of ``bits[i : i + 16]`` (uint32, float32 bit patterns), the lanes that are non-zero
    (``-0.0`` counts as zero) as the low 16 bits of an int64."""
    def codegen(context, builder, sig, args):
        vt = ir.VectorType(ir.IntType(32), 16)
        p = _pointer(context, builder, sig.args[0], args[0], None, args[1])
        v = builder.load(builder.bitcast(p, vt.as_pointer()), align=4)
        active = builder.icmp_unsigned("!=", builder.shl(v, ir.Constant(vt, [1] * 16)), ir.Constant(vt, [0] * 16))
        return builder.zext(builder.bitcast(active, ir.IntType(16)), ir.IntType(64))
    if bits.dtype != types.uint32:
        raise TypeError("nonzero_mask16: uint32 bits are needed")
    return types.int64(bits, types.intp), codegen


@intrinsic
def byte_masks(typingctx, values, i):
    """Of the 64 bytes ``values[i : i + 64]`` (all must be there), ``(mask of the non-zero ones,
    mask of those above 1)``, bit ``p`` for byte ``i + p``."""
    def codegen(context, builder, sig, args):
        i8, i64 = ir.IntType(8), ir.IntType(64)
        bytes64 = ir.VectorType(i8, 64)
        src = builder.bitcast(_pointer(context, builder, sig.args[0], args[0], None, args[1]), bytes64.as_pointer())
        v = builder.load(src, align=1)
        nonzero = builder.icmp_unsigned("!=", v, ir.Constant(bytes64, [0] * 64))
        above = builder.icmp_unsigned(">", v, ir.Constant(bytes64, [1] * 64))
        masks = [builder.bitcast(nonzero, i64), builder.bitcast(above, i64)]
        return context.make_tuple(builder, sig.return_type, masks)
    if values.dtype != types.uint8:
        raise TypeError("byte_masks: uint8 values are needed")
    return types.UniTuple(types.int64, 2)(values, types.intp), codegen


@intrinsic
def trailing_zeros(typingctx, x):
    """The number of zero bits below the lowest set bit of the int64 ``x`` (64 for 0)."""
    def codegen(context, builder, sig, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))
    return types.int64(types.int64), codegen


@intrinsic
def popcount(typingctx, x):
    """The number of set bits of the int64 ``x``."""
    def codegen(context, builder, sig, args):
        return builder.ctpop(args[0])
    return types.int64(types.int64), codegen


@nb.njit(inline="always")
def store_positions(mask, base, out, p):
    """Stores ``base + b`` for each set bit ``b`` of ``mask`` (int64), lowest first, at ``out[p],
    out[p + 1], ...`` and returns ``p`` plus their count. The first 8 are written whatever the count
    (no branch to mispredict: a row of 5 % spikes has about 3 in 64 bytes), so ``out`` must have 8
    free slots from ``p``; only where there are more than 8 does a loop write the rest."""
    rest = mask
    for k in range(8):
        out[p + k] = base + trailing_zeros(rest)
        rest &= rest - 1
    k = 8
    while rest != 0:
        out[p + k] = base + trailing_zeros(rest)
        rest &= rest - 1
        k += 1
    return p + popcount(mask)


@nb.njit(inline="always")
def _mask64(bits, i):
    """``nonzero_mask16`` of the 64 floats from ``i``."""
    return (nonzero_mask16(bits, i) | nonzero_mask16(bits, i + 16) << 16 | nonzero_mask16(bits, i + 32) << 32
            | nonzero_mask16(bits, i + 48) << 48)


def append_nonzero(v, out, p):
    """Appends the positions of ``v``'s non-zero entries at ``out[p:]`` (int32, with 16 slots to spare);
    returns the new end. float32: 16 or 64 at a time (a compress or bit masks, as the CPU suits)."""


@overload(append_nonzero, inline="always")
def _append_nonzero(v, out, p):
    if WIDE_COMPRESS:
        return lambda v, out, p: append_nonzero_compress(v, out, p)
    return lambda v, out, p: append_nonzero_masks(v, out, p)


@nb.njit(inline="always")
def append_nonzero_compress(v, out, p):
    """``append_nonzero`` with a compress of each 16 floats (``compress_indices``)."""
    n = v.shape[0]
    i = 0
    if is_float32(v):
        bits = v.view(np.uint32)
        while i + 16 <= n:
            p = compress_indices(bits, i, out, p)
            i += 16
    return _append_tail(v, i, out, p)


@nb.njit(inline="always")
def append_nonzero_masks(v, out, p):
    """``append_nonzero`` from the bit masks of each 64 floats (``store_positions``); the last
    ones of a row of 64 or more are read as its last 64, with the bits already listed cleared (one
    ``store_positions`` in the code: each is inlined, and numba takes long to compile them)."""
    n = v.shape[0]
    i = 0
    if is_float32(v) and n >= 64:
        bits = v.view(np.uint32)
        while i < n:
            start = min(i, n - 64)
            p = store_positions(_mask64(bits, start) & (np.int64(-1) << (i - start)), start, out, p)
            i = start + 64
    return _append_tail(v, i, out, p)


@nb.njit(inline="always")
def _append_tail(v, i, out, p):
    for j in range(i, v.shape[0]):  # branch-free: every position is written, the count moves on spikes
        out[p] = j
        p += v[j] != 0
    return p


def append_nonzero_bytes(v, out, p, one):
    """``append_nonzero_checked`` for a row of uint8 values (spikes as bytes), 64 bytes at a time;
    a byte is always finite."""


@overload(append_nonzero_bytes, inline="always")
def _append_nonzero_bytes(v, out, p, one):
    if WIDE_BYTE_COMPRESS:
        return lambda v, out, p, one: append_nonzero_bytes_compress(v, out, p, one)
    return lambda v, out, p, one: append_nonzero_bytes_masks(v, out, p, one)


@nb.njit(inline="always")
def append_nonzero_bytes_compress(v, out, p, one):
    """``append_nonzero_bytes`` with one byte compress per 64 bytes (``compress_bytes``, the last
    ones under a mask)."""
    n = v.shape[0]
    above = 0
    for i in range(0, n, 64):
        p, flags = compress_bytes(v, i, n, out, p)
        above |= flags
    return p, above == 0, True


@nb.njit(inline="always")
def append_nonzero_bytes_masks(v, out, p, one):
    """``append_nonzero_bytes`` from the bit masks of each 64 bytes (``byte_masks``,
    ``store_positions``), the last ones as in ``append_nonzero_masks`` (the bytes read twice are
    checked twice, which changes nothing)."""
    n = v.shape[0]
    above = 0
    i = 0
    if n >= 64:
        while i < n:
            start = min(i, n - 64)
            nonzero, flags = byte_masks(v, start)
            p = store_positions(nonzero & (np.int64(-1) << (i - start)), start, out, p)
            above |= flags
            i = start + 64
    for j in range(i, n):
        x = v[j]
        out[p] = j
        p += x != 0
        above |= x > 1
    return p, above == 0, True


def scan_row(v, out, p, one):
    """``append_nonzero_checked`` for a float row, ``append_nonzero_bytes`` for a uint8 one (chosen
    when the kernel is compiled)."""


@overload(scan_row, inline="always")
def _scan_row(v, out, p, one):
    if v.dtype == types.uint8:
        return lambda v, out, p, one: append_nonzero_bytes(v, out, p, one)
    return lambda v, out, p, one: append_nonzero_checked(v, out, p, one)


def append_nonzero_checked(v, out, p, one):
    """``append_nonzero`` that also tells whether every non-zero entry of ``v`` equals ``one`` and
    whether all are finite: ``(end, binary, finite)``. float32: the flags come from the same 16-lane
    vectors (``lane_flags``), not from a second pass over the positions found."""


@overload(append_nonzero_checked, inline="always")
def _append_nonzero_checked(v, out, p, one):
    if WIDE_COMPRESS:
        return lambda v, out, p, one: append_nonzero_checked_compress(v, out, p, one)
    return lambda v, out, p, one: append_nonzero_checked_masks(v, out, p, one)


@nb.njit(inline="always")
def append_nonzero_checked_compress(v, out, p, one):
    """``append_nonzero_checked`` with a compress of each 16 floats."""
    n = v.shape[0]
    i = 0
    flags = 0
    if is_float32(v):
        bits = v.view(np.uint32)
        while i + 16 <= n:
            p = compress_indices(bits, i, out, p)
            flags |= lane_flags(bits, i, np.float32(one))
            i += 16
    return _checked_tail(v, i, out, p, one, flags)


@nb.njit(inline="always")
def append_nonzero_checked_masks(v, out, p, one):
    """``append_nonzero_checked`` from the bit masks of each 64 floats, the last ones as in
    ``append_nonzero_masks`` (their flags taken twice, which changes nothing)."""
    n = v.shape[0]
    i = 0
    flags = 0
    if is_float32(v) and n >= 64:
        bits = v.view(np.uint32)
        f1 = np.float32(one)
        while i < n:
            start = min(i, n - 64)
            p = store_positions(_mask64(bits, start) & (np.int64(-1) << (i - start)), start, out, p)
            flags |= (lane_flags(bits, start, f1) | lane_flags(bits, start + 16, f1)
                      | lane_flags(bits, start + 32, f1) | lane_flags(bits, start + 48, f1))
            i = start + 64
    return _checked_tail(v, i, out, p, one, flags)


@nb.njit(inline="always")
def _checked_tail(v, i, out, p, one, flags):
    binary, finite = flags & 0xFFFF == 0, flags >> 16 == 0
    zero = one - one
    for j in range(i, v.shape[0]):
        x = v[j]
        out[p] = j
        p += x != zero
        binary &= x == zero or x == one
        finite &= x - x == zero  # NaN for NaN and inf
    return p, binary, finite
