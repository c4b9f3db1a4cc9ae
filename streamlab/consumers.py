"""Three services that read the same order stream, each for its own purpose, each at its own pace.

:class:`Payments` counts the money taken and given back, :class:`Fraud` holds
large orders for review, :class:`Loyalty` gives customers points for what they
paid. Each is a plain object with ``handle(event)`` and ``answer()``; it
knows nothing about logs. :func:`consume` feeds one of them from its consumer
of a :class:`~streamlab.log.Log` and commits; :func:`follow` plays a stretch of
the order stream into a log minute by minute while the services read it, each
as fast as its capacity allows, and records how far behind each one is.

>>> from streamlab.orders import order_pipe, take
>>> pile = take(order_pipe(seed=1), 200)
>>> fixed, buggy = Loyalty(), Loyalty(buggy=True)
>>> for e in pile:
...     fixed.handle(e); buggy.handle(e)
>>> fixed.answer()["points"] < buggy.answer()["points"]
True
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

import pandas as pd

from streamlab.log import Log
from streamlab.orders import OrderEvent, from_record, publish

__all__ = ["Delivery", "Fraud", "Loyalty", "Payments", "Reader", "consume", "crash_once", "follow"]


class Reader(Protocol):
    """A service reading order events: its consumer's name in the log, what it does with an event, its answer."""

    name: str

    def handle(self, event: OrderEvent) -> None: ...

    def answer(self) -> dict[str, Any]: ...


def _cents(amount: float) -> int:
    # Money is added in whole cents: sums of floats in another order could differ in the last bit.
    return round(amount * 100)


class Payments:
    """Money taken (orders paid) and given back (paid orders cancelled afterwards)."""

    name = "payments"

    def __init__(self) -> None:
        self.paid: set[str] = set()
        self.taken_cents = 0
        self.refunded_cents = 0
        self.events = 0

    def handle(self, event: OrderEvent) -> None:
        self.events += 1
        if event.kind == "paid":
            self.paid.add(event.order_id)
            self.taken_cents += _cents(event.amount)
        elif event.kind == "cancelled" and event.order_id in self.paid:
            self.refunded_cents += _cents(event.amount)

    def answer(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "taken": self.taken_cents / 100,
            "refunded": self.refunded_cents / 100,
            "net": (self.taken_cents - self.refunded_cents) / 100,
        }


class Fraud:
    """Orders of ``threshold`` or more, held for a human to review when placed."""

    name = "fraud"

    def __init__(self, threshold: float = 190.0) -> None:
        self.threshold = threshold
        self.held: list[str] = []
        self.events = 0

    def handle(self, event: OrderEvent) -> None:
        self.events += 1
        if event.kind == "placed" and event.amount >= self.threshold:
            self.held.append(event.order_id)

    def answer(self) -> dict[str, Any]:
        return {"events": self.events, "held": len(self.held)}


class Loyalty:
    """One point per whole unit paid, per customer.

    ``buggy=True`` is the first version, with the bug the lesson fixes: it gave
    the points when an order was *placed*, so orders never paid earned points too.
    """

    name = "loyalty"

    def __init__(self, *, buggy: bool = False) -> None:
        self.buggy = buggy
        self.points: dict[str, int] = {}
        self.events = 0

    def handle(self, event: OrderEvent) -> None:
        self.events += 1
        earns = "placed" if self.buggy else "paid"
        if event.kind == earns:
            self.points[event.customer] = self.points.get(event.customer, 0) + int(event.amount)

    def answer(self) -> dict[str, Any]:
        return {"events": self.events, "points": sum(self.points.values()), "customers": len(self.points)}


def consume(log: Log, reader: Reader, *, max_records: int | None = None, batch: int = 500) -> int:
    """Feed ``reader`` from its consumer of ``log`` (at most ``max_records``, or until caught up), committing after each batch.

    Returns how many records it handled. The commit comes after the handling:
    a crash in between replays the batch (at least once), never skips it.
    """
    consumer = log.consumer(reader.name)
    handled = 0
    while max_records is None or handled < max_records:
        room = batch if max_records is None else min(batch, max_records - handled)
        records = consumer.poll(room)
        if not records:
            break
        for record in records:
            reader.handle(from_record(record))
        consumer.commit()
        handled += len(records)
    return handled


@dataclass(frozen=True)
class Delivery:
    """What a consumer that crashed once, then restarted, handled: every record's position, in handling order."""

    commit: str
    handled: list[tuple[int, int]]
    crashed_on: tuple[int, int]
    records: int

    @property
    def duplicates(self) -> list[tuple[int, int]]:
        """Positions (partition, offset) handled more than once."""
        return sorted(position for position, n in Counter(self.handled).items() if n > 1)

    @property
    def lost(self) -> int:
        """Records of the log never handled."""
        return self.records - len(set(self.handled))

    @property
    def guarantee(self) -> str:
        """The delivery guarantee this order of handling and committing gives."""
        return "at least once" if self.commit == "after" else "at most once"


