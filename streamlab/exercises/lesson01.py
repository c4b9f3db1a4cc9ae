"""Checks for the exercises of lesson 01, pile versus pipe.

1. ``cut_the_pile``: a function ``first_minutes(sales, minutes)`` returning the
   pile of sales that *arrived* in the first ``minutes`` minutes.
2. ``big_sales_flow``: the stream version of :func:`big_sales_batch`, a dataflow
   emitting ``(store, running count of sales over 30 €)`` as sales arrive.
3. ``settled_at``: a function ``settled_at(summary, key, within)`` returning the
   arrival time from which the stream's running mean for ``key`` stayed within
   ``within`` of its final value.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from streamlab import stream
from streamlab.events import Event, Pipe, arrived_before, pipe, take, to_frame
from streamlab.exercises import Feedback, Mistake, checker, correct
from streamlab.summary import Summary

__all__ = ["BIG_SALE", "big_sales_batch", "big_sales_flow", "cut_the_pile", "settled_at"]


# -- 1. Cut the pile ---------------------------------------------------------------------------

def _pile_rows(answer: Any) -> pd.DataFrame:
    """Accept a list of events or a DataFrame with the event columns; give a comparable frame."""
    if isinstance(answer, Pipe) or (hasattr(answer, "__next__") and not isinstance(answer, list)):
        raise Mistake("return a finite pile (a list or a DataFrame), not the pipe or an iterator over it.")
    if isinstance(answer, pd.DataFrame):
        frame = answer
    elif isinstance(answer, (list, tuple)) and all(isinstance(e, Event) for e in answer):
        frame = to_frame(answer)
    else:
        raise Mistake(f"return a list of events or a DataFrame made with to_frame(); got {type(answer).__name__}.")
    missing = {"key", "event_time", "arrival_time"} - set(frame.columns)
    if missing:
        raise Mistake(f"your DataFrame lacks the column(s) {sorted(missing)}: keep every field of the events.")
    rows = frame[["key", "event_time", "arrival_time"]].astype({"key": "str"})
    return rows.sort_values(["arrival_time", "event_time", "key"], ignore_index=True)


def _same_pile(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    return len(a) == len(b) and bool((a.values == b.values).all())


@checker
def cut_the_pile(first_minutes: Callable[[Pipe, int], Any]) -> Feedback:
    """Check ``first_minutes(sales, minutes)``: the sales that arrived before ``start + minutes``."""
    for seed, minutes in ((11, 10), (12, 3)):
        sales = pipe(seed=seed, rate=2.0, disorder=45.0)
        cut = sales.start + timedelta(minutes=minutes)
        got = _pile_rows(first_minutes(sales, minutes))
        want = _pile_rows(arrived_before(sales, cut))
        if _same_pile(got, want):
            continue
        if _same_pile(got, _pile_rows([e for e in take(sales, 5 * len(want) + 100) if e.event_time < cut])):
            raise Mistake(
                "your pile holds the sales that *happened* before the cut. A pile cut from a pipe holds what "
                "had *arrived* by then: cut by arrival_time (some sales arrive up to 45 s late here)."
            )
        if _same_pile(got, _pile_rows(arrived_before(sales, sales.start + timedelta(seconds=minutes)))):
            raise Mistake(f"your cut is {minutes} seconds after the start, not {minutes} minutes.")
        # A count does not change when sales come four times as fast; a cut by time does.
        faster = pipe(seed=seed, rate=8.0, disorder=45.0)
        if len(got) and len(_pile_rows(first_minutes(faster, minutes))) == len(got):
            raise Mistake(
                "you took a fixed number of sales. The pile must hold every sale that arrived before the "
                "cut, however many that is: cut by time, not by count."
            )
        more_or_fewer = "more" if len(got) > len(want) else "fewer"
        raise Mistake(
            f"for a cut after {minutes} minutes your pile holds {more_or_fewer} sales than arrived by then. "
            "Check the time you cut at (start of the pipe + minutes) and that you keep what arrived strictly before it."
        )
    return correct("your pile holds exactly the sales that had arrived before the cut.")


# -- 2. The stream version of a batch computation ----------------------------------------------

#: A sale is big when its amount is over this many euros.
BIG_SALE = 30.0


def big_sales_batch(pile: Iterable[Event]) -> pd.Series:
    """The batch answer of exercise 2: per store, how many sales were over :data:`BIG_SALE` €.

    Sales with a missing amount are not big. Stores with no big sale are left out.
    """
    frame = to_frame(pile)
    big = frame[frame["value"] > BIG_SALE]
    return big.groupby("key", observed=True).size().rename("big_sales").astype("int64")


def _check_data() -> list[Event]:
    """Sales with the traps a stream version must handle: missing amounts and a sale of exactly 30 €."""
    pile = take(pipe(seed=21, rate=2.0, keys=4, missing=0.03, spread=6.0), 1500)
    last = pile[-1].arrival_time
    exactly = [Event(f"store-{i}", BIG_SALE, last, last + timedelta(seconds=i + 1)) for i in range(4)]
    return pile + exactly


@checker
def big_sales_flow(build: Callable[..., Any]) -> Feedback:
    """Check a dataflow emitting ``(store, running count of big sales)``: its last counts equal the batch's."""
    pile = _check_data()
    want = big_sales_batch(pile)
    try:
        items = stream.run(build, pile)["out"]
    except stream.StreamError as error:
        cause = error.__cause__
        if isinstance(cause, NotImplementedError):
            raise
        if isinstance(cause, TypeError) and "NoneType" in str(cause):
            raise Mistake(
                f"your flow crashed on a sale with a missing amount ({cause}). Some sales arrive with "
                "value None: leave them out of the count (check `e.value is not None` first)."
            ) from None
        raise Mistake(f"your flow stopped: {error}") from None
    if not items:
        raise Mistake("your flow emitted nothing: emit (store, count) each time a big sale arrives.")
    if not all(isinstance(item, tuple) and len(item) == 2 for item in items):
        raise Mistake(
            f"emit (store, count) pairs, as a keyed stateful step does; the first item was {items[0]!r}."
        )
    last: dict[str, Any] = {}
    for store, count in items:
        last[store] = count
    if not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in last.values()):
        raise Mistake(f"each count should be a number; for {next(iter(last))!r} you emitted {next(iter(last.values()))!r}.")
    got = pd.Series(last, dtype="float64").sort_index()
    every_sale = to_frame(pile).groupby("key", observed=True).size()
    if set(got.index) - set(want.index):
        raise Mistake(f"you emitted counts for {sorted(set(got.index) - set(want.index))}, which have no big sale.")
    if set(got.index) == set(want.index):
        got = got.reindex(want.index)
        if (got == want).all():
            return correct("your running counts end exactly where the batch's counts are.")
        if (got == want + 1).all():
            raise Mistake(
                f"you counted the sales of exactly {BIG_SALE:g} € too: 'over {BIG_SALE:g} €' means > {BIG_SALE:g}."
            )
        if (got == 1).all():
            raise Mistake("your counts never grow past 1: keep a running count per store in the state.")
    if set(got.index) == set(every_sale.index.astype(str)) and (got.reindex(every_sale.index.astype(str)).values >= every_sale.values).all():
        raise Mistake(f"you counted every sale; count only those over {BIG_SALE:g} €.")
    wrong = sorted(set(want.index) ^ set(got.index) | {k for k in want.index if k in got.index and got[k] != want[k]})
    raise Mistake(f"your last counts differ from the batch answer for {', '.join(wrong)}.")


