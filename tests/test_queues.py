"""The queue: concurrent competing consumers each take different items; every item is delivered exactly once."""

from collections import Counter

import pytest

from streamlab.queues import compete, drain


@pytest.mark.parametrize(
    "n, consumers, work, maxsize",
    [
        (5000, 4, 0.0, 0),     # as fast as possible: the threads race for every item
        (300, 3, 0.001, 0),    # consumers that take time: everybody gets a share
        (2000, 5, 0.0, 8),     # a small bounded queue: the producer waits for the consumers
        (1, 3, 0.0, 0),        # fewer items than consumers
        (0, 2, 0.0, 0),        # nothing at all
    ],
)
def test_every_item_is_delivered_exactly_once_across_competing_consumers(n, consumers, work, maxsize):
    items = [f"order-{i}" for i in range(n)]
    deliveries = compete(items, consumers, work=work, maxsize=maxsize)
    delivered = Counter(item for taken in deliveries.taken.values() for item in taken)
    assert delivered == Counter(items)  # no loss, no duplicate
    assert deliveries.total == n and deliveries.duplicates == [] and deliveries.missing(items) == []
    assert len(deliveries.taken) == consumers
    # Each consumer took its items in the order they were put: a queue is first in, first out.
    order = {item: i for i, item in enumerate(items)}
    for taken in deliveries.taken.values():
        assert [order[item] for item in taken] == sorted(order[item] for item in taken)


def test_slow_consumers_share_the_work():
    deliveries = compete(range(300), ["a", "b", "c"], work=0.002)
    assert all(count > 0 for count in deliveries.counts.values())


def test_the_checks_can_fail():
    deliveries = compete(range(10), 2)
    deliveries.taken["consumer-0"].append(3)  # as if an item had been delivered twice
    assert deliveries.duplicates == [3]
    assert deliveries.missing(range(12)) == [10, 11]


def test_once_taken_an_item_is_gone_a_late_consumer_sees_nothing_of_the_past():
    deliveries = compete(range(50), 3)
    assert deliveries.queue.qsize() == 0
    assert drain(deliveries.queue) == []
    deliveries.queue.put("new")
    assert drain(deliveries.queue) == ["new"] and drain(deliveries.queue) == []


def test_a_failing_producer_stops_the_consumers_and_raises():
    def broken():
        yield 1
        raise RuntimeError("the shop went down")

    with pytest.raises(RuntimeError, match="the shop went down"):
        compete(broken(), 2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"consumers": 0}, "consumers must be >= 1, got 0"),
        ({"consumers": ["a", "a"]}, "consumers must be a count >= 1 or distinct non-empty names"),
        ({"consumers": []}, "consumers must be a count >= 1 or distinct non-empty names"),
        ({"work": -1}, "work must be seconds from 0 to 1, got -1"),
        ({"maxsize": -1}, "maxsize must be an int >= 0, got -1"),
    ],
)
def test_bad_parameters_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        compete(range(3), **kwargs)
