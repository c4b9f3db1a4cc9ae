"""Lesson 03 exercises: each check accepts correct variants and names the typical mistakes."""

import collections
import tempfile
from datetime import datetime, timedelta, timezone

import bytewax.operators as op
import numpy as np
import pandas as pd
import pytest

from streamlab import orders
from streamlab.exercises import lesson03
from test_exercises_hints import solution_lines


DIFFERS = "Here is an input where your answer differs"


SOLUTION = solution_lines("lesson03")


def feedback_says(feedback, hint):
    """Refused with this hint (or a counterexample), and the message holds no line of the solution."""
    return (feedback.status == "wrong" and hint in feedback.message
            and not any(line in feedback.message for line in SOLUTION))


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


def test_a_check_leaves_none_of_the_logs_it_tried_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    feedback = lesson03.time_lag(rounded_to_the_second)  # shrinks a lesson's log: many smaller logs built
    assert feedback.status == "wrong"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("streamlab-exercise-")]


# -- exercise 1: more right answers, and wrong ones beyond the check's own catalogue -----------------

def lag_as_numpy(log, name):
    return np.timedelta64(lag_in_time(log, name)).astype("timedelta64[us]")


def lag_with_pandas(log, name):
    """Every record in a DataFrame; the unread ones are those at or after the committed offset."""
    committed = log.committed(name)
    frame = pd.DataFrame(
        [{"partition": r.partition, "offset": r.offset, "arrival": arrival(r)} for r in log.records()]
    )
    unread = frame[frame["offset"] >= frame["partition"].map(committed)]
    return frame["arrival"].max() - unread["arrival"].min() if len(unread) else pd.Timedelta(0)


def lag_from_the_records_lag(log, name):
    """Skips the partitions whose lag in records is 0; reads each partition's newest with log.read to its end."""
    committed = log.committed(name)
    newest = max(arrival(log.read(p)[-1]) for p in range(log.partitions) if log.read(p))
    oldest = [arrival(log.read(p, committed[p], 1)[0]) for p, behind in log.lag(name).items() if behind]
    return newest - min(oldest) if oldest else timedelta()


@pytest.mark.parametrize("variant", [lag_as_numpy, lag_with_pandas, lag_from_the_records_lag])
def test_time_lag_accepts_more_correct_variants(variant):
    feedback = lesson03.time_lag(variant)
    assert feedback.ok, feedback.message


def another_consumers_offsets(log, name):
    """Reads the offsets of the first consumer listed, whichever it is."""
    committed, ends = log.committed(log.consumers[0]), log.end_offsets()
    newest = max(arrival(log.read(p, ends[p] - 1, 1)[0]) for p in ends if ends[p])
    unread = [arrival(log.read(p, committed[p], 1)[0]) for p in ends if committed[p] < ends[p]]
    return newest - min(unread) if unread else timedelta(0)


def newest_is_the_last_record_read(log, name):
    """Takes the last record of log.records() (the last partition's) as the newest of the log."""
    committed, ends = log.committed(name), log.end_offsets()
    newest = arrival(list(log.records())[-1])
    unread = [arrival(log.read(p, committed[p], 1)[0]) for p in ends if committed[p] < ends[p]]
    return newest - min(unread) if unread else timedelta(0)


def the_partition_most_behind_in_records(log, name):
    """Measures only the partition with the most records not committed."""
    lag = log.lag(name)
    p = max(lag, key=lag.get)
    if not lag[p]:
        return timedelta(0)
    ends = log.end_offsets()
    newest = max(arrival(log.read(q, ends[q] - 1, 1)[0]) for q in ends if ends[q])
    return newest - arrival(log.read(p, log.committed(name)[p], 1)[0])


def rounded_to_the_second(log, name):
    return timedelta(seconds=round(lag_in_time(log, name).total_seconds()))


def committed_is_the_last_handled(log, name):
    """Takes the committed offset for the last record handled: the first unread is the one after it."""
    committed, ends = log.committed(name), log.end_offsets()
    newest = max(arrival(log.read(p, ends[p] - 1, 1)[0]) for p in ends if ends[p])
    unread = [arrival(log.read(p, committed[p] + 1, 1)[0]) for p in ends if committed[p] + 1 < ends[p]]
    return newest - min(unread) if unread else timedelta(0)


