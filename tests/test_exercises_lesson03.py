"""Lesson 03 exercises: each check accepts correct variants and names the typical mistakes."""

import collections
from datetime import datetime, timedelta, timezone

import bytewax.operators as op
import pandas as pd
import pytest

from streamlab import orders
from streamlab.exercises import lesson03


DIFFERS = "Here is an input where your answer differs"


def feedback_says(feedback, hint):
    return feedback.status == "wrong" and hint in feedback.message


# -- exercise 1: lag in time ---------------------------------------------------------------------

def arrival(record):
    return orders.from_record(record).arrival_time


def lag_in_time(log, name, *, first_unread=lambda committed, p: committed[p], oldest=min, clock=arrival,
                skip_caught_up=True, now=None):
    committed, ends = log.committed(name), log.end_offsets()
    newest = now or max(clock(log.read(p, ends[p] - 1, 1)[0]) for p in ends if ends[p])
    unread = [
        clock(log.read(p, first_unread(committed, p), 1)[0])
        for p in ends
        if committed[p] < ends[p] or not skip_caught_up
    ]
    return newest - oldest(unread) if unread else timedelta(0)


def lag_from_all_records(log, name):
    committed = log.committed(name)
    records = list(log.records())
    newest = max(datetime.fromisoformat(r.value["arrival_time"]) for r in records)
    unread = [datetime.fromisoformat(r.value["arrival_time"]) for r in records if r.offset >= committed[r.partition]]
    return newest - min(unread, default=newest)


def per_partition(log, name):
    committed, ends = log.committed(name), log.end_offsets()
    lags = [arrival(log.read(p, ends[p] - 1, 1)[0]) - arrival(log.read(p, committed[p], 1)[0])
            for p in ends if committed[p] < ends[p]]
    return max(lags, default=timedelta(0))


@pytest.mark.parametrize(
    "variant",
    [
        lag_in_time,
        lambda log, name: pd.Timedelta(lag_in_time(log, name)),
        lag_from_all_records,
    ],
)
def test_time_lag_accepts_correct_variants(variant):
    assert lesson03.time_lag(variant).ok


def oldest_record_when_caught_up(log, name):
    """Caught up, it measures from the oldest record of the log instead of saying timedelta(0)."""
    committed, ends = log.committed(name), log.end_offsets()
    newest = max(arrival(log.read(p, ends[p] - 1, 1)[0]) for p in ends if ends[p])
    unread = [arrival(log.read(p, committed[p], 1)[0]) for p in ends if committed[p] < ends[p]]
    return newest - min(unread, default=min(arrival(log.read(p, 0, 1)[0]) for p in ends if ends[p]))


def raises_file_not_found(log, name):
    return (log.path / "no-such-file").read_text()


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda log, name: sum(log.lag(name).values()), "that is the lag in records"),
        (lambda log, name: lag_in_time(log, name).total_seconds(), "not a number; got float"),
        (lambda log, name: str(lag_in_time(log, name)), "return a timedelta; got str"),
        (lambda log, name: lag_in_time(log, name, now=datetime.now(timezone.utc)), "measured from the wall clock"),
        (lambda log, name: lag_in_time(log, name, first_unread=lambda c, p: c[p] - 1), "read offset -1"),
        (lambda log, name: lag_in_time(log, name, first_unread=lambda c, p: max(c[p] - 1, 0)),
         "measured from the last record the consumer committed"),
        (lambda log, name: lag_in_time(log, name, oldest=max), "newest of its first unread records"),
        (lambda log, name: lag_in_time(log, name, clock=lambda r: orders.from_record(r).event_time),
         "you used event_time"),
        (per_partition, "each partition from its own newest record"),
        (lambda log, name: lag_in_time(log, name, skip_caught_up=False), "IndexError"),
        (lambda log, name: lag_in_time(log, name) or None, "returned None"),
        (lambda log, name: lag_in_time(log, name, first_unread=lambda c, p: 0, skip_caught_up=False),
         "your answer is an error: IndexError"),
        (oldest_record_when_caught_up, "is not behind at all"),
        (lambda log, name: lag_in_time(log, name) * 2, DIFFERS),
        (lambda log, name: log.read(99, 0), "your answer is an error: ValueError: partition must be"),
        (raises_file_not_found, "your answer is an error: FileNotFoundError"),
    ],
)
def test_time_lag_rejects_typical_mistakes_with_the_right_hint(wrong, hint):
    feedback = lesson03.time_lag(wrong)
    assert feedback_says(feedback, hint), feedback


