"""The clock-free engine's event loop in numba (see ``clockfree`` for the semantics).

One sample's whole state lives in arrays, so the loop needs no Python objects:

- pending threshold crossings: an indexed binary min-heap keyed by (time, sequence number),
  one slot per spiking neuron (re-scheduling a neuron moves its slot, so no stale entries);
- deliveries through recurrent edges with ``recurrent_delay > 0``: a FIFO queue (they are made
  in time order, all with the same delay), merged with the heap by (time, sequence number);
- spikes caused at one instant: a FIFO of (population, neurons) groups, drained in order.

A buffer that runs full stops the run with a status code; the caller restores the state it
saved before the call, enlarges the buffer and runs again. Errors (a runaway neuron, a cascade
without end) are status codes too; the caller raises them.

LIF and LI populations whose ``tau`` is one number share one exponential per event: a neuron keeps
``g = exp((t_last - t_ref) / tau)`` and decays by ``exp(-(t - t_ref) / tau) * g`` (``t_ref`` moves
forward every 30 tau to keep both factors in range). The other kinds decay neuron by neuron.
"""

from __future__ import annotations

import math

import numba
import numpy as np

LIF, IF, LI, CUBALIF, CUBALI, IDENT, INPUT = 0, 1, 2, 3, 4, 5, 6
MAX_BURST = 10_000  # spikes of one neuron at one instant before we call it a runaway

# status codes
OK, RUNAWAY, CASCADE, FULL_REC, FULL_FIFO, FULL_DELAY = 0, 1, 2, 3, 4, 5
# columns of the population table ``pi``
P_OFF, P_SIZE, P_KIND, P_RESET, P_SPIKING, P_UNIFORM, P_PROJ_LO, P_PROJ_HI, P_ANY_CROSS = range(9)
N_PI = 9
# rows of the neuron table ``nf``
F_R, F_TAU_M, F_TAU_S, F_W_IN, F_V_LEAK, F_V_TH, F_V_RESET, F_DRIVE, F_JUMP, F_VINF, F_CROSS, F_EQUAL = range(12)
N_NF = 12
# rows of the neuron state ``st``
S_V, S_I, S_T, S_G = range(4)
# the integer scalars ``si``
I_SEQ, I_HEAP, I_DQ_HEAD, I_DQ_TAIL, I_DP_TAIL, I_REC, I_STATUS, I_ERR_POP, I_INPUT, I_FF_N, I_FP_N = range(11)
N_SI = 11
# the float scalars ``sf``
F_NOW, F_ERR_T = range(2)
# columns of the projection table ``kr`` (sorted by source population)
K_DST, K_DELAYED, K_PTR, K_DENSE, K_F32 = range(5)  # K_DENSE: every row holds all targets in order (0: no)
N_KR = 5
REBASE = 30.0  # shared-decay populations move their reference time every REBASE tau

# ``_nrt=False``: these functions allocate nothing, and without numba's reference counting a call
# between them no longer costs an atomic increment and decrement per array argument (about 3 µs per
# call here, more than the work of a spike). Not ``error_model="numpy"``, which also slows every call;
# the few divisions that can meet a zero are guarded instead.
_JIT = dict(cache=True, nogil=True, _nrt=False)


# ---------------------------------------------------------------------- neuron dynamics
@numba.njit(**_JIT)
def _cuba_at(nf, n, v, i, s):
    """CubaLIF/CubaLI state after ``s`` seconds from ``(v, i)`` (the ``clockfree`` closed form)."""
    tm = nf[F_TAU_M, n]
    ts = nf[F_TAU_S, n]
    r = nf[F_R, n]
    iinf = nf[F_W_IN, n] * nf[F_DRIVE, n]
    vinf = nf[F_V_LEAK, n] + r * iinf
    d0 = i - iinf
    u0 = v - vinf
    c = r * d0 / tm
    em = math.exp(-s / tm)
    es = math.exp(-s / ts)
    z = s * (1.0 / tm - 1.0 / ts)
    if abs(z) < 1e-5:
        phi = 1.0 + z * (0.5 + z / 6.0)
    else:
        phi = math.expm1(z) / z
    u = u0 * em + c * s * em * phi
    return vinf + u, iinf + d0 * es


