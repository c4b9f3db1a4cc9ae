"""Checks for the exercises of lesson 08, failure and recovery.

1. ``replayed``: a function ``replayed(snapshot_at, written_before)`` returning
   the positions ``(partition, offset)`` of the rows a resume from the snapshot
   writes a second time.
2. ``idempotent_sink``: a function ``write_rows(output, rows)`` that writes a
   batch of rows into the dict ``output`` so that writing a row again changes
   nothing; the check gives it the batches a sink gets across a crash and a
   resume, and also puts it at the end of the lesson's dataflow, crashes the
   dataflow in the sink, resumes it and reads the output.
3. ``resumable_flow``: a function ``sales_steps(records)`` that takes the bytewax
   stream of the sales log's records and returns the stream of rows (the
   running count and total per store); the check runs it with bytewax's
   recovery, crashes it, resumes it and compares with the solution.

Each check compares with the solution (:mod:`streamlab.exercises.differ`) on
real crashes of the lesson's dataflow and on generated cases holding the
exercise's edges (a crash at the first record and at the last, nothing or
everything committed, several partitions, long replays, copies and empty
batches), and shows the smallest input found where an answer differs. Logs
and recovery stores live in temporary directories, removed after each run; no
message names them.
"""

from __future__ import annotations

import functools
import numbers
import os
import random
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import bytewax.operators as op
import numpy as np
import pandas as pd
from bytewax.dataflow import Dataflow, Stream
from bytewax.recovery import RecoveryConfig

from streamlab.events import pipe, take
from streamlab.exercises import Feedback, Mistake, checker, correct
from streamlab.exercises.differ import Case, Exercise, Known, Raised, bag, events
from streamlab.log import Log
from streamlab.recovery import Crash, CrashPoint, InjectedCrash, Row, answer_from, publish_sales, sale_from, step
from streamlab.stream.recovery import ResumableLogSource, StoreSink, crash_and_resume, fresh_store
from streamlab.stream.runner import StreamError, run_flow

__all__ = ["idempotent_sink", "replayed", "resumable_flow"]

#: The lesson's sales: pipe seed 8, six stores, 600 sales, three partitions.
LESSON = (8, 6, 600, 3)
#: Fresh logs the checks also use: (seed, stores, sales, partitions).
FRESH = ((21, 5, 240, 4), (34, 3, 150, 2))


#: Memory-backed temporary files, where the system has them (Linux): a recovery store snapshots into SQLite after
#: every batch, and on a busy disk its syncs, not the dataflow, made a check take seconds (about 6 times longer).
_MEMORY = Path("/dev/shm")


def _scratch() -> tempfile.TemporaryDirectory:
    """A temporary directory for a check's logs and recovery stores, in memory when the system offers it."""
    in_memory = _MEMORY.is_dir() and os.access(_MEMORY, os.W_OK)
    return tempfile.TemporaryDirectory(prefix="streamlab-check-", dir=_MEMORY if in_memory else None)


def _log(tmp: Path, spec: tuple[int, int, int, int]) -> Log:
    seed, stores, sales, partitions = spec
    log = Log.create(tmp / f"sales-{seed}", partitions=partitions)
    publish_sales(log, take(pipe(seed=seed, keys=stores), sales))
    return log


# --------------------------------------------------------------------------- exercise 1


def _replayed(snapshot_at: dict[int, int], written_before: list[Row]) -> set[tuple[int, int]]:
    """The answer of exercise 1: what the lesson's ``Recovery.replayed`` holds, as a set."""
    return {r.position for r in written_before if r.offset >= snapshot_at[r.partition]}


@functools.lru_cache(maxsize=1)
def _trials() -> tuple[tuple[dict[int, int], tuple[Row, ...]], ...]:
    """Real crashes of the lesson's dataflow and of fresh ones, resumed: (snapshot offsets, rows written before)."""
    cases = []
    with _scratch() as tmp:
        root = Path(tmp)
        plans = [(LESSON, 25, 180, "sink"), (LESSON, 50, 40, "sink"), (LESSON, 25, 180, "step"),
                 (FRESH[0], 10, 77, "sink"), (FRESH[1], 7, 33, "sink")]
        for i, (spec, batch_size, at, where) in enumerate(plans):
            log = _log(root / str(i), spec)
            trial = crash_and_resume(log, "at least once", Crash(at, where), root / str(i), batch_size=batch_size)
            cases.append((dict(trial.snapshot_at), tuple(trial.written_before)))
    return tuple(cases)


