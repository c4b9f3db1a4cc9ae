"""Lesson 02 exercises: each check accepts correct variants and names the typical mistakes."""

import dataclasses
from datetime import timedelta

import bytewax.operators as op
import pandas as pd
import pytest

from streamlab import COURSE_START, batch, orders, stream
from streamlab.exercises import lesson02
from test_exercises_hints import solution_lines

DIFFERS = "Here is an input where your answer differs"
SOLUTION = solution_lines("lesson02")


def feedback_says(feedback, hint):
    """Refused with this hint (or a counterexample), and the message holds no line of the solution."""
    return (feedback.status == "wrong" and hint in feedback.message
            and not any(line in feedback.message for line in SOLUTION))


# -- exercise 1: the table as it was --------------------------------------------------------------

def replayed(events, moment):
    return orders.replay(e for e in events if e.arrival_time < moment)


def hand_fold(events, moment, *, catch=True):
    table = {}
    for event in events:
        if event.arrival_time >= moment:
            break
        try:
            table[event.order_id] = orders.apply(table.get(event.order_id), event)
        except orders.RejectedEvent:
            if not catch:
                raise
    return table


def last_kinds(events, moment):
    frame = orders.to_frame(e for e in events if e.arrival_time < moment)
    return frame.groupby("order_id")["kind"].last().astype(str).rename("status").to_frame()


def final_by_updated_at(events, moment):
    table = orders.replay(events).frame()
    return table[table["updated_at"] < moment]


def first_versions(events, moment):
    changes = batch.orders_changelog(events).changes
    return changes[changes["known_at"] < moment].drop_duplicates("order_id", keep="first").set_index("order_id")


@pytest.mark.parametrize(
    "variant",
    [
        lambda ev, t: replayed(ev, t).frame(),
        lambda ev, t: replayed(ev, t),
        lambda ev, t: batch.orders_table(ev, as_of=t),
        lambda ev, t: stream.orders_table(ev, as_of=t),
        lambda ev, t: hand_fold(ev, t),
        lambda ev, t: replayed(ev, t).frame().reset_index().iloc[::-1].astype({"status": "str"}),
        lambda ev, t: {order_id: order.status for order_id, order in replayed(ev, t).table.items()},
        lambda ev, t: replayed(ev, t).frame()[["status", "amount"]].astype({"amount": "float32"}),
    ],
)
def test_table_as_of_accepts_correct_variants(variant):
    assert lesson02.table_as_of(variant).ok


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda ev, t: orders.replay(ev).frame(), "the one at the end of the pile"),
        (lambda ev, t: orders.replay(e for e in ev if e.arrival_time <= t).frame(), "exactly at the moment"),
        (lambda ev, t: orders.replay(e for e in ev if e.event_time < t).frame(), "*happened* before the moment"),
        (final_by_updated_at, "you filtered today's table by updated_at"),
        (first_versions, "keeps each order's first version"),
        (last_kinds, "the kind of each order's last event"),
        (lambda ev, t: hand_fold(ev, t, catch=False), "stopped on an event the rule rejects"),
        (lambda ev, t: len(replayed(ev, t).table), "got int"),
        (lambda ev, t: replayed(ev, t).frame().drop(columns="status"), "no 'status' column"),
        (lambda ev, t: batch.orders_changelog(ev).changes, "several rows for one order"),
        (lambda ev, t: replayed(ev, t).frame().assign(amount=lambda f: f["amount"] * 100), "another column differs"),
        (lambda ev, t: replayed(ev, t).frame().iloc[1:], DIFFERS),
    ],
)
def test_table_as_of_rejects_typical_mistakes_with_the_right_hint(wrong, hint):
    feedback = lesson02.table_as_of(wrong)
    assert feedback_says(feedback, hint), feedback


# -- exercise 2: paid and not yet shipped, after every change -------------------------------------

def held(changelog, *, enters="paid", leaves=("paid",), on="previous", time="known_at"):
    changes = changelog.changes
    before = changes.groupby("order_id", observed=True)["status"].shift().astype(object)
    status = changes["status"].astype(str)
    gone = before.isin(leaves) if on == "previous" else status.isin(leaves)
    delta = changes["amount"].where(status == enters, 0.0) - changes["amount"].where(gone, 0.0)
    return pd.Series(delta.cumsum().to_numpy(), index=changes[time])


