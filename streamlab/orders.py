"""Orders: what happens to them (events), what they are now (a table), and the one rule between the two.

An :class:`OrderEvent` is one happening in an order's life: it was *placed*,
*paid*, *shipped* or *cancelled*. An :class:`Order` is the thing those events
describe, as it is after the latest of them. :func:`apply` is the rule of how
one event changes one order; it lives here once, and every driver folds events
with it: :func:`replay` in plain Python, :mod:`streamlab.batch` over a pandas
pile, :mod:`streamlab.stream` in a bytewax stateful step.

:func:`order_pipe` is the course's unbounded, seeded stream of order events,
in arrival order, like :func:`streamlab.events.pipe`.

>>> pile = take(order_pipe(seed=1), 6)
>>> [(e.order_id, e.kind) for e in pile][:3]
[('order-00000', 'placed'), ('order-00001', 'placed'), ('order-00002', 'placed')]
>>> table = replay(pile).table
>>> table["order-00000"].status
'placed'
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from streamlab.events import (  # noqa: F401  (take: the examples in the docstrings use it)
    COURSE_START,
    MAX_KEYS,
    Finite,
    Pipe,
    _check_iterable,
    _finite,
    _require,
    bounded,
    check_count,
    check_disorder,
    check_key,
    check_rate,
    check_utc,
    duration,
    finite,
    take,
)

__all__ = [
    "CHANGE_COLUMNS",
    "EVENT_COLUMNS",
    "KINDS",
    "REJECTED_COLUMNS",
    "STATUSES",
    "TABLE_COLUMNS",
    "Changelog",
    "Order",
    "OrderEvent",
    "OrderPipe",
    "OutOfOrderError",
    "RejectedEvent",
    "UnknownOrderError",
    "Replay",
    "apply",
    "change_frame",
    "compacted_table",
    "from_record",
    "in_arrival_order",
    "order_pipe",
    "publish",
    "read_log",
    "rejected_frame",
    "replay",
    "table_frame",
    "to_frame",
]

#: What can happen to an order, in the order it can happen.
KINDS: tuple[str, ...] = ("placed", "paid", "shipped", "cancelled")
#: What an order can be: the kind of the last event applied to it.
STATUSES = KINDS
#: Where an order may go from each status. Shipped and cancelled are final.
NEXT: Mapping[str, tuple[str, ...]] = {
    "placed": ("paid", "cancelled"),
    "paid": ("shipped", "cancelled"),
    "shipped": (),
    "cancelled": (),
}


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One happening in an order's life, when it happened and when it reached us.

    Every event of an order carries the order's customer and amount (as real
    order systems do, so that a reader needs no lookup). The event's key, for
    partitioning and keyed state, is the order id.

    >>> t = COURSE_START
    >>> OrderEvent("order-1", "customer-3", "paid", 25.0, t, t + timedelta(seconds=1)).delay
    datetime.timedelta(seconds=1)
    >>> OrderEvent("order-1", "customer-3", "refunded", 25.0, t, t)
    Traceback (most recent call last):
    ...
    ValueError: kind must be one of ('placed', 'paid', 'shipped', 'cancelled'), got 'refunded'
    """

    order_id: str
    customer: str
    kind: str
    amount: float
    event_time: datetime
    arrival_time: datetime

    def __post_init__(self) -> None:
        check_key("order_id", self.order_id)
        check_key("customer", self.customer)
        _require(isinstance(self.kind, str) and self.kind in KINDS, "kind", f"one of {KINDS}", self.kind)
        _require(_finite(self.amount) and self.amount > 0, "amount", "a finite number > 0", self.amount)
        check_utc("event_time", self.event_time)
        check_utc("arrival_time", self.arrival_time)

    @property
    def key(self) -> str:
        """The order id: what keyed state and log partitions group by."""
        return self.order_id

    @property
    def delay(self) -> timedelta:
        """How long after it happened the event arrived."""
        return self.arrival_time - self.event_time

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON-ready dict (times as ISO 8601 strings with their UTC offset).

        >>> e = OrderEvent("order-1", "customer-3", "placed", 25.0, COURSE_START, COURSE_START)
        >>> OrderEvent.from_json(e.to_json()) == e
        True
        """
        return {
            "order_id": self.order_id,
            "customer": self.customer,
            "kind": self.kind,
            "amount": self.amount,
            "event_time": self.event_time.isoformat(),
            "arrival_time": self.arrival_time.isoformat(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OrderEvent:
        """Rebuild an event from :meth:`to_json`'s dict; bad fields are refused by name."""
        if not isinstance(data, Mapping):
            raise TypeError(f"an order event must be a JSON object, got {type(data).__name__} {data!r}")
        missing = [f for f in EVENT_COLUMNS if f not in data]
        if missing:
            raise ValueError(f"an order event needs the fields {list(EVENT_COLUMNS)}; missing {missing}")
        times = {}
        for field in ("event_time", "arrival_time"):
            try:
                times[field] = datetime.fromisoformat(data[field])
            except (TypeError, ValueError):
                raise ValueError(f"{field} must be an ISO 8601 time, got {data[field]!r}") from None
        return cls(data["order_id"], data["customer"], data["kind"], data["amount"], **times)


