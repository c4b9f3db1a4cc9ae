"""Benchmark event-time windows: what the stream's bookkeeping costs, and pandas for comparison.

Run ``python -m streamlab.bench_windows`` (``--help`` for options). In one run,
over the same prebuilt events (one-minute tumbling windows, a 5 s watermark
delay, long-tail disorder up to a minute), it measures

* bytewax's ``fold_window`` alone, with the course's simulated clock: the engine's own cost;
* :func:`streamlab.stream.windowed`, which adds numbering, routing bad events
  aside, the watermark trace and recovering each answer's ``emitted_at``;
* the same with ``batch_size=1`` (events one at a time; on a tenth of the events);
* :func:`streamlab.batch.windowed` (pandas, including building its frame);

and prints events per second and the ratios as a Markdown table.
"""

from __future__ import annotations

import argparse
import platform
from importlib.metadata import version

import bytewax.operators as op
from bytewax.operators.windowing import fold_window

from streamlab import batch, pipe, stream, take
from streamlab.bench import best_seconds
from streamlab.stream import run
from streamlab.stream.windows import simulated_clock, windower
from streamlab.windows import Tumbling

SEED = 2026
WINDOW = Tumbling(60)
DELAY = 5.0


def bare_fold_window(events: list) -> None:
    """Only bytewax's windowing: key, fold count and sum per window, nothing else."""
    clock = simulated_clock(DELAY)

    def flow(stream_of_events):
        numbered = op.map("number", stream_of_events, lambda e: (e.key, (0, e)))
        out = fold_window(
            "window", numbered, clock, windower(WINDOW),
            lambda: (0, 0.0), lambda acc, item: (acc[0] + 1, acc[1] + item[1].value),
            lambda a, b: (a[0] + b[0], a[1] + b[1]),
        )
        return {"windows": out.down, "late": out.late}

    run(flow, events)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m streamlab.bench_windows", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="events to window")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs per timing")
    args = parser.parse_args(argv)
    n = args.events
    events = take(pipe(seed=SEED, disorder=60, delays="long_tail"), n)

    bare = best_seconds(lambda: bare_fold_window(events), args.repeat)
    full = best_seconds(lambda: stream.windowed(events, WINDOW, delay=DELAY), args.repeat)
    tenth = events[: max(n // 10, 1)]
    one_by_one = best_seconds(lambda: stream.windowed(tenth, WINDOW, delay=DELAY, batch_size=1), 1) * (n / len(tenth))
    pandas = best_seconds(lambda: batch.windowed(events, WINDOW, delay=DELAY), args.repeat)
    late = stream.windowed(events, WINDOW, delay=DELAY).n_late

    def rate(seconds: float) -> str:
        return f"{n / seconds / 1e3:,.0f} k/s"

    print(f"\nstreamlab {version('streamlab')}, bytewax {version('bytewax')}, pandas {version('pandas')}, "
          f"Python {platform.python_version()}; {n:,} events, {WINDOW!r}, delay {DELAY:g} s "
          f"({late:,} late); best of {args.repeat}\n")
    print("| what | events/s | time vs bytewax's fold_window alone |")
    print("|---|---|---|")
    print(f"| bytewax `fold_window` alone (simulated clock, batch_size=1000) | {rate(bare)} | 1.00× |")
    print(f"| **`stream.windowed`** (+ routing, watermark trace, `emitted_at`) | {rate(full)} | **{full / bare:.2f}×** |")
    print(f"| `stream.windowed`, batch_size=1 | {rate(one_by_one)} | {one_by_one / bare:.2f}× |")
    print(f"| `batch.windowed` (pandas, frame built from the events) | {rate(pandas)} | {pandas / bare:.2f}× |")


if __name__ == "__main__":
    main()
