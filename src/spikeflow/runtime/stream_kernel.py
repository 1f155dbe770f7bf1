"""numba helpers of ``Stream``'s per-chunk path: one call validates and indexes a chunk, one
call bins pending events into the event engine's per-step input (replacing ~30 small
numpy calls per chunk, whose fixed cost dominated the latency per event)."""

from __future__ import annotations

import numba
import numpy as np

OK, BAD_X, BAD_Y, BAD_P, UNSORTED = 0, 1, 2, 3, 4


@numba.njit(cache=True, nogil=True)
def index_events(t, x, y, p, width, height, n_pol, use_y, use_p, out_t, out_idx):
    """Copy ``t`` to ``out_t`` and write each event's flat input index ``(p H + y) W + x``.

    Returns ``(code, event)``: ``OK``, or the first event whose ``x``/``y``/``p`` is outside the
    input (each field checked over the whole chunk, in that order), or ``UNSORTED`` and the first
    event whose timestamp decreases. ``y``/``p`` are ignored (taken as 0) unless ``use_y``/``use_p``.
    """
    n = t.shape[0]
    for e in range(n):
        if x[e] < 0 or x[e] >= width:
            return BAD_X, e
    if use_y:
        for e in range(n):
            if y[e] < 0 or y[e] >= height:
                return BAD_Y, e
    if use_p:
        for e in range(n):
            if p[e] < 0 or p[e] >= n_pol:
                return BAD_P, e
    code, where = OK, 0
    for e in range(n):
        ye = np.int64(y[e]) if use_y else np.int64(0)
        pe = np.int64(p[e]) if use_p else np.int64(0)
        out_idx[e] = (pe * height + ye) * width + np.int64(x[e])
        out_t[e] = t[e]
        if code == OK and e > 0 and out_t[e] < out_t[e - 1]:
            code, where = UNSORTED, e
    return code, where


@numba.njit(cache=True, nogil=True)
def bin_steps(pend_t, pend_i, t0_us, dt_us, steps_done, n_steps, ptr, ix, val, keep_t, keep_i):
    """Events per input neuron and step for the next ``n_steps`` steps (CSR over steps).

    An event at ``t`` µs belongs to step ``floor((t - t0) / dt + 1e-9)`` (``Stream``'s binning).
    Writes ``ptr [n_steps + 1]``, ``ix``/``val`` (input index ascending within a step, event count)
    and the events of later steps, in their order, to ``keep_*``. Returns ``(n_entries, n_kept)``.
    """
    n = pend_t.shape[0]
    step = np.empty(n, np.int64)
    counts = np.zeros(n_steps + 1, np.int64)
    n_kept = 0
    for e in range(n):
        s = max(np.int64(np.floor((pend_t[e] - t0_us) / dt_us + 1e-9)) - steps_done, 0)
        step[e] = s
        if s < n_steps:
            counts[s + 1] += 1
        else:
            keep_t[n_kept] = pend_t[e]
            keep_i[n_kept] = pend_i[e]
            n_kept += 1
    for s in range(n_steps):
        counts[s + 1] += counts[s]
    fill = counts[:n_steps].copy()
    order = np.empty(counts[n_steps], np.int64)
    for e in range(n):
        s = step[e]
        if s < n_steps:
            order[fill[s]] = pend_i[e]
            fill[s] += 1
    m = 0
    for s in range(n_steps):
        ptr[s] = m
        seg = np.sort(order[counts[s]:counts[s + 1]])
        for k in range(seg.shape[0]):
            if m > ptr[s] and ix[m - 1] == seg[k]:
                val[m - 1] += 1.0
            else:
                ix[m] = seg[k]
                val[m] = 1.0
                m += 1
    ptr[n_steps] = m
    return m, n_kept
