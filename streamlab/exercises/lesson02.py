"""Checks for the exercises of lesson 02, things versus happenings.

1. ``table_as_of``: a function ``table_as_of(events, moment)`` returning the
   table of orders as it stood just before ``moment``, by replaying the log.
2. ``paid_not_shipped``: a function ``paid_not_shipped(changelog)`` returning,
   after every change, the money paid for orders not yet shipped: a question
   only the log answers.
3. ``open_orders_flow``: a dataflow emitting, per customer, the changelog of
   how many of their orders are open; its changes must equal
   :func:`open_orders_batch`'s, the same rule in pandas.

Every check runs the learner's function on the lesson's pile (order pipe seed
7) and on fresh piles whose events arrive up to two minutes after they happen
and that hold a few events the rule rejects.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from streamlab import batch, stream
from streamlab.events import COURSE_START, arrived_before
from streamlab.exercises import Feedback, Mistake, checker, correct
from streamlab.orders import (
    Changelog,
    Order,
    OrderEvent,
    RejectedEvent,
    Replay,
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


def _statuses(table: pd.DataFrame) -> dict[str, str]:
    return dict(zip(table.index.astype(str), table["status"].astype(str), strict=True))


def _same_table(got: pd.DataFrame, want: pd.DataFrame) -> str | None:
    """None if ``got`` is ``want``; else the first column that differs."""
    if _statuses(got) != _statuses(want):
        return "status"
    want = want.reindex(got.index)
    for column in _OPTIONAL:
        if column not in got.columns:
            continue
        if column == "amount":
            same = (pd.to_numeric(got[column], errors="coerce") - want[column]).abs().lt(0.005).all()
        elif column == "updated_at":
            try:
                same = (pd.to_datetime(got[column], utc=True) == want[column]).all()
            except (TypeError, ValueError):
                same = False
        else:
            same = (got[column].astype(str) == want[column].astype(str)).all()
        if not same:
            return column
    return None


def _first_versions(seed: int | None, moment: datetime) -> dict[str, str]:
    """Each order's status in its first version known before ``moment``."""
    changes = _changelog(seed).changes
    first = changes[changes["known_at"] < pd.Timestamp(moment)].drop_duplicates("order_id", keep="first")
    return dict(zip(first["order_id"], first["status"].astype(str), strict=True))


def _last_kinds(events: Iterable[OrderEvent]) -> dict[str, str]:
    last: dict[str, str] = {}
    for event in events:
        last[event.order_id] = event.kind
    return last


