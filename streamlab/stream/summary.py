"""The first computation over a pipe, with bytewax: per key and overall count, sum, mean, min, max.

The dataflow keeps one ``(count, sum, min, max)`` per key and nothing else, so
its memory is bounded by the number of keys however many events arrive. Each
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
from streamlab.stream.runner import DEFAULT_BATCH_SIZE, run
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


def _combine(batch: list[Event]) -> list[tuple[str, tuple]]:
    """Pre-aggregate one batch: a partial answer per key, and the events that can't be counted.

    This local step (a *combiner*, as Flink's local-global aggregation or Beam's
    combiner lifting) does the per-event work in one tight loop, so the keyed
    state below merges one partial per key per batch instead of every event.
    The answers are the same: count, sum, min and max of a union are those of its parts.
    """
    partial, rejected = fold(batch)
    out: list[tuple[str, tuple]] = [(e.key, (_REJECTED, e, reason)) for e, reason in rejected]
    # A batch's answers are known once its last event has arrived.
    known_at = batch[-1].arrival_time
    out.extend((key, (_PARTIAL, known_at, stats.as_tuple())) for key, stats in partial.items())
    return out


class _PerKey(StatefulBatchLogic[tuple, tuple, StatsTuple]):
    """The state of one key: its running statistics, nothing else."""

    def __init__(self, resume: StatsTuple | None) -> None:
        self.stats: StatsTuple = resume or (0, 0.0, math.inf, -math.inf)

    def on_batch(self, partials: list[tuple]) -> tuple[list[tuple], bool]:
        self.stats = merge([self.stats, *(p[2] for p in partials)])
        return [(partials[-1][1], self.stats)], StatefulBatchLogic.RETAIN

    def snapshot(self) -> StatsTuple:
        return self.stats


class _Overall(StatefulBatchLogic[tuple, tuple, dict]):
    """The answer over all keys, kept from the latest answer of each key."""

    def __init__(self, resume: dict[str, StatsTuple] | None) -> None:
        self.latest: dict[str, StatsTuple] = dict(resume or {})

    def on_batch(self, updates: list[tuple]) -> tuple[list[tuple], bool]:
        for key, known_at, stats in updates:
            self.latest[key] = stats
        # Merging the keys' latest answers (rather than adding deltas to a running
        # total) gives exactly the overall row the final table will show.
        known_at = max(u[1] for u in updates)
        return [(known_at, merge(self.latest.values()))], StatefulBatchLogic.RETAIN

    def snapshot(self) -> dict[str, StatsTuple]:
        return dict(self.latest)


def summary_flow(events: Stream[Event]) -> dict[str, Stream[Any]]:
    """The dataflow: pre-aggregate each batch, keep statistics per key and overall, route bad values aside.

    Outputs: ``"per_key"`` ``(key, (known_at, (count, sum, min, max)))``,
    ``"overall"`` the same for :data:`~streamlab.summary.OVERALL`, and
    ``"rejected"`` ``(key, (event, reason))``.
    """
    combined = op.flat_map_batch("combine", events, _combine)
    split = op.branch("route_rejected", combined, lambda kv: kv[1][0] == _PARTIAL)
    rejected = op.map_value("drop_tag_rejected", split.falses, lambda tagged: tagged[1:])
    per_key = op.stateful_batch("per_key", split.trues, _PerKey)
    to_all = op.map("to_overall", per_key, lambda kv: (OVERALL, (kv[0], *kv[1])))
    overall = op.stateful_batch("overall", to_all, _Overall)
    return {"per_key": per_key, "overall": overall, "rejected": rejected}


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
    updates_mode = "all" if keep_updates else "latest"
    result = run(
        summary_flow, events, limit=limit, until=until, batch_size=batch_size,
        name="summarize",
        # Events routed aside are always kept in full: nothing is dropped.
        keep={"per_key": updates_mode, "overall": updates_mode, "rejected": "all"},
    )
    check_keys(key for key, _ in result["per_key"])
    rows = [(known_at, key, *stats) for key, (known_at, stats) in result["per_key"]]
    rows += [(known_at, OVERALL, *stats) for _, (known_at, stats) in result["overall"]]
    final: dict[str, tuple] = {}
    for known_at, key, *stats in rows:
        if key != OVERALL:
            final[key] = tuple(stats)
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
