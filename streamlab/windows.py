"""Event-time windows: what both drivers share.

The computation is "per key and per window of event time: count, sum, mean
(and, if you like, a fold of your own)". :mod:`streamlab.batch` computes it with
pandas over a pile, :mod:`streamlab.stream` with bytewax over a pipe; both
return a :class:`Windowed`, and :func:`reconcile` proves, window by window,
that the batch answer equals the stream answer plus the late events'
contribution.

Three kinds of window, described by :class:`Tumbling`, :class:`Sliding` and
:class:`Session`:

* tumbling: back to back, fixed length; each event falls in exactly one;
* sliding: fixed length, a new one every ``slide``; an event falls in several;
* session: a burst of a key's events with no silence longer than ``gap``.

**The watermark and the lateness rule** (bytewax's, exactly; both drivers apply it):

* Each key has its own watermark: the latest event time seen for that key so
  far minus ``delay``, the time we agree to wait for stragglers. Events are
  seen in arrival order.
* An event is **late** when its event time is before its key's watermark at the
  moment it arrives. A late event is never counted in a window: it comes out
  on its own, in ``late_events``, with the watermark that made it late.
  bytewax sets an event aside as soon as it is behind the watermark **even if
  its window is still open**; Flink and the Beam model only drop an event
  whose window has already closed (has already given its answer).
* A tumbling or sliding window closes, and its answer comes out, once its
  key's watermark reaches the window's end; a session once the watermark is
  more than ``gap`` past its last event. A window still open when the input
  ends closes then, at the arrival time of the last event read (``closed_by``
  says which).
* So with ``delay`` at least as long as the longest any event takes to arrive,
  no event is late and the stream's answers equal the batch's. (What decides
  exactly is how far an event is behind the newest event of its key seen
  before it; that is never more than the longest delay, often less.)
* Each answer says when it became known: ``emitted_at`` is the arrival time of
  the event that moved the watermark past the window (``closed_by`` is
  ``"watermark"``), or the arrival time of the last event read if the window
  was still open when the input ended (``closed_by`` is ``"end of input"``).

**Events that cannot be counted** are routed aside to ``rejected`` with a reason,
and never move a watermark: a missing or infinite value, and an event that
*arrived before it happened* (``arrival_time < event_time``). Such an event
means some clock is wrong, and we can't tell which: trusting its event time
could push the watermark into the future and make good events late, trusting
its arrival time would invent an event time. So it is set aside, counted,
visible, and the rule is the same in both drivers.

>>> from datetime import timedelta
>>> Tumbling(timedelta(seconds=10))
Tumbling(length=10s)
>>> Sliding(60, slide=0)
Traceback (most recent call last):
...
ValueError: slide must be > 0, got 0
"""

from __future__ import annotations

import bisect
import math
import numbers
import operator
from collections.abc import Callable, Iterable, Sequence, Sized
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd

from streamlab.compare import ABS_TOL, REL_TOL, Agreement, agree
from streamlab.events import MAX_DURATION, Event, Finite, Pipe, _describe, _finite, bounded, check_utc
from streamlab.summary import reject_reason as value_reject_reason

__all__ = [
    "CLOSED_AT_END",
    "CLOSED_BY_WATERMARK",
    "EPOCH",
    "SKEW",
    "Fold",
    "Reconciliation",
    "Session",
    "Sliding",
    "Tumbling",
    "Window",
    "Windowed",
    "check_delay",
    "check_delays",
    "open_on_arrival",
    "readable",
    "reconcile",
    "reject_reason",
]

#: Where tumbling and sliding windows are aligned by default: the Unix epoch, as in
#: Flink, so a 10 s window always starts on a whole multiple of 10 s.
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: Why an event that arrived before it happened is set aside.
SKEW = "arrived before it happened (clock skew)"
#: ``closed_by`` of a window whose answer came out when the watermark passed its end.
CLOSED_BY_WATERMARK = "watermark"
#: ``closed_by`` of a window still open when the input ended (its answer came out then).
CLOSED_AT_END = "end of input"

#: The most sliding windows one event may fall in (length / slide).
MAX_WINDOWS_PER_EVENT = 10_000
#: The longest watermark delay accepted: a hundred years.
MAX_DELAY = timedelta(days=36_500)

