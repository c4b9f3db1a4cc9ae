"""Checks for the exercises of lesson 08, failure and recovery.

1. ``replayed``: a function ``replayed(snapshot_at, written_before)`` returning
   the positions ``(partition, offset)`` of the rows a resume from the snapshot
   writes a second time.
2. ``idempotent_sink``: a function ``write_rows(output, rows)`` that writes a
   batch of rows into the dict ``output`` so that writing a row again changes
   nothing; the check puts it at the end of the lesson's dataflow, crashes the
   dataflow in the sink, resumes it and reads the output.
3. ``resumable_flow``: a function ``sales_steps(records)`` that takes the bytewax
   stream of the sales log's records and returns the stream of rows (the
   running count and total per store); the check runs it with bytewax's
   recovery, crashes it, resumes it and compares with the batch answer.

Each check builds its logs and recovery stores in a temporary directory (from
the lesson's sales and from fresh ones) and removes them; no message names it.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.recovery import RecoveryConfig

from streamlab.batch.recovery import sales_totals
from streamlab.events import pipe, take
from streamlab.exercises import Feedback, Mistake, checker, correct
from streamlab.log import Log
from streamlab.recovery import Crash, CrashPoint, InjectedCrash, Row, answer_from, publish_sales
from streamlab.stream.recovery import ResumableLogSource, StoreSink, crash_and_resume, fresh_store
from streamlab.stream.runner import StreamError, run_flow

__all__ = ["idempotent_sink", "replayed", "resumable_flow"]

#: The lesson's sales: pipe seed 8, six stores, 600 sales, three partitions.
LESSON = (8, 6, 600, 3)
#: Fresh logs the checks also use: (seed, stores, sales, partitions).
FRESH = ((21, 5, 240, 4), (34, 3, 150, 2))


def _log(tmp: Path, spec: tuple[int, int, int, int]) -> Log:
    seed, stores, sales, partitions = spec
    log = Log.create(tmp / f"sales-{seed}", partitions=partitions)
    publish_sales(log, take(pipe(seed=seed, keys=stores), sales))
    return log


# --------------------------------------------------------------------------- exercise 1


@functools.lru_cache(maxsize=1)
def _trials() -> tuple[tuple[dict[int, int], tuple[Row, ...], frozenset[tuple[int, int]]], ...]:
    """Real crashes, resumed at least once: (snapshot offsets, rows written before the crash, rows written twice)."""
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        plans = [(LESSON, 25, 180, "sink"), (LESSON, 50, 40, "sink"), (LESSON, 25, 180, "step"),
                 (FRESH[0], 10, 77, "sink"), (FRESH[1], 7, 33, "sink")]
        for i, (spec, batch_size, at, where) in enumerate(plans):
            log = _log(root / str(i), spec)
            trial = crash_and_resume(log, "at least once", Crash(at, where), root / str(i), batch_size=batch_size)
            cases.append((dict(trial.snapshot_at), tuple(trial.written_before), frozenset(trial.replayed)))
    return tuple(cases)


def _positions(answer: Any) -> set[tuple[int, int]]:
    if isinstance(answer, (int, float)):
        raise Mistake("return the positions (partition, offset) of the rows written twice, not how many there are")
    if answer is None or not isinstance(answer, Iterable) or isinstance(answer, (str, bytes, dict)):
        raise Mistake(f"return a set (or list) of (partition, offset) pairs, got {type(answer).__name__}")
    got = set()
    for item in answer:
        if isinstance(item, Row):
            raise Mistake("return each row's position, (row.partition, row.offset), not the row itself")
        if not (isinstance(item, tuple) and len(item) == 2 and all(isinstance(x, int) for x in item)):
            raise Mistake(f"each item must be a (partition, offset) pair of ints, got {item!r:.60}")
        got.add(item)
    return got


@checker
def replayed(fn: Callable[[dict[int, int], list[Row]], Any]) -> Feedback:
    """Check ``replayed(snapshot_at, written_before)`` on real crashes of the lesson's dataflow and of fresh ones."""
    for snapshot_at, written, twice in _trials():
        got = _positions(fn(dict(snapshot_at), list(written)))
        if got == twice:
            continue
        everything = {r.position for r in written}
        if got == everything and twice != everything:
            raise Mistake("rows written before the snapshot are safe: the resumed run starts reading at the snapshot")
        if got == {r.position for r in written if r.offset > snapshot_at[r.partition]}:
            raise Mistake("a snapshot holds the *next* offset to read: the record at that very offset is read again")
        if got - everything:
            raise Mistake("only rows that were written before the crash can be written twice")
        raise Mistake(
            f"with snapshot offsets {snapshot_at} and {len(written)} rows written before the crash, your answer has "
            f"{len(got)} positions, not the right number: each partition resumes at its own offset"
        )
    return correct("each partition resumes at its snapshot's offset; the rows it had written from there on come twice.")