EVENT_COLUMNS = ("order_id", "customer", "kind", "amount", "event_time", "arrival_time")


def from_record(record: Any) -> OrderEvent:
    """Decode a log record (see :mod:`streamlab.log`) whose value is an order event."""
    return OrderEvent.from_json(record.value)


def publish(log: Any, events: Iterable[OrderEvent]) -> int:
    """Append order events to a :class:`~streamlab.log.Log`, keyed by order id, and return how many.

    The key is the order id, so all the events of one order go to one
    partition and stay in the order they were appended.
    """
    return len(log.extend((e.order_id, e.to_json()) for e in in_arrival_order(finite(events), check_order=False)))


def read_log(log: Any, *, until: datetime | None = None) -> Iterable[OrderEvent]:
    """The order events in a log, partition after partition; with ``until``, those that arrived before it.

    Events are appended as they arrive, so in each partition the events that
    arrived before ``until`` are a prefix: reading stops at the first one that
    arrived later. This is the log read back for a replay ("time travel"): one
    order's events are in one partition, in order, which is all a fold per order needs.
    It reads the log as it is when iterated, to its end: a finite pile, iterable afresh.
    """
    if until is not None:
        check_utc("until", until)
    return _LogEvents(log, until)


def compacted_table(log: Any) -> pd.DataFrame:
    """The table of orders read from a compacted log: each order's latest event, as its row.

    An order event carries the whole order (its customer, amount and new
    status), so compacting the order log (:func:`streamlab.log.compacted`, the
    latest record per order id) leaves lesson 02's table, as long as every event
    fitted (the fold rejected none: a rejected event would still be some
    order's latest record; :func:`replay` says which were rejected).

    >>> import tempfile, pathlib
    >>> from streamlab.log import Log
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     log = Log.create(pathlib.Path(tmp) / "orders", partitions=3)
    ...     _ = publish(log, take(order_pipe(seed=1), 300))
    ...     compacted_table(log).equals(replay(read_log(log)).frame())
    True
    """
    from streamlab.log import compacted  # the log knows nothing of orders; orders read it

    latest = (from_record(record) for record in compacted(log).values())
    return table_frame(Order(e.order_id, e.customer, e.kind, e.amount, e.event_time) for e in latest)


class _LogEvents(Finite):
    def __init__(self, log: Any, until: datetime | None) -> None:
        self.log, self.until = log, until

    def __iter__(self) -> Iterator[OrderEvent]:
        for partition in range(self.log.partitions):
            events = (from_record(r) for r in self.log.records(partition))
            yield from (events if self.until is None else bounded(events, until=self.until))


# --------------------------------------------------------------------------- the rule


