"""Checks for the exercises of lesson 01, pile versus pipe.

1. ``cut_the_pile``: a function ``first_minutes(sales, minutes)`` returning the
   pile of sales that *arrived* in the first ``minutes`` minutes.
2. ``big_sales_flow``: the stream version of :func:`big_sales_batch`, a dataflow
   emitting ``(store, running count of sales over 30 €)`` as sales arrive.
3. ``running_summary``: the mapper of the lesson's dataflow, ``running(state, sale)``
   for ``op.stateful_map``: each store's running ``(count, sum, min, max)``, missing
   amounts skipped. The check runs it in a bytewax dataflow, keyed per store.
4. ``settled_at``: a function ``settled_at(summary, key, within)`` returning the
   arrival time from which the stream's running mean for ``key`` stayed within
   ``within`` of its final value.

Every check compares the learner's function with the solution
(:mod:`streamlab.exercises.differ`) on the lesson's data, on fresh seeds and on
generated inputs with the exercise's edges: sales arriving exactly on the cut,
pipes that start at other times than the course's clock, amounts missing (None
and NaN), zero, negative, exactly 30 € or huge, empty and one-sale inputs, many
stores, events out of order, updates exactly ``within`` away. The smallest
input found where the answers differ is shown, with the hint of a known mistake
when that mistake gives the learner's answer on it.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import random
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

import bytewax.operators as op
import numpy as np
import pandas as pd

from streamlab import stream
from streamlab.events import COURSE_START, Event, Pipe, arrived_before, pipe, take, to_frame
from streamlab.exercises import Feedback, Mistake, checker, correct
from streamlab.exercises.differ import Case, Exercise, Known, Raised, bag, events, resuming, same, show_events, show_time
from streamlab.summary import OVERALL, Stats, Summary, reject_reason

__all__ = ["BIG_SALE", "big_sales_batch", "big_sales_flow", "cut_the_pile", "running_summary", "settled_at"]

_OTHER_STARTS = (
    COURSE_START,
    COURSE_START + timedelta(hours=9, minutes=17, seconds=31),
    COURSE_START + timedelta(days=40, hours=23, minutes=59),
)


def _is_count(x: Any) -> bool:
    """A number, Python's or numpy's, but not a bool."""
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


# -- 1. Cut the pile ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=8)
def _tail(start: datetime) -> tuple[Event, ...]:
    """Sales arriving a month after ``start``, one a second: after every cut the checks make (made once, shared)."""
    later = start + timedelta(days=30)
    return tuple(Event("store-0", 20.0, later + timedelta(seconds=i), later + timedelta(seconds=i)) for i in range(6000))


class _Scripted(Pipe):
    """A pipe delivering the given sales, then, a month after its start, one sale a second forever: unbounded like any pipe."""

    def __init__(self, sales: list[Event], start: datetime) -> None:
        super().__init__(0, 1.0, 5, "normal", 20.0, 5.0, timedelta(0), 0.0, start)
        self._sales = sales

    def __iter__(self) -> Iterator[Event]:
        yield from self._sales
        tail = _tail(self.start)
        yield from tail
        for i in itertools.count(len(tail)):
            t = tail[0].arrival_time + timedelta(seconds=i)
            yield Event("store-0", 20.0, t, t)


def _pile_rows(answer: Any, case: Case | None = None) -> Any:
    """Accept a list of events or a DataFrame with the event columns; give the pile as a bag of (key, happened, arrived)."""
    if isinstance(answer, Pipe) or (hasattr(answer, "__next__") and not isinstance(answer, list)):
        raise Mistake("return a finite pile (a list or a DataFrame), not the pipe or an iterator over it.")
    if isinstance(answer, (list, tuple)) and all(isinstance(e, Event) for e in answer):
        return bag((e.key, e.event_time, e.arrival_time) for e in answer)
    if isinstance(answer, pd.DataFrame):
        frame = answer
    else:
        raise Mistake(f"return a list of events or a DataFrame made with to_frame(); got {type(answer).__name__}.")
    missing = {"key", "event_time", "arrival_time"} - set(frame.columns)
    if missing:
        raise Mistake(f"your DataFrame lacks the column(s) {sorted(missing)}: keep every field of the events.")
    rows = frame[["key", "event_time", "arrival_time"]]
    return bag(zip(rows["key"].astype(str), rows["event_time"], rows["arrival_time"]))


def _show_pile(pile: Any) -> str:
    items = pile.items if hasattr(pile, "items") and isinstance(pile.items, tuple) else ()
    if isinstance(pile, Raised):
        return repr(pile)
    if not items:
        return "an empty pile"
    if len(items) > 6:
        return f"a pile of {len(items)} sales"
    return "the sales " + ", ".join(f"{key} (arrived {show_time(arrived.to_pydatetime())})" for key, _, arrived in items)


def _cut_call(fn: Callable[..., Any], case: Case) -> Any:
    sales, minutes, start = case.args
    return fn(_Scripted(list(sales), start), minutes)


def _cut_solution(sales: Pipe, minutes: int) -> list[Event]:
    return arrived_before(sales, sales.start + timedelta(minutes=minutes))


def _cut_cases() -> Iterator[Case]:
    # Generated pipes first (a difference shows on round times): sales on a 15-second grid, up to a minute
    # late, so that many arrive exactly on the cut; pipes starting at other times than the course's clock.
    rng = random.Random(101)
    for n in (0, 1, *(rng.randint(2, 14) for _ in range(30))):
        start = rng.choice(_OTHER_STARTS)
        yield Case((events(rng, n, start=start, step=15.0, disorder=4), rng.choice((1, 2, 3)), start))
    # The lesson's data (sales up to 45 s late) and fresh seeds: a prefix long enough to hold every sale
    # that arrived before the cut or happened before it.
    for seed, minutes, start in ((11, 10, COURSE_START), (12, 3, _OTHER_STARTS[1]), (13, 1, _OTHER_STARTS[2])):
        sales = pipe(seed=seed, rate=2.0, disorder=45.0, start=start)
        label = "the lesson's pipe" if seed == 11 else f"a fresh pipe (seed {seed})"
        yield Case((arrived_before(sales, start + timedelta(minutes=minutes + 2)), minutes, start), label)


def _describe_cut(case: Case) -> str:
    sales, minutes, start = case.args
    return f"with a pipe starting at {show_time(start)}, a cut after {minutes} minute{'s' * (minutes != 1)} and {show_events(sales)}"


def _after_every_sale(got: Any, want: Any, case: Case) -> bool:
    return len(got.items) > len(case.args[0])


CUT = Exercise(
    solution=_cut_solution,
    cases=_cut_cases,
    call=_cut_call,
    meaning=_pile_rows,
    describe=_describe_cut,
    show=_show_pile,
    known=(
        Known(
            "your pile holds the sales that *happened* before the cut. A pile cut from a pipe holds what had "
            "*arrived* by then: cut by arrival_time (sales arrive up to a minute late here).",
            model=lambda s, m: [e for e in arrived_before(s, s.start + timedelta(minutes=m + 5))
                                if e.event_time < s.start + timedelta(minutes=m)],
        ),
        Known("your cut is that many seconds after the start, not minutes.",
              model=lambda s, m: arrived_before(s, s.start + timedelta(seconds=m))),
        Known(
            "your cut does not move with the pipe: this pipe starts at another time than the course's clock "
            "(COURSE_START). Every pipe says when it starts: sales.start.",
            model=lambda s, m: arrived_before(s, COURSE_START + timedelta(minutes=m)),
        ),
        Known(
            "a sale that arrives exactly at the cut has not arrived *before* it: keep only what arrived strictly "
            "before the cut.",
            model=lambda s, m: list(itertools.takewhile(
                lambda e: e.arrival_time <= s.start + timedelta(minutes=m), s)),
        ),
        Known(
            "your pile holds sales that arrived long after the cut: a fixed number of sales does that, and so do "
            "minutes counted from another moment than the pipe's start. The pile must hold every sale that arrived "
            "in the first minutes of the pipe, however many that is: cut by time, not by count.",
            when=_after_every_sale,
        ),
    ),
)


@checker
def cut_the_pile(first_minutes: Callable[[Pipe, int], Any]) -> Feedback:
    """Check ``first_minutes(sales, minutes)``: the sales that arrived before ``start + minutes``."""
    CUT.compare(first_minutes)
    return correct("your pile holds exactly the sales that had arrived before the cut, on every pipe tried.")


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


def _big_solution(events: Any) -> Any:
    big = op.filter("big", events, lambda e: e.value is not None and e.value > BIG_SALE)
    by_store = op.key_on("by_store", big, lambda e: e.key)

    def count(running: int | None, sale: Event) -> tuple[int, int]:
        running = (running or 0) + 1
        return running, running

    return op.stateful_map("count", by_store, count)


def _big_counting(predicate: Callable[[Event], bool], step: Callable[[Any], Any] = lambda n: (n or 0) + 1) -> Callable[..., Any]:
    """A model of a mistake: counts of the sales ``predicate`` keeps, each new count made by ``step``."""
    def flow(events: Any) -> Any:
        kept = op.filter("kept", events, predicate)
        by_store = op.key_on("by_store", kept, lambda e: e.key)
        return op.stateful_map("count", by_store, lambda n, e: (step(n), step(n)))

    return flow


def _big_final(events: Any) -> Any:
    """A model of a mistake: one final count per store, as a batch job gives it."""
    big = op.filter("big", events, lambda e: e.value is not None and e.value > BIG_SALE)
    return op.count_final("count", big, lambda e: e.key)


def _big_call(build: Callable[..., Any], case: Case) -> list[Any]:
    return stream.run(build, list(case.args[0]))["out"]


def _running_counts(items: Any, case: Case) -> Any:
    """Per store, the counts emitted in order (a count repeated in a row said once): a stream's running answer."""
    if isinstance(items, Raised):
        return items
    if not items:
        return {}
    if not all(isinstance(item, tuple) and len(item) == 2 for item in items):
        raise Mistake(f"emit (store, count) pairs, as a keyed stateful step does; one item was {items[0]!r:.80}.")
    counts: dict[str, list[float]] = {}
    for store, count in items:
        if not _is_count(count):
            raise Mistake(f"each count should be a number; for {store!r} you emitted {count!r:.60}.")
        said = counts.setdefault(str(store), [])
        if not said or said[-1] != float(count):
            said.append(float(count))
    return {store: tuple(said) for store, said in sorted(counts.items())}


