"""Lesson 04's event-time windows: the stream, bytewax's windowing alone, a plain loop, pandas.

The plain loop (:func:`window_loop`) does what :func:`streamlab.stream.windowed`
does, in the idiomatic way: per key, a watermark (the latest event time seen
for that key minus ``delay``) and the open windows; an event behind its key's
watermark is late (bytewax's rule, even if its window is still open); when
the watermark reaches a window's end the window closes and its answer is
emitted, stamped with the arrival time of the event that moved the watermark;
windows still open at the end of the input close then. Its answer, windows,
late events, watermark advances and rejected events, is checked equal to the
stream's before anything is timed.

pandas (:func:`streamlab.batch.windowed`, building its frame included) answers
the batch question, every event in its window; it is checked with the
course's own :func:`~streamlab.windows.reconcile`: batch = stream + late.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple

import bytewax.operators as op
from bytewax.operators.windowing import fold_window

from streamlab import batch, pipe, stream, take
from streamlab.bench import SEED, Benchmark, Contender, Group, frame_difference
from streamlab.events import Event
from streamlab.stream import run
from streamlab.stream.windows import simulated_clock, windower
from streamlab.summary import rejected_frame
from streamlab.windows import (
    CLOSED_AT_END,
    CLOSED_BY_WATERMARK,
    Sliding,
    Tumbling,
    Windowed,
    check_delay,
    late_frame,
    reconcile,
    reject_reason,
    watermark_frame,
    windows_frame,
)

EVENTS, QUICK_EVENTS = 100_000, 5_000
ONE_AT_A_TIME, QUICK_ONE_AT_A_TIME = 10_000, 1_000
WINDOW = Tumbling(60)
DELAY = 5.0

# A window's running answer in the loop: [count, sum].
Acc = list


class LoopAnswer(NamedTuple):
    """What :func:`window_loop` returns: plain lists, in the rows' order of :class:`~streamlab.windows.Windowed`'s frames."""

    window: Tumbling | Sliding
    delay: timedelta
    windows: list[tuple]
    late_events: list[tuple]
    watermark: list[tuple]
    rejected: list[tuple]
    events_read: int
    ended_at: datetime | None

    def as_windowed(self) -> Windowed:
        """The same answer as the stream gives it, in frames (not part of the loop's timed work)."""
        return Windowed(
            driver="stream", window=self.window, delay=self.delay, fold=None,
            windows=windows_frame(self.windows, None), late_events=late_frame(self.late_events),
            watermark=watermark_frame(self.watermark), rejected=rejected_frame(self.rejected),
            events_read=self.events_read, ended_at=self.ended_at,
        )


def window_loop(events: list[Event], window: Tumbling | Sliding, delay: timedelta | float) -> LoopAnswer:
    """The stream's windowed answer, computed in one plain Python loop over events in arrival order.

    Fixed-length windows only (tumbling and sliding); see the module docstring
    for the rules it follows, which are :func:`streamlab.stream.windowed`'s.
    It returns plain lists, as a hand-written loop would; :meth:`LoopAnswer.as_windowed`
    puts them in the stream's frames.

    >>> from streamlab.events import pipe, take
    >>> events = take(pipe(seed=1, keys=2, disorder=2), 100)
    >>> window_loop(events, Tumbling(5), 1).as_windowed()
    Windowed(stream, Tumbling(length=5s), delay=1s: 6 windows, 8 late events, 0 rejected, 100 events read)
    """
    if not isinstance(window, (Tumbling, Sliding)):
        raise TypeError(f"window_loop handles tumbling and sliding windows, got {window!r}")
    delay = check_delay(delay)
    length, slide, align = window.length, window.slide, window.align_to
    tumbling = length == slide
    watermarks: dict[str, datetime] = {}
    open_windows: dict[str, dict[datetime, Acc]] = {}
    # Per key, the earliest end of its open windows: most events close nothing, and this says so at once.
    next_close: dict[str, datetime] = {}
    closed: list[tuple] = []
    late: list[tuple] = []
    advances: list[tuple] = []
    rejected: list[tuple] = []
    arrived = None
    for e in events:
        arrived = e.arrival_time
        reason = reject_reason(e)
        if reason is not None:
            rejected.append((e.key, e.value, e.event_time, arrived, reason))
            continue
        key, t = e.key, e.event_time
        mark = watermarks.get(key)
        if mark is not None and t < mark:
            late.append((key, e.value, t, arrived, mark))
            continue
        windows = open_windows.get(key)
        if windows is None:
            windows = open_windows[key] = {}
        if tumbling:
            starts = (align + (t - align) // length * length,)
        else:
            starts = window.starts_for(t)
        for start in starts:
            acc = windows.get(start)
            if acc is None:
                windows[start] = [1, e.value]
                end = start + length
                if key not in next_close or end < next_close[key]:
                    next_close[key] = end
            else:
                acc[0] += 1
                acc[1] += e.value
        new_mark = t - delay
        if mark is None or new_mark > mark:
            watermarks[key] = new_mark
            advances.append((key, arrived, new_mark))
            if new_mark >= next_close[key]:
                # The watermark passed the end of one or more windows: their answers are final now.
                for start in sorted(s for s in windows if s + length <= new_mark):
                    count, total = windows.pop(start)
                    closed.append((key, start, start + length, count, total, None, arrived, CLOSED_BY_WATERMARK))
                next_close[key] = min((s + length for s in windows), default=datetime.max.replace(tzinfo=align.tzinfo))
    for key, windows in open_windows.items():
        for start, (count, total) in windows.items():
            closed.append((key, start, start + length, count, total, None, arrived, CLOSED_AT_END))
    return LoopAnswer(window, delay, closed, late, advances, rejected, len(events), arrived)


def same_windows(result: Windowed, expected: Windowed) -> str | None:
    """How the stream's windowed answer differs from the plain loop's, if it does."""
    if result.events_read != expected.events_read:
        return f"read {result.events_read:,} events, the plain loop {expected.events_read:,}"
    # Floating-point sums may differ in the last bits: bytewax adds a window's events in its own order.
    return (
        frame_difference(expected.windows, result.windows, "the windows", check_exact=False)
        or frame_difference(expected.late_events, result.late_events, "the late events")
        or frame_difference(expected.watermark, result.watermark, "the watermark advances")
        or frame_difference(expected.rejected, result.rejected, "the rejected events")
    )


def same_batch_answer(result: Windowed, expected: Windowed) -> str | None:
    """Whether pandas' answer is the loop's plus its late events, window by window, with the same late events."""
    outcome = reconcile(result, expected)
    return None if outcome.ok else outcome.message()


def bare_fold_window(events: list[Event]) -> Any:
    """Only bytewax's windowing, over the same events: key, fold count and sum per window, nothing else."""
    clock = simulated_clock(DELAY)

    def flow(events_in):
        numbered = op.map("number", events_in, lambda e: (e.key, (0, e)))
        good = op.filter_value("drop_rejected", numbered, lambda item: reject_reason(item[1]) is None)
        out = fold_window(
            "window", good, clock, windower(WINDOW),
            lambda: (0, 0.0), lambda acc, item: (acc[0] + 1, acc[1] + item[1].value),
            lambda a, b: (a[0] + b[0], a[1] + b[1]),
        )
        return {"windows": out.down, "late": out.late}

    return run(flow, events)


def same_counts(result: Any, expected: Windowed) -> str | None:
    """Whether bytewax's bare windowing counted the loop's windows and late events (it answers nothing else)."""
    counts = sorted((key, WINDOW.align_to + WINDOW.length * wid, count) for key, (wid, (count, _)) in result["windows"])
    want = sorted(zip(expected.windows["key"], (t.to_pydatetime() for t in expected.windows["window_start"]),
                      expected.windows["count"].tolist()))
    if counts != want:
        return "the windows' counts differ"
    if len(result["late"]) != expected.n_late:
        return f"{len(result['late']):,} late events, the plain loop {expected.n_late:,}"
    return None


def benchmark(quick: bool = False) -> Benchmark:
    """The windows benchmark over seeded, disordered events (a small input with ``quick``)."""
    n = QUICK_EVENTS if quick else EVENTS
    few = QUICK_ONE_AT_A_TIME if quick else ONE_AT_A_TIME
    # Long-tail delays up to a minute, a 5 s watermark: many late events, as in lesson 04.
    events = take(pipe(seed=SEED, disorder=60, delays="long_tail", missing=0.001), n)

    def loop(data: list[Event]) -> LoopAnswer:
        return window_loop(data, WINDOW, DELAY)

    def answer(result: LoopAnswer) -> Windowed:
        return result.as_windowed()

    reference = Contender("plain Python loop (per key: watermark, open windows)", loop, lambda r, e: None)
    windowed = Contender("**stream** (`stream.windowed`, batch_size=1000)",
                         lambda data: stream.windowed(data, WINDOW, delay=DELAY), same_windows)
    main = Group(
        f"{n:,} events, {WINDOW!r}, delay {DELAY:g} s", events, n, reference,
        (
            windowed,
            Contender("bytewax `fold_window` alone (count and sum per window, nothing else)",
                      bare_fold_window, same_counts),
            Contender("**pandas**, end to end (`batch.windowed`: every event in its window)",
                      lambda data: batch.windowed(data, WINDOW, delay=DELAY), same_batch_answer),
        ),
        answer=answer,
    )
    first = events[:few]
    one_at_a_time = Group(
        f"Events one at a time, over the first {few:,} events", first, few, reference,
        (Contender("stream, batch_size=1", lambda data: stream.windowed(data, WINDOW, delay=DELAY, batch_size=1),
                   same_windows),),
        answer=answer,
    )
    late = len(window_loop(events, WINDOW, DELAY).late_events)
    return Benchmark(
        "windows", "Lesson 04: per key, one-minute tumbling windows, count, sum and mean", "events",
        [main, one_at_a_time],
        notes=[f"{late:,} of the {n:,} events are late for the stream (a 5 s watermark delay; "
               "delays up to a minute)."],
    )