@pytest.mark.parametrize(
    "variant",
    [
        held,
        lambda cl: held(cl).rename("held").rename_axis("known_at").reset_index(),
        lambda cl: held(cl).groupby(level=0).last(),
        lambda cl: (lambda s: s[s.diff().fillna(1) != 0])(held(cl)),
        lambda cl: held(cl).rename_axis("known_at").to_frame("paid_not_shipped").assign(note="money"),
        lambda cl: held(cl).round(2),
    ],
)
def test_paid_not_shipped_accepts_correct_variants(variant):
    assert lesson02.paid_not_shipped(variant).ok


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda cl: held(cl, time="updated_at"), "your times are updated_at"),
        (lambda cl: held(cl, leaves=("shipped",), on="now"), "(a refund) no longer holds money"),
        (lambda cl: held(cl, leaves=("shipped", "cancelled"), on="now"), "the amount of every cancelled order"),
        (lambda cl: held(cl, enters="placed", leaves=("shipped", "cancelled"), on="now"), "from when they were placed"),
        (lambda cl: float(held(cl).iloc[-1]), "got float"),
        (lambda cl: held(cl).reset_index(drop=True), "index your Series by known_at"),
        (lambda cl: held(cl).tz_localize(None), "naive"),
        (lambda cl: held(cl).to_frame("held").assign(count=1), "one number per change"),
        (lambda cl: held(cl).shift().fillna(0.0), DIFFERS),
        (lambda cl: pd.Series(held(cl).iloc[-1], index=held(cl).index), DIFFERS),
        (lambda cl: held(cl).where(held(cl) > 0), "NaN"),
    ],
)
def test_paid_not_shipped_rejects_typical_mistakes_with_the_right_hint(wrong, hint):
    feedback = lesson02.paid_not_shipped(wrong)
    assert feedback_says(feedback, hint), feedback


# -- exercise 3: open orders per customer, a new rule in the stream --------------------------------

def counted_by_kind(moves, *, key=lambda e: e.customer, when=lambda e: e.arrival_time, emit_unchanged=False):
    """A flow that folds each event's kind into a count, without the rule."""

    def flow(events):
        keyed = op.key_on("by", events, key)

        def step(n, event):
            n = n or 0
            if not moves[event.kind] and not emit_unchanged:
                return n, []
            n += moves[event.kind]
            return n, [(when(event), n)]

        return op.stateful_flat_map("count", keyed, step)

    return flow


def with_state_machine(emit_unchanged=False, when=lambda e, o: e.arrival_time, shape=lambda t, n: (t, n),
                       still_open=("placed", "paid")):
    def flow(events):
        by_customer = op.key_on("by_customer", events, lambda e: e.customer)

        def step(state, event):
            state = state or {}
            try:
                order = orders.apply(state.get(event.order_id), event)
            except orders.RejectedEvent:
                return state, []
            state[event.order_id] = order
            if lesson02.OPEN_MOVES[order.status] == 0 and not emit_unchanged:
                return state, []
            return state, [shape(when(event, order), sum(o.status in still_open for o in state.values()))]

        return op.stateful_flat_map("open_orders", by_customer, step)

    return flow


# The reference solution: the state machine with the lesson's choices.
open_orders_flow = with_state_machine()


def none_filtered(events):
    """Correct too: stateful_map emitting None when nothing changed, then a filter."""
    by_customer = op.key_on("by_customer", events, lambda e: e.customer)

    def step(state, event):
        orders_now, count = state or ({}, 0)
        try:
            order = orders.apply(orders_now.get(event.order_id), event)
        except orders.RejectedEvent:
            return (orders_now, count), None
        orders_now[event.order_id] = order
        move = lesson02.OPEN_MOVES[order.status]
        return (orders_now, count + move), ((event.arrival_time, float(count + move)) if move else None)

    counts = op.stateful_map("open_orders", by_customer, step)
    return op.filter_value("changed", counts, lambda v: v is not None)


def through_the_changelog(events):
    """Re-keying the order changelog by customer: bytewax keeps order per key, not across keys."""
    changes = stream.logs.changelog_flow(events)["changes"]

    def move(kv):
        known_at, order = kv[1]
        step = lesson02.OPEN_MOVES[order.status]
        return (order.customer, (known_at, step)) if step else None

    def count(n, item):
        n = (n or 0) + item[1]
        return n, (item[0], n)

    return op.stateful_map("open", op.filter_map("moves", changes, move), count)


def at_the_end_only(events):
    by_customer = op.key_on("by_customer", events, lambda e: e.customer)

    def fold(state, event):
        orders_now = dict(state[0]) if state else {}
        try:
            orders_now[event.order_id] = orders.apply(orders_now.get(event.order_id), event)
        except orders.RejectedEvent:
            return state or ({}, None)
        return orders_now, event.arrival_time

    final = op.fold_final("open", by_customer, lambda: None, fold)
    return op.map_value(
        "count", final, lambda s: (s[1], sum(o.status in ("placed", "paid") for o in s[0].values()))
    )


