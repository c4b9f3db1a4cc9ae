"""Events, the seeded pipe that produces them, and the piles cut from it.

An :class:`Event` is one thing that happened: a key (which store, card or
charger), a value, the time it happened (``event_time``) and the time it reached
us (``arrival_time``, the simulated processing time). Both engines read the same
two clocks; nothing in the course looks at the wall clock.

A :class:`Pipe` is an unbounded, seeded source of events in arrival order: it
has no length and no last event. A *pile* is a finite list cut from a pipe with
:func:`take` or :func:`arrived_before`; :func:`to_frame` turns a pile into a
pandas DataFrame.

>>> p = pipe(seed=2, rate=2.0, keys=3)
>>> first = take(p, 3)
>>> [e.key for e in first]
['store-0', 'store-2', 'store-1']
>>> take(p, 3) == first     # same seed, same events: iterating starts afresh
True
"""

from __future__ import annotations

import heapq
import itertools
import math
import numbers
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

import pandas as pd

__all__ = [
    "COURSE_START",
    "Event",
    "Pipe",
    "arrived_before",
    "pipe",
    "sort_by_arrival",
    "bounded",
    "take",
    "to_frame",
]

#: Where every simulated clock in the course starts: midnight UTC, 1 March 2026.
COURSE_START = datetime(2026, 3, 1, tzinfo=timezone.utc)

Distribution = Literal["normal", "uniform", "exponential"]
DISTRIBUTIONS: tuple[str, ...] = ("normal", "uniform", "exponential")
Delays = Literal["uniform", "long_tail"]
DELAYS: tuple[str, ...] = ("uniform", "long_tail")
#: With ``delays="long_tail"`` the mean delay is this fraction of ``disorder``.
LONG_TAIL_MEAN = 0.1


def check_utc(field: str, value: object) -> datetime:
    """Return ``value`` if it is a timezone-aware UTC datetime, else raise naming ``field``.

    >>> check_utc("event_time", datetime(2026, 3, 1))
    Traceback (most recent call last):
    ...
    ValueError: event_time must be timezone-aware UTC, got naive datetime 2026-03-01 00:00:00
    """
    if not isinstance(value, datetime):
        raise TypeError(f"{field} must be a datetime, got {type(value).__name__} {value!r}")
    offset = value.utcoffset()
    if offset is None:
        raise ValueError(f"{field} must be timezone-aware UTC, got naive datetime {value}")
    if offset != timedelta(0):
        raise ValueError(f"{field} must be in UTC, got offset {offset} in {value.isoformat()}")
    return value


@dataclass(frozen=True, slots=True)
class Event:
    """One happening: a key, a value, when it happened and when it arrived.

    ``value`` may be ``None`` or NaN: real pipes carry broken readings, and the
    computations route such events aside with a reason instead of dropping them.
    A value of the wrong type, a naive datetime or an empty key is refused here.

    >>> t = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
    >>> Event("store-0", 12.5, t, t + timedelta(seconds=2)).delay
    datetime.timedelta(seconds=2)
    >>> Event("store-0", "12.5", t, t)
    Traceback (most recent call last):
    ...
    TypeError: value must be a number or None, got str '12.5'
    """

    key: str
    value: float | None
    event_time: datetime
    arrival_time: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise ValueError(f"key must be a non-empty string, got {self.key!r}")
        value = self.value
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, numbers.Real)
        ):
            raise TypeError(
                f"value must be a number or None, got {type(value).__name__} {value!r}"
            )
        check_utc("event_time", self.event_time)
        check_utc("arrival_time", self.arrival_time)

    @property
    def delay(self) -> timedelta:
        """How long after it happened the event arrived."""
        return self.arrival_time - self.event_time


def _require(ok: bool, name: str, rule: str, value: object) -> None:
    if not ok:
        raise ValueError(f"{name} must be {rule}, got {value!r}")


