"""Lesson 09's lakehouse: commit time as a table's history grows, and rows/s of the streaming sink against the nightly append.

``python -m streamlab.bench lakehouse`` (run only when named: it makes
thousands of real Iceberg commits on disk) measures two things.

**Commit time against commit number.** 210 commits of 10 rows each into a
fresh table with pyiceberg's default properties and into one with the
properties the lesson recommends (:data:`streamlab.lakehouse.RECOMMENDED`,
snapshots expired every 10 commits, the latest 10 kept); the two tables are
filled in interleaved rounds, and each round's figure is the median commit
time of commits 16-25 ("at commit 20") and 196-205 ("at commit 200"). The
report gives the median of the rounds and their min-max, and the ratio of the
two. The two tables must hold the same rows (checked first).

**Loading a day.** The same day of orders (12,575 records at the lesson's
rate of 0.05 a second, 5 % damaged) loaded from the log into a fresh table: a
plain Python loop that validates and commits hourly micro-batches with
:func:`streamlab.lakehouse.commit` (the reference: its table is checked equal
to each contender's first), the bytewax stream with hourly and 15-minute
micro-batches, and the nightly job's one append, in interleaved rounds
(:func:`streamlab.bench.measure`).
"""

from __future__ import annotations

import itertools
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from streamlab import lakehouse as lh
from streamlab.batch import lakehouse as nightly
from streamlab.bench import SEED, Benchmark, Contender, Group, frame_difference, measure, table
from streamlab.events import COURSE_START, arrived_before
from streamlab.log import Log
from streamlab.orders import order_pipe
from streamlab.stream import lakehouse as streaming

#: Commits per table, and the windows whose median commit time is "at commit 20" and "at commit 200".
COMMITS, EARLY, LATE = 210, range(16, 26), range(196, 206)
QUICK_COMMITS, QUICK_EARLY, QUICK_LATE = 20, range(3, 8), range(13, 18)
ROWS_PER_COMMIT = 10
ROUNDS, QUICK_ROUNDS = 5, 2
#: Hours of orders loaded, at the lesson's default rate (0.05 orders a second).
HOURS, QUICK_HOURS = 24, 1


def _names() -> Callable[[str], str]:
    counter = itertools.count()
    return lambda prefix: f"shop.{prefix}_{next(counter)}"


def commit_curve(catalog: Any, rows: list[dict], commits: int, *, tidy: bool, name: str) -> tuple[list[float], list[float], Any]:
    """Commit ``commits`` batches of rows into a fresh table; wall and CPU seconds of each commit, and the table."""
    table = lh.create_table(catalog, name, properties=lh.RECOMMENDED if tidy else {})
    walls, cpus = [], []
    for number in range(1, commits + 1):
        batch = rows[(number - 1) * ROWS_PER_COMMIT:number * ROWS_PER_COMMIT]
        wall, cpu = time.perf_counter(), time.process_time()
        lh.commit(table, batch, offsets={0: number * ROWS_PER_COMMIT}, clock=batch[-1]["arrival_time"])
        if tidy and number % 10 == 0:
            lh.expire(table, keep=10)  # its time is this commit's: a writer that expires pays for it here
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return walls, cpus, table


def _day(hours: int) -> tuple[list[dict], list[dict]]:
    events = list(arrived_before(order_pipe(seed=SEED), COURSE_START + timedelta(hours=hours)))
    raw = lh.raw_orders(events, seed=SEED, damaged=0.05)
    rows = [lh.order_row(e, 0, i) for i, e in enumerate(events)]
    return raw, rows


