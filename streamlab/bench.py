"""Benchmark the first computation: stream versus a plain Python loop versus pandas.

Run ``python -m streamlab.bench`` (``--help`` for options). In one run it measures

* throughput over the same prebuilt events: the bytewax stream summary, a plain
  loop doing the same per-event work (a dict of accumulators), and pandas on a
  prebuilt frame (building that frame is timed on its own line);
* peak memory (resident set size) of the stream and of the batch summary over
  1 M and 10 M events from the pipe, each in a fresh process;

and prints the ratios as a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from importlib.metadata import version

from tqdm import tqdm

from streamlab import batch, pipe, stream, take, to_frame
from streamlab.summary import fold

SEED = 2026


def best_seconds(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def peak_rss_mib(driver: str, events: int) -> float:
    """Peak resident memory of a fresh process that summarizes ``events`` events with ``driver``."""
    out = subprocess.run(
        [sys.executable, "-m", "streamlab.bench", "--child", driver, str(events)],
        check=True, capture_output=True, text=True,
    )
    return float(out.stdout.strip())


def _child(driver: str, events: int) -> None:
    p = pipe(seed=SEED)
    if driver == "stream":
        stream.summarize(p, limit=events, keep_updates=False)
    elif driver == "batch":
        batch.summarize(p, limit=events)
    elif driver != "none":
        raise SystemExit(f"unknown driver {driver!r}")
    print(_peak_rss_kib() / 1024)


def _peak_rss_kib() -> float:
    """This process's peak resident memory, in KiB.

    On Linux, ``ru_maxrss`` carries the parent's peak across fork and exec, so a
    child started by a big parent reports the parent's memory; ``VmHWM`` does not.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m streamlab.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events for the throughput runs")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs per timing")
    parser.add_argument("--memory-sizes", type=int, nargs="*", default=[1_000_000, 10_000_000],
                        help="event counts for the memory runs (none to skip)")
    parser.add_argument("--child", nargs=2, metavar=("DRIVER", "EVENTS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], int(args.child[1]))
        return

    n = args.events
    steps = 7 + 2 * len(args.memory_sizes)
    with tqdm(total=steps, desc="benchmark", unit="step", file=sys.stderr) as bar:
        bar.set_postfix_str("generating events")
        start = time.perf_counter()
        events = take(pipe(seed=SEED), n)
        generate = time.perf_counter() - start
        bar.update()

        bar.set_postfix_str("plain loop")
        loop = best_seconds(lambda: fold(events), args.repeat)
        bar.update()
        bar.set_postfix_str("stream, batch_size=1000")
        streamed = best_seconds(lambda: stream.summarize(events, keep_updates=False), args.repeat)
        bar.update()
        bar.set_postfix_str("stream, batch_size=10000")
        streamed_big = best_seconds(
            lambda: stream.summarize(events, keep_updates=False, batch_size=10_000), args.repeat
        )
        bar.update()
        bar.set_postfix_str("stream, batch_size=1")
        # One event at a time is slow; a tenth of the events is enough to show it.
        tenth = events[: max(n // 10, 1)]
        one_by_one = best_seconds(
            lambda: stream.summarize(tenth, keep_updates=False, batch_size=1), 1
        ) * (len(events) / len(tenth))
        bar.update()
        bar.set_postfix_str("pandas")
        start = time.perf_counter()
        frame = to_frame(events)
        build_frame = time.perf_counter() - start
        bar.update()
        pandas = best_seconds(lambda: batch.summarize(frame), args.repeat)
        bar.update()

        memory: dict[tuple[str, int], float] = {}
        for size in args.memory_sizes:
            for driver in ("stream", "batch"):
                bar.set_postfix_str(f"memory, {driver}, {size:,} events")
                memory[driver, size] = peak_rss_mib(driver, size)
                bar.update()
    baseline = peak_rss_mib("none", 0)

    rate = lambda seconds: f"{n / seconds / 1e6:.2f} M/s"  # noqa: E731
    print(f"\nstreamlab {version('streamlab')}, bytewax {version('bytewax')}, pandas {version('pandas')}, "
          f"Python {platform.python_version()}, {n:,} events, best of {args.repeat}\n")
    print("| what | events/s | per-event cost vs the plain loop |")
    print("|---|---|---|")
    print(f"| plain Python loop (`summary.fold`: a dict of accumulators) | {rate(loop)} | 1.00× |")
    print(f"| **stream** (bytewax, batch_size=1000) | {rate(streamed)} | **{streamed / loop:.2f}×** |")
    print(f"| stream, batch_size=10000 | {rate(streamed_big)} | {streamed_big / loop:.2f}× |")
    print(f"| stream, batch_size=1 (events one at a time) | {rate(one_by_one)} | {one_by_one / loop:.2f}× |")
    print(f"| pandas on a prebuilt frame | {rate(pandas)} | {pandas / loop:.2f}× |")
    print(f"| building that frame from the events | {rate(build_frame)} | {build_frame / loop:.2f}× |")
    print(f"| generating the events (the pipe itself) | {rate(generate)} | {generate / loop:.2f}× |")
    if args.memory_sizes:
        print(f"\nPeak resident memory of a fresh process (MiB; {baseline:.0f} MiB after imports alone):\n")
        sizes = args.memory_sizes
        print("| driver | " + " | ".join(f"{s:,} events" for s in sizes) + " | growth |")
        print("|---|" + "---|" * (len(sizes) + 1))
        for driver in ("stream", "batch"):
            cells = " | ".join(f"{memory[driver, s]:,.0f}" for s in sizes)
            growth = memory[driver, sizes[-1]] / memory[driver, sizes[0]]
            print(f"| {driver} | {cells} | {growth:.2f}× |")


if __name__ == "__main__":
    main()
