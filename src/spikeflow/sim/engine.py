"""numba time loop of a simulation: neuron updates, spike delivery through a delay ring
buffer, recording. The neuron math mirrors the reference steps of
:mod:`spikeflow.neurons` (``expsyn``, ``cuba``, ``izhikevich``) operation by operation,
in the state's dtype, so a float64 run reproduces them bit for bit.

Layout: the neurons a process owns are laid out population after population; ``chunks``
split them into blocks that threads update in parallel; the spikes of one step are then
handled serially in global index order (recording, delivery), which keeps every result
independent of the number of threads and processes.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from spikeflow.sim import rng

LIF, CUBALIF, IZHIKEVICH, POISSON, SOURCE = 0, 1, 2, 3, 4

# Columns of the per-population parameter table ``pf`` (state dtype) and ``pi`` (int64).
# LIF:        pf = [alpha, 1-alpha, v_leak, v_threshold, v_reset]; pi = [reset_mode, refractory_steps]
# CubaLIF:    pf = [alpha, E, v_leak, v_threshold, v_reset, b_syn, 1-b_syn, w_in, r, K]; pi = [reset_mode]
#             (E, K: the exact step's input gain and current coupling, neurons.cuba)
# Izhikevich: pf = [a, b, c, d, v_peak, h_v, h_u_a, 0.04, 5, 140]; pi = [0, 0, substeps]
# Poisson:    pf = [probability per step]
RESET_TO, RESET_SUB, RESET_NONE = 0, 1, 2


@nb.njit(inline="always")
def _half_to_float(h):
    """IEEE half (as uint16 bits) to float64."""
    s = -1.0 if (h >> 15) & 1 else 1.0
    e = (h >> 10) & 0x1F
    m = h & 0x3FF
    if e == 0:
        return s * m * 5.960464477539063e-08  # 2**-24
    if e == 31:
        return s * np.inf if m == 0 else np.nan
    return s * (1.0 + m / 1024.0) * 2.0 ** (e - 15)


@nb.njit(inline="always")
def _reset(v, mode, v_threshold, v_reset):
    if mode == RESET_TO:
        return v - (v - v_reset)
    if mode == RESET_SUB:
        return v - v_threshold
    return v


def _make_lif2(mode):
    """LIF with two exponential channels (``neurons.expsyn.step``), neurons ``lo .. hi-1``,
    specialised for one reset mode. One branch-free pass that LLVM vectorises (unsigned
    indices, so no negative-index wraparound; no short-circuit ``and``; selects only;
    int32 counters next to float32 state), then a scan of the spike flags eight at a
    time (``flag64`` views ``flag``)."""

    @nb.njit(inline="always")
    def lif2(lo, hi, a, oma, vl, th, vr, rs, k0, k1, b0, b1, v, refr, g0, g1, r0, r1, spike_buf, flag, flag64):
        zero = np.int32(0)
        one = np.int32(1)
        ulo = np.uint64(lo)
        uhi = np.uint64(hi)
        for i in range(ulo, uhi):
            x0 = g0[i] + r0[i]
            x1 = g1[i] + r1[i]
            r0[i] = 0
            r1[i] = 0
            x = x0 * k0
            x = x + x1 * k1
            g0[i] = x0 * b0
            g1[i] = x1 * b1
            vo = v[i]
            vi = vl + (vo - vl) * a + x * oma
            ri = refr[i]
            act = ri <= zero
            sp = act & (vi - th > 0)
            vn = vi if act else vo
            if mode == RESET_TO:
                v[i] = (vn - (vn - vr)) if sp else vn
            elif mode == RESET_SUB:
                v[i] = (vn - th) if sp else vn
            else:
                v[i] = vn
            refr[i] = rs if sp else max(ri - one, zero)
            flag[i] = sp
        return _collect_flags(lo, hi, flag, flag64, spike_buf)

    return lif2


@nb.njit(inline="always")
def _collect_flags(lo, hi, flag, flag64, spike_buf):
    """Indices ``i`` in ``lo .. hi-1`` with ``flag[i]`` set, ascending, into ``spike_buf[lo:]``.
    Spikes are rare: whole 8-byte words of zeros are skipped."""
    n = 0
    i = lo
    while i < hi and i % 8 != 0:
        if flag[i]:
            spike_buf[lo + n] = i
            n += 1
        i += 1
    while i + 8 <= hi:
        if flag64[i >> 3] != 0:
            for j in range(i, i + 8):
                if flag[j]:
                    spike_buf[lo + n] = j
                    n += 1
        i += 8
    while i < hi:
        if flag[i]:
            spike_buf[lo + n] = i
            n += 1
        i += 1
    return n


_lif2_to = _make_lif2(RESET_TO)
_lif2_sub = _make_lif2(RESET_SUB)
_lif2_none = _make_lif2(RESET_NONE)


@nb.njit(inline="always")
def _lif_any(lo, hi, a, oma, vl, th, vr, mode, rs, kc, bc, v, refr, g, ring_s, spike_buf):
    n_ch = g.shape[0]
    n = 0
    for i in range(lo, hi):
        gc = g[0, i] + ring_s[0, i]
        ring_s[0, i] = 0
        x = gc * kc[0]
        g[0, i] = gc * bc[0]
        for c in range(1, n_ch):
            gc = g[c, i] + ring_s[c, i]
            ring_s[c, i] = 0
            x = x + gc * kc[c]
            g[c, i] = gc * bc[c]
        vi = vl + (v[i] - vl) * a + x * oma
        if rs > 0 and refr[i] > 0:
            refr[i] -= 1
        elif vi - th > 0:
            v[i] = _reset(vi, mode, th, vr)
            if rs > 0:
                refr[i] = rs
            spike_buf[lo + n] = i
            n += 1
        else:
            v[i] = vi
    return n


@nb.njit(inline="always")
def _update_chunk(ch, s, slot, chunk_pop, chunk_lo, chunk_hi, pop_kind, pop_glo, pop_llo, pf, pi, kcoef, beta,
                  n_ch, v, u, refr, g, ring, spike_buf, flag, flag64, seed, ss_steps, ss_ids, ss_ptr):
    """Advance the neurons of chunk ``ch`` by step ``s``; returns the number of spikes."""
    p = chunk_pop[ch]
    kind = pop_kind[p]
    lo = chunk_lo[ch]
    hi = chunk_hi[ch]
    n = 0
    if kind == LIF:
        rs = np.int32(pi[p, 1])
        if n_ch == 2:
            a0, a1, a2, a3, a4 = pf[p, 0], pf[p, 1], pf[p, 2], pf[p, 3], pf[p, 4]
            k0, k1, b0, b1 = kcoef[p, 0], kcoef[p, 1], beta[p, 0], beta[p, 1]
            r0, r1 = ring[slot, 0], ring[slot, 1]
            if pi[p, 0] == RESET_TO:
                n = _lif2_to(lo, hi, a0, a1, a2, a3, a4, rs, k0, k1, b0, b1, v, refr, g[0], g[1], r0, r1,
                             spike_buf, flag, flag64)
            elif pi[p, 0] == RESET_SUB:
                n = _lif2_sub(lo, hi, a0, a1, a2, a3, a4, rs, k0, k1, b0, b1, v, refr, g[0], g[1], r0, r1,
                              spike_buf, flag, flag64)
            else:
                n = _lif2_none(lo, hi, a0, a1, a2, a3, a4, rs, k0, k1, b0, b1, v, refr, g[0], g[1], r0, r1,
                               spike_buf, flag, flag64)
        else:
            n = _lif_any(lo, hi, pf[p, 0], pf[p, 1], pf[p, 2], pf[p, 3], pf[p, 4], pi[p, 0], rs, kcoef[p],
                         beta[p], v, refr, g, ring[slot], spike_buf)
    elif kind == CUBALIF:
        a = pf[p, 0]
        e_in = pf[p, 1]
        vl = pf[p, 2]
        th = pf[p, 3]
        vr = pf[p, 4]
        b = pf[p, 5]
        omb = pf[p, 6]
        w_in = pf[p, 7]
        r = pf[p, 8]
        kc = pf[p, 9]
        mode = pi[p, 0]
        for i in range(lo, hi):
            x = ring[slot, 0, i]
            ring[slot, 0, i] = 0
            for c in range(1, n_ch):
                x = x + ring[slot, c, i]
                ring[slot, c, i] = 0
            wx = w_in * x
            i0 = u[i]
            u[i] = i0 * b + wx * omb
            vi = vl + (v[i] - vl) * a + r * i0 * kc + r * wx * e_in
            if vi - th > 0:
                v[i] = _reset(vi, mode, th, vr)
                spike_buf[lo + n] = i
                n += 1
            else:
                v[i] = vi
    elif kind == IZHIKEVICH:
        pf[p, 0]
        ib = pf[p, 1]
        ic = pf[p, 2]
        idd = pf[p, 3]
        vp = pf[p, 4]
        hv = pf[p, 5]
        hua = pf[p, 6]
        c1 = pf[p, 7]
        c2 = pf[p, 8]
        c3 = pf[p, 9]
        nsub = pi[p, 2]
        for i in range(lo, hi):
            gc = g[0, i] + ring[slot, 0, i]
            ring[slot, 0, i] = 0
            x = gc
            g[0, i] = gc * beta[p, 0]
            for c in range(1, n_ch):
                gc = g[c, i] + ring[slot, c, i]
                ring[slot, c, i] = 0
                x = x + gc
                g[c, i] = gc * beta[p, c]
            vi = v[i]
            ui = u[i]
            peaked = False
            for _ in range(nsub):
                vn = vi + hv * (c1 * vi * vi + c2 * vi + c3 - ui + x)
                if vn >= vp:
                    peaked = True
                vi = vp if peaked else vn
            ui = ui + hua * (ib * vi - ui)
            if peaked:
                v[i] = ic
                u[i] = ui + idd
                spike_buf[lo + n] = i
                n += 1
            else:
                v[i] = vi
                u[i] = ui
    elif kind == POISSON:
        prob = pf[p, 0]
        off = pop_glo[p] - pop_llo[p]
        for i in range(lo, hi):
            if rng.uniform(rng.key(seed, rng.STREAM_POISSON, off + i, s), 0) < prob:
                spike_buf[lo + n] = i
                n += 1
    else:  # SOURCE: events sorted by (step, local index); one chunk per population
        k = ss_ptr[p]
        end = ss_ptr[pop_kind.size + p]
        while k < end and ss_steps[k] < s:
            k += 1
        while k < end and ss_steps[k] == s:
            spike_buf[lo + n] = ss_ids[k]
            n += 1
            k += 1
        ss_ptr[p] = k
    return n


@nb.njit(inline="always")
def deliver_spike(gid, s, src_glo, src_ghi, indptr, ind_off, indices, tgt_off, channel, w_scalar, w_off, w_kind,
                  w32, w16, d_scalar, d_off, delays, ring):
    """Add the weights of ``gid``'s synapses to the ring-buffer slots of their arrival steps."""
    n_slots = ring.shape[0]
    for pr in range(src_glo.size):
        if gid < src_glo[pr] or gid >= src_ghi[pr]:
            continue
        row = ind_off[pr] + gid - src_glo[pr]
        q0 = np.uint64(indptr[row])
        q1 = np.uint64(indptr[row + 1])
        c = channel[pr]
        t_off = tgt_off[pr]
        wk = w_kind[pr]
        if d_off[pr] < 0 and wk == 0:  # shared weight and delay: the common, fast case
            r = ring[(s + d_scalar[pr]) % n_slots, c]
            w = w_scalar[pr]
            for q in range(q0, q1):
                r[indices[q] + t_off] += w
            continue
        for q in range(q0, q1):
            tgt = indices[q] + t_off
            if wk == 0:
                w = w_scalar[pr]
            elif wk == 1:
                w = w32[w_off[pr] + q]
            else:
                w = _half_to_float(w16[w_off[pr] + q])
            d = d_scalar[pr] if d_off[pr] < 0 else delays[d_off[pr] + q]
            ring[(s + d) % n_slots, c, tgt] += w