def remembered_per_consumer():
    """Remembers each consumer's lag in a dict outside the function, measured once (the same answer every time it
    is asked again, so a counterexample shows it, not a change between calls)."""
    lags = {}

    def time_lag(log, name):
        if name not in lags:
            lags[name] = lag_in_time(log, name)
        return lags[name]

    return time_lag


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (another_consumers_offsets, DIFFERS),
        (newest_is_the_last_record_read, DIFFERS),
        (the_partition_most_behind_in_records, DIFFERS),
        (rounded_to_the_second, DIFFERS),
        (committed_is_the_last_handled, DIFFERS),
        (remembered_per_consumer(), DIFFERS),
    ],
)
def test_time_lag_refuses_more_wrong_answers(wrong, hint):
    feedback = lesson03.time_lag(wrong)
    assert feedback_says(feedback, hint), feedback.message


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


# -- exercise 2: more right answers, and wrong ones beyond the check's own catalogue -----------------

def partition_by_partition(log, name, handle, batch):
    """Reads with log.read, a batch from the first partition that has one, and commits that partition's offset."""
    handled = 0
    while True:
        committed, ends = log.committed(name), log.end_offsets()
        behind = [p for p in range(log.partitions) if committed[p] < ends[p]]
        if not behind:
            return np.int64(handled)
        p = behind[0]
        records = log.read(p, committed[p], batch)
        for record in records:
            handle(record)
        log.commit(name, {p: records[-1].offset + 1})
        handled += len(records)


def one_record_per_poll(log, name, handle, batch):
    consumer = log.consumer(name)
    handled = 0
    while True:
        records = consumer.poll(1)
        if not records:
            break
        handle(records[0])
        consumer.commit()
        handled += 1
    return handled


def commits_what_was_handled_when_it_crashes(log, name, handle, batch):
    """On a crash, commits exactly the records handled so far (then lets the crash go on)."""
    consumer = log.consumer(name)
    handled = 0
    while records := consumer.poll(batch):
        done = {}
        try:
            for record in records:
                handle(record)
                done[record.partition] = record.offset + 1
                handled += 1
        except lesson03.Crash:
            if done:
                log.commit(name, done)
            raise
        consumer.commit()
    return handled


@pytest.mark.parametrize("variant", [partition_by_partition, one_record_per_poll,
                                     commits_what_was_handled_when_it_crashes])
def test_at_least_once_accepts_more_correct_variants(variant):
    feedback = lesson03.at_least_once(variant)
    assert feedback.ok, feedback.message


def every_other_batch(log, name, handle, batch):
    consumer = log.consumer(name)
    handled = polls = 0
    while records := consumer.poll(batch):
        for record in records:
            handle(record)
        polls += 1
        handled += len(records)
        if polls % 2 == 0:
            consumer.commit()
    consumer.commit()
    return handled


def commits_the_offset_handled(log, name, handle, batch):
    """Commits the offset of the last record handled, as if the committed offset were the last one read."""
    consumer = log.consumer(name)
    handled = 0
    while records := consumer.poll(batch):
        last = {}
        for record in records:
            handle(record)
            last[record.partition] = record.offset
        log.commit(name, last)
        handled += len(records)
    return handled


def from_the_start(log, name, handle, batch):
    """Reads every partition from offset 0, as if nothing had been committed before."""
    handled = 0
    for p in range(log.partitions):
        offset = 0
        while records := log.read(p, offset, batch):
            for record in records:
                handle(record)
            offset = records[-1].offset + 1
            log.commit(name, {p: offset})
            handled += len(records)
    return handled


def handled_outside():
    """Remembers the positions handled in a set outside the function, to skip replays."""
    done = set()

    def consume_at_least_once(log, name, handle, batch):
        consumer = log.consumer(name)
        handled = 0
        while records := consumer.poll(batch):
            for record in records:
                if (record.partition, record.offset) not in done:
                    handle(record)
                    done.add((record.partition, record.offset))
                    handled += 1
            consumer.commit()
        return handled

    return consume_at_least_once


def returns_the_committed_total(log, name, handle, batch):
    consume(log, name, handle, batch)
    return sum(log.committed(name).values())


