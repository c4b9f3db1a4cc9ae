"""The table as a fold over the log, with bytewax; and the log as a bytewax source.

:func:`orders_changelog` keys the order events by order id and folds them in a
stateful step with :func:`streamlab.orders.apply`, the same rule the batch
driver uses. The step emits every new version of an order: the table's
*changelog*, which is itself a stream. :func:`orders_table` keeps only the latest
version per order, as a live table would.

:class:`LogSource` reads a :class:`streamlab.log.Log`: one bytewax partition
per log partition, its snapshot is the next offset to read, so a dataflow can
start, or resume, at any offset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

import bytewax.operators as op
import pandas as pd
from bytewax.dataflow import Stream
from bytewax.inputs import FixedPartitionedSource, Source, StatefulSourcePartition

from streamlab.events import MAX_BATCH_SIZE, Finite, bounded, check_count, check_utc
from streamlab.log import Log, Record
from streamlab.orders import (
    Changelog,
    Order,
    OrderEvent,
    RejectedEvent,
    apply,
    change_frame,
    in_arrival_order,
    rejected_frame,
    table_frame,
)
from streamlab.stream.runner import DEFAULT_BATCH_SIZE, run

__all__ = ["LogSource", "orders_changelog", "orders_table"]

_CHANGED = "changed"
_REJECTED = "rejected"


def apply_step(order: Order | None, event: OrderEvent) -> tuple[Order | None, tuple]:
    """The stateful step: the state is the order as it is now; the output says what this event did to it."""
    try:
        new = apply(order, event)
    except RejectedEvent as why:
        return order, (_REJECTED, event, why.reason)
    # The new version is known once the event that made it has arrived.
    return new, (_CHANGED, event.arrival_time, new)


def changelog_flow(events: Stream[OrderEvent]) -> dict[str, Stream[Any]]:
    """The dataflow: key by order id, fold with :func:`~streamlab.orders.apply`, route rejected events aside.

    Outputs: ``"changes"`` ``(order_id, (known_at, Order))``, one per applied
    event, and ``"rejected"`` ``(order_id, (event, reason))``.
    """
    keyed = op.key_on("by_order", events, lambda e: e.order_id)
    applied = op.stateful_map("apply", keyed, apply_step)
    split = op.branch("route_rejected", applied, lambda kv: kv[1][0] == _CHANGED)
    changes = op.map_value("changes", split.trues, lambda out: out[1:])
    rejected = op.map_value("rejected", split.falses, lambda out: out[1:])
    return {"changes": changes, "rejected": rejected}


def orders_changelog(
    events: Iterable[OrderEvent] | Source,
    *,
    limit: int | None = None,
    until: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Changelog:
    """Fold order events into the table with bytewax and return every change it went through.

    ``events``: an order pipe (cut by ``limit``, the first events to arrive,
    and/or ``until``, those that arrived before then), any iterable of order events in
    arrival order, or a bytewax source such as :class:`LogSource`, which reads
    the log to its end (choose where it starts with its ``start``).

    A stream cannot sort: if one order's events come in another order than they
    arrived, it raises :class:`~streamlab.orders.OutOfOrderError` rather than
    give another table than the batch driver, which sorts its pile by arrival.

    >>> from streamlab.orders import order_pipe
    >>> log = orders_changelog(order_pipe(seed=1), limit=100)
    >>> len(log.changes), len(log.rejected), log.changes["status"].iloc[0]
    (100, 0, 'placed')
    """
    result = _run(events, limit=limit, until=until, batch_size=batch_size, keep="all")
    changes = change_frame(change for _, change in result["changes"])
    rejected = rejected_frame(item for _, item in result["rejected"])
    return Changelog(changes, rejected, result.events_read)


def orders_table(
    events: Iterable[OrderEvent] | Source,
    *,
    as_of: datetime | None = None,
    limit: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> pd.DataFrame:
    """The table of orders as the stream holds it: the latest version of each order, just before ``as_of``.

    The stream reads the events that arrived before ``as_of`` and stops: at
    that moment, its table is the answer. Only the latest version per order is
    collected, so memory grows with the number of orders, not of events.

    >>> from streamlab.orders import order_pipe
    >>> orders_table(order_pipe(seed=1), limit=100)["status"].value_counts(sort=False).to_dict()
    {'placed': 29, 'paid': 13, 'shipped': 13, 'cancelled': 3}
    """
    if as_of is not None:
        check_utc("as_of", as_of)
    result = _run(events, limit=limit, until=as_of, batch_size=batch_size, keep="latest")
    return table_frame(order for _, (_, order) in result["changes"])


def _run(events, *, limit, until, batch_size, keep):
    if isinstance(events, Source):
        if limit is not None or until is not None:
            raise ValueError(
                "limit=, until= and as_of= cut an iterable of events; a source reads the log to its end "
                "(choose where it starts with LogSource(start=...))"
            )
        # A log keeps each order's events in one partition, in the order they were appended.
        checked: Iterable[OrderEvent] | Source = events
    elif isinstance(events, pd.DataFrame):
        raise TypeError("the stream driver reads events one by one, not a DataFrame: pass the events (a pile or a pipe)")
    else:
        # Cut first (a pipe must be cut), then check what the stream reads.
        cut = bounded(events, limit=limit, until=until)
        checked = _Checked(cut)
    # An OutOfOrderError or TypeError raised while reading comes out of run() as it is.
    return run(
        changelog_flow, checked, batch_size=batch_size, name="orders",
        # Rejected events are always kept in full: nothing is dropped.
        keep={"changes": keep, "rejected": "all"},
    )


class _Checked(Finite):
    """The events, checked as the stream reads them (see :func:`~streamlab.orders.in_arrival_order`); iterable afresh."""

    def __init__(self, events: Iterable[Any]) -> None:
        self.events = events

    def __iter__(self) -> Iterator[OrderEvent]:
        return in_arrival_order(self.events)


# --------------------------------------------------------------------------- the log as a source


class _LogPartition(StatefulSourcePartition[Any, int]):
    def __init__(self, source: LogSource, partition: int, offset: int) -> None:
        self._source = source
        self._partition = partition
        self._offset = offset
        source.positions[partition] = offset
        source.read_by_partition[partition] = 0  # counts this run's reads

    def next_batch(self) -> list[Any]:
        records = self._source.log.read(self._partition, self._offset, self._source.batch_size)
        if not records:
            raise StopIteration()  # caught up: the run ends where the log ends now
        self._offset = records[-1].offset + 1
        self._source.positions[self._partition] = self._offset
        self._source.read_by_partition[self._partition] = (
            self._source.read_by_partition.get(self._partition, 0) + len(records)
        )
        decode = self._source.decode
        return [decode(r) for r in records] if decode else records

    def snapshot(self) -> int:
        # The next offset to read: resuming there reads nothing twice and skips nothing.
        return self._offset


class LogSource(FixedPartitionedSource[Any, int]):
    """A bytewax source that reads a :class:`~streamlab.log.Log`, one bytewax partition per log partition.

    :param log: the log to read.
    :param decode: turns each :class:`~streamlab.log.Record` into the item the
        dataflow gets (e.g. :func:`streamlab.orders.from_record`); records as they are if ``None``.
    :param start: where to start: one offset for every partition, or a dict
        ``{partition: offset}`` (e.g. a consumer's ``log.committed(name)``);
        offset 0 by default. bytewax's recovery, when configured, resumes each
        partition from its snapshot (the next offset to read) instead.
    :param batch_size: records read at a time.

    The run ends when every partition has been read to its end. Afterwards,
    ``positions`` holds the next offset of each partition, where the next run
    may start.
    """

    def __init__(
        self,
        log: Log,
        *,
        decode: Callable[[Record], Any] | None = None,
        start: int | Mapping[int, int] | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if not isinstance(log, Log):
            raise TypeError(f"log must be a streamlab.log.Log, got {type(log).__name__}")
        check_count("batch_size", batch_size, 1, MAX_BATCH_SIZE)
        if start is None:
            start = 0
        offsets = {p: start for p in range(log.partitions)} if isinstance(start, int) and not isinstance(start, bool) else start
        if not isinstance(offsets, Mapping) or set(offsets) != set(range(log.partitions)):
            raise ValueError(
                f"start must be an offset or a dict with an offset for each partition "
                f"{list(range(log.partitions))}, got {start!r}"
            )
        self.start = {p: log._check_offset(p, offsets[p], "start offset") for p in range(log.partitions)}
        self.log = log
        self.decode = decode
        self.batch_size = batch_size
        self.positions: dict[int, int] = dict(self.start)
        self.read_by_partition: dict[int, int] = {}

    @property
    def events_read(self) -> int:
        """Records read by the latest run of this source."""
        return sum(self.read_by_partition.values())

    def list_parts(self) -> list[str]:
        return [str(p) for p in range(self.log.partitions)]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _LogPartition:
        partition = int(for_part)
        offset = self.start[partition] if resume_state is None else self.log._check_offset(partition, resume_state)
        return _LogPartition(self, partition, offset)
