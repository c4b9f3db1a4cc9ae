"""Panes: event-time windows by the standard rule (the Beam model, as in Flink), with triggers.

A window's answer may come out more than once; each answer is a **pane**. This
module is the one implementation of when panes come out and what they hold;
:func:`streamlab.stream.panes` runs it inside a bytewax dataflow,
:func:`loop` runs it in a plain Python loop, and :func:`streamlab.batch.panes`
computes the complete answer of a pile with pandas, to compare.

**The clock.** Processing time is simulated: it is the arrival time of the
newest event read (nothing reads the wall clock). It moves on when an event
arrives; timers and a watermark that follows the clock fire at the exact
simulated moment they are due, between two arrivals if need be.

**The watermark** says "no event older than this should still come". It is a
strategy:

* :class:`Delay` ``(delay, per="input")``: the newest event time seen, minus
  ``delay``, and then moving on with processing time (``follow_clock``): an
  event is behind it only if it took longer than about ``delay`` to arrive.
  One watermark for the whole input (the standard), or one per key
  (``per="key"``, as bytewax keeps it). Because it follows the clock, a key
  that goes quiet still sees its windows close.
* :class:`Schedule`: a watermark scripted by hand, as a test harness does:
  from each processing time on, a given watermark.

**Lateness (the standard rule).** An event is *late* when, as it arrives, the
watermark has already passed the end of its window: the window has given its
on-time answer. An event behind the watermark whose window is still open is
not late. With ``allowed_lateness`` a window's state is kept until the
watermark passes ``end + allowed_lateness``: a late event within that updates
its window and fires a LATE pane; beyond it, it is routed aside to
``dropped`` with the reason :data:`BEYOND`, counted, never lost. bytewax's own
rule (an event behind the watermark is set aside even if its window is open) is
available as ``lateness="bytewax"``, to compare.

**Triggers** (:class:`Trigger`): the ON_TIME pane when the watermark passes the
window's end (always); EARLY panes every ``early_every`` of processing time
after the first event of a pane, or every ``early_count`` events; LATE panes
for each late event, or every ``late_every`` of processing time.

**Accumulation modes**: ``"discarding"`` (each pane holds what came since the
last one: a window's panes add up to its answer), ``"accumulating"`` (each pane
holds everything so far: the last pane is the answer), ``"retracting"``
(accumulating, and each new pane first retracts the previous one with a row of
``sign`` −1: folding the output as a changelog always gives the right table).

**Windows**: :class:`~streamlab.windows.Tumbling`, :class:`~streamlab.windows.Sliding`
and :class:`~streamlab.windows.Session`. Sessions follow the Beam model here:
each event opens the window ``[event_time, event_time + gap)``, and windows of
a key that overlap merge, so a session is ``[first event, last event + gap)``
and two events exactly one gap apart are in two sessions. A straggler that
bridges two sessions merges them; in retracting mode the next pane retracts
both earlier ones.

**End of input.** When the input ends the watermark jumps to the end of time:
every open window gives its ON_TIME pane, and pending late data its LATE pane,
at the arrival time of the last event (``at_end`` is true for those).

>>> from streamlab.events import COURSE_START as T, Event
>>> from streamlab.windows import Tumbling
>>> at = lambda s: T + timedelta(seconds=s)
>>> events = [Event("a", 1.0, at(1), at(1)), Event("a", 2.0, at(12), at(12)), Event("a", 4.0, at(3), at(14))]
>>> out = loop(events, Tumbling(10, align_to=T), watermark=Delay(0), allowed_lateness=10)
>>> out.panes[["window_start", "sum", "timing", "pane_index"]].assign(window_start=lambda f: f.window_start.dt.second)
   window_start  sum   timing  pane_index
0             0  1.0  ON_TIME           0
1             0  5.0     LATE           1
2            10  2.0  ON_TIME           0
"""

from __future__ import annotations

import heapq
import itertools
import numbers
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd

from streamlab.events import Event, check_utc
from streamlab.summary import rejected_frame
from streamlab.windows import (
    Fold,
    Session,
    Sliding,
    Tumbling,
    Window,
    _duration,
    _show,
    _utc_series,
    check_delay,
    check_fold,
    check_window,
    in_arrival_order,
    reject_reason,
)

__all__ = [
    "ACCUMULATING", "BEHIND", "BEYOND", "DISCARDING", "EARLY", "LATE", "LATE_WITHIN", "MODES", "ON_TIME",
    "RETRACTING",
    "Delay", "Engine", "Panes", "Schedule", "Trigger", "check_settings", "loop", "reconcile",
]

EARLY, ON_TIME, LATE = "EARLY", "ON_TIME", "LATE"
DISCARDING, ACCUMULATING, RETRACTING = "discarding", "accumulating", "retracting"
MODES = (DISCARDING, ACCUMULATING, RETRACTING)
#: Why an event is routed aside under the standard rule: its window's state is gone.
BEYOND = "beyond allowed lateness"
#: Why an event is routed aside under bytewax's rule: it is behind the watermark.
BEHIND = "behind the watermark (bytewax's rule)"
#: An event that came after its window closed, within allowed lateness: counted, in a LATE pane.
LATE_WITHIN = "late, within allowed lateness"
LATENESS_RULES = ("standard", "bytewax")