# -- 3. When did the running mean settle? ------------------------------------------------------

@functools.lru_cache(maxsize=4)
def _stream_summary(seed: int) -> Summary:
    sales = pipe(seed=seed, rate=2.0)
    return stream.summarize(sales, until=sales.start + timedelta(minutes=10), batch_size=1)


def _lesson_summary(seed: int) -> Summary:
    """The data of a check, computed once; the learner gets a copy, free to change it."""
    cached = _stream_summary(seed)
    return dataclasses.replace(
        cached, table=cached.table.copy(), updates=cached.updates.copy(), rejected=cached.rejected.copy()
    )


@checker
def settled_at(fn: Callable[[Summary, str, float], Any]) -> Feedback:
    """Check ``settled_at(summary, key, within)``: from that update on, the mean stays within ``within``."""
    for seed, key, within in ((1, "store-2", 0.5), (5, "store-0", 0.25)):
        summary = _lesson_summary(seed)
        answer = fn(summary, key, within)
        if not isinstance(answer, datetime):
            raise Mistake(f"return a datetime (one of the known_at values); got {type(answer).__name__} {answer!r}.")
        if answer.tzinfo is None:
            raise Mistake("return a timezone-aware UTC datetime, as known_at values are; yours is naive.")
        rows = summary.updates[summary.updates["key"] == key].reset_index(drop=True)
        times = rows["known_at"]
        at = pd.Timestamp(answer)
        if not (times == at).any():
            raise Mistake(
                f"{answer:%H:%M:%S.%f} is not a moment at which the answer for {key} changed: "
                f"look only at the updates whose key is {key!r}."
            )
        final = rows["mean"].iloc[-1]
        away = (rows["mean"] - final).abs() > within
        position = int(times[times == at].index[0])
        if away.iloc[position:].any():
            if away.iloc[position]:
                raise Mistake(
                    f"at that moment the mean for {key} was still more than {within:g} away from its final value: "
                    "the answer is the first update *after* the last one that was too far."
                )
            raise Mistake(
                f"after that moment the mean for {key} strayed more than {within:g} away again: find the moment "
                "from which it stayed close for good, not the first time it came close."
            )
        if position > 0 and not away.iloc[position - 1]:
            raise Mistake(
                f"the mean for {key} was already within {within:g} of its final value at the update before yours, "
                "and stayed there: your answer is too late."
            )
        if math.isnan(final):
            raise Mistake(f"no mean for {key}: did you pass the right summary?")
    return correct("from that moment on, the running mean stays close to its final value.")
