"""Checks for the exercises of lesson 09, shift left to the lakehouse.

1. ``choose_every``: a function ``choose_every(arrivals, target, sizes)`` that
   picks, of the micro-batch sizes given, the one that makes the fewest commits
   while no row waits longer than ``target`` to be readable (``None`` if none does).
2. ``paid_at``: a function ``paid_at(table, when)`` returning the money paid per
   hour as the Iceberg table said at ``when`` on the simulated clock (time travel).
3. ``sink_rows``: a function ``sink_rows(records)`` that takes the bytewax stream
   of ``(partition, offset, Validated)`` read from the log and returns the stream
   of items the Iceberg sink commits; run in a real dataflow, log to table.

Each is compared with the solution (:mod:`streamlab.exercises.differ`): the
first on the lesson's arrivals and generated ones; the second on real Iceberg
tables (the lesson's first hours, and small ones made to hit its edges: no
commit, one row, an order paid then cancelled, moments exactly on a commit's
clock, an instant before, between commits, long after the last); the third by
running the learner's step between a real log and the Iceberg sink (the
lesson's first hours, an empty log, one of damaged records only, small ones with
retried records and two partitions, runs that crash at a commit and are run
again). The logs and tables live in one temporary directory, removed when
Python exits: built once per process, read by every check (a table a learner's
function changes is caught and built afresh); a sink's table is made per run
and dropped.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import numbers
import random
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import bytewax.operators as op
import numpy as np
import pandas as pd

from streamlab import lakehouse as lh
from streamlab.events import COURSE_START, arrived_before
from streamlab.exercises import Feedback, Mistake, checker, correct
from streamlab.exercises.differ import Case, Exercise, Known, Raised, kept_dir, show, show_time
from streamlab.log import Log
from streamlab.orders import OrderEvent, order_pipe

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
    if isinstance(answer, (np.timedelta64, pd.Timedelta)) and not pd.isna(answer):  # a size by meaning, any type
        answer = pd.Timedelta(answer).to_pytimedelta()
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
              "end of its micro-batch, so with few arrivals a bigger size may still meet the target.",
              model=_every_is_the_wait),
        Known("A size whose worst wait equals the target meets it: 'no longer than' allows equal.",
              model=_strictly_below),
        Known("Your size meets the target but commits more often than it needs to: of the sizes that meet it, the "
              "one asked for makes the fewest commits.",
              model=_freshest),
        Known("A row becomes readable at the end of its micro-batch, not at its start: its wait runs from its "
              "arrival to that end.", model=_wait_from_batch_start),
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


# -- the checks' own warehouse ----------------------------------------------------------------------

#: The kept directory's name: ``<prefix><pid>-<random>`` (see :func:`streamlab.exercises.differ.kept_dir`).
_KEPT_PREFIX = "streamlab-lesson09-checks-"


class _Scratch:
    """Where the checks keep their logs and Iceberg tables: one temporary directory, removed when Python exits.

    Its catalog tells SQLite not to wait for the disk on every commit (a check's tables are scratch: nothing
    is lost if the machine stops), which makes a small commit about three times faster; the tables are real
    Iceberg tables all the same, written and read by pyiceberg.
    """

    def __init__(self) -> None:
        from sqlalchemy import event

        self.root = kept_dir(_KEPT_PREFIX)  # removed at exit; a killed kernel's, by the next one
        self.catalog = lh.open_warehouse(self.root)

        @event.listens_for(self.catalog.engine, "connect")
        def _no_fsync(connection: Any, record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.execute("PRAGMA journal_mode=MEMORY")
            cursor.close()

        self.catalog.engine.dispose()  # connections made from now on have the pragmas
        self.names = itertools.count()

    def table(self, stem: str) -> Any:
        return lh.create_table(self.catalog, f"shop.{stem}_{next(self.names)}")

    def drop(self, table: Any) -> None:
        self.catalog.drop_table(table.name())
        shutil.rmtree(Path(table.location().removeprefix("file://")), ignore_errors=True)


@functools.lru_cache(maxsize=1)
def _scratch() -> _Scratch:
    return _Scratch()


def _orders(rng: random.Random, start: datetime, every: timedelta, batches: int) -> list[OrderEvent]:
    """A few orders' events over ``batches`` micro-batches from ``start``, in arrival order, made to hit the edges.

    Orders go placed, paid, then shipped or cancelled (a refund), an order's events spread over several batches;
    arrivals fall on a batch's first instant, its last, or between; an event happens up to most of an hour
    before it arrives (in the hour before, at times) or exactly on the hour; amounts have cents that do not add
    up exactly in binary.
    """
    events = []
    first = rng.randrange(100)
    amounts = [rng.choice([0.1, 0.2, 10.1, 20.2, 19.99, 54.74, 250.0]) for _ in range(rng.randint(1, 3))]
    lives = [("placed", "paid", rng.choice(("shipped", "cancelled"))) for _ in amounts]
    stage = [0] * len(amounts)
    for batch in range(batches):
        opened = start + batch * every
        for _ in range(rng.randint(0, 3)):
            order = rng.randrange(len(amounts))
            # An order's next event; after its last, that one again (a retry); now and then "paid" out of turn.
            kind = lives[order][min(stage[order], 2)] if rng.random() < 0.85 else "paid"
            stage[order] += 1
            arrival = opened + rng.choice([timedelta(0), every - timedelta(microseconds=1), every / 2,
                                           timedelta(seconds=rng.randrange(int(every.total_seconds())))])
            happened = rng.choice([arrival, arrival, arrival - timedelta(minutes=rng.choice([1, 20, 50])),
                                   arrival.replace(minute=0, second=0, microsecond=0)])
            events.append(OrderEvent(f"order-{first + order:05d}", f"customer-{order:02d}", kind, amounts[order],
                                     max(happened, COURSE_START), arrival))
    events.sort(key=lambda e: e.arrival_time)
    return events


# -- exercise 2: time travel ----------------------------------------------------------------------

#: An order row as a tuple, in the table's column order (hashable: a table to build is a key of the cache).
_COLUMNS = ("order_id", "customer", "kind", "amount", "event_time", "arrival_time", "log_partition", "log_offset")


@dataclass(frozen=True)
class _Lake:
    """A table to build for the time-travel check: its commits, each (clock, rows), or the lesson's hours streamed.

    Built once per process in the scratch warehouse (:func:`_table`) and handed to every call; the learner's
    function only reads it (a change is caught, and the table is then built afresh).
    """

    label: str
    commits: tuple[tuple[datetime, tuple[tuple, ...]], ...] = ()
    every: timedelta = timedelta(hours=1)
    lesson_hours: int = 0


_TABLES: dict[_Lake, tuple[Any, str]] = {}


def _table(lake: _Lake) -> Any:
    built = _TABLES.get(lake)
    if built is None:
        scratch = _scratch()
        table = scratch.table("dashboard")
        if lake.lesson_hours:
            from streamlab.stream import lakehouse as streaming

            log = Log.create(scratch.root / f"log_{next(scratch.names)}", partitions=1)
            lh.publish_raw(log, _raw(LESSON_SEED, lake.lesson_hours))
            streaming.load_orders(log, table, every=lake.every)
        for clock, rows in lake.commits:
            offsets = {0: max(row[-1] for row in rows) + 1}
            lh.commit(table, [dict(zip(_COLUMNS, row, strict=True)) for row in rows], offsets=offsets, clock=clock)
        built = _TABLES[lake] = (table, table.metadata_location)
    return built[0]


def _lake_of(events: list[OrderEvent], every: timedelta, label: str) -> _Lake:
    """The table a stream in micro-batches of ``every`` makes of ``events``: one commit per batch, at its end."""
    batches: dict[datetime, list[tuple]] = {}
    for offset, e in enumerate(events):
        batches.setdefault(lh.batch_end(e.arrival_time, every), []).append(
            tuple(lh.order_row(e, 0, offset)[c] for c in _COLUMNS))
    return _Lake(label, tuple((clock, tuple(rows)) for clock, rows in sorted(batches.items())), every)


def _paid_cases() -> Iterator[Case]:
    # Small tables first: a difference is shown on the smallest table where it shows. Moments: before the first
    # commit, exactly on a commit's clock, an instant before one, between commits, long after the last.
    tick = timedelta(microseconds=1)
    t = COURSE_START + timedelta(hours=9)
    one = OrderEvent("order-00001", "customer-01", "paid", 20.2, t - timedelta(minutes=50), t - timedelta(minutes=10))
    placed = dataclasses.replace(one, kind="placed")
    # A refund: paid at 09:58, arriving after 10:00 (its hour is not its batch's), cancelled in the next batch.
    paid = dataclasses.replace(one, order_id="order-00002", event_time=t + timedelta(minutes=58),
                               arrival_time=t + timedelta(minutes=61))
    refund = [dataclasses.replace(paid, kind="placed", event_time=t + timedelta(minutes=50),
                                  arrival_time=t + timedelta(minutes=50)), paid,
              dataclasses.replace(paid, kind="cancelled", event_time=t + timedelta(minutes=80),
                                  arrival_time=t + timedelta(minutes=80))]
    lakes = [
        (_lake_of([one], timedelta(minutes=15), "a table of one row"), [t, t - tick]),
        (_Lake("a table with no commit yet"), [t]),
        (_lake_of([placed], timedelta(hours=1), "a table with no payment"), [t + timedelta(hours=1)]),
        (_lake_of(refund, timedelta(minutes=15), "an order paid then cancelled"),
         [t + timedelta(minutes=75), t + timedelta(hours=3)]),
    ]
    rng = random.Random(117)  # a seed whose tables each pay in their first commit (the test checks the edges)
    for n in range(3):
        every = rng.choice([timedelta(minutes=15), timedelta(minutes=30), timedelta(hours=1)])
        start = COURSE_START + timedelta(hours=rng.choice([0, 9, 13, 21]))
        events = _orders(rng, start, every, rng.randint(2, 4))
        lake = _lake_of(events, every, "a generated table")
        if not lake.commits:
            continue
        clocks = [clock for clock, _ in lake.commits]
        moments = {clocks[0], clocks[-1] + timedelta(hours=3)}
        if len(clocks) > 1:
            moments |= {clocks[1] - tick, clocks[0] + (clocks[1] - clocks[0]) / 2}
        lakes.append((lake, sorted(moments)))
    lesson = _Lake("the lesson's table", every=timedelta(hours=1), lesson_hours=5)
    lakes.append((lesson, [COURSE_START + timedelta(minutes=m) for m in (60, 150, 720)]))
    for lake, moments in lakes:
        for when in moments:
            yield Case((lake, when), lake.label, items=None)


def _show_lake(case: Case) -> str:
    lake, when = case.args
    asked = f"asked at {show_time(when)}"
    if lake.lesson_hours:
        return (f"with the lesson's table (its first {lake.lesson_hours} hours of orders, streamed in hourly "
                f"micro-batches), {asked}")
    if not lake.commits:
        return f"with a table that has no commit yet, {asked}"
    lines = []
    for clock, rows in lake.commits:
        lines.append(f"  commit at {show_time(clock)}:")
        lines += [f"    {r[0]} {r[2]} {r[3]:g} €, happened {show_time(r[4])}, arrived {show_time(r[5])}" for r in rows]
    every = _show_every(lake.every)
    head = "a table of 1 commit" if len(lake.commits) == 1 else f"a table of {len(lake.commits)} commits"
    return f"with {head} (micro-batches of {every}), {asked}:\n" + "\n".join(lines)


def _money(answer: Any, case: Case | None = None) -> dict[str, float]:
    """Money per hour, whatever holds it: hour '09:00' (from text, a time or an hour number) -> money, zeros dropped."""
    if isinstance(answer, pd.DataFrame):
        if answer.shape[1] != 1:
            raise Mistake("return the money paid per hour: a Series (or dict) from hour to money, not a table of "
                          f"{answer.shape[1]} columns.")
        answer = answer.iloc[:, 0]
    if isinstance(answer, pd.Series):
        answer = answer.to_dict()
    if not isinstance(answer, Mapping):
        raise Mistake(f"return a Series or a dict from hour ('09:00') to money paid; got {type(answer).__name__}.")
    out: dict[str, float] = {}
    for hour, paid in answer.items():
        if hasattr(hour, "strftime"):
            key = hour.strftime("%H:00")
        elif isinstance(hour, numbers.Integral) and not isinstance(hour, bool) and 0 <= hour < 24:
            key = f"{int(hour):02d}:00"
        else:
            key = str(hour)
            key = f"0{key}" if len(key) == 4 and key[0].isdigit() and key.endswith(":00") else key  # '9:00
        try:
            money = float(paid)
        except (TypeError, ValueError):
            raise Mistake(f"the money for {key} must be a number, got {paid!r:.40}") from None
        out[key] = out.get(key, 0.0) + money
    return {key: out[key] for key in sorted(out) if out[key] != 0}


def _paid_at(table, when):
    try:
        then = lh.as_of(table, when)
    except lh.NothingCommittedError:
        return {}
    paid = then[then["kind"] == "paid"]
    return paid.groupby(paid["event_time"].dt.strftime("%H:00"))["amount"].sum().to_dict()


def _sum_paid(frame: pd.DataFrame) -> dict[str, float]:
    paid = frame[frame["kind"] == "paid"]
    return paid.groupby(paid["event_time"].dt.strftime("%H:00"))["amount"].sum().to_dict()


def _current(table, when):
    return _sum_paid(lh.read(table))


def _arrived(table, when):
    rows = lh.read(table)
    return _sum_paid(rows[rows["arrival_time"] <= pd.Timestamp(when)])


def _arrived_before(table, when):
    rows = lh.read(table)
    return _sum_paid(rows[rows["arrival_time"] < pd.Timestamp(when)])


def _happened(table, when):
    rows = lh.read(table)
    return _sum_paid(rows[rows["event_time"] <= pd.Timestamp(when)])


def _every_kind(table, when):
    try:
        return _sum_paid(lh.as_of(table, when).assign(kind="paid"))
    except lh.NothingCommittedError:
        return {}


ARRIVED = ("You kept the rows that had *arrived* by then; a dashboard shows what was *committed* by then: rows of "
           "the micro-batch still open were not readable yet. Ask the table (lh.as_of) rather than filtering arrivals.")

PAID = Exercise(
    solution=_paid_at,
    cases=_paid_cases,
    call=lambda fn, case: fn(_table(case.args[0]), case.args[1]),
    describe=_show_lake,
    meaning=_money,
    rerun=4,
    known=(
        Known("You gave the table as it is now: a dashboard at `when` showed the snapshot committed at or before "
              "`when`, not the current one.", model=_current),
        *(Known(ARRIVED, model=model) for model in (_arrived, _arrived_before)),
        Known("You kept the rows whose events had *happened* by then; a dashboard shows what was committed by then. "
              "Ask the table as it was then.", model=_happened),
        Known("Before the first commit the table had nothing to show: lh.as_of raises lh.NothingCommittedError "
              "then, and the dashboard was empty (an empty Series or dict), not an error.",
              when=lambda got, want, case: isinstance(got, Raised) and issubclass(got.error, lh.NothingCommittedError)),
        Known("Your sums count every event; count only the 'paid' ones.", model=_every_kind),
    ),
)


CHANGED = ("your function changed the table it was given (a commit, an expiry): a dashboard only reads it. Ask "
           "it for a snapshot and compute on that.")


def _changed(tables: dict[_Lake, tuple[Any, str]]) -> list[_Lake]:
    """The tables a learner's function changed (it committed, expired...): forgotten, to be built afresh."""
    changed = [lake for lake, (table, location) in tables.items() if table.metadata_location != location]
    for lake in changed:
        del tables[lake]
    return changed


