"""Checks for the exercises of lesson 01, pile versus pipe.

1. ``cut_the_pile``: a function ``first_minutes(sales, minutes)`` returning the
   pile of sales that *arrived* in the first ``minutes`` minutes.
2. ``big_sales_flow``: the stream version of :func:`big_sales_batch`, a dataflow
   emitting ``(store, running count of sales over 30 €)`` as sales arrive.
3. ``running_summary``: the mapper of the lesson's dataflow, ``running(state, sale)``
   for ``op.stateful_map``: each store's running ``(count, sum, min, max)``, missing
   amounts skipped. The check runs it in a bytewax dataflow, keyed per store, on the
   lesson's data, a fresh pipe and edge cases, and compares with the library.
4. ``settled_at``: a function ``settled_at(summary, key, within)`` returning the
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

import bytewax.operators as op
import pandas as pd

from streamlab import batch, stream
from streamlab.events import COURSE_START, Event, Pipe, arrived_before, pipe, take, to_frame
from streamlab.exercises import Feedback, Mistake, checker, correct
from streamlab.summary import OVERALL, Stats, Summary, reject_reason

__all__ = ["BIG_SALE", "big_sales_batch", "big_sales_flow", "cut_the_pile", "running_summary", "settled_at"]


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


# -- 4. The engine's mapper: a running summary per store ---------------------------------------

Answer = tuple[int, float, float, float]


def _reference(state: Answer | None, sale: Event) -> tuple[Answer | None, Answer | None]:
    """The right mapper, from the library's own pieces: skip a bad value, else fold it in with ``Stats.add``."""
    if reject_reason(sale.value) is not None:
        return state, state
    stats = Stats(*state) if state is not None else Stats()
    stats.add(sale.value)
    return stats.as_tuple(), stats.as_tuple()


def _model(*, start: tuple | None = None, skip: str = "bad", keep: bool = True) -> Callable[..., Any]:
    """A typical wrong mapper: another starting state, another test for a missing value, or the state dropped.

    (Emitting the state from before the sale is recognised by its first answer, None.)
    """
    def mapper(state: Answer | None, sale: Event) -> tuple[Any, Any]:
        value = sale.value
        if (skip == "bad" and reject_reason(value) is not None) or (skip == "none" and value is None):
            return state, state
        if skip == "zero" and reject_reason(value) is not None:
            value = 0.0
        count, total, low, high = state if state is not None else (start or (0, 0.0, math.inf, -math.inf))
        new = (count + 1, total + value, min(low, value), max(high, value))
        return (new if keep else None), new

    return mapper


_SHARED = (
    "your state is not kept per store: every store shares one running total. Keep the running numbers only in "
    "the state stateful_map hands you (it is that store's), not in a variable outside the function."
)

#: Each typical mistake: its model mapper, how many of (count, sum, min, max) must match it (the
#: missing-value mistakes: count and sum, as min and max of a NaN depend on how the learner compares),
#: and its hint.
_RUNNING_MISTAKES: tuple[tuple[Callable[..., Any], int, str], ...] = (
    (_model(keep=False), 4,
     "your answers never grow past one sale: return the new state as the first item of the pair, so that "
     "stateful_map hands it back with the store's next sale."),
    (_model(start=(0, 0.0, math.inf, 0.0)), 4,
     "your max starts at 0, so a store whose sales are all negative gets a max of 0. Start it from the first "
     "sale's value (or from -math.inf)."),
    (_model(start=(0, 0.0, 0.0, 0.0)), 4,
     "your min and max start at 0: a store with only positive sales gets a min of 0, and one with only negative "
     "sales a max of 0. Start them from the first sale's value (or from math.inf and -math.inf)."),
    (_model(skip="none"), 2,
     "a missing amount can be NaN as well as None, and you counted the NaN ones (your sum became nan). Skip a "
     "value that is None or NaN: `value is None or math.isnan(value)` (or streamlab.summary.reject_reason)."),
    (_model(skip="zero"), 2,
     "you counted the sales with a missing amount (as 0 €): they are not sales you can add up. Skip them: return "
     "the state unchanged."),
)


