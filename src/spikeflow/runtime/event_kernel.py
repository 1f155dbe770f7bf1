"""The event-driven time loop (numba). See ``event_plan`` for the array layout.

Per step and population (in graph order): the spikes of each source population are
pushed through their projection's stages (CSR rows or implicit convolution), adding into
the targets' input; then only the neurons that received input, or that could fire without
input ("active": e.g. a bias above threshold, or a CubaLIF whose current still rises), are
updated. A neuron left alone is brought up to date lazily from its last update step with
the closed form of the same discrete recursion the reference ``step`` runs.
Non-spiking populations (LI, CubaLI, identity outputs) are updated every step and traced.
With ``crossing`` (the engines' ``reset_timing="crossing"``) a neuron that spikes is reset at
its threshold-crossing time inside the step (``_crossing``: the operations of
``spikeflow.neurons``' ``step_crossing`` functions, computed only for neurons that spike), and
each spike carries its lag before the step's end (``cur_lag``: value * (lag - 1/2)) to CubaLIF and
CubaLI targets, whose input gets a second accumulator ``inp_lag`` (``neurons.cuba``'s precise
spike times); in the default mode none of this runs.
"""

from __future__ import annotations

import math

import numba

LIF, IF, LI, CUBALIF, CUBALI, IDENT, INPUT = 0, 1, 2, 3, 4, 5, 6


@numba.njit(cache=True, nogil=True)
def _cuba_coupling(alpha_k, x_mem_k, d_k):
    """CubaLIF's coupling K over k steps, ``a^k (k dt/tau_mem) expm1(k d) / (k d)`` (``neurons.cuba``)."""
    if abs(d_k) < 1e-5:
        return alpha_k * x_mem_k * (1.0 + d_k * (0.5 + d_k / 6.0))
    return alpha_k * x_mem_k * (math.expm1(d_k) / d_k)


@numba.njit(cache=True, nogil=True)
def _crossing(kind, v_prev, v_pre, v_th, alpha, r, v_leak, drive):
    """Where a neuron that spiked crossed threshold inside the step: ``(rest, v_star, lag)``.

    The same operations, in the same order, as ``neurons.cuba.step_crossing`` (CubaLIF: linear
    interpolation of the crossing, Hansel et al. 1998), ``neurons.lif.step_crossing`` (LIF: exact
    where the constant drive crosses inside the step) and ``neurons.if_.step_crossing``: ``rest``
    the reset's decay to the step's end, ``v_star`` the membrane at the crossing, ``lag`` the
    crossing's distance to the step's end in steps (0: a jump at the end).
    """
    rest = 1.0
    v_star = max(v_prev, v_th)
    lag = 1.0
    if kind == CUBALIF:
        f = 0.0
        if v_prev < v_th and v_pre > v_prev:
            f = min(max((v_th - v_prev) / (v_pre - v_prev), 0.0), 1.0)
        rest = alpha ** (1.0 - f)
        lag = 1.0 - f
    elif kind == LIF:
        v_mid = v_leak + (v_prev - v_leak) * alpha + r * drive * (1.0 - alpha)
        if v_mid > v_th:
            rest = alpha
            if v_prev < v_th:
                v_inf = v_leak + r * drive
                rest = min(max(alpha * (v_inf - v_prev) / (v_inf - v_th), alpha), 1.0)
            lag = math.log(rest) / math.log(alpha)
        else:  # an input jump crossed at the step's end
            v_star = v_pre
            lag = 0.0
    elif not v_prev + r * drive > v_th:  # IF: the same
        v_star = v_pre
        lag = 0.0
    elif v_prev < v_th:
        lag = 1.0 - (v_th - v_prev) / (r * drive)
    return rest, v_star, lag


@numba.njit(cache=True, nogil=True)
def _scatter_csr(a_idx, a_val, na, indptr, indices, data, ptr_off, nz_off, out, mark, off, touched, nt, limit):
    """Add each source's weight row into ``out``; list newly touched targets (until all ``limit`` are)."""
    ops = 0
    for e in range(na):
        j = a_idx[e]
        val = a_val[e]
        lo = indptr[ptr_off + j] + nz_off
        hi = indptr[ptr_off + j + 1] + nz_off
        if hi > lo and indices[hi - 1] - indices[lo] == hi - 1 - lo:
            # a row onto consecutive targets (a dense weight row): a contiguous loop, which vectorises;
            # each target gets the same single product added, so the result is unchanged
            o = out[off + indices[lo]:off + indices[lo] + hi - lo]
            d = data[lo:hi]
            for q in range(hi - lo):
                o[q] += val * d[q]
        else:
            for q in range(lo, hi):
                out[off + indices[q]] += val * data[q]
        if nt < limit:
            for q in range(lo, hi):
                o = off + indices[q]
                if not mark[o]:
                    mark[o] = True
                    touched[nt] = o
                    nt += 1
        ops += hi - lo
    return nt, ops


