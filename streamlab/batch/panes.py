"""Panes over a pile, with pandas: every window's complete answer, in one pane, when the pile is complete.

The pile has every event, so nothing is late and nothing waits: each window
gets a single ON_TIME pane at the arrival time of the pile's last event. The
settings that only say how a stream waits (``watermark``, ``allowed_lateness``,
``trigger``, ``mode``, ``lateness``) are accepted so that one call reads the
same in both drivers, and checked, but change nothing here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from streamlab.batch.windows import _fixed
from streamlab.events import Event, to_frame
from streamlab.panes import (
    ACCUMULATING,
    ON_TIME,
    Panes,
    Trigger,
    Watermark,
    check_settings,
    dropped_frame,
    pane_frame,
    watermark_trace,
)
from streamlab.summary import rejected_frame
from streamlab.windows import Fold, Session, Window, in_arrival_order, reject_reason

__all__ = ["panes"]


def panes(
    events: Iterable[Event] | Iterable[tuple] | pd.DataFrame,
    window: Window,
    *,
    watermark: Watermark | timedelta | float = 0.0,
    allowed_lateness: timedelta | float = 0.0,
    trigger: Trigger | None = None,
    mode: str = ACCUMULATING,
    lateness: str = "standard",
    fold: Fold | None = None,
    limit: int | None = None,
    until: datetime | None = None,
) -> Panes:
    """Answer every window of a pile at once: one ON_TIME pane each (count, sum, mean, and ``fold``).

    Sessions are the Beam model's, as in the stream: ``[first event, last event + gap)``,
    a new one when an event comes ``gap`` or more after every earlier one of its key.

    >>> from streamlab.events import COURSE_START as T
    >>> from streamlab.windows import Session
    >>> at = lambda s: T + timedelta(seconds=s)
    >>> pile = [Event("a", 1.0, at(0), at(0)), Event("a", 2.0, at(5), at(5)), Event("a", 4.0, at(7), at(9))]
    >>> panes(pile, Session(5)).panes[["count", "sum"]].values.tolist()
    [[1.0, 1.0], [2.0, 6.0]]
    """
    settings = check_settings(window, watermark, allowed_lateness, trigger, mode, lateness, fold)
    pile = list(in_arrival_order(events, limit, until))
    frame = to_frame(pile)
    frame["key"] = frame["key"].astype("str")
    frame["seq"] = np.arange(len(pile))
    reasons = pd.Series([reject_reason(e) for e in pile], dtype="object", index=frame.index)
    ok = reasons.isna()
    rejected = rejected_frame(frame.loc[~ok].assign(reason=reasons[~ok]))
    good = frame[ok]
    ended_at = frame["arrival_time"].max() if len(frame) else None
    if isinstance(settings.window, Session):
        placed = _sessions(good, settings.window.gap)
    else:
        placed = _fixed(good, settings.window)
    grouped = placed.groupby(["key", "window_start"], sort=True).agg(
        window_end=("window_end", "max"), count=("value", "size"), sum=("value", "sum"),
    )
    accs = {}
    if fold is not None:
        in_order = placed.sort_values(["event_time", "seq"], kind="stable")
        accs = {group: fold.over(pile[i] for i in seqs)
                for group, seqs in in_order.groupby(["key", "window_start"], sort=False)["seq"]}
    rows = [(key, start, row.window_end, row.count, row.sum, accs.get((key, start)), ON_TIME, 0, ended_at, 1, True)
            for (key, start), row in zip(grouped.index, grouped.itertuples(index=False))]
    return Panes(
        driver="batch", settings=settings, panes=pane_frame(rows, fold), dropped=dropped_frame([]), late=dropped_frame([]),
        watermark=watermark_trace([]), rejected=rejected, counted=len(good), events_read=len(pile),
        peak_held=len(rows),  # the pile is all there: every window at once
        ended_at=None if ended_at is None else ended_at.to_pydatetime(),
    )


def _sessions(good: pd.DataFrame, gap: timedelta) -> pd.DataFrame:
    """Each event with its session: ``[first, last + gap)``, a new one when nothing earlier reaches it."""
    by_time = good.sort_values(["key", "event_time", "seq"], kind="stable").reset_index(drop=True)
    reach = by_time["event_time"] + gap
    # The furthest any earlier event of the key reaches; an event at or past it starts a new session.
    reached = reach.groupby(by_time["key"], sort=False).cummax().groupby(by_time["key"], sort=False).shift()
    new = reached.isna() | (by_time["event_time"] >= reached)
    number = new.cumsum()
    by_time["window_start"] = by_time.groupby(number)["event_time"].transform("min")
    by_time["window_end"] = reach.groupby(number).transform("max")
    return by_time