@numba.njit(**_JIT)
def _cuba_crossing(nf, n, v, i, xtol):
    tm = nf[F_TAU_M, n]
    ts = nf[F_TAU_S, n]
    r = nf[F_R, n]
    th = nf[F_V_TH, n]
    iinf = nf[F_W_IN, n] * nf[F_DRIVE, n]
    vinf = nf[F_V_LEAK, n] + r * iinf
    d0 = i - iinf
    u0 = v - vinf
    eq = nf[F_EQUAL, n] != 0.0
    k = 0.0 if eq else r * d0 * ts / (ts - tm)
    c = r * d0 / tm
    a = vinf - th
    if eq:
        s_peak = tm - u0 / c if c != 0.0 else 0.0
    else:
        den = ts * (u0 - k)
        s_peak = np.log(-k * tm / den) / (1.0 / ts - 1.0 / tm) if den != 0.0 else 0.0
    if not (np.isfinite(s_peak) and s_peak > 0):
        s_peak = 0.0
    peak_above = s_peak > 0 and _cuba_at(nf, n, v, i, s_peak)[0] - th > 0
    late = (not peak_above) and a > 0
    if not (peak_above or late):
        return np.inf
    lo = 0.0 if peak_above else s_peak
    hi = s_peak if peak_above else s_peak + tm
    if late:  # f rises towards a > 0 after the peak: double the bracket until above
        for _ in range(200):
            if _cuba_at(nf, n, v, i, hi)[0] - th > 0:
                break
            hi = lo + 2 * (hi - lo)
    while hi - lo > xtol:  # bisection keeps f(lo) <= 0 < f(hi)
        mid = 0.5 * (lo + hi)
        if _cuba_at(nf, n, v, i, mid)[0] - th > 0:
            hi = mid
        else:
            lo = mid
    return hi


@numba.njit(**_JIT)
def _crossing(kind, nf, st, n, xtol):
    """Seconds from the neuron's last update to its next threshold crossing; inf (or nan) if none."""
    if nf[F_CROSS, n] == 0.0:
        return np.inf
    v = st[S_V, n]
    th = nf[F_V_TH, n]
    if kind == LIF:
        vinf = nf[F_VINF, n]
        s = nf[F_TAU_M, n] * np.log((v - vinf) / (th - vinf))  # nan: no crossing
        return s if not s < 0.0 else 0.0
    if kind == IF:
        s = (th - v) / (nf[F_R, n] * nf[F_DRIVE, n])
        return s if not s < 0.0 else 0.0
    return _cuba_crossing(nf, n, v, st[S_I, n], xtol)


@numba.njit(**_JIT)
def _advance1(kind, uniform, tau, tref, nf, st, n, t):
    """Bring neuron ``n`` analytically to time ``t``."""
    if kind == LIF or kind == LI:
        vinf = nf[F_VINF, n]
        if uniform:
            x = (t - tref) / tau
            st[S_V, n] = vinf + (st[S_V, n] - vinf) * (math.exp(-x) * st[S_G, n])
            st[S_G, n] = math.exp(x)
        else:
            st[S_V, n] = vinf + (st[S_V, n] - vinf) * math.exp(-(t - st[S_T, n]) / nf[F_TAU_M, n])
    elif kind == IF:
        st[S_V, n] = st[S_V, n] + nf[F_R, n] * nf[F_DRIVE, n] * (t - st[S_T, n])
    elif kind == CUBALIF or kind == CUBALI:
        v, i = _cuba_at(nf, n, st[S_V, n], st[S_I, n], t - st[S_T, n])
        st[S_V, n] = v
        st[S_I, n] = i
    st[S_T, n] = t


@numba.njit(**_JIT)
def _rebase(pi, pf, tref, st, p, t):
    """Move population ``p``'s reference time to ``t`` once the shared factors would grow too large."""
    tau = pf[p]
    x = (t - tref[p]) / tau
    if x <= REBASE:
        return
    d = math.exp(-x)
    off = pi[p, P_OFF]
    for n in range(off, off + pi[p, P_SIZE]):
        st[S_G, n] *= d
    tref[p] = t


# ---------------------------------------------------------------------- the heap of crossings
@numba.njit(**_JIT)
def _less(h_t, h_s, a, b):
    return h_t[a] < h_t[b] or (h_t[a] == h_t[b] and h_s[a] < h_s[b])