@numba.njit(cache=True, nogil=True)
def _scatter_conv(a_idx, a_val, na, st, w, out, mark, off, touched, nt):
    cin, h, wd, cout, oh, ow = st[6], st[7], st[8], st[9], st[10], st[11]
    kh, kw, sh, sw, ph, pw, dh, dw, groups = st[12], st[13], st[14], st[15], st[16], st[17], st[18], st[19], st[20]
    w_off = st[5]
    cin_g = cin // groups
    cout_g = cout // groups
    ops = 0
    for e in range(na):
        j = a_idx[e]
        val = a_val[e]
        c = j // (h * wd)
        rem = j - c * h * wd
        y = rem // wd
        x = rem - y * wd
        g = c // cin_g
        ci = c - g * cin_g
        for ky in range(kh):
            ny = y + ph - ky * dh
            if ny < 0 or ny % sh != 0:
                continue
            oy = ny // sh
            if oy >= oh:
                continue
            for kx in range(kw):
                nx = x + pw - kx * dw
                if nx < 0 or nx % sw != 0:
                    continue
                ox = nx // sw
                if ox >= ow:
                    continue
                for co in range(g * cout_g, (g + 1) * cout_g):
                    o = off + (co * oh + oy) * ow + ox
                    out[o] += val * w[w_off + ((co * cin_g + ci) * kh + ky) * kw + kx]
                    if not mark[o]:
                        mark[o] = True
                        touched[nt] = o
                        nt += 1
                    ops += 1
    return nt, ops