def _show_counts(answer: Any) -> str:
    if isinstance(answer, Raised):
        return repr(answer)
    if not answer:
        return "nothing emitted"
    return "; ".join(f"{store} {', '.join(f'{c:g}' for c in said)}" for store, said in answer.items())


def _big_cases() -> Iterator[Case]:
    rng = random.Random(102)
    for n in (0, 1, *(rng.randint(2, 12) for _ in range(24))):
        yield Case((events(rng, n, keys=rng.randint(1, 4), special=0.4),))
    pile = take(pipe(seed=21, rate=2.0, keys=4, missing=0.03, spread=6.0), 1500)
    last = pile[-1].arrival_time
    exactly = [Event(f"store-{i}", BIG_SALE, last, last + timedelta(seconds=i + 1)) for i in range(4)]
    yield Case((pile + exactly,), "the lesson's data")
    yield Case((take(pipe(seed=22, rate=3.0, keys=9, missing=0.05, spread=10.0, disorder=20.0), 400),),
               "a fresh pipe (seed 22)")


def _every_store_once(got: Any, want: Any, case: Case) -> bool:
    return bool(got) and all(len(said) == 1 for said in got.values()) and any(len(s) > 1 for s in want.values())


BIG = Exercise(
    solution=_big_solution,
    cases=_big_cases,
    call=_big_call,
    meaning=_running_counts,
    describe=lambda case: f"with {show_events(case.args[0])}",
    show=_show_counts,
    known=(
        Known("your flow crashed on a sale with a missing amount: some sales arrive with value None, and they are "
              "not big: leave them out of the count.", model=_big_counting(lambda e: e.value > BIG_SALE)),  # type: ignore[operator]
        Known(f"you counted the sales of exactly {BIG_SALE:g} € too: 'over {BIG_SALE:g} €' leaves them out.",
              model=_big_counting(lambda e: e.value is not None and e.value >= BIG_SALE)),
        Known(f"you counted every sale; count only those over {BIG_SALE:g} €.", model=_big_counting(lambda e: True)),
        Known(f"you counted every sale with an amount; count only those over {BIG_SALE:g} €.",
              model=_big_counting(lambda e: e.value is not None and not math.isnan(e.value))),
        Known("your counts never grow past 1: keep a running count per store in the state.",
              when=lambda got, want, case: bool(got) and {c for s in got.values() for c in s} == {1.0}),
        Known("your flow gives each store's count once, at the end, as a batch job does. A stream has no end: "
              "emit the store's count each time one of its big sales arrives.", when=_every_store_once),
    ),
)


