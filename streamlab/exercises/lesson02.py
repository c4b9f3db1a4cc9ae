"""Checks for the exercises of lesson 02, things versus happenings.

1. ``table_as_of``: a function ``table_as_of(events, moment)`` returning the
   table of orders as it stood just before ``moment``, by replaying the log.
2. ``paid_not_shipped``: a function ``paid_not_shipped(changelog)`` returning,
   after every change, the money paid for orders not yet shipped: a question
   only the log answers.
3. ``open_orders_flow``: a dataflow emitting, per customer, the changelog of
   how many of their orders are open; its changes must equal
   :func:`open_orders_batch`'s, the same rule in pandas.

Every check compares the learner's function with the solution
(:mod:`streamlab.exercises.differ`) on the lesson's pile (order pipe seed 7), on
fresh piles whose events arrive up to two minutes after they happen and that
hold a few events the rule rejects, and on generated piles with the edges: an
event arriving exactly at the moment asked, events of one order arriving out of
order or at the same second, a second "placed", a payment after a cancellation,
a shipment of an order nobody placed, refunds, empty and one-order piles,
several orders per customer. The smallest pile found where the answers differ
is shown, with the hint of a known mistake when that mistake gives the
learner's answer on it.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

import bytewax.operators as op
import pandas as pd

from streamlab import batch, stream
from streamlab.events import COURSE_START, arrived_before
from streamlab.exercises import Feedback, Mistake, checker, correct
from streamlab.exercises.differ import Case, Exercise, Known, Raised, resumed_steps, show_time
from streamlab.orders import (
    Changelog,
    Order,
    OrderEvent,
    RejectedEvent,
    Replay,
    apply,
    order_pipe,
    replay,
    table_frame,
)

__all__ = ["OPEN_MOVES", "open_orders_batch", "open_orders_flow", "paid_not_shipped", "table_as_of"]


# -- the data every check uses -----------------------------------------------------------------

#: The lesson's pipe and how much of it the lesson reads.
LESSON_SEED = 7
LESSON_HOURS = 6


@functools.lru_cache(maxsize=1)
def _lesson_events() -> tuple[OrderEvent, ...]:
    return tuple(arrived_before(order_pipe(seed=LESSON_SEED), COURSE_START + timedelta(hours=LESSON_HOURS)))


def _with_rejected(pile: list[OrderEvent]) -> list[OrderEvent]:
    """The pile plus events the rule rejects, each arriving a second after the event it contradicts.

    A second "placed" for an order, "paid" for an order cancelled unpaid,
    "cancelled" for a shipped order, and "shipped" for an order nobody placed:
    a fold that ignores :func:`streamlab.orders.apply` gets each of them wrong.
    """
    second = timedelta(seconds=1)
    history: dict[str, list[OrderEvent]] = {}
    for event in pile:
        history.setdefault(event.order_id, []).append(event)
    early = pile[: len(pile) // 2]  # the bad events arrive in the first half, before the checks' moments

    def late(event: OrderEvent, kind: str) -> OrderEvent:
        at = event.arrival_time + second
        return dataclasses.replace(event, kind=kind, event_time=at, arrival_time=at)

    extra: list[OrderEvent] = []
    placed = [e for e in early if e.kind == "placed"][:2]
    extra += [late(e, "placed") for e in placed]
    cancelled_unpaid = [
        e for e in early if e.kind == "cancelled" and [h.kind for h in history[e.order_id]] == ["placed", "cancelled"]
    ][:2]
    extra += [late(e, "paid") for e in cancelled_unpaid]
    shipped = [e for e in early if e.kind == "shipped"][:2]
    extra += [late(e, "cancelled") for e in shipped]
    for i, e in enumerate(shipped):
        extra.append(dataclasses.replace(late(e, "shipped"), order_id=f"order-9999{i}"))
    # A stable sort keeps the pile's arrival order and puts each bad event after its neighbours.
    return sorted([*pile, *extra], key=lambda e: e.arrival_time)


@functools.lru_cache(maxsize=4)
def _fresh_events(seed: int) -> tuple[OrderEvent, ...]:
    shop = order_pipe(seed=seed, rate=0.1, disorder=120.0)
    return tuple(_with_rejected(arrived_before(shop, COURSE_START + timedelta(minutes=90))))


def _events(seed: int | None) -> list[OrderEvent]:
    """A pile for a check (the lesson's if ``seed`` is None); events are frozen, the list is the learner's own."""
    return list(_lesson_events() if seed is None else _fresh_events(seed))


@functools.lru_cache(maxsize=4)
def _changelog(seed: int | None) -> Changelog:
    return batch.orders_changelog(_events(seed))


def _changelog_copy(seed: int | None) -> Changelog:
    cached = _changelog(seed)
    return dataclasses.replace(cached, changes=cached.changes.copy(), rejected=cached.rejected.copy())


#: The paths an order's life can take in the generated piles.
_PATHS = (("placed",), ("placed", "paid"), ("placed", "paid", "shipped"), ("placed", "cancelled"),
          ("placed", "paid", "cancelled"))


def _generated(seed: int, orders: int | None = None) -> list[OrderEvent]:
    """A small pile made to hit the edges: times on a 30-second grid (ties), events of an order arriving out of
    order, and events the rule rejects (a second "placed", a payment after a cancellation, a shipment of an
    order nobody placed, a cancellation after shipping)."""
    rng = random.Random(seed)
    orders = rng.randint(0, 6) if orders is None else orders
    step = timedelta(seconds=30)
    pile: list[OrderEvent] = []
    for i in range(orders):
        customer, amount = f"customer-{rng.randrange(3)}", rng.choice((10.0, 25.5, 40.0, 99.99))
        at = COURSE_START + step * rng.randint(0, 3 * orders)
        for kind in rng.choice(_PATHS):
            pile.append(OrderEvent(f"order-{i}", customer, kind, amount, at, at + step * rng.choice((0, 0, 1, 2, 4))))
            at += step * rng.randint(0, 2)
    for _ in range(rng.choice((0, 0, 1, 2)) if pile else 0):
        e = rng.choice(pile)
        kind = {"placed": "placed", "paid": "placed", "shipped": "cancelled", "cancelled": "paid"}[e.kind]
        later = e.arrival_time + step * rng.randint(0, 2)
        order_id = e.order_id if rng.random() < 0.8 else "order-99"
        pile.append(dataclasses.replace(e, order_id=order_id, kind=kind, event_time=later, arrival_time=later))
    return sorted(pile, key=lambda e: e.arrival_time)


def _show_order_events(pile: list[OrderEvent]) -> str:
    if not pile:
        return "no events at all"
    head = "this 1 event" if len(pile) == 1 else f"these {len(pile)} events"
    lines = [f"  {e.order_id}, {e.customer}, {e.kind}, {e.amount:g}, {show_time(e.event_time)}, "
             f"{show_time(e.arrival_time)}" for e in pile]
    return f"{head} (order, customer, kind, amount, happened, arrived):\n" + "\n".join(lines)


# -- 1. The table as it was ----------------------------------------------------------------------

_OPTIONAL = ("customer", "amount", "updated_at")


def _table_rows(answer: Any) -> pd.DataFrame:
    """Accept a table frame (order_id as index or column), a Replay, a dict of orders, or a Series of statuses."""
    if isinstance(answer, Replay):
        answer = answer.table
    if isinstance(answer, dict):
        if all(isinstance(o, Order) for o in answer.values()):
            answer = table_frame(answer.values())
        elif all(isinstance(status, str) for status in answer.values()):
            answer = pd.Series(answer, dtype="str")
        else:
            raise Mistake("return the table: a DataFrame like changelog.table(), or a dict {order_id: Order}.")
    if isinstance(answer, pd.Series):
        answer = answer.rename("status").to_frame()
    if not isinstance(answer, pd.DataFrame):
        raise Mistake(
            "return the table: a DataFrame with one row per order (like changelog.table()); "
            f"got {type(answer).__name__}."
        )
    frame = answer
    if "order_id" in frame.columns:
        frame = frame.set_index("order_id")
    if "status" not in frame.columns:
        raise Mistake("your table has no 'status' column: keep each order's status, as changelog.table() does.")
    if frame.index.has_duplicates:
        raise Mistake("your table has several rows for one order: keep one row per order, its latest version.")
    rows = pd.DataFrame({"status": frame["status"].astype(str).to_numpy()}, index=frame.index.astype(str))
    for column in _OPTIONAL:
        if column in frame.columns:
            rows[column] = frame[column].to_numpy()
    return rows.sort_index()


def _table_meaning(answer: Any, case: Case) -> Any:
    """The table as ``{order_id: {field: value}}``: the status, and the other fields the answer has."""
    if isinstance(answer, Raised):
        return answer
    rows = _table_rows(answer)
    columns: dict[str, list[Any]] = {"status": list(rows["status"])}
    if "amount" in rows.columns:
        columns["amount"] = [round(float(a), 2) for a in pd.to_numeric(rows["amount"], errors="coerce")]
    if "customer" in rows.columns:
        columns["customer"] = [str(c) for c in rows["customer"]]
    if "updated_at" in rows.columns:
        try:
            columns["updated_at"] = list(pd.to_datetime(rows["updated_at"], utc=True))
        except (TypeError, ValueError):
            columns["updated_at"] = [str(u) for u in rows["updated_at"]]
    names = list(columns)
    return {str(order_id): dict(zip(names, values)) for order_id, *values in zip(rows.index, *columns.values())}


def _same_table(got: Any, want: Any) -> bool:
    """The same orders with the same statuses, and every other field the answer has equal to the right one."""
    if isinstance(got, Raised) or isinstance(want, Raised):
        return got == want
    if got.keys() != want.keys():
        return False
    return all(fields.get(f) == want[k].get(f) for k, fields in got.items() for f in fields)


def _show_table(table: Any) -> str:
    if isinstance(table, Raised):
        return repr(table)
    if not table:
        return "an empty table"

    def fields(f: dict[str, Any]) -> str:
        more = [f"amount {f['amount']:g}" if "amount" in f else "",
                f"updated_at {show_time(f['updated_at'].to_pydatetime())}" if isinstance(f.get("updated_at"), pd.Timestamp) else ""]
        return ", ".join([f["status"], *(m for m in more if m)])

    return "; ".join(f"{order_id} ({fields(f)})" for order_id, f in table.items())


def _table_solution(events: list[OrderEvent], moment: datetime) -> Any:
    return replay(e for e in events if e.arrival_time < moment).frame()


def _table_cases() -> Iterator[Case]:
    for seed in range(201, 221):
        pile = _generated(seed)
        rng = random.Random(seed)
        # Mostly the exact arrival time of an event of the pile: a tie on the moment.
        moment = (rng.choice(pile).arrival_time if pile and rng.random() < 0.7
                  else COURSE_START + timedelta(seconds=30 * rng.randint(0, 12)))
        yield Case((pile, moment))
    # The lesson's pile up to a quarter of an hour after the moment: what a cut at 02:00 can need.
    moment = COURSE_START + timedelta(hours=2)
    yield Case(([e for e in _events(None) if e.arrival_time < moment + timedelta(minutes=15)], moment),
               "the lesson's pile")
    for seed in (3, 4):
        events = _events(seed)
        payments = [e for e in events if e.kind == "paid"]
        yield Case((events, payments[len(payments) * 2 // 3].arrival_time), f"a fresh pile (seed {seed})")


def _first_versions(events: list[OrderEvent], moment: datetime) -> Any:
    changes = batch.orders_changelog(events).changes
    return changes[changes["known_at"] < pd.Timestamp(moment)].drop_duplicates("order_id", keep="first").set_index(
        "order_id")


def _last_kinds(events: list[OrderEvent], moment: datetime) -> Any:
    last: dict[str, str] = {}
    for event in events:
        if event.arrival_time < moment:
            last[event.order_id] = event.kind
    return last


def _by_updated_at(events: list[OrderEvent], moment: datetime) -> Any:
    final = replay(events).frame()
    return final[final["updated_at"] < pd.Timestamp(moment)]


TABLE = Exercise(
    solution=_table_solution,
    cases=_table_cases,
    meaning=_table_meaning,
    same=_same_table,
    describe=lambda case: f"at the moment {show_time(case.args[1])}, with {_show_order_events(case.args[0])}",
    show=_show_table,
    known=(
        Known("your code stopped on an event the rule rejects. Such an event changes nothing: catch "
              "orders.RejectedEvent and leave the order as it was, as orders.replay does.",
              when=lambda got, want, case: isinstance(got, Raised) and issubclass(got.error, RejectedEvent)),
        Known("your table is the one at the end of the pile, not the one at the moment: replay only the events "
              "that had arrived before that moment.", model=lambda events, moment: replay(events).frame()),
        Known("an event arrived exactly at the moment and your table includes it. The table *as of* a moment is "
              "the one just before it: keep the events that arrived strictly before.",
              model=lambda events, moment: replay(e for e in events if e.arrival_time <= moment).frame()),
        Known("you kept the events that *happened* before the moment. The table at a moment holds what was known "
              "then: cut by arrival_time (events arrive up to two minutes late here).",
              model=lambda events, moment: replay(e for e in events if e.event_time < moment).frame()),
        Known("you filtered today's table by updated_at. Orders that changed after the moment are missing, though "
              "they existed then: the table overwrote their past. Replay the log up to the moment instead.",
              model=_by_updated_at),
        Known("your table keeps each order's first version; keep its latest one known by then.",
              model=_first_versions),
        Known("you took the kind of each order's last event as its status. Some events do not fit their order (a "
              "second 'placed', 'shipped' for an order nobody placed, ...): fold with orders.apply, which rejects "
              "them.", model=_last_kinds),
        Known("the orders and their statuses are right, but another column differs: keep each order's fields as "
              "the rule (orders.apply) sets them.",
              when=lambda got, want, case: isinstance(got, dict) and got.keys() == want.keys()
              and all(f["status"] == want[k]["status"] for k, f in got.items())),
    ),
)


@checker
def table_as_of(fn: Callable[[list[OrderEvent], datetime], Any]) -> Feedback:
    """Check ``table_as_of(events, moment)``: the table replayed from the events that arrived before ``moment``."""
    TABLE.compare(fn)
    return correct("replaying the log up to each moment, your table is the one that stood then, on every pile tried.")


# -- 2. A question only the log answers ------------------------------------------------------------

def _held(
    changes: pd.DataFrame,
    *,
    enters: str = "paid",
    leaves: Callable[[pd.Series, pd.Series], pd.Series] | None = None,
    time: str = "known_at",
) -> pd.Series:
    """Money in status ``enters`` after every change: + amount when an order enters it, - when it leaves."""
    previous = changes.groupby("order_id", sort=False, observed=True)["status"].shift()
    status = changes["status"].astype(str)
    previous = previous.astype(object).where(previous.notna(), None)
    gone = previous == enters if leaves is None else leaves(status, previous)
    delta = changes["amount"].where(status == enters, 0.0) - changes["amount"].where(gone, 0.0)
    return pd.Series(delta.cumsum().to_numpy(), index=pd.DatetimeIndex(changes[time]), name="paid_not_shipped")


def _as_series(answer: Any) -> pd.Series:
    """Accept a Series indexed by time, or a frame with the times as index or as a ``known_at`` column."""
    if isinstance(answer, pd.DataFrame):
        frame = answer.set_index("known_at") if "known_at" in answer.columns else answer
        numeric = frame.select_dtypes("number")
        if numeric.shape[1] != 1:
            raise Mistake(
                "return one number per change: a Series indexed by known_at (or a DataFrame with one numeric column)."
            )
        answer = numeric.iloc[:, 0]
    if not isinstance(answer, pd.Series):
        raise Mistake(
            f"return the amount after every change, as a Series indexed by known_at; got {type(answer).__name__}. "
            "One number is what the table alone can give."
        )
    if not isinstance(answer.index, pd.DatetimeIndex):
        if len(answer) == 0:
            return pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype=float)
        raise Mistake("index your Series by known_at, the moment each change became known.")
    if answer.index.tz is None:
        raise Mistake("your times are naive: keep known_at as it is, timezone-aware UTC.")
    return pd.Series(pd.to_numeric(answer, errors="coerce").to_numpy(dtype=float), index=answer.index.tz_convert("UTC"))


def _step_values(series: pd.Series, at: pd.DatetimeIndex) -> pd.Series:
    """The series' value at each time of ``at``: its last value at or before that time (0 before its first)."""
    series = series.sort_index(kind="stable")
    last = series[~series.index.duplicated(keep="last")]
    return last.reindex(last.index.union(at)).ffill().fillna(0.0).reindex(at)


@functools.lru_cache(maxsize=64)
def _generated_changelog(seed: int) -> Changelog:
    return batch.orders_changelog(_generated(seed, orders=random.Random(seed).randint(1, 6)))


def _changelog_view(changelog: Changelog, kept: list[str]) -> Changelog:
    """The changelog of some of its orders only (whole histories, so each stays one the rule could make)."""
    changes = changelog.changes[changelog.changes["order_id"].isin(kept)].reset_index(drop=True)
    rejected = changelog.rejected.copy()
    return dataclasses.replace(changelog, changes=changes, rejected=rejected, events_read=len(changes) + len(rejected))


def _paid_cases() -> Iterator[Case]:
    def case(changelog: Changelog, label: str = "a generated case") -> Case:
        return Case((changelog, list(dict.fromkeys(changelog.changes["order_id"]))), label, items=1)

    for seed in range(231, 243):
        yield case(_generated_changelog(seed))
    yield case(_changelog(None), "the lesson's changelog")
    yield case(_changelog(3), "a fresh changelog (seed 3)")


def _paid_call(fn: Callable[..., Any], case: Case) -> Any:
    return fn(_changelog_view(*case.args))


def _paid_meaning(answer: Any, case: Case) -> Any:
    """The money held after each moment at which the table changed, to the cent."""
    if isinstance(answer, Raised):
        return answer
    changes = _changelog_view(*case.args).changes
    got = _as_series(answer)
    known = set(changes["known_at"])
    if not set(got.index) <= known:
        if set(got.index) <= set(changes["updated_at"]):
            raise Mistake(
                "your times are updated_at, when each change *happened*. The money was held from when the change "
                "became known: index by known_at (in the check, events arrive up to two minutes late)."
            )
        raise Mistake("some of your times are not moments at which the table changed: index by known_at.")
    if got.isna().any():
        raise Mistake("some of your amounts are NaN: the amount before the first payment is 0.")
    at = pd.DatetimeIndex(changes["known_at"].unique())
    return tuple(round(float(v), 2) for v in _step_values(got, at))


def _describe_changes(case: Case) -> str:
    changes = _changelog_view(*case.args).changes
    lines = [f"  {show_time(t.to_pydatetime())}, {o}, {s}, {a:g}"
             for t, o, s, a in zip(changes["known_at"], changes["order_id"], changes["status"].astype(str),
                                   changes["amount"])]
    return (f"with these {len(lines)} changes (known_at, order, new status, amount):\n" + "\n".join(lines)
            if lines else "with no changes at all")


def _held_model(**how: Any) -> Callable[[Changelog], pd.Series]:
    return lambda changelog: _held(changelog.changes, **how)


PAID = Exercise(
    solution=_held_model(),
    cases=_paid_cases,
    call=_paid_call,
    meaning=_paid_meaning,
    describe=_describe_changes,
    show=lambda answer: repr(answer) if isinstance(answer, Raised) else (
        "the amounts " + ", ".join(f"{v:g}" for v in answer) if answer else "no amounts"),
    budget=40,
    known=(
        Known("an order that was paid and then cancelled (a refund) no longer holds money: it leaves 'paid' too.",
              model=_held_model(leaves=lambda now, before: now == "shipped")),
        Known("you took away the amount of every cancelled order. An order cancelled before it was paid never "
              "added any money: take away only what leaves 'paid'.",
              model=_held_model(leaves=lambda now, before: now.isin(["shipped", "cancelled"]))),
        Known("you counted orders from when they were placed: money is held once an order is *paid*.",
              model=_held_model(enters="placed", leaves=lambda now, before: now.isin(["shipped", "cancelled"]))),
        Known("your last amount is right, but not the amounts along the way: the money held changes with every "
              "payment, shipment and refund.",
              when=lambda got, want, case: bool(got) and got[-1] == want[-1]),
    ),
)


@checker
def paid_not_shipped(fn: Callable[[Changelog], Any]) -> Feedback:
    """Check ``paid_not_shipped(changelog)``: after every change, the money of the orders paid and not yet shipped."""
    PAID.compare(fn)
    return correct("after every change, your amount is the money held for orders paid and not yet shipped.")


# -- 3. A new rule, both drivers ------------------------------------------------------------------

#: How each kind of change moves its customer's count of open orders. A payment leaves the order open.
OPEN_MOVES = {"placed": 1, "paid": 0, "shipped": -1, "cancelled": -1}


def open_orders_batch(events: Iterable[OrderEvent]) -> pd.DataFrame:
    """The batch answer of exercise 3: per customer, how many orders are open after each change of that count.

    An order is open from when it is placed until it is shipped or cancelled.
    Only the changes the rule accepted count (events it rejects change
    nothing), so this folds the table's changelog, not the raw events.

    >>> from streamlab.orders import order_pipe, take
    >>> changes = open_orders_batch(take(order_pipe(seed=1), 12))
    >>> changes.loc[changes["customer"] == "customer-03", "open_orders"].tolist()
    [1, 2]
    """
    changes = batch.orders_changelog(list(events)).changes
    move = changes["status"].astype(str).map(OPEN_MOVES).astype("int64")
    moved = changes[move != 0]
    open_orders = move[move != 0].groupby(moved["customer"]).cumsum()
    return pd.DataFrame(
        {"known_at": moved["known_at"], "customer": moved["customer"], "open_orders": open_orders}
    ).reset_index(drop=True)


def _open_solution(events: Any, still_open: tuple[str, ...] = ("placed", "paid")) -> Any:
    """The stream version: keyed by customer, each customer's orders as state, folded with the one rule.

    (``still_open`` other than the default: a model of a mistake.)
    """
    by_customer = op.key_on("by_customer", events, lambda e: e.customer)

    def step(mine: dict[str, Order] | None, event: OrderEvent) -> tuple[dict[str, Order], list[Any]]:
        mine = mine or {}
        try:
            order = apply(mine.get(event.order_id), event)
        except RejectedEvent:
            return mine, []
        mine[event.order_id] = order
        if not OPEN_MOVES[order.status]:
            return mine, []
        return mine, [(event.arrival_time, sum(o.status in still_open for o in mine.values()))]

    return op.stateful_flat_map("open_orders", by_customer, step)


def _open_meaning(items: Any, case: Case) -> Any:
    """Each customer's count after each moment it changed (the last if several changes share one), in time order."""
    if isinstance(items, Raised):
        return items
    counts: dict[str, dict[pd.Timestamp, float]] = {}
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], tuple) and len(item[1]) == 2):
            raise Mistake(
                f"emit (customer, (known_at, open_orders)), as a keyed stateful step does; one item was {item!r:.80}."
            )
        customer, (known_at, count) = item
        if not isinstance(known_at, datetime):
            raise Mistake(f"the first value of each pair should be known_at, a datetime; you emitted {known_at!r:.60}.")
        if known_at.tzinfo is None:
            raise Mistake("your known_at times are naive: keep them timezone-aware UTC, as arrival_time is.")
        if not isinstance(count, (int, float)) or isinstance(count, bool):
            import numpy as np

            if not isinstance(count, np.number):
                raise Mistake(f"the second value of each pair should be a count; you emitted {count!r:.60}.")
        mine = counts.setdefault(str(customer), {})
        mine.pop(pd.Timestamp(known_at), None)  # the last count at a moment; a later moment goes last
        mine[pd.Timestamp(known_at)] = float(count)
    return {customer: tuple(mine.items()) for customer, mine in sorted(counts.items())}


