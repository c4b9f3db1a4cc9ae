"""Stream validated order events from the log into an Iceberg table, in micro-batches, exactly once.

:func:`load_orders` is a bytewax dataflow: :class:`~streamlab.stream.logs.LogSource`
reads the log from the offsets the table last committed, each record is
validated once (good rows for the table, the rest to the dead letters, with
the reason), and :class:`IcebergSink` commits the rows of each micro-batch of
simulated time in one Iceberg commit that also records the log offsets it
covers. A restarted run skips whatever the table already holds, so a crash at
any point leaves every row in the table exactly once.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from pyiceberg.table import Table

from streamlab.events import COURSE_START
from streamlab.lakehouse import Validated, batch_end, commit, committed_offsets, dead_letter_row, order_row, validate
from streamlab.log import Log, Record
from streamlab.stream.logs import LogSource
from streamlab.stream.runner import DEFAULT_BATCH_SIZE, StreamError, run_flow

__all__ = ["Crash", "IcebergSink", "Load", "SimulatedCrash", "load_orders"]


class SimulatedCrash(RuntimeError):
    """The crash a test or a lesson asked for: data files written, commit not made."""


@dataclass(frozen=True)
class Crash:
    """Where to crash: at this run's ``at_commit``-th commit, after writing its data files, before committing.

    ``how="raise"`` raises :class:`SimulatedCrash` (the dataflow stops, the
    process lives); ``how="kill"`` sends the process SIGKILL (nothing after it runs).
    """

    at_commit: int
    how: str = "raise"

    def __post_init__(self) -> None:
        if not isinstance(self.at_commit, int) or self.at_commit < 1:
            raise ValueError(f"at_commit must be an int >= 1, got {self.at_commit!r:.60}")
        if self.how not in ("raise", "kill"):
            raise ValueError(f"how must be 'raise' or 'kill', got {self.how!r:.60}")

    def __call__(self) -> None:
        if self.how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise SimulatedCrash(f"crashed at commit {self.at_commit}, after writing its data files, before committing")


@dataclass
class Load:
    """What one run did: commits made (clock and rows), rows skipped as already committed, rows routed aside."""

    commits: list[tuple[datetime, int]] = field(default_factory=list)
    skipped: int = 0
    crashed: bool = False

    @property
    def rows(self) -> int:
        return sum(n for _, n in self.commits)


class _Partition(StatelessSinkPartition[Any]):
    def __init__(self, sink: IcebergSink) -> None:
        self.sink = sink
        self.committed = committed_offsets(sink.table)
        self.pending: list[dict[str, Any]] = []
        self.offsets: dict[int, int] = {}
        self.end: datetime | None = None
        self.crashed = False

    def write_batch(self, items: list[tuple[int, int, datetime, dict[str, Any]]]) -> None:
        for partition, offset, arrival, row in items:
            if offset < self.committed.get(partition, 0):
                self.sink.load.skipped += 1  # in the table already: written by an earlier run
                continue
            end = batch_end(arrival, self.sink.every)
            if self.end is not None and end > self.end:
                self._commit()
            self.end = end if self.end is None else max(self.end, end)
            self.pending.append(row)
            self.offsets[partition] = offset + 1

    def _commit(self) -> None:
        if self.pending:
            load = self.sink.load
            crash = self.sink.crash
            hook = crash if crash is not None and len(load.commits) + 1 == crash.at_commit else None
            try:
                commit(self.sink.table, self.pending, offsets=self.offsets, clock=self.end, before_commit=hook)
            except BaseException:
                self.crashed = True
                raise
            load.commits.append((self.end, len(self.pending)))
        self.pending, self.end = [], None

    def close(self) -> None:
        # The log ran out: what is pending is committed at its batch's end on the simulated clock.
        # After a crash, bytewax still closes the sink while unwinding; a crashed writer commits nothing more.
        if not self.crashed:
            self._commit()


class IcebergSink(DynamicSink[Any]):
    """A bytewax sink that appends rows to an Iceberg table, one commit per micro-batch of ``every`` (simulated time).

    Items are ``(log partition, offset, arrival time, row)``. A row whose
    offset is below what the table has committed is skipped; each commit
    records the next offset per partition and the batch's end as the clock.
    Use it with one worker: one writer per table keeps commits in log order.
    """

    def __init__(self, table: Table, *, every: timedelta, crash: Crash | None = None) -> None:
        batch_end(COURSE_START, every)  # refuses an `every` that is no micro-batch size
        self.table, self.every, self.crash = table, every, crash
        self.load = Load()

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Partition:
        if worker_count != 1:
            raise ValueError(f"IcebergSink needs one worker (one writer per table), got {worker_count}")
        return _Partition(self)


def _decode(validator: Callable[[Record], Validated]) -> Callable[[Record], tuple]:
    def decode(record: Record) -> tuple:
        checked = validator(record)
        return record.partition, record.offset, checked
    return decode


def load_orders(
    log: Log,
    table: Table,
    *,
    every: timedelta = timedelta(minutes=5),
    dead_letters: Table | None = None,
    validator: Callable[[Record], Validated] = validate,
    crash: Crash | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Load:
    """Stream the log's order events into ``table``, validated once, one commit per ``every`` of simulated time.

    Reading starts at the offsets the table (and the dead-letter table) last
    committed: a run after a crash carries on where the table stands. Records
    that fail validation go to ``dead_letters`` (exactly once too) if given.
    Returns what this run did; ``crashed`` is set if ``crash`` stopped it.
    """
    start = committed_offsets(table)
    if dead_letters is not None:
        dead_start = committed_offsets(dead_letters)
        start = {p: min(start.get(p, 0), dead_start.get(p, 0)) for p in range(log.partitions)}
    source = LogSource(log, decode=_decode(validator), batch_size=batch_size,
                       start={p: start.get(p, 0) for p in range(log.partitions)})
    flow = Dataflow("lakehouse")
    records = op.input("log", flow, source)
    split = op.branch("valid", records, lambda r: r[2].event is not None)
    good = op.map("order_row", split.trues,
                  lambda r: (r[0], r[1], r[2].event.arrival_time, order_row(r[2].event, r[0], r[1])))
    sink = IcebergSink(table, every=every, crash=crash)
    op.output("table", good, sink)
    if dead_letters is not None:
        bad = op.map("dead_letter", split.falses,
                     lambda r: (r[0], r[1], r[2].arrival_time, dead_letter_row(r[2].raw, r[2].reason, r[0], r[1])))
        op.output("dead_letters", bad, IcebergSink(dead_letters, every=every))
    try:
        run_flow(flow)
    except StreamError as err:
        if not isinstance(err.__cause__, SimulatedCrash):
            raise
        sink.load.crashed = True
    return sink.load


def _main(argv: list[str]) -> None:
    """``python -m streamlab.stream.lakehouse WAREHOUSE LOG EVERY_S [CRASH_AT]``: for crash tests in a fresh process."""
    from pathlib import Path

    from streamlab.lakehouse import create_table, open_warehouse

    warehouse, log_path, every = argv[0], argv[1], timedelta(seconds=float(argv[2]))
    crash = Crash(int(argv[3]), "kill") if len(argv) > 3 else None
    table = create_table(open_warehouse(warehouse), "shop.orders")
    load_orders(Log.open(Path(log_path)), table, every=every, crash=crash)


if __name__ == "__main__":
    import sys

    _main(sys.argv[1:])