@checker
def big_sales_flow(build: Callable[..., Any]) -> Feedback:
    """Check a dataflow emitting ``(store, running count of big sales)`` each time a big sale arrives."""
    BIG.compare(build)
    return correct("your running counts grow with every big sale and end exactly where the batch's counts are.")


# -- 3. The engine's mapper: a running summary per store ---------------------------------------

Answer = tuple[int, float, float, float]


def _reference(state: Answer | None, sale: Event) -> tuple[Answer | None, Answer | None]:
    """The right mapper, from the library's own pieces: skip a bad value, else fold it in with ``Stats.add``."""
    if reject_reason(sale.value) is not None:
        return state, state
    stats = Stats(*state) if state is not None else Stats()
    stats.add(sale.value)
    return stats.as_tuple(), stats.as_tuple()


def _model(*, start: tuple | None = None, skip: str = "bad", keep: bool = True) -> Callable[..., Any]:
    """A typical wrong mapper: another starting state, another test for a missing value, or the state dropped."""
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


class _NotAPair(Exception):
    """The learner's mapper returned something other than a (state, answer) pair."""


def _run_running(fn: Callable[..., Any], case: Case) -> list[tuple[str, Any]]:
    """Run a mapper in a real bytewax dataflow: per store, one ``op.stateful_map`` step."""
    resumed = resuming(fn, show_items=show_events)

    def mapper(state: Any, sale: Event) -> Any:
        out = resumed(state, sale)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise _NotAPair(out)
        return out

    def body(sales: Any) -> Any:
        per_store = op.key_on("per_store", sales, lambda sale: sale.key)
        return op.stateful_map("running", per_store, mapper)

    try:
        return stream.run(body, list(case.args[0]))["out"]
    except stream.StreamError as error:
        if isinstance(error.__cause__, _NotAPair):
            raise Mistake(
                f"your function must return a pair: (the store's new state, the answer to emit); it returned "
                f"{error.__cause__.args[0]!r:.80}."
            ) from None
        raise