def test_a_message_never_shows_where_the_log_is():
    message = lesson03.time_lag(raises_file_not_found).message
    assert "<log>" in message and "/tmp" not in message and "streamlab-exercise" not in message


# -- exercise 2: commit after handling --------------------------------------------------------------

def consume(log, name, handle, batch):
    consumer = log.consumer(name)
    handled = 0
    while records := consumer.poll(batch):
        for record in records:
            handle(record)
        consumer.commit()
        handled += len(records)
    return handled


def commit_each_record(log, name, handle, batch):
    handled = 0
    while True:
        positions = log.committed(name)
        records = [r for p in range(log.partitions) for r in log.read(p, positions[p], batch)][:batch]
        if not records:
            return handled
        for record in records:
            handle(record)
            log.commit(name, {record.partition: record.offset + 1})
            handled += 1


def consumer_loop(*, before=False, swallow=False, commit=True, polls=None, poll_size=lambda b: b,
                  commit_if=lambda records, batch: True, returns=lambda n: n, decode=False, twice=False):
    def fn(log, name, handle, batch):
        consumer = log.consumer(name)
        handled = 0
        done = 0
        while (polls is None or done < polls) and (records := consumer.poll(poll_size(batch))):
            done += 1
            if before:
                consumer.commit()
            for record in records:
                try:
                    handle(orders.from_record(record) if decode else record)
                    if twice:
                        handle(record)
                except lesson03.Crash:
                    if not swallow:
                        raise
            if commit and commit_if(records, batch) and not before:
                consumer.commit()
            handled += len(records)
        return returns(handled)

    return fn


def commit_in_finally(log, name, handle, batch):
    consumer = log.consumer(name)
    handled = 0
    while records := consumer.poll(batch):
        try:
            for record in records:
                handle(record)
                handled += 1
        finally:
            consumer.commit()
    return handled


def commit_at_the_end(log, name, handle, batch):
    consumer = log.consumer(name)
    handled = 0
    while records := consumer.poll(batch):
        for record in records:
            handle(record)
        handled += len(records)
    consumer.commit()
    return handled