@checker
def paid_at(fn: Callable[..., Any]) -> Feedback:
    """Check ``paid_at(table, when)`` against the solution on small tables and the lesson's, at edge moments."""
    try:
        answers = PAID.compare(fn)
    except Mistake:
        if _changed(_TABLES):  # what it changed explains the difference better than the difference itself
            raise Mistake(CHANGED) from None
        raise
    if _changed(_TABLES):
        raise Mistake(CHANGED)
    tables = len({case.args[0] for case, _ in answers})
    return correct(f"your dashboard matches the table's snapshots at {len(answers)} moments of {tables} tables (the "
                   "lesson's, one without a commit, one of a single row, a refund): before the first commit, on a "
                   "commit's clock, an instant before it, between commits, long after the last.")


# -- exercise 3: the sink's dataflow --------------------------------------------------------------

@dataclass(frozen=True)
class _Pipe:
    """A log to write for the sink check: raw records per partition (as JSON text: hashable), written once per process."""

    label: str
    records: tuple[str, ...]
    partitions: int
    every: timedelta
    #: The commit at which the first run crashes, after writing its data files (0: no crash); a second run resumes.
    crash_at: int = 0


_LOGS: dict[_Pipe, Log] = {}


def _log(pipe: _Pipe) -> Log:
    log = _LOGS.get(pipe)
    if log is None:
        scratch = _scratch()
        log = Log.create(scratch.root / f"log_{next(scratch.names)}", partitions=pipe.partitions)
        lh.publish_raw(log, [json.loads(text) for text in pipe.records])  # partitioned by order id
        _LOGS[pipe] = log
    return log