def _per_store(items: Any, case: Case) -> Any:
    """The answers for each store's counted sales, in arrival order; a malformed answer gets its hint.

    What is emitted for a sale with a missing amount is left out (None or the
    unchanged answer are both fine): counting such a sale shows in the answers after it.
    """
    if isinstance(items, Raised):
        return items
    bad: dict[str, list[bool]] = {}
    for sale in case.args[0]:
        bad.setdefault(sale.key, []).append(reject_reason(sale.value) is not None)
    seen: dict[str, int] = {}
    got: dict[str, list[Any]] = {}
    for store, answer in items:
        position = seen[store] = seen.get(store, -1) + 1
        if bad[store][position]:
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
        if not all(_is_count(x) for x in answer):
            raise Mistake(f"each of count, sum, min and max should be a number; for {store!r} you emitted {answer!r:.80}.")
        got.setdefault(store, []).append(tuple(float(x) for x in answer))
    return {store: tuple(answers) for store, answers in sorted(got.items())}


def _first_fields(n: int) -> Callable[[Any, Any], bool]:
    """Compare answers on their first ``n`` numbers only (min and max of a NaN depend on how one compares)."""
    def same_start(a: Any, b: Any) -> bool:
        if not (isinstance(a, dict) and isinstance(b, dict)) or a.keys() != b.keys():
            return False
        return all(len(a[k]) == len(b[k]) and all(same(x[:n], y[:n]) for x, y in zip(a[k], b[k])) for k in a)

    return same_start