# --------------------------------------------------------------------------- exercise 2


class _LearnerStore:
    """A sink store that hands each batch (cut at the crash point) to the learner's ``write_rows``."""

    kind = "learner"

    def __init__(self, write_rows: Callable[[dict, list[Row]], Any]) -> None:
        self.output: dict[Any, Any] = {}
        self.write_rows = write_rows

    def write(self, rows: Iterable[Row], crash: CrashPoint | None = None) -> None:
        rows = list(rows)
        died = None
        upto = len(rows)
        if crash is not None:
            for i in range(len(rows)):
                try:
                    crash.tick()
                except InjectedCrash as err:
                    upto, died = i, err
                    break
        if upto:
            try:
                self.write_rows(self.output, rows[:upto])
            except NotImplementedError:
                raise
            except Exception as err:
                raise _LearnerError(err) from None  # the learner's error, carried whole to the check
        if died is not None:
            raise died

    def rows(self) -> list[Row]:
        found: list[Row] = []
        _collect(self.output, found)
        return found


class _LearnerError(Exception):
    """The learner's code raised; carried out of the dataflow to become a hint."""

    def __init__(self, inner: Exception) -> None:
        super().__init__(str(inner))
        self.inner = inner


def _collect(value: Any, found: list[Row]) -> None:
    if isinstance(value, Row):
        found.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            _collect(v, found)
    elif isinstance(value, (list, tuple, set)):
        for v in value:
            _collect(v, found)


def _unwrap(error: BaseException | None) -> None:
    """Turn the learner's own error, carried out of a dataflow, into what the check reports."""
    cause = error.__cause__ if error is not None else None
    if isinstance(cause, _LearnerError):
        inner = cause.inner
        raise Mistake(f"your code raised {type(inner).__name__}: {inner}")
    if isinstance(cause, NotImplementedError):
        raise NotImplementedError()


@checker
def idempotent_sink(write_rows: Callable[[dict, list[Row]], Any]) -> Feedback:
    """Crash the lesson's dataflow in a sink calling ``write_rows``, resume it, and read the output."""
    if not callable(write_rows):
        raise Mistake("pass your function write_rows itself")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i, (spec, batch_size, at) in enumerate([(LESSON, 25, 180), (FRESH[0], 10, 61), (FRESH[1], 7, 20)]):
            log = _log(root / str(i), spec)
            store = _LearnerStore(write_rows)
            recovery = fresh_store(root / str(i) / "recovery")
            crashed = _run(log, store, recovery, batch_size, Crash(at, "sink"))
            _unwrap(crashed)
            if crashed is None or not isinstance(crashed.__cause__, InjectedCrash):
                raise Mistake(f"the dataflow should have crashed in the sink, but it {crashed or 'did not'}")
            resumed = _run(log, store, recovery, batch_size, None)
            _unwrap(resumed)
            if resumed is not None:
                raise Mistake(f"the resumed dataflow stopped: {resumed}")
            rows = store.rows()
            records = sum(log.end_offsets().values())
            positions = {r.position for r in rows}
            stores = len(sales_totals(log))
            if not rows:
                raise Mistake("the output holds no rows: put each row in `output` (a dict), e.g. under a key of your choice")
            if len(rows) > len(positions):
                raise Mistake(
                    f"after the crash and the resume the output holds {len(rows)} rows for {len(positions)} sales: "
                    "the resumed run wrote some rows again. Key each row by something that identifies its sale and is "
                    "the same when the row is written again"
                )
            if len(positions) < records:
                if len(rows) == stores:
                    raise Mistake("the output keeps one row per store: the check wants a row for every sale")
                offsets = {r.offset for r in rows}
                if len(rows) == len(offsets):
                    raise Mistake("rows of different partitions share offsets: an offset alone does not identify a sale")
                raise Mistake(f"{records - len(positions)} of {records} sales have no row in the output")
            if not answer_from(rows).equals(sales_totals(log)):
                raise Mistake("the rows in the output are not the ones the dataflow wrote: store the rows as they come")
    return correct("a replay rewrote rows, and each replaced itself: no duplicate, nothing lost.")