def _running_cases() -> list[tuple[str, list[Event]]]:
    """The check's traces: the lesson's noisy pipe, fresh seeds with many stores, and hand-made edge cases."""
    t = COURSE_START

    def at(seconds: float) -> datetime:
        return t + timedelta(seconds=seconds)

    edges = [
        Event("cold", -3.0, at(1), at(1)), Event("cold", -1.5, at(2), at(2)), Event("cold", -7.25, at(3), at(3)),
        Event("flat", 0.0, at(4), at(4)), Event("late-start", None, at(5), at(5)),
        Event("late-start", float("nan"), at(6), at(6)), Event("late-start", 4.0, at(7), at(7)),
        Event("cold", float("nan"), at(8), at(8)), Event("flat", None, at(9), at(9)), Event("flat", 0.0, at(10), at(10)),
        Event("warm", 2.0, at(11), at(11)), Event("warm", 5.0, at(12), at(12)), Event("cold", -2.0, at(13), at(13)),
    ]
    noisy = pipe(seed=1, rate=2.0, keys=5, missing=0.02)
    fresh = pipe(seed=37, rate=4.0, keys=40, missing=0.05)
    return [
        ("a single sale", [Event("solo", 12.5, t, t)]),
        ("hand-made edge cases (negative and zero amounts, None and NaN, a store whose first sales are missing)", edges),
        ("the lesson's noisy pipe, first 10 minutes", arrived_before(noisy, noisy.start + timedelta(minutes=10))),
        ("a fresh pipe of 40 stores", take(fresh, 2000)),
    ]


class _NotAPair(Exception):
    """The learner's mapper returned something other than a (state, answer) pair."""


def _run_running(fn: Callable[..., Any], events: list[Event]) -> list[tuple[str, Any]]:
    """Run the learner's mapper in a real bytewax dataflow: per store, one ``op.stateful_map`` step."""
    def mapper(state: Any, sale: Event) -> Any:
        out = fn(state, sale)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise _NotAPair(out)
        return out

    def body(sales: Any) -> Any:
        per_store = op.key_on("per_store", sales, lambda sale: sale.key)
        return op.stateful_map("running", per_store, mapper)

    try:
        return stream.run(body, events)["out"]
    except stream.StreamError as error:
        cause = error.__cause__ or error
        if isinstance(cause, NotImplementedError):
            raise cause from None
        if isinstance(cause, _NotAPair):
            raise Mistake(
                f"your function must return a pair: (the store's new state, the answer to emit); it returned "
                f"{cause.args[0]!r:.80}."
            ) from None
        if isinstance(cause, TypeError) and "NoneType" in str(cause):
            raise Mistake(
                f"your function crashed on a sale with a missing amount ({cause}). Check for a missing value "
                "(None or NaN) first, and then return the state unchanged."
            ) from None
        raise Mistake(f"your dataflow stopped: {type(cause).__name__}: {cause}") from None


def _simulate(mapper: Callable[..., Any], events: list[Event]) -> list[tuple[str, Any]]:
    """What a mapper emits, keyed per store as the dataflow does, in a plain loop."""
    states: dict[str, Any] = {}
    out = []
    for sale in events:
        state, answer = mapper(states.get(sale.key), sale)
        states[sale.key] = state
        out.append((sale.key, answer))
    return out