def grouped_by_order(log, name, handle, batch):
    """Handles each poll's records sorted by order id."""
    consumer = log.consumer(name)
    handled = 0
    while records := consumer.poll(batch):
        for record in sorted(records, key=lambda r: r.key):
            handle(record)
        consumer.commit()
        handled += len(records)
    return handled


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (every_other_batch, "the restart handled a batch or more again"),
        (commits_the_offset_handled, DIFFERS),
        (from_the_start, DIFFERS),
        (handled_outside(), "it keeps something from one call to the next"),
        (returns_the_committed_total, "return how many records this call handled"),
        (grouped_by_order, "in offset order"),
    ],
)
def test_at_least_once_refuses_more_wrong_answers(wrong, hint):
    feedback = lesson03.at_least_once(wrong)
    assert feedback_says(feedback, hint), feedback.message


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
        (skipping(lambda s, r: r.offset <= s.get(r.partition, -1) + 1), DIFFERS),
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


# -- exercise 3: more right answers, and wrong ones beyond the check's own catalogue -----------------

class OffsetsPerPartition:
    """A set of the offsets handled, one per partition."""

    def __init__(self, handle):
        self.handle, self.done = handle, collections.defaultdict(set)

    def __call__(self, record):
        if record.offset not in self.done[record.partition]:
            self.done[record.partition].add(record.offset)
            self.handle(record)


def counted_positions(handle):
    seen = collections.Counter()

    def handle_once(record):
        seen[record.partition, record.offset, record.key] += 1
        if seen[record.partition, record.offset, record.key] == 1:
            handle(record)

    return handle_once


def highest_offset_seen(handle):
    highest = collections.defaultdict(lambda: -1)

    def handle_once(record):
        if record.offset > highest[record.partition]:
            highest[record.partition] = record.offset
            handle(record)

    return handle_once


@pytest.mark.parametrize("variant", [OffsetsPerPartition, counted_positions, highest_offset_seen])
def test_once_per_record_accepts_more_correct_variants(variant):
    feedback = lesson03.once_per_record(variant)
    assert feedback.ok, feedback.message


def expects_the_offset_handled(handle):
    """Notes the offset handled, not the next one: the last record before a crash gets through again."""
    expected = {}

    def handle_once(record):
        if record.offset < expected.get(record.partition, 0):
            return
        handle(record)
        expected[record.partition] = record.offset

    return handle_once


def handles_before_looking(handle):
    seen = set()

    def handle_once(record):
        handle(record)
        seen.add((record.partition, record.offset))

    return handle_once


def by_object_identity(handle):
    """Remembers the record objects: a replay is a new object read again from the log."""
    seen = set()

    def handle_once(record):
        if id(record) not in seen:
            seen.add(id(record))
            handle(record)

    return handle_once


def by_arrival_time(handle):
    """Takes a record's arrival time for its identity: two records that arrived at the same moment are one."""
    seen = set()

    def handle_once(record):
        if record.value["arrival_time"] not in seen:
            seen.add(record.value["arrival_time"])
            handle(record)

    return handle_once


def forgets_at_offset_zero(handle):
    """Starts afresh when a partition's offset 0 comes: as if it could only come at the start."""
    expected = {}

    def handle_once(record):
        if record.offset == 0:
            expected.pop(record.partition, None)
        if record.offset >= expected.get(record.partition, 0):
            handle(record)
            expected[record.partition] = record.offset + 1

    return handle_once


def default_argument(handle, seen=set()):  # noqa: B006  (the mistake: one set for every wrapper ever made)
    def handle_once(record):
        if (record.partition, record.offset) not in seen:
            seen.add((record.partition, record.offset))
            handle(record)

    return handle_once


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (expects_the_offset_handled, "reached handle a second time"),
        (handles_before_looking, "reached handle a second time"),
        (by_object_identity, "reached handle a second time"),
        (by_arrival_time, DIFFERS),
        (forgets_at_offset_zero, "reached handle a second time"),
        (default_argument, "shares what it remembers with the wrappers made before"),
    ],
)
def test_once_per_record_refuses_more_wrong_answers(wrong, hint):
    feedback = lesson03.once_per_record(wrong)
    assert feedback_says(feedback, hint), feedback.message


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