@pytest.mark.parametrize(
    "variant",
    [consume, commit_each_record, consumer_loop(poll_size=lambda b: max(1, b // 2))],
)
def test_at_least_once_accepts_correct_variants(variant):
    assert lesson03.at_least_once(variant).ok


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (consumer_loop(before=True), "you committed records that handle had not finished"),
        (commit_in_finally, "you committed records that handle had not finished"),
        (consumer_loop(swallow=True), "carried on after handle crashed"),
        (consumer_loop(commit=False), "you did not commit before the crash"),
        (commit_at_the_end, "you did not commit before the crash"),
        (consumer_loop(polls=1), "keep polling until a poll returns nothing"),
        (consumer_loop(poll_size=lambda b: 3 * b), "replays fewer than"),
        (consumer_loop(commit_if=lambda records, batch: len(records) == batch), "left uncommitted"),
        (consumer_loop(returns=lambda n: None), "return how many records this call handled"),
        (consumer_loop(decode=True), "call handle with the record itself"),
        (consumer_loop(twice=True), "twice in one run"),
    ],
)
def test_at_least_once_rejects_typical_mistakes_with_the_right_hint(wrong, hint):
    feedback = lesson03.at_least_once(wrong)
    assert feedback_says(feedback, hint), feedback


def test_at_least_once_not_implemented_is_not_yet():
    def fn(log, name, handle, batch):
        raise NotImplementedError()

    assert lesson03.at_least_once(fn).status == "not yet"


# -- exercise 3: replays handled once --------------------------------------------------------------

def next_expected(handle):
    expected = {}

    def handle_once(record):
        if record.offset < expected.get(record.partition, 0):
            return
        handle(record)
        expected[record.partition] = record.offset + 1

    return handle_once


def seen_positions(handle):
    seen = set()

    def handle_once(record):
        if (record.partition, record.offset) not in seen:
            seen.add((record.partition, record.offset))
            handle(record)

    return handle_once


class LastHandled:
    def __init__(self, handle):
        self.handle, self.last = handle, {}

    def __call__(self, record):
        if record.offset > self.last.get(record.partition, -1):
            self.handle(record)
            self.last[record.partition] = record.offset


def by_event_identity(handle):
    seen = set()

    def handle_once(record):
        identity = (record.value["order_id"], record.value["kind"])
        if identity not in seen:
            seen.add(identity)
            handle(record)

    return handle_once


def skipping(skip, *, decode=False):
    def wrap(handle):
        state = {}

        def handle_once(record):
            if skip(state, record):
                return
            handle(orders.from_record(record) if decode else record)
            state[record.partition] = record.offset
            state["any"] = record.offset
            state.setdefault("keys", set()).add(record.key)

        return handle_once

    return wrap


@pytest.mark.parametrize("variant", [next_expected, seen_positions, LastHandled, by_event_identity])
def test_once_per_record_accepts_correct_variants(variant):
    assert lesson03.once_per_record(variant).ok


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda handle: handle, "reached handle a second time"),
        (skipping(lambda s, r: r.offset <= s.get(r.partition, 0)), "the first record of each partition"),
        (skipping(lambda s, r: r.offset <= s.get("any", -1)), "one offset for the whole log"),
        (skipping(lambda s, r: r.key in s.get("keys", ())), "records whose key you had seen before"),
        (skipping(lambda s, r: r.offset <= s.get(r.partition, -1), decode=True), "pass handle the record itself"),
        (lambda handle: None, "return a function"),
        (skipping(lambda s, r: r.offset <= s.get(r.partition, -1) + 1), "never reached handle"),
    ],
)
def test_once_per_record_rejects_typical_mistakes_with_the_right_hint(wrong, hint):
    feedback = lesson03.once_per_record(wrong)
    assert feedback_says(feedback, hint), feedback


def remembers_the_last_records(handle):
    """Remembers only the last 80 positions: right while replays are short."""
    seen = collections.deque(maxlen=80)

    def handle_once(record):
        position = (record.partition, record.offset)
        if position not in seen:
            seen.append(position)
            handle(record)

    return handle_once


def offsets_outside():
    """The next offsets in a dict outside the function: every wrapper made shares them."""
    next_offset = {}

    def once_per_record(handle):
        def handle_once(record):
            if record.offset >= next_offset.get(record.partition, 0):
                handle(record)
                next_offset[record.partition] = record.offset + 1

        return handle_once

    return once_per_record


def positions_outside():
    seen = set()

    def once_per_record(handle):
        def handle_once(record):
            if (record.partition, record.offset) not in seen:
                seen.add((record.partition, record.offset))
                handle(record)

        return handle_once

    return once_per_record


@pytest.mark.parametrize("wrong, hint", [
    (remembers_the_last_records, "replayed after a crash reached handle a second time"),
    (offsets_outside(), "shares what it remembers with the wrappers made before"),
    (positions_outside(), "shares what it remembers with the wrappers made before"),
])
def test_once_per_record_refuses_state_outside_and_short_memories(wrong, hint):
    feedback = lesson03.once_per_record(wrong)
    assert feedback.status == "wrong" and hint in feedback.message, feedback


# -- exercise 4: the table as a dataflow over the log ---------------------------------------------

def folded(order, record):
    try:
        order = orders.apply(order, orders.from_record(record))
    except orders.RejectedEvent:
        pass
    return order, order


