"""The first computation over a pipe, with bytewax: per key and overall count, sum, mean, min, max.

The dataflow keeps one ``(count, sum, min, max)`` per key, and one for all keys
together, and nothing else, so its memory is bounded by the number of keys
however many events arrive. Each
time a batch of events arrives it emits the updated answer of every key the
batch touched, stamped with the arrival time of the batch's last event: that is
when the answer became known. Smaller batches give earlier answers; larger ones
more events per second (see the benchmark in the README).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import bytewax.operators as op
import pandas as pd
from bytewax.dataflow import Stream
from bytewax.operators import StatefulBatchLogic

from streamlab.events import Event
from streamlab.stream.runner import DEFAULT_BATCH_SIZE, bad_input, run
from streamlab.summary import (
    OVERALL,
    StatsTuple,
    Summary,
    check_keys,
    fold,
    merge,
    rejected_frame,
    table_from_stats,
    updates_frame,
)

# What the combiner emits: a partial answer for one key, or an event routed aside.
_PARTIAL = "partial"
_REJECTED = "rejected"
#: The key of the state of all keys together. No event has an empty key, so no event's key is this.
_ALL = ""


def _combine(batch: list[Event]) -> list[tuple[str, tuple]]:
    """Pre-aggregate one batch: a partial answer per key and one for all keys, and the events that can't be counted.

    This local step (a *combiner*, as Flink's local-global aggregation or Beam's
    combiner lifting) does the per-event work in one tight loop, so the keyed
    state below merges one partial per key per batch instead of every event.
    The answers are the same: count, sum, min and max of a union are those of its parts.
    """
    try:
        partial, rejected = fold(batch)
    except AttributeError:
        # Not worth a check per event on the way in: only a batch that fails is searched.
        wrong = [e for e in batch if not isinstance(e, Event)][:1]  # a list: the wrong item may be None
        if not wrong:
            raise
        raise bad_input(TypeError(f"events must be Events, got {type(wrong[0]).__name__} {wrong[0]!r:.60}")) from None
    out: list[tuple[str, tuple]] = [(e.key, (_REJECTED, e, reason)) for e, reason in rejected]
    if partial:
        # A batch's answers are known once its last event has arrived.
        known_at = batch[-1].arrival_time
        parts = [stats.as_tuple() for stats in partial.values()]
        out.extend((key, (_PARTIAL, known_at, part)) for key, part in zip(partial, parts))
        out.append((_ALL, (_PARTIAL, known_at, merge(parts))))
    return out


class _Running(StatefulBatchLogic[tuple, tuple, StatsTuple]):
    """The state of one key, or of all keys together: its running statistics, nothing else."""

    def __init__(self, resume: StatsTuple | None) -> None:
        self.stats: StatsTuple = resume or (0, 0.0, math.inf, -math.inf)

    def on_batch(self, partials: list[tuple]) -> tuple[list[tuple], bool]:
        count, total, low, high = self.stats
        # merge(), unrolled: this runs for every key of every batch. (For two
        # numbers, math.fsum is the rounded sum, so "+" gives the same bits.)
        for _, _, (c, s, lo, hi) in partials:
            count += c
            total += s
            if lo < low:
                low = lo
            if hi > high:
                high = hi
        self.stats = (count, total, low, high)
        return [(partials[-1][1], self.stats)], StatefulBatchLogic.RETAIN

    def snapshot(self) -> StatsTuple:
        return self.stats


def summary_flow(events: Stream[Event]) -> dict[str, Stream[Any]]:
    """The dataflow: pre-aggregate each batch, keep running statistics per key and overall, route bad values aside.

    Outputs: ``"answers"`` ``(key, (known_at, (count, sum, min, max)))``, the
    key ``""`` standing for all keys, and ``"rejected"`` ``(key, (event, reason))``.
    """
    combined = op.flat_map_batch("combine", events, _combine)
    split = op.branch("route_rejected", combined, lambda kv: kv[1][0] == _PARTIAL)
    rejected = op.map_value("drop_tag_rejected", split.falses, lambda tagged: tagged[1:])
    answers = op.stateful_batch("running", split.trues, _Running)
    return {"answers": answers, "rejected": rejected}


def summarize(
    events: Iterable[Event],
    *,
    limit: int | None = None,
    until: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    keep_updates: bool = True,
) -> Summary:
    """Summarize events as they arrive: an updated answer after every batch.

    ``events`` is a pipe or any iterable of events, read in the order given
    (a pipe's order is arrival order); a pipe must be cut by ``limit`` and/or
    ``until``. ``updates`` holds every answer given along the way (or, with
    ``keep_updates=False``, only the latest per key, so that memory stays
    bounded over a long run); ``table`` the last one for each key.

    >>> from streamlab.events import pipe
    >>> s = summarize(pipe(seed=1, keys=2), limit=100, batch_size=10)
    >>> s.table["count"].tolist(), len(s.updates)
    ([49, 51, 100], 30)
    """
    if not isinstance(keep_updates, bool):
        raise TypeError(f"keep_updates must be True or False, got {keep_updates!r:.60}")
    updates_mode = "all" if keep_updates else "latest"
    result = run(
        summary_flow, events, limit=limit, until=until, batch_size=batch_size,
        name="summarize",
        # Events routed aside are always kept in full: nothing is dropped.
        keep={"answers": updates_mode, "rejected": "all"},
    )
    check_keys(key for key, _ in result["answers"] if key != _ALL)
    answers = result["answers"]
    # Each key's answers, then those for all keys: at the same known_at, a key's answer is listed first.
    rows = [(known_at, key, *stats) for key, (known_at, stats) in answers if key != _ALL]
    rows += [(known_at, OVERALL, *stats) for key, (known_at, stats) in answers if key == _ALL]
    # Each key's last answer is its final one; the table's overall row is merged from those.
    final = {key: tuple(stats) for known_at, key, *stats in rows if key != OVERALL}
    table = table_from_stats(final)
    updates = updates_frame(pd.DataFrame(rows, columns=["known_at", "key", "count", "sum", "min", "max"]))
    # The dataflow groups each batch by key; show the rejected events in arrival order.
    rejected = sorted(
        ((e.key, e.value, e.event_time, e.arrival_time, reason) for _, (e, reason) in result["rejected"]),
        key=lambda row: row[3],
    )
    return Summary(
        table=table,
        updates=updates,
        rejected=rejected_frame(rejected),
        events_read=result.events_read,
    )