def crash_once(
    log: Log,
    reader: Reader,
    *,
    commit: Literal["after", "before"],
    crash_at: int,
    batch: int = 100,
    name: str | None = None,
) -> Delivery:
    """Feed ``reader`` from its consumer of ``log`` until caught up, the process dying once on the way.

    The consumer is ``name`` (the reader's own name by default); it must have been added to the log.

    Each poll of ``batch`` records is committed ``"after"`` handling them (at
    least once) or ``"before"`` (at most once). The ``crash_at``-th record
    (counted from 0) is never handled: the process dies just before, and a new
    consumer, as a restarted process would open it, carries on from the offsets
    committed on disk. ``reader`` stands for what the service changed in the
    world (money taken, an email sent): it keeps what was done before the crash.

    Committing after handling replays what was handled since the last commit
    (duplicates, nothing lost); committing before loses the rest of the batch
    (no duplicates). Deterministic: no threads, no clock.
    """
    if commit not in ("after", "before"):
        raise ValueError(f"commit must be 'after' or 'before' (handling), got {commit!r}")
    if not isinstance(crash_at, int) or isinstance(crash_at, bool) or crash_at < 0:
        raise ValueError(f"crash_at must be an int >= 0 (the record the process dies on), got {crash_at!r}")
    name = reader.name if name is None else name
    consumer = log.consumer(name)
    records = sum(log.lag(name).values())
    handled: list[tuple[int, int]] = []
    crashed_on: tuple[int, int] | None = None
    while polled := consumer.poll(batch):
        if commit == "before":
            consumer.commit()
        for record in polled:
            if crashed_on is None and len(handled) == crash_at:
                crashed_on = (record.partition, record.offset)
                break  # the process dies: what it read but did not commit is as if never read
            reader.handle(from_record(record))
            handled.append((record.partition, record.offset))
        else:
            if commit == "after":
                consumer.commit()
            continue
        consumer = log.consumer(name)  # the restart: from the offsets committed on disk
    if crashed_on is None:
        raise ValueError(f"crash_at={crash_at} is past the {records} records the consumer had to handle: no crash")
    return Delivery(commit, handled, crashed_on, records)


Capacity = int | Callable[[datetime], int]


def follow(
    log: Log,
    events: Iterable[OrderEvent],
    readers: Iterable[Reader],
    capacity: Mapping[str, Capacity],
    *,
    every: timedelta = timedelta(minutes=1),
    until: datetime,
) -> pd.DataFrame:
    """Publish events into ``log`` as they arrive while ``readers`` consume them; return everyone's lag over time.

    Time moves in steps of ``every`` (simulated, by arrival time) up to
    ``until``. At each step the events that arrived during it are appended;
    then each reader handles at most its ``capacity`` of records (a number, or
    a function of the step's end time: a service can slow down or scale up)
    and commits. The start and the end of every step are recorded: ``time``,
    ``consumer``, ``committed`` (records it has handled and committed, over all
    partitions), ``end`` (records in the log) and ``lag`` (``end - committed``).

    Readers must already have been added to the log as consumers.
    """
    readers = list(readers)
    for reader in readers:
        log.consumer(reader.name)  # fails clearly for a consumer never added
        if reader.name not in capacity:
            raise ValueError(f"capacity has no entry for consumer {reader.name!r}")
    it = iter(events)
    pending = next(it, None)
    if pending is None:
        raise ValueError("follow needs at least one event")
    now = pending.arrival_time
    end = sum(log.end_offsets().values())
    # Where everyone stands at the start: records already in the log wait for every new consumer.
    rows = []
    for reader in readers:
        committed = sum(log.committed(reader.name).values())
        rows.append((now, reader.name, committed, end, end - committed))
    while now < until:
        now = min(now + every, until)
        arrived = []
        while pending is not None and pending.arrival_time < now:
            arrived.append(pending)
            pending = next(it, None)
        publish(log, arrived)
        end = sum(log.end_offsets().values())
        for reader in readers:
            cap = capacity[reader.name]
            cap = cap(now) if callable(cap) else cap
            if cap:
                consume(log, reader, max_records=cap)
            committed = sum(log.committed(reader.name).values())
            rows.append((now, reader.name, committed, end, end - committed))
    return pd.DataFrame(rows, columns=["time", "consumer", "committed", "end", "lag"]).astype(
        {"time": "datetime64[ns, UTC]"}
    )
