"""Three services on one order log: each reads everything at its own pace, falls behind, catches up, replays."""

from datetime import timedelta

import pytest

from streamlab.consumers import Fraud, Loyalty, Payments, consume, follow
from streamlab.events import COURSE_START, take
from streamlab.log import Log, UnknownConsumerError
from streamlab.orders import OrderEvent, order_pipe, publish

T = COURSE_START


def ev(order_id, kind, amount, customer="ann"):
    return OrderEvent(order_id, customer, kind, amount, T, T)


HAND = [
    ev("o1", "placed", 195.5), ev("o2", "placed", 20.25, "bob"), ev("o1", "paid", 195.5),
    ev("o2", "cancelled", 20.25, "bob"), ev("o1", "cancelled", 195.5), ev("o3", "placed", 10.75),
    ev("o3", "paid", 10.75),
]


def feed(reader, events):
    for e in events:
        reader.handle(e)
    return reader.answer()


def test_hand_checked_answers():
    assert feed(Payments(), HAND) == {"events": 7, "taken": 206.25, "refunded": 195.5, "net": 10.75}
    assert feed(Fraud(), HAND) == {"events": 7, "held": 1}
    fixed = Loyalty()
    assert feed(fixed, HAND) == {"events": 7, "points": 205, "customers": 1}
    assert fixed.points == {"ann": 195 + 10}
    buggy = Loyalty(buggy=True)
    assert feed(buggy, HAND) == {"events": 7, "points": 225, "customers": 2}  # bob never paid, yet got points


@pytest.fixture
def log(tmp_path):
    return Log.create(tmp_path / "orders", partitions=3)


def test_consume_commits_so_a_restart_neither_repeats_nor_skips(log):
    pile = take(order_pipe(seed=1), 400)
    publish(log, pile)
    log.add_consumer("payments")
    first = Payments()
    assert consume(log, first, max_records=150, batch=40) == 150
    assert sum(log.committed("payments").values()) == 150
    # A restart: a new object, a freshly opened log; it carries on from the committed offsets.
    second = Payments()
    assert consume(Log.open(log.path), second) == 250
    assert first.events + second.events == 400
    assert first.taken_cents + second.taken_cents == feed(Payments(), pile)["taken"] * 100


def test_after_a_bug_fix_replaying_from_zero_recomputes_the_answer(log):
    pile = take(order_pipe(seed=2), 600)
    publish(log, pile)
    log.add_consumer("loyalty")
    buggy = Loyalty(buggy=True)
    consume(log, buggy)
    consumer = log.consumer("loyalty")
    consumer.seek_to_beginning()
    consumer.commit()  # as Kafka's --reset-offsets --to-earliest
    fixed = Loyalty()
    consume(log, fixed)
    assert fixed.answer() == feed(Loyalty(), pile)
    assert buggy.answer()["points"] > fixed.answer()["points"]
    # Replaying again gives the very same answer: the log has not changed.
    log.commit("loyalty", {p: 0 for p in range(3)})
    again = Loyalty()
    consume(log, again)
    assert again.points == fixed.points


def test_follow_records_lag_falling_behind_and_catching_up(log):
    p = order_pipe(seed=3, rate=0.2)
    readers = [Payments(), Fraud(), Loyalty()]
    for r in readers:
        log.add_consumer(r.name)
    scale_up = T + timedelta(hours=1)
    until = T + timedelta(hours=2)
    lag = follow(
        log, p, readers,
        {"payments": 1000, "fraud": 1000, "loyalty": lambda now: 20 if now < scale_up else 500},
        every=timedelta(minutes=5), until=until,
    )
    assert lag.columns.tolist() == ["time", "consumer", "committed", "end", "lag"]
    assert (lag["lag"] == lag["end"] - lag["committed"]).all()
    fast = lag[lag["consumer"] != "loyalty"]
    assert (fast["lag"] == 0).all()
    slow = lag[lag["consumer"] == "loyalty"].set_index("time")["lag"]
    assert slow[:scale_up].is_monotonic_increasing and slow[:scale_up].iloc[-1] > 100
    assert slow.iloc[-1] == 0
    # Everyone has read every event that arrived before `until`, exactly once.
    pile = [e for e in take(p, 5000) if e.arrival_time < until]
    end = sum(log.end_offsets().values())
    assert end == len(pile)
    assert [r.answer() for r in readers] == [feed(type(r)(), pile) for r in readers]


