"""Lesson 04's panes: the windowed stream against an idiomatic plain loop with the same semantics, and pandas.

The semantics timed are the lesson's standard choice: one-minute tumbling
windows, one watermark for the input that waits 5 s and follows the clock, the
standard lateness rule, no allowed lateness, one ON_TIME pane per window.

* :func:`idiomatic_loop` is what a developer would write for exactly that, and
  nothing more: per key a dict of open windows, one watermark, a heap of window
  ends. A window closes at the moment the watermark reaches its end (between
  two arrivals when the clock moves it there), an event whose window has closed
  is dropped, and what is open when the input ends comes out then.
* ``panes.loop`` is the course's engine (:mod:`streamlab.panes`, which also does
  triggers, modes, allowed lateness and sessions) in a plain loop;
  ``stream.panes`` is the same engine in one bytewax ``stateful_batch`` step.
  Their panes and dropped events are checked equal to the idiomatic loop's
  before anything is timed.
* pandas (``batch.panes``, building its frame included) answers the batch
  question; it is checked with :func:`streamlab.panes.reconcile`: batch = stream + dropped.
"""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from streamlab import batch, pipe, stream, take
from streamlab.bench import SEED, Benchmark, Contender, Group
from streamlab.events import Event
from streamlab.panes import Delay, Panes, loop, reconcile
from streamlab.windows import EPOCH, Tumbling, reject_reason

EVENTS, QUICK_EVENTS = 200_000, 5_000
ONE_AT_A_TIME, QUICK_ONE_AT_A_TIME = 20_000, 1_000
LENGTH = timedelta(minutes=1)
DELAY = timedelta(seconds=5)
WINDOW = Tumbling(LENGTH)
SETTINGS = dict(watermark=Delay(DELAY))


class LoopAnswer(NamedTuple):
    """What :func:`idiomatic_loop` returns: one row per window's answer, one per dropped event."""

    panes: list[tuple]  # (key, start, end, count, sum, emitted_at, at_end), in the order they came out
    dropped: list[tuple]  # (key, value, event_time, arrival_time)


def idiomatic_loop(events: list[Event], length: timedelta = LENGTH, delay: timedelta = DELAY) -> LoopAnswer:
    """Tumbling windows with one watermark that follows the clock, the standard rule, no allowed lateness."""
    windows: dict[str, dict[datetime, list]] = {}  # key -> window start -> [count, sum]
    ends: list[tuple[datetime, str, datetime]] = []  # heap of (end, key, start) of open windows
    mark = since = None  # the watermark when it last jumped, and when
    panes: list[tuple] = []
    dropped: list[tuple] = []
    last = None
    start = end = datetime.max.replace(tzinfo=timezone.utc)  # the window of the last event
    for e in events:
        last = e.arrival_time
        if reject_reason(e) is not None:
            continue
        now = e.arrival_time
        if mark is not None:
            watermark = mark + (now - since)
            while ends and ends[0][0] <= watermark:
                closed_end, key, closed = heapq.heappop(ends)
                count, total = windows[key].pop(closed)
                # It closed when the clock brought the watermark to its end.
                panes.append((key, closed, closed_end, count, total, since + (closed_end - mark), False))
        else:
            watermark = None
        t = e.event_time
        if not start <= t < end:  # the same trick as the engine's: most events fall in the last one's window
            start = EPOCH + (t - EPOCH) // length * length  # windows aligned to the epoch
            end = start + length
        if watermark is not None and end <= watermark:
            dropped.append((e.key, e.value, e.event_time, e.arrival_time))
        else:
            per_key = windows.setdefault(e.key, {})
            acc = per_key.get(start)
            if acc is None:
                per_key[start] = [1, e.value]
                heapq.heappush(ends, (end, e.key, start))
            else:
                acc[0] += 1
                acc[1] += e.value
        if watermark is None or e.event_time - delay > watermark:
            mark, since = e.event_time - delay, now
            while ends and ends[0][0] <= mark:  # the jump closes windows now
                closed_end, key, closed = heapq.heappop(ends)
                count, total = windows[key].pop(closed)
                panes.append((key, closed, closed_end, count, total, now, False))
    for key, start in sorted((key, start) for key, per_key in windows.items() for start in per_key):
        count, total = windows[key][start]
        panes.append((key, start, start + length, count, total, last, True))
    return LoopAnswer(panes, dropped)


