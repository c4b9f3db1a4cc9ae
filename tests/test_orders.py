"""Order events, the seeded order pipe, and the one rule (apply) that turns happenings into things."""

import itertools
import math
import random
from collections import Counter
from datetime import datetime, timedelta

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamlab import batch, stream
from streamlab.events import COURSE_START, Pipe, arrived_before, bounded, take
from streamlab.orders import (
    KINDS,
    Order,
    OrderEvent,
    OutOfOrderError,
    RejectedEvent,
    apply,
    order_pipe,
    replay,
    to_frame,
)

T = COURSE_START


def at(seconds):
    return T + timedelta(seconds=seconds)


def ev(order_id, kind, seconds, amount=10.0, customer="c1", arrived=None):
    return OrderEvent(order_id, customer, kind, amount, at(seconds), at(seconds if arrived is None else arrived))


# --------------------------------------------------------------------------- the pipe


def test_same_seed_same_events_and_other_seed_other_events():
    assert take(order_pipe(seed=5), 300) == take(order_pipe(seed=5), 300)
    assert take(order_pipe(seed=5), 300) != take(order_pipe(seed=6), 300)


def test_order_pipe_is_a_real_unbounded_iterator():
    p = order_pipe(seed=1, rate=50.0)
    it = iter(p)
    assert iter(it) is it and not isinstance(it, (list, tuple))
    last = next(itertools.islice(it, 50_000, None))
    assert last.arrival_time > T
    assert isinstance(p, Pipe)
    with pytest.raises(TypeError, match="no length"):
        len(p)
    with pytest.raises(ValueError, match="a pipe never ends"):
        bounded(p)
    with pytest.raises(ValueError, match="a pipe never ends"):
        batch.orders_changelog(p)
    with pytest.raises(ValueError, match="a pipe never ends"):
        stream.orders_table(p)
    with pytest.raises(TypeError, match="finite pile"):
        to_frame(p)


@pytest.mark.parametrize("disorder", [0.0, 90.0])
def test_events_arrive_in_arrival_order_never_early_and_each_order_in_order(disorder):
    pile = take(order_pipe(seed=3, rate=0.5, disorder=disorder), 6000)
    arrivals = [e.arrival_time for e in pile]
    assert arrivals == sorted(arrivals)
    assert all(timedelta(0) <= e.delay <= timedelta(seconds=disorder) or _held_back(e, pile) for e in pile)
    # Order is kept per key: each order's events arrive in the order they happened...
    by_order = {}
    for e in pile:
        by_order.setdefault(e.order_id, []).append(e)
    for events in by_order.values():
        assert [e.event_time for e in events] == sorted(e.event_time for e in events)
    # ... and every order's life is valid, so nothing is routed aside.
    assert replay(pile).rejected == []


def _held_back(event, pile):
    # An event may arrive later than `disorder` only to wait for its order's previous event.
    earlier = [e for e in pile if e.order_id == event.order_id and e.event_time < event.event_time]
    return bool(earlier) and event.arrival_time == max(e.arrival_time for e in earlier)


def test_disorder_reorders_event_time_across_orders():
    happened = [e.event_time for e in take(order_pipe(seed=3, rate=0.5, disorder=90), 3000)]
    assert happened != sorted(happened)
    in_order = [e.event_time for e in take(order_pipe(seed=3, rate=0.5), 3000)]
    assert in_order == sorted(in_order)


def test_rates_and_probabilities_follow_the_parameters():
    pile = take(order_pipe(seed=9, rate=1.0, cancel=0.2, customers=4, min_amount=10, max_amount=20), 30_000)
    placed = [e for e in pile if e.kind == "placed"]
    span = (placed[-1].event_time - placed[0].event_time).total_seconds()
    assert len(placed) / span == pytest.approx(1.0, rel=0.05)
    assert {e.customer for e in pile} == {f"customer-{i}" for i in range(4)}
    assert all(10 <= e.amount <= 20 and round(e.amount, 2) == e.amount for e in pile)
    ends = Counter(o.status for o in replay(pile).table.values() if o.status in ("shipped", "cancelled"))
    # Cancelled before payment (0.2) or after it (0.8 * 0.2): 0.36 of finished orders.
    assert ends["cancelled"] / sum(ends.values()) == pytest.approx(0.36, abs=0.02)