STATISTICS = ("count", "sum", "mean")
WINDOW_COLUMNS = ["key", "window_start", "window_end", *STATISTICS, "emitted_at", "latency", "closed_by"]
LATE_COLUMNS = ["key", "value", "event_time", "arrival_time", "watermark"]
WATERMARK_COLUMNS = ["key", "arrival_time", "watermark"]
EVENT_COLUMNS = ("key", "value", "event_time", "arrival_time")


def _show(value: object) -> str:
    if isinstance(value, timedelta):
        return f"{value.total_seconds():g}s"
    return repr(value)


def _duration(name: str, value: object, *, positive: bool) -> timedelta:
    """A timedelta from a timedelta or a number of seconds, checked; errors name ``name``."""
    if isinstance(value, timedelta):
        td = value
    elif isinstance(value, numbers.Real) and not isinstance(value, bool) and _finite(value):
        if abs(value) > MAX_DURATION.total_seconds():
            raise ValueError(f"{name} must be at most {MAX_DURATION.days:,} days, got {_describe(value)} seconds")
        td = timedelta(seconds=float(value))
    else:
        raise TypeError(f"{name} must be a timedelta or a number of seconds, got {type(value).__name__} {_describe(value)}")
    if abs(td) > MAX_DURATION:
        raise ValueError(f"{name} must be at most {MAX_DURATION.days:,} days, got {_show(value)}")
    if positive and td <= timedelta(0):
        raise ValueError(f"{name} must be > 0, got {_show(value)}")
    if not positive and td < timedelta(0):
        raise ValueError(f"{name} must be >= 0, got {_show(value)}")
    return td


def check_delay(delay: timedelta | float) -> timedelta:
    """Check the watermark's delay (a timedelta or seconds, >= 0) and return it as a timedelta.

    >>> check_delay(2.5)
    datetime.timedelta(seconds=2, microseconds=500000)
    >>> check_delay(-3)
    Traceback (most recent call last):
    ...
    ValueError: delay must be >= 0, got -3
    """
    td = _duration("delay", delay, positive=False)
    if td > MAX_DELAY:
        # Far beyond any stream, and event_time - delay would leave the range of datetimes.
        raise ValueError(f"delay must be at most {MAX_DELAY.days} days, got {_show(delay)}")
    return td


def check_delays(delays: object) -> list[timedelta]:
    """Check a list of watermark delays to try, one after the other (each a timedelta or seconds, >= 0).

    >>> check_delays([])
    Traceback (most recent call last):
    ...
    ValueError: delays must hold at least one delay to try, got none
    """
    if isinstance(delays, (str, bytes)) or not isinstance(delays, Sequence):
        raise TypeError(f"delays must be a list of delays (timedeltas or seconds), got {type(delays).__name__} {delays!r:.60}")
    if not delays:
        raise ValueError("delays must hold at least one delay to try, got none")
    return [check_delay(delay) for delay in delays]


def _seconds(td: timedelta) -> str:
    return f"{td.total_seconds():g}s"


class _FixedLength:
    """What tumbling and sliding windows share: fixed-length windows on a grid aligned to ``align_to``."""

    length: timedelta
    slide: timedelta
    align_to: datetime

    def starts_for(self, event_time: datetime) -> list[datetime]:
        """The start of every window an event at ``event_time`` falls in."""
        return _starts_for(event_time, self.length, self.slide, self.align_to)

    def has_closed(self, window_end: datetime, watermark: datetime) -> bool:
        """Whether a window ending at ``window_end`` has closed once the watermark is ``watermark``."""
        return watermark >= window_end


@dataclass(frozen=True)
class Tumbling(_FixedLength):
    """Back-to-back windows of ``length`` (a timedelta or seconds), aligned to ``align_to``.

    A window covers ``[start, start + length)``: its start is included, its end is not.

    >>> from streamlab.events import COURSE_START
    >>> w = Tumbling(10)
    >>> w.starts_for(COURSE_START + timedelta(seconds=12))
    [datetime.datetime(2026, 3, 1, 0, 0, 10, tzinfo=datetime.timezone.utc)]
    """

    length: timedelta
    align_to: datetime = EPOCH

    kind = "tumbling"

    def __post_init__(self) -> None:
        object.__setattr__(self, "length", _duration("length", self.length, positive=True))
        check_utc("align_to", self.align_to)

    @property
    def slide(self) -> timedelta:
        """Tumbling windows slide by their whole length."""
        return self.length

    @property
    def label(self) -> str:
        """In words, for titles: ``tumbling windows of 10 s``."""
        return f"tumbling windows of {self.length.total_seconds():g} s"

    def __repr__(self) -> str:
        aligned = "" if self.align_to == EPOCH else f", align_to={self.align_to.isoformat()}"
        return f"Tumbling(length={_seconds(self.length)}{aligned})"