def same_panes(result: Panes, expected: LoopAnswer) -> str | None:
    """How the engine's panes differ from the idiomatic loop's, if they do."""
    p = result.panes
    got = list(zip(p["key"], p["window_start"], p["window_end"], p["count"], p["sum"], p["emitted_at"], p["at_end"]))
    got = [(k, s.to_pydatetime(), e.to_pydatetime(), int(c), float(t), at.to_pydatetime(), bool(end))
           for k, s, e, c, t, at, end in got]
    want = list(expected.panes)
    # Windows that close at the same moment may come out in either order.
    got.sort(key=lambda row: (row[5], row[0], row[1]))
    want.sort(key=lambda row: (row[5], row[0], row[1]))
    if len(got) != len(want):
        return f"{len(got):,} panes, the plain loop {len(want):,}"
    for i, (a, b) in enumerate(zip(got, want)):
        if a[:3] != b[:3] or a[3] != b[3] or abs(a[4] - b[4]) > 1e-9 * max(1.0, abs(b[4])) or a[5:] != b[5:]:
            return f"pane {i}: {a} against the plain loop's {b}"
    d = result.dropped
    dropped = sorted(zip(d["key"], d["event_time"].dt.to_pydatetime(), d["arrival_time"].dt.to_pydatetime()))
    if dropped != sorted((k, et, at) for k, _, et, at in expected.dropped):
        return f"{len(dropped):,} events dropped, the plain loop {len(expected.dropped):,}"
    return None


def benchmark(quick: bool = False) -> Benchmark:
    """The panes benchmark over seeded, disordered events (a small input with ``quick``)."""
    n = QUICK_EVENTS if quick else EVENTS
    few = QUICK_ONE_AT_A_TIME if quick else ONE_AT_A_TIME
    events: list[Event] = take(pipe(seed=SEED, keys=10, disorder=20, delays="long_tail", missing=0.001), n)
    first = events[:few]
    reference = Contender("idiomatic plain loop (`idiomatic_loop`: a dict of windows, a heap of ends)",
                          idiomatic_loop, lambda r, e: None)
    streamed = stream.panes(events, WINDOW, **SETTINGS)

    def batch_check(result: Panes, _expected: Any) -> str | None:
        accounts = reconcile(result, streamed)
        bad = accounts[~accounts["agree"]]
        return None if bad.empty else f"batch != stream + dropped in {len(bad)} windows"

    main = Group(
        f"{n:,} events, 10 keys, one-minute windows, watermark 5 s behind", events, n, reference,
        (
            Contender("the course's engine in a plain loop (`panes.loop`)",
                      lambda data: loop(data, WINDOW, **SETTINGS), same_panes),
            Contender("**stream** (`stream.panes`: the engine in bytewax, batch_size=1000)",
                      lambda data: stream.panes(data, WINDOW, **SETTINGS), same_panes),
            Contender("**pandas**, end to end (`batch.panes`, building the frame included)",
                      lambda data: batch.panes(data, WINDOW), batch_check),
        ),
    )
    one_at_a_time = Group(
        f"Events one at a time, over the first {few:,} events", first, few, reference,
        (Contender("stream, batch_size=1", lambda data: stream.panes(data, WINDOW, batch_size=1, **SETTINGS),
                   same_panes),),
    )
    return Benchmark(
        "panes", "Lesson 04: panes (windows by the standard rule, watermark following the clock)", "events",
        [main, one_at_a_time],
        notes=["The engine does more than the idiomatic loop needs here (triggers, modes, allowed lateness, "
               "sessions, per-key watermarks are all checked per event), and the stream adds bytewax's cost per "
               "batch on top of the engine."],
    )