def by_order(records):
    return op.stateful_map("apply", op.key_on("by_order", records, lambda r: r.key), folded)


def only_changes(records):
    def step(order, record):
        try:
            new = orders.apply(order, orders.from_record(record))
        except orders.RejectedEvent:
            return order, []
        return new, [new]

    return op.stateful_flat_map("apply", op.key_on("by_order", records, lambda r: r.key), step)


def events_first(records):
    events = op.map("decode", records, orders.from_record)
    keyed = op.key_on("by_order", events, lambda e: e.order_id)

    def step(order, event):
        try:
            return orders.apply(order, event), None
        except orders.RejectedEvent:
            return order, None

    applied = op.stateful_map("apply", keyed, lambda order, event: (step(order, event)[0],) * 2)
    return op.filter_value("placed_yet", applied, lambda order: order is not None)


def fold_to_the_end(records):
    keyed = op.key_on("by_order", records, lambda r: r.key)
    return op.fold_final("table", keyed, lambda: None, lambda order, record: folded(order, record)[0])


def blindly(records):
    def step(order, record):
        e = orders.from_record(record)
        order = orders.Order(e.order_id, e.customer, e.kind, e.amount, e.event_time)
        return order, order

    return op.stateful_map("apply", op.key_on("by_order", records, lambda r: r.key), step)


def never_catches(records):
    def step(order, record):
        order = orders.apply(order, orders.from_record(record))
        return order, order

    return op.stateful_map("apply", op.key_on("by_order", records, lambda r: r.key), step)


def by_customer(records):
    return op.stateful_map("apply", op.key_on("by_customer", records, lambda r: r.value["customer"]), folded)


def by_partition(records):
    return op.stateful_map("apply", op.key_on("by_partition", records, lambda r: str(r.partition)), folded)


def emits_the_event(records):
    def step(order, record):
        event = orders.from_record(record)
        return folded(order, record)[0], event

    return op.stateful_map("apply", op.key_on("by_order", records, lambda r: r.key), step)


def no_return(records):
    op.stateful_map("apply", op.key_on("by_order", records, lambda r: r.key), folded)


def record_not_decoded(records):
    def step(order, record):
        try:
            order = orders.apply(order, record)
        except orders.RejectedEvent:
            pass
        return order, order

    return op.stateful_map("apply", op.key_on("by_order", records, lambda r: r.key), step)


def skips_the_first_version(records):
    def step(order, record):
        try:
            new = orders.apply(order, orders.from_record(record))
        except orders.RejectedEvent:
            return order, []
        return new, [new] if order is not None else []

    return op.stateful_flat_map("apply", op.key_on("by_order", records, lambda r: r.key), step)


@pytest.mark.parametrize("variant", [by_order, only_changes, events_first, fold_to_the_end])
def test_table_flow_accepts_correct_variants(variant):
    feedback = lesson03.table_flow(variant)
    assert feedback.ok, feedback.message


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (blindly, "took the status of an event that does not fit"),
        (never_catches, "catch orders.RejectedEvent"),
        (by_customer, "key the records by order id"),
        (by_partition, "key the records by order id"),
        (emits_the_event, "not the order event"),
        (no_return, "return the stream your last step makes"),
        (record_not_decoded, "orders.from_record(record) decodes it"),
        (skips_the_first_version, "misses"),
    ],
)
def test_table_flow_rejects_typical_mistakes_with_the_right_hint(wrong, hint):
    feedback = lesson03.table_flow(wrong)
    assert feedback_says(feedback, hint), feedback.message
    assert "/tmp" not in feedback.message and "streamlab-exercise" not in feedback.message


def test_table_flow_not_implemented_is_not_yet():
    def orders_flow(records):
        raise NotImplementedError()

    assert lesson03.table_flow(orders_flow).status == "not yet"


def test_a_flow_that_raises_prints_no_rust_panic_into_the_cell(capfd):
    feedback = lesson03.table_flow(never_catches)
    assert feedback_says(feedback, "catch orders.RejectedEvent")
    assert "panicked" not in capfd.readouterr().err
