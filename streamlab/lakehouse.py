"""Lesson 09: a lakehouse on a laptop: validated order events in an Apache Iceberg table, queried with DuckDB.

An Iceberg table is a directory of Parquet files plus metadata that says which
files make up the table *now* (its current snapshot) and which made it up
before (earlier snapshots: time travel). Every write is a *commit*: new data
files, a new snapshot, and an atomic swap of the table's pointer in the
catalog (here a SQLite file, :func:`open_warehouse`). Readers see a snapshot
whole or not at all.

The course's rules for a table fed by a stream live here once:

- **exactly once** (:func:`commit`, :func:`committed_offsets`): every commit
  records, in its snapshot's properties, the next log offset of each partition
  it has read up to, and the simulated clock; a writer that restarts reads
  them back and skips what is already in the table;
- **time travel by the simulated clock** (:func:`as_of`), never by snapshot
  ids or wall-clock commit times, which differ on every run;
- **upkeep** (:data:`RECOMMENDED`, :func:`expire`, :func:`compact`): without
  manifest merging, metadata cleanup and snapshot expiry, small commits get
  slower as the table's history grows;
- **schema evolution** (:func:`evolve`): add a column, rename one; a type
  change that old data cannot take is refused and changes nothing.

>>> import tempfile
>>> from streamlab.orders import order_pipe, take
>>> with tempfile.TemporaryDirectory() as tmp:
...     table = create_table(open_warehouse(tmp), "shop.orders")
...     events = take(order_pipe(seed=1), 30)
...     rows = [order_row(e, 0, i) for i, e in enumerate(events)]
...     _ = commit(table, rows, offsets={0: 30}, clock=events[-1].arrival_time)
...     committed_offsets(table), len(table.scan().to_arrow())
({0: 30}, 30)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NoSuchTableError, ValidationError
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot
from pyiceberg.types import DoubleType, IntegerType, LongType, NestedField, StringType, TimestamptzType

from streamlab.events import check_utc
from streamlab.orders import OrderEvent

__all__ = [
    "CLOCK",
    "CONSUMERS",
    "DAMAGE",
    "DEAD_LETTER_SCHEMA",
    "NAMESPACE",
    "OFFSETS",
    "ORDER_SCHEMA",
    "RECOMMENDED",
    "AddColumn",
    "ChangeType",
    "NothingCommittedError",
    "Rename",
    "SchemaChangeRefused",
    "Validated",
    "as_of",
    "batch_end",
    "batch_sweep",
    "changes_between",
    "commit",
    "commit_latencies",
    "committed_offsets",
    "compact",
    "create_table",
    "data_files",
    "dead_letter_row",
    "evolve",
    "evolve_with",
    "expire",
    "files_on_disk",
    "freshness",
    "hand_clean",
    "history",
    "open_warehouse",
    "order_row",
    "paid_by_hour",
    "publish_raw",
    "query",
    "raw_orders",
    "read",
    "shift_left",
    "validate",
    "validate_raw",
]

#: Snapshot properties written by every commit of the course: the next offset per log partition, and the clock.
OFFSETS = "streamlab.offsets"
CLOCK = "streamlab.clock"
#: The namespace every table of the course lives in.
NAMESPACE = "shop"

#: The table properties the lesson recommends for a table fed by small, frequent commits.
#: Without them the table's metadata grows with every commit, and so does the time to commit.
RECOMMENDED: dict[str, str] = {
    # Merge the small manifests (one per commit) into one once there are 10 of them, instead of
    # listing hundreds in every snapshot's manifest list.
    "commit.manifest-merge.enabled": "true",
    "commit.manifest.min-count-to-merge": "10",
    # Delete metadata files older than the last 10 versions, instead of keeping one per commit forever.
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "10",
}

ORDER_SCHEMA = Schema(
    NestedField(1, "order_id", StringType(), required=True),
    NestedField(2, "customer", StringType(), required=True),
    NestedField(3, "kind", StringType(), required=True),
    NestedField(4, "amount", DoubleType(), required=True),
    NestedField(5, "event_time", TimestamptzType(), required=True),
    NestedField(6, "arrival_time", TimestamptzType(), required=True),
    # Where the row came from in the log: what makes "every row exactly once" checkable.
    NestedField(7, "log_partition", IntegerType(), required=True),
    NestedField(8, "log_offset", LongType(), required=True),
)

#: Records that failed validation, routed aside with the reason (the raw value kept as JSON text).
DEAD_LETTER_SCHEMA = Schema(
    NestedField(1, "raw", StringType(), required=True),
    NestedField(2, "reason", StringType(), required=True),
    NestedField(3, "log_partition", IntegerType(), required=True),
    NestedField(4, "log_offset", LongType(), required=True),
)


class NothingCommittedError(LookupError, ValueError):
    """The table had no commit by the time asked for."""


class SchemaChangeRefused(ValueError):
    """A schema change the table's data cannot take; the table is left as it was."""


