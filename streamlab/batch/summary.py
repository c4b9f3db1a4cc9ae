"""The first computation over a pile, with pandas: per key and overall count, sum, mean, min, max."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import numpy as np
import pandas as pd

from streamlab.events import Event, pile_frame
from streamlab.summary import (
    INFINITE,
    MISSING,
    OVERALL,
    Summary,
    check_keys,
    finish_table,
    rejected_frame,
    updates_frame,
)


def summarize(
    events: Iterable[Event] | pd.DataFrame,
    *,
    limit: int | None = None,
    until: datetime | None = None,
) -> Summary:
    """Summarize a pile all at once: the answer is known when the pile is complete.

    ``events`` is a pile (a list of events or a frame from :func:`~streamlab.events.to_frame`),
    or a pipe cut by ``limit`` (the first events to arrive) and/or ``until``
    (those that arrived before that time). Events whose value is missing or
    infinite are routed to ``rejected`` with a reason.

    >>> from streamlab.events import pipe
    >>> s = summarize(pipe(seed=1, keys=2), limit=100)
    >>> s.table["count"].tolist()
    [49, 51, 100]
    """
    frame = pile_frame(events, limit=limit, until=until)
    check_keys(frame["key"].unique().tolist())

    missing = frame["value"].isna()
    infinite = np.isinf(frame["value"].fillna(0.0))
    good = frame[~(missing | infinite)]
    rejected = rejected_frame(
        frame[missing | infinite].assign(reason=np.where(missing[missing | infinite], MISSING, INFINITE))
    )

    grouped = good.groupby("key", sort=True, observed=True)["value"].agg(["count", "sum", "min", "max"])
    grouped.index = grouped.index.astype("str")
    if len(good):
        grouped.loc[OVERALL] = [len(good), good["value"].sum(), good["value"].min(), good["value"].max()]
    table = finish_table(grouped)

    # The batch job answers once, after the last event of the pile has arrived.
    known_at = frame["arrival_time"].max() if len(frame) else pd.NaT
    updates = updates_frame(table.reset_index().assign(known_at=known_at))
    return Summary(table=table, updates=updates, rejected=rejected, events_read=len(frame))