@dataclass(frozen=True, slots=True)
class Order:
    """What one order is now: its customer, status and amount, and when it last changed (event time)."""

    order_id: str
    customer: str
    status: str
    amount: float
    updated_at: datetime


class UnknownOrderError(KeyError, ValueError):
    """No order of that id in the changelog: a lookup that failed, and a bad value for ``order_id``."""

    def __str__(self) -> str:
        return str(self.args[0])  # KeyError would quote the message


class OutOfOrderError(ValueError):
    """An order's events came in another order than they arrived in: a stream cannot fold them as the batch does.

    The batch driver sorts its pile by arrival time before folding; a stream
    folds each event as it reads it and cannot sort. Rather than give another
    table than the batch, the stream driver refuses such input with this error.
    """


def in_arrival_order(events: Iterable[Any], *, check_order: bool = True) -> Iterator[OrderEvent]:
    """Pass order events through, checking that each order's events come in arrival order.

    This is the rule under which the stream driver's fold equals the batch
    driver's (which sorts by arrival time, stably): only the order *within* one
    order id matters, since each order is folded on its own. Anything that is
    not an :class:`OrderEvent` is refused by position.

    >>> t = COURSE_START
    >>> paid = OrderEvent("o1", "c", "paid", 5.0, t, t + timedelta(seconds=9))
    >>> placed = OrderEvent("o1", "c", "placed", 5.0, t, t + timedelta(seconds=2))
    >>> list(in_arrival_order([paid, placed]))
    Traceback (most recent call last):
    ...
    streamlab.orders.OutOfOrderError: event 1 (o1 placed, arrived 2026-03-01 00:00:02+00:00) comes after an event of o1 that arrived later (2026-03-01 00:00:09+00:00). ...
    """
    latest: dict[str, datetime] = {}
    for position, event in enumerate(events):
        if not isinstance(event, OrderEvent):
            raise TypeError(f"event {position} must be an OrderEvent, got {type(event).__name__} {event!r:.80}")
        if not check_order:
            yield event
            continue
        before = latest.get(event.order_id)
        if before is not None and event.arrival_time < before:
            raise OutOfOrderError(
                f"event {position} ({event.order_id} {event.kind}, arrived {event.arrival_time}) comes after an "
                f"event of {event.order_id} that arrived later ({before}). The stream folds each order's events "
                f"in the order it reads them and cannot sort them; the batch driver sorts by arrival time. "
                f"Sort the events by arrival time first (streamlab.events.sort_by_arrival)."
            )
        latest[event.order_id] = event.arrival_time
        yield event


