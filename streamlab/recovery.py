"""Failure and recovery, shared by both drivers: the sales in a log, crashes on demand, two kinds of sink, the accounts.

The computation is one learners know from lesson 01: a running total of sales
per store. The sales are published to a lesson 03 :class:`~streamlab.log.Log`
(one record per sale, the store as its key, so each store's sales stay in
order in one partition), because a stream that must resume needs a source it
can re-read from an offset. Money is kept in whole cents, so a total never
depends on the order of additions.

Every output row says which record made it (``partition``, ``offset``), so the
accounts can tell a record written twice from two records:

- :class:`Ledger` appends rows to a file: a crash followed by a replay writes
  some rows again (*at least once*);
- :class:`Table` upserts rows into SQLite keyed by the record's position:
  writing a row again changes nothing (*idempotent*).

:class:`Crash` says where a run dies: before handling its ``at``-th record in
a step, or before writing its ``at``-th row in the sink (counted from 0 within
the run); ``how="raise"`` raises :class:`InjectedCrash`, ``how="wait"`` stops
and waits to be killed (``kill -9``) from outside.

>>> import tempfile, pathlib
>>> from streamlab.events import pipe, take
>>> with tempfile.TemporaryDirectory() as tmp:
...     log = Log.create(pathlib.Path(tmp) / "sales", partitions=2)
...     publish_sales(log, take(pipe(seed=1, keys=3), 5))
...     [sale_from(r).cents for r in log.read(0)]
5
[1981, 2585, 2100, 2067, 1869]
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from streamlab.events import Event
from streamlab.log import Log, Record

__all__ = [
    "Crash",
    "CrashPoint",
    "GUARANTEES",
    "InjectedCrash",
    "Ledger",
    "Recovery",
    "Rejected",
    "Row",
    "Sale",
    "Table",
    "add_poison",
    "answer_from",
    "publish_sales",
    "sale_from",
    "step",
]

Guarantee = Literal["at most once", "at least once", "effectively once"]
#: The three setups of the lesson, each with the same crash.
GUARANTEES: tuple[str, ...] = ("at most once", "at least once", "effectively once")
ANSWER_COLUMNS = ("sales", "total_cents")


class InjectedCrash(RuntimeError):
    """The crash a :class:`Crash` asked for: the process dies here."""


@dataclass(frozen=True, slots=True)
class Sale:
    """One sale read back from the log, with its position there."""

    store: str
    cents: int
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that is not a sale (a *poison* record), routed aside with the reason."""

    partition: int
    offset: int
    reason: str


@dataclass(frozen=True, slots=True)
class Row:
    """One output row: the store's running count and total after the sale at (``partition``, ``offset``)."""

    store: str
    partition: int
    offset: int
    cents: int
    sales: int
    total_cents: int

    @property
    def position(self) -> tuple[int, int]:
        return (self.partition, self.offset)


def _cents(event: Event, position: int) -> int:
    value = event.value
    if value is None or not math.isfinite(value):
        raise ValueError(f"event {position}: value must be a finite amount to publish a sale, got {value!r}")
    return round(value * 100)


def publish_sales(log: Log, events: Iterable[Event]) -> int:
    """Append each sale to ``log`` (key: the store; value: its amount in cents and its times); return how many.

    Every event is checked before anything is written (all or nothing).
    """
    items = []
    for position, event in enumerate(events):
        if not isinstance(event, Event):
            raise TypeError(f"event {position} must be an Event, got {type(event).__name__} {event!r:.60}")
        items.append((event.key, {
            "cents": _cents(event, position),
            "event_time": event.event_time.isoformat(),
            "arrival_time": event.arrival_time.isoformat(),
        }))
    log.extend(items)
    return len(items)


def add_poison(log: Log, store: str, amount: Any = "USD 12.50") -> Record:
    """Append a record that is not a sale (its amount is text): a *poison* record for ``store``'s partition."""
    return log.append(store, {"cents": amount})


def sale_from(record: Record) -> Sale:
    """Decode a log record into a :class:`Sale`; a ValueError names the record, the field and the value.

    >>> sale_from(Record(1, 7, "store-2", {"cents": "USD 12.50"}))
    Traceback (most recent call last):
    ...
    ValueError: record at partition 1, offset 7: cents must be a whole number of cents, got 'USD 12.50'
    """
    value = record.value
    cents = value.get("cents") if isinstance(value, dict) else None
    if not isinstance(cents, int) or isinstance(cents, bool):
        got = value.get("cents") if isinstance(value, dict) else value
        raise ValueError(
            f"record at partition {record.partition}, offset {record.offset}: "
            f"cents must be a whole number of cents, got {got!r:.60}"
        )
    return Sale(record.key, cents, record.partition, record.offset)