@dataclass(frozen=True)
class Sliding(_FixedLength):
    """Windows of ``length``, a new one every ``slide`` (0 < slide <= length), aligned to ``align_to``.

    With ``slide < length`` windows overlap and an event falls in several
    (about ``length / slide``). A window covers ``[start, start + length)``.

    >>> from streamlab.events import COURSE_START
    >>> [t.second for t in Sliding(10, slide=5).starts_for(COURSE_START + timedelta(seconds=12))]
    [5, 10]
    """

    length: timedelta
    slide: timedelta
    align_to: datetime = EPOCH

    kind = "sliding"

    def __post_init__(self) -> None:
        object.__setattr__(self, "length", _duration("length", self.length, positive=True))
        object.__setattr__(self, "slide", _duration("slide", self.slide, positive=True))
        if self.slide > self.length:
            raise ValueError(
                f"slide must be <= length ({_seconds(self.length)}), got {_seconds(self.slide)}: "
                "a longer slide would leave gaps that no window covers"
            )
        if self.length / self.slide > MAX_WINDOWS_PER_EVENT:
            # Each event is counted in every window it falls in: past this, one event takes minutes.
            raise ValueError(
                f"slide must be at least length / {MAX_WINDOWS_PER_EVENT:,} ({_seconds(self.length / MAX_WINDOWS_PER_EVENT)}), "
                f"got {_seconds(self.slide)}: each event would fall in {self.length / self.slide:,.0f} windows"
            )
        check_utc("align_to", self.align_to)

    @property
    def label(self) -> str:
        """In words, for titles: ``sliding windows of 60 s, every 15 s``."""
        return f"sliding windows of {self.length.total_seconds():g} s, every {self.slide.total_seconds():g} s"

    def __repr__(self) -> str:
        aligned = "" if self.align_to == EPOCH else f", align_to={self.align_to.isoformat()}"
        return f"Sliding(length={_seconds(self.length)}, slide={_seconds(self.slide)}{aligned})"


@dataclass(frozen=True)
class Session:
    """Sessions: a key's events with no silence longer than ``gap`` between them.

    A session's ``window_start`` and ``window_end`` are the event times of its
    first and last event (both included). It closes once its key's watermark is
    more than ``gap`` past its last event: only then can no new event join it.

    >>> Session(timedelta(minutes=5))
    Session(gap=300s)
    """

    gap: timedelta

    kind = "session"

    def __post_init__(self) -> None:
        object.__setattr__(self, "gap", _duration("gap", self.gap, positive=True))

    def has_closed(self, window_end: datetime, watermark: datetime) -> bool:
        """Whether a session whose last event is at ``window_end`` has closed at ``watermark``."""
        return watermark > window_end + self.gap

    @property
    def label(self) -> str:
        """In words, for titles: ``sessions, gap 5 s``."""
        return f"sessions, gap {self.gap.total_seconds():g} s"

    def __repr__(self) -> str:
        return f"Session(gap={_seconds(self.gap)})"


Window = Tumbling | Sliding | Session


def check_window(window: object) -> Window:
    if not isinstance(window, (Tumbling, Sliding, Session)):
        raise TypeError(
            f"window must be Tumbling(...), Sliding(...) or Session(...), got {type(window).__name__} {window!r}"
        )
    return window


def _starts_for(event_time: datetime, length: timedelta, slide: timedelta, align_to: datetime) -> list[datetime]:
    # The same arithmetic as bytewax's SlidingWindower: window i covers
    # [align_to + i * slide, align_to + i * slide + length).
    since = event_time - align_to
    first, last = (since - length) // slide + 1, since // slide
    return [align_to + slide * i for i in range(first, last + 1)]