def _pipe_of(raw: Sequence[dict], label: str, every: timedelta, partitions: int = 1, crash_at: int = 0) -> _Pipe:
    return _Pipe(label, tuple(json.dumps(record, sort_keys=True) for record in raw), partitions, every, crash_at)


@dataclass(frozen=True)
class _Sunk:
    """What the learner's dataflow left in the table: its rows (by log position) and its commits."""

    rows: tuple[tuple, ...]
    commits: tuple[tuple[datetime, int, str], ...]


def _sunk(table: Any) -> _Sunk:
    frame = lh.read(table)
    rows = tuple((int(r.log_partition), int(r.log_offset), r.order_id, r.kind, float(r.amount),
                  r.event_time.to_pydatetime()) for r in frame.itertuples())
    history = lh.history(table)
    commits = tuple((clock.to_pydatetime(), int(added), offsets)
                    for clock, added, offsets in zip(history["clock"], history["rows_added"], history["offsets"]))
    return _Sunk(rows, commits)


def _run_sink(fn: Callable[[Any], Any], log: Log, table: Any, every: timedelta, crash: Any = None) -> None:
    """The learner's step between the log (read from the table's committed offsets) and the Iceberg sink."""
    from bytewax.dataflow import Dataflow

    from streamlab.stream import LogSource, StreamError
    from streamlab.stream import lakehouse as streaming
    from streamlab.stream.runner import run_flow

    start = lh.committed_offsets(table)
    flow = Dataflow("exercise_sink")
    source = LogSource(log, decode=lambda r: (r.partition, r.offset, lh.validate(r)),
                       start={p: start.get(p, 0) for p in range(log.partitions)})
    try:
        items = fn(op.input("log", flow, source))
    except (NotImplementedError, Mistake):
        raise
    except Exception as error:  # while building the steps, before any record: not a difference on the data
        raise Mistake(f"building your steps raised {type(error).__name__}: {error}") from None
    if items is None or not hasattr(items, "flow"):
        raise Mistake("return the bytewax stream of sink items (what op.map or op.filter returns), not "
                      f"{type(items).__name__}.")
    op.output("iceberg", op.map("shape", items, _shaped), streaming.IcebergSink(table, every=every, crash=crash))
    try:
        run_flow(flow)
    except StreamError as error:
        if crash is None or not isinstance(error.__cause__, streaming.SimulatedCrash):
            raise


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