@numba.njit(**_JIT)
def _swap(h_t, h_s, h_id, h_pos, a, b):
    h_t[a], h_t[b] = h_t[b], h_t[a]
    h_s[a], h_s[b] = h_s[b], h_s[a]
    h_id[a], h_id[b] = h_id[b], h_id[a]
    h_pos[h_id[a]] = a
    h_pos[h_id[b]] = b


@numba.njit(**_JIT)
def _sift(h_t, h_s, h_id, h_pos, size, j):
    while j > 0:  # up
        parent = (j - 1) >> 1
        if not _less(h_t, h_s, j, parent):
            break
        _swap(h_t, h_s, h_id, h_pos, j, parent)
        j = parent
    while True:  # down
        c = 2 * j + 1
        if c >= size:
            break
        if c + 1 < size and _less(h_t, h_s, c + 1, c):
            c += 1
        if not _less(h_t, h_s, c, j):
            break
        _swap(h_t, h_s, h_id, h_pos, j, c)
        j = c


@numba.njit(**_JIT)
def _heap_set(h_t, h_s, h_id, h_pos, si, n, t, seq):
    j = h_pos[n]
    if j < 0:
        j = si[I_HEAP]
        si[I_HEAP] += 1
        h_id[j] = n
        h_pos[n] = j
    h_t[j] = t
    h_s[j] = seq
    _sift(h_t, h_s, h_id, h_pos, si[I_HEAP], j)


@numba.njit(**_JIT)
def _heap_remove(h_t, h_s, h_id, h_pos, si, n):
    j = h_pos[n]
    if j < 0:
        return
    last = si[I_HEAP] - 1
    if j != last:
        _swap(h_t, h_s, h_id, h_pos, j, last)
    h_pos[n] = -1
    si[I_HEAP] = last
    if j < last:
        _sift(h_t, h_s, h_id, h_pos, last, j)


# ---------------------------------------------------------------------- spikes
@numba.njit(**_JIT)
def _schedule(pi, nf, st, p, tl, nt, si, h_t, h_s, h_id, h_pos, xtol):
    kind = pi[p, P_KIND]
    off = pi[p, P_OFF]
    for x in range(nt):
        n = off + tl[x]
        if nf[F_CROSS, n] == 0.0:
            continue  # never crosses on its own: never in the heap
        s = _crossing(kind, nf, st, n, xtol)
        if np.isfinite(s):
            _heap_set(h_t, h_s, h_id, h_pos, si, n, st[S_T, n] + s, si[I_SEQ])
            si[I_SEQ] += 1
        else:
            _heap_remove(h_t, h_s, h_id, h_pos, si, n)


@numba.njit(**_JIT)
def _fire_now(pi, nf, st, count, counters, p, tl, nt, t, si, sf, abv, ff, fp, rec_t, rec_n,
              h_t, h_s, h_id, h_pos, xtol, sched):
    """Neurons ``tl[:nt]`` of ``p`` fire (repeatedly) while above threshold at ``t``; then (``sched``)
    re-schedule them."""
    off = pi[p, P_OFF]
    reset = pi[p, P_RESET]
    calm = False
    for _ in range(MAX_BURST):
        na = 0
        for x in range(nt):
            n = off + tl[x]
            if st[S_V, n] > nf[F_V_TH, n]:
                abv[na] = tl[x]
                na += 1
        if na == 0:
            calm = True
            break
        # emit: reset, record, queue for delivery
        r0 = si[I_REC]
        f0 = si[I_FP_N]
        if r0 + na > rec_t.shape[0]:
            si[I_STATUS] = FULL_REC
            return
        if f0 + na > fp.shape[0] or si[I_FF_N] >= ff.shape[0]:
            si[I_STATUS] = FULL_FIFO
            return
        for x in range(na):
            n = off + abv[x]
            if reset == 0:
                st[S_V, n] -= nf[F_V_TH, n]
            elif reset == 1:
                st[S_V, n] = nf[F_V_RESET, n]
            count[n] += 1
            rec_t[r0 + x] = t
            rec_n[r0 + x] = n
            fp[f0 + x] = abv[x]
        si[I_REC] = r0 + na
        g = si[I_FF_N]
        ff[g, 0] = p
        ff[g, 1] = f0
        ff[g, 2] = na
        si[I_FF_N] = g + 1
        si[I_FP_N] = f0 + na
        counters[p, 2] += na
    if not calm:
        si[I_STATUS] = RUNAWAY
        si[I_ERR_POP] = p
        sf[F_ERR_T] = t
        return
    if sched:
        _schedule(pi, nf, st, p, tl, nt, si, h_t, h_s, h_id, h_pos, xtol)