def _one_count_for_all(got: Any, want: Any, case: Case) -> bool:
    """Do the counts of several stores run on as one (no count given to two stores): one state shared by all?"""
    counts = [answer[0] for store in got.values() for answer in store]
    return len(got) > 1 and len(set(counts)) == len(counts)


def _running_cases() -> Iterator[Case]:
    t = COURSE_START
    rng = random.Random(103)
    signs: tuple[Callable[[random.Random], float], ...] = (
        lambda r: round(r.uniform(1.0, 60.0), 2), lambda r: -round(r.uniform(1.0, 60.0), 2),
        lambda r: round(r.uniform(-20.0, 20.0), 1),
    )
    for n in (0, 1, *(rng.randint(2, 10) for _ in range(24))):
        # All-negative, all-positive and mixed stores; amounts missing (None and NaN), zero, huge.
        yield Case((events(rng, n, keys=rng.randint(1, 4), typical=rng.choice(signs), special=0.35,
                           values=(None, float("nan"), 0.0, 0.0, -1e9, 1e9, 0.125)),))
    yield Case(([Event("solo", 12.5, t, t)],), "a single sale")

    def at(seconds: float) -> datetime:
        return t + timedelta(seconds=seconds)

    # Hand-made: negative and zero amounts, None and NaN before and between sales, a store whose first sales are
    # missing, a min passing through 0.
    yield Case(([
        Event("cold", -3.0, at(1), at(1)), Event("cold", -1.5, at(2), at(2)), Event("cold", -7.25, at(3), at(3)),
        Event("flat", 0.0, at(4), at(4)), Event("late-start", None, at(5), at(5)),
        Event("late-start", float("nan"), at(6), at(6)), Event("late-start", 4.0, at(7), at(7)),
        Event("cold", float("nan"), at(8), at(8)), Event("flat", None, at(9), at(9)), Event("flat", 0.0, at(10), at(10)),
        Event("warm", 2.0, at(11), at(11)), Event("warm", 0.0, at(12), at(12)), Event("warm", 5.0, at(13), at(13)),
        Event("cold", -2.0, at(14), at(14)),
    ],), "hand-made edge cases")
    noisy = pipe(seed=1, rate=2.0, keys=5, missing=0.02)
    yield Case((arrived_before(noisy, noisy.start + timedelta(minutes=10)),), "the lesson's noisy pipe")
    yield Case((take(pipe(seed=37, rate=4.0, keys=40, missing=0.05), 1500),), "a fresh pipe of 40 stores")


def _show_running(answer: Any) -> str:
    if isinstance(answer, Raised) or not answer:
        return repr(answer) if answer else "no answers"
    return "; ".join(
        f"{store}: " + ", ".join("(" + ", ".join(f"{x:g}" for x in a) + ")" for a in answers)
        for store, answers in answer.items()
    )