def _partition_rows(rng: random.Random, partitions: int, counts: Sequence[int], *, aside: float = 0.0,
                    cents: Sequence[int] = (0, 250, 250, 1999, -500)) -> list[list[Row]]:
    """Each partition's rows in offset order, as the lesson's dataflow makes them (a store lives in one partition).

    With probability ``aside`` a record makes no row (it was routed aside): its offset has no row.
    """
    out = []
    for p in range(partitions):
        stores = [f"store-{p + partitions * i}" for i in range(rng.randint(1, 3))]
        state: dict[str, tuple[int, int]] = {}
        rows = []
        for offset in range(counts[p]):
            if rng.random() < aside:
                continue
            store = rng.choice(stores)
            amount = rng.choice(cents) if rng.random() < 0.5 else rng.randint(1, 6000)
            sales, total = state.get(store, (0, 0))
            state[store] = (sales + 1, total + amount)
            rows.append(Row(store, p, offset, amount, sales + 1, total + amount))
        out.append(rows)
    return out


def _interleaved(per_partition: Sequence[Sequence[Row]], batch: int) -> list[Row]:
    """The rows as a sink receives them: a batch of each partition in turn."""
    queues = [list(rows) for rows in per_partition]
    out: list[Row] = []
    while any(queues):
        for q in queues:
            out += q[:batch]
            del q[:batch]
    return out


def _written_case(rng: random.Random, partitions: int, counts: Sequence[int], snapshot: Sequence[int | None], *,
                  batch: int = 3, aside: float = 0.0, resumed_before: bool = False, label: str = "a generated crash"
                  ) -> Case:
    """A crash: the rows written before it and the snapshot's offsets (``None``: a random one, up to what was read)."""
    per = _partition_rows(rng, partitions, counts, aside=aside)
    at = {p: rng.randint(0, counts[p]) if s is None else min(s, counts[p]) for p, s in enumerate(snapshot)}
    written = _interleaved(per, batch)
    if resumed_before:
        # A ledger resumed once already: an earlier snapshot's replay wrote some rows a second time.
        earlier = {p: rng.randint(0, at[p]) for p in at}
        written += _interleaved([[r for r in rows if r.offset >= earlier[r.partition]] for rows in per], batch)
    return Case((at, written), label, items=1)


def _replay_cases() -> Iterator[Case]:
    for snapshot_at, written in _trials()[:1]:
        yield Case((snapshot_at, list(written)), "the lesson's crash", items=1)
    rng = random.Random(808)
    yield _written_case(rng, 3, (0, 0, 0), (0, 0, 0), label="a crash at the very first record")
    yield _written_case(rng, 3, (4, 6, 5), (0, 0, 0), label="a crash before the first snapshot")
    yield _written_case(rng, 3, (4, 6, 5), (4, 6, 5), label="a crash just after a snapshot")
    yield _written_case(rng, 2, (9, 7), (6, 6), label="a crash at the last record")
    yield _written_case(rng, 1, (5,), (2,), label="one partition")
    yield _written_case(rng, 5, (3, 6, 0, 8, 2), (1, 4, 0, 8, 0), label="five partitions")
    yield _written_case(rng, 2, (160, 3), (12, 0), batch=40, label="a long replay")
    yield _written_case(rng, 3, (90, 70, 80), (0, 35, 80), batch=30, label="long replays")
    yield _written_case(rng, 3, (8, 8, 8), (None, None, None), aside=0.3, label="records routed aside (no row)")
    yield _written_case(rng, 2, (7, 9), (None, None), resumed_before=True, label="a ledger already resumed once")
    for i, (snapshot_at, written) in enumerate(_trials()[1:], 1):
        label = "a crash of the lesson's dataflow" if i < 3 else "a crash of a fresh log"
        yield Case((snapshot_at, list(written)), label, items=1)
    for _ in range(40):
        partitions = rng.randint(1, 4)
        counts = [rng.choice((0, 1, 2, 3, 5, 8, 13)) for _ in range(partitions)]
        snapshot = [rng.choice((0, c, None, None)) for c in counts]
        yield _written_case(rng, partitions, counts, snapshot, batch=rng.choice((1, 2, 3, 5)),
                            aside=rng.choice((0.0, 0.0, 0.2)), resumed_before=rng.random() < 0.15)


