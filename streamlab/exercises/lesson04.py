"""Checks for the exercises of lesson 04, time and windows, under the standard lateness rule.

1. ``late_sales``: a function ``late_sales(events, window, delay)`` saying which
   sales of a list (in arrival order) a stream sets aside, with a watermark per
   store moved only by that store's sales (the newest event time seen before the
   sale, minus ``delay``): those whose tumbling window had already closed (its
   end at or before the watermark) when they arrived.
2. ``late_answers``: the lesson's dataflow mapper, changed by the learner to keep
   closed windows for ``allowed`` lateness: ``windows(state, sale, length, delay,
   allowed, align_to)`` for ``op.stateful_flat_map``, emitting ``"answer"``,
   ``"late answer"`` (the corrected whole total) and ``"dropped"`` items. The
   check runs it in a bytewax dataflow and compares with the engine, then proves
   batch = the dataflow's last answers + its dropped sales.
3. ``takings``: a function ``takings(pile, window)`` computing with pandas, per
   store and tumbling window, the count and sum of the sales: the batch answer,
   checked against the stream's answer when nothing is late.
4. ``dropped_contribution``: a function ``dropped_contribution(events, window,
   delay)`` returning, per store and window, the count and sum of the sales the
   stream of exercise 1 drops; the check then proves batch = stream + dropped with it.

The right answers come from the library's windowing engine
(:func:`streamlab.panes.loop`, the same answers as :func:`streamlab.stream.panes`)
and from :func:`streamlab.batch.panes`. The check data are the lesson's (its hand
trace, its half hour of shop sales) and fresh traces: other seeds, other window
lengths and alignments, and traces on whole seconds where ties happen (a window's
end exactly at the watermark, exactly at end + allowed lateness, a sale exactly
on a window's boundary). Each check computes typical wrong answers on the same
data, to say which mistake it sees; a hint never shows the expected answer.

>>> late_sales(lambda events, window, delay: []).status
'wrong'
"""

from __future__ import annotations

import functools
import random
import warnings
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple, NoReturn

import bytewax.operators as op
import numpy as np
import pandas as pd

from streamlab import batch, stream
from streamlab.events import COURSE_START, Event, Pipe, arrived_before, pipe, to_frame
from streamlab.exercises import Feedback, Mistake, checker, correct
from streamlab.exercises.differ import Case, Exercise, Known, Raised, bag, resuming, same, show_events, show_time
from streamlab.panes import Delay, loop, reconcile
from streamlab.windows import Tumbling

