"""What both drivers of the first computation share: the statistics, the rule for bad values, the result.

The computation is "per key and over all keys: count, sum, mean, min, max".
:mod:`streamlab.batch` computes it with pandas over a pile,
:mod:`streamlab.stream` with bytewax over a pipe; both return a :class:`Summary`.
"""

from __future__ import annotations

import math
from math import isfinite
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from streamlab.events import Event, check_utc

__all__ = ["INFINITE", "MISSING", "OVERALL", "STATISTICS", "Stats", "StatsTuple", "Summary", "fold", "merge", "reject_reason", "waits"]

#: The row label of the answer over all keys.
OVERALL = "all keys"
#: The statistics, in the order the tables show them.
STATISTICS = ("count", "sum", "mean", "min", "max")
#: Why an event's value cannot be counted. Both drivers use these exact words.
MISSING = "missing value (None or NaN)"
INFINITE = "infinite value"

UPDATE_COLUMNS = ["known_at", "key", *STATISTICS]
REJECTED_COLUMNS = ["key", "value", "event_time", "arrival_time", "reason"]


def reject_reason(value: float | None) -> str | None:
    """Say why ``value`` cannot be aggregated, or ``None`` if it can.

    >>> reject_reason(2.5) is None
    True
    >>> reject_reason(float("nan"))
    'missing value (None or NaN)'
    >>> reject_reason(float("-inf"))
    'infinite value'
    """
    if value is None or value != value:  # NaN is the one value not equal to itself
        return MISSING
    if math.isinf(value):
        return INFINITE
    return None


StatsTuple = tuple[int, float, float, float]


class Stats:
    """A running count, sum, min and max: the whole state the stream keeps per key.

    >>> s = Stats()
    >>> for v in (3.0, -1.0, 4.0):
    ...     s.add(v)
    >>> s.count, s.sum, s.mean, s.min, s.max
    (3, 6.0, 2.0, -1.0, 4.0)
    """

    __slots__ = ("count", "max", "min", "sum")

    def __init__(self, count: int = 0, sum: float = 0.0, min: float = math.inf, max: float = -math.inf) -> None:
        self.count = count
        self.sum = sum
        self.min = min
        self.max = max

    def add(self, value: float) -> None:
        """Fold one good value in (bad values are routed aside before this)."""
        self.count += 1
        self.sum += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else math.nan

    def as_tuple(self) -> StatsTuple:
        """The state as an immutable tuple, for snapshots and outputs."""
        return (self.count, self.sum, self.min, self.max)

    def __repr__(self) -> str:
        return f"Stats(count={self.count}, sum={self.sum:g}, min={self.min:g}, max={self.max:g})"


@dataclass(frozen=True)
class Summary:
    """The answer of one driver, and when it became known.

    ``table``: one row per key, then the :data:`OVERALL` row; columns
    :data:`STATISTICS`. ``updates``: every answer the driver gave, stamped
    ``known_at`` (the arrival time when it became known); the batch driver gives
    one per row, when the pile is complete, the stream one per key each time new
    events arrive. ``rejected``: the events routed aside, with a reason.
    ``events_read``: how many events the driver read; it always equals the
    overall count plus the rejected events.
    """

    table: pd.DataFrame
    updates: pd.DataFrame
    rejected: pd.DataFrame
    events_read: int

    def __post_init__(self) -> None:
        counted = int(self.table.loc[OVERALL, "count"]) if OVERALL in self.table.index else 0
        if counted + len(self.rejected) != self.events_read:
            raise AssertionError(
                f"counts do not reconcile: read {self.events_read} events, counted {counted}, "
                f"rejected {len(self.rejected)}"
            )

    def as_of(self, time: datetime) -> pd.DataFrame:
        """The answer table as it was known just before ``time``.

        For the stream, each key's latest update before ``time``; for the batch,
        an empty table until the pile was complete. Compare it with a batch over
        the events that arrived before ``time``.
        """
        check_utc("time", time)
        known = self.updates[(self.updates["known_at"] < time) & (self.updates["key"] != OVERALL)]
        latest = known.groupby("key", sort=False).tail(1)
        return table_from_stats(
            {row.key: (row.count, row.sum, row.min, row.max) for row in latest.itertuples(index=False)}
        )

    @property
    def known_at(self) -> datetime | None:
        """The arrival time at which the final answer was known."""
        return None if self.updates.empty else self.updates["known_at"].max().to_pydatetime()