def _pair(item: Any) -> tuple[int, int] | None:
    if isinstance(item, (tuple, list, np.ndarray)) and len(item) == 2 and all(
            isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_)) for x in item):
        return int(item[0]), int(item[1])
    return None


def _positions(answer: Any, case: Case) -> Any:
    """The positions an answer names, as a bag (each once); a Mistake for an answer of another shape."""
    if isinstance(answer, (numbers.Number, np.number)) and not isinstance(answer, (bool, np.bool_)):
        raise Mistake("return the positions (partition, offset) of the rows written twice, not how many there are")
    if isinstance(answer, pd.DataFrame):
        answer = list(answer.itertuples(index=False, name=None))
    if answer is None or not isinstance(answer, Iterable) or isinstance(answer, (str, bytes, dict, bool, np.bool_)):
        raise Mistake(f"return a set (or list) of (partition, offset) pairs, got {type(answer).__name__}")
    got = set()
    for item in answer:
        if isinstance(item, Row):
            raise Mistake("return each row's position, (row.partition, row.offset), not the row itself")
        pair = _pair(item)
        if pair is None:
            raise Mistake(f"each item must be a (partition, offset) pair of ints, got {item!r:.60}")
        got.add(pair)
    return bag(got)


def _show_written(case: Case) -> str:
    snapshot_at, written = case.args
    shown = ", ".join(f"({r.partition}, {r.offset}, {r.store})" for r in written[:12])
    if len(written) > 12:
        shown += f", ... and {len(written) - 12} more"
    offsets = "{" + ", ".join(f"{p}: {o}" for p, o in sorted(snapshot_at.items())) + "}"
    if not written:
        return f"with snapshot offsets {offsets} and no row written before the crash"
    what = "this 1 row" if len(written) == 1 else f"these {len(written)} rows"
    return (f"with snapshot offsets {offsets} and {what} written before the crash, in the order they were written "
            f"(partition, offset, store): {shown}")


def _one_offset(pick: Callable[[Iterable[int]], int]) -> Callable[[dict[int, int], list[Row]], set[tuple[int, int]]]:
    """A model of a mistake: one snapshot offset (``pick`` of them all) for every partition."""
    def model(snapshot_at: dict[int, int], written: list[Row]) -> set[tuple[int, int]]:
        at = pick(snapshot_at.values()) if snapshot_at else 0
        return {r.position for r in written if r.offset >= at}
    return model


def _names_unwritten(got: Any, want: Any, case: Case) -> bool:
    return bool(set(got.items) - {r.position for r in case.args[1]})


REPLAYED = Exercise(
    solution=_replayed,
    cases=_replay_cases,
    describe=_show_written,
    meaning=_positions,
    known=(
        Known("rows written before the snapshot are safe: the resumed run starts reading at the snapshot's offsets.",
              model=lambda snapshot_at, written: {r.position for r in written}),
        Known("a snapshot holds the *next* offset to read: the record at that very offset is read again.",
              model=lambda snapshot_at, written: {r.position for r in written if r.offset > snapshot_at[r.partition]}),
        Known("only rows that were written before the crash can be written twice.", when=_names_unwritten),
        Known("each partition resumes at its own offset: look up the snapshot's offset for the row's partition.",
              model=_one_offset(min)),
        Known("each partition resumes at its own offset: look up the snapshot's offset for the row's partition.",
              model=_one_offset(max)),
    ),
)


@checker
def replayed(fn: Callable[[dict[int, int], list[Row]], Any]) -> Feedback:
    """Check ``replayed(snapshot_at, written_before)`` against the solution on real crashes and generated ones."""
    REPLAYED.compare(fn)
    return correct("each partition resumes at its snapshot's offset; the rows it had written from there on come twice.")