@checker
def table_as_of(fn: Callable[[list[OrderEvent], datetime], Any]) -> Feedback:
    """Check ``table_as_of(events, moment)``: the table replayed from the events that arrived before ``moment``."""
    cases: list[tuple[int | None, datetime | None]] = [(None, COURSE_START + timedelta(hours=2)), (3, None), (4, None)]
    for seed, moment in cases:
        events = _events(seed)  # the reference: the learner gets a list of their own
        if moment is None:
            # A moment at which a payment arrives: an event arriving exactly then is not in the table yet.
            payments = [e for e in events if e.kind == "paid"]
            moment = payments[len(payments) * 2 // 3].arrival_time
        try:
            answer = fn(_events(seed), moment)
        except RejectedEvent as why:
            raise Mistake(
                f"your code stopped on an event the rule rejects ({why.reason}). Such an event changes nothing: "
                "catch orders.RejectedEvent and leave the order as it was, as orders.replay does."
            ) from None
        got = _table_rows(answer)
        before = [e for e in events if e.arrival_time < moment]
        want = replay(before).frame()
        column = _same_table(got, want)
        if column is None:
            continue
        at = f"{moment:%H:%M:%S}"
        if column != "status":
            raise Mistake(
                f"the orders and their statuses are right, but column {column!r} differs: keep each order's "
                "fields as the rule (orders.apply) sets them."
            )
        statuses = _statuses(got)
        if statuses == _statuses(replay(events).frame()):
            raise Mistake(
                f"your table is the one at the end of the pile, not the one at {at}: replay only the events "
                "that had arrived before that moment."
            )
        if statuses == _statuses(replay(e for e in events if e.arrival_time <= moment).frame()):
            raise Mistake(
                f"an event arrived exactly at {at} and your table includes it. The table *as of* a moment is "
                "the one just before it: keep the events that arrived strictly before (<, not <=)."
            )
        if statuses == _statuses(replay(e for e in events if e.event_time < moment).frame()):
            raise Mistake(
                "you kept the events that *happened* before the moment. The table at a moment holds what was "
                "known then: cut by arrival_time (in the check, events arrive up to two minutes late)."
            )
        final = replay(events).frame()
        if statuses == _statuses(final[final["updated_at"] < pd.Timestamp(moment)]):
            raise Mistake(
                f"you filtered today's table by updated_at. Orders that changed after {at} are missing, though "
                "they existed then: the table overwrote their past. Replay the log up to the moment instead."
            )
        if statuses == _first_versions(seed, moment):
            raise Mistake("your table keeps each order's first version; keep its latest one known by then.")
        if statuses == _last_kinds(before):
            raise Mistake(
                "you took the kind of each order's last event as its status. Some events do not fit their "
                "order (a second 'placed', 'shipped' for an order nobody placed, ...): fold with orders.apply, "
                "which rejects them."
            )
        missing = len(set(want.index) - set(got.index))
        extra = len(set(got.index) - set(want.index))
        wrong = sum(statuses[k] != s for k, s in _statuses(want).items() if k in statuses)
        raise Mistake(
            f"at {at} your table differs from the replayed log (orders missing: {missing}, orders too many: "
            f"{extra}, another status: {wrong}). Fold, in arrival order, every event that arrived before the moment."
        )
    return correct("replaying the log up to each moment, your table is the one that stood then.")


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
        raise Mistake("index your Series by known_at, the moment each change became known.")
    if answer.index.tz is None:
        raise Mistake("your times are naive: keep known_at as it is, timezone-aware UTC.")
    return pd.Series(pd.to_numeric(answer, errors="coerce").to_numpy(dtype=float), index=answer.index.tz_convert("UTC"))


def _step_values(series: pd.Series, at: pd.DatetimeIndex) -> pd.Series:
    """The series' value at each time of ``at``: its last value at or before that time (0 before its first)."""
    series = series.sort_index(kind="stable")
    last = series[~series.index.duplicated(keep="last")]
    return last.reindex(last.index.union(at)).ffill().fillna(0.0).reindex(at)


def _same_curve(got: pd.Series, want: pd.Series) -> bool:
    at = pd.DatetimeIndex(want.index.unique())
    return bool((_step_values(got, at) - _step_values(want, at)).abs().lt(0.005).all())


@checker
def paid_not_shipped(fn: Callable[[Changelog], Any]) -> Feedback:
    """Check ``paid_not_shipped(changelog)``: after every change, the money of the orders paid and not yet shipped."""
    for seed in (None, 3):
        changes = _changelog(seed).changes
        got = _as_series(fn(_changelog_copy(seed)))
        want = _held(changes)
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
        if _same_curve(got, want):
            continue
        if _same_curve(got, _held(changes, leaves=lambda now, before: now == "shipped")):
            raise Mistake(
                "an order that was paid and then cancelled (a refund) no longer holds money: it leaves 'paid' too."
            )
        if _same_curve(got, _held(changes, leaves=lambda now, before: now.isin(["shipped", "cancelled"]))):
            raise Mistake(
                "you took away the amount of every cancelled order. An order cancelled before it was paid never "
                "added any money: take away only what leaves 'paid'."
            )
        closed = _held(changes, enters="placed", leaves=lambda now, before: now.isin(["shipped", "cancelled"]))
        if _same_curve(got, closed):
            raise Mistake("you counted orders from when they were placed: money is held once an order is *paid*.")
        if abs(got.iloc[-1] - want.iloc[-1]) < 0.005:
            raise Mistake(
                "your last amount is right, but not the amounts along the way: after every change, add the amount "
                "of an order that became paid and take away that of an order that left 'paid'."
            )
        raise Mistake(
            "your amounts differ from the money held for paid orders not yet shipped. After every change, add the "
            "amount of an order that became paid and take away that of an order that left 'paid' (shipped or "
            "cancelled)."
        )
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
    move = changes["status"].astype(str).map(OPEN_MOVES)
    moved = changes[move != 0]
    open_orders = move[move != 0].groupby(moved["customer"]).cumsum()
    return pd.DataFrame(
        {"known_at": moved["known_at"], "customer": moved["customer"], "open_orders": open_orders}
    ).reset_index(drop=True)


def _count_frame(rows: list[tuple[pd.Timestamp, str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["known_at", "customer", "open_orders"])
    return frame.astype({"known_at": "datetime64[ns, UTC]"})


def _open_rows(items: list[Any]) -> pd.DataFrame:
    """The items a flow emitted, ``(customer, (known_at, open_orders))``, as a frame; refuse any other shape."""
    if not items:
        raise Mistake("your flow emitted nothing: emit (customer, (known_at, open_orders)) each time a count changes.")
    rows = []
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], tuple) and len(item[1]) == 2):
            raise Mistake(
                "emit (customer, (known_at, open_orders)), as a keyed stateful step does; "
                f"the first item was {items[0]!r}."
            )
        customer, (known_at, count) = item
        if not isinstance(known_at, datetime):
            raise Mistake(f"the first value of each pair should be known_at, a datetime; you emitted {known_at!r}.")
        if known_at.tzinfo is None:
            raise Mistake("your known_at times are naive: keep them timezone-aware UTC, as arrival_time is.")
        if not isinstance(count, (int, float)) or isinstance(count, bool):
            raise Mistake(f"the second value of each pair should be a count; you emitted {count!r}.")
        rows.append((pd.Timestamp(known_at), str(customer), count))
    return _count_frame(rows)


