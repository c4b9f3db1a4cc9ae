"""The nightly job: the day's pile of order events, validated and appended to the Iceberg table in one commit.

The twin of :func:`streamlab.stream.lakehouse.load_orders`, with the same
rules (:func:`streamlab.lakehouse.validate`, the same rows, the same offsets
recorded), run the way a nightly batch job runs: after the day is over, on all
of it at once. Its table equals the stream's; its rows arrive hours later.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pandas as pd
from pyiceberg.table import Table

from streamlab.lakehouse import (
    Validated,
    batch_end,
    commit,
    committed_offsets,
    dead_letter_row,
    order_row,
    validate,
)
from streamlab.log import Log, Record
from streamlab.stream.lakehouse import Load

__all__ = ["load_orders"]


def load_orders(
    log: Log,
    table: Table,
    *,
    every: timedelta = timedelta(days=1),
    dead_letters: Table | None = None,
    validator: Callable[[Record], Validated] = validate,
    runs_after: timedelta = timedelta(hours=2),
) -> Load:
    """Load the log's order events into ``table``: one commit per ``every`` (a day), ``runs_after`` its end (02:00).

    Everything the log holds is read as one pile, validated, grouped by the
    period it arrived in, and appended period by period; each commit records
    the offsets it covers and its clock (the time the nightly job ran). Rows
    the table holds already (by offset) are skipped, as the stream skips them.
    """
    start = committed_offsets(table)
    dead_start = committed_offsets(dead_letters) if dead_letters is not None else {}
    rows, dead = [], []
    for partition in range(log.partitions):
        for record in log.records(partition):
            checked = validator(record)
            if checked.event is not None and record.offset >= start.get(partition, 0):
                rows.append((partition, record.offset, checked.arrival_time, order_row(checked.event, partition, record.offset)))
            elif checked.event is None and record.offset >= dead_start.get(partition, 0):
                dead.append((partition, record.offset, checked.arrival_time,
                             dead_letter_row(checked.raw, checked.reason, partition, record.offset)))
    load = Load(skipped=sum(start.values()))
    for target, items in ((table, rows), (dead_letters, dead)):
        if target is None or not items:
            continue
        pile = pd.DataFrame(items, columns=["partition", "offset", "arrival", "row"])
        pile["period"] = [batch_end(t, every) for t in pile["arrival"]]
        for end, period in pile.groupby("period", sort=True):
            offsets = (period.groupby("partition")["offset"].max() + 1).to_dict()
            clock = end.to_pydatetime() + runs_after
            commit(target, period["row"].tolist(), offsets=offsets, clock=clock)
            if target is table:
                load.commits.append((clock, len(period)))
    return load