@numba.njit(cache=True, nogil=True)
def run_steps(t0, n_steps, in_ptr, in_idx, in_val, spike_value,
              pop_i, prm, proj_i, pop_proj_ptr, stage_i, indptr, indices, data, weights,
              v, isyn, last, active, act_list, act_n, cur_idx, cur_val, cur_lag, cur_n, prev_idx, prev_val, prev_lag,
              prev_n, inp, inp_lag, markn, touch, buf, markb, tbuf, a_idx, a_val, b_idx, b_val,
              trace, rec_t, rec_g, rec_n, counters, has_delay, crossing):
    """Advance ``n_steps`` steps from global step ``t0``. Returns False if ``rec_*`` overflowed."""
    n_pop = pop_i.shape[0]
    ok = True
    cap = rec_t.shape[0]
    for t in range(n_steps):
        tg = t0 + t
        for p in range(n_pop):
            off = pop_i[p, 0]
            size = pop_i[p, 1]
            kind = pop_i[p, 2]
            if kind == INPUT:
                n = 0
                for e in range(in_ptr[t], in_ptr[t + 1]):
                    cur_idx[off + n] = in_idx[e]
                    cur_val[off + n] = in_val[e]
                    n += 1
                cur_n[p] = n
                counters[p, 2] += n
                continue
            # 1. gather input from every projection into p; in crossing mode a second pass carries
            # the spikes' lag moments (value * (lag - 1/2)) into ``inp_lag`` for CubaLIF/CubaLI
            # targets (``neurons.cuba``'s precise spike times; data input has none)
            n_touch = 0
            lag_target = crossing and (kind == CUBALIF or kind == CUBALI)
            for k in range(pop_proj_ptr[p], pop_proj_ptr[p + 1]):
                src = proj_i[k, 0]
                s_off = pop_i[src, 0]
                delayed = proj_i[k, 2] != 0
                na0 = prev_n[src] if delayed else cur_n[src]
                if na0 == 0:
                    continue
                n_pass = 2 if lag_target and pop_i[src, 2] != INPUT else 1
                for ps in range(n_pass):
                    out = inp if ps == 0 else inp_lag
                    na = na0
                    src_idx = prev_idx if delayed else cur_idx
                    if ps == 0:
                        src_val = prev_val if delayed else cur_val
                    else:
                        src_val = prev_lag if delayed else cur_lag
                    for e in range(na):
                        a_idx[e] = src_idx[s_off + e]
                        a_val[e] = src_val[s_off + e]
                    s_end = proj_i[k, 4]
                    for s in range(proj_i[k, 3], s_end):
                        final = s == s_end - 1
                        if final:  # (the lag pass touches the value pass's targets: no new ones)
                            if stage_i[s, 0] == 0:
                                n_touch, ops = _scatter_csr(a_idx, a_val, na, indptr, indices, data, stage_i[s, 3],
                                                            stage_i[s, 4], out, markn, off, touch, n_touch, size)
                            else:
                                n_touch, ops = _scatter_conv(a_idx, a_val, na, stage_i[s], weights, out, markn, off,
                                                             touch, n_touch)
                        else:
                            if stage_i[s, 0] == 0:
                                nt, ops = _scatter_csr(a_idx, a_val, na, indptr, indices, data, stage_i[s, 3],
                                                       stage_i[s, 4], buf, markb, 0, tbuf, 0, stage_i[s, 2])
                            else:
                                nt, ops = _scatter_conv(a_idx, a_val, na, stage_i[s], weights, buf, markb, 0, tbuf,
                                                        0)
                            for e in range(nt):
                                o = tbuf[e]
                                a_idx[e] = o
                                a_val[e] = buf[o]
                                buf[o] = 0.0
                                markb[o] = False
                            na = nt
                        if ps == 0:
                            counters[p, 0] += ops
            # 2. update touched + active neurons (every neuron of a traced population)
            traced = pop_i[p, 4] >= 0
            if traced:
                for e in range(n_touch):
                    markn[touch[e]] = False
                n_upd = size
            else:
                n_old = act_n[p]
                n_upd = n_touch
                for e in range(n_old):
                    g = off + act_list[off + e]
                    if not markn[g]:
                        touch[n_upd] = g
                        n_upd += 1
                for e in range(n_touch):
                    markn[touch[e]] = False
            reset_mode = pop_i[p, 5]
            n_spk = 0
            n_act = 0
            for e in range(n_upd):
                g = off + e if traced else touch[e]
                alpha = prm[g, 0]
                r = prm[g, 2]
                v_leak = prm[g, 3]
                drive = prm[g, 7]
                x = drive + inp[g]
                inp[g] = 0.0
                k = tg - 1 - last[g]
                vv = 0.0
                if kind == LIF or kind == LI:
                    if k > 0:
                        vinf = v_leak + r * drive
                        v[g] = vinf + (v[g] - vinf) * alpha ** k
                    vv = v_leak + (v[g] - v_leak) * alpha + r * x * (1.0 - alpha)
                elif kind == IF:
                    if k > 0:
                        v[g] = v[g] + k * (r * drive)
                    vv = v[g] + r * x
                elif kind == CUBALIF or kind == CUBALI:
                    beta = prm[g, 1]
                    w_in = prm[g, 6]
                    if k > 0:  # k steps of constant drive: the exact solution over k dt
                        iinf = w_in * drive
                        vinf = v_leak + r * iinf
                        d0 = isyn[g] - iinf
                        ak = alpha ** k
                        coup = _cuba_coupling(ak, k * prm[g, 10], k * prm[g, 11])
                        v[g] = vinf + ak * (v[g] - vinf) + r * d0 * coup
                        isyn[g] = iinf + d0 * beta ** k
                    wx = w_in * x
                    i0 = isyn[g]
                    isyn[g] = i0 * beta + wx * (1.0 - beta)
                    vv = v_leak + (v[g] - v_leak) * alpha + r * i0 * prm[g, 8] + r * wx * prm[g, 9]
                    if lag_target:  # first-order response to the input spikes' lags (neurons.cuba)
                        wy = w_in * inp_lag[g]
                        inp_lag[g] = 0.0
                        isyn[g] = isyn[g] + wy * prm[g, 12]
                        vv = vv + r * wy * prm[g, 13]
                else:  # identity output
                    vv = x
                last[g] = tg
                if traced:
                    trace[t, pop_i[p, 4] + g - off] = vv
                    v[g] = vv
                    continue
                v_th = prm[g, 4]
                if vv - v_th > 0.0:
                    cur_idx[off + n_spk] = g - off
                    cur_val[off + n_spk] = spike_value
                    rest, v_star, lag = 1.0, 0.0, 0.5
                    if crossing:
                        rest, v_star, lag = _crossing(kind, v[g], vv, v_th, alpha, r, v_leak, drive)
                        cur_lag[off + n_spk] = spike_value * (lag - 0.5)
                    n_spk += 1
                    if pop_i[p, 3] == 1:
                        c = rec_n[0]
                        if c < cap:
                            rec_t[c] = tg
                            rec_g[c] = g
                            rec_n[0] = c + 1
                        else:
                            ok = False
                    if crossing and reset_mode == 0:  # neurons.lif.reset_at_crossing
                        vv = vv - v_th * rest
                    elif crossing and reset_mode == 1:
                        vv = vv - (v_star - prm[g, 5]) * rest
                    elif reset_mode == 0:
                        vv = vv - v_th
                    elif reset_mode == 1:
                        vv = vv - (vv - prm[g, 5])
                v[g] = vv
                # can it fire without further input? then keep updating it every step
                margin = 1e-9 * (1.0 + abs(v_th))
                if kind == LIF:
                    vinf = v_leak + r * drive
                    still = max(vv, vinf) > v_th - margin
                elif kind == IF:
                    still = r * drive > 0.0 or vv > v_th - margin
                else:
                    iinf = prm[g, 6] * drive
                    vinf = v_leak + r * iinf
                    bound = vinf + max(vv - vinf, 0.0) + max(r * (isyn[g] - iinf), 0.0)
                    still = bound > v_th - margin
                if still:
                    act_list[off + n_act] = g - off  # the old list was already copied into touch
                    n_act += 1
            cur_n[p] = n_spk
            act_n[p] = n_act
            counters[p, 1] += n_upd
            counters[p, 2] += n_spk
        if has_delay:
            for p in range(n_pop):
                off = pop_i[p, 0]
                for e in range(cur_n[p]):
                    prev_idx[off + e] = cur_idx[off + e]
                    prev_val[off + e] = cur_val[off + e]
                    prev_lag[off + e] = cur_lag[off + e]
                prev_n[p] = cur_n[p]
    return ok