def test_mean_step_sets_the_time_between_steps():
    pile = take(order_pipe(seed=2, mean_step=60), 20_000)
    placed = {e.order_id: e.event_time for e in pile if e.kind == "placed"}
    gaps = [(e.event_time - placed[e.order_id]).total_seconds() for e in pile if e.kind == "paid"]
    assert sum(gaps) / len(gaps) == pytest.approx(60, rel=0.1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"seed": 1.5}, "seed must be an int, got 1.5"),
        ({"rate": 0}, "rate must be a finite number > 0"),
        ({"rate": math.nan}, "rate must be a finite number > 0"),
        ({"customers": 0}, "customers must be an int >= 1, got 0"),
        ({"mean_step": 0}, "mean_step must be > 0, got 0"),
        ({"mean_step": "10"}, "mean_step must be a timedelta or seconds, got '10'"),
        ({"cancel": -0.1}, "cancel must be a probability from 0 to 1, got -0.1"),
        ({"min_amount": 0}, "min_amount must be a finite number > 0, got 0"),
        ({"min_amount": 50, "max_amount": 20}, r"max_amount must be a finite number >= min_amount \(50\), got 20"),
        ({"disorder": -1}, "disorder must be >= 0, got -1"),
        ({"start": datetime(2026, 3, 1)}, "start must be timezone-aware UTC"),
    ],
)
def test_invalid_parameters_name_the_parameter_and_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        order_pipe(**kwargs)


def test_repr_says_what_the_pipe_is():
    assert repr(order_pipe(seed=2)) == (
        "order_pipe(seed=2, rate=0.05/s, customers=20, mean_step=600s, cancel=0.1, "
        "amounts 5 to 200, disorder=0s)"
    )


def test_as_of_means_just_before_that_moment_in_both_drivers():
    pile = take(order_pipe(seed=1), 50)
    moment = pile[20].arrival_time  # the 21st event arrives exactly then: not yet known
    assert replay(arrived_before(pile, moment)).events_read == 20
    b = batch.orders_table(pile, as_of=moment)
    pd.testing.assert_frame_equal(b, replay(pile[:20]).frame())
    pd.testing.assert_frame_equal(stream.orders_table(pile, as_of=moment), b)
    pd.testing.assert_frame_equal(batch.orders_table(order_pipe(seed=1), as_of=moment), b)


# --------------------------------------------------------------------------- events


@pytest.mark.parametrize(
    "fields, error, message",
    [
        (("", "c", "placed", 1.0, T, T), ValueError, "order_id must be a non-empty string, got ''"),
        (("o", None, "placed", 1.0, T, T), ValueError, "customer must be a non-empty string, got None"),
        (("o", "c", "refund", 1.0, T, T), ValueError, "kind must be one of"),
        (("o", "c", "placed", 0, T, T), ValueError, "amount must be a finite number > 0, got 0"),
        (("o", "c", "placed", math.inf, T, T), ValueError, "amount must be a finite number > 0, got inf"),
        (("o", "c", "placed", True, T, T), ValueError, "amount must be a finite number > 0, got True"),
        (("o", "c", "placed", 1.0, datetime(2026, 1, 1), T), ValueError, "event_time must be timezone-aware UTC"),
    ],
)
def test_bad_event_fields_are_refused_naming_the_field(fields, error, message):
    with pytest.raises(error, match=message):
        OrderEvent(*fields)


@given(st.integers(0, 10_000), st.integers(0, 300))
def test_json_round_trip_is_exact(seed, n):
    for e in take(order_pipe(seed=seed, disorder=30), n % 40):
        assert OrderEvent.from_json(e.to_json()) == e