#: The solution's tables, kept: the check asks for one again when it explains a difference (each costs a run).
_SOLVED_SINKS: dict[Case, _Sunk] = {}


def _sink_call(fn: Callable[[Any], Any], case: Case) -> _Sunk:
    if fn is _sink_rows:
        if case not in _SOLVED_SINKS:
            _SOLVED_SINKS[case] = _sunk_by(fn, case)
        return _SOLVED_SINKS[case]
    return _sunk_by(fn, case)


def _sunk_by(fn: Callable[[Any], Any], case: Case) -> _Sunk:
    from streamlab.stream import lakehouse as streaming

    pipe = case.args[0]
    scratch = _scratch()
    table = scratch.table("sink")
    try:
        if pipe.crash_at:
            _run_sink(fn, _log(pipe), table, pipe.every, streaming.Crash(pipe.crash_at))
        _run_sink(fn, _log(pipe), table, pipe.every)  # a run after a crash carries on where the table stands
        return _sunk(table)
    finally:
        scratch.drop(table)


def _sink_rows(records):
    valid = op.filter("valid", records, lambda r: r[2].event is not None)
    return op.map("row", valid, lambda r: (r[0], r[1], r[2].arrival_time, lh.order_row(r[2].event, r[0], r[1])))


def _sink_cases() -> Iterator[Case]:
    # Small logs first, each with an edge, then the lesson's morning.
    rng = random.Random(32)  # a seed whose logs all hold valid and damaged records (the test checks the edges)
    t = COURSE_START + timedelta(hours=9)
    quarter = timedelta(minutes=15)

    def event(order: int, kind: str, happened: float, arrived: float) -> dict:
        return OrderEvent(f"order-{order:05d}", f"customer-{order:02d}", kind, 20.2 * order, t + timedelta(minutes=happened),
                          t + timedelta(minutes=arrived)).to_json()

    # Two orders' whole lives: a payment sent twice (a retry), an event 10 minutes late across a batch's end, one
    # arriving on a batch's first instant, a refund; an empty batch between two commits.
    lives = [event(1, "placed", 0, 0), event(1, "paid", 5, 14), event(1, "paid", 5, 14), event(2, "placed", 10, 15),
             event(1, "shipped", 20, 29), event(2, "paid", 38, 50), event(2, "cancelled", 52, 52)]
    one = _orders(random.Random(3), t, quarter, 3)
    pipes = [
        _pipe_of(lives, "two orders' lives", quarter),
        _pipe_of(lives[1:2], "a log of one record", quarter),
        _pipe_of([], "an empty log", quarter),
        _pipe_of(lh.raw_orders(one, seed=1, damaged=1.0), "a log where every record is damaged: no batch to commit",
                 quarter),
    ]
    for n in range(3):
        partitions = 1 + n % 2
        while True:  # with two partitions, until the orders fall in both (the log partitions by order id)
            every = rng.choice([quarter, timedelta(minutes=30)])
            events = _orders(rng, COURSE_START + timedelta(hours=rng.choice([0, 9, 22])), every, rng.randint(2, 4))
            if len({Log(Path("unused"), partitions).partition_for(e.order_id) for e in events}) == partitions:
                break
        raw = lh.raw_orders(events, seed=n, damaged=0.25)
        for i in sorted(rng.sample(range(len(raw)), min(len(raw), 2)), reverse=True):
            raw.insert(i, raw[i])  # a producer's retry: the same record twice in the log
        crash = 2 if n % 2 else 0
        label = "a generated log" + (", the first run crashing at its 2nd commit and run again" if crash else "")
        pipes.append(_pipe_of(raw, label, every, partitions=partitions, crash_at=crash))
    pipes.append(_pipe_of(_raw(LESSON_SEED, 3), "the lesson's first three hours", timedelta(hours=1), crash_at=2))
    for pipe in pipes:
        yield Case((pipe,), pipe.label, items=None)