def test_follow_refuses_readers_it_cannot_run(log):
    with pytest.raises(UnknownConsumerError, match="no consumer named 'payments'"):
        follow(log, order_pipe(), [Payments()], {"payments": 1}, until=T + timedelta(minutes=5))
    log.add_consumer("payments")
    with pytest.raises(ValueError, match="capacity has no entry for consumer 'payments'"):
        follow(log, order_pipe(), [Payments()], {}, until=T + timedelta(minutes=5))
    with pytest.raises(ValueError, match="follow needs at least one event"):
        follow(log, [], [Payments()], {"payments": 1}, until=T + timedelta(minutes=5))


@pytest.mark.parametrize("crash_at, batch", [(130, 100), (0, 50), (299, 100), (57, 1)])
def test_a_crash_between_handling_and_committing_duplicates_and_one_before_handling_loses(tmp_path, crash_at, batch):
    from streamlab.consumers import crash_once

    log = Log.create(tmp_path / "orders", partitions=3)
    publish(log, take(order_pipe(seed=2), 400))
    since_commit = crash_at % batch  # handled in the batch the process died in
    log.add_consumer("payments")
    once = crash_once(log, Payments(), commit="after", crash_at=crash_at, batch=batch)
    assert (once.guarantee, once.lost, len(once.duplicates), len(once.handled)) == (
        "at least once", 0, since_commit, 400 + since_commit)
    assert sum(log.lag("payments").values()) == 0
    assert once.crashed_on in set(once.handled)  # handled after the restart

    rewind = log.consumer("payments")
    rewind.seek_to_beginning()
    rewind.commit()
    at_most = crash_once(log, Payments(), commit="before", crash_at=crash_at, batch=batch)
    lost = min(batch, 400 - crash_at + since_commit) - since_commit
    assert (at_most.guarantee, at_most.duplicates, at_most.lost) == ("at most once", [], lost)
    assert at_most.crashed_on not in set(at_most.handled)
    assert sum(log.lag("payments").values()) == 0  # the lost records are behind the committed offsets


def test_a_duplicate_counts_money_twice(tmp_path):
    from streamlab.consumers import crash_once

    log = Log.create(tmp_path / "orders", partitions=3)
    publish(log, take(order_pipe(seed=2), 400))
    log.add_consumer("payments")
    right = Payments()
    consume(log, right)
    log.add_consumer("payments-again")
    twice = Payments()
    delivery = crash_once(log, twice, commit="after", crash_at=250, batch=100, name="payments-again")
    assert sum(log.lag("payments").values()) == 0  # another consumer: payments' own position is untouched
    assert delivery.duplicates and twice.answer()["taken"] > right.answer()["taken"]
    assert twice.answer()["events"] == right.answer()["events"] + len(delivery.duplicates)


def test_crash_once_refuses_what_cannot_crash(tmp_path):
    from streamlab.consumers import crash_once

    log = Log.create(tmp_path / "orders", partitions=2)
    publish(log, take(order_pipe(seed=2), 10))
    log.add_consumer("payments")
    with pytest.raises(ValueError, match="'after' or 'before'"):
        crash_once(log, Payments(), commit="never", crash_at=3)
    with pytest.raises(ValueError, match="crash_at must be"):
        crash_once(log, Payments(), commit="after", crash_at=-1)
    with pytest.raises(ValueError, match="past the 10 records"):
        crash_once(log, Payments(), commit="after", crash_at=10)
