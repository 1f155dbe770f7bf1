"""Anytime inference on event streams: ``Stream.push(events) -> Prediction``.

The stream owns one engine's state for one recording. Events are ``(x, y, t µs, p)``
(a structured array or anything with such an ``.array``, e.g. ``spikeflow.data.Events``);
event ``(x, y, p)`` feeds input neuron ``p*H*W + y*W + x`` of a ``(P, H, W)`` input
(``x`` of an ``(N,)`` input). Stepped engines (``event``, ``dense``) bin events into steps of
``dt`` from ``t0_us`` (counts per step, as datasets bin them); a step is run once an event
at or after its end arrived, or ``advance_to`` says that time has passed. The clock-free
engine takes each event at its own µs timestamp.

Bad streams (documented behaviour, never a silent wrong answer):
- timestamps out of order inside a chunk are sorted (``on_unsorted="sort"``, the default)
  or rejected (``"error"``); an event earlier than time already processed is an ``InputError``;
- coordinates or polarity outside the input (sensor) raise ``InputError`` naming the field;
- NaN or inf timestamps/coordinates raise ``InputError``;
- an empty chunk is valid (nothing happened): the prediction is returned unchanged.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional, Union

import numpy as np

from spikeflow.errors import ConfigError, InputError
from spikeflow.runtime.graph import compile_graph
from spikeflow.runtime.stream_kernel import (
    BAD_P,
    BAD_X,
    BAD_Y,
    COUNTED,
    OK,
    UNSORTED,
    bin_steps,
    feed_chunk,
    index_events,
    index_records,
)

DECODERS = ("count", "max", "mean", "last")
_EMPTY = np.zeros(0, dtype=[("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)])


@dataclass
class Prediction:
    """A stream's current answer: ``label``, class ``probabilities`` (softmax), ``confidence`` (the top
    probability), the stream time ``t_us`` (µs) it accounts for, events seen, and whether it is decided.
    """
    label: int
    probabilities: np.ndarray
    confidence: float
    t_us: int  # the stream time up to which the answer accounts
    events_seen: int
    decided: bool  # confidence has reached the threshold (now or earlier)


def load_model(model, dt: Optional[float] = None):
    """A ``CompiledGraph`` from a NIR file path, a ``nir.NIRGraph`` or a ``CompiledGraph``."""
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        from spikeflow.ir import read_graph

        model = read_graph(model)
    return compile_graph(model, dt)


def make_engine(graph, engine: str, dt: Optional[float] = None):
    from spikeflow.runtime.clockfree import ClockFreeEngine
    from spikeflow.runtime.dense import DenseEngine
    from spikeflow.runtime.event import EventEngine

    engines = {"event": EventEngine, "dense": DenseEngine, "clockfree": ClockFreeEngine}
    if engine not in engines:
        raise ConfigError(f"stream: engine must be one of {sorted(engines)}, got {engine!r}")
    return engines[engine](graph, dt=dt)


class Stream:
    """Feed events as they arrive; get the current answer after each chunk.

    Args:
        model: NIR file path, ``nir.NIRGraph`` or ``CompiledGraph``.
        engine: ``"event"`` (default), ``"dense"`` or ``"clockfree"``.
        decoder: ``"count"`` (output spikes or summed output), ``"max"``, ``"mean"``, ``"last"``
            (of the output over the steps so far), ``"auto"`` (count for spiking outputs, max for
            a membrane readout), or a callable ``history [t, n] -> logits [n]``.
        confidence: the early-exit threshold on the top softmax probability.
        dt: step in seconds (default: the graph's ``dt``).
        t0_us: the stream's time origin (datasets bin from 0).
        temperature: softmax temperature applied to the decoder's logits.
        on_unsorted: ``"sort"`` or ``"error"`` for out-of-order timestamps inside a chunk.
    """

    def __init__(self, model, engine: str = "event", decoder: Union[str, Callable] = "auto",
                 confidence: float = 0.9, dt: Optional[float] = None, t0_us: int = 0, temperature: float = 1.0,
                 on_unsorted: str = "sort"):
        self.graph = load_model(model, dt)
        self.dt = self.graph.require_dt()
        self.dt_us = self.dt * 1e6
        if not 0.0 < confidence <= 1.0:
            raise ConfigError(f"stream: confidence must be in (0, 1], got {confidence}")
        if on_unsorted not in ("sort", "error"):
            raise ConfigError(f"stream: on_unsorted must be 'sort' or 'error', got {on_unsorted!r}")
        if not temperature > 0:
            raise ConfigError(f"stream: temperature must be > 0, got {temperature}")
        self.engine_name = engine
        self.engine = make_engine(self.graph, engine, self.dt)
        # the event engine's chunk path (``_EventFeed``); False: the reference route (bin pending events
        # per step, then ``advance_output``), which gives the same answers and is kept to test against
        self._fast = engine == "event"
        self._feed = None
        self.threshold = float(confidence)
        self.temperature = float(temperature)
        self.on_unsorted = on_unsorted
        self.t0_us = int(t0_us)
        out = self.graph.outputs[0]
        self.output_name = out
        self.n_out = self.graph.nodes[out].size
        src = (self.graph.nodes[out].inputs or [None])[0]
        spiking_out = src is not None and self.graph.nodes[src].spiking
        if decoder == "auto":
            decoder = "count" if spiking_out else "max"
        if not callable(decoder) and decoder not in DECODERS:
            raise ConfigError(f"stream: decoder must be one of {DECODERS + ('auto',)} or a callable, got {decoder!r}")
        self.decoder = decoder
        shape = self.graph.input_shape
        if len(shape) == 3:
            self.n_pol, self.height, self.width = shape
        elif len(shape) == 2:
            self.n_pol, (self.height, self.width) = 1, shape
        elif len(shape) == 1:
            self.n_pol, self.height, self.width = 1, 1, shape[0]
        else:
            raise ConfigError(f"stream: cannot map events onto an input of shape {shape}")
        self.reset()
        if self._fast:  # compile (or load) the chunk kernels now, not in the first push
            self._feed = _EventFeed(self)
            self._feed.warm_up()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget everything: the next event starts a new recording."""
        if self.engine_name == "clockfree":
            self.engine.reset()
        else:
            self.engine.reset(1)
        self.steps = 0
        self.events_seen = 0
        self.latest_us = self.t0_us
        self._pend_t, self._pend_i = np.zeros(0, np.int64), np.zeros(0, np.int64)  # events of unfinished steps
        if self._feed is not None:
            self._feed.reset()
        self._sum = np.zeros(self.n_out)
        self._max = np.full(self.n_out, -np.inf)
        self._last = np.zeros(self.n_out)
        self._history = []
        self.decision: Optional[Prediction] = None
        self._prediction = None
        self._prediction = self._predict()

    @property
    def decided(self) -> bool:
        """True once the confidence reached the threshold (early exit is allowed)."""
        return self.decision is not None

    @property
    def prediction(self) -> Prediction:
        return self._prediction

    # ------------------------------------------------------------------ input
    def _to_indices(self, chunk, bufs=None):
        """Validated, sorted timestamps and flat input indices of a chunk (into ``bufs`` when given)."""
        arr = getattr(chunk, "array", chunk)
        if isinstance(arr, (list, tuple)) and len(arr) == 0:
            arr = _EMPTY
        arr = np.asarray(arr)
        names = arr.dtype.names
        if names is None or "x" not in names or "t" not in names:
            raise InputError(f"stream: a chunk must be events with fields x, y, t, p (µs); got dtype {arr.dtype}")
        self._check_sensor(chunk)
        t = arr["t"]
        cols = {f: arr[f] for f in ("x", "y", "p") if f in names}
        if t.dtype.kind not in "iu" or any(c.dtype.kind not in "iu" for c in cols.values()):
            t, cols = self._numeric_fields(t, cols)
        n = len(t)
        use_y, use_p = self.height > 1 and "y" in cols, self.n_pol > 1 and "p" in cols
        x = cols["x"]
        y, p = cols.get("y", x), cols.get("p", x)  # ignored unless use_y / use_p
        if bufs is None:
            out_t, idx = np.empty(n, np.int64), np.empty(n, np.int64)
        else:
            out_t, idx = bufs(n)
        code, bad = index_events(t, x, y, p, self.width, self.height, self.n_pol, use_y, use_p, out_t, idx)
        if code in (BAD_X, BAD_Y, BAD_P):
            name, v, hi = {BAD_X: ("x", x, self.width), BAD_Y: ("y", y, self.height), BAD_P: ("p", p, self.n_pol)}[code]
            raise InputError(f"stream: field '{name}' of event {bad} is {int(v[bad])}; valid is 0..{hi - 1} for "
                             f"the model's input (P, H, W) = ({self.n_pol}, {self.height}, {self.width})")
        t = out_t
        if code == UNSORTED:
            if self.on_unsorted == "error":
                raise InputError(f"stream: timestamps decrease at event {bad} ({t[bad - 1]} -> {t[bad]} µs)")
            order = np.argsort(t, kind="stable")
            t, idx = t[order], idx[order]
        if n and t[0] < self._floor_us:
            raise InputError(f"stream: event at t={int(t[0])} µs is earlier than time already processed "
                             f"({self._floor_us} µs); a stream cannot go back in time (reset() for a new recording)")
        return t, idx

    @staticmethod
    def _numeric_fields(t, cols):
        """Non-integer fields (rare): reject NaN/inf and non-numbers; round ``t``, truncate coordinates."""
        for name, col in [("t", t)] + list(cols.items()):
            kind = col.dtype.kind
            if kind == "f" and not np.all(np.isfinite(col)):
                bad = int(np.flatnonzero(~np.isfinite(col))[0])
                raise InputError(f"stream: field '{name}' of event {bad} is {col[bad]} (NaN/inf); timestamps and "
                                 "coordinates must be finite")
            if kind not in "iuf":
                raise InputError(f"stream: field '{name}' must be numeric, got {col.dtype}")
        t = np.rint(t).astype(np.int64) if t.dtype.kind == "f" else t
        return t, {k: c.astype(np.int64) for k, c in cols.items()}

    def _check_sensor(self, events) -> None:
        sensor = getattr(events, "sensor_size", None)
        if sensor is not None and tuple(int(v) for v in sensor) != (self.width, self.height, self.n_pol):
            raise InputError(f"stream: events come from a sensor of size {tuple(sensor)} (W, H, P); the model's "
                             f"input is {self.width}x{self.height} with {self.n_pol} polarities")

    def _processed_until_us(self) -> int:
        if self.engine_name == "clockfree":
            return int(self.latest_us)
        return math.ceil(self.t0_us + self.steps * self.dt_us - 1e-6)

    @property
    def _floor_us(self) -> int:
        return self._processed_until_us()

    def push(self, chunk) -> Prediction:
        """Add a chunk of events; returns the answer from all complete steps so far."""
        if self._fast:
            return self._push_event(chunk)
        t, idx = self._to_indices(chunk)
        if len(t) == 0:
            return self._prediction
        self.events_seen += len(t)
        self.latest_us = max(self.latest_us, int(t[-1]))
        if self.engine_name == "clockfree":
            self._clockfree(t, idx, until_us=int(t[-1]))
        else:
            if len(self._pend_t):
                t, idx = np.concatenate([self._pend_t, t]), np.concatenate([self._pend_i, idx])
            self._pend_t, self._pend_i = t, idx
            upto = math.floor((self.latest_us - self.t0_us) / self.dt_us + 1e-9)
            if upto <= self.steps:  # no step completed: the answer is unchanged
                self._prediction = self._with_events(self._prediction)
                return self._prediction
            self._run_steps(upto)
        self._prediction = self._predict()
        return self._prediction

    def _push_event(self, chunk) -> Prediction:
        """``push`` on the event engine: a structured chunk with integer fields is checked and indexed in
        place by one numba call, which also counts it into the open step when it closes none; any other
        chunk, or one that must be sorted or rejected, takes ``_to_indices``. Steps are run by ``_EventFeed``."""
        f = self._feed
        if f is None:
            f = self._feed = _EventFeed(self)
        arr = getattr(chunk, "array", chunk)
        code = -1
        if type(arr) is np.ndarray and arr.ndim == 1 and f.records(arr.dtype):
            self._check_sensor(chunk)
            n = arr.shape[0]
            if n == 0:
                return self._prediction
            t, idx = f.buffers(n)
            code = index_records(arr, self.width, self.height, self.n_pol, self.height > 1, self.n_pol > 1,
                                 self._floor_us, self.t0_us, self.dt_us, self.steps, t, idx, f.cnt, f.touched,
                                 f.n_touched)
        if code != OK and code != COUNTED:
            t, idx = self._to_indices(chunk, f.buffers)
            n = len(t)
            if n == 0:
                return self._prediction
        self.events_seen += n
        last = int(t[n - 1])
        if last > self.latest_us:
            self.latest_us = last
        if code != COUNTED:
            upto = math.floor((self.latest_us - self.t0_us) / self.dt_us + 1e-9)
            y = f(t, idx, upto)
            if y is not None:
                self._accumulate(y)
                self.steps = upto
                self._prediction = self._predict()
                return self._prediction
        self._prediction = self._with_events(self._prediction)  # no step completed: the answer is unchanged
        return self._prediction

    def _with_events(self, pred: Prediction) -> Prediction:
        if pred.events_seen == self.events_seen:
            return pred
        return Prediction(pred.label, pred.probabilities, pred.confidence, pred.t_us, self.events_seen, pred.decided)

    def advance_to(self, t_us: int) -> Prediction:
        """Declare that time ``t_us`` has passed (no more events before it); run the steps it completes."""
        t_us = int(t_us)
        if t_us < self.latest_us:
            t_us = self.latest_us
        self.latest_us = t_us
        if self.engine_name == "clockfree":
            self._clockfree(np.zeros(0, np.int64), np.zeros(0, np.int64), until_us=t_us)
        elif self._fast:
            if self._feed is None:
                self._feed = _EventFeed(self)
            upto = math.floor((t_us - self.t0_us) / self.dt_us + 1e-9)
            y = self._feed(*self._feed.buffers(0), upto) if upto > self.steps else None
            if y is not None:
                self._accumulate(y)
                self.steps = upto
        else:
            self._run_steps(math.floor((t_us - self.t0_us) / self.dt_us + 1e-9))
        self._prediction = self._predict()
        return self._prediction

    # ------------------------------------------------------------------ engines
    def _run_steps(self, upto: int) -> None:
        n = upto - self.steps
        if n <= 0:
            return
        pt, pi = self._pend_t, self._pend_i
        m = len(pt)
        ptr = np.empty(n + 1, np.int64)
        ix, val = np.empty(m, np.int64), np.empty(m)
        keep_t, keep_i = np.empty(m, np.int64), np.empty(m, np.int64)
        n_ix, n_kept = bin_steps(pt, pi, self.t0_us, self.dt_us, self.steps, n, ptr, ix, val, keep_t, keep_i)
        self._pend_t, self._pend_i = keep_t[:n_kept], keep_i[:n_kept]
        if self.engine_name == "event":
            y = self.engine.advance_output(n, ptr, ix[:n_ix], val[:n_ix], self.output_name)
        else:
            x = np.zeros((n, 1, self.n_pol * self.height * self.width))
            st = np.repeat(np.arange(n), np.diff(ptr))
            x[st, 0, ix[:n_ix]] = val[:n_ix]
            y = self.engine.advance(x).outputs[self.output_name]
        self._accumulate(y.reshape(n, self.n_out))
        self.steps = upto

    def _clockfree(self, t_us, idx, until_us: int) -> None:
        first = self.steps + 1
        last = math.floor((until_us - self.t0_us) / self.dt_us + 1e-9)
        samples = (self.t0_us + np.arange(first, last + 1) * self.dt_us) * 1e-6
        out = self.engine.advance(t_us * 1e-6, idx, until=until_us * 1e-6, sample_times=samples)
        vals = out[self.output_name]
        if len(vals):
            if self._spiking_output():
                vals = np.diff(np.vstack([self._sum[None], vals]), axis=0)  # counts per step
            self._accumulate(vals)
        self.steps = max(self.steps, last)

    def _spiking_output(self) -> bool:
        src = (self.graph.nodes[self.output_name].inputs or [None])[0]
        return src is not None and self.graph.nodes[src].spiking

    def _accumulate(self, y: np.ndarray) -> None:
        if len(y) == 0:
            return
        if len(y) == 1:  # one step (the sum and max over one row are that row, exactly)
            self._sum += y[0]
            np.maximum(self._max, y[0], out=self._max)
        else:
            self._sum += y.sum(0)
            self._max = np.maximum(self._max, y.max(0))
        self._last = y[-1].copy()
        if callable(self.decoder):
            self._history.append(y)

    # ------------------------------------------------------------------ answer
    def _predict(self) -> Prediction:
        last = getattr(self, "_prediction", None)
        if last is not None and last.t_us == int(round(self.t0_us + self.steps * self.dt_us)) and self.steps:
            return self._with_events(last)  # no new step: same answer
        d = self.decoder
        if self.steps == 0:
            logits = np.zeros(self.n_out)
        elif callable(d):
            logits = np.asarray(d(np.concatenate(self._history)), dtype=np.float64).reshape(-1)
        elif d == "max":
            logits = self._max
        elif d == "count":
            logits = self._sum
        elif d == "mean":
            logits = self._sum / max(self.steps, 1)
        else:
            logits = self._last
        z = logits / self.temperature if self.temperature != 1.0 else logits
        z = np.exp(z - z.max())
        probs = z / z.sum()
        label = int(probs.argmax())
        conf = float(probs[label])
        t_us = int(round(self.t0_us + self.steps * self.dt_us))
        decided = self.decision is not None or conf >= self.threshold
        pred = Prediction(label, probs, conf, t_us, self.events_seen, decided)
        if self.decision is None and conf >= self.threshold and self.steps > 0:
            self.decision = pred
        return pred

    # ------------------------------------------------------------------ sources
    def run(self, source, chunk_us: int = 10_000, realtime: bool = False, speed: float = 1.0,
            stop_on_decision: bool = False, latencies: Optional[list] = None) -> Iterator[Prediction]:
        """Push every chunk of ``source`` and yield each prediction.

        ``source``: one recording (events with ``.array``/a structured array, cut into
        ``chunk_us`` windows) or an iterable of chunks (e.g. a generator reading a sensor).
        ``realtime`` paces the chunks by their timestamps (``speed`` > 1 plays faster).
        ``latencies``: a list that receives the wall time (s) of each chunk's ``push``.
        """
        self._check_sensor(source)
        start = time.monotonic()
        for chunk in _chunks(source, chunk_us, self.t0_us, self.on_unsorted):
            if realtime:
                t = getattr(chunk, "array", chunk)
                if len(t):
                    due = (int(np.asarray(t["t"]).max()) - self.t0_us) * 1e-6 / speed
                    wait = due - (time.monotonic() - start)
                    if wait > 0:
                        time.sleep(wait)
            if latencies is None:
                pred = self.push(chunk)
            else:
                tic = time.perf_counter()
                pred = self.push(chunk)
                latencies.append(time.perf_counter() - tic)
            yield pred
            if stop_on_decision and self.decided:
                return


class _EventFeed:
    """``Stream``'s state on the event engine: the open step's input counts (dense, per input neuron)
    and reusable buffers; one ``feed_chunk`` call per chunk counts its events and runs the steps they
    close. The steps get the input ``bin_steps`` gives the reference route, so answers are identical."""

    def __init__(self, stream: Stream):
        self.stream = stream
        eng = stream.engine
        pl = eng.plan
        n_in = int(pl.pop_i[pl.input_pop, 1])
        p = pl.output_pop[stream.output_name]
        self.out_off, self.size, self.col = int(pl.pop_i[p, 0]), int(pl.pop_i[p, 1]), int(pl.pop_i[p, 4])
        self.pop_i, self.n_rec = eng._record_table(False)
        self.spiking = self.col < 0
        self.n_trace = max(pl.n_trace, 1)
        self.cnt, self.touched = np.zeros(n_in), np.zeros(n_in, np.int64)
        self.ix, self.val = np.zeros(n_in, np.int64), np.zeros(n_in)
        self.n_touched = np.zeros(1, np.int64)
        self._t, self._i = np.zeros(1024, np.int64), np.zeros(1024, np.int64)
        self._grow(16)
        self.epoch = -1
        self._kernel = feed_chunk
        self._dtype, self._dtype_ok = None, False

    def records(self, dtype) -> bool:
        """Whether chunks of this dtype take ``index_records`` (native integer fields x, y, t, p)."""
        if dtype is not self._dtype:
            fields = dtype.fields or {}
            self._dtype = dtype
            self._dtype_ok = not dtype.hasobject and all(
                f in fields and fields[f][0].kind in "iu" and fields[f][0].shape == () and fields[f][0].isnative
                for f in "xytp")
        return self._dtype_ok

    def _grow(self, steps: int) -> None:
        self.cap = steps
        self.ptr = np.zeros(steps + 1, np.int64)
        self.trace = np.zeros((steps, self.n_trace))
        self.out = np.zeros((steps, self.size))
        rec = max(16, steps * self.n_rec) if self.spiking else 16
        self.rec_t, self.rec_g, self.rec_n = np.zeros(rec, np.int64), np.zeros(rec, np.int64), np.zeros(1, np.int64)

    def buffers(self, n: int):
        if n > len(self._t):
            self._t, self._i = np.empty(2 * n, np.int64), np.empty(2 * n, np.int64)
        return self._t[:n], self._i[:n]

    def reset(self) -> None:
        self.cnt[:] = 0.0
        self.n_touched[0] = 0

    def _bind(self) -> None:
        e, pl = self.stream.engine, self.stream.engine.plan
        self.head = (e.spike_value, self.pop_i, pl.prm, pl.proj_i, pl.pop_proj_ptr, pl.stage_i, pl.indptr,
                     pl.indices, pl.data, pl.weights, e.v, e.isyn, e.last, e.active, e.act_list, e.act_n,
                     e.cur_idx, e.cur_val, e.cur_lag, e.cur_n, e.prev_idx, e.prev_val, e.prev_lag, e.prev_n,
                     e.inp, e.inp_lag, e.markn, e.touch, e.buf, e.markb, e.tbuf, e.a_idx, e.a_val, e.b_idx, e.b_val)
        self.tail = (e.counters, bool(pl.has_delay), e.reset_timing == "crossing")
        self.epoch = e.epoch
        if self._kernel is feed_chunk and hasattr(feed_chunk, "compile"):
            # numba's compiled function for these types (the same after a reset): no type dispatch per chunk
            import numba

            t, i = self.buffers(0)
            args = (t, i, 0, self.stream.t0_us, float(self.stream.dt_us), 0, 0, self.cnt, self.touched,
                    self.n_touched, self.ptr, self.ix, self.val, self.out, float(e.spike_value), self.out_off,
                    self.spiking, self.head, self.trace, self.rec_t, self.rec_g, self.rec_n, self.tail)
            self._kernel = feed_chunk.compile(tuple(numba.typeof(a) for a in args))

    def warm_up(self) -> None:
        """Compile or load the kernels: the chunk kernel, and ``index_records`` for ``Events`` chunks."""
        self._bind()
        s, t, i = self.stream, *self.buffers(0)
        index_records(_EMPTY, s.width, s.height, s.n_pol, s.height > 1, s.n_pol > 1, 0, s.t0_us, float(s.dt_us), 0,
                      t, i, self.cnt, self.touched, self.n_touched)
        self.records(_EMPTY.dtype)

    def __call__(self, t, idx, upto: int):
        """Feed sorted ``t``/``idx``; the ``[steps run, n_out]`` output of the steps closed, or None."""
        s, e = self.stream, self.stream.engine
        if self.epoch != e.epoch:
            self._bind()
        k = upto - s.steps
        if k > self.cap:
            self._grow(max(k, 2 * self.cap))
        rows = self._kernel(t, idx, len(t), s.t0_us, s.dt_us, s.steps, upto, self.cnt, self.touched,
                            self.n_touched, self.ptr, self.ix, self.val, self.out, float(e.spike_value), self.out_off,
                            self.spiking, self.head, self.trace, self.rec_t, self.rec_g, self.rec_n, self.tail)
        if rows == 0:
            return None
        e.t += rows
        if self.spiking:
            return self.out[:rows].copy()
        return self.trace[:rows, self.col:self.col + self.size].copy()


def _chunks(source, chunk_us: int, t0_us: int, on_unsorted: str) -> Iterable:
    arr = getattr(source, "array", source)
    if isinstance(arr, np.ndarray) and arr.dtype.names is not None:
        t = arr["t"]
        if len(t) == 0:
            return
        if np.any(np.diff(t) < 0):
            if on_unsorted == "error":
                raise InputError("stream: the recording's timestamps are not sorted (on_unsorted='sort' sorts them)")
            arr = arr[np.argsort(t, kind="stable")]
            t = arr["t"]
        edges = np.arange(t0_us + chunk_us, int(t.max()) + chunk_us + 1, chunk_us)
        cuts = np.searchsorted(t, edges, "left")
        lo = 0
        for hi in cuts:
            yield arr[lo:hi]
            lo = hi
        return
    yield from source