# --------------------------------------------------------------------------- the warehouse


def open_warehouse(path: str | Path) -> SqlCatalog:
    """A catalog on local disk: a SQLite file for the table pointers, and the tables' files under ``path``.

    No server, no JVM, no network: the same catalog API a cloud deployment
    uses against a REST catalog or AWS Glue.
    """
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"path must be an existing directory (the warehouse lives in it), got {str(path)!r}")
    root = root.resolve()
    catalog = SqlCatalog("streamlab", uri=f"sqlite:///{root / 'catalog.db'}", warehouse=root.as_uri())
    if (NAMESPACE,) not in catalog.list_namespaces():
        catalog.create_namespace(NAMESPACE)
    return catalog


def create_table(
    catalog: Catalog,
    name: str,
    schema: Schema = ORDER_SCHEMA,
    *,
    properties: Mapping[str, str] = RECOMMENDED,
) -> Table:
    """Create the table ``name`` ("shop.orders"), or load it if it exists (a restarted writer finds its table).

    Not partitioned: a day of orders is a few thousand rows, and partitioning
    by ``day(event_time)`` needs pyiceberg's optional Rust extension.
    """
    if not isinstance(name, str) or not name.startswith(f"{NAMESPACE}."):
        raise ValueError(f"name must be '{NAMESPACE}.<table>', got {name!r:.60}")
    try:
        return catalog.load_table(name)
    except NoSuchTableError:
        return catalog.create_table(name, schema=schema, properties=dict(properties))


# --------------------------------------------------------------------------- rows


def order_row(event: OrderEvent, partition: int, offset: int) -> dict[str, Any]:
    """One validated order event as a row of :data:`ORDER_SCHEMA`, with where it sits in the log."""
    return {
        "order_id": event.order_id, "customer": event.customer, "kind": event.kind, "amount": event.amount,
        "event_time": event.event_time, "arrival_time": event.arrival_time,
        "log_partition": partition, "log_offset": offset,
    }


def dead_letter_row(raw: Any, reason: str, partition: int, offset: int) -> dict[str, Any]:
    """One record that failed validation, as a row of :data:`DEAD_LETTER_SCHEMA`."""
    return {"raw": json.dumps(raw, sort_keys=True, default=str), "reason": reason,
            "log_partition": partition, "log_offset": offset}