def _show_pipe(case: Case) -> str:
    pipe = case.args[0]
    crash = (f", the first run crashing at its commit {pipe.crash_at} (files written, not committed) and run again"
             if pipe.crash_at else "")
    head = f"micro-batches of {_show_every(pipe.every)}{crash}"
    records = len(pipe.records)
    if records > 20:
        return f"with {pipe.label} ({records} records), {head}"
    if not records:
        return f"with an empty log, {head}"
    lines = []
    for record in _log(pipe).records():
        raw, checked = record.value, lh.validate(record)
        what = "valid" if checked.event is not None else f"damaged: {str(checked.reason).split(', got')[0]}"
        lines.append(f"  {record.partition}@{record.offset}: {raw.get('order_id')} {raw.get('kind')} "
                     f"{raw.get('amount')!r}, arrived {show_time(checked.arrival_time)} ({what})")
    these = "this 1 record" if records == 1 else f"these {records} records"
    return f"with {these} in the log (partition@offset), {head}:\n" + "\n".join(lines)


def _show_sunk(answer: Any) -> str:
    if not isinstance(answer, _Sunk):
        return show(answer)
    rows = ", ".join(f"{p}@{o} {kind}" for p, o, _, kind, _, _ in answer.rows[:8])
    rows += ", ..." if len(answer.rows) > 8 else ""
    commits = "; ".join(f"at {show_time(clock)}: {n} row(s), next offsets {offsets}"
                        for clock, n, offsets in answer.commits[:6])
    commits += "; ..." if len(answer.commits) > 6 else ""
    return (f"a table of {len(answer.rows)} row(s) [{rows}] in {len(answer.commits)} commit(s)"
            + (f" ({commits})" if commits else ""))


