"""Checks for the exercises of lesson 09, shift left to the lakehouse.

1. ``choose_every``: a function ``choose_every(arrivals, target, sizes)`` that
   picks, of the micro-batch sizes given, the one that makes the fewest commits
   while no row waits longer than ``target`` to be readable (``None`` if none does).
2. ``paid_at``: a function ``paid_at(table, when)`` returning the money paid per
   hour as the Iceberg table said at ``when`` on the simulated clock (time travel).
3. ``sink_rows``: a function ``sink_rows(records)`` that takes the bytewax stream
   of ``(partition, offset, Validated)`` read from the log and returns the stream
   of items the Iceberg sink commits; run in a real dataflow, log to table.

The first is compared with the solution on the lesson's arrivals and generated
ones (:mod:`streamlab.exercises.differ`). The other two build their own logs
and tables in temporary directories, which are never shown.
"""

from __future__ import annotations

import contextlib
import functools
import random
import tempfile
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from streamlab import lakehouse as lh
from streamlab.events import COURSE_START, arrived_before
from streamlab.exercises import Feedback, Mistake, checker, correct
from streamlab.exercises.differ import Case, Exercise, Known, learner_dataflow, show_time
from streamlab.log import Log
from streamlab.orders import order_pipe

__all__ = ["choose_every", "paid_at", "sink_rows"]

#: The lesson's day: order pipe seed 9 at 0.01 orders a second, 5 % of records damaged.
LESSON_SEED = 9
SIZES = tuple(timedelta(minutes=m) for m in (1, 5, 10, 15, 30, 60)) + (timedelta(hours=2), timedelta(days=1))


@functools.lru_cache(maxsize=4)
def _raw(seed: int, hours: float, rate: float = 0.01, disorder: float = 0.0) -> tuple[dict, ...]:
    events = arrived_before(order_pipe(seed=seed, rate=rate, disorder=disorder), COURSE_START + timedelta(hours=hours))
    return tuple(lh.raw_orders(events, seed=seed, damaged=0.05))


# -- exercise 1: a micro-batch size for a freshness target ----------------------------------------

def _worst_wait(arrivals: Sequence[datetime], every: timedelta) -> timedelta:
    return max((lh.batch_end(t, every) - t for t in arrivals), default=timedelta(0))


def _choose_every(arrivals, target, sizes):
    fits = [every for every in sizes if _worst_wait(arrivals, every) <= target]
    return max(fits) if fits else None


def _every_is_the_wait(arrivals, target, sizes):
    fits = [every for every in sizes if every <= target]
    return max(fits) if fits else None


def _strictly_below(arrivals, target, sizes):
    fits = [every for every in sizes if _worst_wait(arrivals, every) < target]
    return max(fits) if fits else None


def _freshest(arrivals, target, sizes):
    fits = [every for every in sizes if _worst_wait(arrivals, every) <= target]
    return min(fits) if fits else None


def _wait_from_batch_start(arrivals, target, sizes):
    def wait(every):
        return max((t - (lh.batch_end(t, every) - every) for t in arrivals), default=timedelta(0))
    fits = [every for every in sizes if wait(every) <= target]
    return max(fits) if fits else None


def _choose_cases() -> Iterator[Case]:
    # The lesson's morning: enough arrivals for every size to show its worst wait, few enough to check at once.
    lesson = [lh.validate_raw(r) for r in _raw(LESSON_SEED, 6)]
    arrivals = [c.arrival_time for c in lesson if c.event is not None]
    for minutes in (12, 15, 45, 2000):
        yield Case((arrivals, timedelta(minutes=minutes), SIZES), "the lesson's morning")
    rng = random.Random(9)
    for _ in range(60):
        start = COURSE_START + timedelta(minutes=rng.randrange(0, 24 * 60))
        n = rng.randint(0, 6)
        # Arrivals on whole minutes now and then: a row arriving exactly at a batch's end waits a whole batch.
        times = sorted(start + timedelta(minutes=rng.choice([0, 1, 5, 15, 30, 60]) * rng.randint(0, 3),
                                         seconds=rng.choice([0, 0, rng.randint(1, 59)])) for _ in range(n))
        target = timedelta(minutes=rng.choice([0, 1, 5, 9, 10, 14, 15, 29, 30, 59, 60, 120, 1440]))
        sizes = tuple(rng.sample(SIZES, rng.randint(1, len(SIZES))))
        yield Case((times, target, sizes), "generated arrivals")