# --------------------------------------------------------------------------- exercise 2


def _write_rows(output: dict, rows: list[Row]) -> None:
    """The answer of exercise 2: an upsert keyed by the record's position."""
    for row in rows:
        output[row.position] = row


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


class _LearnerError(Exception):
    """The learner's code raised; carried out of the dataflow to become the answer (an error) on that case."""

    def __init__(self, inner: Exception) -> None:
        super().__init__(str(inner))
        self.inner = inner


def _collect(value: Any, found: list[Row]) -> None:
    if isinstance(value, Row):
        found.append(value)
    elif isinstance(value, dict):
        for k, v in value.items():  # a row may be a key (a dict used as a set) or a value: counted once either way
            _collect(v, found)
            if isinstance(k, Row) and k is not v and k != v:
                found.append(k)
    elif isinstance(value, (list, tuple, set)):
        for v in value:
            _collect(v, found)


@dataclass(frozen=True)
class _RealCrash:
    """A case run in the lesson's dataflow itself: a log, its batch size, the sink's crash point."""

    spec: tuple[int, int, int, int]
    batch_size: int
    at: int


#: Where a batch of writes ends, in a case's list of rows (two in a row: an empty batch).
_END = None


def _batches(items: Sequence[Row | None]) -> list[list[Row]]:
    batches: list[list[Row]] = [[]]
    for item in items:
        if item is _END:
            batches.append([])
        else:
            batches[-1].append(item)
    return batches if batches[-1] else batches[:-1]


def _sink_writes(rng: random.Random, partitions: int, counts: Sequence[int], *, batch: int, crash: int | None,
                 snapshot: Sequence[int | None] | None = None, empty: float = 0.0, twice: float = 0.0) -> list:
    """The batches an at-least-once sink gets: a run that dies before its row ``crash``, then the resume.

    The resumed run rewrites each partition's rows from the snapshot's offset
    (``None``: a batch boundary before where the crash happened; -1: where
    that partition had been written to, so nothing is replayed); ``crash=None``
    is a run without a crash. ``empty``: the chance of an empty batch after a
    batch; ``twice``: of a row repeated inside its batch.
    """
    per = _partition_rows(rng, partitions, counts)
    first = _interleaved(per, batch)
    if crash is not None:
        first = first[:crash]
    reached = {p: max((r.offset + 1 for r in first if r.partition == p), default=0) for p in range(partitions)}
    if snapshot is None:
        snapshot = [None] * partitions
    at = {p: rng.randrange(0, reached[p] + 1, batch) if s is None else reached[p] if s == -1 else s
          for p, s in enumerate(snapshot)}
    replayed = [[r for r in rows if r.offset >= at[p]] for p, rows in enumerate(per)]
    second = [] if crash is None else _interleaved(replayed, batch)
    items: list = []
    for run in (first, second):
        for i in range(0, len(run), batch):
            chunk = run[i:i + batch]
            if rng.random() < twice and chunk:
                chunk.insert(rng.randrange(len(chunk) + 1), rng.choice(chunk))
            items += [*chunk, _END]
            if rng.random() < empty:
                items.append(_END)
    return items