PANE_COLUMNS = ["key", "window_start", "window_end", "count", "sum", "mean", "timing", "pane_index",
                "emitted_at", "sign", "at_end"]
DROPPED_COLUMNS = ["key", "value", "event_time", "arrival_time", "watermark", "window_start", "window_end",
                   "reason"]


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Delay:
    """A watermark that waits ``delay`` behind the newest event time, then moves on with the clock.

    Each time an event arrives whose event time minus ``delay`` is ahead of the
    watermark, the watermark jumps there; between events it advances with
    processing time (``follow_clock=True``, as bytewax's ``EventClock`` does
    with the system time) or stands still (``follow_clock=False``). It never
    goes back. ``per="input"``: one watermark for all keys (the standard);
    ``per="key"``: one per key (bytewax's way).

    >>> Delay(5)
    Delay(delay=5s, per='input')
    >>> Delay(5, per="shop")
    Traceback (most recent call last):
    ...
    ValueError: per must be 'input' or 'key', got 'shop'
    """

    delay: timedelta
    per: str = "input"
    follow_clock: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "delay", check_delay(self.delay))
        if self.per not in ("input", "key"):
            raise ValueError(f"per must be 'input' or 'key', got {self.per!r}")
        if not isinstance(self.follow_clock, bool):
            raise TypeError(f"follow_clock must be True or False, got {self.follow_clock!r}")

    def __repr__(self) -> str:
        clock = "" if self.follow_clock else ", follow_clock=False"
        return f"Delay(delay={_show(self.delay)}, per={self.per!r}{clock})"


@dataclass(frozen=True)
class Schedule:
    """A watermark scripted by hand: ``(processing_time, watermark)`` points, in order.

    From each processing time on, the watermark is the point's watermark (before
    the first point there is none). Processing times must increase and
    watermarks must never go back: a watermark is a promise.

    >>> from streamlab.events import COURSE_START as T
    >>> Schedule([(T + timedelta(seconds=5), T), (T + timedelta(seconds=9), T - timedelta(seconds=1))])
    Traceback (most recent call last):
    ...
    ValueError: a watermark schedule must never go back: point 1 sets 2026-02-28T23:59:59+00:00 after 2026-03-01T00:00:00+00:00
    """

    points: Sequence[tuple[datetime, datetime]]

    def __post_init__(self) -> None:
        if isinstance(self.points, (str, bytes)) or not isinstance(self.points, Iterable):
            raise TypeError(f"points must be a list of (processing_time, watermark) pairs, got {self.points!r}")
        points = tuple(self.points)
        if not points:
            raise ValueError("a watermark schedule needs at least one (processing_time, watermark) point")
        for i, point in enumerate(points):
            if not (isinstance(point, tuple) and len(point) == 2):
                raise TypeError(f"point {i} must be a (processing_time, watermark) pair, got {point!r}")
            check_utc(f"point {i} processing_time", point[0])
            check_utc(f"point {i} watermark", point[1])
            if i and point[0] <= points[i - 1][0]:
                raise ValueError(
                    f"a watermark schedule's processing times must increase: point {i} is at "
                    f"{point[0].isoformat()}, after {points[i - 1][0].isoformat()}"
                )
            if i and point[1] < points[i - 1][1]:
                raise ValueError(
                    f"a watermark schedule must never go back: point {i} sets {point[1].isoformat()} "
                    f"after {points[i - 1][1].isoformat()}"
                )
        object.__setattr__(self, "points", points)


Watermark = Delay | Schedule