def _show_case(case: Case) -> str:
    arrivals, target, sizes = case.args
    times = ", ".join(show_time(t) for t in arrivals[:6]) + (", ..." if len(arrivals) > 6 else "")
    return (f"with {len(arrivals)} arrivals ({times}), a target of {_show_every(target)} and the sizes "
            f"{[_show_every(s) for s in sizes]}")


def _show_every(every: Any) -> str:
    if not isinstance(every, timedelta):
        return repr(every)
    minutes = every.total_seconds() / 60
    return f"{minutes:g} min" if minutes < 60 or minutes % 60 else f"{minutes / 60:g} h"


def _every_meaning(answer: Any, case: Case) -> Any:
    if answer is not None and not isinstance(answer, timedelta):
        raise Mistake(f"return one of the sizes given (a timedelta), or None when none fits; got "
                      f"{type(answer).__name__} {answer!r:.60}")
    if answer is not None and answer not in case.args[2]:
        raise Mistake(f"return one of the sizes given; {_show_every(answer)} is not among them.")
    return answer


CHOOSE = Exercise(
    solution=_choose_every,
    cases=_choose_cases,
    describe=_show_case,
    meaning=_every_meaning,
    show=lambda answer: _show_every(answer),
    known=(
        Known("A row's wait depends on when it arrives, not only on the size: it waits from its arrival to the "
              "end of its micro-batch (lh.batch_end), so with few arrivals a bigger size may still meet the target.",
              model=_every_is_the_wait),
        Known("A size whose worst wait equals the target meets it: 'no longer than' allows equal.",
              model=_strictly_below),
        Known("Of the sizes that meet the target, take the one that makes the fewest commits: the largest.",
              model=_freshest),
        Known("A row becomes readable at the end of its micro-batch, not at its start: measure the wait from its "
              "arrival to lh.batch_end(arrival, every).", model=_wait_from_batch_start),
    ),
)


@checker
def choose_every(fn: Callable[..., Any]) -> Feedback:
    """Check ``choose_every(arrivals, target, sizes)`` against the solution on the lesson's morning and generated arrivals."""
    CHOOSE.compare(fn)
    return correct(
        "your choice meets every freshness target with the fewest commits, on the lesson's morning and on generated "
        "arrivals (some exactly on a batch's end, some sparse enough for a bigger size to fit)."
    )


# -- exercise 2: time travel ----------------------------------------------------------------------

def _money(answer: Any) -> dict[str, float]:
    if isinstance(answer, pd.DataFrame):
        if answer.shape[1] != 1:
            raise Mistake("return the money paid per hour: a Series (or dict) from hour to money, not a table of "
                          f"{answer.shape[1]} columns.")
        answer = answer.iloc[:, 0]
    if isinstance(answer, pd.Series):
        answer = answer.to_dict()
    if not isinstance(answer, dict):
        raise Mistake(f"return a Series or a dict from hour ('09:00') to money paid; got {type(answer).__name__}.")
    out = {}
    for hour, paid in answer.items():
        key = hour.strftime("%H:00") if hasattr(hour, "strftime") else str(hour)
        try:
            out[key] = round(float(paid), 2)
        except (TypeError, ValueError):
            raise Mistake(f"the money for {key} must be a number, got {paid!r:.40}") from None
    return out


def _paid_at(table, when):
    try:
        then = lh.as_of(table, when)
    except lh.NothingCommittedError:
        return {}
    paid = then[then["kind"] == "paid"]
    return paid.groupby(paid["event_time"].dt.strftime("%H:00"))["amount"].sum().round(2).to_dict()