@pytest.mark.parametrize(
    "data, message",
    [
        ([1, 2], "an order event must be a JSON object"),
        ({"order_id": "o"}, "an order event needs the fields"),
        ({**ev("o", "placed", 0).to_json(), "event_time": "yesterday"}, "event_time must be an ISO 8601 time"),
        ({**ev("o", "placed", 0).to_json(), "arrival_time": "2026-03-01T00:00:00"}, "arrival_time must be timezone-aware"),
    ],
)
def test_from_json_refuses_bad_records_by_name(data, message):
    with pytest.raises((TypeError, ValueError), match=message):
        OrderEvent.from_json(data)


# --------------------------------------------------------------------------- the rule


def test_apply_walks_an_order_through_its_life():
    order = apply(None, ev("o1", "placed", 0, amount=12.5, customer="ann"))
    assert order == Order("o1", "ann", "placed", 12.5, at(0))
    order = apply(order, ev("o1", "paid", 60, amount=12.5, customer="ann"))
    assert order == Order("o1", "ann", "paid", 12.5, at(60))
    order = apply(order, ev("o1", "shipped", 600, amount=12.5, customer="ann"))
    assert order == Order("o1", "ann", "shipped", 12.5, at(600))


@pytest.mark.parametrize(
    "before, event, reason",
    [
        (None, ev("o1", "paid", 1), "paid for unknown order o1 (no placed event before it)"),
        (Order("o1", "c1", "placed", 10.0, T), ev("o1", "placed", 1), "o1 was already placed"),
        (Order("o1", "c1", "placed", 10.0, T), ev("o1", "shipped", 1), "o1 cannot go from placed to shipped"),
        (Order("o1", "c1", "cancelled", 10.0, T), ev("o1", "paid", 1), "o1 cannot go from cancelled to paid"),
        (Order("o1", "c1", "shipped", 10.0, T), ev("o1", "cancelled", 1), "o1 cannot go from shipped to cancelled"),
        (Order("o1", "c1", "placed", 10.0, T), ev("o1", "paid", 1, customer="c2"), "o1 belongs to c1, not c2"),
        (Order("o1", "c1", "placed", 10.0, T), ev("o1", "paid", 1, amount=9.5), "o1 amount 9.5 differs from the 10 placed"),
    ],
)
def test_apply_rejects_what_does_not_fit_with_a_reason(before, event, reason):
    with pytest.raises(RejectedEvent) as info:
        apply(before, event)
    assert info.value.reason == reason


def test_applying_an_event_to_another_order_is_a_wiring_bug():
    with pytest.raises(ValueError, match="event for o2 applied to order o1"):
        apply(Order("o1", "c1", "placed", 10.0, T), ev("o2", "paid", 1))


# A small case, checked by hand.
HAND = [
    ev("o1", "placed", 0, 10.0, "ann"),
    ev("o2", "placed", 5, 20.0, "bob"),
    ev("o1", "paid", 10, 10.0, "ann"),
    ev("o3", "shipped", 12, 30.0, "cy"),  # rejected: unknown order
    ev("o2", "cancelled", 15, 20.0, "bob"),
    ev("o1", "shipped", 20, 10.0, "ann"),
    ev("o2", "paid", 25, 20.0, "bob"),  # rejected: o2 is cancelled
]


