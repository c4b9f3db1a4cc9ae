"""Event-time windows over a pipe, with bytewax's own windowing operators and a simulated clock.

The dataflow (:func:`windows_flow`):

1. ``check``: number each event in arrival order and route aside those that
   cannot be counted (:func:`streamlab.windows.reject_reason`);
2. ``window``: bytewax's ``fold_window`` with its ``TumblingWindower``,
   ``SlidingWindower`` or ``SessionWindower`` and an ``EventClock`` that reads
   each event's ``event_time`` and waits ``delay`` for stragglers;
3. ``watermark``: the same ``EventClock``, built once per key as the window
   operator builds it, fed the same events, reporting each advance of the
   watermark with the arrival time of the event that caused it.

**The clock is simulated.** bytewax's default ``EventClock`` adds the wall-clock
time elapsed since the latest event to the watermark, so a slow laptop would
make more events late than a fast one. Here the clock's "system time" is
frozen (``now_getter`` returns a constant and ``to_system_utc`` asks never to be
woken by the wall clock), so each key's watermark is exactly its latest event
time minus ``delay``, and windows close only when an event pushes the watermark
past them, or at the end of the input. Nothing depends on the wall clock.

**When an answer is known.** The window operator emits a window's answer when
the watermark passes the window's end. The arrival time of the event that
pushed it there is ``emitted_at``, recovered by matching each closed window's
end (from the operator's metadata output) with the watermark's advances. bytewax
itself hands the answer on after the whole batch of events holding that event
(right after it with ``batch_size=1``, up to a batch of events later by
default); ``emitted_at`` is the earliest moment the answer could be known, the
same whatever the batch size. A window still open when the input ends closes then: its
``emitted_at`` is the arrival time of the last event read and ``closed_by``
says ``"end of input"``, so no one mistakes it for a watermark close.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import bytewax.operators as op
import pandas as pd
from bytewax.dataflow import Stream
from bytewax.operators.windowing import (
    ClockLogic,
    EventClock,
    SessionWindower,
    SlidingWindower,
    TumblingWindower,
    Windower,
    fold_window,
)

from streamlab.events import Event
from streamlab.stream.runner import DEFAULT_BATCH_SIZE, run
from streamlab.summary import rejected_frame
from streamlab.windows import (
    CLOSED_AT_END,
    CLOSED_BY_WATERMARK,
    EPOCH,
    Fold,
    Session,
    Sliding,
    Tumbling,
    Window,
    Windowed,
    check_delay,
    check_delays,
    check_fold,
    check_window,
    in_arrival_order,
    late_frame,
    open_on_arrival,
    reject_reason,
    watermark_frame,
    windows_frame,
)

__all__ = ["delay_tradeoff", "session", "simulated_clock", "sliding", "tumbling", "windowed", "windows_flow"]

#: The frozen "system time" of the simulated clock. Any constant will do: only
#: differences between two readings of it ever reach the watermark, and they are zero.
FROZEN_NOW = datetime(1970, 1, 1, tzinfo=timezone.utc)

# A numbered event: its position in arrival order, and the event.
Numbered = tuple[int, Event]


def _frozen_now() -> datetime:
    return FROZEN_NOW


def _never_wake(_close_time: datetime) -> None:
    # No wall-clock wake-ups: windows close when events move the watermark, or at the end of input.
    return None


def _event_time(item: Numbered) -> datetime:
    return item[1].event_time


def simulated_clock(delay: timedelta | float) -> EventClock:
    """bytewax's ``EventClock`` on event time only: watermark = latest event time of the key − ``delay``.

    >>> simulated_clock(5).wait_for_system_duration
    datetime.timedelta(seconds=5)
    """
    return EventClock(
        ts_getter=_event_time,
        wait_for_system_duration=check_delay(delay),
        now_getter=_frozen_now,
        to_system_utc=_never_wake,
    )


def windower(window: Window) -> Windower:
    """The bytewax windower for a window spec."""
    if isinstance(window, Tumbling):
        return TumblingWindower(length=window.length, align_to=window.align_to)
    if isinstance(window, Sliding):
        return SlidingWindower(length=window.length, offset=window.slide, align_to=window.align_to)
    return SessionWindower(gap=window.gap)


Acc = tuple[int, float, Any]


@dataclass
class _Check:
    """Number events in arrival order and route aside the ones that cannot be counted.

    It also remembers how far the input got: the arrival time of the last
    event read is when the input ended.
    """

    numbers: Iterable[int] = field(default_factory=itertools.count)
    last_arrival: datetime | None = None

    def __call__(self, batch: list[Event]) -> list[tuple[str, tuple]]:
        out = []
        for e in batch:
            if self.last_arrival is not None and e.arrival_time < self.last_arrival:
                raise ValueError(
                    f"events must come in arrival order: one arrived at {e.arrival_time.isoformat()} "
                    f"after one that arrived at {self.last_arrival.isoformat()}"
                )
            self.last_arrival = e.arrival_time
            out.append((e.key, (next(self.numbers), e, reject_reason(e))))
        return out


class _WatermarkTrace:
    """Per key: bytewax's own clock logic, fed the same events as the window operator's copy."""

    def __init__(self, clock: EventClock) -> None:
        self.clock = clock

    def __call__(self, state: list | None, item: Numbered) -> tuple[list, list[tuple]]:
        if state is None:
            state = [self.clock.build(None), None]
        logic: ClockLogic = state[0]
        logic.before_batch()
        _, watermark = logic.on_item(item)
        if state[1] is not None and watermark <= state[1]:
            return state, []
        state[1] = watermark
        seq, e = item
        return state, [(seq, e.arrival_time, watermark)]


def windows_flow(window: Window, delay: timedelta, fold: Fold | None, check: _Check | None = None):
    """Build the dataflow's body for :func:`streamlab.stream.run`.

    Outputs: ``"windows"`` ``(key, (window_id, (count, sum, fold_acc)))``,
    ``"meta"`` ``(key, (window_id, WindowMetadata))``, ``"late"``
    ``(key, (window_id, (seq, event)))`` (a late event appears once per window
    it falls in; once, with id -1, for sessions), ``"watermark"``
    ``(key, (seq, arrival_time, watermark))`` and ``"rejected"`` ``(key, (seq, event, reason))``.
    """
    check = check or _Check()
    clock = simulated_clock(delay)

    def initial() -> Acc:
        return (0, 0.0, fold.initial() if fold else None)

    def add(acc: Acc, item: Numbered) -> Acc:
        e = item[1]
        return (acc[0] + 1, acc[1] + e.value, fold.add(acc[2], e) if fold else None)

    def merge(a: Acc, b: Acc) -> Acc:
        return (a[0] + b[0], a[1] + b[1], fold.merge(a[2], b[2]) if fold else None)

    def body(events: Stream[Event]) -> dict[str, Stream[Any]]:
        checked = op.flat_map_batch("check", events, check)
        split = op.branch("route_rejected", checked, lambda kv: kv[1][2] is None)
        good = op.map_value("drop_reason", split.trues, lambda v: (v[0], v[1]))
        out = fold_window("window", good, clock, windower(window), initial, add, merge)
        trace = op.stateful_flat_map("watermark", good, _WatermarkTrace(clock))
        return {
            "windows": out.down, "meta": out.meta, "late": out.late,
            "watermark": trace, "rejected": split.falses,
        }

    return body


def windowed(
    events: Iterable[Event] | Iterable[tuple] | pd.DataFrame,
    window: Window,
    *,
    delay: timedelta | float = 0.0,
    fold: Fold | None = None,
    limit: int | None = None,
    until: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Windowed:
    """Answer each window as the events arrive: per key and window, count, sum, mean (and ``fold``).

    :param events: a pipe (cut by ``limit`` and/or ``until``), or a pile of your
        own: a list of :class:`~streamlab.events.Event` or of
        ``(key, value, event_time, arrival_time)`` tuples, or a frame with
        those columns. A pile is read in arrival order.
    :param window: :class:`~streamlab.windows.Tumbling`, :class:`~streamlab.windows.Sliding`
        or :class:`~streamlab.windows.Session`.
    :param delay: how long the watermark waits for stragglers (timedelta or
        seconds, >= 0): watermark = latest event time of the key − delay.
    :param fold: a :class:`~streamlab.windows.Fold` of your own, computed per window too.
    :param batch_size: events handed to the dataflow at a time; the answers
        and their ``emitted_at`` do not depend on it.

    Each window's answer counts the events that were not late; the late
    ones come out in ``late_events``. ``emitted_at`` says when each answer
    was known (see the module docstring).

    >>> from streamlab.events import pipe
    >>> w = windowed(pipe(seed=1, keys=2, disorder=2), Tumbling(5), delay=1, limit=100)
    >>> w
    Windowed(stream, Tumbling(length=5s), delay=1s: 6 windows, 8 late events, 0 rejected, 100 events read)
    """
    window, delay, fold = check_window(window), check_delay(delay), check_fold(fold)
    check = _Check()
    result = run(
        windows_flow(window, delay, fold, check), in_arrival_order(events, limit, until),
        batch_size=batch_size, name=f"{window.kind}_windows",
    )
    ended_at = check.last_arrival

    # Each key's watermark advances, in arrival order.
    trace: dict[str, tuple[list[int], list[datetime], list[datetime]]] = {}
    for key, (seq, arrived, mark) in sorted(result["watermark"], key=lambda kv: kv[1][0]):
        seqs, arrivals, marks = trace.setdefault(key, ([], [], []))
        seqs.append(seq)
        arrivals.append(arrived)
        marks.append(mark)

    def emitted(key: str, end: datetime) -> tuple[datetime | None, str]:
        """The arrival time of the first event that moved the key's watermark past ``end``."""
        _, arrivals, marks = trace.get(key, ([], [], []))
        # has_closed is monotonic in the watermark: bisect for the first advance that closes.
        lo, hi = 0, len(marks)
        while lo < hi:
            mid = (lo + hi) // 2
            if window.has_closed(end, marks[mid]):
                hi = mid
            else:
                lo = mid + 1
        if lo < len(marks):
            return arrivals[lo], CLOSED_BY_WATERMARK
        return ended_at, CLOSED_AT_END

    meta = {(key, wid): m for key, (wid, m) in result["meta"]}
    rows = []
    for key, (wid, (count, total, acc)) in result["windows"]:
        m = meta[key, wid]
        at, closed_by = emitted(key, m.close_time)
        rows.append((key, m.open_time, m.close_time, count, total, acc, at, closed_by))

    late: dict[int, tuple] = {}
    for key, (_wid, (seq, e)) in result["late"]:
        if seq not in late:  # a sliding window's late event comes once per window it falls in
            seqs, _, marks = trace[key]
            watermark = marks[bisect.bisect_left(seqs, seq) - 1]  # the last advance before it arrived
            late[seq] = (key, e.value, e.event_time, e.arrival_time, watermark)
    rejected = sorted(result["rejected"], key=lambda kv: kv[1][0])
    watermark_rows = [
        (key, arrived, mark)
        for key, (seq, arrived, mark) in sorted(result["watermark"], key=lambda kv: kv[1][0])
    ]
    return Windowed(
        driver="stream", window=window, delay=delay, fold=fold,
        windows=windows_frame(rows, fold),
        late_events=late_frame([late[seq] for seq in sorted(late)]),
        watermark=watermark_frame(watermark_rows),
        rejected=rejected_frame(
            [(e.key, e.value, e.event_time, e.arrival_time, reason) for _, (_, e, reason) in rejected]
        ),
        events_read=result.events_read,
        ended_at=ended_at,
    )