def _sink_cases() -> Iterator[Case]:
    rng = random.Random(818)
    yield Case(([],), "no rows at all")
    yield Case(([_END, _END],), "empty batches")
    for label, args, kw in [
        ("one partition, crashed and resumed", (1, (6,)), dict(batch=2, crash=3)),
        ("two partitions, sharing offsets", (2, (4, 4)), dict(batch=2, crash=5)),
        ("a crash before the first row", (2, (3, 4)), dict(batch=2, crash=0)),
        ("a crash at the last row", (3, (3, 2, 4)), dict(batch=3, crash=8)),
        ("a resume from the very start", (2, (5, 5)), dict(batch=2, crash=7, snapshot=(0, 0))),
        ("nothing replayed", (2, (4, 6)), dict(batch=2, crash=6, snapshot=(-1, -1))),
        ("no crash", (3, (3, 4, 2)), dict(batch=2, crash=None)),
        ("a long replay", (2, (60, 50)), dict(batch=25, crash=70, snapshot=(0, 0))),
        ("empty batches and a row twice in its batch", (2, (5, 5)), dict(batch=2, crash=6, empty=0.5, twice=0.5)),
    ]:
        yield Case((_sink_writes(rng, *args, **kw),), label)
    for _ in range(30):
        partitions = rng.randint(1, 4)
        counts = [rng.choice((0, 1, 2, 4, 7)) for _ in range(partitions)]
        batch = rng.choice((1, 2, 3, 5))
        crash = rng.choice((None, 0, rng.randint(0, sum(counts) + 1), rng.randint(0, sum(counts) + 1)))
        yield Case((_sink_writes(rng, partitions, counts, batch=batch, crash=crash, empty=rng.choice((0.0, 0.2)),
                                 twice=rng.choice((0.0, 0.0, 0.2))),))
    # Last, the lesson's dataflow itself: the learner's function in its sink, crashed there and resumed.
    yield Case((_RealCrash(LESSON, 25, 180),), "the lesson's dataflow, crashed in the sink and resumed", items=None)
    yield Case((_RealCrash(FRESH[1], 7, 20),), "a fresh log's dataflow, crashed in the sink and resumed", items=None)


def _write_all(write_rows: Callable[[dict, list[Row]], Any], case: Case) -> Any:
    """Give ``write_rows`` the case's batches in turn, on one output dict (or run the real dataflow); the output."""
    what = case.args[0]
    if isinstance(what, _RealCrash):
        return _real_sink(write_rows, what)
    output: dict[Any, Any] = {}
    for batch in _batches(what):
        write_rows(output, list(batch))
    return output


def _real_sink(write_rows: Callable[[dict, list[Row]], Any], real: _RealCrash) -> Any:
    with _scratch() as tmp:
        root = Path(tmp)
        log = _log(root, real.spec)
        store = _LearnerStore(write_rows)
        recovery = fresh_store(root / "recovery")
        for crash in (Crash(real.at, "sink"), None):
            error = _run(log, store, recovery, real.batch_size, crash)
            cause = error.__cause__ if error is not None else None
            inner = cause
            while inner is not None and not isinstance(inner, (_LearnerError, NotImplementedError)):
                inner = inner.__cause__
            if isinstance(inner, _LearnerError):
                raise inner.inner
            if isinstance(inner, NotImplementedError):
                raise NotImplementedError()
            if crash is not None and not isinstance(cause, InjectedCrash):
                raise RuntimeError(f"the dataflow should have crashed in the sink, but it {error or 'did not'}")
            if crash is None and error is not None:
                raise error
        return store.output


def _sink_rows(output: Any, case: Case) -> Any:
    """Every Row in the output, as a bag: what a reader of the table finds."""
    if isinstance(output, Raised):
        return output
    found: list[Row] = []
    _collect(output, found)
    what = case.args[0]
    given = None if isinstance(what, _RealCrash) else {r for r in what if r is not _END}
    if given is not None and any(r not in given for r in found):
        raise Mistake("the rows in the output are not the ones the dataflow wrote: store the rows as they come")
    return bag(found)


def _show_batches(case: Case) -> str:
    what = case.args[0]
    if isinstance(what, _RealCrash):
        seed, stores, sales, partitions = what.spec
        return (f"on {sales} sales of {stores} stores (pipe seed {seed}) in a log of {partitions} partitions, read "
                f"{what.batch_size} at a time, the dataflow dying in the sink before its row {what.at}, then resumed")
    batches = _batches(what)
    if not batches:
        return "with no batch of rows at all"
    shown = "\n".join("  [" + "; ".join(f"({r.partition}, {r.offset}) {r.store} {_money(r.cents)} → {r.sales} "
                                         f"sale{'s' if r.sales != 1 else ''} {_money(r.total_cents)}" for r in b) + "]"
                      for b in batches[:8])
    if len(batches) > 8:
        shown += f"\n  ... and {len(batches) - 8} more batches"
    head = "this 1 batch" if len(batches) == 1 else f"these {len(batches)} batches"
    return (f"with {head} written in turn, each row as (partition, offset), store, amount → the store's count "
            f"and total:\n{shown}")