@numba.njit(**_JIT)
def _dense_update(w, val, d, g, t, vv, gg, tt, vinf, jump, th):
    above = 0
    for a in range(w.shape[0]):
        v = vinf[a] + (vv[a] - vinf[a]) * (d * gg[a]) + w[a] * val * jump[a]
        vv[a] = v
        gg[a] = g
        tt[a] = t
        above += v > th[a]
    return above


@numba.njit(**_JIT)
def _project_shared(k, j, val, t, pi, pf, nf, kr, indptr, indices, data, data32, st, count, tref, counters, si, sf,
                    tl, abv, ff, fp, rec_t, rec_n, h_t, h_s, h_id, h_pos, xtol):
    """``_project``'s common case, fused: one source spike into a LIF/LI population with one ``tau``
    where no neuron crosses threshold on its own (so only the ones a jump lifts above fire)."""
    dst = kr[k, K_DST]
    lo = indptr[kr[k, K_PTR] + j]
    hi = indptr[kr[k, K_PTR] + j + 1]
    if hi == lo:
        return
    counters[dst, 0] += hi - lo
    counters[dst, 1] += hi - lo
    off = pi[dst, P_OFF]
    _rebase(pi, pf, tref, st, dst, t)
    x = (t - tref[dst]) / pf[dst]
    d = math.exp(-x)
    g = math.exp(x)
    n_up = 0
    spiking = pi[dst, P_SPIKING] != 0
    if kr[k, K_DENSE] != 0:  # every target, in order: contiguous loops the compiler vectorises
        size = hi - lo
        vv = st[S_V, off:off + size]
        gg = st[S_G, off:off + size]
        tt = st[S_T, off:off + size]
        vinf = nf[F_VINF, off:off + size]
        jump = nf[F_JUMP, off:off + size]
        th = nf[F_V_TH, off:off + size]
        if kr[k, K_F32]:  # (weights that float32 holds exactly: half the memory traffic)
            above = _dense_update(data32[lo:hi], val, d, g, t, vv, gg, tt, vinf, jump, th)
        else:
            above = _dense_update(data[lo:hi], val, d, g, t, vv, gg, tt, vinf, jump, th)
        if spiking and above:
            for a in range(size):
                if vv[a] > th[a]:
                    tl[n_up] = a
                    n_up += 1
            _fire_now(pi, nf, st, count, counters, dst, tl, n_up, t, si, sf, abv, ff, fp, rec_t, rec_n,
                      h_t, h_s, h_id, h_pos, xtol, False)
        return
    for e in range(lo, hi):
        a = indices[e]
        n = off + a
        vinf = nf[F_VINF, n]
        v = vinf + (st[S_V, n] - vinf) * (d * st[S_G, n]) + data[e] * val * nf[F_JUMP, n]
        st[S_V, n] = v
        st[S_G, n] = g
        st[S_T, n] = t
        if spiking and v > nf[F_V_TH, n]:
            tl[n_up] = a
            n_up += 1
    if n_up:
        _fire_now(pi, nf, st, count, counters, dst, tl, n_up, t, si, sf, abv, ff, fp, rec_t, rec_n,
                  h_t, h_s, h_id, h_pos, xtol, False)