__all__ = [
    "NINE",
    "dropped_contribution",
    "half_hour",
    "hand_trace",
    "late_answers",
    "late_sales",
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
    "times, from the window's align_to, or with tzinfo=timezone.utc (pd.to_datetime(..., utc=True))."
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


@functools.lru_cache(maxsize=32)  # every trace of every check: their identity must last
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
        with warnings.catch_warnings():  # pandas warns when it guesses a format: the error below says it better
            warnings.simplefilter("ignore", UserWarning)
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
    """The watermark each event meets, modelled: the latest ``clock`` seen before it (per store or not) − delay.

    NaT for an event that meets no watermark yet (comparisons with NaT are False: never late).
    """
    if per_key:
        latest = frame.groupby("key", sort=False)[clock].cummax()
        before = latest.groupby(frame["key"], sort=False).shift()
    else:
        before = frame[clock].cummax().shift()
    return before - delay


def _per_store(delay: timedelta) -> Delay:
    """The lesson's watermark: one per store, moved only by its sales (bytewax's way, without the clock)."""
    return Delay(delay, per="key", follow_clock=False)


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


class _Case(NamedTuple):
    """A check case: its name for the learner, the events (arrival order), the windows and the waiting."""

    name: str
    events: tuple[Event, ...]
    window: Tumbling
    delay: timedelta = timedelta(0)
    allowed: timedelta = timedelta(0)

    @property
    def about(self) -> str:
        said = f"{self.name} ({_seconds(self.window.length)} windows"
        if self.delay or self.allowed:
            said += f", delay {_seconds(self.delay)}"
        return said + (f", allowed lateness {_seconds(self.allowed)})" if self.allowed else ")")


# -- generated traces, for comparing with the solution --------------------------------------------

def _small_trace(seed: int, *, missing: bool = False) -> tuple[list[Event], Tumbling, timedelta, timedelta]:
    """A small trace made to hit the edges, with its window, delay and allowed lateness.

    Whole seconds make ties (a sale exactly on a window's boundary, a window's
    end exactly at the watermark or at end + allowed); lengths from 1 s to a
    minute, alignments off the minute, delays from 0 to wider than the trace,
    one to three stores, sales up to 15 s late, two sales of a store in the same second; with ``missing``, amounts missing now and then (the
    exercises on lateness have none: the engine routes such a sale aside before any lateness rule).
    """
    rng = random.Random(seed)
    n, keys = rng.randint(0, 10), rng.randint(1, 3)
    length = rng.choice((1, 2, 3, 4, 5, 10, 60))
    window = Tumbling(length, align_to=NINE + timedelta(seconds=rng.randint(0, length - 1)))
    delay = timedelta(seconds=rng.choice((0, 0, 1, 2, 3, 5, 30)))
    allowed = timedelta(seconds=rng.choice((0, 1, 2, 5, 10, 40)))
    pile = []
    # Mostly whole seconds; now and then half seconds, where waiting a second longer and comparing with < differ.
    tick = rng.choice((1.0, 1.0, 0.5))
    for i in range(1, n + 1):
        arrived = NINE + timedelta(seconds=tick * (i + rng.choice((0, 0, 0, 1))))
        behind = tick * (rng.randint(0, 2) if rng.random() < 0.5 else rng.randint(0, 15))
        value = None if missing and rng.random() < 0.08 else float(rng.randint(1, 40))
        if pile and rng.random() < 0.2:  # a second sale of a store in the same second as its last one
            pile.append(Event(pile[-1].key, value, pile[-1].event_time, arrived + timedelta(seconds=tick)))
            continue
        pile.append(Event(f"store-{rng.randrange(keys)}", value, arrived - timedelta(seconds=behind), arrived))
    pile.sort(key=lambda e: e.arrival_time)
    # A sale is told apart from another by its store and its two times: keep one of any two that share them.
    seen: set[tuple] = set()
    pile = [e for e in pile if (e.key, e.event_time, e.arrival_time) not in seen
            and not seen.add((e.key, e.event_time, e.arrival_time))]  # type: ignore[func-returns-value]
    return pile, window, delay, allowed


def _describe_trace(case: Case) -> str:
    pile, window, delay = case.args[:3]
    return (f"with {window.length.total_seconds():g}-second windows aligned to {show_time(window.align_to)}, "
            f"a delay of {_seconds(delay)} and {show_events(pile)}")


def _show_sales(sales: Any) -> str:
    if isinstance(sales, Raised):
        return repr(sales)
    if not sales.items:
        return "no sale"
    return "the sales " + ", ".join(f"{k} (happened {show_time(h.to_pydatetime())}, arrived "
                                    f"{show_time(a.to_pydatetime())})" for k, h, a in sales.items)


# -- 1. Which sales are dropped? -----------------------------------------------------------------

def _late_cases() -> list[_Case]:
    return [
        _Case("the lesson's trace", _hand(), Tumbling(10, align_to=NINE), timedelta(seconds=5)),
        _Case("a trace on whole seconds", _ticks(41, 40, 3, 12), Tumbling(5, align_to=NINE + timedelta(seconds=1)),
              timedelta(seconds=3)),
        _Case("a trace on whole seconds", _ticks(42, 60, 2, 15), Tumbling(4, align_to=NINE), timedelta(seconds=1)),
        _Case("five minutes of a fresh pipe", _fresh_pipe(7, 5, 3, 20.0, 0.0),
              Tumbling(10, align_to=COURSE_START + timedelta(seconds=3)), timedelta(seconds=2)),
    ]


@_per_trace
def _dropped(events: tuple[Event, ...], window: Tumbling, delay: timedelta) -> pd.DataFrame:
    """The sales the engine drops with the lesson's watermark and no allowed lateness (one row each)."""
    return loop(events, window, watermark=_per_store(delay)).dropped


@_per_trace
def _dropped_mask(events: tuple[Event, ...], window: Tumbling, delay: timedelta) -> np.ndarray:
    return _mask_of(events, _dropped(events, window, delay))


def _as_event(row: tuple) -> Event:
    try:
        return Event(*row)
    except (TypeError, ValueError) as error:
        if _is_naive_error(error):
            raise Mistake(NAIVE) from None
        raise Mistake(f"a tuple in your answer is not a sale (key, value, event_time, arrival_time): {error}") from None


def _identity(events: Iterable[Event]) -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
    return [(e.key, pd.Timestamp(e.event_time), pd.Timestamp(e.arrival_time)) for e in events]


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


class _Times(NamedTuple):
    """Per event, in list order: the times a lateness rule may look at (pandas Series, UTC)."""

    frame: pd.DataFrame
    start: pd.Series  # the start of the window the sale happened in
    end: pd.Series  # and its end
    own: pd.Series  # the store's watermark as the sale arrives (the lesson's)


@_per_trace
def _times(events: tuple[Event, ...], window: Tumbling, delay: timedelta) -> _Times:
    f = _frame(events)
    start = pd.Series(_starts(f["event_time"], window), index=f.index)
    return _Times(f, start, start + window.length, _watermarks(f, delay))


@_per_trace
def _late_models(events: tuple[Event, ...], window: Tumbling, delay: timedelta) -> list[tuple[np.ndarray, str]]:
    """Typical wrong answers for "which sales are dropped", each with its hint."""
    t = _times(events, window, delay)
    f, end, own = t.frame, t.end, t.own
    et, took = f["event_time"], f["arrival_time"] - f["event_time"]
    store_max = f.groupby("key")["event_time"].transform("max")
    rule = (
        " A sale is dropped when its window has already closed as it arrives: when the window's end is at or "
        "before its store's watermark (the newest event time of that store seen before it, minus delay)."
    )
    took_hint = (
        "you dropped the sales that took longer than delay to arrive. How long a sale took is not what decides." + rule
    )
    return [
        ((et < own).to_numpy(),
         "you used bytewax's rule: a sale behind the watermark is dropped. Under the standard rule a sale behind "
         "the watermark whose window is still open is counted; it is dropped only if its window has closed." + rule),
        ((took > delay).to_numpy(), took_hint),
        ((took >= delay).to_numpy(), took_hint),
        ((end <= _watermarks(f, delay, per_key=False)).to_numpy(),
         "your watermark mixes the stores. Each store (key) has its own watermark, moved only by that store's "
         "sales: the newest event time seen from that store so far, minus delay."),
        ((end < own).to_numpy(),
         "a window whose end is exactly at the watermark has closed: the lesson's dataflow gives a window's "
         "answer as soon as the watermark reaches its end (end <= watermark), so a sale for it is dropped."),
        ((end <= _watermarks(f, delay, clock="arrival_time")).to_numpy(),
         "your watermark is made of arrival times. It is made of event times: the newest event time seen "
         "from the store so far, minus delay."),
        ((end <= _watermarks(f, timedelta(0))).to_numpy(),
         "you forgot the delay: the watermark is the newest event time seen from the store so far, minus delay."),
        ((end <= store_max - delay).to_numpy(),
         "your watermark knows the future: it uses the newest event time of the store in the whole list. When a "
         "sale arrives the stream has seen only the sales that arrived before it: go down the list in order."),
        ((t.start <= own).to_numpy(),
         "you compared the window's start with the watermark. A window closes when the watermark reaches its "
         "end (start + length): only then is a sale for it dropped."),
    ]


def _late_solution(events: list[Event], window: Tumbling, delay: timedelta) -> list[Event]:
    return list(loop(events, window, watermark=_per_store(delay)).dropped.itertuples(index=False, name=None))


def _late_meaning(answer: Any, case: Case) -> Any:
    """The late sales, as a bag of (store, happened, arrived): from a list, a DataFrame or one bool per sale."""
    if isinstance(answer, Raised):
        return answer
    events = tuple(case.args[0])
    if isinstance(answer, list) and answer and isinstance(answer[0], tuple) and len(answer[0]) > 4:
        answer = pd.DataFrame(answer, columns=loop([], case.args[1]).dropped.columns)  # the solution's rows
    mask = _as_mask(answer, events)
    return bag((e.key, e.event_time, e.arrival_time) for e, late in zip(events, mask) if late)


@functools.lru_cache(maxsize=256)
def _models_of(kind: str, events: tuple[Event, ...], window: Tumbling, delay: timedelta | None) -> list[Any]:
    """The typical mistakes' answers on a trace, computed once per trace (keyed by its content, not its identity)."""
    models = {"late": _late_models, "window": _window_models, "contribution": _contribution_models}[kind]
    return models.__wrapped__(events, window, delay)  # type: ignore[attr-defined]


def _late_model(j: int) -> Callable[..., Any]:
    """Typical mistake ``j`` of :func:`_late_models`, as a function with the learner's signature."""
    def late(events: list[Event], window: Tumbling, delay: timedelta) -> list[bool]:
        return [bool(x) for x in _models_of("late", tuple(events), window, delay)[j][0]]

    return late


def _late_exercise_cases() -> Iterable[Case]:
    for seed in range(401, 425):
        pile, window, delay, _ = _small_trace(seed)
        yield Case((pile, window, delay))
    for c in _late_cases():
        yield Case((list(c.events), c.window, c.delay), c.about)


@functools.lru_cache(maxsize=1)
def _late_exercise() -> Exercise:
    # The hints of the models: the same on every trace (the models' masks are computed per case).
    hints = [hint for _, hint in _late_models.__wrapped__(_hand(), Tumbling(10, align_to=NINE), timedelta(seconds=5))]  # type: ignore[attr-defined]
    return Exercise(
        solution=_late_solution,
        cases=_late_exercise_cases,
        call=lambda fn, case: _call(fn, list(case.args[0]), *case.args[1:]),
        meaning=_late_meaning,
        describe=_describe_trace,
        show=_show_sales,
        budget=40,
        known=(
            Known("you returned the sales that were counted: return the ones the stream drops.",
                  when=lambda got, want, case: isinstance(got, type(want)) and len(got.items) + len(want.items)
                  == len(case.args[0]) and not set(got.items) & set(want.items)),
            *(Known(hint, model=_late_model(j)) for j, hint in enumerate(hints)),
        ),
    )


@checker
def late_sales(fn: Callable[[list[Event], Tumbling, timedelta], Any]) -> Feedback:
    """Check ``late_sales(events, window, delay)``: exactly the sales whose window had closed when they arrived."""
    _late_exercise().compare(fn)
    return correct(
        "you drop exactly the sales the stream drops, on the lesson's trace and on fresh ones, ties included."
    )

# -- 2. Allowed lateness in the lesson's dataflow ------------------------------------------------

#: The kinds of item the dataflow emits, and how many fields each has.
KINDS = {"answer": 5, "late answer": 5, "dropped": 3}

# One store's output, canonical: its answers and late answers as (kind, window start ns, count, total,
# emitted_at ns) sorted by (emitted_at, window start) (the order of answers given at the same moment is
# free), and its dropped sales as (window start ns, value) in the order they came.
_Store = tuple[tuple[tuple[str, int, int, float, int], ...], tuple[tuple[int, float], ...]]
_Output = dict[str, _Store]


def _dataflow_cases() -> list[_Case]:
    ten = Tumbling(10, align_to=NINE)
    five = timedelta(seconds=5)
    return [
        _Case("the lesson's trace", _hand(), ten, five, timedelta(seconds=10)),
        _Case("the lesson's trace", _hand(), ten, five, timedelta(seconds=2)),
        _Case("a trace on whole seconds", _ticks(43, 60, 2, 15), Tumbling(5, align_to=NINE + timedelta(seconds=2)),
              timedelta(seconds=2), timedelta(seconds=4)),
        _Case("a trace on whole seconds", _ticks(44, 80, 3, 20), Tumbling(6, align_to=NINE),
              timedelta(seconds=1), timedelta(seconds=6)),
        _Case("a trace on whole seconds", _ticks(45, 50, 2, 12), Tumbling(5, align_to=NINE),
              timedelta(seconds=2), timedelta(0)),
        _Case("the lesson's half hour", _half_hour(), Tumbling(60), five, timedelta(seconds=15)),
    ]


def _sorted_output(panes: dict[str, list], dropped: dict[str, list]) -> _Output:
    return {
        key: (tuple(sorted(panes.get(key, []), key=lambda p: (p[4], p[1]))), tuple(dropped.get(key, [])))
        for key in sorted(set(panes) | set(dropped))
    }


@_per_trace
def _engine_output(events: tuple[Event, ...], window: Tumbling, delay: timedelta, allowed: timedelta) -> _Output:
    """What the dataflow must emit, from the engine: its panes before the end of input, and its dropped sales.

    ON_TIME panes are the "answer"s, LATE panes the "late answer"s (accumulating:
    each holds the window's whole answer so far); panes given because the input
    ended are left out, as a dataflow over an unbounded pipe never gives them.
    """
    result = loop(events, window, watermark=_per_store(delay), allowed_lateness=allowed, mode="accumulating")
    p = result.panes[~result.panes["at_end"]]
    panes: dict[str, list] = {}
    for key, start, count, total, timing, at in zip(p["key"], p["window_start"], p["count"], p["sum"], p["timing"],
                                                    p["emitted_at"]):
        kind = "answer" if timing == "ON_TIME" else "late answer"
        panes.setdefault(key, []).append((kind, start.value, int(count), float(total), at.value))
    dropped: dict[str, list] = {}
    d = result.dropped
    for key, start, value in zip(d["key"], d["window_start"], d["value"]):
        dropped.setdefault(key, []).append((start.value, float(value)))
    return _sorted_output(panes, dropped)


def _simulate(mapper: Callable[[Any, Event], tuple[Any, list]], events: Iterable[Event]) -> list[tuple[str, Any]]:
    """``op.key_on`` then ``op.stateful_flat_map`` in a plain loop: one state per key, ``None`` forgets it."""
    states: dict[str, Any] = {}
    out = []
    for sale in events:
        state, items = mapper(states.get(sale.key), sale)
        if state is None:
            states.pop(sale.key, None)
        else:
            states[sale.key] = state
        out.extend((sale.key, item) for item in items)
    return out


def _model_mapper(
    length: timedelta, delay: timedelta, allowed: timedelta, align_to: datetime, *, rule: str = "standard",
    closes: str = "<=", beyond: str = "<=", late: str = "whole", stamp: str = "arrival",
) -> Callable[[Any, Event], tuple[Any, list]]:
    """A mapper as a learner may write it, with one mistake chosen by the flags (the defaults are right).

    ``rule``: "standard", "no allowance" (every sale of a closed window dropped)
    or "bytewax" (a sale behind the watermark dropped). ``closes``: how a window's
    end is compared with the watermark ("<=" or "<"). ``beyond``: how end +
    allowed is ("<=": dropped when end + allowed <= watermark; "<"). ``late``:
    what a late sale does: "whole" (the corrected whole answer), "alone" (a late
    answer of the sale alone), "late only" (the late sales counted from nothing),
    "silent" (added with no late answer), "reopen" (a fresh window, answered
    again). ``stamp``: "arrival", "event" (the sale's event time as emitted_at) or
    "event, late" (for late answers only).
    Closed windows are never forgotten here: only the decision matters.
    """
    def closed(end: datetime, watermark: datetime | None) -> bool:
        return watermark is not None and (end <= watermark if closes == "<=" else end < watermark)

    def mapper(state: Any, sale: Event) -> tuple[Any, list]:
        watermark, open_windows, kept, late_only = state or (None, {}, {}, {})
        start = align_to + (sale.event_time - align_to) // length * length
        end = start + length
        at = sale.event_time if stamp == "event" else sale.arrival_time
        late_at = sale.event_time if stamp == "event, late" else at
        out: list[tuple] = []
        if rule == "bytewax" and watermark is not None and sale.event_time < watermark:
            out.append(("dropped", start, sale.value))
        elif rule != "bytewax" and closed(end, watermark):
            gone = end + allowed <= watermark if beyond == "<=" else end + allowed < watermark
            if rule == "no allowance" or gone:
                out.append(("dropped", start, sale.value))
            elif late == "reopen":
                count, total = open_windows.get(start, (0, 0.0))
                open_windows[start] = (count + 1, total + sale.value)
            elif late == "late only":
                count, total = late_only.get(start, (0, 0.0))
                late_only[start] = (count + 1, total + sale.value)
                out.append(("late answer", start, count + 1, total + sale.value, late_at))
            else:
                count, total = kept.get(start, (0, 0.0))
                kept[start] = (count + 1, total + sale.value)
                if late == "whole":
                    out.append(("late answer", start, count + 1, total + sale.value, late_at))
                elif late == "alone":
                    out.append(("late answer", start, 1, sale.value, late_at))
        else:
            count, total = open_windows.get(start, (0, 0.0))
            open_windows[start] = (count + 1, total + sale.value)
        mark = sale.event_time - delay
        watermark = mark if watermark is None else max(watermark, mark)
        for closing in sorted(s for s in open_windows if closed(s + length, watermark)):
            count, total = open_windows.pop(closing)
            kept[closing] = (count, total)
            out.append(("answer", closing, count, total, at))
        return (watermark, open_windows, kept, late_only), out

    return mapper


_STAMP = (
    "emitted_at is the moment an answer comes out: the arrival time of the sale that caused it, not its event time."
)

#: The typical mistakes of exercise 2: the flags of :func:`_model_mapper`, and the hint for each.
_DATAFLOW_MISTAKES: tuple[tuple[dict[str, str], str], ...] = (
    ({"late": "alone"},
     "your late answer holds only the late sale. A late answer is the window's corrected whole answer: its count "
     "and total so far (the on-time sales and every late sale within allowed lateness), so that a window's last "
     "answer is its total. Keep each closed window's count and total after its answer."),
    ({"rule": "no allowance"},
     "you dropped every sale that arrived after its window closed. With allowed lateness a closed window is kept "
     "until its store's watermark reaches end + allowed: a sale for it before then updates it and gives a late "
     "answer."),
    ({"beyond": "<"},
     "a sale that arrives when its store's watermark is exactly at window end + allowed is beyond allowed "
     "lateness: a closed window is kept only while end + allowed > watermark."),
    ({"late": "silent"},
     "a late sale within allowed lateness changed a window, but you gave no late answer: emit ('late answer', "
     "window_start, count, total, emitted_at) with the corrected whole answer each time."),
    ({"late": "reopen"},
     "a late sale went into a fresh window, answered again as an 'answer' holding only what came late. Its window "
     "has closed: keep each closed window's count and total (until end + allowed) and give a 'late answer' with "
     "the corrected whole answer."),
    ({"late": "late only"},
     "your late answers count only the late sales: the window's on-time sales are missing from them. Keep each "
     "closed window's count and total after its answer, and add the late sale to them."),
    ({"closes": "<", "beyond": "<"},
     "a window closes (gives its answer) as soon as its store's watermark reaches its end: end <= watermark, not <; "
     "a sale for it arriving after that is late. And it is gone once the watermark reaches end + allowed."),
    ({"rule": "bytewax"},
     "you used bytewax's rule: a sale behind the watermark set aside. Under the standard rule a sale is late only "
     "when its window has already closed (end <= watermark); one behind the watermark in an open window is counted."),
    ({"stamp": "event"}, _STAMP),
    ({"stamp": "event, late"}, _STAMP),
)


@_per_trace
def _dataflow_models(
    events: tuple[Event, ...], window: Tumbling, delay: timedelta, allowed: timedelta,
) -> list[_Output]:
    """Each typical mistake's output on a case, from :func:`_model_mapper` run in a plain loop."""
    return [
        _output(_simulate(_model_mapper(window.length, delay, allowed, window.align_to, **flags), events), strict=False)
        for flags, _ in _DATAFLOW_MISTAKES
    ]


def _ns_of(value: Any, what: str) -> int:
    """A time of the learner's items as int nanoseconds UTC; a naive one is a mistake of its own."""
    if not isinstance(value, (datetime, np.datetime64)):
        raise Mistake(f"the {what} of each item should be a datetime; got {type(value).__name__} {value!r}.")
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        raise Mistake(NAIVE)
    return stamp.tz_convert("UTC").as_unit("ns").value


def _number(value: Any, what: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise Mistake(f"the {what} of each item should be a number; got {type(value).__name__} {value!r}.")
    return float(value)


def _output(items: list[Any], *, strict: bool = True) -> _Output:
    """The items a dataflow emitted, ``(store, item)`` each, in canonical form; a malformed item gets its hint."""
    panes: dict[str, list] = {}
    dropped: dict[str, list] = {}
    shape = (
        "each item should be ('answer', window_start, count, total, emitted_at), ('late answer', window_start, "
        "count, total, emitted_at) or ('dropped', window_start, value)"
    )
    for pair in items:
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise Mistake(f"{shape}, emitted per store; the dataflow got {pair!r}.")
        key, item = pair
        if not isinstance(item, (tuple, list)) or not item or not isinstance(item[0], str):
            raise Mistake(f"{shape}; you emitted {item!r}. Return (state, list of items) from your function.")
        kind = item[0]
        if kind not in KINDS:
            raise Mistake(f"{shape}; you emitted an item of kind {kind!r}.")
        if len(item) != KINDS[kind]:
            raise Mistake(f"{shape}; your {kind!r} item has {len(item)} fields.")
        start = _ns_of(item[1], "window_start")
        if kind == "dropped":
            dropped.setdefault(key, []).append((start, _number(item[2], "value of a 'dropped' item")))
            continue
        count = _number(item[2], "count")
        if strict and count != int(count):
            raise Mistake(f"each count should be a whole number of sales; you emitted {item[2]!r}.")
        panes.setdefault(key, []).append(
            (kind, start, int(count), _number(item[3], "total"), _ns_of(item[4], "emitted_at")))
    return _sorted_output(panes, dropped)


def _same_output(a: _Output, b: _Output) -> bool:
    if a.keys() != b.keys():
        return False
    for key, (panes_a, dropped_a) in a.items():
        panes_b, dropped_b = b[key]
        if len(panes_a) != len(panes_b) or len(dropped_a) != len(dropped_b):
            return False
        for x, y in zip(panes_a, panes_b):
            if x[0] != y[0] or x[1] != y[1] or x[2] != y[2] or x[4] != y[4] or not np.isclose(x[3], y[3], rtol=1e-9,
                                                                                              atol=1e-6):
                return False
        for x, y in zip(dropped_a, dropped_b):
            if x[0] != y[0] or not np.isclose(x[1], y[1], rtol=1e-9, atol=1e-6):
                return False
    return True


def _run_dataflow(fn: Callable[..., Any], case: _Case) -> list[Any]:
    """Run the learner's mapper as the exercise notebook does: per store, one ``op.stateful_flat_map`` step."""
    length, delay, allowed, align_to = case.window.length, case.delay, case.allowed, case.window.align_to

    resumed = resuming(lambda state, sale: fn(state, sale, length, delay, allowed, align_to), show_items=show_events)

    def body(events: Any) -> Any:
        per_store = op.key_on("per_store", events, lambda sale: sale.key)
        return op.stateful_flat_map("windows", per_store, resumed)

    try:
        return stream.run(body, list(case.events))["out"]
    except stream.StreamError as error:
        cause = error.__cause__ or error
        if isinstance(cause, (NotImplementedError, Mistake)):
            raise cause from None
        if isinstance(cause, (TypeError, ValueError)) and _is_naive_error(cause):
            raise Mistake(NAIVE) from None
        if isinstance(cause, (TypeError, ValueError)) and _raised_in_bytewax(cause):
            raise Mistake(
                "your function must return a pair: (the store's new state, a list of items to emit).") from None
        if isinstance(cause, KeyError):
            raise Mistake(
                f"your function looked up {cause} in its state and it was not there (KeyError). A late sale may "
                "come for a window you no longer keep, or for one that had no sale before it closed: that one "
                "starts from no sales (dict.get with a default), and still gives a late answer."
            ) from None
        raise Mistake(f"your dataflow stopped on {case.name}: {type(cause).__name__}: {cause}") from None


def _raised_in_bytewax(error: BaseException) -> bool:
    """Did bytewax itself raise this (unpacking what the mapper returned), not the learner's code?"""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and "bytewax" in tb.tb_frame.f_code.co_filename


@_per_trace
def _batch_answers(events: tuple[Event, ...], window: Tumbling) -> dict[tuple[str, int], tuple[int, float]]:
    """The batch answer per (store, window start ns): count and total."""
    full = batch.panes(events, window).table()
    return {(k, s.value): (int(c), float(t))
            for k, s, c, t in zip(full["key"], full["window_start"], full["count"], full["sum"])}


def _against_batch(case: _Case, out: _Output) -> tuple[int, int]:
    """Batch = the dataflow's last answer + its dropped sales, in every window it answered.

    Returns (windows answered, of them with a late answer or a dropped sale).
    """
    want = _batch_answers(case.events, case.window)
    answered = corrected = 0
    for key, (panes, dropped) in out.items():
        last: dict[int, tuple[int, float]] = {}
        late: set[int] = set()
        for kind, start, count, total, _ in panes:
            last[start] = (count, total)
            late |= {start} if kind == "late answer" else set()
        lost: dict[int, tuple[int, float]] = {}
        for start, value in dropped:
            n, s = lost.get(start, (0, 0.0))
            lost[start] = (n + 1, s + value)
        for start, (count, total) in last.items():
            n, s = lost.get(start, (0, 0.0))
            batch_count, batch_sum = want.get((key, start), (0, 0.0))
            if count + n != batch_count or not np.isclose(total + s, batch_sum, rtol=1e-9, atol=1e-6):
                raise Mistake(
                    f"on {case.about}, for {key}'s window from {pd.Timestamp(start, tz='UTC'):%H:%M:%S}, your last "
                    "answer plus the sales you dropped is not the batch answer: every sale must be counted once, "
                    "in an answer or as dropped."
                )
            answered += 1
            corrected += bool(n) or start in late
    return answered, corrected


class _Engine(NamedTuple):
    """The engine's output on a case, standing for the solution's (the reference of exercise 2)."""

    output: _Output


def _engine_solution(*args: Any) -> Any:
    """The solution of exercise 2, as the engine gives it (:func:`_answers_call` knows it)."""
    raise AssertionError("the engine's answers are computed by _answers_call")


def _answers_call(fn: Callable[..., Any], case: Case) -> Any:
    pile, window, delay, allowed = case.args
    if fn is _engine_solution:
        return _Engine(_engine_output.__wrapped__(tuple(pile), window, delay, allowed))  # type: ignore[attr-defined]
    return _run_dataflow(fn, _Case(case.label, tuple(pile), window, delay, allowed))


def _answers_meaning(answer: Any, case: Case) -> Any:
    if isinstance(answer, (Raised, _Engine)):
        return answer.output if isinstance(answer, _Engine) else answer
    return _output(answer)


def _same_answers(got: Any, want: Any) -> bool:
    if isinstance(got, Raised) or isinstance(want, Raised):
        return got == want
    return _same_output(got, want)


def _show_output(out: Any) -> str:
    if isinstance(out, Raised):
        return repr(out)
    if not out:
        return "nothing emitted"

    def at(ns: int) -> str:
        return show_time(pd.Timestamp(ns, tz="UTC").to_pydatetime())

    parts = []
    for key, (panes, dropped) in out.items():
        items = [f"{kind} {at(start)}: {count} sale{'s' * (count != 1)}, {total:g} (at {at(when)})"
                 for kind, start, count, total, when in panes]
        items += [f"dropped {value:g} of {at(start)}" for start, value in dropped]
        parts.append(f"{key}: " + ("; ".join(items) if items else "nothing"))
    return " | ".join(parts)


def _answers_model(flags: dict[str, str]) -> Callable[..., Any]:
    def mapper(state: Any, sale: Event, length: timedelta, delay: timedelta, allowed: timedelta,
               align_to: datetime) -> Any:
        return _model_mapper(length, delay, allowed, align_to, **flags)(state, sale)

    return mapper


def _answers_cases() -> Iterable[Case]:
    for seed in range(481, 501):
        yield Case(_small_trace(seed))
    for c in _dataflow_cases():
        yield Case((list(c.events), c.window, c.delay, c.allowed), c.about)


ANSWERS = Exercise(
    solution=_engine_solution,
    cases=_answers_cases,
    call=_answers_call,
    meaning=_answers_meaning,
    same=_same_answers,
    describe=lambda case: _describe_trace(case) + f"\n(allowed lateness {_seconds(case.args[3])})",
    show=_show_output,
    budget=40,
    evidence=100,  # every case: on whole seconds, waiting a second longer looks like comparing with <
    rerun=100,  # every case again: windows kept outside the state meet late sales of another trace
    resume=100,  # and every case resumed from snapshots: windows kept outside, set up afresh, show then
    known=tuple(Known(hint, model=_answers_model(flags)) for flags, hint in _DATAFLOW_MISTAKES),
)


@checker
def late_answers(fn: Callable[..., Any]) -> Feedback:
    """Check ``windows(state, sale, length, delay, allowed, align_to)``, run in a bytewax dataflow per store.

    Its answers, late answers and dropped sales must be the engine's, store by
    store; then batch = its last answers + its dropped sales, window by window.
    """
    outputs = ANSWERS.compare(fn)
    answered, corrected = _against_batch(_dataflow_cases()[-1], outputs[-1][1])
    return correct(
        f"your dataflow gives the engine's answers, late answers and dropped sales on every trace, ties included; "
        f"and batch = your last answer + your dropped sales in all {answered} windows it answered in the lesson's "
        f"half hour ({corrected} of them corrected by late sales or with sales dropped)."
    )


def _dataflow_hint(cases: list[_Case], answers: list[_Output], wants: list[_Output], first: int) -> NoReturn:
    """Raise the hint for a wrong dataflow: a typical mistake if one matches, else where it first differs."""
    models = [_dataflow_models(c.events, c.window, c.delay, c.allowed) for c in cases]
    mistake = _recognise(answers, wants, models, _same_output)
    if mistake is not None:
        raise Mistake(_DATAFLOW_MISTAKES[mistake][1])
    case, got, want = cases[first], answers[first], wants[first]
    if not any(panes for panes, _ in got.values()):
        raise Mistake(
            f"on {case.about} your dataflow gave no answer at all: a window's answer comes out when its store's "
            "watermark reaches its end."
        )
    for key in want:
        mine = got.get(key, ((), ()))
        for part, what in ((0, "answers and late answers"), (1, "dropped sales")):
            theirs_part, mine_part = want[key][part], mine[part]
            if not _same_output({key: (theirs_part, ()) if part == 0 else ((), theirs_part)},
                                {key: (mine_part, ()) if part == 0 else ((), mine_part)}):
                raise Mistake(
                    f"on {case.about}, {key}'s {what} differ from the stream's. Follow "
                    "that store's sales one by one: its watermark, which windows are open, which are kept for late "
                    "sales, and when each closes."
                )
    raise Mistake(f"on {case.about}, you emitted items for a store with no sales of its own: key them per store.")

# -- 3. The batch answer with pandas -----------------------------------------------------------

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
    """Count and sum per key and window start, from parallel lists (``count="size"`` counts missing values too).

    The typical mistakes' tables are made with it on every case a check
    explains: a loop over a few sales is far cheaper than a groupby, and its
    frame is already in :func:`_table`'s normal form (sorted, no empty window).

    >>> t = pd.Timestamp("2026-01-05 09:00", tz="UTC")
    >>> _group(["b", "a", "a"], [t, t, t], [1.0, 2.0, float("nan")]).values.tolist()
    [['a', Timestamp('2026-01-05 09:00:00+0000', tz='UTC'), 1, 2.0], ['b', Timestamp('2026-01-05 09:00:00+0000', tz='UTC'), 1, 1.0]]
    """
    acc: dict[tuple[str, pd.Timestamp], list] = {}
    for key, start, value in zip(keys, starts, values):
        row = acc.setdefault((str(key), pd.Timestamp(start)), [0, 0.0])
        if value is not None and value == value:  # pandas' count and sum skip a missing value; size counts it
            row[0] += 1
            row[1] += float(value)
        elif count == "size":
            row[0] += 1
    rows = sorted((key, start, n, total) for (key, start), (n, total) in acc.items() if n)
    if not rows:
        return _no_windows()
    keys, starts, counts, sums = zip(*rows)
    return pd.DataFrame({"key": pd.Series(keys, dtype="str"), "window_start": pd.DatetimeIndex(starts).tz_convert("UTC"),
                         "count": np.array(counts, dtype="int64"), "sum": np.array(sums, dtype="float64")})


def _shifted(table: pd.DataFrame, by: timedelta) -> pd.DataFrame:
    return table.assign(window_start=table["window_start"] + by)


@_per_trace
def _window_models(
    events: tuple[Event, ...], window: Tumbling, delay: timedelta | None,
) -> list[tuple[pd.DataFrame, str]]:
    """Typical wrong window tables: per key and window, count and sum of every sale (or the dropped ones).

    With ``delay`` None, of every sale; else of the sales the stream of exercise 1 drops with that delay.
    """
    f = _frame(events)
    if delay is not None:
        f = f[_dropped_mask(events, window, delay)]
    length = window.length
    right = _starts(f["event_time"], window)
    edge = timedelta(microseconds=1)
    alignment = (
        "your windows are not where the spec puts them: they start at window.align_to plus whole multiples "
        f"of the length ({_seconds(length)}), not at multiples of the length counted from midnight."
    )
    off_by_one = (
        "your windows are off by one: window_start is where a window begins, and an event at time t is in the "
        "window [start, start + length) with start <= t."
    )
    return [
        (_group(f["key"], _starts(f["arrival_time"], window), f["value"]),
         "you put each sale in the window of its arrival time. A window holds the sales that happened in it: "
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


def _takings_cases() -> list[_Case]:
    return [
        _Case("the lesson's half hour", _half_hour(), Tumbling(60)),
        _Case("ten minutes of a fresh pipe", _fresh_pipe(8, 10, 4, 20.0, 0.03),
              Tumbling(20, align_to=COURSE_START + timedelta(seconds=7))),
        _Case("a trace on whole seconds", _ticks(64, 50, 3, 9), Tumbling(5, align_to=NINE + timedelta(seconds=2))),
    ]


@_per_trace
def _stream_complete(events: tuple[Event, ...], window: Tumbling) -> pd.DataFrame:
    """The stream's answer when its watermark waits as long as the slowest sale took: nothing is dropped.

    The watermark (one for the input, following the clock) is then never ahead
    of an arriving sale's event time, so no sale finds its window closed.
    """
    slowest = max(e.arrival_time - e.event_time for e in events)
    answer = loop(events, window, watermark=Delay(slowest))
    assert answer.dropped.empty and answer.late.empty
    return _table(answer.table()[COLUMNS], "windows")


def _rows(answer: Any, case: Case, what: str = "windows") -> Any:
    """A table of windows in normal form: (store, window start, count, sum) per window, in order."""
    if isinstance(answer, Raised):
        return answer
    if isinstance(answer, (list, tuple, pd.DataFrame)) and len(answer) == 0:
        return ()  # no window at all: whatever its columns (an empty pile gives no row to infer them from)
    table = _table(answer, what)
    return tuple(zip(table["key"], table["window_start"], table["count"].astype(int), table["sum"].astype(float)))


def _show_rows(rows: Any) -> str:
    if isinstance(rows, Raised):
        return repr(rows)
    if not rows:
        return "no window"
    return "; ".join(f"{k} window {show_time(s.to_pydatetime())}: {c} sale{'s' * (c != 1)}, {t:g}"
                     for k, s, c, t in rows)


def _no_windows() -> pd.DataFrame:
    """A table of no windows, with the columns' types."""
    return pd.DataFrame({"key": pd.Series([], dtype="str"), "window_start": pd.DatetimeIndex([], tz="UTC"),
                         "count": pd.Series([], dtype="int64"), "sum": pd.Series([], dtype="float64")})


def _takings_solution(events: list[Event], window: Tumbling) -> pd.DataFrame:
    if not events:
        return _no_windows()
    return _stream_complete.__wrapped__(tuple(events), window)  # type: ignore[attr-defined]


def _takings_exercise_cases() -> Iterable[Case]:
    for seed in range(431, 451):
        pile, window, _, _ = _small_trace(seed, missing=True)
        yield Case((pile, window))
    for c in _takings_cases():
        yield Case((list(c.events), c.window), c.about)


def _window_model(j: int, *, with_delay: bool = False) -> Callable[..., Any]:
    """Typical mistake ``j`` of :func:`_window_models`, as a function with the learner's signature."""
    def model(events: list[Event], window: Tumbling, delay: timedelta | None = None) -> pd.DataFrame:
        if not events:
            return _no_windows()
        return _models_of("window", tuple(events), window, delay if with_delay else None)[j][0]

    return model


#: The stores' own keys missing from an answer: grouped by something else.
_OTHER_KEYS = Known(
    "your keys are not the stores': the answer is per store, with the stores' own keys (group by key too).",
    when=lambda got, want, case: bool(got) and bool(want) and not {r[0] for r in got} & {r[0] for r in want})


def _fewer(got: Any, want: Any, case: Case) -> bool:
    """Some sales missing from the windows, none too many: a batch job that dropped the late ones."""
    mine = {(k, s): (c, t) for k, s, c, t in got}
    right = {(k, s): (c, t) for k, s, c, t in want}
    fewer = [w for w, (c, _) in mine.items() if c < right[w][0]] if set(mine) <= set(right) else []
    return (set(mine) <= set(right) and (set(mine) < set(right) or bool(fewer))
            and all(c <= right[w][0] and (c == right[w][0] or not same(t, right[w][1])) for w, (c, t) in mine.items())
            and all(same(t, right[w][1]) for w, (c, t) in mine.items() if c == right[w][0]))


def _window_hints() -> list[str]:
    return [hint for _, hint in _window_models.__wrapped__(_hand(), Tumbling(10, align_to=NINE), None)]  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=1)
def _takings_exercise() -> Exercise:
    return Exercise(
        solution=_takings_solution,
        cases=_takings_exercise_cases,
        call=lambda fn, case: _call(fn, list(case.args[0]), case.args[1]),
        meaning=_rows,
        describe=lambda case: (f"with {case.args[1].length.total_seconds():g}-second windows aligned to "
                               f"{show_time(case.args[1].align_to)} and {show_events(case.args[0])}"),
        show=_show_rows,
        budget=30,
        known=(
            _OTHER_KEYS,
            *(Known(hint, model=_window_model(j)) for j, hint in enumerate(_window_hints())),
            Known("some sales are missing from your windows. A batch job has the whole pile: it counts every sale "
                  "in the window it happened in, late or not.", when=_fewer),
        ),
    )


@checker
def takings(fn: Callable[[list[Event], Tumbling], Any]) -> Feedback:
    """Check ``takings(pile, window)``: per store and window, count and sum equal the stream's, nothing late."""
    _takings_exercise().compare(fn)
    return correct(
        "your pandas windows give exactly the stream's answer when nothing is late, on the lesson's half hour "
        "and on fresh pipes with other window lengths and alignments."
    )


def _table_hint(
    cases: list[_Case], answers: list[pd.DataFrame], wants: list[pd.DataFrame],
    models: list[list[tuple[pd.DataFrame, str]]], *, dropped_only: bool, what: str,
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
    if not dropped_only and (missing or fewer) and not (extra or more):
        raise Mistake(
            f"on {case.name}, some sales are missing from your windows. A batch job has the whole pile: it counts "
            "every sale in the window it happened in, late or not."
        )
    same_count = both["count_got"] == both["count_want"]
    other_sum = same_count & ~np.isclose(both["sum_got"], both["sum_want"], rtol=1e-9, atol=1e-6)
    other = int((~same_count).sum() + other_sum.sum())
    raise Mistake(
        f"on {case.about}, your answer differs from {what}: {missing} window(s) missing, "
        f"{extra} window(s) too many, {other} with another count or sum."
    )


# -- 4. What the dropped sales add, per window -------------------------------------------------

def _contribution_cases() -> list[_Case]:
    return [
        _Case("the lesson's trace", _hand(), Tumbling(10, align_to=NINE), timedelta(seconds=5)),
        _Case("the lesson's half hour", _half_hour(), Tumbling(60), timedelta(seconds=5)),
        _Case("a trace on whole seconds", _ticks(75, 60, 3, 12), Tumbling(10, align_to=NINE + timedelta(seconds=3)),
              timedelta(seconds=2)),
        _Case("a trace on whole seconds", _ticks(76, 80, 2, 20), Tumbling(4, align_to=NINE + timedelta(seconds=1)),
              timedelta(seconds=1)),
        _Case("a trace on whole seconds", _ticks(78, 60, 3, 12), Tumbling(6, align_to=NINE + timedelta(seconds=2)),
              timedelta(seconds=3)),
    ]


class _Accounts(NamedTuple):
    batch: pd.DataFrame  # every sale, per store and window
    stream: pd.DataFrame  # the stream's answer (its last pane per window)
    dropped: pd.DataFrame  # the dropped sales, per store and window
    reconciled: pd.DataFrame | None = None  # the library's own accounts (reconcile), for the check's own data


def _drivers(events: tuple[Event, ...], window: Tumbling, delay: timedelta) -> tuple[Any, _Accounts]:
    """The stream's panes, both drivers' answers and the dropped sales' contribution per window.

    The batch answer is every sale counted in its window, grouped here directly
    (the batch driver's own panes give the same table: :func:`_accounts`
    proves it on the check's data), because the typical mistakes are made of
    these tables on every case a check explains.
    """
    on_time = loop(events, window, watermark=_per_store(delay))
    t = _times(events, window, delay)
    d = on_time.dropped
    return on_time, _Accounts(
        batch=_group(t.frame["key"], pd.DatetimeIndex(t.start), t.frame["value"]),
        stream=_table(on_time.table()[COLUMNS], "windows"),
        dropped=_group(d["key"], pd.DatetimeIndex(d["window_start"]), d["value"]),
    )


@_per_trace
def _accounts(events: tuple[Event, ...], window: Tumbling, delay: timedelta) -> _Accounts:
    """Both drivers' answers and the dropped sales' contribution per window, proved with the library's reconcile."""
    on_time, accounts = _drivers(events, window, delay)
    everything = batch.panes(events, window)
    assert _same_table(accounts.batch, _table(everything.table()[COLUMNS], "windows"))
    accounts = accounts._replace(reconciled=reconcile(everything, on_time))
    assert accounts.reconciled["agree"].all()
    _prove(accounts, accounts.dropped)
    return accounts


@_per_trace
def _contribution_models(
    events: tuple[Event, ...], window: Tumbling, delay: timedelta,
) -> list[tuple[pd.DataFrame, str]]:
    """Typical wrong contributions: the answers themselves, other lateness rules, batch − stream gone wrong."""
    # Made on every case a check explains: the drivers' tables only, not the proof the check's own data get.
    accounts = _drivers(events, window, delay)[1]
    t = _times(events, window, delay)
    f = t.frame
    et, took = f["event_time"], f["arrival_time"] - f["event_time"]
    starts = pd.DatetimeIndex(t.start)

    def by_rule(dropped: pd.Series) -> pd.DataFrame:
        keep = dropped.to_numpy(dtype=bool)
        return _group(f["key"][keep], starts[keep], f["value"][keep])

    rule = (
        " A sale is dropped when its window has already closed as it arrives: its end at or before its store's "
        "watermark (the newest event time of that store seen before it, minus delay)."
    )
    both = accounts.batch.merge(accounts.stream, on=["key", "window_start"], suffixes=("", "_s"))
    subtracted = both.assign(count=both["count"] - both["count_s"], sum=both["sum"] - both["sum_s"])[COLUMNS]
    return [
        (accounts.stream, "that is the stream's answer (the sales it counted). Return what the dropped sales "
         "add: per store and window, how many were dropped and their total."),
        (accounts.batch, "that is the batch answer (every sale). Return only what the dropped sales add."),
        (_table(subtracted, "model"),
         "windows in which every sale was dropped are missing: the stream gives no answer at all for them, so "
         "batch − stream must count such a window's sales in full (a missing stream answer counts as 0)."),
        (by_rule(et < t.own),
         "you used bytewax's rule (a sale behind the watermark is dropped). Under the standard rule a sale "
         "behind the watermark in a window still open is counted." + rule),
        (by_rule(took > delay), "you dropped the sales that took longer than delay to arrive." + rule),
        (by_rule(t.end <= _watermarks(f, delay, per_key=False)),
         "your watermark mixes the stores: each store has its own, moved only by its own sales." + rule),
        (by_rule(t.end < t.own),
         "a window whose end is exactly at the watermark has closed: a sale for it is dropped (end <= watermark)."),
    ]


def _contribution_solution(events: list[Event], window: Tumbling, delay: timedelta) -> pd.DataFrame:
    d = loop(events, window, watermark=_per_store(delay)).dropped
    return _group(d["key"], pd.DatetimeIndex(d["window_start"]), d["value"])


def _contribution_model(j: int) -> Callable[..., Any]:
    def model(events: list[Event], window: Tumbling, delay: timedelta) -> pd.DataFrame:
        if not events:
            return _no_windows()
        return _models_of("contribution", tuple(events), window, delay)[j][0]

    return model


#: Twelve of the generated traces 456-475: every edge the twenty hold (one is empty, one has a store's two sales in
#: the same second both dropped); the other eight only repeat them, and a right answer built on the library's
#: reconcile costs 35 ms a trace.
_CONTRIBUTION_SEEDS = (456, 458, 460, 461, 462, 464, 465, 466, 467, 471, 472, 473)


def _contribution_exercise_cases() -> Iterable[Case]:
    for seed in _CONTRIBUTION_SEEDS:
        pile, window, delay, _ = _small_trace(seed)
        yield Case((pile, window, delay))
    for c in _contribution_cases():
        yield Case((list(c.events), c.window, c.delay), c.about)


@functools.lru_cache(maxsize=1)
def _contribution_exercise() -> Exercise:
    hints = [h for _, h in _contribution_models.__wrapped__(_hand(), Tumbling(10, align_to=NINE), timedelta(seconds=5))]  # type: ignore[attr-defined]
    return Exercise(
        solution=_contribution_solution,
        cases=_contribution_exercise_cases,
        call=lambda fn, case: _call(fn, list(case.args[0]), *case.args[1:]),
        meaning=lambda answer, case: _rows(answer, case, "the dropped sales' contribution"),
        describe=_describe_trace,
        show=_show_rows,
        budget=30,
        evidence=100,  # every case: a window left out looks like a window whose every sale was dropped
        rerun=4,
        known=(
            _OTHER_KEYS,
            *(Known(hint, model=_contribution_model(j)) for j, hint in enumerate(hints)),
            *(Known(hint, model=_window_model(j, with_delay=True)) for j, hint in enumerate(_window_hints())),
        ),
    )


@checker
def dropped_contribution(fn: Callable[[list[Event], Tumbling, timedelta], Any]) -> Feedback:
    """Check ``dropped_contribution(events, window, delay)``: per window, the dropped sales' count and sum.

    With the right answer, batch = stream + dropped in every window: the check proves it on the lesson's data.
    """
    answers = [rows for _, rows in _contribution_exercise().compare(fn)][-len(_contribution_cases()):]
    cases = _contribution_cases()
    proofs = [_prove(_accounts(c.events, c.window, c.delay), pd.DataFrame(list(rows), columns=COLUMNS))
              for c, rows in zip(cases, answers)]
    windows, with_dropped = proofs[1]
    return correct(
        f"batch = stream + your dropped contribution in all {windows} windows of the lesson's half hour "
        f"({with_dropped} of them with dropped sales), and in every window of the other traces."
    )


def _prove(accounts: _Accounts, dropped: pd.DataFrame) -> tuple[int, int]:
    """Check batch = stream + dropped window by window; return (windows, windows with dropped sales)."""
    keys = ["key", "window_start"]
    total = accounts.batch.merge(accounts.stream, on=keys, how="left", suffixes=("", "_stream")).merge(
        dropped, on=keys, how="left", suffixes=("", "_dropped")).fillna({"count_stream": 0, "sum_stream": 0.0,
                                                                          "count_dropped": 0, "sum_dropped": 0.0})
    assert (total["count"] == total["count_stream"] + total["count_dropped"]).all()
    assert np.allclose(total["sum"], total["sum_stream"] + total["sum_dropped"], rtol=1e-9, atol=1e-6)
    return len(total), int((total["count_dropped"] > 0).sum())