def _show_rows(answer: Any) -> str:
    if isinstance(answer, Raised):
        return repr(answer)
    rows = answer.items
    if not rows:
        return "an empty output"
    counts = Counter(r.position for r in rows)
    if len(counts) > 12:
        twice = sum(n - 1 for n in counts.values())
        return f"{len(rows)} rows for {len(counts)} sales" + (f" ({twice} of them extra copies)" if twice else "")
    return "rows for " + ", ".join(f"{p}" + ("" if n == 1 else " twice" if n == 2 else f" {n} times")
                                   for p, n in sorted(counts.items()))


def _copies(got: Any, want: Any, case: Case) -> bool:
    return set(got.items) == set(want.items) and len(got.items) > len(want.items)


def _keyed_by(key: Callable[[Row], Any]) -> Callable[[dict, list[Row]], None]:
    """A model of a mistake: rows upserted under a key that does not identify the sale."""
    def write(output: dict, rows: list[Row]) -> None:
        for row in rows:
            output[key(row)] = row
    return write


SINK = Exercise(
    solution=_write_rows,
    cases=_sink_cases,
    call=_write_all,
    meaning=_sink_rows,
    describe=_show_batches,
    show=_show_rows,
    known=(
        Known("the output holds no rows: put each row in `output` (a dict), under a key of your choice.",
              when=lambda got, want, case: not got.items and bool(want.items)),
        Known("the sink wrote some rows again (a replay, or a row twice in a batch), and your output keeps every "
              "copy. Key each row by something that identifies its sale and is the same when the row is written "
              "again.", when=_copies),
        Known("the output keeps one row per store: the check wants a row for every sale.",
              model=_keyed_by(lambda row: row.store)),
        Known("rows of different partitions share offsets: an offset alone does not identify a sale.",
              model=_keyed_by(lambda row: row.offset)),
    ),
)


@checker
def idempotent_sink(write_rows: Callable[[dict, list[Row]], Any]) -> Feedback:
    """Check ``write_rows(output, rows)`` on generated batches (replays, copies, empty batches) and in the dataflow."""
    if not callable(write_rows):
        raise Mistake("pass your function write_rows itself")
    SINK.compare(write_rows)
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


def _sales_steps(records: Stream) -> Stream:
    """The answer of exercise 3: decode, key by store, the stateful step, the row."""
    sales = op.map("decode", records, sale_from)
    by_store = op.key_on("by_store", sales, lambda sale: sale.store)
    return op.map("row", op.stateful_map("running_total", by_store, step), lambda store_row: store_row[1])


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

    op.output("write", rows, StoreSink(_Out()))  # type: ignore[arg-type]
    return flow


def _rows(items: list) -> list[Row]:
    rows = []
    for item in items:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Row):
            item = item[1]
        if not isinstance(item, Row):
            raise Mistake(f"each item of the stream you return must be a Row (or a (store, Row) pair), "
                          f"got {item!r:.80}")
        rows.append(item)
    return rows


def _ids(flow: Dataflow) -> list[str]:
    return [step.step_id for step in flow.substeps]


@dataclass(frozen=True)
class _Runs:
    """What a reader sees: each store's rows (count, total) in order without a crash; the answer after crash and resume.

    ``after`` is None when the crash point is past the log's end (a shrunk case): there is no crash to resume from.
    """

    without: tuple[tuple[str, tuple[tuple[int, int], ...]], ...]
    after: tuple[tuple[str, int, int], ...] | None


def _flow_cases() -> Iterator[Case]:
    rng = random.Random(838)
    finite = (0.0, -5.0, 0.01, 1e6)
    for label, n, keys, partitions, batch_size, at in [
        ("one partition, a crash part-way through a batch", 6, 2, 1, 2, 3),
        ("two partitions, a crash at the first record", 8, 3, 2, 1, 0),
        ("three partitions, a crash at the last record", 9, 3, 3, 2, 8),
        ("an empty log", 0, 1, 2, 2, 0),
        ("one sale", 1, 1, 1, 1, 1),
        ("several stores per partition", 12, 5, 2, 3, 7),
        ("a long replay", 40, 3, 2, 20, 38),
    ]:
        yield Case((events(rng, n, keys=keys, values=finite), partitions, batch_size, at), label)
    for _ in range(3):
        n = rng.randint(2, 14)
        yield Case((events(rng, n, keys=rng.randint(1, 4), values=finite), rng.randint(1, 3), rng.choice((1, 2, 4)),
                    rng.randint(0, n - 1)))
    # Few cases: each crash costs two runs with recovery (about 10 ms each).
    yield Case((_RealCrash(LESSON, 25, 180),), "the lesson's sales", items=None)
    yield Case((_RealCrash(FRESH[0], 10, 95),), "a fresh log", items=None)