def _run(log: Log, store: Any, recovery: Path, batch_size: int, crash: Crash | None) -> StreamError | None:
    source = ResumableLogSource(log, batch_size=batch_size)
    from streamlab.stream.recovery import totals_flow

    flow = totals_flow(source, StoreSink(store, crash), crash=None, lenient=True)
    try:
        run_flow(flow, epoch_interval=timedelta(0), recovery_config=RecoveryConfig(str(recovery)))
    except StreamError as err:
        return err
    return None


# --------------------------------------------------------------------------- exercise 3


def _learner_flow(sales_steps: Callable[[Stream], Stream], log: Log, batch_size: int, crash: Crash | None,
                  out: list) -> Dataflow:
    flow = Dataflow("sales_totals")
    records = op.input("read", flow, ResumableLogSource(log, batch_size=batch_size))
    point = CrashPoint(crash, "step")

    def crash_point(record: Any) -> Any:
        point.tick()
        return record

    rows = sales_steps(op.map("crash_point", records, crash_point))
    if not isinstance(rows, Stream):
        raise Mistake(f"sales_steps must return a bytewax stream (the last step's output), got {type(rows).__name__}")

    class _Out:
        kind = "memory"

        def write(self, items: list, crash: CrashPoint | None = None) -> None:
            out.extend(items)

        def rows(self) -> list:
            return list(out)

    op.output("write", rows, StoreSink(_Out()))  # type: ignore[arg-type]
    return flow


def _rows(items: list) -> list[Row]:
    rows = []
    for item in items:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Row):
            item = item[1]
        if not isinstance(item, Row):
            raise Mistake(f"each item of the stream you return must be a Row (or a (store, Row) pair), got {item!r:.80}")
        rows.append(item)
    return rows


def _ids(flow: Dataflow) -> list[str]:
    return [step.step_id for step in flow.substeps]


@checker
def resumable_flow(sales_steps: Callable[[Stream], Stream]) -> Feedback:
    """Run ``sales_steps`` in a dataflow with recovery, crash it, resume it, and compare with the batch answer."""
    if not callable(sales_steps):
        raise Mistake("pass your function sales_steps itself")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i, (spec, batch_size, at) in enumerate([(LESSON, 25, 180), (FRESH[0], 10, 95), (FRESH[1], 5, 60)]):
            log = _log(root / str(i), spec)
            batch = sales_totals(log)
            # Without a crash first: the computation itself.
            out: list = []
            try:
                run_flow(_learner_flow(sales_steps, log, batch_size, None, out))
            except StreamError as err:
                _raise_cause(err)
            if not answer_from(_rows(out)).equals(batch):
                raise Mistake("even without a crash the totals differ from the batch answer: key the sales by store "
                              "and keep each store's (count, total) in a stateful step")
            first = _learner_flow(sales_steps, log, batch_size, None, [])
            second = _learner_flow(sales_steps, log, batch_size, None, [])
            if _ids(first) != _ids(second):
                raise Mistake("your step ids change from one build of the dataflow to the next: a resumed run would "
                              "not find its state in the snapshot")
            # Then a crash, and a resume on the same recovery store.
            recovery = fresh_store(root / str(i) / "recovery")
            out = []
            config = RecoveryConfig(str(recovery))
            try:
                run_flow(_learner_flow(sales_steps, log, batch_size, Crash(at), out), epoch_interval=timedelta(0),
                         recovery_config=config)
                raise Mistake("the check's crash did not happen: do not catch errors in your steps")
            except StreamError as err:
                if not isinstance(err.__cause__, InjectedCrash):
                    _raise_cause(err)
            try:
                run_flow(_learner_flow(sales_steps, log, batch_size, None, out), epoch_interval=timedelta(0),
                         recovery_config=config)
            except StreamError as err:
                _raise_cause(err)
            if not answer_from(_rows(out)).equals(batch):
                raise Mistake("right without a crash, wrong after the resume: state kept outside bytewax's stateful "
                              "steps (a dict of your own) is not in the snapshot. Keep it in stateful_map")
    return correct("crashed, resumed from the snapshot, and the same answer as the batch job.")


def _raise_cause(err: StreamError) -> None:
    cause = err.__cause__
    if isinstance(cause, (NotImplementedError, Mistake)):
        raise cause.with_traceback(None) from None
    raise Mistake(f"your dataflow stopped: {err}")