def _arrow(table: Table, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    # The table's own schema, not one inferred from the rows: inferred Arrow columns are nullable
    # and typed by guess, and Iceberg refuses a nullable column for a required field.
    return pa.Table.from_pylist(list(rows), schema=table.schema().as_arrow())


# --------------------------------------------------------------------------- exactly once


def _properties(snapshot: Snapshot | None) -> dict[str, str]:
    if snapshot is None or snapshot.summary is None:
        return {}
    return dict(snapshot.summary.additional_properties)


def _stamped(table: Table) -> Snapshot | None:
    """The latest snapshot in the current one's ancestry that carries the course's properties."""
    snapshot = table.current_snapshot()
    while snapshot is not None:
        if OFFSETS in _properties(snapshot):
            return snapshot
        parent = snapshot.parent_snapshot_id
        snapshot = table.snapshot_by_id(parent) if parent is not None else None
    return None


def committed_offsets(table: Table) -> dict[int, int]:
    """The next log offset of each partition, as the table's latest commit recorded it ({} for an empty table).

    A writer that (re)starts reads the log from here, and skips any record
    below it: those rows are in the table already.
    """
    snapshot = _stamped(table)
    if snapshot is None:
        return {}
    return {int(p): int(o) for p, o in json.loads(_properties(snapshot)[OFFSETS]).items()}


def _clock_of(snapshot: Snapshot) -> datetime | None:
    clock = _properties(snapshot).get(CLOCK)
    return datetime.fromisoformat(clock) if clock else None


def commit(
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    offsets: Mapping[int, int],
    clock: datetime,
    before_commit: Callable[[], None] | None = None,
) -> bool:
    """Append ``rows`` in one commit that records ``offsets`` (next offset per partition) and the simulated ``clock``.

    Either the rows and their offsets are in the table together, or neither is:
    the data files are written first, then one atomic commit makes them part
    of the table with the offsets in the same snapshot. A crash between the two
    leaves files no snapshot lists (harmless, cleaned by an orphan-file sweep)
    and the offsets as they were, so the restarted writer writes those rows again,
    once. ``before_commit`` (for crash tests) is called between the two.
    Returns ``False`` when there was nothing to commit.
    """
    check_utc("clock", clock)
    if not rows:
        return False
    merged = {**committed_offsets(table), **{int(p): int(o) for p, o in offsets.items()}}
    properties = {OFFSETS: json.dumps(merged, sort_keys=True), CLOCK: clock.isoformat()}
    transaction = table.transaction()
    transaction.append(_arrow(table, rows), snapshot_properties=properties)  # writes the Parquet files
    if before_commit is not None:
        before_commit()
    transaction.commit_transaction()  # the one atomic step
    return True


# --------------------------------------------------------------------------- reading


def history(table: Table) -> pd.DataFrame:
    """One row per snapshot still in the table: its simulated clock, rows added, rows and files in total.

    Snapshot ids and wall-clock commit times are left out on purpose: they
    differ on every run. The clock and offsets are what the course recorded.
    """
    rows = []
    for number, snapshot in enumerate(table.snapshots(), start=1):
        props = _properties(snapshot)
        summary = snapshot.summary
        rows.append({
            "snapshot": number,
            "operation": summary.operation.value if summary is not None else "",
            "clock": pd.Timestamp(props[CLOCK]) if CLOCK in props else pd.NaT,
            "rows_added": int(props.get("added-records", 0)),
            "rows": int(props.get("total-records", 0)),
            "files": int(props.get("total-data-files", 0)),
            "offsets": props.get(OFFSETS, ""),
        })
    frame = pd.DataFrame(rows, columns=["snapshot", "operation", "clock", "rows_added", "rows", "files", "offsets"])
    frame["clock"] = pd.to_datetime(frame["clock"], utc=True)
    return frame.set_index("snapshot")


def read(table: Table, snapshot: Snapshot | None = None) -> pd.DataFrame:
    """The table (or one snapshot of it) as a DataFrame, sorted by log position."""
    scan = table.scan(snapshot_id=snapshot.snapshot_id) if snapshot is not None else table.scan()
    frame = scan.to_arrow().to_pandas()
    if {"log_partition", "log_offset"} <= set(frame.columns):
        frame = frame.sort_values(["log_partition", "log_offset"], kind="stable")
    return frame.reset_index(drop=True)


def as_of(table: Table, when: datetime) -> pd.DataFrame:
    """Time travel by the simulated clock: the table as the latest commit made at or before ``when`` left it.

    "What did the dashboard say at 10:00?": the rows a reader saw then, found
    by the clock each commit recorded, not by snapshot id or wall-clock time.
    """
    check_utc("when", when)
    chosen = None
    for snapshot in table.snapshots():
        clock = _clock_of(snapshot)
        if clock is not None and clock <= when and (chosen is None or clock >= _clock_of(chosen)):
            chosen = snapshot
    if chosen is None:
        raise NothingCommittedError(f"nothing was committed at or before {when.isoformat()} (when)")
    return read(table, chosen)


def query(sql: str, **tables: Any) -> pd.DataFrame:
    """Run DuckDB SQL over Arrow tables or DataFrames named by keyword, in-process, and return a DataFrame.

    DuckDB reads the Arrow scan of an Iceberg table directly: no server, no
    extension to download.

    >>> query("SELECT count(*) AS n FROM t", t=pd.DataFrame({"x": [1, 2, 3]}))["n"].tolist()
    [3]
    """
    import duckdb

    connection = duckdb.connect()
    # Times shown in UTC on every laptop, not in the machine's own time zone.
    connection.execute("SET TimeZone = 'UTC'")
    try:
        for name, data in tables.items():
            connection.register(name, data)
        return connection.execute(sql).df()
    finally:
        connection.close()


# --------------------------------------------------------------------------- upkeep


def data_files(table: Table) -> int:
    """Data files in the current snapshot."""
    snapshot = table.current_snapshot()
    return int(_properties(snapshot).get("total-data-files", 0)) if snapshot is not None else 0


def files_on_disk(table: Table) -> int:
    """Parquet files under the table's data directory: the live ones and those no snapshot needs any more."""
    return sum(1 for _ in _local(table.location()).joinpath("data").rglob("*.parquet"))


def _local(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


def expire(table: Table, keep: int) -> int:
    """Expire all but the latest ``keep`` snapshots and return how many went (time travel reaches no further back).

    pyiceberg 0.12 removes them from the metadata; the data files only they
    needed stay on disk until an orphan-file sweep (:func:`files_on_disk`).
    """
    if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
        raise ValueError(f"keep must be an int >= 1 (the current snapshot always stays), got {keep!r:.60}")
    old = [s.snapshot_id for s in table.snapshots()[:-keep]]
    if old:
        table.maintenance.expire_snapshots().by_ids(old).commit()
    return len(old)


def compact(table: Table) -> tuple[int, int]:
    """Rewrite the table's rows into as few files as possible; return (files before, files after).

    pyiceberg 0.12 has no compaction of its own; rewriting the current rows
    with ``overwrite`` does it. The new snapshot carries the latest offsets and
    clock forward, so a writer restarting after it resumes where it was.
    """
    before = data_files(table)
    snapshot = _stamped(table)
    properties = {k: v for k, v in _properties(snapshot).items() if k in (OFFSETS, CLOCK)}
    rows = table.scan().to_arrow()
    if {"log_partition", "log_offset"} <= set(rows.column_names):
        rows = rows.sort_by([("log_partition", "ascending"), ("log_offset", "ascending")])
    table.overwrite(rows, snapshot_properties=properties)
    return before, data_files(table)


def commit_latencies(table: Table, batches: Iterable[Sequence[Mapping[str, Any]]], *,
                     expire_every: int | None = None, keep: int = 10) -> list[float]:
    """Commit each batch in turn and return each commit's wall time in seconds (for the small-files measurements).

    With ``expire_every``, every that many commits the table keeps only its
    latest ``keep`` snapshots (the expiry's time is counted in that commit's).
    """
    latencies = []
    offset = 0
    for number, rows in enumerate(batches, start=1):
        offset += len(rows)
        started = time.perf_counter()
        commit(table, rows, offsets={0: offset}, clock=rows[-1]["arrival_time"])
        if expire_every and number % expire_every == 0:
            expire(table, keep)
        latencies.append(time.perf_counter() - started)
    return latencies


# --------------------------------------------------------------------------- evolution


@dataclass(frozen=True)
class AddColumn:
    """Add an optional column (old rows read it as null)."""

    name: str
    type: Any = StringType()


@dataclass(frozen=True)
class Rename:
    """Rename a column; Iceberg tracks columns by id, so old files read under the new name."""

    old: str
    new: str


@dataclass(frozen=True)
class ChangeType:
    """Change a column's type; only widenings old data can take (int to long, float to double) are allowed."""

    name: str
    type: Any


def evolve(table: Table, change: AddColumn | Rename | ChangeType) -> Schema:
    """Apply one schema change to the table and return the new schema; a refused change raises :class:`SchemaChangeRefused`.

    The change is one commit of the table's metadata: it happens whole or not
    at all, and no data file is rewritten.
    """
    try:
        with table.update_schema() as update:
            if isinstance(change, AddColumn):
                update.add_column(change.name, change.type)
            elif isinstance(change, Rename):
                update.rename_column(change.old, change.new)
            elif isinstance(change, ChangeType):
                update.update_column(change.name, field_type=change.type)
            else:
                raise TypeError(f"change must be AddColumn, Rename or ChangeType, got {type(change).__name__}")
    except (ValidationError, ValueError, TypeError) as why:
        if isinstance(why, TypeError) and "change must be" in str(why):
            raise
        field = getattr(change, "name", getattr(change, "old", "?"))
        raise SchemaChangeRefused(
            f"schema change refused on column {field!r} ({why}); the table's schema is unchanged"
        ) from None
    return table.schema()


_AVRO_TYPES = {"string": StringType(), "double": DoubleType(), "long": LongType(), "int": IntegerType()}


def _iceberg_type(avro_type: Any) -> Any:
    from pyiceberg.types import BooleanType, FloatType

    types = {**_AVRO_TYPES, "float": FloatType(), "boolean": BooleanType()}
    if isinstance(avro_type, dict) and avro_type.get("logicalType") == "timestamp-micros":
        return TimestamptzType()
    if isinstance(avro_type, str) and avro_type in types:
        return types[avro_type]
    raise SchemaChangeRefused(f"the course maps only simple Avro types to the table, not {avro_type!r:.60}")


def changes_between(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[AddColumn | Rename | ChangeType]:
    """The table changes that follow one Avro schema change: new fields, renamed ones (by alias), retyped ones.

    >>> from streamlab.registry import load
    >>> changes_between(load("orders-v1"), load("orders-rename-customer"))
    [Rename(old='customer', new='customer_id')]
    """
    before = {f["name"]: f for f in old["fields"]}
    changes: list[AddColumn | Rename | ChangeType] = []
    for field in new["fields"]:
        name = field["name"]
        was = next((a for a in field.get("aliases", []) if a in before and name not in before), None)
        if was is not None:
            changes.append(Rename(was, name))
        elif name not in before:
            changes.append(AddColumn(name, _iceberg_type(field["type"])))
        if (was or name) in before and before[was or name]["type"] != field["type"]:
            changes.append(ChangeType(name, _iceberg_type(field["type"])))
    kept = {f["name"] for f in new["fields"]} | {a for f in new["fields"] for a in f.get("aliases", [])}
    dropped = sorted(set(before) - kept)
    if dropped:
        raise SchemaChangeRefused(
            f"the new schema drops {dropped}: the table keeps its columns (required ones would refuse new rows); "
            f"drop them from the table deliberately, not as a side effect"
        )
    return changes


def evolve_with(table: Table, registry: Any, subject: str, schema: Mapping[str, Any]) -> Schema:
    """Evolve the table in step with lesson 07's schema registry: the registry decides first, then the table follows.

    The new Avro schema must pass the subject's compatibility check
    (``registry.check``); then its changes (:func:`changes_between`) are
    applied to the table in one metadata commit; only then is it registered.
    A refusal by either, :class:`SchemaChangeRefused`, changes neither.
    """
    problems = registry.check(subject, schema)
    if problems:
        raise SchemaChangeRefused(
            f"the registry refused the new schema for {subject!r} under {registry.mode(subject)}: "
            f"{'; '.join(problems)}; the table's schema is unchanged"
        )
    changes = changes_between(registry.latest(subject), schema)
    try:
        with table.update_schema() as update:
            for change in changes:
                if isinstance(change, AddColumn):
                    update.add_column(change.name, change.type)
                elif isinstance(change, Rename):
                    update.rename_column(change.old, change.new)
                else:
                    update.update_column(change.name, field_type=change.type)
    except (ValidationError, ValueError) as why:
        raise SchemaChangeRefused(f"the table refused {changes}: {why}; the table's schema is unchanged") from None
    registry.register(subject, schema)
    return table.schema()


# --------------------------------------------------------------------------- freshness


def batch_end(arrival: datetime, every: timedelta) -> datetime:
    """The end of the micro-batch an event arriving at ``arrival`` belongs to: batches of ``every``, from midnight.

    >>> t = datetime(2026, 3, 1, 10, 7, tzinfo=timezone.utc)
    >>> batch_end(t, timedelta(minutes=5)).time()
    datetime.time(10, 10)
    """
    check_utc("arrival", arrival)
    if not isinstance(every, timedelta) or every <= timedelta(0) or timedelta(days=1) % every:
        raise ValueError(f"every must be a timedelta > 0 that divides a day, got {every!r:.60}")
    midnight = arrival.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + (arrival - midnight) // every * every + every


def batch_sweep(arrivals: Iterable[datetime], everys: Sequence[timedelta]) -> pd.DataFrame:
    """For each micro-batch size: commits it makes (one per batch that holds a row) and the longest a row waits to be readable.

    A row is readable at the end of its micro-batch on the simulated clock.

    >>> t = datetime(2026, 3, 1, 10, 7, tzinfo=timezone.utc)
    >>> batch_sweep([t, t + timedelta(minutes=1)], [timedelta(minutes=5)]).to_dict("records")
    [{'every': '5 min', 'commits': 1, 'worst wait (min)': 3.0}]
    """
    arrivals = list(arrivals)
    rows = []
    for every in everys:
        ends = [batch_end(t, every) for t in arrivals]
        worst = max((end - t for end, t in zip(ends, arrivals, strict=True)), default=timedelta(0))
        rows.append({"every": _label(every), "commits": len(set(ends)),
                     "worst wait (min)": round(worst.total_seconds() / 60, 2)})
    return pd.DataFrame(rows)


def _label(every: timedelta) -> str:
    seconds = int(every.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


def freshness(table: Table, *, by: str = "h") -> pd.DataFrame:
    """When each hour's events became readable: per hour of arrival, the clock of the commit that held its last row.

    ``waited`` is how long after the hour ended its last row became
    readable; ``longest_wait`` the longest any of its rows waited after arriving.
    """
    rows = read(table)
    visible = _visible_at(table, rows)
    hours = rows["arrival_time"].dt.floor(by)
    waits = pd.DataFrame({"hour": hours, "visible_at": visible, "wait": visible - rows["arrival_time"]})
    frame = waits.groupby("hour").agg(visible_at=("visible_at", "max"), longest_wait=("wait", "max"))
    frame["waited"] = frame["visible_at"] - (frame.index + pd.Timedelta(1, by))
    return frame[["visible_at", "waited", "longest_wait"]]


def _visible_at(table: Table, rows: pd.DataFrame) -> pd.Series:
    """For each row, the clock of the commit that made it readable (the first stamped commit whose offsets cover it)."""
    commits = []
    for snapshot in table.snapshots():
        props = _properties(snapshot)
        appended = snapshot.summary is not None and snapshot.summary.operation.value == "append"
        if OFFSETS in props and CLOCK in props and appended:
            commits.append((pd.Timestamp(props[CLOCK]), {int(p): int(o) for p, o in json.loads(props[OFFSETS]).items()}))
    commits.sort(key=lambda c: c[0])
    result = pd.Series(pd.NaT, index=rows.index, dtype="datetime64[us, UTC]")
    for clock, offsets in reversed(commits):
        for partition, next_offset in offsets.items():
            covered = (rows["log_partition"] == partition) & (rows["log_offset"] < next_offset)
            result[covered] = clock
    return result


# --------------------------------------------------------------------------- the raw dump and validating it once

#: How the shop's systems damage a record now and then, one way each (the raw dump has them all).
DAMAGE: tuple[str, ...] = ("comma amount", "negative amount", "no customer", "naive event time", "capitalised kind")


def raw_orders(events: Iterable[OrderEvent], *, seed: int = 0, damaged: float = 0.05) -> list[dict[str, Any]]:
    """The events as the shop's systems send them: JSON dicts, a seeded share ``damaged`` broken one way each.

    The ways are :data:`DAMAGE`: an amount written "12,50", a negative
    amount, no customer, an event time without its UTC offset, a kind
    written "Paid". The arrival time is the log's own stamp, never damaged.

    >>> from streamlab.orders import order_pipe, take
    >>> raw = raw_orders(take(order_pipe(seed=1), 200), seed=1, damaged=0.1)
    >>> sum(validate_raw(r).event is None for r in raw)
    17
    """
    import random

    if not (isinstance(damaged, (int, float)) and 0.0 <= damaged <= 1.0):
        raise ValueError(f"damaged must be a share from 0 to 1, got {damaged!r:.60}")
    rng = random.Random(seed)
    out = []
    for event in events:
        record = event.to_json()
        if rng.random() < damaged:
            how = DAMAGE[rng.randrange(len(DAMAGE))]
            if how == "comma amount":
                record["amount"] = f"{event.amount:.2f}".replace(".", ",")
            elif how == "negative amount":
                record["amount"] = -event.amount
            elif how == "no customer":
                record["customer"] = None
            elif how == "naive event time":
                record["event_time"] = event.event_time.replace(tzinfo=None).isoformat()
            else:
                record["kind"] = event.kind.capitalize()
        out.append(record)
    return out


@dataclass(frozen=True)
class Validated:
    """A raw record checked once: the event if it is good, else the reason; and when it arrived (the log's stamp)."""

    event: OrderEvent | None
    raw: Any
    reason: str | None
    arrival_time: datetime


def validate_raw(raw: Any, *, source: str = "", position: int = 0) -> Validated:
    """Check one raw record with lesson 07's rules (:func:`streamlab.schemas.validate`), once, upstream.

    The log carries JSON, which has no time type: times travel as ISO 8601
    text and are read back as datetimes first (text that is no ISO time stays
    text, and the rules refuse it by name). A bad record keeps lesson 07's
    reason, which names the field, the value and the rule.
    """
    from streamlab import schemas  # lesson 07

    arrival = _arrival(raw)
    checked = schemas.validate(_times_read(raw), source=source, position=position)
    if isinstance(checked, OrderEvent):
        return Validated(checked, raw, None, arrival)
    return Validated(None, raw, checked.reason, arrival)


def _times_read(raw: Any) -> Any:
    if not isinstance(raw, Mapping):
        return raw
    record = dict(raw)
    for name in ("event_time", "arrival_time"):
        if isinstance(record.get(name), str):
            try:
                record[name] = datetime.fromisoformat(record[name])
            except ValueError:
                pass  # kept as text: the rules name it
    return record


def validate(record: Any) -> Validated:
    """Validate a log record's value (see :func:`validate_raw`); its source is "orders/partition@offset"."""
    return validate_raw(record.value, source=f"orders/{record.partition}@{record.offset}", position=record.offset)


def _arrival(raw: Any) -> datetime:
    try:
        arrival = datetime.fromisoformat(raw["arrival_time"])
        check_utc("arrival_time", arrival)
        return arrival
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            f"arrival_time must be the log's UTC stamp (an ISO 8601 time with offset), got {raw!r:.120}"
        ) from None


def publish_raw(log: Any, raw: Iterable[Mapping[str, Any]]) -> int:
    """Append raw order records to a :class:`~streamlab.log.Log`, keyed by their order id, and return how many."""
    return len(log.extend((str(r.get("order_id")), dict(r)) for r in raw))


# --------------------------------------------------------------------------- shift left: cleaning downstream, by hand

#: Two downstream teams that each clean the raw dump themselves, each in a reasonable way of its own.
CONSUMERS: tuple[str, ...] = ("finance", "marketing")


def hand_clean(raw: Sequence[Mapping[str, Any]], consumer: str) -> pd.DataFrame:
    """The raw dump cleaned the way one downstream team does it, in pandas (columns: the event's fields).

    ``"finance"`` parses amounts strictly (``"12,50"`` becomes missing) and
    drops rows with a missing or non-positive amount or customer, and reads
    a time without offset as UTC. ``"marketing"`` reads ``"12,50"`` as 12.5,
    takes negative amounts as typos (their absolute value), keeps rows without
    a customer as ``"unknown"``, lower-cases kinds, and drops times without
    offset. Both are defensible; they do not agree.
    """
    if consumer not in CONSUMERS:
        raise ValueError(f"consumer must be one of {CONSUMERS}, got {consumer!r:.60}")
    frame = pd.DataFrame(list(raw), columns=["order_id", "customer", "kind", "amount", "event_time", "arrival_time"])
    if consumer == "finance":
        frame["amount"] = pd.to_numeric(frame["amount"], errors="coerce")
        frame = frame[(frame["amount"] > 0) & frame["customer"].notna()]
        frame = frame.assign(event_time=pd.to_datetime(frame["event_time"], utc=True, format="ISO8601"))
    else:
        amount = frame["amount"].astype(str).str.replace(",", ".", regex=False)
        frame = frame.assign(amount=pd.to_numeric(amount, errors="coerce").abs(),
                             customer=frame["customer"].fillna("unknown"), kind=frame["kind"].str.lower())
        aware = frame["event_time"].str.contains(r"[+-]\d\d:\d\d$|Z$", regex=True)
        frame = frame[aware]
        frame = frame.assign(event_time=pd.to_datetime(frame["event_time"], utc=True, format="ISO8601"))
    frame = frame.assign(arrival_time=pd.to_datetime(frame["arrival_time"], utc=True, format="ISO8601"))
    return frame.reset_index(drop=True)


def paid_by_hour(events: pd.DataFrame) -> pd.Series:
    """Money paid per hour of event time: the analysts' question, asked of any cleaned frame of events."""
    paid = events[events["kind"] == "paid"]
    return paid.groupby(paid["event_time"].dt.floor("h"))["amount"].sum().rename("paid")


def shift_left(raw: Sequence[Mapping[str, Any]], validated: pd.DataFrame) -> pd.DataFrame:
    """Cleaning once upstream against every team cleaning the raw dump: rows each touched, rows kept, money paid.

    ``validated`` is the table the stream wrote (validated once). Each hand
    cleaning touches every raw row again; their answers differ from each other
    and from the validated table on the damaged rows.
    """
    frames = {"validated once (the table)": validated, **{f"{c}, by hand": hand_clean(raw, c) for c in CONSUMERS}}
    rows = []
    for name, frame in frames.items():
        rows.append({
            "who": name,
            "raw rows touched": 0 if name.startswith("validated") else len(raw),
            "rows kept": len(frame),
            "paid, total": round(float(paid_by_hour(frame).sum()), 2),
        })
    return pd.DataFrame(rows).set_index("who")
