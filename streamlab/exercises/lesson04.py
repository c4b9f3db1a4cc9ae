"""Checks for the exercises of lesson 04, time and windows.

1. ``late_sales``: a function ``late_sales(events, delay)`` saying which sales
   of a list (in arrival order) a stream waiting ``delay`` sets aside as late.
2. ``smallest_delay``: a function ``smallest_delay(events, window, key, start)``
   returning the shortest delay for which the stream's answer for one window
   equals the batch answer.
3. ``takings``: a function ``takings(pile, window)`` computing with pandas, per
   store and tumbling window, the count and sum of the sales: the batch answer,
   checked against the stream's answer when nothing is late.
4. ``late_contribution``: a function ``late_contribution(events, window, delay)``
   returning, per store and window, the count and sum of the late sales; the
   check then proves batch = stream + late with it.

The right answers come from the library (:mod:`streamlab.batch`,
:mod:`streamlab.stream`). The check data
are the lesson's (its hand trace, its half hour of shop sales) and fresh
traces: other seeds, other window lengths and alignments, and traces on whole
seconds where ties (a sale exactly at the watermark, exactly on a window's
boundary) happen. Each check computes a few typical wrong answers on the same
data, to say which mistake it sees.

>>> late_sales(lambda events, delay: []).status
'wrong'
"""

from __future__ import annotations

import functools
import math
import numbers
import random
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple, NoReturn

import numpy as np
import pandas as pd

from streamlab import batch, stream
from streamlab.events import COURSE_START, Event, Pipe, arrived_before, pipe, to_frame
from streamlab.exercises import Feedback, Mistake, checker, correct
from streamlab.windows import Tumbling

__all__ = [
    "NINE",
    "half_hour",
    "hand_trace",
    "late_contribution",
    "late_sales",
    "smallest_delay",
    "takings",
]

#: The hand trace's clock: its times are seconds after 09:00:00 UTC, 1 March 2026.
NINE = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)

# The lesson's hand trace: (store, amount, happened, arrived), seconds after NINE.
_HAND_TRACE = (
    ("store-1", 10.0, 1, 2), ("store-2", 7.0, 3, 3), ("store-1", 20.0, 4, 5),
    ("store-1", 5.0, 12, 13), ("store-1", 8.0, 6, 14), ("store-1", 4.0, 9, 15),
    ("store-1", 1.0, 17, 18), ("store-1", 30.0, 8, 20), ("store-2", 9.0, 22, 24),
    ("store-2", 6.0, 11, 25), ("store-1", 2.0, 26, 27), ("store-2", 1.0, 28, 29),
)

NAIVE = (
    "a naive datetime (one without a timezone) crept into your code: every time in the course is "
    "timezone-aware UTC, and Python and pandas refuse to mix the two. Build times from the events' own "
    "times, from `start` or `window.align_to`, or with tzinfo=timezone.utc (pd.to_datetime(..., utc=True))."
)


def hand_trace() -> list[Event]:
    """The lesson's twelve sales of two stores, in arrival order (a fresh list each call).

    >>> [e.key for e in hand_trace()][:3]
    ['store-1', 'store-2', 'store-1']
    """
    return [
        Event(key, value, NINE + timedelta(seconds=happened), NINE + timedelta(seconds=arrived))
        for key, value, happened, arrived in _HAND_TRACE
    ]


def _half_hour_sales() -> Pipe:
    return pipe(seed=4, rate=2.0, keys=5, disorder=60, delays="long_tail")


@functools.lru_cache(maxsize=1)
def _half_hour() -> tuple[Event, ...]:
    return tuple(arrived_before(_half_hour_sales(), COURSE_START + timedelta(minutes=30)))


def half_hour() -> list[Event]:
    """The lesson's half hour of shop sales, in arrival order (a fresh list each call, free to change)."""
    return list(_half_hour())


@functools.lru_cache(maxsize=8)
def _ticks(seed: int, n: int, keys: int, most_behind: int) -> tuple[Event, ...]:
    """A trace on whole seconds: one sale arrives each second, most of them soon after they happened.

    Whole seconds make ties happen: a sale exactly at its store's watermark, a
    sale exactly on a window's boundary.
    """
    rng = random.Random(seed)
    names = [f"store-{i}" for i in range(keys)]
    events = []
    for i in range(1, n + 1):
        arrived = NINE + timedelta(seconds=i)
        behind = rng.randint(0, 2) if rng.random() < 0.6 else rng.randint(0, most_behind)
        events.append(Event(rng.choice(names), float(rng.randint(1, 40)), arrived - timedelta(seconds=behind), arrived))
    return tuple(events)


@functools.lru_cache(maxsize=4)
def _fresh_pipe(seed: int, minutes: int, keys: int, disorder: float, missing: float) -> tuple[Event, ...]:
    sales = pipe(seed=seed, rate=2.0, keys=keys, disorder=disorder, missing=missing)
    return tuple(arrived_before(sales, sales.start + timedelta(minutes=minutes)))


# -- shared helpers ----------------------------------------------------------------------------