def _per_moment(rows: pd.DataFrame) -> pd.Series:
    """Each customer's count after each moment (the last if several changes share one), in time order."""
    ordered = rows.sort_values(["customer", "known_at"], kind="stable")
    last = ordered.drop_duplicates(["customer", "known_at"], keep="last")
    return last.set_index(["customer", "known_at"])["open_orders"].astype(float)


def _final_counts(rows: pd.DataFrame) -> dict[str, float]:
    """Each customer's count after the last change emitted for it."""
    return rows.groupby("customer", sort=True)["open_orders"].last().astype(float).to_dict()


def _fold_kinds(changes: Iterable[tuple[datetime, str, str]], moves: dict[str, int]) -> pd.DataFrame:
    """Fold ``(known_at, customer, kind)`` straight into each customer's count, moving it by ``moves[kind]``."""
    counts: dict[str, int] = {}
    rows = []
    for known_at, customer, kind in changes:
        if moves[kind]:
            counts[customer] = counts.get(customer, 0) + moves[kind]
            rows.append((pd.Timestamp(known_at), customer, counts[customer]))
    return _count_frame(rows)


def _final_mistake(final: dict[str, float], events: list[OrderEvent]) -> None:
    """Name the mistake behind last counts that differ from the batch's, if it is a typical one."""
    changes = batch.orders_changelog(events).changes
    accepted = list(zip(changes["known_at"], changes["customer"], changes["status"].astype(str), strict=True))
    raw = [(e.arrival_time, e.customer, e.kind) for e in events]

    def made_by(moves: dict[str, int], sources: tuple[list, ...] = (accepted, raw)) -> bool:
        return any(final == _final_counts(_fold_kinds(source, moves)) for source in sources)

    if made_by(OPEN_MOVES, (raw,)):
        raise Mistake(
            "you counted every event, including those the rule rejects (a second 'placed', 'shipped' for an order "
            "nobody placed, ...), which change nothing. Let orders.apply decide what an event does to its order, "
            "and catch orders.RejectedEvent: then nothing changes."
        )
    if made_by({**OPEN_MOVES, "cancelled": 0}):
        raise Mistake("a cancelled order is no longer open either: take it off its customer's count.")
    if made_by({**OPEN_MOVES, "shipped": 0, "cancelled": 0}):
        raise Mistake("your counts only grow: an order that is shipped or cancelled is no longer open.")