def step(state: tuple[int, int] | None, sale: Sale) -> tuple[tuple[int, int], Row]:
    """The stateful step: the store's (count, total) so far, and the row this sale makes.

    >>> step(None, Sale("store-0", 250, 0, 0))
    ((1, 250), Row(store='store-0', partition=0, offset=0, cents=250, sales=1, total_cents=250))
    """
    sales, total = state or (0, 0)
    sales, total = sales + 1, total + sale.cents
    return (sales, total), Row(sale.store, sale.partition, sale.offset, sale.cents, sales, total)


def answer_from(rows: Iterable[Row]) -> pd.DataFrame:
    """The answer a reader of the output takes: each store's latest row (its count and total), by store.

    A store's sales sit in one partition, in order, so its latest row is the one
    with the highest offset; a row written twice changes nothing here.
    """
    latest: dict[str, Row] = {}
    for row in rows:
        held = latest.get(row.store)
        if held is None or row.offset > held.offset:
            latest[row.store] = row
    return answer_frame({store: (r.sales, r.total_cents) for store, r in latest.items()})


def answer_frame(totals: Mapping[str, tuple[int, int]]) -> pd.DataFrame:
    """The answer as a frame: ``sales`` and ``total_cents`` per store (the index), sorted by store."""
    frame = pd.DataFrame(
        [(store, sales, total) for store, (sales, total) in sorted(totals.items())],
        columns=["store", *ANSWER_COLUMNS],
    ).set_index("store")
    return frame.astype({"sales": "int64", "total_cents": "int64"})


# --------------------------------------------------------------------------- crashes on demand


@dataclass(frozen=True)
class Crash:
    """Where a run dies: before its ``at``-th record (``where="step"``) or row (``where="sink"``), counted from 0.

    ``how="raise"`` raises :class:`InjectedCrash` there (the dataflow stops with
    a :class:`~streamlab.stream.runner.StreamError`); ``how="wait"`` writes
    ``signal`` (a file path) and waits there, so that a test or a lesson can
    ``kill -9`` the process at exactly that point.
    """

    at: int
    where: Literal["step", "sink"] = "step"
    how: Literal["raise", "wait"] = "raise"
    signal: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.at, int) or isinstance(self.at, bool) or self.at < 0:
            raise ValueError(f"at must be an int >= 0 (the record or row the run dies on), got {self.at!r}")
        if self.where not in ("step", "sink"):
            raise ValueError(f"where must be 'step' or 'sink', got {self.where!r}")
        if self.how not in ("raise", "wait"):
            raise ValueError(f"how must be 'raise' or 'wait', got {self.how!r}")
        if self.how == "wait" and not self.signal:
            raise ValueError("how='wait' needs signal=, the file to write when the crash point is reached")

    def __str__(self) -> str:
        what = "record" if self.where == "step" else "row written"
        return f"dies before its {what} {self.at}"

    def encode(self) -> str:
        """The crash as one line of text, for an environment variable: ``where:at:how[:signal]``."""
        return ":".join([self.where, str(self.at), self.how] + ([self.signal] if self.signal else []))

    @classmethod
    def decode(cls, text: str) -> Crash:
        """The inverse of :meth:`encode`."""
        where, at, how, *signal = text.split(":", 3)
        return cls(int(at), where, how, signal[0] if signal else None)  # type: ignore[arg-type]


class CrashPoint:
    """Counts what a run passes where a :class:`Crash` waits, and crashes there; harmless without a crash."""

    def __init__(self, crash: Crash | None, where: str) -> None:
        self.crash = crash if crash is not None and crash.where == where else None
        self.passed = 0

    def tick(self) -> None:
        """Call before each record (or row): dies when the crash's count is reached."""
        crash = self.crash
        if crash is not None and self.passed == crash.at:
            if crash.how == "wait":
                Path(crash.signal).write_text(f"{crash.where} {crash.at}\n")  # type: ignore[arg-type]
                while True:  # the process is killed from outside while it waits here
                    time.sleep(0.05)
            raise InjectedCrash(f"the process died before its {'record' if crash.where == 'step' else 'row'} {crash.at}")
        self.passed += 1


# --------------------------------------------------------------------------- sinks


def _row_json(row: Row) -> str:
    return json.dumps([row.store, row.partition, row.offset, row.cents, row.sales, row.total_cents])


class Ledger:
    """An append-only file of rows (JSON lines): every row written is kept, so a replay writes duplicates.

    Each row is written and flushed on its own, so a process killed mid-batch
    leaves the rows before the kill in the file (it is the operating system's
    once written, as in the lesson 03 log).
    """

    kind = "ledger"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.touch()

    def write(self, rows: Iterable[Row], crash: CrashPoint | None = None) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            for row in rows:
                if crash is not None:
                    f.flush()
                    crash.tick()
                f.write(_row_json(row) + "\n")
                f.flush()

    def rows(self) -> list[Row]:
        text = self.path.read_text(encoding="utf-8")
        return [Row(*json.loads(line)) for line in text.splitlines() if line]