def _positions(sunk: _Sunk) -> list[tuple]:
    return sorted(row[2:] for row in sunk.rows)


def _sunk_when(test: Callable[[_Sunk, _Sunk], bool]) -> Callable[[Any, Any, Case], bool]:
    def when(got: Any, want: Any, case: Case) -> bool:
        return isinstance(got, _Sunk) and isinstance(want, _Sunk) and test(got, want)
    return when


SINK = Exercise(
    solution=_sink_rows,
    cases=_sink_cases,
    call=_sink_call,
    describe=_show_pipe,
    show=_show_sunk,
    rerun=1,
    known=(
        Known("A record that failed validation has `event` None: route it aside (leave it out of the sink's stream) "
              "before making a row of it.",
              when=lambda got, want, case: isinstance(got, Raised) and issubclass(got.error, AttributeError)
              and "NoneType" in got.message),
        Known("Your table has rows the log's valid records do not make: keep only the records whose validation "
              "passed, each once.",
              when=_sunk_when(lambda got, want: len(got.rows) > len(want.rows))),
        Known("Your table misses some of the log's valid records: emit every record that passed validation, once "
              "each, duplicates in the log included (each sits at its own offset).",
              when=_sunk_when(lambda got, want: len(got.rows) < len(want.rows))),
        Known("Your rows hold the right orders, but their log positions are not where the records sit in the log: "
              "pass each record's partition and offset, in that order, to lh.order_row.",
              when=_sunk_when(lambda got, want: _positions(got) == _positions(want) and got.rows != want.rows)),
        Known("Your rows are right, but your commits fall at other moments than the micro-batches of arrival time: "
              "the 3rd item must be the record's arrival time as the log stamped it, not its event time nor a time "
              "of your own: it cuts the batches.",
              when=_sunk_when(lambda got, want: got.rows == want.rows
                              and [c[0] for c in got.commits] != [c[0] for c in want.commits])),
    ),
)


@checker
def sink_rows(fn: Callable[[Any], Any]) -> Feedback:
    """Check ``sink_rows(records)``: in a dataflow from the log to the Iceberg sink, its table is the solution's."""
    answers = SINK.compare(fn)
    lesson = answers[-1][1]
    return correct(f"your dataflow wrote the nightly job's rows, commit for commit as the solution's does, from "
                   f"{len(answers)} logs: the lesson's first three hours ({len(lesson.rows)} rows in "
                   f"{len(lesson.commits)} hourly commits, after a crash at the 2nd and a restart), an empty one, one "
                   "of damaged records only, and small ones with retried records, two partitions and a crash.")