@pytest.mark.parametrize("variant", [by_order, only_changes, events_first])
def test_table_flow_accepts_correct_variants(variant):
    feedback = lesson03.table_flow(variant)
    assert feedback.ok, feedback.message


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (blindly, "took the status of an event that does not fit"),
        (never_catches, "catch orders.RejectedEvent"),
        (by_customer, "one state mixes several orders"),
        (by_partition, "one state mixes several orders"),
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


# -- exercise 4: more right answers, and wrong ones beyond the check's own catalogue -----------------

def orders_per_partition(records):
    """One state per log partition, holding that partition's orders; each new version re-keyed by its order id."""
    def step(table, record):
        table = dict(table or {})
        event = orders.from_record(record)
        try:
            table[event.order_id] = orders.apply(table.get(event.order_id), event)
        except orders.RejectedEvent:
            return table, []
        return table, [(event.order_id, table[event.order_id])]

    per_partition = op.key_on("by_partition", records, lambda r: str(r.partition))
    versions = op.stateful_flat_map("fold", per_partition, step)
    return op.map("by_order", versions, lambda kv: kv[1])


def replayed_each_time(records):
    """Keeps each order's events and replays them all with orders.replay at every new one."""
    def step(events, record):
        events = [*(events or []), orders.from_record(record)]
        return events, orders.replay(events).table.get(record.key)

    return op.stateful_map("replay", op.key_on("by_order", records, lambda r: r.value["order_id"]), step)


def decoded_by_the_source_step(records):
    """Decodes in a map step, keys by the event's order id, and folds with a plain function that catches."""
    def fold(order, event):
        try:
            return orders.apply(order, event)
        except orders.RejectedEvent:
            return order

    events = op.map("decode", records, orders.from_record)
    keyed = op.key_on("key", events, lambda e: e.key)
    return op.stateful_map("fold", keyed, lambda order, event: (fold(order, event), fold(order, event)))


@pytest.mark.parametrize("variant", [orders_per_partition, replayed_each_time, decoded_by_the_source_step])
def test_table_flow_accepts_more_correct_variants(variant):
    feedback = lesson03.table_flow(variant)
    assert feedback.ok, feedback.message


def emits_the_version_before(records):
    def step(order, record):
        try:
            new = orders.apply(order, orders.from_record(record))
        except orders.RejectedEvent:
            new = order
        return new, order

    return op.stateful_map("apply", op.key_on("by_order", records, lambda r: r.key), step)


def table_outside():
    """The orders in a dict outside the function, updated by a plain map step."""
    table = {}

    def orders_flow(records):
        def step(record):
            event = orders.from_record(record)
            try:
                table[event.order_id] = orders.apply(table.get(event.order_id), event)
            except orders.RejectedEvent:
                pass
            return event.order_id, table.get(event.order_id)

        return op.map("apply", records, step)

    return orders_flow


def orders_outside_set_up_afresh():
    """Each order in a dict outside, set up at its first record; the state only marks that it was seen."""
    table = {}

    def orders_flow(records):
        def step(seen, record):
            event = orders.from_record(record)
            if seen is None:
                table[event.order_id] = None
            try:
                table[event.order_id] = orders.apply(table[event.order_id], event)
            except orders.RejectedEvent:
                pass
            return True, table[event.order_id]

        return op.stateful_map("apply", op.key_on("by_order", records, lambda r: r.key), step)

    return orders_flow


def forgets_on_a_rejected_event(records):
    def step(order, record):
        try:
            order = orders.apply(order, orders.from_record(record))
        except orders.RejectedEvent:
            order = None
        return order, order

    return op.stateful_map("apply", op.key_on("by_order", records, lambda r: r.key), step)


def sorted_by_event_time(records):
    """Keeps each order's events and folds them sorted by when they happened, to repair the order of the log."""
    def step(events, record):
        events = sorted([*(events or []), orders.from_record(record)], key=lambda e: e.event_time)
        return events, orders.replay(events).table.get(record.key)

    return op.stateful_map("replay", op.key_on("by_order", records, lambda r: r.key), step)