@dataclass(frozen=True)
class Fold:
    """A computation of your own over each window's events: ``initial``, ``add``, ``merge``.

    ``initial()`` builds an empty accumulator, ``add(acc, event)`` returns it
    with one more event folded in, ``merge(a, b)`` combines the accumulators of
    two disjoint sets of events. The accumulator is the answer, shown in a
    column called ``name``. For "batch = stream + late" to hold, the result
    must not depend on the order events are added in (as for a max, a set,
    a count): then ``merge(stream, late)`` is the batch answer.

    >>> biggest = Fold("max_value", lambda: -math.inf, lambda acc, e: max(acc, e.value), max)
    """

    name: str
    initial: Callable[[], Any]
    add: Callable[[Any, Event], Any]
    merge: Callable[[Any, Any], Any]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"name must be a Python identifier (it names a column), got {self.name!r}")
        if self.name in WINDOW_COLUMNS:
            raise ValueError(f"name must not be one of the columns {WINDOW_COLUMNS}, got {self.name!r}")
        for part in ("initial", "add", "merge"):
            if not callable(getattr(self, part)):
                raise TypeError(f"{part} must be callable, got {getattr(self, part)!r}")

    def over(self, events: Iterable[Event]) -> Any:
        """Fold ``events`` from the initial accumulator, in the order given."""
        acc = self.initial()
        for e in events:
            acc = self.add(acc, e)
        return acc


def check_fold(fold: object) -> Fold | None:
    if fold is not None and not isinstance(fold, Fold):
        raise TypeError(f"fold must be a Fold(name, initial, add, merge) or None, got {type(fold).__name__}")
    return fold


def reject_reason(event: Event) -> str | None:
    """Say why ``event`` cannot be put in a window, or ``None`` if it can.

    The value rule is the first computation's; on top of it, an event that
    arrived before it happened is set aside (see the module's docstring).

    >>> from streamlab.events import COURSE_START as T
    >>> reject_reason(Event("a", 1.0, T, T + timedelta(seconds=1))) is None
    True
    >>> reject_reason(Event("a", 1.0, T + timedelta(seconds=1), T))
    'arrived before it happened (clock skew)'
    """
    reason = value_reject_reason(event.value)
    if reason is not None:
        return reason
    if event.arrival_time < event.event_time:
        return SKEW
    return None


def _as_event(index: int, item: object) -> Event:
    if isinstance(item, Event):
        return item
    if isinstance(item, tuple) and len(item) == 4:
        try:
            return Event(*item)
        except (TypeError, ValueError) as err:
            raise type(err)(f"event {index}: {err}") from None
    raise TypeError(
        f"event {index} must be an Event or a tuple (key, value, event_time, arrival_time), "
        f"got {type(item).__name__} {item!r}"
    )


def _frame_events(frame: pd.DataFrame) -> list[Event]:
    missing = [c for c in EVENT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"a frame of events needs the columns {list(EVENT_COLUMNS)}; missing {missing}")

    def py(t: Any) -> Any:
        return t.to_pydatetime() if isinstance(t, pd.Timestamp) else t

    rows = zip(frame["key"], frame["value"], frame["event_time"], frame["arrival_time"])
    return [
        _as_event(i, (str(k), None if pd.isna(v) else float(v), py(et), py(at)))
        for i, (k, v, et, at) in enumerate(rows)
    ]


def in_arrival_order(
    events: Iterable[Event] | Iterable[tuple] | pd.DataFrame,
    limit: int | None = None,
    until: datetime | None = None,
) -> Iterable[Event]:
    """The events as a stream sees them: in arrival order, cut by ``limit`` and ``until``.

    A pipe already comes in arrival order and is read lazily (it must be cut).
    Anything else is a pile: a list of :class:`~streamlab.events.Event` or of
    ``(key, value, event_time, arrival_time)`` tuples, or a frame with those
    columns; it is sorted by arrival time (ties keep their order) and then cut.
    """
    if isinstance(events, Pipe):
        return bounded(events, limit=limit, until=until)
    if isinstance(events, pd.DataFrame):
        pile = _frame_events(events)
    elif isinstance(events, (str, bytes)) or not isinstance(events, Iterable):
        raise TypeError(f"events must be a pipe, a list of events or a DataFrame, got {type(events).__name__}")
    elif not isinstance(events, (Sized, Finite)):
        # An iterator may never end, as a pipe may not: it is read as given, cut (it must be), then sorted.
        pile = [_as_event(i, item) for i, item in enumerate(bounded(events, limit=limit, until=until))]
        pile.sort(key=_ARRIVAL)
        return pile
    else:
        # Events pass as they are (the common case, checked without a call); tuples are made events.
        pile = [item if type(item) is Event else _as_event(i, item) for i, item in enumerate(events)]
    pile.sort(key=_ARRIVAL)  # stable, and linear on a pile already in arrival order
    return list(bounded(pile, limit=limit, until=until))


