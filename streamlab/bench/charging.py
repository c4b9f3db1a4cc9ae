"""Lesson 06's chargers: the stream against a plain loop with the same rules, and pandas, on one process.

The input is built once: the messages of 3,000 chargers on 100 sites (1 % of
them broken, a few unregistered chargers), cut into 8 partitions by charger,
each in arrival order, and, for the plain loop and pandas, all of them in
arrival order.

* :func:`plain_loop` is what a developer would write without a stream
  processor: the course's rules (:class:`~streamlab.ev.Chargers`) fed every
  message as it arrives, the site energy summed per minute in a dict.
* ``stream.charging`` runs the dataflow over the same partitions (in memory:
  the generator is not timed), on one worker, then on two worker threads.
* ``batch.charging`` is the nightly job: sort the pile by charger and time,
  the same rules, pandas sums per site and minute.

Every contender's answer (sessions, energy per charger, site load per minute,
silences, messages set aside) is checked equal to the plain loop's first.
``python -m streamlab.bench scale`` adds processes and memory.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NamedTuple

import pandas as pd

from streamlab import batch, stream
from streamlab.bench import SEED, Benchmark, Contender, Group
from streamlab.charging import Charging
from streamlab.ev import Chargers, Fleet, Message, fleet

MESSAGES, QUICK_MESSAGES = 1_000_000, 20_000
CHARGERS, SITES, PARTITIONS = 3000, 100, 8
#: The seed's production rate: 45 million messages an hour.
SEED_RATE = 45_000_000 / 3600


class Input(NamedTuple):
    """The prebuilt input: the fleet, the cut, the partitions, and every message in arrival order."""

    fleet: Fleet
    until: Any
    piles: list[list[Message]]
    merged: list[Message]


def build_input(messages: int, seed: int = SEED) -> Input:
    """About ``messages`` messages of the benchmark's fleet, cut at a whole minute, in partitions and merged."""
    f = fleet(seed, chargers=CHARGERS, sites=SITES, broken=0.01, outages=0.01, unregistered=10)
    # The fleet sends about this many messages a second (measured on a first hour), so the cut falls near `messages`.
    first_hour = len(f.pile(until=f.start + timedelta(minutes=10))) / 600
    until = f.start + timedelta(minutes=max(1, round(messages / first_hour / 60)))
    piles = [f.pile(until=until, partition=p, partitions=PARTITIONS) for p in range(PARTITIONS)]
    merged = sorted((m for pile in piles for m in pile), key=lambda m: m.arrival_time)
    return Input(f, until, piles, merged)


def plain_loop(data: Input) -> Charging:
    """The rules over every message as it arrives, site energy summed per minute in a dict; no stream processor."""
    rules = Chargers(data.fleet.site_of)
    for message in data.merged:
        rules.feed(message)
    rules.close(data.until)
    load = pd.DataFrame([(site, minute, wh) for (site, minute), wh in rules.load.items()],
                        columns=["site", "minute", "energy_wh"])
    return Charging.build(sessions=rules.sessions, load=load, silences=rules.silences, aside=rules.aside,
                          messages=len(data.merged), used=rules.used)


def same_answer(result: Charging, expected: Charging) -> str | None:
    """How an answer differs from the plain loop's, if it does."""
    differ = result.differences(expected)
    return None if not differ else f"differs from the plain loop in {differ}"


def benchmark(quick: bool = False) -> Benchmark:
    """The charging benchmark over a prebuilt day of the fleet (a small input with ``quick``)."""
    data = build_input(QUICK_MESSAGES if quick else MESSAGES)
    n = len(data.merged)
    reference = Contender("plain Python loop (`plain_loop`: the rules per message, a dict of site-minutes)",
                          plain_loop, same_answer)

    def streamed(workers: int, batch_size: int = 1000):
        return lambda d: stream.charging(d.fleet, until=d.until, partitions=PARTITIONS, piles=d.piles,
                                         workers=workers, batch_size=batch_size)

    main = Group(
        f"{n:,} messages of {CHARGERS:,} chargers on {SITES} sites, {PARTITIONS} partitions", data, n, reference,
        (
            Contender("**stream** (`stream.charging`, 1 worker, batch_size=1000)", streamed(1), same_answer),
            Contender("stream, 2 worker threads (one process: they share the GIL)", streamed(2), same_answer),
            Contender("**pandas**, end to end (`batch.charging`: sort by charger and time, the rules, groupby)",
                      lambda d: batch.charging(d.fleet, until=d.until, pile=d.merged), same_answer),
        ),
    )
    return Benchmark(
        "charging", "Lesson 06: EV charging, one process", "messages", [main],
        notes=[f"The seed's production rate is {SEED_RATE:,.0f} messages/s (45 M an hour). Most of the cost per "
               "message is the rules themselves, in Python (checking the fields, a charger's state, its session): "
               "the plain loop's rate is the ceiling for one process; the stream adds its cost per batch on top. "
               "`python -m streamlab.bench scale` measures 2 processes and memory."],
    )