def commit_report(quick: bool) -> str:
    """Measure commit time at commit 20 and 200 (5 and 15 with ``quick``) with and without upkeep; Markdown."""
    commits, early, late = (QUICK_COMMITS, QUICK_EARLY, QUICK_LATE) if quick else (COMMITS, EARLY, LATE)
    rounds = QUICK_ROUNDS if quick else ROUNDS
    _, rows = _day(HOURS)
    if len(rows) < commits * ROWS_PER_COMMIT:
        raise ValueError(f"{len(rows)} rows are too few for {commits} commits of {ROWS_PER_COMMIT}")
    names = _names()
    figures: dict[str, dict[str, list[float]]] = {
        setting: {"early": [], "late": [], "early_cpu": [], "late_cpu": [], "ratio": [], "ratio_cpu": []}
        for setting in ("default", "tidy")
    }
    with tempfile.TemporaryDirectory() as tmp:
        catalog = lh.open_warehouse(tmp)
        # Answers first: both settings hold the same rows.
        _, _, plain = commit_curve(catalog, rows, 3, tidy=False, name=names("check"))
        _, _, tidy = commit_curve(catalog, rows, 3, tidy=True, name=names("check"))
        difference = frame_difference(lh.read(plain), lh.read(tidy), "the two tables' rows")
        if difference:
            raise AssertionError(difference)
        for _ in range(rounds):
            for setting in ("default", "tidy"):
                walls, cpus, _ = commit_curve(catalog, rows, commits, tidy=setting == "tidy", name=names(setting))
                at = figures[setting]
                at["early"].append(statistics.median(walls[i - 1] for i in early))
                at["late"].append(statistics.median(walls[i - 1] for i in late))
                at["early_cpu"].append(statistics.median(cpus[i - 1] for i in early))
                at["late_cpu"].append(statistics.median(cpus[i - 1] for i in late))
                at["ratio"].append(at["late"][-1] / at["early"][-1])
                at["ratio_cpu"].append(at["late_cpu"][-1] / max(at["early_cpu"][-1], 1e-9))

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:.0f} ms ({min(values) * 1000:.0f}–{max(values) * 1000:.0f})"

    def ratio(values: list[float]) -> str:
        return f"{statistics.median(values):.2f}× ({min(values):.2f}–{max(values):.2f})"

    first, last = (early.start + early.stop - 1) // 2, (late.start + late.stop - 1) // 2  # 20 and 200
    labels = {"default": "pyiceberg's default table properties",
              "tidy": "**recommended** (`lh.RECOMMENDED`: manifest merging, old metadata deleted) + snapshots expired every 10 commits"}
    lines = [
        "### Lesson 09: Iceberg commit time as the table's history grows",
        "",
        f"{commits} commits of {ROWS_PER_COMMIT} rows into a fresh table; median of commits {early.start}–{early.stop - 1} "
        f"(\"at commit {first}\") and {late.start}–{late.stop - 1} (\"at commit {last}\"); median of {rounds} interleaved "
        "rounds (min–max):",
        "",
        f"| table | wall, at commit {first} | wall, at commit {last} | wall, {last} vs {first} | CPU, {last} vs {first} |",
        "|---|---|---|---|---|",
    ]
    for setting in ("default", "tidy"):
        at = figures[setting]
        lines.append(f"| {labels[setting]} | {ms(at['early'])} | {ms(at['late'])} | {ratio(at['ratio'])} "
                     f"| {ratio(at['ratio_cpu'])} |")
    return "\n".join(lines) + "\n"


def load_benchmark(quick: bool) -> Benchmark:
    """Loading a day from the log: the plain loop, the stream (hourly and 15-minute micro-batches), the nightly job."""
    hours = QUICK_HOURS if quick else HOURS
    raw, _ = _day(hours)
    tmp = tempfile.TemporaryDirectory()
    log = Log.create(Path(tmp.name) / "log", partitions=1)
    lh.publish_raw(log, raw)
    catalog = lh.open_warehouse(tmp.name)
    names = _names()

    def loop(data: Log) -> Any:
        # The plain loop: validate each record, cut hourly micro-batches by arrival, one commit each.
        table = lh.create_table(catalog, names("loop"))
        pending: list[dict] = []
        end = None
        next_offset = 0
        for record in data.records(0):
            checked = lh.validate(record)
            if checked.event is not None:
                batch_end = lh.batch_end(checked.arrival_time, timedelta(hours=1))
                if end is not None and batch_end > end:
                    lh.commit(table, pending, offsets={0: next_offset}, clock=end)
                    pending = []
                end = batch_end if end is None else max(end, batch_end)
                pending.append(lh.order_row(checked.event, 0, record.offset))
                next_offset = record.offset + 1
        lh.commit(table, pending, offsets={0: next_offset}, clock=end)
        return table

    def stream(every: timedelta) -> Callable[[Log], Any]:
        def run(data: Log) -> Any:
            table = lh.create_table(catalog, names("stream"))
            streaming.load_orders(data, table, every=every)
            return table
        return run

    def batch(data: Log) -> Any:
        table = lh.create_table(catalog, names("nightly"))
        nightly.load_orders(data, table)
        return table

    def same_table(result: Any, expected: Any) -> str | None:
        return frame_difference(lh.read(result), expected, "the tables' rows")

    reference = Contender("plain Python loop (validate, hourly micro-batches, `lakehouse.commit`)", loop,
                          lambda r, e: None)
    group = Group(
        f"{len(raw):,} records ({hours} hours of orders, 5 % damaged)", log, len(raw), reference,
        (
            Contender("**stream** (bytewax, `stream.lakehouse.load_orders`, hourly micro-batches)",
                      stream(timedelta(hours=1)), same_table),
            Contender("stream, 15-minute micro-batches", stream(timedelta(minutes=15)), same_table),
            Contender("**nightly job** (`batch.lakehouse.load_orders`: one append)", batch, same_table),
        ),
        answer=lambda table: lh.read(table),
        baseline="the plain loop",
    )
    bench = Benchmark("lakehouse", "Lesson 09: loading a day of orders into an Iceberg table", "records", [group],
                      notes=["Every contender validates each record with lesson 07's rules and writes the same rows; "
                             "commits, not validation, dominate the stream's time at small micro-batches."],
                      close=tmp.cleanup)
    return bench


def report(quick: bool = False) -> str:
    """Both measurements, as Markdown (tiny sizes with ``quick``)."""
    commits = commit_report(quick)
    bench = load_benchmark(quick)
    rounds = QUICK_ROUNDS if quick else ROUNDS
    measured = measure(bench, rounds)  # removes the warehouse when done (bench.close)
    return commits + "\n" + table(bench, measured, rounds)