_ARRIVAL = operator.attrgetter("arrival_time")


def _utc_series(values: list, name: str) -> pd.Series:
    return pd.Series(pd.DatetimeIndex(values, tz="UTC"), dtype="datetime64[ns, UTC]", name=name)


def windows_frame(rows: list[tuple], fold: Fold | None) -> pd.DataFrame:
    """The answer table from ``(key, start, end, count, sum, fold_acc, emitted_at, closed_by)`` rows.

    One row per key and window, sorted by key then window start; ``mean`` is
    ``sum / count``; ``latency`` is how long after the window's end (in event
    time) its answer came out (in arrival time).
    """
    rows = sorted(rows, key=lambda r: (r[0], r[1], r[2]))
    columns = list(zip(*rows)) if rows else [[] for _ in range(8)]
    frame = pd.DataFrame(
        {
            "key": pd.Series(list(columns[0]), dtype="str"),
            "window_start": _utc_series(list(columns[1]), "window_start"),
            "window_end": _utc_series(list(columns[2]), "window_end"),
            "count": pd.Series(list(columns[3]), dtype="int64"),
            "sum": pd.Series(list(columns[4]), dtype="float64"),
        }
    )
    frame["mean"] = frame["sum"] / frame["count"]
    if fold is not None:
        frame[fold.name] = pd.Series(list(columns[5]), dtype="object")
    frame["emitted_at"] = _utc_series(list(columns[6]), "emitted_at")
    frame["latency"] = frame["emitted_at"] - frame["window_end"]
    frame["closed_by"] = pd.Series(list(columns[7]), dtype="str")
    return frame


def late_frame(rows: list[tuple]) -> pd.DataFrame:
    """The late events from ``(key, value, event_time, arrival_time, watermark)`` rows, in arrival order."""
    columns = list(zip(*rows)) if rows else [[] for _ in range(5)]
    return pd.DataFrame(
        {
            "key": pd.Series(list(columns[0]), dtype="str"),
            "value": pd.Series(list(columns[1]), dtype="float64"),
            "event_time": _utc_series(list(columns[2]), "event_time"),
            "arrival_time": _utc_series(list(columns[3]), "arrival_time"),
            "watermark": _utc_series(list(columns[4]), "watermark"),
        }
    )


def watermark_frame(rows: list[tuple]) -> pd.DataFrame:
    """Every advance of a key's watermark from ``(key, arrival_time, watermark)`` rows, in arrival order."""
    columns = list(zip(*rows)) if rows else [[] for _ in range(3)]
    return pd.DataFrame(
        {
            "key": pd.Series(list(columns[0]), dtype="str"),
            "arrival_time": _utc_series(list(columns[1]), "arrival_time"),
            "watermark": _utc_series(list(columns[2]), "watermark"),
        }
    )


@dataclass(frozen=True)
class Windowed:
    """The windowed answer of one driver, when each part became known, and what was set aside.

    ``windows``: one row per key and window: ``key``, ``window_start``,
    ``window_end``, ``count``, ``sum``, ``mean`` (and the fold's column, if
    any), ``emitted_at`` (the arrival time at which the answer came out),
    ``latency`` (``emitted_at - window_end``) and ``closed_by``
    (:data:`CLOSED_BY_WATERMARK` or :data:`CLOSED_AT_END`). The batch driver
    answers every window once, when the pile is complete; the stream each one
    when its key's watermark passes it, counting only the events that were not late.
    A session's ``window_end`` is its last event, so its latency includes the
    ``gap``; an answer forced out by the end of the input may even have a
    negative latency (it came out before its window ended), which is why
    ``closed_by`` marks it.

    ``late_events``: the events a stream with this ``delay`` sets aside as late,
    with the ``watermark`` they arrived behind. The stream reports the ones it
    set aside; the batch driver computes them with the same rule, so the two
    lists are equal.

    ``watermark``: every advance of each key's watermark, with the arrival time
    that caused it. ``rejected``: the events that cannot be counted, with a
    reason. ``events_read``: every event read; counts reconcile (checked here).
    ``ended_at``: the arrival time of the last event read, when the input ended.
    """

    driver: str
    window: Window
    delay: timedelta
    fold: Fold | None
    windows: pd.DataFrame
    late_events: pd.DataFrame
    watermark: pd.DataFrame
    rejected: pd.DataFrame
    events_read: int
    ended_at: datetime | None = field(default=None)

    def __post_init__(self) -> None:
        if isinstance(self.window, Sliding):
            return  # an event counts in several sliding windows: counts don't add up to events
        counted = int(self.windows["count"].sum())
        late = len(self.late_events) if self.driver == "stream" else 0
        if counted + late + len(self.rejected) != self.events_read:
            raise AssertionError(
                f"counts do not reconcile: read {self.events_read} events; windows counted {counted}, "
                f"{late} late, {len(self.rejected)} rejected"
            )

    @property
    def n_late(self) -> int:
        """How many events were (or a stream would set) aside as late."""
        return len(self.late_events)

    def __repr__(self) -> str:
        return (
            f"Windowed({self.driver}, {self.window!r}, delay={_seconds(self.delay)}: "
            f"{len(self.windows)} windows, {self.n_late} late events, {len(self.rejected)} rejected, "
            f"{self.events_read} events read)"
        )


