"""Benchmark fraud detection: the stream versus a plain Python loop applying the same rules.

Run ``python -m streamlab.bench_fraud`` (``--help`` for options). In one run,
over the same prebuilt purchases, it times

* the plain loop: :func:`streamlab.fraud.detect_loop`, the shared rules with a
  dict of card histories, nothing else;
* the bytewax stream keyed by card, at several batch sizes (one purchase at a
  time is slow, so it runs over a tenth of the purchases and is scaled up);
* the nightly batch job (pandas enrichment and sorting, then the same rules);

and prints the per-purchase cost of each relative to the plain loop as a
Markdown table for the README. The goal: the stream within 2x of the loop.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from importlib.metadata import version

from tqdm import tqdm

from streamlab import batch, stream
from streamlab.bench import best_seconds
from streamlab.fraud import detect_loop
from streamlab.purchases import purchases

SEED = 2026


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m streamlab.bench_fraud", description=__doc__.splitlines()[0])
    parser.add_argument("--purchases", type=int, default=200_000, help="purchases to detect fraud in")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs per timing")
    args = parser.parse_args(argv)
    n = args.purchases

    with tqdm(total=7, desc="benchmark", unit="step", file=sys.stderr) as bar:
        bar.set_postfix_str("generating purchases")
        pipe = purchases(seed=SEED, bad=0.001)
        start = time.perf_counter()
        pile = pipe.take(n)
        generate = time.perf_counter() - start
        profiles = pipe.profiles
        bar.update()

        bar.set_postfix_str("plain loop")
        loop = best_seconds(lambda: detect_loop(pile, profiles), args.repeat)
        bar.update()
        streamed: dict[int, float] = {}
        for size in (1000, 100):
            bar.set_postfix_str(f"stream, batch_size={size}")
            streamed[size] = best_seconds(
                lambda size=size: stream.detect_fraud(pile, profiles, batch_size=size), args.repeat
            )
            bar.update()
        bar.set_postfix_str("stream, batch_size=1")
        tenth = pile[: max(n // 10, 1)]
        streamed[1] = best_seconds(lambda: stream.detect_fraud(tenth, profiles, batch_size=1), 1) * (n / len(tenth))
        bar.update()
        bar.set_postfix_str("batch job")
        nightly = best_seconds(lambda: batch.detect_fraud(pile, profiles), args.repeat)
        bar.update()
        bar.set_postfix_str("checking the answers agree")
        found = stream.detect_fraud(pile, profiles), batch.detect_fraud(pile, profiles)
        bar.update()
    alerts = {len(d.alerts) for d in found}
    if len(alerts) != 1:
        raise SystemExit(f"the drivers disagree ({alerts} alerts): fix that before timing them")

    rate = lambda seconds: f"{n / seconds / 1e3:,.0f} k/s"
    days = (pile[-1].arrival_time - pile[0].arrival_time).total_seconds() / 86400
    print(f"\nstreamlab {version('streamlab')}, bytewax {version('bytewax')}, pandas {version('pandas')}, "
          f"Python {platform.python_version()}; {n:,} purchases ({days:.0f} simulated days, "
          f"{len(profiles):,} cards, {alerts.pop():,} alerts); best of {args.repeat}\n")
    print("| what | purchases/s | per-purchase cost vs the plain loop |")
    print("|---|---|---|")
    print(f"| plain Python loop (`fraud.detect_loop`: the shared rules, a dict of card histories) "
          f"| {rate(loop)} | 1.00× |")
    print(f"| **stream** (bytewax, state keyed by card, batch_size=1000) | {rate(streamed[1000])} "
          f"| **{streamed[1000] / loop:.2f}×** |")
    print(f"| stream, batch_size=100 | {rate(streamed[100])} | {streamed[100] / loop:.2f}× |")
    print(f"| stream, batch_size=1 (purchases one at a time) | {rate(streamed[1])} | {streamed[1] / loop:.2f}× |")
    print(f"| batch: the nightly job (pandas join and sort, then the same rules) | {rate(nightly)} "
          f"| {nightly / loop:.2f}× |")
    print(f"| generating the purchases (the pipe itself) | {rate(generate)} | {generate / loop:.2f}× |")


if __name__ == "__main__":
    main()