@numba.njit(**_JIT)
def _project(k, src_idx, s0, na, src_val, ones, t, pi, pf, nf, kr, indptr, indices, data, data32, q,
             st, count, tref, counters, si, sf, acc, mark, tl, tw, abv, ff, fp, rec_t, rec_n,
             h_t, h_s, h_id, h_pos, xtol):
    """Deliver spikes ``src_idx[s0:s0 + na]`` (values ``src_val`` or ones) through projection ``k`` at ``t``."""
    dst = kr[k, K_DST]
    base = kr[k, K_PTR]
    kind = pi[dst, P_KIND]
    if na == 1 and (kind == LIF or kind == LI) and pi[dst, P_UNIFORM] and not pi[dst, P_ANY_CROSS]:
        _project_shared(k, src_idx[s0], 1.0 if ones else src_val[s0], t, pi, pf, nf, kr, indptr, indices, data, data32,
                        st, count, tref, counters, si, sf, tl, abv, ff, fp, rec_t, rec_n, h_t, h_s, h_id, h_pos, xtol)
        return
    nt = 0
    ops = 0
    if na == 1:
        j = src_idx[s0]
        val = 1.0 if ones else src_val[s0]
        lo = indptr[base + j]
        hi = indptr[base + j + 1]
        for e in range(lo, hi):
            tl[nt] = indices[e]
            tw[nt] = data[e] * val
            nt += 1
        ops = hi - lo
    else:  # several sources: one summed weight per target, targets in ascending order
        for a in range(na):
            j = src_idx[s0 + a]
            val = 1.0 if ones else src_val[s0 + a]
            lo = indptr[base + j]
            hi = indptr[base + j + 1]
            for e in range(lo, hi):
                o = indices[e]
                if not mark[o]:
                    mark[o] = True
                    acc[o] = 0.0
                    tl[nt] = o
                    nt += 1
                acc[o] += data[e] * val
            ops += hi - lo
        size = pi[dst, P_SIZE]
        if 8 * nt > size:  # many targets: collect them in order from the marks
            nt = 0
            for o in range(size):
                if mark[o]:
                    tl[nt] = o
                    nt += 1
        else:  # few: insertion sort
            for x in range(1, nt):
                o = tl[x]
                y = x - 1
                while y >= 0 and tl[y] > o:
                    tl[y + 1] = tl[y]
                    y -= 1
                tl[y + 1] = o
        for x in range(nt):
            o = tl[x]
            tw[x] = acc[o]
            mark[o] = False
    if ops == 0:
        return
    counters[dst, 0] += ops
    counters[dst, 1] += nt
    off = pi[dst, P_OFF]
    if kind == LIF or kind == LI:
        if pi[dst, P_UNIFORM]:
            tau = pf[dst]
            _rebase(pi, pf, tref, st, dst, t)
            x = (t - tref[dst]) / tau
            d = math.exp(-x)
            g = math.exp(x)
            for a in range(nt):
                n = off + tl[a]
                vinf = nf[F_VINF, n]
                st[S_V, n] = vinf + (st[S_V, n] - vinf) * (d * st[S_G, n]) + tw[a] * nf[F_JUMP, n]
                st[S_G, n] = g
                st[S_T, n] = t
        else:
            for a in range(nt):
                n = off + tl[a]
                vinf = nf[F_VINF, n]
                st[S_V, n] = vinf + (st[S_V, n] - vinf) * math.exp(-(t - st[S_T, n]) / nf[F_TAU_M, n])
                st[S_V, n] += nf[F_R, n] * tw[a] * q / nf[F_TAU_M, n]
                st[S_T, n] = t
    else:
        for a in range(nt):
            n = off + tl[a]
            _advance1(kind, False, 1.0, 0.0, nf, st, n, t)
            if kind == IF:
                st[S_V, n] += nf[F_R, n] * tw[a] * q
            elif kind == CUBALIF or kind == CUBALI:
                st[S_I, n] += nf[F_W_IN, n] * tw[a] * q / nf[F_TAU_S, n]
            elif kind == IDENT:
                st[S_V, n] += tw[a]  # identity outputs integrate delivered charge
    if pi[dst, P_SPIKING]:
        _fire_now(pi, nf, st, count, counters, dst, tl, nt, t, si, sf, abv, ff, fp, rec_t, rec_n,
                  h_t, h_s, h_id, h_pos, xtol, True)


@numba.njit(**_JIT)
def _compact(si, dq_t, dq_i, dp):
    """Move the pending delayed deliveries (and their spikes) to the front of their buffers."""
    head = si[I_DQ_HEAD]
    tail = si[I_DQ_TAIL]
    if head == 0:
        return
    u0 = dq_i[head, 2] if head < tail else si[I_DP_TAIL]
    for a in range(u0, si[I_DP_TAIL]):
        dp[a - u0] = dp[a]
    for j in range(head, tail):
        dq_t[j - head] = dq_t[j]
        dq_i[j - head, 0] = dq_i[j, 0]
        dq_i[j - head, 1] = dq_i[j, 1]
        dq_i[j - head, 2] = dq_i[j, 2] - u0
        dq_i[j - head, 3] = dq_i[j, 3]
    si[I_DQ_HEAD] = 0
    si[I_DQ_TAIL] = tail - head
    si[I_DP_TAIL] -= u0