class RejectedEvent(ValueError):
    """An event that cannot apply to the order as it is; ``reason`` says why, in words both drivers share."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def apply(order: Order | None, event: OrderEvent) -> Order:
    """Apply one event to one order (``None``: no such order yet) and return the order after it.

    This is the course's one rule of how a happening changes a thing. An event
    that does not fit (paying a cancelled order, a second "placed", another
    amount or customer than the order has) raises :class:`RejectedEvent` with
    the reason, and the order stays as it was.

    >>> t = COURSE_START
    >>> placed = OrderEvent("order-1", "customer-3", "placed", 25.0, t, t)
    >>> order = apply(None, placed)
    >>> order.status, order.amount
    ('placed', 25.0)
    >>> apply(order, replace(placed, kind="shipped")).status
    Traceback (most recent call last):
    ...
    streamlab.orders.RejectedEvent: order-1 cannot go from placed to shipped
    """
    if order is None:
        if event.kind != "placed":
            raise RejectedEvent(f"{event.kind} for unknown order {event.order_id} (no placed event before it)")
        return Order(event.order_id, event.customer, "placed", event.amount, event.event_time)
    if order.order_id != event.order_id:
        # Not a data problem but a wiring bug: the caller mixed up keys.
        raise ValueError(f"event for {event.order_id} applied to order {order.order_id}")
    if event.kind == "placed":
        raise RejectedEvent(f"{event.order_id} was already placed")
    if event.kind not in NEXT[order.status]:
        raise RejectedEvent(f"{event.order_id} cannot go from {order.status} to {event.kind}")
    if event.customer != order.customer:
        raise RejectedEvent(f"{event.order_id} belongs to {order.customer}, not {event.customer}")
    if event.amount != order.amount:
        raise RejectedEvent(f"{event.order_id} amount {event.amount:g} differs from the {order.amount:g} placed")
    return replace(order, status=event.kind, updated_at=event.event_time)


@dataclass(frozen=True)
class Replay:
    """The table a fold over events leaves (one :class:`Order` per order id), and the events it routed aside."""

    table: dict[str, Order]
    rejected: list[tuple[OrderEvent, str]]
    events_read: int

    def frame(self) -> pd.DataFrame:
        """The table as a DataFrame, in the same shape both drivers return."""
        return table_frame(self.table.values())


def replay(events: Iterable[OrderEvent]) -> Replay:
    """Fold events into the table, one :func:`apply` at a time, in the order given.

    This is what "the table is a fold over the log" means, in six lines of Python.

    >>> r = replay(take(order_pipe(seed=1), 500))
    >>> len(r.table), len(r.rejected), r.events_read
    (200, 0, 500)
    """
    table: dict[str, Order] = {}
    rejected: list[tuple[OrderEvent, str]] = []
    read = 0
    for event in events:
        read += 1
        try:
            table[event.order_id] = apply(table.get(event.order_id), event)
        except RejectedEvent as why:
            rejected.append((event, why.reason))
    return Replay(table, rejected, read)


# --------------------------------------------------------------------------- frames

TABLE_COLUMNS = ["customer", "status", "amount", "updated_at"]
CHANGE_COLUMNS = ["known_at", "order_id", "customer", "status", "amount", "updated_at"]
REJECTED_COLUMNS = [*EVENT_COLUMNS, "reason"]
_RANK = {status: i for i, status in enumerate(STATUSES)}


def _utc(values: list[datetime]) -> pd.Series:
    return pd.Series(pd.DatetimeIndex(values, tz="UTC"), dtype="datetime64[ns, UTC]")


def _status(values: list[str]) -> pd.Series:
    # Ordered categories: value_counts() shows every status, and sorting follows the lifecycle.
    return pd.Series(pd.Categorical(values, categories=STATUSES, ordered=True))


def table_frame(orders: Iterable[Order]) -> pd.DataFrame:
    """The table of orders: one row per order id (sorted), columns :data:`TABLE_COLUMNS`."""
    rows = sorted(orders, key=lambda o: o.order_id)
    frame = pd.DataFrame(
        {
            "customer": pd.Series([o.customer for o in rows], dtype="str"),
            "status": _status([o.status for o in rows]),
            "amount": pd.Series([o.amount for o in rows], dtype="float64"),
            "updated_at": _utc([o.updated_at for o in rows]),
        }
    )
    frame.index = pd.Index([o.order_id for o in rows], dtype="str", name="order_id")
    return frame


def change_frame(changes: Iterable[tuple[datetime, Order]]) -> pd.DataFrame:
    """The changelog: one row per change, the new version of the order and when it became known.

    Rows are sorted by ``known_at`` (arrival time of the event that made the
    change), then order id, then status in lifecycle order: one order's changes
    can share an arrival time, and a status only ever moves forward, so this
    order is the order they were applied in, whichever driver made them.
    """
    rows = sorted(changes, key=lambda c: (c[0], c[1].order_id, _RANK[c[1].status]))
    return pd.DataFrame(
        {
            "known_at": _utc([known for known, _ in rows]),
            "order_id": pd.Series([o.order_id for _, o in rows], dtype="str"),
            "customer": pd.Series([o.customer for _, o in rows], dtype="str"),
            "status": _status([o.status for _, o in rows]),
            "amount": pd.Series([o.amount for _, o in rows], dtype="float64"),
            "updated_at": _utc([o.updated_at for _, o in rows]),
        }
    )


def rejected_frame(rejected: Iterable[tuple[OrderEvent, str]]) -> pd.DataFrame:
    """The events routed aside, with the reason, in arrival order (ties by order id).

    Within one order the drivers route events aside in the same order; across
    orders that arrived at the same moment, bytewax may emit them in another
    order than the batch loop: the tie-break by order id makes both frames equal.
    """
    rows = sorted(rejected, key=lambda r: (r[0].arrival_time, r[0].order_id))
    return pd.DataFrame(
        [(*(getattr(e, c) for c in EVENT_COLUMNS), reason) for e, reason in rows],
        columns=REJECTED_COLUMNS,
    ).astype({"amount": "float64"})


def to_frame(pile: Iterable[OrderEvent]) -> pd.DataFrame:
    """A pile of order events as a DataFrame, one row per event, in pile order.

    >>> to_frame(take(order_pipe(), 2)).columns.tolist()
    ['order_id', 'customer', 'kind', 'amount', 'event_time', 'arrival_time']
    """
    if isinstance(pile, Pipe):
        raise TypeError("to_frame needs a finite pile: cut one from the pipe with take() or arrived_before()")
    # Any iterable (a generator over a pile is natural); each item is checked, so a wrong one fails at once.
    _check_iterable(pile)
    pile = list(in_arrival_order(pile, check_order=False))
    return pd.DataFrame(
        {
            "order_id": pd.Series([e.order_id for e in pile], dtype="str"),
            "customer": pd.Series([e.customer for e in pile], dtype="str"),
            "kind": pd.Series(pd.Categorical([e.kind for e in pile], categories=KINDS, ordered=True)),
            "amount": pd.Series([e.amount for e in pile], dtype="float64"),
            "event_time": _utc([e.event_time for e in pile]),
            "arrival_time": _utc([e.arrival_time for e in pile]),
        }
    )


def from_frame(frame: pd.DataFrame) -> Iterator[OrderEvent]:
    """The events of a frame made by :func:`to_frame`, in row order."""
    columns = [frame[c].tolist() for c in EVENT_COLUMNS]
    for order_id, customer, kind, amount, happened, arrived in zip(*columns, strict=True):
        yield OrderEvent(
            order_id, customer, str(kind), float(amount), happened.to_pydatetime(), arrived.to_pydatetime()
        )


@dataclass(frozen=True)
class Changelog:
    """Every change the table went through, the events routed aside, and how many events were read.

    ``changes`` has one row per applied event (:func:`change_frame`);
    ``rejected`` one per event routed aside. Both drivers return this, and the
    counts always reconcile: ``len(changes) + len(rejected) == events_read``.
    """

    changes: pd.DataFrame
    rejected: pd.DataFrame
    events_read: int

    def __post_init__(self) -> None:
        if len(self.changes) + len(self.rejected) != self.events_read:
            raise AssertionError(
                f"counts do not reconcile: read {self.events_read} events, "
                f"{len(self.changes)} changes, {len(self.rejected)} rejected"
            )

    def table(self, as_of: datetime | None = None) -> pd.DataFrame:
        """The table as it stood just before ``as_of`` (an arrival time): each order's latest version known then.

        Time travel over the changelog is a plain pandas filter: keep the
        changes known before then, and of each order the last one.
        """
        changes = self.changes
        if as_of is not None:
            check_utc("as_of", as_of)
            changes = changes[changes["known_at"] < pd.Timestamp(as_of)]
        latest = changes.drop_duplicates("order_id", keep="last").set_index("order_id")
        return latest[TABLE_COLUMNS].sort_index()

    def status_counts(self) -> pd.DataFrame:
        """How many orders were in each status after every change: the changelog read as a stream of +1/-1.

        Each change adds one to the order's new status and takes one from its
        previous status (none for a new order); a running sum turns those deltas
        into counts. Index: ``known_at``; columns: the statuses.
        """
        changes = self.changes
        previous = changes.groupby("order_id", sort=False)["status"].shift()
        plus = pd.get_dummies(changes["status"], dtype="int64")
        minus = pd.get_dummies(previous, dtype="int64")
        counts = (plus - minus).cumsum()
        counts.index = pd.DatetimeIndex(changes["known_at"], name="known_at")
        counts.columns = pd.Index(list(counts.columns), dtype="str", name="status")
        return counts

    def status_changes(self) -> pd.Series:
        """How many times each order's status changed (its versions after the first), by order id."""
        return self.changes.groupby("order_id").size().sub(1).rename("status_changes")

    def refunded(self) -> pd.DataFrame:
        """The orders that were paid and then cancelled: money to give back, which the final table cannot tell apart."""
        changes = self.changes
        was_paid = changes.loc[changes["status"] == "paid", "order_id"]
        cancelled = changes[(changes["status"] == "cancelled") & changes["order_id"].isin(was_paid)]
        return cancelled.set_index("order_id")[["customer", "amount", "updated_at"]].sort_index()

    def history(self, order_id: str) -> pd.DataFrame:
        """Every version of one order, oldest first."""
        if not isinstance(order_id, str):
            raise TypeError(f"order_id must be a string, got {type(order_id).__name__} {order_id!r:.60}")
        rows = self.changes[self.changes["order_id"] == order_id]
        if rows.empty:
            raise UnknownOrderError(f"no changes for order {order_id!r:.60} (order_id names no order in this changelog)")
        return rows.reset_index(drop=True)


