"""Lesson 03's log: the orders table as a fold over events (stream, plain loop, pandas), and the log's own costs.

The computation is lesson 02's and 03's table of orders: every order event
folded with :func:`streamlab.orders.apply`, from events in memory or read back
from the log. The plain loop is :func:`streamlab.orders.replay` (a dict of
orders, one ``apply`` per event); each driver's table is checked equal to its
table before anything is timed.

The log's own operations (appending one record per call or in batches,
reading, a consumer polling and committing) have no plain loop to compare
with: they are timed against appending in batches of 1,000. They write to
disk, so their wall time also counts waiting for it, which CPU time does not.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from streamlab import batch, stream
from streamlab.bench import SEED, Benchmark, Contender, Group, frame_difference
from streamlab.events import take
from streamlab.log import Log
from streamlab.orders import OrderEvent, Replay, from_record, order_pipe, publish, read_log, replay
from streamlab.stream.logs import LogSource

EVENTS, QUICK_EVENTS = 20_000, 2_000
RECORDS, QUICK_RECORDS = 5_000, 300
PARTITIONS = 3


def same_table(result: pd.DataFrame, expected: pd.DataFrame) -> str | None:
    """How a driver's table of orders differs from the plain loop's, if it does."""
    return frame_difference(expected, result, "the tables of orders")


def same_count(result: int, expected: int) -> str | None:
    """Whether an operation wrote or read every record."""
    return None if result == expected else f"{result:,} records, expected {expected:,}"


def loop_table(result: Replay) -> pd.DataFrame:
    """The plain loop's table as the drivers give theirs."""
    return result.frame()


def benchmark(quick: bool = False) -> Benchmark:
    """The log benchmark, in a temporary directory removed when it ends (a small input with ``quick``)."""
    n = QUICK_EVENTS if quick else EVENTS
    records = QUICK_RECORDS if quick else RECORDS
    events: list[OrderEvent] = take(order_pipe(seed=SEED, rate=1.0), n)
    tmp = tempfile.TemporaryDirectory(prefix="streamlab-bench-")
    root = Path(tmp.name)
    fresh = (root / f"log-{i}" for i in itertools.count())  # a new log for every call that appends

    orders_log = Log.create(root / "orders", partitions=PARTITIONS)
    publish(orders_log, events)
    small = events[:records]
    ops_log = Log.create(root / "operations", partitions=PARTITIONS)
    publish(ops_log, small)
    consumers = (f"reader-{i}" for i in itertools.count())  # a new consumer, at offset 0, for every drain

    in_memory = Group(
        f"The table of orders from {n:,} order events in memory", events, n,
        Contender("plain Python loop (`orders.replay`: a dict of orders, `apply` per event)", replay,
                  lambda r, e: None),
        (
            Contender("**stream** (`stream.orders_table`, batch_size=1000)", stream.orders_table, same_table),
            Contender("**pandas**, end to end (`batch.orders_table`: the frame, then `apply` per row)",
                      batch.orders_table, same_table),
        ),
        answer=loop_table,
    )
    from_log = Group(
        f"The same table, reading the {n:,} events back from a log of {PARTITIONS} partitions", orders_log, n,
        Contender("plain Python loop over `orders.read_log`", lambda log: replay(read_log(log)), lambda r, e: None),
        (
            Contender("**stream** reading the log (`LogSource`, decoding each record)",
                      lambda log: stream.orders_table(LogSource(log, decode=from_record)), same_table),
        ),
        answer=loop_table,
    )

    def append_batches(data: list[OrderEvent]) -> int:
        log = Log.create(next(fresh), partitions=PARTITIONS)
        for i in range(0, len(data), 1000):
            publish(log, data[i:i + 1000])
        return sum(1 for _ in log.records())

    def append_one_by_one(data: list[OrderEvent]) -> int:
        log = Log.create(next(fresh), partitions=PARTITIONS)
        for e in data:
            log.append(e.order_id, e.to_json())
        return sum(1 for _ in log.records())

    def drain(max_records: int):
        def run(_: Any) -> int:
            name = next(consumers)
            ops_log.add_consumer(name)
            consumer = ops_log.consumer(name)
            read = 0
            while polled := consumer.poll(max_records):
                read += len(polled)
                consumer.commit()
            return read
        return run

    operations = Group(
        f"The log's own operations, {records:,} records", small, records,
        Contender("append in batches of 1,000 (`Log.extend`)", append_batches, lambda r, e: None),
        (
            Contender("append one record per call (`Log.append`)", append_one_by_one, same_count),
            Contender("read every record (`Log.records`)", lambda _: sum(1 for _ in ops_log.records()), same_count),
            *(Contender(f"consumer: poll {size:,}, then commit", drain(size), same_count) for size in (10, 100, 1000)),
        ),
        answer=lambda _: records,
        baseline="batched append",
    )
    return Benchmark(
        "log", "Lesson 03: the table of orders as a fold over the log; the log's own costs", "records",
        [in_memory, from_log, operations],
        close=tmp.cleanup,
    )