@contextlib.contextmanager
def _lake(seed: int, hours: float, every: timedelta, rate: float = 0.01,
          disorder: float = 0.0) -> Iterator[tuple[Log, Any, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        log = Log.create(Path(tmp) / "log", partitions=1)
        lh.publish_raw(log, _raw(seed, hours, rate, disorder))
        catalog = lh.open_warehouse(tmp)
        yield log, catalog, every


def _streamed(log: Log, catalog: Any, every: timedelta, name: str = "shop.orders") -> Any:
    from streamlab.stream import lakehouse as streaming

    table = lh.create_table(catalog, name)
    streaming.load_orders(log, table, every=every)
    return table


@checker
def paid_at(fn: Callable[..., Any]) -> Feedback:
    """Check ``paid_at(table, when)`` on a day streamed in hourly micro-batches and a fresh one in 20-minute ones."""
    tried = 0
    for seed, hours, every, rate, disorder, moments in (
        (LESSON_SEED, 12, timedelta(hours=1), 0.01, 0.0, (10 * 60, 10 * 60 + 30, 59, 60, 7 * 60 + 59, 12 * 60)),
        # Events that arrive up to ten minutes after they happened: arrival and event time part.
        (21, 3, timedelta(minutes=20), 0.03, 600.0, (10, 20, 45, 100, 180)),
    ):
        with _lake(seed, hours, every, rate, disorder) as (log, catalog, every):
            table = _streamed(log, catalog, every)
            current = lh.read(table)
            for minutes in moments:
                when = COURSE_START + timedelta(minutes=minutes)
                got, want = _money(fn(table, when)), _paid_at(table, when)
                tried += 1
                if got == want:
                    continue
                at = show_time(when)
                if got == _money(_sum_paid(current)):
                    raise Mistake(f"at {at} you gave the table as it is now: read the snapshot committed at or "
                                  "before `when` (lh.as_of(table, when)), not the current one.")
                arrived = current[current["arrival_time"] < pd.Timestamp(when)]
                if got == _money(_sum_paid(arrived)):
                    raise Mistake(f"at {at} you kept the rows that had *arrived* by then; a dashboard shows what "
                                  "was *committed* by then: rows of the micro-batch still open were not readable "
                                  "yet. Ask the table (lh.as_of) rather than filtering arrivals.")
                happened = current[current["event_time"] < pd.Timestamp(when)]
                if got == _money(_sum_paid(happened)):
                    raise Mistake(f"at {at} you kept the rows whose events had *happened* by then; a dashboard "
                                  "shows what was committed by then. Ask the table (lh.as_of).")
                if not want and got != want:
                    raise Mistake(f"at {at} nothing was committed yet: the dashboard was empty (an empty Series "
                                  "or dict), not an error.")
                everything = current.assign(kind="paid")
                if got == _money(_sum_paid(lh.as_of(table, when).assign(kind="paid"))) or got == _money(
                        _sum_paid(everything)):
                    raise Mistake(f"at {at} your sums count every event; count only the 'paid' ones.")
                wrong = sorted(set(got) ^ set(want)) or sorted(k for k in want if got.get(k) != want[k])
                raise Mistake(f"at {at} your money per hour differs from the table's snapshot then, first for hour "
                              f"{wrong[0]}. Group the paid rows of the snapshot by the hour of their event_time.")
    return correct(f"your dashboard matches the table's snapshots at {tried} moments on two days, before the first "
                   "commit, on a commit's clock and between commits.")


def _sum_paid(frame: pd.DataFrame) -> dict[str, float]:
    paid = frame[frame["kind"] == "paid"]
    return paid.groupby(paid["event_time"].dt.strftime("%H:00"))["amount"].sum().round(2).to_dict()


# -- exercise 3: the sink's dataflow --------------------------------------------------------------

def _explain_sink(cause: BaseException) -> str | None:
    text = str(cause)
    if isinstance(cause, AttributeError) and "NoneType" in text:
        return ("a record that failed validation has `event` None: route it aside (op.filter on "
                "`validated.event is not None`) before making a row of it.")
    if isinstance(cause, (TypeError, ValueError)) and ("unpack" in text or "too many" in text or "not enough" in text):
        return ("emit 4-tuples (partition, offset, arrival_time, row): the sink needs where each row sits in the "
                "log to commit offsets, and its arrival time to cut micro-batches.")
    return None


def _run_sink(fn: Callable[[Any], Any], log: Log, table: Any, every: timedelta) -> None:
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow

    from streamlab.stream import LogSource
    from streamlab.stream import lakehouse as streaming
    from streamlab.stream.runner import run_flow

    with learner_dataflow(_explain_sink, what="your step"):
        flow = Dataflow("exercise_sink")
        records = op.input("log", flow, LogSource(log, decode=lambda r: (r.partition, r.offset, lh.validate(r))))
        items = fn(records)
        if items is None or not hasattr(items, "flow"):
            raise Mistake("return the bytewax stream of sink items (what op.map or op.filter returns), not "
                          f"{type(items).__name__}.")
        checked = op.map("shape", items, _shaped)
        op.output("iceberg", checked, streaming.IcebergSink(table, every=every))
        run_flow(flow)


def _shaped(item: Any) -> Any:
    if not (isinstance(item, tuple) and len(item) == 4):
        raise Mistake("emit 4-tuples (partition, offset, arrival_time, row); got "
                      f"{type(item).__name__} {item!r:.80}")
    partition, offset, arrival, row = item
    if not isinstance(row, dict):
        raise Mistake(f"the 4th item must be the row, a dict made by lh.order_row(event, partition, offset); got "
                      f"{type(row).__name__} {row!r:.60}")
    if not isinstance(arrival, datetime):
        raise Mistake(f"the 3rd item must be the arrival time (a datetime); got {type(arrival).__name__} "
                      f"{arrival!r:.60}")
    return item


@functools.lru_cache(maxsize=2)
def _expected_sink(seed: int, hours: float, every: timedelta, disorder: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The nightly job's rows and the library stream's commits (clock, rows added) for one case, computed once."""
    from streamlab.batch import lakehouse as nightly

    with _lake(seed, hours, every, 0.01, disorder) as (log, catalog, every):
        reference = lh.create_table(catalog, "shop.reference")
        nightly.load_orders(log, reference)
        commits = lh.history(_streamed(log, catalog, every, "shop.reference_stream"))[["clock", "rows_added"]]
        return lh.read(reference), commits


@checker
def sink_rows(fn: Callable[[Any], Any]) -> Feedback:
    """Check ``sink_rows(records)``: in a dataflow from the log to the Iceberg sink, its table is the nightly one."""
    results = []
    for seed, hours, every, disorder in ((LESSON_SEED, 6, timedelta(hours=1), 0.0),
                                         (33, 2, timedelta(minutes=15), 600.0)):
        want, expected = _expected_sink(seed, hours, every, disorder)
        with _lake(seed, hours, every, 0.01, disorder) as (log, catalog, every):
            table = lh.create_table(catalog, "shop.learner")
            _run_sink(fn, log, table, every)
            got = lh.read(table)
            if len(got) == 0:
                raise Mistake("your dataflow committed no row: emit one item per valid record.")
            if len(got) > len(want):
                raise Mistake(f"your table has {len(got)} rows, the log only {len(want)} valid records: keep only "
                              "the records whose validation passed (their `event` is not None).")
            if len(got) < len(want):
                raise Mistake(f"your table has {len(got)} of the log's {len(want)} valid records: emit every "
                              "record that passed validation.")
            if not (got["log_offset"].tolist() == want["log_offset"].tolist()
                    and got["log_partition"].tolist() == want["log_partition"].tolist()):
                raise Mistake("the rows' log positions are not where the records sit in the log: pass each "
                              "record's partition and offset, in that order, to lh.order_row and the item.")
            if not got.equals(want):
                raise Mistake("your rows differ from the nightly table's: make each with "
                              "lh.order_row(validated.event, partition, offset).")
            commits = lh.history(table)[["clock", "rows_added"]]
            clocks = commits["clock"].tolist()
            if not commits.equals(expected):
                raise Mistake("your commits fall at other moments than the micro-batches of arrival time: the "
                              "3rd item must be the record's arrival time (validated.arrival_time), which cuts the "
                              "batches, not its event time.")
            results.append((len(got), len(clocks)))
    return correct(f"your dataflow wrote the nightly job's table, row for row: {results[0][0]} rows in "
                   f"{results[0][1]} hourly commits, and {results[1][0]} rows in {results[1][1]} commits of a "
                   "fresh log in 15-minute micro-batches, its events arriving up to ten minutes late.")