RUNNING = Exercise(
    solution=_reference,
    cases=_running_cases,
    call=_run_running,
    meaning=_per_store,
    describe=lambda case: f"with {show_events(case.args[0])}",
    show=_show_running,
    resume=100,  # every case, resumed from snapshots at the end: totals kept outside the state show then
    state_hint=(
        "run twice over the same sales, your mapper gave different answers: it keeps something outside the state "
        "stateful_map hands it (a variable outside the function), which every store shares and which lives on from "
        "one run to the next. Keep the running numbers only in that state"
    ),
    known=(
        Known("your state is not kept per store: every store shares one running total. Keep the running numbers only "
              "in the state stateful_map hands you (it is that store's).", when=_one_count_for_all),
        Known("your answers never grow past one sale: return the new state as the first item of the pair, so that "
              "stateful_map hands it back with the store's next sale.", model=_model(keep=False)),
        Known("your max starts at 0, so a store whose sales are all negative gets a max of 0. Start it from the "
              "first sale's value.", model=_model(start=(0, 0.0, math.inf, 0.0))),
        Known("your min and max start at 0: a store with only positive sales gets a min of 0, and one with only "
              "negative sales a max of 0. Start them from the first sale's value.",
              model=_model(start=(0, 0.0, 0.0, 0.0))),
        Known("a missing amount can be NaN as well as None, and you counted the NaN ones (your sum became nan). "
              "Skip a value that is None or NaN (streamlab.summary.reject_reason says which).",
              model=_model(skip="none"), same=_first_fields(2)),
        Known("you counted the sales with a missing amount (as 0 €): they are not sales you can add up. Skip them: "
              "return the state unchanged.", model=_model(skip="zero"), same=_first_fields(2)),
        Known("your function crashed on a sale with a missing amount. Check for a missing value (None or NaN) "
              "first, and then return the state unchanged.",
              when=lambda got, want, case: isinstance(got, Raised) and got.error is TypeError
              and any(e.value is None for e in case.args[0])),
    ),
)


@checker
def running_summary(fn: Callable[[Any, Event], Any]) -> Feedback:
    """Check ``running(state, sale)``, the lesson's ``stateful_map`` mapper, run in a bytewax dataflow per store.

    After each counted sale it must emit its store's ``(count, sum, min, max)`` so
    far; a sale with a missing amount (None or NaN) leaves the state as it is.
    """
    RUNNING.compare(fn)
    return correct(
        "your mapper gives every store's running count, sum, min and max after each sale and skips missing "
        "amounts, on the lesson's sales and on every other input tried."
    )


# -- 4. When did the running mean settle? ------------------------------------------------------

@functools.lru_cache(maxsize=4)
def _lesson_summary(seed: int) -> Summary:
    sales = pipe(seed=seed, rate=2.0)
    return stream.summarize(sales, until=sales.start + timedelta(minutes=10), batch_size=1)


@functools.lru_cache(maxsize=64)
def _generated_summary(seed: int) -> tuple[Summary, str, float]:
    """A small summary made to tie: whole-euro amounts, so that a mean is often exactly ``within`` away."""
    rng = random.Random(seed)
    pile = events(rng, rng.randint(1, 9), keys=rng.randint(1, 3), values=(None, float("nan")), special=0.15,
                  typical=lambda r: float(r.randint(8, 14)))
    summary = stream.summarize(pile, batch_size=1)
    keys = sorted(k for k in summary.table.index if k != OVERALL) or [OVERALL]
    return summary, rng.choice(keys), rng.choice((0.5, 1.0, 2.0))


def _settled_view(summary: Summary, rows: list[int]) -> Summary:
    """The summary with only some of its updates: what the learner gets (a copy, free to change)."""
    return dataclasses.replace(summary, table=summary.table.copy(), rejected=summary.rejected.copy(),
                               updates=summary.updates.iloc[list(rows)].reset_index(drop=True))


def _settled_cases() -> Iterator[Case]:
    for seed in range(104, 120):
        summary, key, within = _generated_summary(seed)
        yield Case((summary, key, within, list(range(len(summary.updates)))), items=3)
    for seed, key, within in ((1, "store-2", 0.5), (5, "store-0", 0.25)):
        summary = _lesson_summary(seed)
        yield Case((summary, key, within, list(range(len(summary.updates)))), "the lesson's data", items=3)


