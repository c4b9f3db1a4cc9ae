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
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import pandas as pd

__all__ = [
    "COURSE_START",
    "Event",
    "Pipe",
    "arrived_before",
    "pipe",
    "sort_by_arrival",
    "bounded",
    "check_key",
    "finite",
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

# Upper bounds, so that no parameter can make a cell hang or eat the memory; each error names it.
#: The times pandas can hold (nanoseconds in 64 bits): every time an event carries must fit.
EARLIEST = pd.Timestamp.min.ceil("us").tz_localize("UTC").to_pydatetime()
LATEST = pd.Timestamp.max.floor("us").tz_localize("UTC").to_pydatetime()
#: Largest value an event may carry, in size: a sum of many such values must not overflow to infinity.
MAX_VALUE = 1e300
#: Most keys (stores, customers) a generator spreads its events over.
MAX_KEYS = 1_000_000
#: Most events per second: times are kept to the microsecond.
MAX_RATE = 1_000_000.0
#: Fewest events per second: one in about twelve days on average.
MIN_RATE = 1e-6
#: Most events a generator may hold back at once to deliver them late (about rate × disorder).
MAX_HELD = 100_000
#: Longest duration any parameter may be: a hundred years.
MAX_DURATION = timedelta(days=36_525)
#: Most events a cut (``limit``) may ask for; more would run for hours.
MAX_LIMIT = 10**9
#: Most events a cut by ``until`` alone may read: more, and it must be given a ``limit`` too.
MAX_UNTIL_EVENTS = 1_000_000
#: Most events handed to a dataflow at a time (a batch is held in memory).
MAX_BATCH_SIZE = 1_000_000


def check_utc(field: str, value: object) -> datetime:
    """Return ``value`` if it is a timezone-aware UTC datetime, else raise naming ``field``.

    >>> check_utc("event_time", datetime(2026, 3, 1))
    Traceback (most recent call last):
    ...
    ValueError: event_time must be timezone-aware UTC, got naive datetime 2026-03-01 00:00:00
    """
    if not isinstance(value, datetime):
        raise TypeError(f"{field} must be a datetime, got {type(value).__name__} {value!r}")
    if value is pd.NaT:  # a datetime subclass that is no time at all
        raise ValueError(f"{field} must be a time, got NaT (not a time)")
    offset = value.utcoffset()
    if offset is None:
        raise ValueError(f"{field} must be timezone-aware UTC, got naive datetime {value}")
    if offset != timedelta(0):
        raise ValueError(f"{field} must be in UTC, got offset {offset} in {value.isoformat()}")
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"{field} must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (what pandas can hold), "
                         f"got {value.isoformat()}")
    return value


def check_key(field: str, value: object) -> str:
    """Return ``value`` if it is a non-empty string that can be written as UTF-8, else raise naming ``field``.

    >>> check_key("key", "abc" + chr(0xD800))
    Traceback (most recent call last):
    ...
    ValueError: key must be valid Unicode text (encodable as UTF-8), got 'abc\ud800'
    """
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field} must be a non-empty string, got {value!r:.80}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no file, frame or log can hold it
        raise ValueError(f"{field} must be valid Unicode text (encodable as UTF-8), got {value!r:.80}") from None
    return value


def _finite(x: object) -> bool:
    """A real number (not a bool) that is finite as a float; an int too large for a float is not."""
    if not _is_number(x):
        return False
    try:
        return math.isfinite(x)  # type: ignore[arg-type]
    except OverflowError:
        return False


def _in_float_range(x: float) -> bool:
    """A real number a float can hold (NaN and infinities included); an int of 400 digits is not."""
    try:
        float(x)
    except OverflowError:
        return False
    return True


def _describe(x: object) -> str:
    """A short repr: an int of 400 digits is named by its size, not printed."""
    if isinstance(x, int) and not isinstance(x, bool) and x.bit_length() > 64:
        return f"an int of about {int(x.bit_length() * 0.30103)} digits"
    return f"{x!r:.80}"