def _case_log(root: Path, case: Case) -> tuple[Log, int, int]:
    """The case's log, written under ``root``; its batch size and crash point."""
    if isinstance(case.args[0], _RealCrash):
        real = case.args[0]
        return _log(root, real.spec), real.batch_size, real.at
    sales, partitions, batch_size, at = case.args
    log = Log.create(root / "sales", partitions=partitions)
    publish_sales(log, sales)
    return log, batch_size, at


def _crash_and_resume(sales_steps: Callable[[Stream], Stream], case: Case) -> _Runs:
    """Run the learner's steps without a crash; then with recovery, crashed at the case's record, and resumed."""
    with _scratch() as tmp:
        root = Path(tmp)
        log, batch_size, at = _case_log(root, case)
        out: list = []
        run_flow(_learner_flow(sales_steps, log, batch_size, None, out))
        without: dict[str, list[tuple[int, int]]] = {}
        for row in _rows(out):
            without.setdefault(row.store, []).append((int(row.sales), int(row.total_cents)))
        runs = tuple((store, tuple(said)) for store, said in sorted(without.items()))
        if at >= sum(log.end_offsets().values()):
            return _Runs(runs, None)
        config = RecoveryConfig(str(fresh_store(root / "recovery")))
        out = []
        try:
            run_flow(_learner_flow(sales_steps, log, batch_size, Crash(at), out), epoch_interval=timedelta(0),
                     recovery_config=config)
            raise Mistake("the check's crash did not happen: do not catch errors in your steps")
        except StreamError as err:
            if not isinstance(err.__cause__, InjectedCrash):
                raise
        run_flow(_learner_flow(sales_steps, log, batch_size, None, out), epoch_interval=timedelta(0),
                 recovery_config=config)
        after = answer_from(_rows(out))
    return _Runs(runs, tuple((str(store), int(r.sales), int(r.total_cents)) for store, r in after.iterrows()))


def _expected(case: Case) -> _Runs:
    """The solution's outcome on a case, without bytewax: each store's running rows in its partition's order.

    A store's sales sit in one partition, in the order they were published, so
    its rows do not depend on how the partitions interleave; after a crash and
    a resume from the snapshot, the answer is the batch answer
    (``test_the_expected_outcome_is_the_solution_run_for_real`` runs the
    solution through each case's crash to prove it).
    """
    if isinstance(case.args[0], _RealCrash):
        seed, stores, n, _ = case.args[0].spec
        sales = take(pipe(seed=seed, keys=stores), n)
    else:
        sales = case.args[0]
    running: dict[str, list[tuple[int, int]]] = {}
    for sale in sales:
        said = running.setdefault(sale.key, [])
        count, total = said[-1] if said else (0, 0)
        said.append((count + 1, total + round(sale.value * 100)))
    names = sorted(running)
    crashed = case.args[0].at < len(sales) if isinstance(case.args[0], _RealCrash) else case.args[3] < len(sales)
    return _Runs(tuple((s, tuple(running[s])) for s in names),
                 tuple((s, *running[s][-1]) for s in names) if crashed else None)


def _call(sales_steps: Callable[[Stream], Stream], case: Case) -> _Runs:
    return _expected(case) if sales_steps is _sales_steps else _crash_and_resume(sales_steps, case)


def _money(cents: int) -> str:
    return f"{cents / 100:.2f} €"