def _show_open(answer: Any) -> str:
    if isinstance(answer, Raised):
        return repr(answer)
    if not answer:
        return "nothing emitted"
    return "; ".join(f"{customer}: " + ", ".join(f"{n:g} at {show_time(t.to_pydatetime())}" for t, n in said)
                     for customer, said in answer.items())


def _open_cases() -> Iterator[Case]:
    for seed in range(251, 275):
        yield Case((_generated(seed),))
    lesson = [e for e in _events(None) if e.arrival_time < COURSE_START + timedelta(hours=2)]
    yield Case((lesson,), "the lesson's pile, its first two hours")
    yield Case((_events(3),), "a fresh pile (seed 3)")


def _counting(*, moves: dict[str, int] = OPEN_MOVES, rule: bool = True, key: str = "customer",
              when: str = "arrival_time", unchanged: bool = False) -> Callable[..., Any]:
    """A model of a mistake: another move per kind, no rule, another key, another time, or unchanged counts emitted."""
    def flow(events: Any) -> Any:
        keyed = op.key_on("by", events, lambda e: getattr(e, key))

        def step(state: Any, event: OrderEvent) -> Any:
            mine, n = state or ({}, 0)
            if rule:
                try:
                    order = apply(mine.get(event.order_id), event)
                except RejectedEvent:
                    return (mine, n), []
                mine[event.order_id] = order
            move = moves[event.kind]
            if not move and not unchanged:
                return (mine, n), []
            return (mine, n + move), [(getattr(event, when), n + move)]

        return op.stateful_flat_map("count", keyed, step)

    return flow


