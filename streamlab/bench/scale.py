"""Lesson 06 at scale: 1 worker, 2 worker threads, 2 processes; and memory as the messages grow.

``python -m streamlab.bench scale`` (it runs only when named: it starts
processes and, for memory, runs 10 M messages) measures:

* **Wall time per configuration**, in interleaved rounds over the same input:
  the fleet's partitions are cut once and written to a temporary directory;
  every configuration reads them from there (a process reads only its own
  partitions), so each pays the same cost to read its input. The processes
  are real (``python -m bytewax.run ... -i N -a ...`` over loopback TCP),
  and their start-up is counted: that is what a small job pays.
* **Peak memory** of a fresh process streaming 1 M and 10 M messages from the
  generator (nothing kept but the answer's counts), against the same process
  after its imports alone; and with a slow sink, which waits on every write:
  bytewax reads its sources only as fast as the dataflow moves items on
  (back-pressure), so the messages do not pile up in memory.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.testing import cluster_main

from streamlab import stream
from streamlab.bench import SEED
from streamlab.bench.charging import CHARGERS, PARTITIONS, SEED_RATE, SITES, build_input
from streamlab.bench.memory import _peak_rss_kib
from streamlab.ev import fleet
from streamlab.stream.charging import charging_flow, write_piles

MESSAGES, QUICK_MESSAGES = 1_000_000, 20_000
SIZES, QUICK_SIZES = (1_000_000, 10_000_000), (5_000, 20_000)
ROUNDS, QUICK_ROUNDS = 5, 1
#: Seconds a slow sink waits on each write.
SLOW_SINK = 0.002
CONFIGURATIONS = {"1 worker": (1, 1), "2 worker threads": (2, 1), "2 processes, 1 worker each": (1, 2)}


def wall_times(messages: int, rounds: int) -> tuple[int, dict[str, list[float]]]:
    """Seconds per run of each configuration, rounds interleaved, and how many messages each run read."""
    data = build_input(messages)
    n = len(data.merged)
    expected = None
    times: dict[str, list[float]] = {name: [] for name in CONFIGURATIONS}
    with tempfile.TemporaryDirectory(prefix="streamlab-scale-") as tmp:
        write_piles(data.fleet, until=data.until, partitions=PARTITIONS, directory=Path(tmp))
        for round_ in range(rounds + 1):
            for name, (workers, processes) in CONFIGURATIONS.items():
                start = time.perf_counter()
                answer = stream.charging(data.fleet, until=data.until, partitions=PARTITIONS, piles=Path(tmp),
                                         workers=workers, processes=processes)
                seconds = time.perf_counter() - start
                expected = expected or answer
                if answer.differences(expected):
                    raise AssertionError(f"{name} gave another answer: {answer.differences(expected)}")
                if round_:  # the first round warms up (and checks the answers)
                    times[name].append(seconds)
    return n, times


class _Counting(StatelessSinkPartition):
    def __init__(self, counts: dict, pause: float) -> None:
        self.counts, self.pause = counts, pause

    def write_batch(self, items: list) -> None:
        if self.pause:
            time.sleep(self.pause)  # a slow sink: a database that takes its time over each write
        for item in items:
            self.counts[item[0]] = self.counts.get(item[0], 0) + 1


class CountingSink(DynamicSink):
    """Counts the answer's items by kind and keeps nothing else: a live job hands its answers on.

    With ``pause`` (seconds), every write waits that long first: a slow sink.
    """

    def __init__(self, pause: float = 0.0) -> None:
        self.counts: dict[str, int] = {}
        self.pause = pause

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Counting:
        return _Counting(self.counts, self.pause)


def _child(messages: int, pause: float = 0.0) -> None:
    """In a fresh process: stream about ``messages`` messages from the generator; print the peak RSS in MiB."""
    if messages:
        f = fleet(SEED, chargers=CHARGERS, sites=SITES, broken=0.01, outages=0.01, unregistered=10)
        rate = len(f.pile(until=f.start + timedelta(minutes=10))) / 600
        until = f.start + timedelta(minutes=max(1, round(messages / rate / 60)))
        sink = CountingSink(pause)
        cluster_main(charging_flow(f, until=until, partitions=PARTITIONS, sink=sink), [], 0)
    print(_peak_rss_kib() / 1024)


def peak_rss_mib(messages: int, pause: float = 0.0) -> float:
    """Peak resident memory, in MiB, of a fresh process streaming ``messages`` messages (a sink pausing ``pause`` s)."""
    out = subprocess.run([sys.executable, "-m", "streamlab.bench.scale", str(messages), str(pause)],
                         check=True, capture_output=True, text=True)
    return float(out.stdout.strip())


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}–{max(values):.2f})"


def _growth(label: str, memory: dict[int, float]) -> list[str]:
    """A Markdown table of peak memory by size, with the growth from the smallest size to the largest.

    >>> _growth("stream", {10_000: 110.0, 1_000: 100.0})[-1]
    '| stream | 100 | 110 | 1.10× |'
    """
    sizes = sorted(memory)
    return ["| driver | " + " | ".join(f"{s:,} messages" for s in sizes) + " | growth |",
            "|---|" + "---|" * (len(sizes) + 1),
            f"| {label} | " + " | ".join(f"{memory[s]:,.0f}" for s in sizes)
            + f" | {memory[sizes[-1]] / memory[sizes[0]]:.2f}× |"]


def report(quick: bool = False) -> str:
    """Measure and return the Markdown tables (tiny sizes with ``quick``)."""
    rounds = QUICK_ROUNDS if quick else ROUNDS
    n, times = wall_times(QUICK_MESSAGES if quick else MESSAGES, rounds)
    base = statistics.median(times["1 worker"])
    lines = [
        "### Lesson 06: one worker, two threads, two processes",
        "",
        f"{n:,} messages of {CHARGERS:,} chargers in {PARTITIONS} partitions, read from disk by every "
        f"configuration; wall time, median of {rounds} interleaved rounds (min–max), process start-up included:",
        "",
        "| configuration | wall time | messages/s | × the seed's 12.5 k/s | vs 1 worker |",
        "|---|---|---|---|---|",
    ]
    for name, values in times.items():
        median = statistics.median(values)
        lines.append(f"| {name} | {_spread(values)} | {n / median / 1e3:,.0f} k/s | {n / median / SEED_RATE:.0f}× "
                     f"| {median / base:.2f}× |")
    sizes = QUICK_SIZES if quick else SIZES
    memory = {size: peak_rss_mib(size) for size in sizes}
    baseline = peak_rss_mib(0)
    # Back-pressure: a sink that pauses on every write slows the whole dataflow down; the source is read
    # no faster than the sink writes, so nothing piles up between them.
    slow_sizes = sizes[0] // 4, sizes[0]
    slow = {size: peak_rss_mib(size, SLOW_SINK) for size in slow_sizes}
    lines += ["", "### Lesson 06: peak memory of a fresh process streaming the fleet", "",
              f"MiB; {baseline:.0f} MiB after imports alone:", "", *_growth("stream.charging_flow", memory),
              "", f"The same with a slow sink ({SLOW_SINK * 1000:g} ms per write):", "",
              *_growth("stream.charging_flow, slow sink", slow)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    _child(int(sys.argv[1]), float(sys.argv[2]))