def open_on_arrival(result: Windowed) -> pd.Series:
    """For each late event of a tumbling-window result: was its window still open when it arrived?

    bytewax sets an event aside as soon as its event time is behind the
    watermark. Flink and the Beam model (with no allowed lateness) drop an
    event only if its window had already closed, that is if the window's end
    was at or behind the watermark when it arrived. With the same watermark,
    the events marked ``True`` here are those Flink or Beam would still have
    counted. Tumbling windows only: a sliding window's event is in several
    windows (Flink drops it from the closed ones only), and a session's extent
    is not known until it closes.

    >>> from streamlab.events import COURSE_START as T
    >>> from streamlab.batch import windowed
    >>> at = lambda s: T + timedelta(seconds=s)
    >>> pile = [Event("a", 1.0, at(12), at(12)), Event("a", 1.0, at(5), at(13)), Event("a", 1.0, at(25), at(25)),
    ...         Event("a", 1.0, at(6), at(26))]
    >>> open_on_arrival(windowed(pile, Tumbling(10, align_to=T), delay=5)).tolist()
    [True, False]
    """
    if not isinstance(result.window, Tumbling):
        raise ValueError(f"open_on_arrival needs tumbling windows, got {result.window!r}")
    window = result.window
    late = result.late_events
    ends = [window.starts_for(t.to_pydatetime())[0] + window.length for t in late["event_time"]]
    return pd.Series(
        [not window.has_closed(end, mark.to_pydatetime()) for end, mark in zip(ends, late["watermark"])],
        index=late.index, dtype="bool", name="window_open_on_arrival",
    )


# --- batch = stream + late, window by window --------------------------------------------------


def _window_label(key: str, start: pd.Timestamp) -> str:
    return f"{key} @ {start.isoformat()}"


@dataclass(frozen=True)
class Reconciliation:
    """The outcome of :func:`reconcile`: per batch window, the batch answer against stream + late.

    ``table`` is tidy: one row per batch window and statistic, with ``batch``
    (over every event), ``stream`` (the stream's answer for the window; for a
    session, all the stream's sessions inside it), ``late`` (the late events'
    own answer: their count, sum, mean) and ``stream_plus_late`` (the two
    combined: the sum of counts and sums, the mean of the union, ``merge`` for
    a fold), and whether ``batch`` equals ``stream_plus_late``.
    ``agreement`` compares the numbers with :func:`streamlab.compare.agree`.
    ``same_late_events``: whether the batch driver, given the stream's delay,
    predicted exactly the late events the stream set aside (``None`` when the
    batch answer was computed for another delay: its answer is the same, its
    prediction is for that delay).
    """

    table: pd.DataFrame
    agreement: Agreement
    same_late_events: bool | None
    unmatched_stream_windows: int

    @property
    def ok(self) -> bool:
        return (
            self.agreement.ok
            and bool(self.table["agree"].all())
            and self.same_late_events is not False
            and self.unmatched_stream_windows == 0
        )

    def __bool__(self) -> bool:
        return self.ok

    def message(self) -> str:
        windows = self.table[["key", "window_start"]].drop_duplicates()
        with_late = self.table[(self.table["statistic"] == "count") & (self.table["late"] > 0)]
        lines = []
        if bool(self.table["agree"].all()) and self.agreement.ok:
            lines.append(
                f"batch = stream + late in all {len(windows)} windows "
                f"({len(with_late)} of them with late events)."
            )
        else:
            lines.append(self.agreement.message())
            bad = self.table[~self.table["agree"]]
            for row in bad.itertuples(index=False):
                lines.append(
                    f"  {row.key} window {row.window_start.isoformat()} {row.statistic}: "
                    f"batch {row.batch!r}, stream + late {row.stream_plus_late!r}"
                )
        if self.same_late_events is False:
            lines.append("The late events the batch driver predicted differ from those the stream set aside.")
        if self.unmatched_stream_windows:
            lines.append(f"{self.unmatched_stream_windows} stream windows lie in no batch window.")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Reconciliation: {self.message()}"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, numbers.Real) and isinstance(b, numbers.Real):
        if math.isnan(a) and math.isnan(b):
            return True
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL) or a == b
    return bool(a == b)