def _per_store(items: list[tuple[str, Any]], events: list[Event], *, strict: bool = True) -> dict[str, list[Any]]:
    """The answers a mapper gave for each store's counted sales, in arrival order; a malformed answer gets its hint.

    What it emits for a sale with a missing amount is left out (None or the
    unchanged answer are both fine): counting such a sale shows in the answers after it.
    """
    bad = {}
    for sale in events:
        bad.setdefault(sale.key, []).append(reject_reason(sale.value) is not None)
    seen: dict[str, int] = {}
    got: dict[str, list[Any]] = {}
    for pair in items:
        store, answer = pair
        position = seen[store] = seen.get(store, -1) + 1
        if bad[store][position]:
            continue
        if answer is None and not strict:  # a model of a mistake may emit None
            got.setdefault(store, []).append(None)
            continue
        if answer is None:
            raise Mistake(
                f"for a sale of {store!r} with an amount you emitted None. Emit the store's answer including that "
                "sale: the new state, not the one from before it."
            )
        if not (isinstance(answer, (tuple, list)) and len(answer) == 4):
            raise Mistake(
                f"each answer should be (count, sum, min, max) of the store so far; for {store!r} you emitted "
                f"{answer!r:.80}."
            )
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in answer):
            raise Mistake(f"each of count, sum, min and max should be a number; for {store!r} you emitted {answer!r:.80}.")
        got.setdefault(store, []).append(tuple(float(x) for x in answer))
    return got


def _same_answers(a: dict[str, list[Any]], b: dict[str, list[Any]], fields: int = 4) -> bool:
    """Equal store by store, answer by answer, in the first ``fields`` numbers; floats within rounding, NaN equal to NaN."""
    if a.keys() != b.keys():
        return False
    for key in a:
        if len(a[key]) != len(b[key]):
            return False
        for x, y in zip(a[key], b[key]):
            if (x is None) != (y is None):
                return False
            if x is not None and not all(
                (math.isnan(p) and math.isnan(q)) or math.isclose(p, q, rel_tol=1e-9, abs_tol=1e-9)
                for p, q in zip(x[:fields], y[:fields])
            ):
                return False
    return True


def _one_count_for_all(answers: dict[str, list[Any]]) -> bool:
    """Do the counts of several stores run on as one (no count given to two stores): one state shared by all?

    Kept per store, every store's first counted sale has count 1, its second 2,
    and so on; shared (a variable outside the mapper, which may even live on
    from an earlier run), each count is given once.
    """
    counts = [answer[0] for store in answers.values() for answer in store]
    return len(answers) > 1 and len(set(counts)) == len(counts)


@checker
def running_summary(fn: Callable[[Any, Event], Any]) -> Feedback:
    """Check ``running(state, sale)``, the lesson's ``stateful_map`` mapper, run in a bytewax dataflow per store.

    After each counted sale it must emit its store's ``(count, sum, min, max)`` so
    far; a sale with a missing amount (None or NaN) leaves the state as it is.
    The last answers must be :func:`streamlab.batch.summarize`'s table.
    """
    cases = _running_cases()
    gots = [_per_store(_run_running(fn, events), events) for _, events in cases]
    wants = [_per_store(_simulate(_reference, events), events) for _, events in cases]
    wrong = [i for i, (got, want) in enumerate(zip(gots, wants)) if not _same_answers(got, want)]
    if wrong:
        if any(_one_count_for_all(got) for got in gots):
            raise Mistake(_SHARED)
        for model, fields, message in _RUNNING_MISTAKES:
            models = [_per_store(_simulate(model, events), events, strict=False) for _, events in cases]
            if all(_same_answers(got, m, fields) for got, m in zip(gots, models)):
                raise Mistake(message)
        raise Mistake(
            f"on {cases[wrong[0]][0]}, your answers differ from the running count, sum, min and max of the store's "
            "sales so far. Follow one store's sales one by one: what the state holds before and after each."
        )
    # The proof, on the lesson's data: each store's last answer is the batch answer.
    events = cases[2][1]
    last = {store: answers[-1] for store, answers in gots[2].items()}
    table = batch.summarize(events).table.drop(index=OVERALL)[["count", "sum", "min", "max"]]
    if not all(
        last[store] is not None and all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(last[store], row))
        for store, row in zip(table.index, table.itertuples(index=False, name=None))
    ):
        raise Mistake("your last answers differ from batch.summarize's table on the lesson's data.")
    return correct(
        f"your mapper gives every store's running count, sum, min and max after each sale, skips missing amounts, "
        f"and its last answers are batch.summarize's table for all {len(table)} stores of the lesson's pipe."
    )