class Pipe:
    """An unbounded, seeded stream of events, delivered in arrival order.

    Iterating a pipe starts a fresh generator from the seed, so the same pipe
    always yields the same events; the generator never ends. Events happen as a
    Poisson process at ``rate`` events per second spread over ``keys`` keys;
    each arrives ``disorder`` or less after it happened (uniformly, or with
    ``delays="long_tail"`` mostly soon and a few much later), so with
    ``disorder > 0`` events arrive out of event-time order.

    Build one with :func:`pipe`; parameters are checked there.
    """

    def __init__(
        self,
        seed: int,
        rate: float,
        keys: int,
        distribution: Distribution,
        mean: float,
        spread: float,
        disorder: timedelta,
        missing: float,
        start: datetime,
        delays: Delays = "uniform",
    ) -> None:
        self.seed = seed
        self.rate = rate
        self.keys = keys
        self.distribution = distribution
        self.mean = mean
        self.spread = spread
        self.disorder = disorder
        self.missing = missing
        self.start = start
        self.delays = delays
        width = len(str(keys - 1))
        self.key_names = [f"store-{i:0{width}d}" for i in range(keys)]

    def __repr__(self) -> str:
        return (
            f"pipe(seed={self.seed}, rate={self.rate:g}/s, keys={self.keys}, "
            f"{self.distribution}(mean={self.mean:g}, spread={self.spread:g}), "
            f"disorder={self.disorder.total_seconds():g}s"
            + (f" ({self.delays})" if self.delays != "uniform" else "")
            + f", missing={self.missing:g})"
        )

    def __len__(self) -> int:
        raise TypeError("a pipe has no length: there is no last event (cut a pile with take())")

    def _value_source(self, rng: random.Random):
        mean, spread = self.mean, self.spread
        if self.distribution == "normal":
            return lambda: rng.gauss(mean, spread)
        if self.distribution == "uniform":
            return lambda: rng.uniform(mean - spread, mean + spread)
        return lambda: rng.expovariate(1.0 / mean)

    def __iter__(self) -> Iterator[Event]:
        rng = random.Random(self.seed)
        draw_value = self._value_source(rng)
        names, keys, rate, missing = self.key_names, self.keys, self.rate, self.missing
        max_delay = self.disorder.total_seconds()
        if self.delays == "uniform":

            def draw_delay() -> float:
                return rng.uniform(0.0, max_delay)

        else:
            # Exponential delays, mean a tenth of `disorder`, cut at `disorder`: most
            # events arrive soon, a few (a flaky connection) much later, none later
            # than `disorder`. The cut holds only e^-10 of the mass.
            rate_of_delay = 1.0 / (LONG_TAIL_MEAN * max_delay) if max_delay else 0.0

            def draw_delay() -> float:
                return min(max_delay, rng.expovariate(rate_of_delay))
        clock = self.start
        # Events wait in a heap ordered by arrival time. An event can leave once
        # the clock (the event time of the newest event made) has passed its
        # arrival time: every later event arrives at or after its own event time.
        pending: list[tuple[datetime, int, Event]] = []
        for seq in itertools.count():
            clock += timedelta(seconds=rng.expovariate(rate))
            key = names[rng.randrange(keys)]
            value = round(draw_value(), 2)
            if missing and rng.random() < missing:
                value = None
            arrival = clock + timedelta(seconds=draw_delay()) if max_delay else clock
            while pending and pending[0][0] <= clock:
                yield heapq.heappop(pending)[2]
            if max_delay:
                heapq.heappush(pending, (arrival, seq, Event(key, value, clock, arrival)))
            else:
                yield Event(key, value, clock, arrival)


