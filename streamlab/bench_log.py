"""Benchmark the log of lesson 03: what appending, reading, committing and streaming it cost.

Run ``python -m streamlab.bench_log`` (``--help`` for options). In one run, over
the same prebuilt order events, in a temporary directory, it measures

* appending: one record per call (``Log.append``) versus batches (``Log.extend``);
* reading every record back: the log's own reads, and a consumer polling and
  committing after every batch, for several batch sizes (a commit rewrites
  small offset files, which is what costs);
* the bytewax stream driver folding the orders table from the log
  (``LogSource``) versus from the events in memory;

and prints events per second and ratios as a Markdown table.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from streamlab import stream
from streamlab.events import take
from streamlab.log import Log
from streamlab.orders import from_record, order_pipe, publish
from streamlab.stream.logs import LogSource

SEED = 2026


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m streamlab.bench_log", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000, help="order events to write and read")
    parser.add_argument("--partitions", type=int, default=3, help="partitions of the log")
    args = parser.parse_args(argv)
    n = args.events
    events = take(order_pipe(seed=SEED, rate=1.0), n)
    rows: list[tuple[str, float]] = []

    with tempfile.TemporaryDirectory() as tmp:
        one_by_one = Log.create(Path(tmp) / "one", partitions=args.partitions)
        rows.append(("append, one record per call", seconds(
            lambda: [one_by_one.append(e.order_id, e.to_json()) for e in events]
        )))
        log = Log.create(Path(tmp) / "batched", partitions=args.partitions)
        rows.append(("append, batches of 1,000 (extend)", seconds(
            lambda: [publish(log, events[i:i + 1000]) for i in range(0, n, 1000)]
        )))
        rows.append(("read every record (Log.records)", seconds(lambda: sum(1 for _ in log.records()))))
        for batch in (10, 100, 1000):
            name = f"poll{batch}"
            log.add_consumer(name)

            def drain(name=name, batch=batch) -> None:
                consumer = log.consumer(name)
                while consumer.poll(batch):
                    consumer.commit()

            rows.append((f"consumer: poll {batch:,}, then commit", seconds(drain)))
        in_memory = seconds(lambda: stream.orders_table(events))
        from_log = seconds(lambda: stream.orders_table(LogSource(log, decode=from_record)))
        rows.append(("stream orders table, events in memory", in_memory))
        rows.append(("stream orders table, read from the log", from_log))

    print(f"\nstreamlab {version('streamlab')}, bytewax {version('bytewax')}, Python {platform.python_version()}, "
          f"{n:,} order events, {args.partitions} partitions, one run\n")
    print("| what | records/s | time vs batched append |")
    print("|---|---|---|")
    base = rows[1][1]
    for what, secs in rows:
        print(f"| {what} | {n / secs / 1e3:,.0f} k/s | {secs / base:.2f}× |")


if __name__ == "__main__":
    main(sys.argv[1:])