def _backwards(got: Any, want: Any, case: Case) -> bool:
    return isinstance(got, dict) and any(
        any(b[0] < a[0] for a, b in zip(said, said[1:])) for said in got.values())


def _open_call(build: Callable[..., Any], case: Case) -> Any:
    with resumed_steps(show_items=_show_order_events):
        return stream.run(build, list(case.args[0]))["out"]


OPEN = Exercise(
    solution=_open_solution,
    cases=_open_cases,
    call=_open_call,
    meaning=_open_meaning,
    describe=lambda case: f"with {_show_order_events(case.args[0])}",
    show=_show_open,
    resume=100,  # every case, its stateful steps resumed from snapshots at the end: orders kept outside show then
    known=(
        Known("your flow stopped on an event the rule rejects. Such an event changes nothing: catch "
              "orders.RejectedEvent and leave the customer's orders as they were.",
              when=lambda got, want, case: isinstance(got, Raised) and issubclass(got.error, RejectedEvent)),
        Known("your counts are keyed by order: key them by customer (each event names its customer).",
              when=lambda got, want, case: isinstance(got, dict) and any(k.startswith("order-") for k in got)),
        Known("you counted every event, including those the rule rejects (a second 'placed', 'shipped' for an "
              "order nobody placed, ...), which change nothing. Let orders.apply decide what an event does to its "
              "order, and catch orders.RejectedEvent: then nothing changes.", model=_counting(rule=False)),
        Known("a cancelled order is no longer open either: take it off its customer's count.",
              model=_counting(moves={**OPEN_MOVES, "cancelled": 0})),
        Known("a cancelled order is no longer open either: take it off its customer's count.",
              model=_counting(moves={**OPEN_MOVES, "cancelled": 0}, rule=False)),
        Known("a cancelled order is no longer open either: take it off its customer's count.",
              model=lambda events: _open_solution(events, ("placed", "paid", "cancelled"))),
        Known("your counts only grow: an order that is shipped or cancelled is no longer open.",
              model=_counting(moves={**OPEN_MOVES, "shipped": 0, "cancelled": 0}, rule=False)),
        Known("your counts only grow: an order that is shipped or cancelled is no longer open.",
              model=_counting(moves={**OPEN_MOVES, "shipped": 0, "cancelled": 0})),
        Known("your times are when the changes *happened*. known_at is when a change became known: the arrival "
              "time of the event that made it (events arrive up to two minutes late here).",
              model=_counting(when="event_time")),
        Known("you emitted a count that did not change (a payment leaves the order open): a changelog has a row "
              "only when the count changes.", model=_counting(unchanged=True)),
        Known("some of a customer's changes come out of arrival order, so the counts along the way are counts that "
              "never were. After a step keyed by order, bytewax keeps the order of each order's changes, not the "
              "order across orders (order is kept per key, lesson 03). Key the events by customer from the start.",
              when=_backwards),
        Known("your flow emitted fewer changes than the counts went through: emit the new count each time it "
              "changes, not only the last one.",
              when=lambda got, want, case: isinstance(got, dict) and got.keys() == want.keys() and all(
                  len(got[c]) < len(want[c]) and got[c][-1][1] == want[c][-1][1] for c in got)),
    ),
)


@checker
def open_orders_flow(build: Callable[..., Any]) -> Feedback:
    """Check a dataflow emitting ``(customer, (known_at, open_orders))``: its changelog equals the batch's."""
    OPEN.compare(build)
    return correct(
        "your stream emitted the same changelog as the batch version, change for change, and so ends with the same "
        "open orders per customer."
    )