def pipe(
    seed: int = 0,
    *,
    rate: float = 10.0,
    keys: int = 5,
    distribution: Distribution = "normal",
    mean: float = 20.0,
    spread: float = 5.0,
    disorder: timedelta | float = 0.0,
    missing: float = 0.0,
    start: datetime = COURSE_START,
    delays: Delays = "uniform",
) -> Pipe:
    """Describe an unbounded, seeded stream of sales events.

    :param seed: the same seed gives the same events, every time.
    :param rate: mean events per second (a Poisson process); > 0.
    :param keys: how many keys (stores) the events are spread over; >= 1.
    :param distribution: of the values: ``"normal"`` (``spread`` is the standard
        deviation), ``"uniform"`` (``mean ± spread``) or ``"exponential"``.
    :param mean: mean value (must be > 0 for ``"exponential"``).
    :param spread: >= 0; see ``distribution``.
    :param disorder: the longest an event may take to arrive after it happened,
        as a timedelta or in seconds; >= 0. Zero means events arrive as they happen.
    :param missing: the fraction of events whose value is missing (``None``),
        to exercise the handling of bad data; 0 to 1.
    :param start: timezone-aware UTC time the clock starts at.
    :param delays: how the delays (up to ``disorder``) are spread: ``"uniform"``,
        or ``"long_tail"``: exponential with mean ``disorder / 10``, cut at
        ``disorder``, so most events arrive soon and a few take much longer,
        like sales from a till whose connection drops now and then.

    >>> pipe(rate=-1)
    Traceback (most recent call last):
    ...
    ValueError: rate must be a finite number > 0 (events per second), got -1
    """
    _require(isinstance(seed, int) and not isinstance(seed, bool), "seed", "an int", seed)
    _require(
        _is_number(rate) and math.isfinite(rate) and rate > 0,
        "rate", "a finite number > 0 (events per second)", rate,
    )
    _require(
        isinstance(keys, int) and not isinstance(keys, bool) and keys >= 1,
        "keys", "an int >= 1", keys,
    )
    _require(distribution in DISTRIBUTIONS, "distribution", f"one of {DISTRIBUTIONS}", distribution)
    _require(_is_number(mean) and math.isfinite(mean), "mean", "a finite number", mean)
    _require(_is_number(spread) and math.isfinite(spread) and spread >= 0, "spread", "a finite number >= 0", spread)
    if distribution == "exponential":
        _require(mean > 0, "mean", "> 0 for the exponential distribution", mean)
    disorder_td = duration("disorder", disorder)
    _require(disorder_td >= timedelta(0), "disorder", ">= 0", disorder)
    _require(_is_number(missing) and 0.0 <= missing <= 1.0, "missing", "a fraction from 0 to 1", missing)
    check_utc("start", start)
    _require(delays in DELAYS, "delays", f"one of {DELAYS}", delays)
    return Pipe(
        seed, float(rate), keys, distribution, float(mean), float(spread), disorder_td, float(missing), start,
        delays,
    )


def duration(name: str, value: timedelta | float) -> timedelta:
    """A timedelta from a timedelta or a number of seconds; the error names ``name``.

    >>> duration("disorder", 2.5)
    datetime.timedelta(seconds=2, microseconds=500000)
    >>> duration("disorder", float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: disorder must be a timedelta or seconds, got nan
    """
    if isinstance(value, timedelta):
        return value
    _require(_is_number(value) and math.isfinite(value), name, "a timedelta or seconds", value)
    return timedelta(seconds=value)