def apply_unguarded(events):
    by_customer = op.key_on("by_customer", events, lambda e: e.customer)

    def step(state, event):
        state = state or {}
        state[event.order_id] = orders.apply(state.get(event.order_id), event)
        return state, (event.arrival_time, sum(o.status in ("placed", "paid") for o in state.values()))

    return op.stateful_map("open", by_customer, step)


def emit_when_the_count_moves(events):
    """Correct too: recount after every accepted event, emit only when the count is not the one emitted last."""
    by_customer = op.key_on("by_customer", events, lambda e: e.customer)

    def step(state, event):
        mine, said = state or ({}, 0)
        try:
            mine[event.order_id] = orders.apply(mine.get(event.order_id), event)
        except orders.RejectedEvent:
            return (mine, said), []
        now = sum(1 for o in mine.values() if o.status not in ("shipped", "cancelled"))
        return (mine, now), ([(event.arrival_time, now)] if now != said else [])

    return op.stateful_flat_map("open", by_customer, step)


@pytest.mark.parametrize("variant", [open_orders_flow, none_filtered, emit_when_the_count_moves])
def test_open_orders_accepts_correct_variants(variant):
    assert lesson02.open_orders_flow(variant).ok


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (counted_by_kind(lesson02.OPEN_MOVES), "including those the rule rejects"),
        (with_state_machine(still_open=("placed", "paid", "cancelled")), "a cancelled order is no longer open"),
        (through_the_changelog, "come out of arrival order"),
        (with_state_machine(emit_unchanged=True), "a count that did not change"),
        (counted_by_kind({**lesson02.OPEN_MOVES, "cancelled": 0}), "a cancelled order is no longer open"),
        (counted_by_kind({**lesson02.OPEN_MOVES, "shipped": 0, "cancelled": 0}), "your counts only grow"),
        (counted_by_kind(lesson02.OPEN_MOVES, key=lambda e: e.order_id), "keyed by order"),
        (with_state_machine(when=lambda e, o: o.updated_at), "when the changes *happened*"),
        (with_state_machine(shape=lambda t, n: n), "emit (customer, (known_at, open_orders))"),
        (with_state_machine(shape=lambda t, n: (t.replace(tzinfo=None), n)), "naive"),
        (with_state_machine(shape=lambda t, n: (t, str(n))), "should be a count"),
        (with_state_machine(shape=lambda t, n: (str(t), n)), "should be known_at, a datetime"),
        (lambda events: op.filter("none", events, lambda e: False), "your answer is nothing emitted"),
        (at_the_end_only, DIFFERS),
        (apply_unguarded, "stopped on an event the rule rejects"),
        (lambda events: op.map("boom", events, lambda e: 1 / 0), "ZeroDivisionError"),
    ],
)
def test_open_orders_rejects_typical_mistakes_with_the_right_hint(wrong, hint):
    feedback = lesson02.open_orders_flow(wrong)
    assert feedback_says(feedback, hint), feedback


def test_open_orders_batch_counts_by_hand():
    t = COURSE_START

    def e(order, kind, minute, customer="customer-1"):
        at = t + timedelta(minutes=minute)
        return orders.OrderEvent(order, customer, kind, 10.0, at, at)

    pile = [e("o1", "placed", 1), e("o2", "placed", 2), e("o1", "paid", 3), e("o1", "shipped", 4),
            e("o2", "shipped", 5),  # rejected: o2 was never paid
            e("o2", "cancelled", 6), e("o3", "placed", 7, "customer-2")]
    got = lesson02.open_orders_batch(pile)
    assert list(zip(got["customer"], got["open_orders"])) == [
        ("customer-1", 1), ("customer-1", 2), ("customer-1", 1), ("customer-1", 0), ("customer-2", 1)
    ]
    assert list(got["known_at"].dt.minute) == [1, 2, 4, 6, 7]


# -- wrong answers written for the checks that compare with the solution ---------------------------

def replay_sorted_by_event_time(events, moment):
    return orders.replay(sorted((e for e in events if e.arrival_time < moment), key=lambda e: e.event_time)).frame()


def without_cancelled_orders(events, moment):
    table = replayed(events, moment).frame()
    return table[table["status"] != "cancelled"]


def forget_the_order_on_a_rejected_event(events, moment):
    table = {}
    for event in events:
        if event.arrival_time >= moment:
            break
        try:
            table[event.order_id] = orders.apply(table.get(event.order_id), event)
        except orders.RejectedEvent:
            table.pop(event.order_id, None)
    return table


@pytest.mark.parametrize("wrong, hint", [
    (replay_sorted_by_event_time, DIFFERS),
    (without_cancelled_orders, DIFFERS),
    (forget_the_order_on_a_rejected_event, DIFFERS),
    (lambda ev, t: batch.orders_changelog(ev).table(), "the one at the end of the pile"),
    (lambda ev, t: batch.orders_table(ev, as_of=t + timedelta(microseconds=1)), "exactly at the moment"),
])
def test_table_as_of_refuses_more_wrong_answers(wrong, hint):
    feedback = lesson02.table_as_of(wrong)
    assert feedback_says(feedback, hint), feedback