def test_hand_checked_table_changelog_and_rejections():
    r = replay(HAND)
    assert r.table == {
        "o1": Order("o1", "ann", "shipped", 10.0, at(20)),
        "o2": Order("o2", "bob", "cancelled", 20.0, at(15)),
    }
    assert [reason for _, reason in r.rejected] == [
        "shipped for unknown order o3 (no placed event before it)",
        "o2 cannot go from cancelled to paid",
    ]
    assert r.events_read == 7
    log = batch.orders_changelog(HAND)
    assert log.changes[["order_id", "status"]].values.tolist() == [
        ["o1", "placed"], ["o2", "placed"], ["o1", "paid"], ["o2", "cancelled"], ["o1", "shipped"],
    ]
    assert log.table(as_of=at(12))["status"].to_dict() == {"o1": "paid", "o2": "placed"}
    assert log.table(as_of=at(5))["status"].to_dict() == {"o1": "placed"}  # o2 arrives at 5: not yet
    assert log.table(as_of=at(5.001))["status"].to_dict() == {"o1": "placed", "o2": "placed"}
    assert log.status_changes().to_dict() == {"o1": 2, "o2": 1}
    assert log.refunded().index.tolist() == []  # o2 was cancelled before it was paid
    counts = log.status_counts()
    assert counts.columns.tolist() == list(KINDS)
    assert counts.values.tolist() == [[1, 0, 0, 0], [2, 0, 0, 0], [1, 1, 0, 0], [0, 1, 0, 1], [0, 0, 1, 1]]
    assert log.history("o1")["status"].tolist() == ["placed", "paid", "shipped"]
    with pytest.raises(KeyError, match="no changes for order 'o9'"):
        log.history("o9")


def test_refunded_orders_are_those_paid_then_cancelled():
    events = [ev("o1", "placed", 0), ev("o1", "paid", 1), ev("o1", "cancelled", 2), ev("o2", "placed", 3),
              ev("o2", "cancelled", 4)]
    assert batch.orders_changelog(events).refunded().index.tolist() == ["o1"]


def test_status_counts_add_up_to_the_table_at_every_change():
    pile = take(order_pipe(seed=4), 2000)
    log = batch.orders_changelog(pile)
    counts = log.status_counts()
    for moment in counts.index[::97]:
        table = log.table(as_of=moment.to_pydatetime() + timedelta(microseconds=1))
        assert counts.loc[:moment].iloc[-1].to_dict() == table["status"].value_counts(sort=False).to_dict()


# --------------------------------------------------------------------------- batch equals stream

order_ids = st.sampled_from(["o1", "o2", "o3", "o4"])


@st.composite
def any_events(draw):
    """Any events, fitting or not: valid lives, skipped steps, repeats, wrong amounts, ties in arrival time."""
    happened = at(draw(st.integers(0, 600)))
    return OrderEvent(
        draw(order_ids), draw(st.sampled_from(["c1", "c2"])), draw(st.sampled_from(KINDS)),
        draw(st.sampled_from([10.0, 20.0])), happened, happened + timedelta(seconds=draw(st.integers(0, 3))),
    )


@settings(max_examples=50)
@given(st.lists(any_events(), max_size=60))
def test_batch_stream_and_replay_agree_on_any_events(events):
    pile = sorted(events, key=lambda e: e.arrival_time)
    b = batch.orders_changelog(pile)
    s = stream.orders_changelog(pile, batch_size=7)
    pd.testing.assert_frame_equal(b.changes, s.changes)
    pd.testing.assert_frame_equal(b.rejected, s.rejected)
    assert b.events_read == s.events_read == len(pile) == len(b.changes) + len(b.rejected)
    pd.testing.assert_frame_equal(b.table(), replay(pile).frame())
    pd.testing.assert_frame_equal(stream.orders_table(pile), replay(pile).frame())


def test_batch_takes_a_frame_and_refuses_limits_with_it():
    pile = take(order_pipe(seed=1), 100)
    frame = to_frame(pile)
    pd.testing.assert_frame_equal(batch.orders_table(frame), batch.orders_table(pile))
    with pytest.raises(ValueError, match="a DataFrame is already a finite pile"):
        batch.orders_changelog(frame, limit=3)


def test_both_drivers_read_a_pipe_up_to_as_of():
    moment = at(3 * 3600)
    b = batch.orders_table(order_pipe(seed=2), as_of=moment)
    pd.testing.assert_frame_equal(b, stream.orders_table(order_pipe(seed=2), as_of=moment))
    pd.testing.assert_frame_equal(b, replay(arrived_before(order_pipe(seed=2), moment)).frame())
    for driver in (batch, stream):
        with pytest.raises(ValueError, match="as_of must be timezone-aware UTC"):
            driver.orders_table(order_pipe(seed=2), as_of=datetime(2026, 3, 1, 3))