def pile_frame(
    events: Iterable | pd.DataFrame,
    *,
    limit: int | None = None,
    until: datetime | None = None,
    frame: Callable[[Iterable], pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """A pile as a DataFrame, as every batch driver takes it.

    A DataFrame is a pile already and is returned as it is; anything else is
    cut by ``limit``/``until`` (see :func:`bounded`) and turned into a frame by
    ``frame`` (by default :func:`to_frame`).
    """
    if isinstance(events, pd.DataFrame):
        if limit is not None or until is not None:
            raise ValueError("limit= and until= cut a pipe; a DataFrame is already a finite pile")
        return events
    return (frame or to_frame)(bounded(events, limit=limit, until=until))


def _is_number(x: object) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def take(events: Iterable[Event], limit: int) -> list[Event]:
    """Cut a pile of the first ``limit`` events to arrive.

    >>> len(take(pipe(), 4))
    4
    """
    return list(bounded(events, limit=limit))


def arrived_before(events: Iterable[Event], until: datetime) -> list[Event]:
    """Cut a pile of every event that arrived strictly before ``until``.

    ``events`` must be in arrival order (a :class:`Pipe` is), so the cut can
    stop at the first event that arrives later, and an unbounded pipe ends.

    >>> from datetime import timedelta
    >>> pile = arrived_before(pipe(rate=5.0), COURSE_START + timedelta(seconds=2))
    >>> all(e.arrival_time < COURSE_START + timedelta(seconds=2) for e in pile)
    True
    """
    return list(bounded(events, until=until))


def bounded(
    events: Iterable[Event], *, limit: int | None = None, until: datetime | None = None
) -> Iterable[Event]:
    """Bound ``events`` by a count (``limit``), an arrival horizon (``until``), or both.

    An unbounded :class:`Pipe` must be given at least one bound, so that no
    computation over it can run forever; a finite iterable may be given none.

    >>> bounded(pipe())
    Traceback (most recent call last):
    ...
    ValueError: a pipe never ends: pass limit= (an event count) or until= (an arrival time)
    """
    if limit is None and until is None:
        if isinstance(events, Pipe):
            raise ValueError(
                "a pipe never ends: pass limit= (an event count) or until= (an arrival time)"
            )
        return events
    if until is not None:
        check_utc("until", until)
    if limit is not None:
        _require(isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0, "limit", "an int >= 0", limit)
    return Bounded(events, limit, until)


class Bounded:
    """Events cut by a count and/or an arrival horizon; iterable afresh if the source is."""

    def __init__(self, events: Iterable[Event], limit: int | None, until: datetime | None) -> None:
        self.events, self.limit, self.until = events, limit, until

    def __iter__(self) -> Iterator[Event]:
        it: Iterator[Event] = iter(self.events)
        if self.until is not None:
            until = self.until
            it = itertools.takewhile(lambda e: e.arrival_time < until, it)
        if self.limit is not None:
            it = itertools.islice(it, self.limit)
        return it


def sort_by_arrival(events: Iterable[Event]) -> list[Event]:
    """Return the events in the order a stream would see them: by arrival time.

    Ties keep their given order (the sort is stable).
    """
    return sorted(events, key=lambda e: e.arrival_time)


FRAME_COLUMNS = ("key", "value", "event_time", "arrival_time")


def to_frame(pile: Iterable[Event]) -> pd.DataFrame:
    """Turn a pile of events into a DataFrame, one row per event, in pile order.

    Missing values become NaN; keys are categorical; times are ``datetime64[ns, UTC]``.

    >>> to_frame(take(pipe(), 2)).columns.tolist()
    ['key', 'value', 'event_time', 'arrival_time']
    """
    if isinstance(pile, Pipe):
        raise TypeError("to_frame needs a finite pile: cut one from the pipe with take() or arrived_before()")
    keys, values, happened, arrived = [], [], [], []
    for e in pile:
        keys.append(e.key)
        values.append(math.nan if e.value is None else e.value)
        happened.append(e.event_time)
        arrived.append(e.arrival_time)
    return pd.DataFrame(
        {
            # Few distinct keys, many rows: a categorical is how pandas wants them.
            "key": pd.Series(pd.Categorical(keys)),
            "value": pd.Series(values, dtype="float64"),
            "event_time": pd.Series(pd.DatetimeIndex(happened, tz="UTC"), dtype="datetime64[ns, UTC]"),
            "arrival_time": pd.Series(pd.DatetimeIndex(arrived, tz="UTC"), dtype="datetime64[ns, UTC]"),
        }
    )