def _check_count(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a whole number of events or None, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


@dataclass(frozen=True)
class Trigger:
    """When panes come out besides the ON_TIME one (which always does).

    ``early_every``: an EARLY pane this long (processing time) after the first
    event of a pane, while the window is open. ``early_count``: an EARLY pane
    every this many events. ``late_every``: late events are gathered into one
    LATE pane this long after the first of them; ``None`` (the default) fires
    a LATE pane for each late event.

    >>> Trigger(early_every=10)
    Trigger(early_every=10s)
    >>> Trigger(early_every=0)
    Traceback (most recent call last):
    ...
    ValueError: early_every must be > 0, got 0
    """

    early_every: timedelta | None = None
    early_count: int | None = None
    late_every: timedelta | None = None

    def __post_init__(self) -> None:
        for name in ("early_every", "late_every"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _duration(name, value, positive=True))
        object.__setattr__(self, "early_count", _check_count("early_count", self.early_count))

    def __repr__(self) -> str:
        parts = [f"{name}={_show(getattr(self, name))}" for name in ("early_every", "early_count", "late_every")
                 if getattr(self, name) is not None]
        return f"Trigger({', '.join(parts)})"


@dataclass(frozen=True)
class Settings:
    """Everything that decides the panes, checked once (see :func:`check_settings`)."""

    window: Window
    watermark: Watermark
    allowed_lateness: timedelta
    trigger: Trigger
    mode: str
    lateness: str
    fold: Fold | None


def check_settings(
    window: object, watermark: object = 0.0, allowed_lateness: object = 0.0, trigger: object = None,
    mode: object = ACCUMULATING, lateness: object = "standard", fold: object = None,
) -> Settings:
    """Check the settings of a windowed stream; a number for ``watermark`` means ``Delay(that)``.

    >>> check_settings(Tumbling(60), mode="replace")
    Traceback (most recent call last):
    ...
    ValueError: mode must be one of ('discarding', 'accumulating', 'retracting'), got 'replace'
    """
    window = check_window(window)
    if isinstance(watermark, (numbers.Real, timedelta)) and not isinstance(watermark, bool):
        try:
            watermark = Delay(watermark)
        except (ValueError, TypeError) as error:  # say which argument it was: the caller wrote watermark=
            raise type(error)(str(error).replace("delay", "watermark (its delay)", 1)) from None
    if not isinstance(watermark, (Delay, Schedule)):
        raise TypeError(f"watermark must be Delay(...), Schedule(...) or a delay in seconds, got {watermark!r}")
    late = _duration("allowed_lateness", allowed_lateness, positive=False)
    if late > timedelta(days=36_500):
        raise ValueError(f"allowed_lateness must be at most 36500 days, got {_show(allowed_lateness)}")
    trigger = Trigger() if trigger is None else trigger
    if not isinstance(trigger, Trigger):
        raise TypeError(f"trigger must be Trigger(...) or None, got {trigger!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if lateness not in LATENESS_RULES:
        raise ValueError(f"lateness must be one of {LATENESS_RULES}, got {lateness!r}")
    if lateness == "bytewax" and late:
        raise ValueError("bytewax's rule keeps no window open for late events: allowed_lateness must be 0 with it")
    if lateness == "bytewax" and isinstance(window, Session):
        raise ValueError("lateness='bytewax' is for tumbling and sliding windows (bytewax's sessions differ)")
    return Settings(window, watermark, late, trigger, str(mode), str(lateness), check_fold(fold))


# --------------------------------------------------------------------------- the engine


class _Win:
    """One window of one key: its answer so far, the part not yet given in a pane, its timers."""

    __slots__ = ("key", "start", "end", "n", "s", "f", "pn", "ps", "pf", "early_n", "closed", "alive",
                 "index", "last", "retract", "early_due", "late_due")

    def __init__(self, key: str, start: datetime, end: datetime, fold: Fold | None) -> None:
        self.key, self.start, self.end = key, start, end
        self.n, self.s, self.f = 0, 0.0, fold.initial() if fold else None
        # The part not yet given in a pane. Accumulating and retracting panes give the whole answer, so
        # there only late events (after the window closed) are kept here: the engine's fast path skips it.
        self.pn, self.ps, self.pf = 0, 0.0, fold.initial() if fold else None
        self.early_n = 0
        self.closed = False  # the watermark has passed its end: on time is over
        self.alive = True  # still in the state (not merged away, not past allowed lateness)
        self.index = 0  # the next pane's index
        self.last: tuple | None = None  # the last pane given (retracting mode)
        self.retract: list[tuple] = []  # panes of sessions merged into this one, to retract
        self.early_due: datetime | None = None
        self.late_due: datetime | None = None


class _Owner:
    """Who a watermark belongs to (the input, or one key) and the windows it closes."""

    __slots__ = ("name", "mark", "since", "ends", "expiry", "due")

    def __init__(self, name: str) -> None:
        self.name = name
        self.mark: datetime | None = None  # the watermark when it last jumped
        self.since: datetime | None = None  # the processing time of that jump
        self.ends: list = []  # heap: (window end, n, window)
        self.expiry: list = []  # heap: (window end + allowed lateness, n, window)
        self.due: datetime | None = None  # processing time of its next crossing, if scheduled


class Engine:
    """The windowing engine: feed it events in arrival order (:meth:`on_event`), then :meth:`finish`.

    It keeps per key only the windows that are open or within allowed lateness,
    and hands out what it emitted with :meth:`take`: rows for ``"panes"``,
    ``"dropped"`` and ``"watermark"``. The stream driver runs one inside a
    bytewax step; :func:`loop` runs one in a plain loop.
    """

    def __init__(self, settings: Settings, keep_watermark: bool = True) -> None:
        self.settings = s = settings
        self.fold = s.fold
        self.keep_watermark = keep_watermark
        self.window = s.window
        self.session = isinstance(s.window, Session)
        self.tumbling = isinstance(s.window, Tumbling)
        self.length = None if self.session else s.window.length
        self.align = None if self.session else s.window.align_to
        # The window of the last event, (start, end): the next one is most likely in it too.
        never = datetime.max.replace(tzinfo=timezone.utc)
        self._last_window = (never, never, never)  # (start, end, end + allowed lateness)
        # With no fold and no early trigger, an event in an open window only adds to four numbers.
        self.plain_add = s.fold is None and s.trigger.early_count is None and s.trigger.early_every is None
        self.late = s.allowed_lateness
        self.mode = s.mode
        self.bytewax_rule = s.lateness == "bytewax"
        wm = s.watermark
        self.delay = wm.delay if isinstance(wm, Delay) else None
        self.per_key = isinstance(wm, Delay) and wm.per == "key"
        self.follow = isinstance(wm, Delay) and wm.follow_clock
        self.schedule = list(wm.points) if isinstance(wm, Schedule) else []
        self.next_point = 0
        self.trigger = s.trigger
        self.now: datetime | None = None
        self.owners: dict[str, _Owner] = {}
        self.input = _Owner("*")
        self.windows: dict[str, dict[datetime, _Win]] = {}  # tumbling and sliding: key -> start -> window
        self.sessions: dict[str, list[_Win]] = {}  # key -> its sessions
        self.timers: list = []  # heap: (due, n, kind, window)
        self.crossings: list = []  # heap: (processing time, n, owner) for watermarks that follow the clock
        self.counter = itertools.count()
        self._mark_now: datetime | None = None  # the watermark the event being taken met
        self.counted = 0  # events placed in at least one window
        self.held = 0  # windows in the state now: open, or kept for allowed lateness
        self.peak_held = 0
        self.out: dict[str, list[tuple]] = {"panes": [], "dropped": [], "late": [], "watermark": []}

    # ---- the watermark

    def owner(self, key: str) -> _Owner:
        if not self.per_key:
            return self.input
        owner = self.owners.get(key)
        if owner is None:
            owner = self.owners[key] = _Owner(key)
        return owner

    def mark(self, owner: _Owner, now: datetime) -> datetime | None:
        """The owner's watermark at processing time ``now`` (None: no watermark yet)."""
        if owner.mark is None:
            return None
        if self.follow:
            return owner.mark + (now - owner.since)
        return owner.mark

    def _schedule_crossing(self, owner: _Owner) -> None:
        """When the owner's watermark, following the clock, reaches its next window end or expiry."""
        if not self.follow or owner.mark is None:
            return
        targets = [h[0][0] for h in (owner.ends, owner.expiry) if h]
        if not targets:
            owner.due = None
            return
        due = owner.since + (min(targets) - owner.mark)
        due = max(due, self.now)
        if owner.due != due:
            owner.due = due
            heapq.heappush(self.crossings, (due, next(self.counter), owner))

    # ---- time passing

    def advance(self, to: datetime) -> None:
        """Move processing time on to ``to``, firing on the way whatever falls due, in time order."""
        while True:
            moment = None
            if self.timers:
                moment = self.timers[0][0]
            if self.crossings and (moment is None or self.crossings[0][0] < moment):
                moment = self.crossings[0][0]
            if self.next_point < len(self.schedule):
                point = self.schedule[self.next_point][0]
                if moment is None or point < moment:
                    moment = point
            if moment is None or moment > to:
                break
            self.now = moment
            # The watermark first, so that a window closing now gives its ON_TIME pane, not an EARLY one.
            while self.next_point < len(self.schedule) and self.schedule[self.next_point][0] <= moment:
                self.input.mark = self.schedule[self.next_point][1]
                self.input.since = moment
                self.next_point += 1
                self._record(self.input, moment)
                self._close(self.input)
            while self.crossings and self.crossings[0][0] <= moment:
                _, _, owner = heapq.heappop(self.crossings)
                if owner.due is not None and owner.due <= moment:
                    owner.due = None
                    self._close(owner)
            while self.timers and self.timers[0][0] <= moment:
                due, _, kind, w = heapq.heappop(self.timers)
                if not w.alive:
                    continue
                if kind == EARLY and w.early_due == due and not w.closed:
                    self._fire(w, EARLY)
                elif kind == LATE and w.late_due == due:
                    self._fire(w, LATE)
        self.now = to

    def _close(self, owner: _Owner) -> None:
        """Give the ON_TIME pane of every window the owner's watermark has passed; forget expired ones."""
        mark = self.mark(owner, self.now)
        if mark is None:
            return
        ends = owner.ends
        while ends and ends[0][0] <= mark:
            end, _, w = heapq.heappop(ends)
            if w.alive and not w.closed and w.end == end:
                self._fire(w, ON_TIME)
                w.closed = True
                self._expire_later(owner, w)
        expiry = owner.expiry
        while expiry and expiry[0][0] <= mark:
            until, _, w = heapq.heappop(expiry)
            if w.alive and w.end + self.late == until:
                if w.pn:  # late events still waiting for their pane
                    self._fire(w, LATE)
                self._forget(w)
        self._schedule_crossing(owner)

    def _expire_later(self, owner: _Owner, w: _Win) -> None:
        if self.late:
            heapq.heappush(owner.expiry, (w.end + self.late, next(self.counter), w))
        else:
            self._forget(w)

    def _forget(self, w: _Win) -> None:
        w.alive = False
        self.held -= 1
        if self.session:
            self.sessions[w.key].remove(w)
        else:
            del self.windows[w.key][w.start]

    # ---- panes

    def _fire(self, w: _Win, timing: str, at_end: bool = False) -> None:
        emit = self.out["panes"].append
        now = self.now
        if self.mode == DISCARDING:
            values = (w.pn, w.ps, w.pf)
        else:
            values = (w.n, w.s, w.f)
        if self.mode == RETRACTING:
            for old in w.retract:
                emit((w.key, *old[:5], timing, old[5], now, -1, at_end))
            w.retract = []
            if w.last is not None:
                emit((w.key, *w.last[:5], timing, w.last[5], now, -1, at_end))
            w.last = (w.start, w.end, *values, w.index)
        emit((w.key, w.start, w.end, *values, timing, w.index, now, 1, at_end))
        w.index += 1
        w.pn, w.ps, w.pf = 0, 0.0, self.fold.initial() if self.fold else None
        w.early_n = 0
        w.early_due = w.late_due = None

    def _add(self, w: _Win, e: Event) -> None:
        v = e.value
        w.n += 1
        w.s += v
        w.pn += 1
        w.ps += v
        if self.fold:
            w.f = self.fold.add(w.f, e)
            w.pf = self.fold.add(w.pf, e)
        trigger = self.trigger
        if w.closed:
            self.out["late"].append((e.key, v, e.event_time, e.arrival_time, self._mark_now, w.start, w.end,
                                     LATE_WITHIN))
            if trigger.late_every is None:
                self._fire(w, LATE)
            elif w.late_due is None:
                w.late_due = self.now + trigger.late_every
                heapq.heappush(self.timers, (w.late_due, next(self.counter), LATE, w))
            return
        if trigger.early_count is not None:
            w.early_n += 1
            if w.early_n >= trigger.early_count:
                self._fire(w, EARLY)
                return
        if trigger.early_every is not None and w.early_due is None:
            w.early_due = self.now + trigger.early_every
            heapq.heappush(self.timers, (w.early_due, next(self.counter), EARLY, w))

    def _drop(self, e: Event, mark: datetime | None, start: datetime, end: datetime, reason: str) -> None:
        self.out["dropped"].append((e.key, e.value, e.event_time, e.arrival_time, mark, start, end, reason))

    def _record(self, owner: _Owner, now: datetime) -> None:
        if self.keep_watermark:
            self.out["watermark"].append((owner.name, now, self.mark(owner, now)))

    # ---- events

    def on_event(self, e: Event) -> None:
        """Take one event (already checked, arriving no earlier than the one before it)."""
        now = e.arrival_time
        if ((self.timers and self.timers[0][0] <= now) or (self.crossings and self.crossings[0][0] <= now)
                or (self.next_point < len(self.schedule) and self.schedule[self.next_point][0] <= now)):
            self.advance(now)  # something falls due before this arrival
        else:
            self.now = now
        owner = self.owners.get(e.key) or self.owner(e.key) if self.per_key else self.input
        mark = owner.mark
        if mark is not None and self.follow:
            mark = mark + (now - owner.since)
        self._mark_now = mark
        if self.session:
            self._session_event(e, owner, mark)
        else:
            self._fixed_event(e, owner, mark)
        if self.delay is not None:
            candidate = e.event_time - self.delay
            if mark is None or candidate > mark:
                owner.mark, owner.since = candidate, now
                self._record(owner, now)
                self._close(owner)
            elif self.follow and owner.due is None:
                self._schedule_crossing(owner)

    def on_events(self, events: list[Event]) -> None:
        """Take a batch of events, in arrival order: :meth:`on_event` for each, in one loop.

        The common case (tumbling windows, the standard rule, a watermark from
        the events, no fold, no trigger but the watermark's) runs here with
        local variables, as a plain loop would, and calls out only for what is
        rare: a window to open, an event to drop or to count late, the
        watermark jumping, something falling due. Anything else goes event by
        event through :meth:`on_event`. The panes are the same either way.
        """
        t_ = self.trigger
        if not (self.tumbling and self.plain_add and self.delay is not None and not self.bytewax_rule
                and t_.late_every is None):
            for e in events:
                self.on_event(e)
            return
        crossings, owners, owner_input = self.crossings, self.owners, self.input
        per_key, follow, delay = self.per_key, self.follow, self.delay
        windows_of, align, length, late = self.windows, self.align, self.length, self.late
        # Before a window closes, only discarding mode needs the part not yet given in a pane.
        pane_part = self.mode == DISCARDING
        start, end, expires = self._last_window
        counted = self.counted
        for e in events:
            now = e.arrival_time
            if crossings and crossings[0][0] <= now:
                self.advance(now)  # a window closes (or expires) before this arrival, by the clock
            key = e.key
            owner = (owners.get(key) or self.owner(key)) if per_key else owner_input
            mark = owner.mark
            if mark is not None and follow:
                mark = mark + (now - owner.since)
            t = e.event_time
            if not start <= t < end:
                start = align + (t - align) // length * length
                end = start + length
                expires = end + late
            if mark is not None and expires <= mark:
                self._drop(e, mark, start, end, BEYOND)
            else:
                windows = windows_of.get(key)
                if windows is None:
                    windows = windows_of[key] = {}
                w = windows.get(start)
                if w is None:
                    self.now = now
                    w = windows[start] = self._new(owner, key, start, end, mark)
                if w.closed:  # late, within allowed lateness: its LATE pane
                    self.now, self._mark_now = now, mark
                    self._add(w, e)
                else:
                    v = e.value
                    w.n += 1
                    w.s += v
                    if pane_part:
                        w.pn += 1
                        w.ps += v
                counted += 1
            candidate = t - delay
            if mark is None or candidate > mark:
                self.now = now
                owner.mark, owner.since = candidate, now
                self._record(owner, now)
                self._close(owner)
            elif follow and owner.due is None:
                self.now = now
                self._schedule_crossing(owner)
        if events:
            self.now = events[-1].arrival_time
        self.counted = counted
        self._last_window = (start, end, expires)

    def _new(self, owner: _Owner, key: str, start: datetime, end: datetime, mark: datetime | None) -> _Win:
        w = _Win(key, start, end, self.fold)
        self.held += 1
        if self.held > self.peak_held:
            self.peak_held = self.held
        if mark is not None and end <= mark:
            # Born after the watermark passed its end (possible only with allowed lateness): LATE panes only.
            w.closed = True
            self._expire_later(owner, w)
        else:
            heapq.heappush(owner.ends, (end, next(self.counter), w))
            self._schedule_crossing(owner)
        return w

    def _fixed_event(self, e: Event, owner: _Owner, mark: datetime | None) -> None:
        t = e.event_time
        starts = self.window.starts_for(t)
        if self.bytewax_rule and mark is not None and t < mark:
            for start in starts:
                self._drop(e, mark, start, start + self.length, BEHIND)
            return
        windows = self.windows.get(e.key)
        if windows is None:
            windows = self.windows[e.key] = {}
        placed = False
        for start in starts:
            end = start + self.length
            if mark is not None and end + self.late <= mark:
                self._drop(e, mark, start, end, BEYOND)
                continue
            w = windows.get(start)
            if w is None:
                w = windows[start] = self._new(owner, e.key, start, end, mark)
            self._add(w, e)
            placed = True
        self.counted += placed

    def _session_event(self, e: Event, owner: _Owner, mark: datetime | None) -> None:
        t, gap = e.event_time, self.window.gap
        start, end = t, t + gap
        if mark is not None and end + self.late <= mark:
            self._drop(e, mark, start, end, BEYOND)
            return
        sessions = self.sessions.get(e.key)
        if sessions is None:
            sessions = self.sessions[e.key] = []
        touching = [w for w in sessions if w.start < end and w.end > start]
        if not touching:
            w = self._new(owner, e.key, start, end, mark)
            sessions.append(w)
        else:
            w = touching[0]
            for other in touching[1:]:  # a straggler bridging sessions: they become one
                self._merge_into(w, other)
                other.alive = False
                self.held -= 1
                sessions.remove(other)
            new_start = min(start, *(o.start for o in touching))
            new_end = max(end, *(o.end for o in touching))
            if new_end != w.end or len(touching) > 1:
                w.start, w.end = new_start, new_end
                if mark is None or w.end > mark:
                    # Grown past the watermark: it will be on time (again) when the watermark gets there.
                    w.closed = False
                    w.late_due = None
                    heapq.heappush(owner.ends, (w.end, next(self.counter), w))
                else:
                    # Still behind the watermark (possible only with allowed lateness): LATE panes only.
                    w.closed = True
                    w.early_due = None
                    heapq.heappush(owner.expiry, (w.end + self.late, next(self.counter), w))
                self._schedule_crossing(owner)
            w.start = new_start
        self._add(w, e)
        self.counted += 1

    def _merge_into(self, w: _Win, other: _Win) -> None:
        fold = self.fold
        w.n += other.n
        w.s += other.s
        w.pn += other.pn
        w.ps += other.ps
        if fold:
            w.f = fold.merge(w.f, other.f)
            w.pf = fold.merge(w.pf, other.pf)
        w.index = max(w.index, other.index)
        w.retract.extend(other.retract)
        if other.last is not None:
            w.retract.append(other.last)
        for due_name in ("early_due", "late_due"):
            mine, theirs = getattr(w, due_name), getattr(other, due_name)
            if theirs is not None and (mine is None or theirs < mine):
                setattr(w, due_name, theirs)
                heapq.heappush(self.timers, (theirs, next(self.counter), EARLY if due_name == "early_due" else LATE,
                                             w))

    def finish(self, at: datetime | None = None) -> None:
        """The input has ended (at processing time ``at``): every open window gives its last pane."""
        if at is not None:
            self.advance(at)
        if self.now is None:
            return
        alive = [w for ws in self.windows.values() for w in ws.values()]
        alive += [w for ws in self.sessions.values() for w in ws]
        for w in sorted(alive, key=lambda w: (w.key, w.start, w.end)):
            if not w.closed:
                self._fire(w, ON_TIME, at_end=True)
            elif w.pn:
                self._fire(w, LATE, at_end=True)
            w.alive = False
        self.held = 0
        self.windows.clear()
        self.sessions.clear()

    def take(self) -> dict[str, Any]:
        """What was emitted since the last call; ``counted`` (events placed in a window) and ``peak_held``
        (the most windows held at once) so far."""
        out: dict[str, Any] = self.out
        self.out = {"panes": [], "dropped": [], "late": [], "watermark": []}
        out["counted"] = self.counted
        out["peak_held"] = self.peak_held
        return out


# --------------------------------------------------------------------------- results


def pane_frame(rows: list[tuple], fold: Fold | None) -> pd.DataFrame:
    """The panes, in the order they came out, from the engine's rows."""
    columns = list(zip(*rows)) if rows else [[] for _ in range(11)]
    frame = pd.DataFrame({
        "key": pd.Series(list(columns[0]), dtype="str"),
        "window_start": _utc_series(list(columns[1]), "window_start"),
        "window_end": _utc_series(list(columns[2]), "window_end"),
        "count": pd.Series(list(columns[3]), dtype="int64"),
        "sum": pd.Series(list(columns[4]), dtype="float64"),
    })
    frame["mean"] = frame["sum"] / frame["count"].where(frame["count"] > 0)
    if fold is not None:
        frame[fold.name] = pd.Series(list(columns[5]), dtype="object")
    frame["timing"] = pd.Series(list(columns[6]), dtype="str")
    frame["pane_index"] = pd.Series(list(columns[7]), dtype="int64")
    frame["emitted_at"] = _utc_series(list(columns[8]), "emitted_at")
    frame["sign"] = pd.Series(list(columns[9]), dtype="int64")
    frame["at_end"] = pd.Series(list(columns[10]), dtype="bool")
    return frame


def dropped_frame(rows: list[tuple]) -> pd.DataFrame:
    """Late events, one row per window they were late for: the watermark they met, the window, why."""
    columns = list(zip(*rows)) if rows else [[] for _ in range(8)]
    return pd.DataFrame({
        "key": pd.Series(list(columns[0]), dtype="str"),
        "value": pd.Series(list(columns[1]), dtype="float64"),
        "event_time": _utc_series(list(columns[2]), "event_time"),
        "arrival_time": _utc_series(list(columns[3]), "arrival_time"),
        "watermark": _utc_series(list(columns[4]), "watermark"),
        "window_start": _utc_series(list(columns[5]), "window_start"),
        "window_end": _utc_series(list(columns[6]), "window_end"),
        "reason": pd.Series(list(columns[7]), dtype="str"),
    })


def watermark_trace(rows: list[tuple]) -> pd.DataFrame:
    """Each jump of a watermark: whose (``"*"`` for the input's), when (processing time), to where."""
    columns = list(zip(*rows)) if rows else [[] for _ in range(3)]
    return pd.DataFrame({
        "owner": pd.Series(list(columns[0]), dtype="str"),
        "processing_time": _utc_series(list(columns[1]), "processing_time"),
        "watermark": _utc_series(list(columns[2]), "watermark"),
    })


@dataclass(frozen=True)
class Panes:
    """The panes of one driver, the events routed aside, and the watermark's jumps.

    ``panes``: one row per pane in the order they came out: ``key``,
    ``window_start``, ``window_end``, ``count``, ``sum``, ``mean`` (and the
    fold's column), ``timing`` (EARLY, ON_TIME, LATE), ``pane_index`` (0, 1, ...
    per window), ``emitted_at`` (processing time), ``sign`` (+1, or −1 for a
    retraction) and ``at_end`` (given because the input ended).
    ``dropped``: events too late even for allowed lateness, one row per window.
    ``late``: events that came after their window closed, within allowed
    lateness: counted, in LATE panes (one row per window, like ``dropped``).
    ``rejected``: events that cannot be counted, with a reason.
    ``counted``: events placed in at least one window. ``events_read``: every
    event read; they reconcile (checked here). ``ended_at``: when the input ended.
    ``peak_held``: the most windows the stream held in its state at once (open,
    or kept for allowed lateness): what waiting costs in memory.
    """

    driver: str
    settings: Settings
    panes: pd.DataFrame
    dropped: pd.DataFrame
    late: pd.DataFrame
    watermark: pd.DataFrame
    rejected: pd.DataFrame
    counted: int
    events_read: int
    ended_at: datetime | None = field(default=None)
    peak_held: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.settings.window, Sliding):
            return  # an event falls in several sliding windows, and may be too late for some of them only
        # Otherwise an event falls in one window: counted, dropped (one row) or rejected.
        counted, dropped = self.counted, len(self.dropped)
        if counted + dropped + len(self.rejected) != self.events_read:
            raise AssertionError(
                f"counts do not reconcile: read {self.events_read} events; windows counted {counted}, "
                f"{dropped} dropped, {len(self.rejected)} rejected"
            )

    def table(self) -> pd.DataFrame:
        """Each window's answer as the panes give it, read the way the mode asks.

        Discarding: the panes of a window added up. Accumulating: its last pane.
        Retracting: the panes folded as a changelog (each −1 row takes its pane
        back), so windows merged away leave nothing behind. One row per
        window: ``key``, ``window_start``, ``window_end``, ``count``, ``sum``, ``mean``.
        """
        p = self.panes
        keys = ["key", "window_start", "window_end"]
        mode = self.settings.mode
        if mode == ACCUMULATING:
            t = p.groupby(keys, sort=True)[["count", "sum"]].last()
        else:
            signed = p[keys].assign(count=p["count"] * p["sign"], sum=p["sum"] * p["sign"])
            t = signed.groupby(keys, sort=True)[["count", "sum"]].sum()
            if mode == RETRACTING:
                t = t[t["count"] != 0]
        t = t.reset_index()
        t["mean"] = t["sum"] / t["count"].where(t["count"] > 0)
        return t

    def __repr__(self) -> str:
        s = self.settings
        return (f"Panes({self.driver}, {s.window!r}, {s.mode}: {len(self.panes)} panes, "
                f"{len(self.dropped)} dropped, {len(self.rejected)} rejected, {self.events_read} events read)")


def _result(driver: str, settings: Settings, out: dict[str, Any], rejected: list[tuple], read: int,
            ended_at: datetime | None) -> Panes:
    return Panes(
        driver=driver, settings=settings, counted=out["counted"], peak_held=out["peak_held"],
        panes=pane_frame(out["panes"], settings.fold),
        dropped=dropped_frame(out["dropped"]),
        late=dropped_frame(out["late"]),
        watermark=watermark_trace(out["watermark"]),
        rejected=rejected_frame(rejected),
        events_read=read, ended_at=ended_at,
    )


def loop(
    events: Iterable[Event] | Iterable[tuple] | pd.DataFrame,
    window: Window,
    *,
    watermark: Watermark | timedelta | float = 0.0,
    allowed_lateness: timedelta | float = 0.0,
    trigger: Trigger | None = None,
    mode: str = ACCUMULATING,
    lateness: str = "standard",
    fold: Fold | None = None,
    limit: int | None = None,
    until: datetime | None = None,
) -> Panes:
    """The panes of a windowed stream, computed by the engine in a plain Python loop.

    The same engine and the same answer as :func:`streamlab.stream.panes`,
    without bytewax: the reference the benchmark times the stream against.
    """
    settings = check_settings(window, watermark, allowed_lateness, trigger, mode, lateness, fold)
    engine = Engine(settings)
    rejected = []
    good = []
    read = 0
    last = None
    for e in in_arrival_order(events, limit, until):
        read += 1
        last = e.arrival_time
        reason = reject_reason(e)
        if reason is not None:
            rejected.append((e.key, e.value, e.event_time, e.arrival_time, reason))
        else:
            good.append(e)
    engine.on_events(good)
    engine.finish(last)
    return _result("loop", settings, engine.take(), rejected, read, last)


def reconcile(batch: Panes, stream: Panes) -> pd.DataFrame:
    """Batch = the stream's final answer + what it dropped, window by window: the accounts, as a table.

    One row per batch window: ``batch_count``/``batch_sum`` (every event),
    ``stream_count``/``stream_sum`` (the stream's answer, read as its mode
    says, see :meth:`Panes.table`), ``dropped_count``/``dropped_sum`` (events
    beyond allowed lateness) and ``agree`` (batch = stream + dropped, to float
    rounding). For sessions, a stream session or a dropped event counts in the
    batch session that holds it: adding events only merges sessions, so each
    lies inside one. Both answers must be for the same window spec.

    >>> from streamlab.events import COURSE_START as T, Event
    >>> from streamlab.batch import panes as batch_panes
    >>> at = lambda s: T + timedelta(seconds=s)
    >>> pile = [Event("a", 1.0, at(1), at(1)), Event("a", 2.0, at(12), at(12)), Event("a", 4.0, at(3), at(14))]
    >>> accounts = reconcile(batch_panes(pile, Tumbling(10, align_to=T)), loop(pile, Tumbling(10, align_to=T)))
    >>> accounts[["batch_sum", "stream_sum", "dropped_sum", "agree"]].values.tolist()
    [[5.0, 1.0, 4.0, True], [2.0, 2.0, 0.0, True]]
    """
    if batch.settings.window != stream.settings.window:
        raise ValueError(f"reconcile needs answers for the same windows: got {batch.settings.window!r} "
                         f"against {stream.settings.window!r}")
    sessions = isinstance(batch.settings.window, Session)
    keys = ["key", "window_start", "window_end"]
    accounts = batch.table()[keys + ["count", "sum"]].rename(columns={"count": "batch_count", "sum": "batch_sum"})
    table = stream.table()
    dropped = stream.dropped
    stream_parts, dropped_parts = [], []
    for key, start, end in zip(accounts["key"], accounts["window_start"], accounts["window_end"]):
        inside = table[(table["key"] == key) & (table["window_start"] >= start) & (table["window_end"] <= end)]
        if sessions:
            mine = dropped[(dropped["key"] == key) & (dropped["event_time"] >= start) & (dropped["event_time"] < end)]
        else:
            mine = dropped[(dropped["key"] == key) & (dropped["window_start"] == start)]
        stream_parts.append((int(inside["count"].sum()), float(inside["sum"].sum())))
        dropped_parts.append((len(mine), float(mine["value"].sum())))
    accounts["stream_count"] = pd.Series([c for c, _ in stream_parts], dtype="int64")
    accounts["stream_sum"] = pd.Series([t for _, t in stream_parts], dtype="float64")
    accounts["dropped_count"] = pd.Series([c for c, _ in dropped_parts], dtype="int64")
    accounts["dropped_sum"] = pd.Series([t for _, t in dropped_parts], dtype="float64")
    together = accounts["stream_sum"] + accounts["dropped_sum"]
    accounts["agree"] = (accounts["batch_count"] == accounts["stream_count"] + accounts["dropped_count"]) & (
        (accounts["batch_sum"] - together).abs() <= 1e-9 * accounts["batch_sum"].abs().clip(lower=1.0))
    return accounts