@numba.njit(**_JIT)
def _deliver(p, src_idx, s0, na, src_val, ones, t, delay, pi, pf, nf, kr, indptr, indices, data, data32, q,
             st, count, tref, counters, si, sf, acc, mark, tl, tw, abv, ff, fp, rec_t, rec_n,
             h_t, h_s, h_id, h_pos, dq_t, dq_i, dp, xtol):
    """Spikes of population ``p`` at ``t`` through all its projections (recurrent ones later if ``delay > 0``)."""
    for k in range(pi[p, P_PROJ_LO], pi[p, P_PROJ_HI]):
        if kr[k, K_DELAYED] and delay > 0:
            if si[I_DQ_TAIL] >= dq_t.shape[0] or si[I_DP_TAIL] + na > dp.shape[0]:
                _compact(si, dq_t, dq_i, dp)
                if si[I_DQ_TAIL] >= dq_t.shape[0] or si[I_DP_TAIL] + na > dp.shape[0]:
                    si[I_STATUS] = FULL_DELAY
                    return
            tail = si[I_DQ_TAIL]
            u = si[I_DP_TAIL]
            for a in range(na):
                dp[u + a] = src_idx[s0 + a]
            dq_t[tail] = t + delay
            dq_i[tail, 0] = si[I_SEQ]
            dq_i[tail, 1] = k
            dq_i[tail, 2] = u
            dq_i[tail, 3] = na
            si[I_SEQ] += 1
            si[I_DQ_TAIL] = tail + 1
            si[I_DP_TAIL] = u + na
            continue
        _project(k, src_idx, s0, na, src_val, ones, t, pi, pf, nf, kr, indptr, indices, data, data32, q,
                 st, count, tref, counters, si, sf, acc, mark, tl, tw, abv, ff, fp, rec_t, rec_n,
                 h_t, h_s, h_id, h_pos, xtol)
        if si[I_STATUS] != OK:
            return


@numba.njit(**_JIT)
def _drain(t, delay, limit, pi, pf, nf, kr, indptr, indices, data, data32, q, st, count, tref, counters, si, sf,
           acc, mark, tl, tw, abv, ff, fp, rec_t, rec_n, h_t, h_s, h_id, h_pos, dq_t, dq_i, dp, xtol):
    """Deliver the spikes queued at ``t`` (and those they cause at ``t``) in FIFO order."""
    head = 0
    while head < si[I_FF_N]:
        if head > limit:
            si[I_STATUS] = CASCADE
            sf[F_ERR_T] = t
            return
        p = ff[head, 0]
        _deliver(p, fp, ff[head, 1], ff[head, 2], acc, True, t, delay, pi, pf, nf, kr, indptr, indices, data, data32, q,
                 st, count, tref, counters, si, sf, acc, mark, tl, tw, abv, ff, fp, rec_t, rec_n,
                 h_t, h_s, h_id, h_pos, dq_t, dq_i, dp, xtol)
        if si[I_STATUS] != OK:
            return
        head += 1
    si[I_FF_N] = 0
    si[I_FP_N] = 0


# ---------------------------------------------------------------------- driving
@numba.njit(**_JIT)
def reset_state(pi, pf, nf, st, count, tref, counters, si, sf, h_t, h_s, h_id, h_pos, xtol, tl):
    """From rest: initial membranes, empty queues, every spiking neuron's first crossing scheduled."""
    st[:] = 0.0
    count[:] = 0
    tref[:] = 0.0
    counters[:] = 0
    si[:] = 0
    sf[:] = 0.0
    h_pos[:] = -1
    st[S_G, :] = 1.0
    for p in range(pi.shape[0]):
        kind = pi[p, P_KIND]
        off = pi[p, P_OFF]
        size = pi[p, P_SIZE]
        if kind != INPUT and kind != IF and kind != IDENT:
            for n in range(off, off + size):
                st[S_V, n] = nf[F_V_LEAK, n]
    for p in range(pi.shape[0]):
        if pi[p, P_SPIKING]:
            size = pi[p, P_SIZE]
            for x in range(size):
                tl[x] = x
            _schedule(pi, nf, st, p, tl, size, si, h_t, h_s, h_id, h_pos, xtol)