def _per_trace(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Cache ``fn(events, *rest)`` by the identity of ``events``.

    The check data are built once and kept (so their identity is stable);
    hashing thousands of events at every call, as ``lru_cache`` would, is slow.
    """
    memo: dict[tuple, tuple[tuple[Event, ...], Any]] = {}

    @functools.wraps(fn)
    def cached(events: tuple[Event, ...], *rest: Any) -> Any:
        key = (id(events), *rest)
        hit = memo.get(key)
        if hit is None or hit[0] is not events:
            hit = memo[key] = (events, fn(events, *rest))
        return hit[1]

    return cached


@functools.lru_cache(maxsize=1)
def _hand() -> tuple[Event, ...]:
    return tuple(hand_trace())


def _is_naive_error(error: Exception) -> bool:
    text = str(error)
    return (
        "naive" in text
        or ("Invalid comparison between dtype=datetime64" in text
            and ("and datetime" in text or "and Timestamp" in text))
        or "must have the same timezone" in text
    )


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """Call the learner's function; a mix of naive and aware datetimes gets its own hint."""
    try:
        return fn(*args)
    except (TypeError, ValueError) as error:
        if _is_naive_error(error):
            raise Mistake(NAIVE) from None
        raise


def _seconds(td: timedelta) -> str:
    return f"{td.total_seconds():g} s"


def _frame(events: Iterable[Event]) -> pd.DataFrame:
    frame = to_frame(events)
    frame["key"] = frame["key"].astype("str")
    return frame


def _utc(values: Any, what: str) -> pd.Series:
    """Times as UTC timestamps; a naive time is a mistake of its own."""
    values = pd.Series(values).reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        raise Mistake(f"your {what} should hold datetimes; got numbers ({values.dtype}).")
    try:
        times = pd.Series(pd.to_datetime(values))
    except (TypeError, ValueError) as error:
        if _is_naive_error(error) or "mixed timezones" in str(error) or "Mixed timezones" in str(error):
            raise Mistake(NAIVE) from None
        raise Mistake(f"your {what} should hold datetimes; pandas could not read them as times ({error}).") from None
    if not isinstance(times.dtype, pd.DatetimeTZDtype):
        if pd.api.types.is_datetime64_dtype(times.dtype):
            raise Mistake(NAIVE)
        raise Mistake(f"your {what} should hold datetimes; got values of type {times.dtype}.")
    return times.dt.tz_convert("UTC").dt.as_unit("ns")


def _starts(times: Iterable[Any], window: Tumbling) -> pd.DatetimeIndex:
    """The start of the tumbling window each time falls in (the library's rule)."""
    starts = [window.starts_for(pd.Timestamp(t).to_pydatetime())[0] for t in times]
    return pd.DatetimeIndex(starts, tz="UTC", dtype="datetime64[ns, UTC]")


def _watermarks(frame: pd.DataFrame, delay: timedelta, *, per_key: bool = True, clock: str = "event_time") -> pd.Series:
    """The watermark each event meets, modelled (for wrong answers): latest ``clock`` seen before it − delay."""
    if per_key:
        latest = frame.groupby("key", sort=False)[clock].cummax()
        before = latest.groupby(frame["key"], sort=False).shift()
    else:
        before = frame[clock].cummax().shift()
    return before - delay


def _recognise(
    answers: list[Any], wants: list[Any], models: list[list[Any]], same: Callable[[Any, Any], bool],
) -> int | None:
    """Which typical mistake the learner made: the first model equal to their answer on *every* case.

    ``models[i][j]`` is the answer of mistake ``j`` on case ``i``. Matching on
    every case, not just the first that fails, tells apart two mistakes that
    happen to agree on one trace; a model equal to the right answer on every
    case is no mistake and is skipped.
    """
    for j in range(len(models[0])):
        mine = [case_models[j] for case_models in models]
        if all(same(a, m) for a, m in zip(answers, mine)) and not all(same(m, w) for m, w in zip(mine, wants)):
            return j
    return None


# -- 1. Which sales are late? ------------------------------------------------------------------

class _LateCase(NamedTuple):
    name: str
    events: tuple[Event, ...]
    delay: timedelta


def _late_cases() -> list[_LateCase]:
    return [
        _LateCase("the lesson's trace", _hand(), timedelta(seconds=5)),
        _LateCase("a trace on whole seconds", _ticks(41, 40, 3, 12), timedelta(seconds=3)),
        _LateCase("five minutes of a fresh pipe", _fresh_pipe(7, 5, 3, 20.0, 0.0), timedelta(seconds=2)),
    ]


def _as_event(row: tuple) -> Event:
    try:
        return Event(*row)
    except (TypeError, ValueError) as error:
        if _is_naive_error(error):
            raise Mistake(NAIVE) from None
        raise Mistake(f"a tuple in your answer is not a sale (key, value, event_time, arrival_time): {error}") from None


def _identity(events: Iterable[Event]) -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
    return [(e.key, pd.Timestamp(e.event_time), pd.Timestamp(e.arrival_time)) for e in events]


@_per_trace
def _library_late(events: tuple[Event, ...], delay: timedelta) -> np.ndarray:
    """Which events the library's rule (both drivers') sets aside as late, as a mask in list order."""
    return _mask_of(events, batch.windowed(events, Tumbling(60), delay=delay).late_events)


def _mask_of(events: tuple[Event, ...], late: pd.DataFrame) -> np.ndarray:
    marked = set(zip(late["key"], late["event_time"], late["arrival_time"]))
    mask = np.array([ident in marked for ident in _identity(events)], dtype=bool)
    mask.setflags(write=False)
    return mask


def _as_mask(answer: Any, events: tuple[Event, ...]) -> np.ndarray:
    """The learner's late sales as a mask over ``events``: a list of events, a DataFrame, or one bool per event."""
    if answer is None:
        raise Mistake("your function returned None: return the late sales.")
    if isinstance(answer, (str, bytes, Event)) or not isinstance(answer, (Iterable, pd.DataFrame)):
        raise Mistake(
            "return the late sales as a list of events, a DataFrame of them, or one True/False per sale; "
            f"got {type(answer).__name__}."
        )
    if isinstance(answer, pd.DataFrame):
        missing = {"key", "event_time", "arrival_time"} - set(answer.columns)
        if missing:
            raise Mistake(f"your DataFrame lacks the column(s) {sorted(missing)}: keep every field of the late sales.")
        rows = list(zip(
            answer["key"].astype("str"), _utc(answer["event_time"], "event_time column"),
            _utc(answer["arrival_time"], "arrival_time column"),
        ))
    else:
        items = list(answer.tolist() if isinstance(answer, (pd.Series, np.ndarray)) else answer)
        if items and all(isinstance(x, (bool, np.bool_)) for x in items):
            if len(items) != len(events):
                raise Mistake(
                    f"you returned {len(items)} True/False values for {len(events)} sales: give one per sale, in order."
                )
            return np.array(items, dtype=bool)
        # Events, or (key, value, event_time, arrival_time) tuples as the drivers accept them.
        odd = next((x for x in items if not isinstance(x, Event) and not (isinstance(x, tuple) and len(x) == 4)), None)
        if odd is not None:
            raise Mistake(
                "return the late sales themselves (Event objects), a DataFrame of them, or one True/False per "
                f"sale; your answer holds a {type(odd).__name__}."
            )
        rows = _identity(x if isinstance(x, Event) else _as_event(x) for x in items)
    position = {ident: i for i, ident in enumerate(_identity(events))}
    mask = np.zeros(len(events), dtype=bool)
    for row in rows:
        if row not in position:
            raise Mistake(f"your answer holds a sale that is not in the list given: {row[0]} at {row[1]:%H:%M:%S.%f}.")
        if mask[position[row]]:
            raise Mistake("your answer holds the same sale twice.")
        mask[position[row]] = True
    return mask


def _late_models(events: tuple[Event, ...], delay: timedelta) -> list[tuple[np.ndarray, str]]:
    """Typical wrong answers for "which sales are late", each with its hint."""
    f = _frame(events)
    et, delays = f["event_time"], f["arrival_time"] - f["event_time"]
    own = _watermarks(f, delay)
    key_max = f.groupby("key")["event_time"].transform("max")
    lateness = (
        "A sale is late when its event time is before its store's watermark at the moment it arrives: "
        "the latest event time seen *so far* from that store, minus `delay`."
    )
    took = (
        "you marked late the sales that took longer than `delay` to arrive. How long a sale took is not what "
        "decides. " + lateness
    )
    return [
        ((delays > delay).to_numpy(), took),
        ((delays >= delay).to_numpy(), took),
        ((et < _watermarks(f, delay, per_key=False)).to_numpy(),
         "your watermark mixes the stores. Each store (key) has its own watermark: the latest event time "
         "seen from *that* store so far, minus `delay`."),
        ((et <= own).to_numpy(),
         "you marked late a sale whose event time is exactly at the watermark. Late means *before* the "
         "watermark (`<`): a sale exactly at it is on time."),
        ((et < key_max - delay).to_numpy(),
         "your watermark knows the future: it uses the latest event time of the store in the whole list. "
         "When a sale arrives the stream has seen only the sales that arrived before it: go down the list in order."),
        ((et < _watermarks(f, delay, clock="arrival_time")).to_numpy(),
         "your watermark is made of arrival times. It is made of *event* times: the latest event time seen "
         "from the store so far, minus `delay`."),
        ((et < _watermarks(f, timedelta(0))).to_numpy(),
         "you forgot the delay: the watermark is the latest event time seen from the store so far *minus `delay`*."),
    ]


@checker
def late_sales(fn: Callable[[list[Event], timedelta], Any]) -> Feedback:
    """Check ``late_sales(events, delay)``: exactly the sales behind their store's watermark when they arrive."""
    cases = _late_cases()
    wants = [_library_late(case.events, case.delay) for case in cases]
    answers = [_as_mask(_call(fn, list(case.events), case.delay), case.events) for case in cases]
    wrong = [i for i, (got, want) in enumerate(zip(answers, wants)) if not np.array_equal(got, want)]
    if not wrong:
        return correct("you apply the watermark exactly as the stream does, on the lesson's trace and on fresh ones.")
    first = wrong[0]
    case, got, want = cases[first], answers[first], wants[first]
    if not got.any():
        raise Mistake(
            f"on {case.name} (delay {_seconds(case.delay)}) you marked no sale late, yet some are. Go down "
            "the list in the order given (arrival order): did you sort by event time first? Then no sale "
            "is ever behind one seen before it."
        )
    if np.array_equal(got, ~want):
        raise Mistake("you returned the sales that were on time: return the late ones.")
    models = [_late_models(c.events, c.delay) for c in cases]
    mistake = _recognise(answers, wants, [[m for m, _ in ms] for ms in models], np.array_equal)
    if mistake is not None:
        raise Mistake(models[first][mistake][1])
    extra, missed = int((got & ~want).sum()), int((want & ~got).sum())
    raise Mistake(
        f"on {case.name} (delay {_seconds(case.delay)}), {extra} sale(s) you marked late are on time and "
        f"{missed} late sale(s) are missing. Keep, per store, the latest event time seen so far; a sale is "
        "late if its event time is before that minus `delay`."
    )


# -- 2. The smallest delay for one window --------------------------------------------------------

class _DelayCase(NamedTuple):
    name: str
    events: tuple[Event, ...]
    window: Tumbling
    key: str
    start: datetime


@_per_trace
def _needed(events: tuple[Event, ...], window: Tumbling) -> dict[tuple[str, pd.Timestamp], timedelta]:
    """Per window, the shortest delay leaving none of its events late (from the library's late events at delay 0).

    With no delay every event behind the newest of its store seen before it is
    late, and its watermark says by how much: a delay that long makes it on time.
    """
    late = batch.windowed(events, window, delay=0).late_events
    behind = late["watermark"] - late["event_time"]
    needed: dict[tuple[str, pd.Timestamp], timedelta] = {}
    for key, start, gap in zip(late["key"], _starts(late["event_time"], window), behind):
        needed[key, start] = max(needed.get((key, start), timedelta(0)), gap.to_pytimedelta())
    return needed


class _Behind(NamedTuple):
    """Per event, as int64 nanoseconds: its times, how long it took, and how far it is behind."""

    key: np.ndarray
    event_time: np.ndarray
    arrival_time: np.ndarray
    took: np.ndarray
    behind: np.ndarray  # behind the newest sale of its store seen before it (0 if none)
    behind_any_store: np.ndarray  # behind the newest sale of any store seen before it


@_per_trace
def _behind(events: tuple[Event, ...]) -> _Behind:
    f = _frame(events)
    et = f["event_time"].dt.as_unit("ns").astype("int64")
    at = f["arrival_time"].dt.as_unit("ns").astype("int64")
    newest_of_store = et.groupby(f["key"]).cummax().groupby(f["key"]).shift()
    newest_of_any = et.cummax().shift()
    return _Behind(
        key=f["key"].to_numpy(dtype=object), event_time=et.to_numpy(), arrival_time=at.to_numpy(),
        took=(at - et).to_numpy(),
        behind=(newest_of_store - et).clip(lower=0).fillna(0).astype("int64").to_numpy(),
        behind_any_store=(newest_of_any - et).clip(lower=0).fillna(0).astype("int64").to_numpy(),
    )


def _ns(t: datetime | timedelta) -> int:
    return pd.Timestamp(t).value if isinstance(t, datetime) else pd.Timedelta(t).value


def _delay_models(case: _DelayCase) -> list[tuple[timedelta, str]]:
    """Typical wrong answers for "the smallest delay of one window", each with its hint."""
    f = _behind(case.events)
    start, length = _ns(case.start), _ns(case.window.length)
    end = start + length
    behind, behind_any_store, took = f.behind, f.behind_any_store, f.took
    mine = f.key == case.key

    def inside(times: np.ndarray, lo: int, hi: int, *, closed_end: bool = False) -> np.ndarray:
        return (times >= lo) & ((times <= hi) if closed_end else (times < hi))

    def most(values: np.ndarray, where: np.ndarray) -> timedelta:
        return pd.Timedelta(int(values[where].max()) if where.any() else 0).to_pytimedelta()

    et, at = f.event_time, f.arrival_time
    length_td = case.window.length
    window_hint = (
        f"your answer is for another window. The window from `start` covers [start, start + {_seconds(length_td)}): "
        "it includes its start, not its end."
    )
    return [
        (most(took, mine & inside(et, start, end)),
         "you waited as long as the slowest sale of the window took to arrive. That is always enough, but "
         "more than needed: what makes a sale late is how far its event time is behind the newest sale of its "
         "store *already seen* when it arrives."),
        (most(behind, mine), "your delay makes every sale of the store on time, in every window. Sales late in "
         "other windows don't change this window's answer: look only at the sales of this window."),
        (most(behind_any_store, mine & inside(et, start, end)),
         "you measured how far each sale is behind the newest sale of *any* store. Each store has its own "
         "watermark: compare a sale with the newest sale of its own store seen before it."),
        (most(behind, inside(et, start, end)),
         f"you looked at the sales of every store in that time range: the window asked for is {case.key}'s."),
        (most(behind, mine & inside(et, start - length, start)), window_hint),
        (most(behind, mine & inside(et, end, end + length)), window_hint),
        (most(behind, mine & inside(et, start, end, closed_end=True)),
         "a sale exactly at the window's end belongs to the next window: a window includes its start, not its end."),
        (most(behind, mine & inside(at, start, end)),
         "you picked the window's sales by arrival time. A window holds the sales that *happened* in it "
         "(event_time), whenever they arrived."),
    ]


def _delay_cases() -> list[_DelayCase]:
    return [*_lesson_windows(), *_chosen_windows()]


def _lesson_windows() -> list[_DelayCase]:
    trace = _hand()
    ten = Tumbling(10, align_to=NINE)
    return [
        _DelayCase("the lesson's trace", trace, ten, "store-1", NINE),
        _DelayCase("the lesson's trace", trace, ten, "store-2", NINE + timedelta(seconds=10)),
        _DelayCase("the lesson's trace", trace, ten, "store-1", NINE + timedelta(seconds=10)),
    ]


def _answers(case: _DelayCase) -> list[timedelta]:
    """The right answer for a window, then each typical mistake's."""
    needed = _needed(case.events, case.window).get((case.key, pd.Timestamp(case.start)), timedelta(0))
    return [needed, *(answer for answer, _ in _delay_models(case))]


@functools.lru_cache(maxsize=1)
def _chosen_windows() -> tuple[_DelayCase, ...]:
    """Windows of fresh traces chosen so that each typical mistake gives an answer of its own somewhere.

    Greedy, from the lesson's windows: add the fresh window that tells apart the
    most pairs of answers (the right one and the mistakes') not yet told apart,
    until none is left or no window helps; at least one window per fresh trace.
    """
    fresh = [
        ("a trace on whole seconds", _ticks(52, 60, 3, 12), Tumbling(10, align_to=NINE + timedelta(seconds=4))),
        ("a trace on whole seconds", _ticks(53, 60, 2, 15), Tumbling(6, align_to=NINE + timedelta(seconds=1))),
        ("the lesson's half hour", _half_hour(), Tumbling(60)),
    ]
    candidates = [
        (trace, _DelayCase(name, events, window, key, start.to_pydatetime()))
        for trace, (name, events, window) in enumerate(fresh)
        for key, start in sorted(_needed(events, window))
    ]
    answers = [_answers(case) for _, case in candidates]
    n = len(answers[0])

    def apart(answers: list[timedelta]) -> set[tuple[int, int]]:
        return {(i, j) for i in range(n) for j in range(i + 1, n) if not _close(answers[i], answers[j])}

    pairs = [apart(a) for a in answers]
    told = set().union(*(apart(_answers(case)) for case in _lesson_windows()))
    chosen: list[int] = []
    while True:
        traces_left = {trace for trace, _ in candidates} - {candidates[i][0] for i in chosen}
        unused = [i for i in range(len(candidates)) if i not in chosen]
        if not unused:
            break
        # Most new pairs first; among equals, a window of a trace not used yet; then the earliest.
        best = max(unused, key=lambda i: (len(pairs[i] - told), candidates[i][0] in traces_left, -i))
        if not pairs[best] - told and not traces_left:
            break
        chosen.append(best)
        told |= pairs[best]
    return tuple(candidates[i][1] for i in sorted(chosen))


def _as_duration(answer: Any) -> timedelta:
    if answer is pd.NaT:
        raise Mistake("your delay is NaT: when no sale of the window is ever behind, the smallest delay is 0.")
    if isinstance(answer, (timedelta, pd.Timedelta)):
        td = pd.Timedelta(answer)
    elif isinstance(answer, np.timedelta64):
        td = pd.Timedelta(answer)
    elif isinstance(answer, numbers.Real) and not isinstance(answer, (bool, np.bool_)):
        if not math.isfinite(float(answer)):
            raise Mistake(f"your delay is {answer}: return a duration (a timedelta or a number of seconds).")
        td = pd.Timedelta(seconds=float(answer))
    else:
        raise Mistake(
            f"return the delay as a timedelta (or a number of seconds); got {type(answer).__name__} {answer!r}."
        )
    if td < pd.Timedelta(0):
        raise Mistake("your delay is negative: a watermark waits 0 s or more behind the newest event time.")
    return td.to_pytimedelta()


_TOLERANCE = timedelta(microseconds=1)


def _close(a: timedelta, b: timedelta) -> bool:
    return abs(a - b) <= _TOLERANCE


@checker
def smallest_delay(fn: Callable[[list[Event], Tumbling, str, datetime], Any]) -> Feedback:
    """Check ``smallest_delay(events, window, key, start)``: the shortest delay leaving no sale of the window late."""
    cases = _delay_cases()
    wants = [_needed(c.events, c.window).get((c.key, pd.Timestamp(c.start)), timedelta(0)) for c in cases]
    answers = [_as_duration(_call(fn, list(c.events), c.window, c.key, c.start)) for c in cases]
    wrong = [i for i, (got, want) in enumerate(zip(answers, wants)) if not _close(got, want)]
    if not wrong:
        return correct(
            "your delay is the smallest that makes the stream's answer equal the batch's, on every window tried."
        )
    first = wrong[0]
    case, got, want = cases[first], answers[first], wants[first]
    if all(a == timedelta(0) for a in answers):
        raise Mistake(
            "your delay is always 0 s, yet without waiting some sales of these windows are late: they arrive "
            "behind a newer sale of their store."
        )
    models = [_delay_models(c) for c in cases]
    mistake = _recognise(answers, wants, [[m for m, _ in ms] for ms in models], _close)
    if mistake is not None:
        raise Mistake(models[first][mistake][1])
    where = f"on {case.name}, for {case.key}'s window from {case.start:%H:%M:%S}"
    if got > want:
        if got - want <= timedelta(seconds=1):
            raise Mistake(
                f"{where}, your delay is a bit longer than needed. A sale exactly at the watermark is on time "
                "(late means *before* it), so the delay that makes the furthest-behind sale exactly on time is enough."
            )
        raise Mistake(f"{where}, a shorter delay than yours already gives the batch answer: look for the smallest.")
    late = batch.windowed(case.events, case.window, delay=got).late_events
    start = pd.Timestamp(case.start)
    in_window = sum(k == case.key and s == start for k, s in zip(late["key"], _starts(late["event_time"], case.window)))
    raise Mistake(
        f"{where}, with your delay {in_window} of the window's sales are still late, so the stream's answer "
        "is not the batch's: wait longer."
    )


# -- 3. The batch answer with pandas -----------------------------------------------------------

class _TableCase(NamedTuple):
    name: str
    events: tuple[Event, ...]
    window: Tumbling
    delay: timedelta = timedelta(0)


COLUMNS = ["key", "window_start", "count", "sum"]


def _table(answer: Any, what: str) -> pd.DataFrame:
    """The learner's windows as a frame: key, window_start (UTC), count, sum; sorted, empty windows dropped."""
    if answer is None:
        raise Mistake(f"your function returned None: return a DataFrame of {what}.")
    if isinstance(answer, pd.Series):
        raise Mistake(
            f"return a DataFrame with the columns {COLUMNS} (one row per store and window); you returned a Series "
            "(.agg(count=..., sum=...) gives both columns)."
        )
    if isinstance(answer, (list, tuple)):
        if answer and all(isinstance(row, tuple) and len(row) == 4 for row in answer):
            answer = pd.DataFrame(list(answer), columns=COLUMNS)
        else:
            answer = pd.DataFrame(list(answer))
    if not isinstance(answer, pd.DataFrame):
        raise Mistake(f"return a DataFrame with the columns {COLUMNS}; got {type(answer).__name__}.")
    frame = answer
    if isinstance(frame.columns, pd.MultiIndex):
        raise Mistake(
            "your DataFrame has two levels of column names (such as ('value', 'count')): aggregate one column, "
            "as in .groupby(...)['value'].agg(['count', 'sum']), to get plain `count` and `sum` columns."
        )
    if {"key", "window_start"} & set(n for n in frame.index.names if n):
        frame = frame.reset_index()
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        advice = " Group by key too: the answer is per store." if "key" in missing else ""
        if "window_start" in missing and "event_time" in frame.columns:
            advice += " Name the column of window starts `window_start`."
        raise Mistake(f"your DataFrame lacks the column(s) {missing}.{advice}")
    frame = frame.reset_index(drop=True)
    out = pd.DataFrame({
        "key": frame["key"].astype("str"),
        "window_start": _utc(frame["window_start"], "window_start column"),
        "count": pd.to_numeric(frame["count"], errors="coerce"),
        "sum": pd.to_numeric(frame["sum"], errors="coerce").astype("float64"),
    })
    if out["count"].isna().any() or (out["count"] % 1 != 0).any():
        raise Mistake("each count should be a whole number of sales.")
    out["count"] = out["count"].astype("int64")
    out = out[out["count"] != 0]  # an empty window: the stream says nothing, nor need you
    if out.duplicated(["key", "window_start"]).any():
        raise Mistake("a store's window appears twice in your answer: one row per store and window.")
    return out.sort_values(["key", "window_start"], ignore_index=True)


def _same_table(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    return (
        len(a) == len(b)
        and a["key"].tolist() == b["key"].tolist()
        and bool((a["window_start"].to_numpy() == b["window_start"].to_numpy()).all())
        and bool((a["count"].to_numpy() == b["count"].to_numpy()).all())
        and bool(np.allclose(a["sum"].to_numpy(), b["sum"].to_numpy(), rtol=1e-9, atol=1e-6))
    )


def _group(
    keys: Iterable[str], starts: Iterable[pd.Timestamp], values: Iterable[float], *, count: str = "count",
) -> pd.DataFrame:
    """Count and sum per key and window start, from parallel lists (``count="size"`` counts missing values too)."""
    frame = pd.DataFrame({"key": np.asarray(keys, dtype=object), "window_start": pd.DatetimeIndex(starts),
                          "value": np.asarray(values, dtype="float64")})
    table = frame.groupby(["key", "window_start"], sort=True)["value"].agg([count, "sum"]).reset_index()
    return _table(table.rename(columns={count: "count"}), "model")


def _shifted(table: pd.DataFrame, by: timedelta) -> pd.DataFrame:
    return table.assign(window_start=table["window_start"] + by)


@_per_trace
def _window_models(
    events: tuple[Event, ...], window: Tumbling, delay: timedelta | None,
) -> list[tuple[pd.DataFrame, str]]:
    """Typical wrong window tables: per key and window, count and sum of every sale (or the late ones).

    With ``delay`` None, of every sale; else of the sales a stream with that delay sets aside.
    """
    f = _frame(events)
    if delay is not None:
        f = f[_accounts(events, window, delay).late_mask]
    length = window.length
    right = _starts(f["event_time"], window)
    edge = timedelta(microseconds=1)
    alignment = (
        "your windows are not where the spec puts them: they start at `window.align_to` plus whole multiples "
        f"of the length ({_seconds(length)}), not at multiples of the length counted from midnight."
    )
    off_by_one = (
        "your windows are off by one: `window_start` is where a window begins, and an event at time t is in the "
        "window [start, start + length) with start <= t."
    )
    return [
        (_group(f["key"], _starts(f["arrival_time"], window), f["value"]),
         "you put each sale in the window of its *arrival* time. A window holds the sales that *happened* in it: "
         "use event_time."),
        (_group(f["key"], _starts(f["event_time"], Tumbling(length)), f["value"]), alignment),
        (_shifted(_group(f["key"], right, f["value"]), length), off_by_one),
        (_shifted(_group(f["key"], right, f["value"]), -length), off_by_one),
        (_group(f["key"], _starts(f["event_time"] - edge, window), f["value"]),
         "a sale exactly on a window's boundary went into the window before. A window includes its start, not "
         "its end: [start, start + length)."),
        (_group(f["key"], right, f["value"], count="size"),
         "you counted the sales with a missing amount (NaN). They cannot be counted: the drivers route them "
         "aside as rejected, so count only the sales that have an amount."),
    ]


def _takings_cases() -> list[_TableCase]:
    return [
        _TableCase("the lesson's half hour", _half_hour(), Tumbling(60)),
        _TableCase("ten minutes of a fresh pipe", _fresh_pipe(8, 10, 4, 20.0, 0.03),
                   Tumbling(20, align_to=COURSE_START + timedelta(seconds=7))),
        _TableCase("a trace on whole seconds", _ticks(64, 50, 3, 9), Tumbling(5, align_to=NINE + timedelta(seconds=2))),
    ]


@_per_trace
def _stream_complete(events: tuple[Event, ...], window: Tumbling) -> pd.DataFrame:
    """The stream's answer when it waits for the slowest sale, so that nothing is late: the complete answer."""
    slowest = max(e.arrival_time - e.event_time for e in events)
    answer = stream.windowed(events, window, delay=slowest)
    assert answer.n_late == 0
    return _table(answer.windows[COLUMNS], "windows")


@checker
def takings(fn: Callable[[list[Event], Tumbling], Any]) -> Feedback:
    """Check ``takings(pile, window)``: per store and window, count and sum equal the stream's, nothing late."""
    cases = _takings_cases()
    wants = [_stream_complete(c.events, c.window) for c in cases]
    answers = [_table(_call(fn, list(c.events), c.window), "windows") for c in cases]
    if all(_same_table(got, want) for got, want in zip(answers, wants)):
        return correct(
            "your pandas windows give exactly the stream's answer when nothing is late, on the lesson's half hour "
            "and on fresh pipes with other window lengths and alignments."
        )
    models = [_window_models(c.events, c.window, None) for c in cases]  # the same models, whatever the answer
    _table_hint(cases, answers, wants, models, late_only=False,
                what="the stream's answer (waiting long enough for nothing to be late)")


def _table_hint(
    cases: list[_TableCase], answers: list[pd.DataFrame], wants: list[pd.DataFrame],
    models: list[list[tuple[pd.DataFrame, str]]], *, late_only: bool, what: str,
) -> NoReturn:
    """Raise the hint for a wrong table of windows: a typical mistake if one matches, else what differs."""
    first = next(i for i, (got, want) in enumerate(zip(answers, wants)) if not _same_table(got, want))
    case, got, want = cases[first], answers[first], wants[first]
    if len(got) and not set(got["key"]) & set(want["key"]):
        raise Mistake(
            f"your keys are {sorted(set(got['key']))[:3]}: the answer is per store, with the stores' own keys."
        )
    mistake = _recognise(answers, wants, [[m for m, _ in ms] for ms in models], _same_table)
    if mistake is not None:
        raise Mistake(models[first][mistake][1])
    merged = want.merge(got, on=["key", "window_start"], how="outer", suffixes=("_want", "_got"), indicator=True)
    missing = int((merged["_merge"] == "left_only").sum())
    extra = int((merged["_merge"] == "right_only").sum())
    both = merged[merged["_merge"] == "both"]
    fewer = bool((both["count_got"] < both["count_want"]).any())
    more = bool((both["count_got"] > both["count_want"]).any())
    if not late_only and (missing or fewer) and not (extra or more):
        raise Mistake(
            f"on {case.name}, some sales are missing from your windows. A batch job has the whole pile: it counts "
            "every sale in the window it happened in, late or not."
        )
    same_count = both["count_got"] == both["count_want"]
    other_sum = same_count & ~np.isclose(both["sum_got"], both["sum_want"], rtol=1e-9, atol=1e-6)
    other = int((~same_count).sum() + other_sum.sum())
    raise Mistake(
        f"on {case.name} ({case.window.label}), your answer differs from {what}: {missing} window(s) missing, "
        f"{extra} window(s) too many, {other} with another count or sum."
    )


# -- 4. The late sales' contribution, per window -----------------------------------------------

def _contribution_cases() -> list[_TableCase]:
    return [
        _TableCase("the lesson's trace", _hand(), Tumbling(10, align_to=NINE), timedelta(seconds=5)),
        _TableCase("the lesson's half hour", _half_hour(), Tumbling(60), timedelta(seconds=5)),
        _TableCase("a trace on whole seconds", _ticks(75, 60, 3, 12),
                   Tumbling(10, align_to=NINE + timedelta(seconds=3)), timedelta(seconds=2)),
    ]


class _Accounts(NamedTuple):
    batch: pd.DataFrame
    stream: pd.DataFrame
    late: pd.DataFrame
    late_mask: np.ndarray  # which events were late, in list order


@_per_trace
def _accounts(events: tuple[Event, ...], window: Tumbling, delay: timedelta) -> _Accounts:
    """Both drivers' answers, and the late sales' contribution per window.

    The late sales are those the batch driver predicts for a stream with this
    delay: the same rule, proven equal to the stream's own in the library's
    tests (and by :func:`~streamlab.windows.reconcile` in this module's).
    """
    on_time = stream.windowed(events, window, delay=delay)
    everything = batch.windowed(events, window, delay=delay)
    late = everything.late_events
    accounts = _Accounts(
        batch=_table(everything.windows[COLUMNS], "windows"),
        stream=_table(on_time.windows[COLUMNS], "windows"),
        late=_group(late["key"], _starts(late["event_time"], window), late["value"]),
        late_mask=_mask_of(events, late),
    )
    _prove(accounts, accounts.late)
    return accounts


@_per_trace
def _contribution_models(
    events: tuple[Event, ...], window: Tumbling, delay: timedelta,
) -> list[tuple[pd.DataFrame, str]]:
    """Typical wrong late contributions: other lateness rules, batch − stream without the all-late windows."""
    accounts = _accounts(events, window, delay)
    f = _frame(events)
    et, took = f["event_time"], f["arrival_time"] - f["event_time"]
    starts = _starts(et, window)

    def by_rule(late: pd.Series) -> pd.DataFrame:
        keep = late.to_numpy(dtype=bool)
        return _group(f["key"][keep], starts[keep], f["value"][keep])

    rule = (
        "a sale is late when its event time is before its store's watermark (latest event time seen so far − delay)."
    )
    both = accounts.batch.merge(accounts.stream, on=["key", "window_start"], suffixes=("", "_s"))
    subtracted = both.assign(count=both["count"] - both["count_s"], sum=both["sum"] - both["sum_s"])[COLUMNS]
    return [
        (accounts.stream, "that is the stream's answer (the sales counted on time). Return what the late sales "
         "add: per store and window, how many were late and their total."),
        (accounts.batch, "that is the batch answer (every sale). Return only what the late sales add."),
        (_table(subtracted, "model"),
         "windows in which *every* sale was late are missing: the stream gives no answer at all for them, so "
         "batch − stream must count such a window's sales in full (a missing stream answer counts as 0)."),
        (by_rule(took > delay), "you took as late the sales that took longer than `delay` to arrive; " + rule),
        (by_rule(et < _watermarks(f, delay, per_key=False)),
         "your watermark mixes the stores: each store has its own watermark; " + rule),
        (by_rule(et <= _watermarks(f, delay)),
         "you counted as late a sale exactly at the watermark: late means *before* it (`<`), a sale at the "
         "watermark is on time."),
    ]


@checker
def late_contribution(fn: Callable[[list[Event], Tumbling, timedelta], Any]) -> Feedback:
    """Check ``late_contribution(events, window, delay)``: per window, the late sales' count and sum.

    With the right answer, batch = stream + late in every window: the check proves it.
    """
    cases = _contribution_cases()
    accounts = [_accounts(c.events, c.window, c.delay) for c in cases]
    wants = [a.late for a in accounts]
    answers = [_table(_call(fn, list(c.events), c.window, c.delay), "the late sales' contribution") for c in cases]
    if not all(_same_table(got, want) for got, want in zip(answers, wants)):
        models = [
            _contribution_models(c.events, c.window, c.delay) + _window_models(c.events, c.window, c.delay)
            for c in cases
        ]
        _table_hint(cases, answers, wants, models, late_only=True, what="the late sales' contribution")
    windows, with_late = _prove(accounts[1], answers[1])
    for account, answer in zip(accounts, answers):
        _prove(account, answer)
    return correct(
        f"batch = stream + your late contribution in all {windows} windows of the lesson's half hour "
        f"({with_late} of them with late sales), and in every window of the other traces."
    )


def _prove(accounts: _Accounts, late: pd.DataFrame) -> tuple[int, int]:
    """Check batch = stream + late window by window; return (windows, windows with late sales)."""
    keys = ["key", "window_start"]
    total = accounts.batch.merge(accounts.stream, on=keys, how="left", suffixes=("", "_stream")).merge(
        late, on=keys, how="left", suffixes=("", "_late")).fillna({"count_stream": 0, "sum_stream": 0.0,
                                                                    "count_late": 0, "sum_late": 0.0})
    assert (total["count"] == total["count_stream"] + total["count_late"]).all()
    assert np.allclose(total["sum"], total["sum_stream"] + total["sum_late"], rtol=1e-9, atol=1e-6)
    return len(total), int((total["count_late"] > 0).sum())