def _show_flow_case(case: Case) -> str:
    if isinstance(case.args[0], _RealCrash):
        real = case.args[0]
        seed, stores, sales, partitions = real.spec
        return (f"on {sales} sales of {stores} stores (pipe seed {seed}) in a log of {partitions} partitions, read "
                f"{real.batch_size} records at a time, the run dying before its record {real.at}, then resumed")
    sales, partitions, batch_size, at = case.args
    if not sales:
        return f"on an empty log of {partitions} partition(s)"
    log = Log(Path("unused"), partitions)
    where: dict[int, list[str]] = {}
    for store in sorted({e.key for e in sales}):
        where.setdefault(log.partition_for(store), []).append(store)
    layout = "; ".join(f"partition {p}: {', '.join(stores)}" for p, stores in sorted(where.items()))
    shown = ", ".join(f"{e.key} {_money(round(e.value * 100))}" for e in sales)
    what = "this 1 sale" if len(sales) == 1 else f"these {len(sales)} sales"
    crash = (f"the run dying before its record {at}, then resumed from its snapshot" if at < len(sales)
             else "no crash (the crash point is past the log's end)")
    return (f"with {what}, in the order they were published (store, amount): {shown}; in a log of {partitions} "
            f"partition(s) ({layout}), read {batch_size} record(s) at a time; {crash}")


def _show_runs(answer: Any) -> str:
    if not isinstance(answer, _Runs):
        return repr(answer)

    def rows(said: tuple[tuple[int, int], ...]) -> str:
        text = ", ".join(f"{n} sale{'s' if n != 1 else ''} {_money(c)}" for n, c in said[-4:])
        return (f"{len(said)} rows ending with " if len(said) > 4 else "") + text

    without = "the rows " + "; ".join(f"{store}: {rows(said)}" for store, said in answer.without) if answer.without \
        else "no row"
    if answer.after is None:
        return without
    after = "; ".join(f"{store}: {n} sale{'s' if n != 1 else ''} {_money(c)}" for store, n, c in answer.after)
    after = after or "no row"
    return f"without a crash, {without}; after the crash and the resume, the answer {after}"


def _once_at_the_end(got: Any, want: Any, case: Case) -> bool:
    return (all(len(said) == 1 for _, said in got.without) and got.after == want.after
            and [said[-1] for _, said in got.without] == [said[-1] for _, said in want.without]
            and any(len(said) > 1 for _, said in want.without))


def _lost_in_the_resume(got: Any, want: Any, case: Case) -> bool:
    return got.without == want.without and got.after != want.after and want.after is not None


def _stores_together(got: Any, want: Any, case: Case) -> bool:
    sales = sum(len(said) for _, said in want.without)
    return len(want.without) > 1 and max((said[-1][0] for _, said in got.without if said), default=0) == sales


FLOW = Exercise(
    solution=_sales_steps,
    cases=_flow_cases,
    call=_call,
    describe=_show_flow_case,
    show=_show_runs,
    # Each call of the learner's steps is three real runs (about 10 ms each): a short shrink, one case run again.
    budget=12,
    rerun=1,
    known=(
        Known("right without a crash, wrong after the resume: state kept outside bytewax's stateful steps (a dict of "
              "your own) is not in the snapshot. Keep it in stateful_map.", when=_lost_in_the_resume),
        Known("your steps give each store's total once, at the end, as a batch job does. A stream has no end: emit a "
              "row for every sale, with the store's count and total so far.", when=_once_at_the_end),
        Known("your count and total run over every store together: key the sales by store, so that each store keeps "
              "its own (count, total).", when=_stores_together),
    ),
)


@checker
def resumable_flow(sales_steps: Callable[[Stream], Stream]) -> Feedback:
    """Run ``sales_steps`` with recovery, crash it, resume it; compare with the solution on generated and real logs."""
    if not callable(sales_steps):
        raise Mistake("pass your function sales_steps itself")
    with _scratch() as tmp:
        log = Log.create(Path(tmp) / "sales", partitions=1)
        if _ids(_learner_flow(sales_steps, log, 1, None, [])) != _ids(_learner_flow(sales_steps, log, 1, None, [])):
            raise Mistake("your step ids change from one build of the dataflow to the next: a resumed run would "
                          "not find its state in the snapshot")
    FLOW.compare(sales_steps)
    return correct("crashed, resumed from the snapshot, and the same answer as the batch job.")