def _settled_call(fn: Callable[..., Any], case: Case) -> Any:
    summary, key, within, rows = case.args
    return fn(_settled_view(summary, rows), key, within)


def _settled_solution(summary: Summary, key: str, within: float) -> datetime:
    rows = summary.updates[summary.updates["key"] == key].reset_index(drop=True)
    away = (rows["mean"] - rows["mean"].iloc[-1]).abs() > within
    return rows["known_at"].iloc[away[away].index[-1] + 1 if away.any() else 0].to_pydatetime()


def _moment(answer: Any, case: Case) -> Any:
    if isinstance(answer, Raised):
        return answer
    if not isinstance(answer, datetime):
        raise Mistake(f"return a datetime (one of the known_at values); got {type(answer).__name__} {answer!r:.60}.")
    if answer.tzinfo is None:
        raise Mistake("return a timezone-aware UTC datetime, as known_at values are; yours is naive.")
    return pd.Timestamp(answer)


def _describe_settled(case: Case) -> str:
    summary, key, within, rows = case.args
    updates = summary.updates.iloc[list(rows)]
    mine = updates[updates["key"] == key]
    others = len(updates) - len(mine)
    lines = "\n".join(f"  {show_time(t.to_pydatetime())}  {m:.10g}" for t, m in zip(mine["known_at"], mine["mean"]))
    rest = f" (and {others} update{'s' * (others != 1)} of other keys)" if others else ""
    return f"with within={within:g} and these updates of {key}{rest} (known_at, mean):\n{lines}"


def _settled_model(test: Callable[[pd.Series, float], pd.Series], *, last: bool = False,
                   every_key: bool = False) -> Callable[..., Any]:
    """A typical wrong answer: another test of 'too far', the last far update itself, or every key's updates."""
    def settled(summary: Summary, key: str, within: float) -> Any:
        rows = summary.updates if every_key else summary.updates[summary.updates["key"] == key]
        rows = rows.reset_index(drop=True)
        away = test((rows["mean"] - rows["mean"].iloc[-1]).abs(), within)
        if last:
            return rows["known_at"][away].iloc[-1].to_pydatetime()
        return rows["known_at"].iloc[away[away].index[-1] + 1 if away.any() else 0].to_pydatetime()

    return settled


def _first_close(summary: Summary, key: str, within: float) -> Any:
    rows = summary.updates[summary.updates["key"] == key].reset_index(drop=True)
    close = (rows["mean"] - rows["mean"].iloc[-1]).abs() <= within
    return rows["known_at"][close].iloc[0].to_pydatetime()


SETTLED = Exercise(
    solution=_settled_solution,
    cases=_settled_cases,
    call=_settled_call,
    meaning=_moment,
    describe=_describe_settled,
    show=lambda answer: repr(answer) if isinstance(answer, Raised) else show_time(answer.to_pydatetime()),
    budget=60,
    known=(
        Known("your answer is the first time the mean came close; after it, the mean strayed too far away again. "
              "Find the moment from which it stayed close for good.", model=_first_close),
        Known("your answer is the last moment the mean was still too far away: the one after it is the first of "
              "those that stay close.", model=_settled_model(lambda gap, w: gap > w, last=True)),
        Known("a mean exactly `within` away from the final value is within it, not too far away: only a gap "
              "larger than `within` is too far.", model=_settled_model(lambda gap, w: gap >= w)),
        Known("your answer mixes the updates of every key (the 'all keys' rows too): look only at the updates "
              "whose key is the one asked for.", model=_settled_model(lambda gap, w: gap > w, every_key=True)),
    ),
)


@checker
def settled_at(fn: Callable[[Summary, str, float], Any]) -> Feedback:
    """Check ``settled_at(summary, key, within)``: from that update on, the mean stays within ``within``."""
    SETTLED.compare(fn)
    return correct("from that moment on, the running mean stays close to its final value, on every summary tried.")