@numba.njit(**_JIT)
def _sample(row, t, pi, pf, nf, st, count, tref, out_pop, out_col, out):
    for o in range(out_pop.shape[0]):
        p = out_pop[o]
        kind = pi[p, P_KIND]
        off = pi[p, P_OFF]
        c0 = out_col[o]
        uniform = pi[p, P_UNIFORM] != 0
        if uniform:
            _rebase(pi, pf, tref, st, p, t)
        for x in range(pi[p, P_SIZE]):
            n = off + x
            if kind == LI or kind == CUBALI:
                _advance1(kind, uniform, pf[p], tref[p], nf, st, n, t)
                out[row, c0 + x] = st[S_V, n]
            elif kind == IDENT:
                out[row, c0 + x] = st[S_V, n] + nf[F_DRIVE, n]
            else:
                out[row, c0 + x] = count[n]


@numba.njit(**_JIT)
def advance(times, idx, val, until, samples, out, input_pop, delay, limit, xtol, q,
            pi, pf, nf, kr, indptr, indices, data, data32, out_pop, out_col,
            st, count, tref, counters, si, sf, acc, mark, tl, tw, abv, ff, fp, rec_t, rec_n,
            h_t, h_s, h_id, h_pos, dq_t, dq_i, dp):
    """Process input events (sorted seconds, flat index, value) and the events they cause up to ``until``,
    taking readout samples at ``samples``. Returns the status (``OK`` or why it stopped)."""
    ne = times.shape[0]
    ns = samples.shape[0]
    e = 0
    s_i = 0
    inf = np.inf
    while True:
        t_in = times[e] if e < ne else inf
        hn = si[I_HEAP]
        dh = si[I_DQ_HEAD]
        dq_any = dh < si[I_DQ_TAIL]
        use_d = dq_any and (hn == 0 or dq_t[dh] < h_t[0] or (dq_t[dh] == h_t[0] and dq_i[dh, 0] < h_s[0]))
        if use_d:
            t_q = dq_t[dh]
        else:
            t_q = h_t[0] if hn > 0 else inf
        t_s = samples[s_i] if s_i < ns else inf
        t_next = min(t_in, t_q, t_s)
        if t_next > until or t_next == inf:
            break
        if t_s <= t_in and t_s <= t_q:
            _sample(s_i, t_s, pi, pf, nf, st, count, tref, out_pop, out_col, out)
            s_i += 1
            continue
        if t_in <= t_q:
            e2 = e + 1
            while e2 < ne and times[e2] == t_in:
                e2 += 1
            sf[F_NOW] = t_in
            si[I_INPUT] += e2 - e
            _deliver(input_pop, idx, e, e2 - e, val, False, t_in, delay, pi, pf, nf, kr, indptr, indices, data, data32,
                     q, st, count, tref, counters, si, sf, acc, mark, tl, tw, abv, ff, fp, rec_t, rec_n,
                     h_t, h_s, h_id, h_pos, dq_t, dq_i, dp, xtol)
            t = t_in
            e = e2
        elif use_d:
            t = t_q
            sf[F_NOW] = t
            k = dq_i[dh, 1]
            si[I_DQ_HEAD] = dh + 1
            # (new deliveries are queued only while draining, after this one has been read)
            _project(k, dp, dq_i[dh, 2], dq_i[dh, 3], acc, True, t, pi, pf, nf, kr, indptr, indices, data, data32, q,
                     st, count, tref, counters, si, sf, acc, mark, tl, tw, abv, ff, fp, rec_t, rec_n,
                     h_t, h_s, h_id, h_pos, xtol)
            if si[I_DQ_HEAD] == si[I_DQ_TAIL]:  # queue empty: reuse its buffers from the start
                si[I_DQ_HEAD] = 0
                si[I_DQ_TAIL] = 0
                si[I_DP_TAIL] = 0
        else:
            t = t_q
            sf[F_NOW] = t
            n = h_id[0]
            _heap_remove(h_t, h_s, h_id, h_pos, si, n)
            p = 0
            while not (pi[p, P_OFF] <= n < pi[p, P_OFF] + pi[p, P_SIZE]):
                p += 1
            uniform = pi[p, P_UNIFORM] != 0
            if uniform:
                _rebase(pi, pf, tref, st, p, t)
            _advance1(pi[p, P_KIND], uniform, pf[p], tref[p], nf, st, n, t)
            th_up = np.nextafter(nf[F_V_TH, n], inf)
            if th_up > st[S_V, n]:
                st[S_V, n] = th_up  # the crossing is reached
            tl[0] = n - pi[p, P_OFF]
            _fire_now(pi, nf, st, count, counters, p, tl, 1, t, si, sf, abv, ff, fp, rec_t, rec_n,
                      h_t, h_s, h_id, h_pos, xtol, True)
        if si[I_STATUS] == OK and si[I_FF_N] > 0:
            _drain(t, delay, limit, pi, pf, nf, kr, indptr, indices, data, data32, q, st, count, tref, counters, si, sf,
                   acc, mark, tl, tw, abv, ff, fp, rec_t, rec_n, h_t, h_s, h_id, h_pos, dq_t, dq_i, dp, xtol)
        if si[I_STATUS] != OK:
            return si[I_STATUS]
    while s_i < ns and samples[s_i] <= until:
        _sample(s_i, samples[s_i], pi, pf, nf, st, count, tref, out_pop, out_col, out)
        s_i += 1
    sf[F_NOW] = max(sf[F_NOW], until)
    return OK