@checker
def open_orders_flow(build: Callable[..., Any]) -> Feedback:
    """Check a dataflow emitting ``(customer, (known_at, open_orders))``: its changelog equals the batch's."""
    for seed in (3, None):
        events = _events(seed)
        if seed is None:
            events = [e for e in events if e.arrival_time < COURSE_START + timedelta(hours=2)]
        want = open_orders_batch(events)
        try:
            items = stream.run(build, list(events))["out"]
        except stream.StreamError as error:
            cause = error.__cause__
            if isinstance(cause, NotImplementedError):
                raise
            if isinstance(cause, RejectedEvent):
                raise Mistake(
                    f"your flow stopped on an event the rule rejects ({cause.reason}). Such an event changes "
                    "nothing: catch orders.RejectedEvent and leave the customer's orders as they were."
                ) from None
            raise Mistake(f"your flow stopped: {error}") from None
        got = _open_rows(items)
        if got["customer"].str.startswith("order-").any():
            raise Mistake("your counts are keyed by order: key them by customer (each event names its customer).")
        arrivals = {pd.Timestamp(e.arrival_time) for e in events}
        if not set(got["known_at"]) <= arrivals:
            # An order's updated_at is the event_time of the event that changed it.
            if set(got["known_at"]) <= {pd.Timestamp(e.event_time) for e in events}:
                raise Mistake(
                    "your times are when the changes *happened*. known_at is when a change became known: the "
                    "arrival time of the event that made it (in the check, events arrive up to two minutes late)."
                )
            raise Mistake(
                "some of your known_at times are not arrival times of events: emit the arrival time of the event "
                "that changed the count."
            )
        final, want_final = _final_counts(got), _final_counts(want)
        if final != want_final:
            _final_mistake(final, events)
            differ = {c for c in set(final) | set(want_final) if final.get(c) != want_final.get(c)}
            raise Mistake(f"your last counts differ from the batch answer for {len(differ)} of the customers.")
        backwards = got.groupby("customer", sort=False)["known_at"].diff() < pd.Timedelta(0)
        if backwards.any():
            raise Mistake(
                "some of a customer's changes come out of arrival order, so the counts along the way are counts that "
                "never were. After a step keyed by order, bytewax keeps the order of each order's changes, not the "
                "order across orders (order is kept per key, lesson 03). Key the events by customer from the start, "
                "and keep that customer's orders in the state."
            )
        if len(got) > len(want):
            previous = got.groupby("customer", sort=False)["open_orders"].shift()
            if (got["open_orders"] == previous).any():
                raise Mistake(
                    "you emitted a count that did not change (a payment leaves the order open): a changelog has a "
                    "row only when the count changes."
                )
        if len(got) < len(want):
            raise Mistake(
                "your flow emitted fewer changes than the counts went through: emit the new count each time it "
                "changes, not only the last one."
            )
        if not _per_moment(got).equals(_per_moment(want)):
            raise Mistake(
                "your last counts are right, but not the counts along the way: emit the count after every change."
            )
    return correct(
        "your stream emitted the same changelog as the batch version, change for change, and so ends with the same "
        "open orders per customer."
    )