def waits(summary: Summary, pile: pd.DataFrame) -> pd.Series:
    """How long each counted event waited, after it arrived, until an answer included it.

    ``pile`` is the frame of the events the summary read (see
    :func:`~streamlab.events.to_frame`); the result has one row per counted
    event (missing and infinite values were never counted), in seconds.
    For each event it is the first update of its key made at or after its arrival.
    """
    counted = pile[np.isfinite(pile["value"])]
    counted = counted.assign(key=counted["key"].astype("str")).sort_values("arrival_time", kind="stable")
    updates = summary.updates[summary.updates["key"] != OVERALL].sort_values("known_at", kind="stable")
    matched = pd.merge_asof(
        counted, updates[["key", "known_at"]],
        left_on="arrival_time", right_on="known_at", by="key", direction="forward",
    )
    return (matched["known_at"] - matched["arrival_time"]).dt.total_seconds().rename("wait_seconds")


def check_keys(keys) -> None:
    """Refuse a key that would collide with the overall row's label."""
    if OVERALL in set(keys):
        raise ValueError(f"key must not be {OVERALL!r}: that label names the answer over all keys")


def fold(events: Iterable[Event]) -> tuple[dict[str, Stats], list[tuple[Event, str]]]:
    """Fold events into running statistics per key, in one plain Python loop.

    Returns the statistics per key and the events routed aside, each with the
    reason. This is the per-event work of the stream (which folds each batch
    with it); on its own it is the plain-Python reference of the benchmark
    (:mod:`streamlab.bench.summary`).

    >>> from streamlab.events import pipe, take
    >>> per_key, rejected = fold(take(pipe(seed=1, keys=2, missing=0.1), 100))
    >>> sorted(per_key), len(rejected)
    (['store-0', 'store-1'], 10)
    """
    per_key: dict[str, Stats] = {}
    rejected: list[tuple[Event, str]] = []
    for e in events:
        value = e.value
        if value is not None and isfinite(value):
            stats = per_key.get(e.key)
            if stats is None:
                per_key[e.key] = Stats(1, value, value, value)
            else:
                # Stats.add, inlined: a method call per event costs a fifth of this loop's time.
                stats.count += 1
                stats.sum += value
                if value < stats.min:
                    stats.min = value
                if value > stats.max:
                    stats.max = value
        else:
            rejected.append((e, reject_reason(value)))
    return per_key, rejected


def merge(parts: Iterable[StatsTuple]) -> StatsTuple:
    """Combine ``(count, sum, min, max)`` of disjoint groups into those of their union.

    >>> merge([(2, 3.0, 1.0, 2.0), (1, -4.0, -4.0, -4.0)])
    (3, -1.0, -4.0, 2.0)
    """
    parts = list(parts)
    return (
        sum(p[0] for p in parts),
        math.fsum(p[1] for p in parts),
        min((p[2] for p in parts), default=math.inf),
        max((p[3] for p in parts), default=-math.inf),
    )


def table_from_stats(per_key: dict[str, StatsTuple]) -> pd.DataFrame:
    """Build the answer table from final ``(count, sum, min, max)`` per key, adding the overall row."""
    check_keys(per_key)
    rows = dict(sorted(per_key.items()))
    if rows:
        rows[OVERALL] = merge(rows.values())
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=["count", "sum", "min", "max"])
    return finish_table(frame)


def finish_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Give an answer table its mean, column order, dtypes and index name."""
    frame = frame.astype({"count": "int64", "sum": "float64", "min": "float64", "max": "float64"})
    frame["mean"] = frame["sum"] / frame["count"]
    frame = frame[list(STATISTICS)]
    frame.index.name = "key"
    return frame


TIME = "datetime64[ns, UTC]"


def updates_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """Give a frame of updates its column order, dtypes and arrival order (both drivers use this)."""
    known_at = pd.to_datetime(rows["known_at"], utc=True).astype(TIME)
    rows = rows.assign(mean=rows["sum"] / rows["count"], known_at=known_at)
    return rows.astype({"count": "int64"})[UPDATE_COLUMNS].sort_values("known_at", kind="stable", ignore_index=True)


def rejected_frame(rows: list[tuple] | pd.DataFrame) -> pd.DataFrame:
    """Give a frame of rejected events its columns and dtypes (both drivers use this)."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows, columns=REJECTED_COLUMNS)
    return frame[REJECTED_COLUMNS].astype(
        {"key": "str", "value": "float64", "event_time": TIME, "arrival_time": TIME, "reason": "str"}
    ).reset_index(drop=True)