def check_count(name: str, value: object, minimum: int, maximum: int, unit: str = "") -> int:
    """An int from ``minimum`` to ``maximum``, else a ValueError naming ``name`` and the value."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {_describe(value)}")
    if value > maximum:
        raise ValueError(f"{name} must be at most {maximum:,}{unit}, got {_describe(value)}")
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
        check_key("key", self.key)
        value = self.value
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, numbers.Real)
        ):
            raise TypeError(
                f"value must be a number or None, got {type(value).__name__} {value!r:.80}"
            )
        if value is not None and not _in_float_range(value):
            raise ValueError(f"value must be within the range of a float (about ±1.8e308), got {_describe(value)}")
        if value is not None and MAX_VALUE < abs(float(value)) < math.inf:  # NaN and infinities pass: routed aside later
            raise ValueError(f"value must be at most {MAX_VALUE:g} in size, so that sums stay finite, got {_describe(value)}")
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

    #: Events made per tick of the rate (an order pipe's rate counts orders, each up to three events).
    events_per_step = 1.0

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
    check_rate("rate", rate, "events per second")
    check_count("keys", keys, 1, MAX_KEYS)
    _require(_hashable(distribution) and distribution in DISTRIBUTIONS, "distribution", f"one of {DISTRIBUTIONS}",
             distribution)
    # Values are drawn as floats: a mean or spread near the float limit would overflow when drawn.
    _require(_finite(mean), "mean", "a finite number", mean)
    _require(_finite(spread) and spread >= 0, "spread", "a finite number >= 0", spread)
    for name, size in (("mean", mean), ("spread", spread)):
        # Far below MAX_VALUE: a value drawn many spreads from the mean must still be one an event may carry.
        _require(abs(size) <= 1e200, name, "at most 1e200 in size (values are drawn as floats)", size)
    if distribution == "exponential":
        _require(mean > 0, "mean", "> 0 for the exponential distribution", mean)
    disorder_td = check_disorder(disorder, rate)
    _require(_is_number(missing) and 0.0 <= missing <= 1.0, "missing", "a fraction from 0 to 1", missing)
    check_utc("start", start)
    _require(_hashable(delays) and delays in DELAYS, "delays", f"one of {DELAYS}", delays)
    return Pipe(
        seed, float(rate), keys, distribution, float(mean), float(spread), disorder_td, float(missing), start,
        delays,
    )


def duration(name: str, value: timedelta | float) -> timedelta:
    """A timedelta from a timedelta or a number of seconds, at most a hundred years either way; the error names ``name``.

    >>> duration("disorder", 2.5)
    datetime.timedelta(seconds=2, microseconds=500000)
    >>> duration("disorder", float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: disorder must be a timedelta or seconds, got nan
    """
    if not isinstance(value, timedelta):
        _require(_finite(value), name, "a timedelta or seconds", value)
        if abs(value) > MAX_DURATION.total_seconds():  # type: ignore[arg-type]
            raise ValueError(f"{name} must be at most {MAX_DURATION.days:,} days (a hundred years) either way, "
                             f"got {_describe(value)} seconds")
        value = timedelta(seconds=float(value))  # type: ignore[arg-type]  # float: numpy ints, fractions
    if abs(value) > MAX_DURATION:
        raise ValueError(f"{name} must be at most {MAX_DURATION.days:,} days (a hundred years) either way, got {value!r}")
    return value


def check_rate(name: str, rate: object, unit: str) -> float:
    """A rate per second: a finite number > 0 and at most :data:`MAX_RATE`; the error names ``name``."""
    _require(_finite(rate) and rate > 0, name, f"a finite number > 0 ({unit})", rate)  # type: ignore[operator]
    if rate < MIN_RATE:  # type: ignore[operator]
        # Slower, and the time to the first event would run past any datetime.
        raise ValueError(f"{name} must be at least {MIN_RATE:g} ({unit}), got {_describe(rate)}")
    if rate > MAX_RATE:  # type: ignore[operator]
        raise ValueError(f"{name} must be at most {MAX_RATE:,.0f} ({unit}; times are kept to the microsecond), "
                         f"got {_describe(rate)}")
    return float(rate)  # type: ignore[arg-type]


def check_disorder(disorder: object, rate: object, events_per_step: float = 1.0) -> timedelta:
    """``disorder`` as a timedelta >= 0, short enough that a generator holds back at most :data:`MAX_HELD` events."""
    disorder_td = duration("disorder", disorder)  # type: ignore[arg-type]
    _require(disorder_td >= timedelta(0), "disorder", ">= 0", disorder)
    held = disorder_td.total_seconds() * float(rate) * events_per_step  # type: ignore[arg-type]
    if held > MAX_HELD:
        raise ValueError(
            f"disorder must be short enough for the rate: {disorder_td.total_seconds():g} s at {float(rate):g} "  # type: ignore[arg-type]
            f"per second holds back about {held:,.0f} events at once, more than {MAX_HELD:,}; lower disorder or rate"
        )
    return disorder_td


def _hashable(x: object) -> bool:
    try:
        hash(x)
    except TypeError:
        return False
    return True


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

    Anything whose end is not known in advance, a :class:`Pipe` or any other
    iterator or generator, must be given at least one bound, so that no
    computation over it can run forever; a collection with a length (a list)
    may be given none.

    >>> bounded(pipe())
    Traceback (most recent call last):
    ...
    ValueError: a pipe never ends: pass limit= (an event count) or until= (an arrival time)
    >>> bounded(iter([]))
    Traceback (most recent call last):
    ...
    ValueError: events is an iterator (list_iterator) that may never end: pass limit= (an event count) or until= (an arrival time), or a list
    """
    if limit is None and until is None:
        return finite(events, "pass limit= (an event count) or until= (an arrival time)")
    _check_iterable(events)
    if until is not None:
        check_utc("until", until)
    if limit is not None:
        check_count("limit", limit, 0, MAX_LIMIT)
    elif isinstance(events, Pipe):
        # A horizon centuries away would have the pipe make events for hours: count them first.
        expected = (until - events.start).total_seconds() * events.rate * events.events_per_step  # type: ignore[operator]
        if expected > MAX_UNTIL_EVENTS:
            raise ValueError(
                f"until is too far for this pipe: about {expected:,.0f} events would arrive before it, more than "
                f"{MAX_UNTIL_EVENTS:,}; pass limit= as well, or an earlier until"
            )
    return Bounded(events, limit, until)


def finite(events: Iterable[Any], hint: str = "cut it first with take() or arrived_before()") -> Iterable[Any]:
    """Return ``events`` if it is known to end (a collection with a length, or a cut), else refuse it.

    The same rule for a :class:`Pipe` and for any other iterator: a generator
    may never end, and reading it whole would hang while memory grows.
    """
    if isinstance(events, Pipe):
        raise ValueError(f"a pipe never ends: {hint}")
    _check_iterable(events)
    if isinstance(events, (Sized, Finite)):
        return events
    raise ValueError(
        f"events is an iterator ({type(events).__name__}) that may never end: {hint}, or a list"
    )


def _check_iterable(events: object) -> None:
    if isinstance(events, (str, bytes)) or not isinstance(events, Iterable):
        raise TypeError(f"events must be a pipe or an iterable of events (a list), got {type(events).__name__} "
                        f"{events!r:.60}")


class Finite:
    """An iterable known to end, though it has no length: a cut, or a check over one (see :func:`bounded`)."""


class Bounded(Finite):
    """Events cut by a count and/or an arrival horizon; iterable afresh if the source is."""

    def __init__(self, events: Iterable[Event], limit: int | None, until: datetime | None) -> None:
        self.events, self.limit, self.until = events, limit, until

    def __iter__(self) -> Iterator[Event]:
        it: Iterator[Event] = iter(self.events)
        if self.until is not None:
            until = self.until
            it = itertools.takewhile(lambda e: _arrived_before(e, until), it)
            if self.limit is None:
                # An iterator whose events never arrive at until (one that repeats, or is not in
                # arrival order) would never end: stop it, and say so.
                return _at_most(it, MAX_UNTIL_EVENTS)
        if self.limit is not None:
            it = itertools.islice(it, self.limit)
        return it


def _at_most(it: Iterator[Event], most: int) -> Iterator[Event]:
    for n, event in enumerate(it):
        if n == most:
            raise ValueError(
                f"until= was not reached after {most:,} events (an iterator that never arrives there, or a "
                f"horizon very far away): pass limit= as well"
            )
        yield event


def _arrived_before(event: object, until: datetime) -> bool:
    try:
        return event.arrival_time < until  # type: ignore[attr-defined]
    except AttributeError:
        raise TypeError(f"until= cuts events by their arrival_time; got {type(event).__name__} {event!r:.60}") from None


def sort_by_arrival(events: Iterable[Event]) -> list[Event]:
    """Return the events in the order a stream would see them: by arrival time.

    Ties keep their given order (the sort is stable).
    """
    try:
        return sorted(finite(events), key=lambda e: e.arrival_time)
    except AttributeError:
        raise TypeError(f"events must be events (each with an arrival_time), got {events!r:.60}") from None


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
    # Any iterable (a generator over a pile is natural); each item is checked, so a wrong one fails at once.
    _check_iterable(pile)
    for position, e in enumerate(pile):
        if not isinstance(e, Event):
            raise TypeError(f"event {position} must be an Event, got {type(e).__name__} {e!r:.60}")
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