def cancelled_leaves_the_table(records):
    """A cancelled order is emitted as None, as if it left the table."""
    def step(order, record):
        try:
            order = orders.apply(order, orders.from_record(record))
        except orders.RejectedEvent:
            pass
        return order, None if order is not None and order.status == "cancelled" else order

    return op.stateful_map("apply", op.key_on("by_order", records, lambda r: r.key), step)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (fold_to_the_end, "emits each order once, when the log has been read to its end"),
        (emits_the_version_before, DIFFERS),
        (table_outside(), "it keeps something from one call to the next"),
        (orders_outside_set_up_afresh(), "resumed from a snapshot of its state"),
        (forgets_on_a_rejected_event, DIFFERS),
        (sorted_by_event_time, DIFFERS),
        (cancelled_leaves_the_table, DIFFERS),
    ],
)
def test_table_flow_refuses_more_wrong_answers(wrong, hint):
    feedback = lesson03.table_flow(wrong)
    assert feedback_says(feedback, hint), feedback.message


def test_table_flow_not_implemented_is_not_yet():
    def orders_flow(records):
        raise NotImplementedError()

    assert lesson03.table_flow(orders_flow).status == "not yet"


def test_a_flow_that_raises_prints_no_rust_panic_into_the_cell(capfd):
    feedback = lesson03.table_flow(never_catches)
    assert feedback_says(feedback, "catch orders.RejectedEvent")
    assert "panicked" not in capfd.readouterr().err


def spins_on_an_empty_poll(log, name, handle, batch):
    """Polls for ever: a consumer loop with no way out."""
    consumer = log.consumer(name)
    handled = 0
    while True:
        for record in consumer.poll(batch):
            handle(record)
            handled += 1
        consumer.commit()


def rereads_for_ever(log, name, handle, batch):
    """Never moves on: handles the first batch again and again."""
    consumer = log.consumer(name)
    while True:
        records = consumer.poll(batch)
        for record in records:
            handle(record)
        for record in records[:1]:
            consumer.seek(record.partition, record.offset)


@pytest.mark.parametrize("wrong", [spins_on_an_empty_poll, rereads_for_ever])
def test_a_consumer_that_never_stops_is_stopped_and_shown_with_its_case(wrong):
    feedback = lesson03.at_least_once(wrong)
    assert feedback.status == "wrong" and "long after reading" in feedback.message, feedback.message


def lag_nat_when_caught_up(log, name):
    """pandas over every record: the newest arrival minus the oldest unread one, NaT when none is unread."""
    committed = log.committed(name)
    frame = pd.DataFrame(
        [{"partition": r.partition, "offset": r.offset, "arrival": arrival(r)} for r in log.records()]
    )
    unread = frame[frame["offset"] >= frame["partition"].map(committed)]
    return frame["arrival"].max() - unread["arrival"].min()


def test_a_nat_lag_for_a_caught_up_consumer_is_shown_with_its_case():
    feedback = lesson03.time_lag(lag_nat_when_caught_up)
    assert feedback.status == "wrong" and "NaT" in feedback.message, feedback.message
    assert "not behind at all" in feedback.message, feedback.message


def retries_after_a_crash(log, name, handle, batch):
    """Catches the crash and handles the record again: nothing lost, but a crash is the process dying."""
    consumer = log.consumer(name)
    handled = 0
    while records := consumer.poll(batch):
        for record in records:
            try:
                handle(record)
            except Exception:
                handle(record)
        consumer.commit()
        handled += len(records)
    return handled


def test_a_consumer_that_retries_after_the_crash_is_told_what_a_crash_is():
    feedback = lesson03.at_least_once(retries_after_a_crash)
    assert feedback.status == "wrong" and "A crash is the service dying" in feedback.message, feedback.message


def counts_per_partition(handle):
    """Counts the records handled per partition and skips an offset below the count: right only from offset 0."""
    handled = {}

    def once(record):
        if record.offset < handled.get(record.partition, 0):
            return
        handle(record)
        handled[record.partition] = handled.get(record.partition, 0) + 1

    return once


def test_a_wrapper_that_assumes_offsets_start_at_0_is_refused():
    feedback = lesson03.once_per_record(counts_per_partition)
    assert feedback.status == "wrong" and "starting at the committed offsets" in feedback.message, feedback.message