def _run_steps(t0, t1, deliver_local, chunk_pop, chunk_lo, chunk_hi, pop_kind, pop_glo, pop_llo, pf, pi, kcoef, beta,
               v, u, refr, g, ring, spike_buf, flag, chunk_count, seed, ss_steps, ss_ids, ss_ptr,
               src_glo, src_ghi, indptr, ind_off, indices, tgt_off, channel, w_scalar, w_off, w_kind, w32, w16,
               d_scalar, d_off, delays, rec_mask, rec_steps, rec_ids, rec_n, emit_steps, emit_ids, emit_n,
               local_to_global, probe_var, probe_idx, probe_every, probe_off, probe_out):
    """Steps ``t0 .. t1-1``. Returns the first step not run (early when the spike record is full)."""
    n_ch = g.shape[0]
    n_slots = ring.shape[0]
    n_chunks = chunk_pop.size
    flag64 = flag.view(np.uint64)  # flag: uint8, size a multiple of 8
    n_rec_max = 0
    for i in range(rec_mask.size):
        n_rec_max += rec_mask[i]
    for s in range(t0, t1):
        if rec_n[0] + n_rec_max > rec_steps.size:
            return s
        for pr in range(probe_var.size):  # state before the update: the value at time s*dt
            if s % probe_every[pr] == 0:
                k = s // probe_every[pr]
                i = probe_idx[pr]
                var = probe_var[pr]
                if var == 0:
                    probe_out[probe_off[pr] + k] = v[i]
                elif var == 1:
                    probe_out[probe_off[pr] + k] = u[i]
                else:
                    probe_out[probe_off[pr] + k] = g[var - 2, i]
        slot = s % n_slots
        for ch in nb.prange(n_chunks):
            chunk_count[ch] = _update_chunk(ch, s, slot, chunk_pop, chunk_lo, chunk_hi, pop_kind, pop_glo, pop_llo,
                                            pf, pi, kcoef, beta, n_ch, v, u, refr, g, ring, spike_buf, flag,
                                            flag64, seed, ss_steps, ss_ids, ss_ptr)
        for ch in range(n_chunks):
            lo = chunk_lo[ch]
            for q in range(chunk_count[ch]):
                i = spike_buf[lo + q]
                gid = local_to_global[i]
                if rec_mask[i]:
                    rec_steps[rec_n[0]] = s
                    rec_ids[rec_n[0]] = gid
                    rec_n[0] += 1
                if deliver_local:
                    deliver_spike(gid, s, src_glo, src_ghi, indptr, ind_off, indices, tgt_off, channel, w_scalar,
                                  w_off, w_kind, w32, w16, d_scalar, d_off, delays, ring)
                else:
                    emit_steps[emit_n[0]] = s
                    emit_ids[emit_n[0]] = gid
                    emit_n[0] += 1
    return t1


run_steps_serial = nb.njit(cache=True)(_run_steps)
run_steps_parallel = nb.njit(parallel=True, cache=True)(_run_steps)


@nb.njit(cache=True)
def deliver_all(steps, gids, src_glo, src_ghi, indptr, ind_off, indices, tgt_off, channel, w_scalar, w_off, w_kind,
                w32, w16, d_scalar, d_off, delays, ring):
    """Deliver spikes already sorted by (step, global index) (the spikes of all processes)."""
    for k in range(steps.size):
        deliver_spike(gids[k], steps[k], src_glo, src_ghi, indptr, ind_off, indices, tgt_off, channel, w_scalar,
                      w_off, w_kind, w32, w16, d_scalar, d_off, delays, ring)