# --------------------------------------------------------------------------- the pipe


class OrderPipe(Pipe):
    """An unbounded, seeded stream of order events, in arrival order.

    New orders are placed as a Poisson process at ``rate`` per second by
    ``customers`` customers. Each order then moves one step at a time, a random
    time apart (exponential, mean ``mean_step``): placed, then paid or (with
    probability ``cancel``) cancelled; paid, then shipped or (``cancel``)
    cancelled. Each event arrives up to ``disorder`` after it happened, but
    never before an earlier event of the same order: the shop sends one order's
    events in order, so order is kept *per key*, not across keys.

    It is a :class:`~streamlab.events.Pipe`, so every bounded helper of the
    course refuses to read it without a limit. Build one with :func:`order_pipe`.
    """

    def __init__(
        self,
        seed: int,
        rate: float,
        customers: int,
        mean_step: timedelta,
        cancel: float,
        min_amount: float,
        max_amount: float,
        disorder: timedelta,
        start: datetime,
    ) -> None:
        # Not Pipe.__init__: the sales pipe's value distribution means nothing here.
        self.seed = seed
        self.rate = rate
        self.customers = customers
        self.mean_step = mean_step
        self.cancel = cancel
        self.min_amount = min_amount
        self.max_amount = max_amount
        self.disorder = disorder
        self.start = start
        width = len(str(customers - 1))
        self.customer_names = [f"customer-{i:0{width}d}" for i in range(customers)]

    events_per_step = 3.0  # placed, then paid or cancelled, then shipped

    def __repr__(self) -> str:
        return (
            f"order_pipe(seed={self.seed}, rate={self.rate:g}/s, customers={self.customers}, "
            f"mean_step={self.mean_step.total_seconds():g}s, cancel={self.cancel:g}, "
            f"amounts {self.min_amount:g} to {self.max_amount:g}, disorder={self.disorder.total_seconds():g}s)"
        )

    def __iter__(self) -> Iterator[OrderEvent]:
        rng = random.Random(self.seed)
        rate, cancel = self.rate, self.cancel
        step_rate = 1.0 / self.mean_step.total_seconds()
        max_delay = self.disorder.total_seconds()
        names = self.customer_names
        seq = itertools.count()
        next_order_at = self.start + timedelta(seconds=rng.expovariate(rate))
        orders_made = 0
        # Steps of orders already placed, waiting for their time: (event_time, seq, order_id, customer, kind, amount).
        scheduled: list[tuple[datetime, int, str, str, str, float]] = []
        # The arrival time of each open order's latest event, so that its next one never overtakes it.
        last_arrival: dict[str, datetime] = {}
        # Events made but not yet released, by arrival time.
        pending: list[tuple[datetime, int, OrderEvent]] = []
        while True:
            if scheduled and scheduled[0][0] <= next_order_at:
                happened, _, order_id, customer, kind, amount = heapq.heappop(scheduled)
            else:
                happened, kind = next_order_at, "placed"
                order_id = f"order-{orders_made:05d}"
                orders_made += 1
                customer = names[rng.randrange(len(names))]
                amount = round(rng.uniform(self.min_amount, self.max_amount), 2)
                next_order_at = happened + timedelta(seconds=rng.expovariate(rate))
            following = NEXT[kind]
            if following:
                then = following[1] if rng.random() < cancel else following[0]
                when = happened + timedelta(seconds=rng.expovariate(step_rate))
                heapq.heappush(scheduled, (when, next(seq), order_id, customer, then, amount))
            arrival = happened + timedelta(seconds=rng.uniform(0.0, max_delay)) if max_delay else happened
            arrival = max(arrival, last_arrival.pop(order_id, arrival))
            if following:
                last_arrival[order_id] = arrival
            event = OrderEvent(order_id, customer, kind, amount, happened, arrival)
            # Nothing made later can arrive before `happened`: release what arrived by then.
            while pending and pending[0][0] <= happened:
                yield heapq.heappop(pending)[2]
            if max_delay:
                heapq.heappush(pending, (arrival, next(seq), event))
            else:
                yield event