def never_subtracted(changelog):
    changes = changelog.changes
    return pd.Series(changes["amount"].where(changes["status"] == "paid", 0.0).cumsum().to_numpy(),
                     index=changes["known_at"])


def previous_row_not_previous_version(changelog):
    changes = changelog.changes
    before = changes["status"].shift()
    delta = changes["amount"].where(changes["status"] == "paid", 0.0) - changes["amount"].where(before == "paid", 0.0)
    return pd.Series(delta.cumsum().to_numpy(), index=changes["known_at"])


def in_event_time_order(changelog):
    ordered = changelog.changes.sort_values("updated_at", kind="stable")
    return held(dataclasses.replace(changelog, changes=ordered))


@pytest.mark.parametrize("wrong, hint", [
    (never_subtracted, DIFFERS),
    (previous_row_not_previous_version, DIFFERS),
    (lambda cl: held(cl).groupby(level=0).first(), DIFFERS),  # the first amount of a moment, not the last
    (lambda cl: held(cl).round(0), DIFFERS),
    (in_event_time_order, "your last amount is right, but not the amounts along the way"),
])
def test_paid_not_shipped_refuses_more_wrong_answers(wrong, hint):
    feedback = lesson02.paid_not_shipped(wrong)
    assert feedback_says(feedback, hint), feedback


def a_set_of_open_orders(events):
    """Without the rule: a second 'placed' of a shipped order opens it again."""
    by_customer = op.key_on("by_customer", events, lambda e: e.customer)

    def step(open_ids, event):
        open_ids = set(open_ids or ())
        before = len(open_ids)
        if event.kind == "placed":
            open_ids.add(event.order_id)
        elif event.kind in ("shipped", "cancelled"):
            open_ids.discard(event.order_id)
        return open_ids, ([(event.arrival_time, len(open_ids))] if len(open_ids) != before else [])

    return op.stateful_flat_map("open", by_customer, step)


def every_order_ever(events):
    by_customer = op.key_on("by_customer", events, lambda e: e.customer)

    def step(mine, event):
        mine = mine or {}
        try:
            order = orders.apply(mine.get(event.order_id), event)
        except orders.RejectedEvent:
            return mine, []
        mine[event.order_id] = order
        return mine, ([(event.arrival_time, len(mine))] if order.status != "paid" else [])

    return op.stateful_flat_map("open", by_customer, step)


def orders_kept_outside():
    everyone = {}

    def flow(events):
        by_customer = op.key_on("by_customer", events, lambda e: e.customer)

        def step(_, event):
            mine = everyone.setdefault(event.customer, {})
            try:
                order = mine[event.order_id] = orders.apply(mine.get(event.order_id), event)
            except orders.RejectedEvent:
                return None, []
            if order.status == "paid":
                return None, []
            return None, [(event.arrival_time, sum(o.status in ("placed", "paid") for o in mine.values()))]

        return op.stateful_flat_map("open", by_customer, step)

    return flow


def orders_kept_outside_set_up_afresh():
    """Each customer's orders in a dict outside, set up at the customer's first event: right on every run."""
    everyone = {}

    def flow(events):
        by_customer = op.key_on("by_customer", events, lambda e: e.customer)

        def step(seen, event):
            if seen is None:
                everyone[event.customer] = {}
            mine = everyone[event.customer]
            before = sum(o.status in ("placed", "paid") for o in mine.values())
            try:
                mine[event.order_id] = orders.apply(mine.get(event.order_id), event)
            except orders.RejectedEvent:
                return True, []
            now = sum(o.status in ("placed", "paid") for o in mine.values())
            return True, ([(event.arrival_time, now)] if now != before else [])

        return op.stateful_flat_map("open", by_customer, step)

    return flow


@pytest.mark.parametrize("wrong, hint", [
    (orders_kept_outside_set_up_afresh(), "resumed from a snapshot of its state"),
    (a_set_of_open_orders, DIFFERS),
    (every_order_ever, DIFFERS),
    (with_state_machine(when=lambda e, o: e.event_time), "when the changes *happened*"),
    (lambda events: op.map("unkeyed", open_orders_flow(events), lambda kv: kv[1]), "emit (customer, (known_at"),
    (orders_kept_outside(), "keeps something from one call to the next"),
    (with_state_machine(emit_unchanged=True, still_open=("placed",)), DIFFERS),  # a paid order is still open
])
def test_open_orders_refuses_more_wrong_answers(wrong, hint):
    feedback = lesson02.open_orders_flow(wrong)
    assert feedback_says(feedback, hint), feedback