def _late_key(frame: pd.DataFrame) -> list[tuple]:
    return sorted(
        map(tuple, frame[LATE_COLUMNS].astype({"value": "float64"}).itertuples(index=False, name=None)),
        key=repr,
    )


def reconcile(batch: Windowed, stream: Windowed) -> Reconciliation:
    """Show, window by window, that the batch answer = the stream answer + the late events' contribution.

    Both results must be for the same window spec and fold. The batch answer
    does not depend on the delay; the late events are the stream's. For
    tumbling and sliding windows, a stream window is the batch window with the
    same key and start; a late event contributes to every window it falls in.
    For sessions, adding events can only merge sessions, never split them, so
    each of the stream's sessions lies inside one batch session, and each late
    event inside one too: the batch session's answer is that of the stream
    sessions inside it plus that of the late events inside it.
    """
    for name, side in (("batch", batch), ("stream", stream)):
        if not isinstance(side, Windowed):
            raise TypeError(f"{name} must be a Windowed (what windowed() returns), got {type(side).__name__} {side!r:.60}")
    if batch.window != stream.window or batch.fold is not stream.fold:
        raise ValueError(
            f"reconcile needs two answers to the same question: got {batch.window!r} against {stream.window!r}"
            + ("" if batch.fold is stream.fold else ", and different folds")
        )
    window, fold = batch.window, batch.fold
    bw = batch.windows.reset_index(drop=True)
    index = {(k, s): i for i, (k, s) in enumerate(zip(bw["key"], bw["window_start"]))}
    by_key: dict[str, tuple[list[int], list[pd.Timestamp]]] = {}
    for i, (k, start) in enumerate(zip(bw["key"], bw["window_start"])):
        rows, starts = by_key.setdefault(k, ([], []))  # rows are sorted by key, then start
        rows.append(i)
        starts.append(start)

    def session_row(key: str, start: pd.Timestamp, end: pd.Timestamp) -> int | None:
        """The batch session that holds [start, end]: the last one starting at or before start."""
        rows, starts = by_key.get(key, ([], []))
        pos = bisect.bisect_right(starts, start) - 1
        if pos >= 0 and bw.at[rows[pos], "window_end"] >= end:
            return rows[pos]
        return None

    n = len(bw)
    stream_count, stream_sum = np.zeros(n, dtype="int64"), np.zeros(n)
    late_count, late_sum = np.zeros(n, dtype="int64"), np.zeros(n)
    stream_fold: list[Any] = [fold.initial() if fold else None for _ in range(n)]
    late_events: list[list[Event]] = [[] for _ in range(n)]
    unmatched = 0
    fold_values = stream.windows[fold.name] if fold else [None] * len(stream.windows)
    for k, s, e, c, total, acc in zip(
        stream.windows["key"], stream.windows["window_start"], stream.windows["window_end"],
        stream.windows["count"], stream.windows["sum"], fold_values,
    ):
        row = session_row(k, s, e) if isinstance(window, Session) else index.get((k, s))
        if row is None:
            unmatched += 1
            continue
        stream_count[row] += c
        stream_sum[row] += total
        if fold:
            stream_fold[row] = fold.merge(stream_fold[row], acc)
    for k, v, et, at in zip(
        stream.late_events["key"], stream.late_events["value"],
        stream.late_events["event_time"], stream.late_events["arrival_time"],
    ):
        if isinstance(window, Session):
            rows = [session_row(k, et, et)]
        else:
            rows = [index.get((k, pd.Timestamp(start))) for start in window.starts_for(et.to_pydatetime())]
        for row in rows:
            if row is None:
                unmatched += 1
                continue
            late_count[row] += 1
            late_sum[row] += v
            if fold:
                late_events[row].append(Event(k, float(v), et.to_pydatetime(), at.to_pydatetime()))

    def mean(total: np.ndarray, count: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)

    both_count, both_sum = stream_count + late_count, stream_sum + late_sum
    parts = {
        "count": (bw["count"].to_numpy(), stream_count, late_count, both_count),
        "sum": (bw["sum"].to_numpy(), stream_sum, late_sum, both_sum),
        "mean": (bw["mean"].to_numpy(), mean(stream_sum, stream_count), mean(late_sum, late_count),
                 mean(both_sum, both_count)),
    }
    tables = []
    for statistic, (b, s, late, both) in parts.items():
        # Object columns, so that counts stay whole numbers next to sums (and a fold's values).
        values = {name: pd.Series(np.asarray(v).tolist(), dtype="object")
                  for name, v in (("batch", b), ("stream", s), ("late", late), ("stream_plus_late", both))}
        tables.append(pd.DataFrame({
            "key": bw["key"], "window_start": bw["window_start"], "window_end": bw["window_end"],
            "statistic": statistic, **values,
            "agree": [_same(x, y) for x, y in zip(values["batch"], values["stream_plus_late"])],
        }))
    if fold:
        # Late events are folded in event-time order, as bytewax feeds a window.
        late_acc = [fold.over(sorted(evs, key=lambda e: e.event_time)) for evs in late_events]
        combined = [fold.merge(s, late) for s, late in zip(stream_fold, late_acc)]
        tables.append(pd.DataFrame({
            "key": bw["key"], "window_start": bw["window_start"], "window_end": bw["window_end"],
            "statistic": fold.name, "batch": list(bw[fold.name]), "stream": stream_fold, "late": late_acc,
            "stream_plus_late": combined,
            "agree": [_same(b, c) for b, c in zip(bw[fold.name], combined)],
        }))
    table = pd.concat(tables, ignore_index=True)
    table = table.sort_values(["key", "window_start"], kind="stable", ignore_index=True)

    labels = [_window_label(k, s) for k, s in zip(bw["key"], bw["window_start"])]
    left = pd.DataFrame({st: parts[st][0] for st in STATISTICS}, index=pd.Index(labels, name="key"))
    right = pd.DataFrame({st: parts[st][3] for st in STATISTICS}, index=pd.Index(labels, name="key"))
    agreement = agree(left, right, names=("batch", "stream + late"))
    # The batch driver's prediction of the late events is for its own delay; compare when they match.
    same_late = None if batch.delay != stream.delay else _late_key(batch.late_events) == _late_key(stream.late_events)
    return Reconciliation(table=table, agreement=agreement, same_late_events=same_late,
                          unmatched_stream_windows=unmatched)



def readable(frame: pd.DataFrame, decimals: int = 2) -> pd.DataFrame:
    """A copy of a result frame for reading: times as clock times, durations in seconds, floats rounded.

    Times show as ``HH:MM:SS`` (with milliseconds if any time has a fraction of a
    second); durations become seconds; only the display changes.

    >>> from streamlab.events import COURSE_START as T
    >>> frame = pd.DataFrame({"at": [pd.Timestamp(T) + pd.Timedelta(seconds=75)],
    ...                       "waited": [pd.Timedelta(seconds=1.5)], "mean": [2 / 3]})
    >>> readable(frame).to_dict("records")
    [{'at': '00:01:15', 'waited': 1.5, 'mean': 0.67}]
    """
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if isinstance(column.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(column):
            fractional = bool((column.dropna().dt.microsecond != 0).any())
            shown = column.dt.strftime("%H:%M:%S.%f").str[:-3] if fractional else column.dt.strftime("%H:%M:%S")
            out[name] = shown.astype("object").where(column.notna(), "")
        elif pd.api.types.is_timedelta64_dtype(column):
            out[name] = column.dt.total_seconds().round(3)
        elif pd.api.types.is_float_dtype(column):
            out[name] = column.round(decimals)
    return out