def order_pipe(
    seed: int = 0,
    *,
    rate: float = 0.05,
    customers: int = 20,
    mean_step: timedelta | float = 600.0,
    cancel: float = 0.1,
    min_amount: float = 5.0,
    max_amount: float = 200.0,
    disorder: timedelta | float = 0.0,
    start: datetime = COURSE_START,
) -> OrderPipe:
    """Describe an unbounded, seeded stream of order events.

    :param seed: the same seed gives the same events, every time.
    :param rate: new orders placed per second (a Poisson process); > 0.
        The default, 0.05, is three orders a minute.
    :param customers: how many customers place them; >= 1.
    :param mean_step: mean time from one step of an order to its next, as a
        timedelta or in seconds; > 0.
    :param cancel: the probability that an order's next step is a cancellation
        (before payment, or after it: a refund); 0 to 1.
    :param min_amount: smallest order amount; > 0.
    :param max_amount: largest order amount; >= ``min_amount`` (amounts are uniform, in cents).
    :param disorder: the longest an event may take to arrive after it happened,
        as a timedelta or in seconds; >= 0.
    :param start: timezone-aware UTC time the clock starts at.

    >>> order_pipe(cancel=2)
    Traceback (most recent call last):
    ...
    ValueError: cancel must be a probability from 0 to 1, got 2
    """
    _require(isinstance(seed, int) and not isinstance(seed, bool), "seed", "an int", seed)
    check_rate("rate", rate, "orders per second")
    check_count("customers", customers, 1, MAX_KEYS)
    step = duration("mean_step", mean_step)
    # At least a microsecond: a step of zero would never let the clock move on.
    _require(step >= timedelta(microseconds=1), "mean_step", "> 0", mean_step)
    _require(_finite(cancel) and 0.0 <= cancel <= 1.0, "cancel", "a probability from 0 to 1", cancel)
    _require(_finite(min_amount) and min_amount > 0, "min_amount", "a finite number > 0", min_amount)
    _require(
        _finite(max_amount) and max_amount >= min_amount,
        "max_amount", f"a finite number >= min_amount ({float(min_amount):g})", max_amount,
    )
    _require(max_amount <= 1e15, "max_amount", "at most 1e15 (amounts are kept in cents)", max_amount)
    # An order makes up to three events, each held back up to `disorder`.
    delay = check_disorder(disorder, rate, events_per_step=3)
    check_utc("start", start)
    return OrderPipe(
        seed, float(rate), customers, step, float(cancel), float(min_amount), float(max_amount), delay, start
    )