@numba.njit(cache=True, nogil=True, parallel=True)
def run_batch(ev_ptr, times, idx, val, until, input_pop, delay, limit, xtol, q,
              pi, pf, nf, kr, indptr, indices, data, data32, out_pop, out_col,
              st, count, tref, counters, si, sf, acc, mark, tl, tw, abv, ff, fp, rec_t, rec_n,
              h_t, h_s, h_id, h_pos, dq_t, dq_i, dp, status, todo):
    """``advance`` from rest for samples ``todo`` (each its own state: the arrays' first axis), in parallel."""
    for j in numba.prange(todo.shape[0]):
        _run_sample(np.int64(todo[j]), ev_ptr, times, idx, val, until, input_pop, delay, limit, xtol, q,
                    pi, pf, nf, kr, indptr, indices, data, data32, out_pop, out_col,
                    st, count, tref, counters, si, sf, acc, mark, tl, tw, abv, ff, fp, rec_t, rec_n,
                    h_t, h_s, h_id, h_pos, dq_t, dq_i, dp, status)


@numba.njit(nogil=True, error_model="numpy")
def _run_sample(b, ev_ptr, times, idx, val, until, input_pop, delay, limit, xtol, q,
                pi, pf, nf, kr, indptr, indices, data, data32, out_pop, out_col,
                st, count, tref, counters, si, sf, acc, mark, tl, tw, abv, ff, fp, rec_t, rec_n,
                h_t, h_s, h_id, h_pos, dq_t, dq_i, dp, status):
    """``run_batch``'s work for sample ``b``: a plain function, not the ``prange`` body, whose parfor
    passes took numba about 10 s to compile (``spikeflow.kernels.linear_lif._backward_chunk``)."""
    reset_state(pi, pf, nf, st[b], count[b], tref[b], counters[b], si[b], sf[b], h_t[b], h_s[b], h_id[b],
                h_pos[b], xtol, tl[b])
    lo = ev_ptr[b]
    hi = ev_ptr[b + 1]
    status[b] = advance(times[lo:hi], idx[lo:hi], val[lo:hi], until[b], np.zeros(0), np.zeros((0, 1)), input_pop,
                        delay, limit, xtol, q, pi, pf, nf, kr, indptr, indices, data, data32, out_pop, out_col,
                        st[b], count[b], tref[b], counters[b], si[b], sf[b], acc[b], mark[b], tl[b], tw[b],
                        abv[b], ff[b], fp[b], rec_t[b], rec_n[b], h_t[b], h_s[b], h_id[b], h_pos[b],
                        dq_t[b], dq_i[b], dp[b])
