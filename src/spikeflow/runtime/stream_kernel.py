"""numba helpers of ``Stream``'s per-chunk path: one call validates and indexes a chunk; on the
event engine one more call (``feed_chunk``) counts its events into the open step's input and runs
the steps they close, with no per-event or per-step Python. ``bin_steps`` bins pending events into
per-step input for the other stepped engine (and the reference route the fast one is tested against)."""

from __future__ import annotations

import numba
import numpy as np

from spikeflow.runtime.event_kernel import run_steps

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


@numba.njit(cache=True, nogil=True)
def _open_step_input(cnt, touched, n_touched, ix, val):
    """The open step's input as ``bin_steps`` writes it (input index ascending, event count); clears it."""
    n_in = cnt.shape[0]
    if n_touched * 16 < n_in:  # few inputs: sort the touched list
        seg = np.sort(touched[:n_touched])
        for k in range(n_touched):
            i = seg[k]
            ix[k] = i
            val[k] = cnt[i]
            cnt[i] = 0.0
    else:  # many: one pass over the counts is cheaper than a sort
        k = 0
        for i in range(n_in):
            if cnt[i] != 0.0:
                ix[k] = i
                val[k] = cnt[i]
                cnt[i] = 0.0
                k += 1
    return n_touched


@numba.njit(cache=True, nogil=True)
def feed_chunk(t, idx, n, t0_us, dt_us, steps, upto, cnt, touched, n_touched, ptr, ix, val,
               out, spike_value, out_off, spiking, head, trace, rec_t, rec_g, rec_n, tail):
    """Stream's event-engine path for one chunk: count each event into its step's input and run every
    step that closes (an event of a later step arrived, or the step ends before ``upto``).

    ``t``/``idx`` are the chunk's sorted timestamps and flat input indices, none before step ``steps``
    (the open step, whose counts so far are ``cnt``, with the ``n_touched[0]`` inputs in ``touched``).
    Steps are run by ``event_kernel.run_steps`` (``head``/``tail``: the engine's arguments around the
    trace and record buffers) with the same input as ``bin_steps`` gives, so the same state and outputs.
    Writes the output of the ``upto - steps`` steps run to ``trace`` rows (traced output) or, for a
    spiking output (``spiking``), its spikes times ``spike_value`` to ``out``. Returns the steps run.
    """
    first = steps
    nt = n_touched[0]
    rows = 0
    for e in range(n + 1):
        if e < n:
            s = max(np.int64(np.floor((t[e] - t0_us) / dt_us + 1e-9)), steps)
        else:
            s = upto
        if s > steps:  # close the open step, and the empty ones up to s
            k = s - steps
            m = _open_step_input(cnt, touched, nt, ix, val)
            nt = 0
            ptr[0] = 0
            for j in range(1, k + 1):
                ptr[j] = m
            run_steps(steps, k, ptr, ix, val, *head, trace[rows:rows + k], rec_t, rec_g, rec_n, *tail)
            rows += k
            steps = s
        if e < n:
            i = idx[e]
            if cnt[i] == 0.0:
                touched[nt] = i
                nt += 1
            cnt[i] += 1.0
    n_touched[0] = nt
    if spiking and rows > 0:
        zero, one = 0.0 * spike_value, 1.0 * spike_value
        size = out.shape[1]
        for r in range(rows):
            for j in range(size):
                out[r, j] = zero
        for q in range(rec_n[0]):
            g = rec_g[q] - out_off
            if 0 <= g < size:
                out[rec_t[q] - first, g] = one
        rec_n[0] = 0
    return rows


EARLY, COUNTED = 5, 6


@numba.njit(cache=True, nogil=True)
def index_records(ev, width, height, n_pol, use_y, use_p, floor_us, t0_us, dt_us, steps, out_t, out_idx,
                  cnt, touched, n_touched):
    """``index_events`` on a structured chunk with integer fields ``x, y, t, p`` read in place (no field
    copies), for ``Stream``'s event-engine path. Returns ``OK`` (``out_t``/``out_idx`` written) or, with
    nothing written, a code for the caller's general route: ``BAD_X`` (any coordinate outside the input),
    ``UNSORTED``, ``EARLY`` (the first event is before ``floor_us``). ``COUNTED``: every event falls into
    the open step ``steps``, and was counted into ``cnt`` (``touched``, ``n_touched``) already.
    """
    n = ev.shape[0]
    for e in range(n):
        r = ev[e]
        if r["x"] < 0 or r["x"] >= width:
            return BAD_X
        if use_y and (r["y"] < 0 or r["y"] >= height):
            return BAD_X
        if use_p and (r["p"] < 0 or r["p"] >= n_pol):
            return BAD_X
        if e > 0 and np.int64(r["t"]) < np.int64(ev[e - 1]["t"]):
            return UNSORTED
    if n == 0:
        return OK
    if np.int64(ev[0]["t"]) < floor_us:
        return EARLY
    for e in range(n):
        r = ev[e]
        ye = np.int64(r["y"]) if use_y else np.int64(0)
        pe = np.int64(r["p"]) if use_p else np.int64(0)
        out_idx[e] = (pe * height + ye) * width + np.int64(r["x"])
        out_t[e] = np.int64(r["t"])
    if np.int64(np.floor((out_t[n - 1] - t0_us) / dt_us + 1e-9)) > steps:
        return OK
    nt = n_touched[0]
    for e in range(n):
        i = out_idx[e]
        if cnt[i] == 0.0:
            touched[nt] = i
            nt += 1
        cnt[i] += 1.0
    n_touched[0] = nt
    return COUNTED
