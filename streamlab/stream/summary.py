"""The first computation over a pipe, with bytewax: per key and overall count, sum, mean, min, max.

The dataflow keeps one :class:`~streamlab.summary.Stats` per key and nothing
else, so its memory is bounded by the number of keys however many events
arrive. Each time a batch of events arrives it emits the updated answer of every
key the batch touched, stamped with the arrival time of that key's latest event.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from math import isfinite
from typing import Any

import bytewax.operators as op
import pandas as pd
from bytewax.dataflow import Stream
from bytewax.operators import StatefulBatchLogic

from streamlab.events import Event
from streamlab.stream.runner import DEFAULT_BATCH_SIZE, run
from streamlab.summary import (
    OVERALL,
    REJECTED_COLUMNS,
    UPDATE_COLUMNS,
    Stats,
    Summary,
    check_keys,
    empty_rejected,
    merge,
    reject_reason,
    table_from_stats,
)

# What the per-key step emits: an update, or an event routed aside.
_UPDATE = "update"
_REJECTED = "rejected"


class _PerKey(StatefulBatchLogic[Event, tuple, tuple]):
    """The state of one key: its running statistics."""

    def __init__(self, resume: tuple[int, float, float, float] | None) -> None:
        self.stats = Stats(*resume) if resume else Stats()

    def on_batch(self, events: list[Event]) -> tuple[list[tuple], bool]:
        out: list[tuple] = []
        stats = self.stats
        before = stats.count
        for e in events:
            value = e.value
            if value is not None and isfinite(value):
                stats.add(value)
            else:
                out.append((_REJECTED, e, reject_reason(value)))
        if stats.count != before:
            out.append((_UPDATE, events[-1].arrival_time, stats.as_tuple()))
        return out, StatefulBatchLogic.RETAIN

    def snapshot(self) -> tuple[int, float, float, float]:
        return self.stats.as_tuple()


class _Overall(StatefulBatchLogic[tuple, tuple, dict]):
    """The answer over all keys, kept from the latest update of each key."""

    def __init__(self, resume: dict[str, tuple] | None) -> None:
        self.latest: dict[str, tuple] = dict(resume or {})

    def on_batch(self, updates: list[tuple]) -> tuple[list[tuple], bool]:
        for key, known_at, stats in updates:
            self.latest[key] = stats
        # Merging the keys' latest answers (rather than adding deltas to a running
        # total) gives exactly the overall row the final table will show.
        known_at = max(u[1] for u in updates)
        return [(known_at, merge(self.latest.values()))], StatefulBatchLogic.RETAIN

    def snapshot(self) -> dict[str, tuple]:
        return dict(self.latest)


def summary_flow(events: Stream[Event]) -> dict[str, Stream[Any]]:
    """The dataflow: key the events, keep statistics per key and overall, route bad values aside.

    Outputs: ``"per_key"`` ``(key, (known_at, (count, sum, min, max)))``,
    ``"overall"`` the same for :data:`~streamlab.summary.OVERALL`, and
    ``"rejected"`` ``(key, (event, reason))``.
    """
    # Keying a whole batch in one call, not one call per event, is most of the speed.
    keyed = op.flat_map_batch("key_by_store", events, lambda batch: [(e.key, e) for e in batch])
    per_key_out = op.stateful_batch("per_key", keyed, _PerKey)
    split = op.branch("route_rejected", per_key_out, lambda kv: kv[1][0] == _UPDATE)
    per_key = op.map_value("drop_tag", split.trues, lambda tagged: tagged[1:])
    rejected = op.map_value("drop_tag_rejected", split.falses, lambda tagged: tagged[1:])
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
    rows = [(known_at, key, *stats) for key, (known_at, stats) in result["per_key"]]
    rows += [(known_at, OVERALL, *stats) for _, (known_at, stats) in result["overall"]]
    final: dict[str, tuple] = {}
    for known_at, key, *stats in rows:
        if key != OVERALL:
            final[key] = tuple(stats)
    check_keys(final)
    table = table_from_stats(final)
    updates = pd.DataFrame(rows, columns=["known_at", "key", "count", "sum", "min", "max"])
    updates["mean"] = updates["sum"] / updates["count"]
    updates = updates[UPDATE_COLUMNS].sort_values("known_at", kind="stable", ignore_index=True)
    rejected = [
        (e.key, e.value, e.event_time, e.arrival_time, reason)
        for _, (e, reason) in result["rejected"]
    ]
    return Summary(
        table=table,
        updates=updates,
        rejected=pd.DataFrame(rejected, columns=REJECTED_COLUMNS) if rejected else empty_rejected(),
        events_read=result.events_read,
    )
