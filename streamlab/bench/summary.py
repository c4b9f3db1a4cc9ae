"""Lesson 01's summary (count, sum, mean, min, max per key and overall): stream, plain loop, pandas.

The plain loop is :func:`streamlab.summary.fold`, a dict of accumulators, the
very loop the stream runs over each batch (its combiner). Its answer is the
stream's: the same table, the same events routed aside with the same reasons,
the same number of events read. (When each answer became known depends on the
batch size and is what lesson 01 measures, not this benchmark.)

pandas runs end to end, building its frame from the same events, and also on a
frame built beforehand, to show what building it costs.
"""

from __future__ import annotations

import time
from typing import Any

from streamlab import batch, pipe, stream, take, to_frame
from streamlab.bench import SEED, Benchmark, Contender, Group, frame_difference
from streamlab.compare import agree
from streamlab.events import Event
from streamlab.summary import Summary, fold, rejected_frame, table_from_stats

#: Events in the main input, and in the input of the one-event-at-a-time run (a full run, a quick one).
EVENTS, QUICK_EVENTS = 1_000_000, 20_000
ONE_AT_A_TIME, QUICK_ONE_AT_A_TIME = 50_000, 2_000
#: A few events with a missing value, so that routing them aside is part of the work compared.
MISSING = 0.001


def loop_answer(result: tuple[dict, list], events_read: int) -> tuple[Any, Any, int]:
    """The plain loop's result as the drivers give theirs: the table, the events routed aside, the events read."""
    per_key, rejected = result
    table = table_from_stats({key: stats.as_tuple() for key, stats in per_key.items()})
    rows = [(e.key, e.value, e.event_time, e.arrival_time, reason) for e, reason in rejected]
    return table, rejected_frame(rows), events_read


def same_summary(result: Summary, expected: tuple[Any, Any, int]) -> str | None:
    """How a driver's :class:`~streamlab.summary.Summary` differs from the plain loop's answer, if it does."""
    table, rejected, events_read = expected
    agreement = agree(table, result.table, names=("plain loop", "driver"))
    if not agreement.ok:
        return agreement.message()
    if result.events_read != events_read:
        return f"read {result.events_read:,} events, the plain loop {events_read:,}"
    return frame_difference(rejected, result.rejected, "the events routed aside")


def benchmark(quick: bool = False) -> Benchmark:
    """The summary benchmark over seeded events (a small input with ``quick``)."""
    n = QUICK_EVENTS if quick else EVENTS
    few = QUICK_ONE_AT_A_TIME if quick else ONE_AT_A_TIME
    start = time.perf_counter()
    events: list[Event] = take(pipe(seed=SEED, missing=MISSING), n)
    generating = time.perf_counter() - start
    frame = to_frame(events)  # for the "prebuilt frame" row only; every other contender reads the list

    def loop(data: list[Event]) -> tuple[dict, list]:
        return fold(data)

    def answer(data: list[Event]):
        return lambda result: loop_answer(result, len(data))

    reference = Contender("plain Python loop (`summary.fold`: a dict of accumulators)", loop, lambda r, e: None)
    main = Group(
        f"{n:,} events", events, n, reference,
        (
            Contender("**stream** (bytewax, batch_size=1000, the default)",
                      lambda data: stream.summarize(data, keep_updates=False), same_summary),
            Contender("stream, batch_size=10000",
                      lambda data: stream.summarize(data, keep_updates=False, batch_size=10_000), same_summary),
            Contender("**pandas**, end to end (building the frame from the events included)",
                      batch.summarize, same_summary),
            Contender("pandas on a frame built beforehand (building it not timed)",
                      lambda data: batch.summarize(frame), same_summary),
        ),
        answer=answer(events),
    )
    first = events[:few]
    one_at_a_time = Group(
        f"Events one at a time, over the first {few:,} events", first, few, reference,
        (Contender("stream, batch_size=1", lambda data: stream.summarize(data, keep_updates=False, batch_size=1),
                   same_summary),),
        answer=answer(first),
    )
    return Benchmark(
        "summary", "Lesson 01: count, sum, mean, min, max per key and overall", "events",
        [main, one_at_a_time],
        notes=[f"Generating the {n:,} events (the pipe itself: Python objects with two datetimes each) took "
               f"{generating:.1f} s of wall time, {n / generating / 1e3:,.0f} k events/s, once: every contender "
               "reads the same prebuilt list."],
    )