class Table:
    """A SQLite table of rows keyed by the record's position: writing a row again replaces it with itself (*idempotent*).

    Each row is committed on its own, like each line of the :class:`Ledger`, so
    a crash mid-batch leaves the rows before it; the replay writes them again,
    and changes nothing. (SQLite's write-ahead log, synchronous=NORMAL: a
    committed row survives the process being killed, not a power cut.)
    """

    kind = "table"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        db = self._connect()
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS rows (partition INTEGER, offset INTEGER, store TEXT, cents INTEGER, "
                "sales INTEGER, total_cents INTEGER, PRIMARY KEY (partition, offset))"
            )
            db.commit()
        finally:
            db.close()
        self.writes = 0

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)  # autocommit: one row, one commit
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def write(self, rows: Iterable[Row], crash: CrashPoint | None = None) -> None:
        db = self._connect()
        try:
            for row in rows:
                if crash is not None:
                    crash.tick()
                db.execute(
                    "INSERT OR REPLACE INTO rows VALUES (?, ?, ?, ?, ?, ?)",
                    (row.partition, row.offset, row.store, row.cents, row.sales, row.total_cents),
                )
                self.writes += 1
        finally:
            db.close()

    def rows(self) -> list[Row]:
        db = self._connect()
        try:
            got = db.execute(
                "SELECT store, partition, offset, cents, sales, total_cents FROM rows ORDER BY partition, offset"
            ).fetchall()
        finally:
            db.close()
        return [Row(*r) for r in got]


Store = Ledger | Table


def open_store(kind: str, path: str | Path) -> Store:
    """A :class:`Ledger` (``"ledger"``) or a :class:`Table` (``"table"``) at ``path``."""
    if kind == "ledger":
        return Ledger(path)
    if kind == "table":
        return Table(path)
    raise ValueError(f"kind must be 'ledger' or 'table', got {kind!r}")


# --------------------------------------------------------------------------- the accounts


@dataclass(frozen=True)
class Recovery:
    """One crash and its resumption, accounted for.

    ``snapshot_at``: per partition, the offset the recovery store held (where
    a resume by snapshot starts reading); ``resumed_from``: where the resumed
    run did start (the same, or the consumer's committed offsets for at most
    once); ``written_before``: the rows in the output when the process died;
    ``rows``: the rows in the output at the end; ``batch``: the batch answer.
    """

    guarantee: str
    crash: Crash
    records: int
    snapshot_at: dict[int, int]
    resumed_from: dict[int, int]
    written_before: list[Row]
    rows: list[Row]
    answer: pd.DataFrame
    batch: pd.DataFrame
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def replayed(self) -> list[tuple[int, int]]:
        """Positions the resumed run read that the crashed run had already written out (read twice, at least once)."""
        if self.resumed_from != self.snapshot_at:
            return []
        return sorted(r.position for r in self.written_before if r.offset >= self.snapshot_at[r.partition])

    @property
    def skipped(self) -> list[tuple[int, int]]:
        """Positions between the snapshot and where the resumed run started: never counted (at most once)."""
        return [(p, o) for p in sorted(self.snapshot_at) for o in range(self.snapshot_at[p], self.resumed_from[p])]

    @property
    def duplicates(self) -> int:
        """Rows in the output beyond one per record."""
        return len(self.rows) - len({r.position for r in self.rows})

    @property
    def lost(self) -> int:
        """Records whose sale is missing from the answer (the batch answer's count minus the stream's).

        At most once, these are the skipped records, as long as every store
        they belong to gets a row after the resume (a store whose last rows were
        written before the crash keeps those rows' totals).
        """
        batch = self.batch["sales"].sum()
        stream = self.answer["sales"].reindex(self.batch.index, fill_value=0).sum()
        return int(batch - stream)

    @property
    def correct(self) -> bool:
        """Whether the answer read from the output equals the batch answer."""
        return self.answer.equals(self.batch)

    @property
    def ledger_sum(self) -> int:
        """What a reader summing every row's amount gets: duplicates counted twice."""
        return sum(r.cents for r in self.rows)

    def summary(self) -> dict[str, Any]:
        """One line of the lesson's table."""
        return {
            "guarantee": self.guarantee,
            "records": self.records,
            "rows written before the crash": len(self.written_before),
            "replayed": len(self.replayed),
            "skipped": len(self.skipped),
            "rows in the output": len(self.rows),
            "duplicates": self.duplicates,
            "lost": self.lost,
            "answer = batch": self.correct,
        }


def position_counts(rows: Iterable[Row]) -> Counter[tuple[int, int]]:
    """How many rows each record position has in an output."""
    return Counter(r.position for r in rows)