def tumbling(
    events: Iterable[Event] | Iterable[tuple] | pd.DataFrame,
    length: timedelta | float,
    *,
    delay: timedelta | float = 0.0,
    fold: Fold | None = None,
    align_to: datetime = EPOCH,
    limit: int | None = None,
    until: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Windowed:
    """:func:`windowed` over back-to-back windows of ``length``; see :class:`~streamlab.windows.Tumbling`."""
    return windowed(events, Tumbling(length, align_to), delay=delay, fold=fold, limit=limit, until=until,
                    batch_size=batch_size)


def sliding(
    events: Iterable[Event] | Iterable[tuple] | pd.DataFrame,
    length: timedelta | float,
    slide: timedelta | float,
    *,
    delay: timedelta | float = 0.0,
    fold: Fold | None = None,
    align_to: datetime = EPOCH,
    limit: int | None = None,
    until: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Windowed:
    """:func:`windowed` over windows of ``length``, one every ``slide``; see :class:`~streamlab.windows.Sliding`."""
    return windowed(events, Sliding(length, slide, align_to), delay=delay, fold=fold, limit=limit,
                    until=until, batch_size=batch_size)


def session(
    events: Iterable[Event] | Iterable[tuple] | pd.DataFrame,
    gap: timedelta | float,
    *,
    delay: timedelta | float = 0.0,
    fold: Fold | None = None,
    limit: int | None = None,
    until: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Windowed:
    """:func:`windowed` over sessions separated by more than ``gap``; see :class:`~streamlab.windows.Session`."""
    return windowed(events, Session(gap), delay=delay, fold=fold, limit=limit, until=until,
                    batch_size=batch_size)


def delay_tradeoff(
    events: Iterable[Event] | Iterable[tuple] | pd.DataFrame,
    window: Window,
    delays: Sequence[timedelta | float],
    *,
    limit: int | None = None,
    until: datetime | None = None,
) -> pd.DataFrame:
    """Measure the watermark's trade-off: run the stream once per delay, over the same events.

    Returns one row per delay: ``delay_s`` (seconds), ``late_events``,
    ``late_share`` (late events / events that could be counted), ``windows``
    (answered when the watermark passed them; those closed only by the end of
    the input are left out, as their latency says nothing about the delay),
    and the ``median_latency_s`` and ``max_latency_s`` of their answers. For
    tumbling windows, ``closed_window_share`` is the share of events whose
    window had already closed when they arrived: those Flink or Beam would
    drop with the same watermark (see :func:`~streamlab.windows.open_on_arrival`).

    >>> from streamlab.events import pipe
    >>> curve = delay_tradeoff(pipe(seed=1, disorder=4), Tumbling(10), [0, 4], limit=500)
    >>> curve["late_events"].iloc[-1]
    np.int64(0)
    """
    pile = list(in_arrival_order(events, limit, until))
    rows = []
    for delay in check_delays(delays):
        result = windowed(pile, window, delay=delay)
        counted = result.events_read - len(result.rejected)
        closed = result.windows[result.windows["closed_by"] == CLOSED_BY_WATERMARK]
        latency = closed["latency"].dt.total_seconds()
        rows.append({
            "delay_s": check_delay(delay).total_seconds(),
            "late_events": result.n_late,
            "late_share": result.n_late / counted if counted else 0.0,
            "windows": len(closed),
            "median_latency_s": latency.median(),
            "max_latency_s": latency.max(),
        })
        if isinstance(window, Tumbling):
            dropped = int((~open_on_arrival(result)).sum())
            rows[-1]["closed_window_share"] = dropped / counted if counted else 0.0
    return pd.DataFrame(rows).astype({"late_events": "int64", "windows": "int64"})