# --------------------------------------------------------------------------- piles out of arrival order


def test_unsorted_piles_give_the_same_table_or_a_clear_refusal_never_a_silent_difference():
    # Regression: on 397 of 600 random unsorted piles the drivers gave different tables, with no warning.
    rng = random.Random(5)
    refused = agreed = 0
    for _ in range(150):
        pile = [
            ev(f"o{rng.randrange(4)}", rng.choice(KINDS), rng.randrange(60), rng.choice([10.0, 20.0]),
               rng.choice(["c1", "c2"]), arrived=rng.randrange(60, 90))
            for _ in range(rng.randrange(1, 25))
        ]
        if rng.random() < 0.3:
            pile.sort(key=lambda e: e.arrival_time)
        b = batch.orders_changelog(pile)
        by_order = {}
        for e in pile:
            by_order.setdefault(e.order_id, []).append(e.arrival_time)
        in_order = all(times == sorted(times) for times in by_order.values())
        try:
            s = stream.orders_changelog(pile, batch_size=rng.choice([1, 3, 100]))
        except OutOfOrderError as err:
            assert not in_order
            assert "Sort the events by arrival time first" in str(err)
            refused += 1
            continue
        assert in_order
        pd.testing.assert_frame_equal(b.changes, s.changes)
        pd.testing.assert_frame_equal(b.rejected, s.rejected)
        moment = at(rng.randrange(60, 91))
        pd.testing.assert_frame_equal(batch.orders_table(pile, as_of=moment), stream.orders_table(pile, as_of=moment))
        agreed += 1
    assert refused > 30 and agreed > 30


def test_placed_arriving_after_paid_in_the_pile_is_refused_by_the_stream_and_sorted_by_the_batch():
    paid = ev("o1", "paid", 10, arrived=12)
    placed = ev("o1", "placed", 5, arrived=11)
    assert batch.orders_table([paid, placed])["status"].tolist() == ["paid"]  # the batch job sorts
    for driver in (stream.orders_changelog, stream.orders_table):
        with pytest.raises(OutOfOrderError, match=(
            r"event 1 \(o1 placed, arrived 2026-03-01 00:00:11\+00:00\) comes after an event of o1 that arrived "
            r"later \(2026-03-01 00:00:12\+00:00\)"
        )):
            driver([paid, placed])
    # Other orders may interleave in any order: each order is folded on its own.
    other = ev("o2", "placed", 0, arrived=1)
    pd.testing.assert_frame_equal(stream.orders_table([placed, paid, other]), batch.orders_table([placed, paid, other]))


def test_the_stream_refuses_what_is_not_an_order_event_or_a_frame():
    with pytest.raises(TypeError, match="event 1 must be an OrderEvent, got str 'paid'"):
        stream.orders_changelog([ev("o1", "placed", 0), "paid"])
    with pytest.raises(TypeError, match="the stream driver reads events one by one, not a DataFrame"):
        stream.orders_table(to_frame([ev("o1", "placed", 0)]))


def test_the_compacted_order_log_is_the_table_and_a_rejected_latest_event_is_not(tmp_path):
    from dataclasses import replace as changed

    from streamlab.log import Log
    from streamlab.orders import compacted_table, order_pipe, publish, read_log, replay, take

    log = Log.create(tmp_path / "orders", partitions=3)
    publish(log, take(order_pipe(seed=4), 600))
    assert compacted_table(log).equals(replay(read_log(log)).frame())
    # An event that does not fit is the order's latest record, but not its state: the two part.
    last = list(read_log(log))[-1]
    publish(log, [changed(last, amount=last.amount + 1)])
    assert len(replay(read_log(log)).rejected) == 1
    assert not compacted_table(log).equals(replay(read_log(log)).frame())
