"""Lesson 08's recovery: what bytewax's snapshots cost the running totals per store, read from the sales log.

The computation is lesson 08's: every sale of the log decoded, a running count
and total per store, one row per sale. The plain loop reads the log partition
by partition with the same decoding and the same step
(:func:`streamlab.recovery.sale_from`, :func:`streamlab.recovery.step`), a
dict of states per store; every driver's answer (each store's latest row) is
checked equal to its answer before anything is timed.

The dataflow runs without recovery, then with it: a fresh recovery store for
every call (creating it, a few milliseconds, is part of the time), snapshots at
the end of each epoch. bytewax's default epoch is 10 s of wall-clock time, so
over a run of a second or two it snapshots once, at the end;
``epoch_interval=0`` snapshots after every batch the source hands over (one
per partition), the lesson's deterministic setting. The second group times the
recovery runs against the run without it, which is the figure the lesson's
claim is about. Rows are collected in memory: the sink is not what is timed.
"""

from __future__ import annotations

import itertools
import tempfile
from datetime import timedelta
from pathlib import Path

import pandas as pd

from streamlab.bench import SEED, Benchmark, Contender, Group, frame_difference
from streamlab.events import pipe, take
from streamlab.log import Log
from streamlab.recovery import Row, answer_from, publish_sales, sale_from, step
from streamlab.stream.recovery import _Memory, fresh_store, run_once

SALES, QUICK_SALES = 30_000, 2_000
PARTITIONS, STORES = 3, 50


def loop(log: Log) -> list[Row]:
    """The plain loop: every record of every partition decoded and folded into its store's state, one row each."""
    states: dict[str, tuple[int, int]] = {}
    rows = []
    for partition in range(log.partitions):
        for record in log.records(partition):
            sale = sale_from(record)
            states[sale.store], row = step(states.get(sale.store), sale)
            rows.append(row)
    return rows


def same_answer(result: pd.DataFrame, expected: pd.DataFrame) -> str | None:
    """How a driver's totals differ from the plain loop's, if they do."""
    return frame_difference(expected, result, "the totals per store")


def benchmark(quick: bool = False) -> Benchmark:
    """The recovery benchmark over a sales log in a temporary directory removed when it ends (small with ``quick``)."""
    n = QUICK_SALES if quick else SALES
    tmp = tempfile.TemporaryDirectory(prefix="streamlab-bench-")
    root = Path(tmp.name)
    log = Log.create(root / "sales", partitions=PARTITIONS)
    publish_sales(log, take(pipe(seed=SEED, keys=STORES), n))
    stores = (root / f"recovery-{i}" for i in itertools.count())  # a fresh recovery store for every call

    def batches(size: int) -> int:
        return sum(-(-end // size) for end in log.end_offsets().values())

    def streamed(batch_size: int, recovery: bool, epoch: timedelta | None):
        def run(data: Log) -> pd.DataFrame:
            rows = _Memory()
            attempt = run_once(data, rows, fresh_store(next(stores)) if recovery else None,  # type: ignore[arg-type]
                               batch_size=batch_size, epoch_interval=epoch)
            if attempt.error is not None:
                raise attempt.error
            return answer_from(rows.items)
        return run

    off = Contender("**stream**, recovery off (batch_size=1000)", streamed(1000, False, None), same_answer)
    on = Contender("**stream, recovery on** (10 s epochs, bytewax's default; batch_size=1000)",
                   streamed(1000, True, None), same_answer)
    every_batch = Contender("stream, recovery on, a snapshot after every batch (epoch_interval=0, batch_size=1000)",
                            streamed(1000, True, timedelta(0)), same_answer)
    small = Contender("stream, recovery on, a snapshot after every batch of 100 (epoch_interval=0)",
                      streamed(100, True, timedelta(0)), same_answer)
    against_loop = Group(
        f"Running totals of {n:,} sales ({STORES} stores) read from a log of {PARTITIONS} partitions", log, n,
        Contender("plain Python loop (`sale_from` and `step` per record, a dict of store states)", loop,
                  lambda r, e: None),
        (off, on, every_batch, small),
        answer=answer_from,
    )
    against_off = Group(
        "The same, recovery on against recovery off", log, n, off, (on, every_batch, small),
        baseline="recovery off",
    )
    return Benchmark(
        "recovery", "Lesson 08: what recovery costs (snapshots of the running totals)", "sales",
        [against_loop, against_off], close=tmp.cleanup,
        notes=[
            "Each call with recovery makes a fresh recovery store (one SQLite partition) and snapshots into it: "
            "with 10 s epochs once, at the end of the run; with epoch_interval=0 after every batch of each partition "
            f"({batches(1000)} batches of up to 1,000 or {batches(100)} of up to 100)."
        ],
    )
