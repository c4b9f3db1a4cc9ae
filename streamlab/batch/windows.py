"""Event-time windows over a pile, with pandas: the complete answer, and what a stream would set aside.

The batch driver sees the whole pile at once, so it puts every event in its
window(s): its answers are complete, and known when the pile is. Given the
watermark ``delay`` of the stream it is compared with, it also computes,
with the same rule (see :mod:`streamlab.windows`), exactly which events that
stream sets aside as late, and its watermark, so that
:func:`~streamlab.windows.reconcile` can check batch = stream + late.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from streamlab.events import Event, to_frame
from streamlab.summary import rejected_frame
from streamlab.windows import (
    CLOSED_AT_END,
    EPOCH,
    Fold,
    Session,
    Sliding,
    Tumbling,
    Window,
    Windowed,
    check_delay,
    check_fold,
    check_window,
    in_arrival_order,
    late_frame,
    reject_reason,
    watermark_frame,
    windows_frame,
)

__all__ = ["session", "sliding", "tumbling", "windowed"]


def _ns(td: timedelta) -> int:
    return td // timedelta(microseconds=1) * 1000


def windowed(
    events: Iterable[Event] | Iterable[tuple] | pd.DataFrame,
    window: Window,
    *,
    delay: timedelta | float = 0.0,
    fold: Fold | None = None,
    limit: int | None = None,
    until: datetime | None = None,
) -> Windowed:
    """Answer every window of a pile at once: per key and window, count, sum, mean (and ``fold``).

    :param events: a pile (a list of :class:`~streamlab.events.Event` or of
        ``(key, value, event_time, arrival_time)`` tuples, or a frame with those
        columns), or a pipe cut by ``limit`` and/or ``until``. Taken in arrival order.
    :param window: :class:`~streamlab.windows.Tumbling`, :class:`~streamlab.windows.Sliding`
        or :class:`~streamlab.windows.Session`.
    :param delay: the watermark delay of the stream to compare with (timedelta
        or seconds, >= 0). The batch answer does not depend on it; ``late_events``
        lists the events such a stream sets aside.
    :param fold: a :class:`~streamlab.windows.Fold` of your own, computed per window too.

    Every answer is known once the pile is complete: ``emitted_at`` is the
    arrival time of its last event, ``closed_by`` is ``"end of input"``.

    >>> from streamlab.events import pipe
    >>> w = windowed(pipe(seed=1, keys=2), Tumbling(5), limit=100)
    >>> w.windows[["key", "count"]].head(3).values.tolist()
    [['store-0', 20], ['store-0', 24], ['store-0', 5]]
    """
    window, delay, fold = check_window(window), check_delay(delay), check_fold(fold)
    pile = list(in_arrival_order(events, limit, until))
    frame = to_frame(pile)
    frame["key"] = frame["key"].astype("str")
    frame["seq"] = np.arange(len(pile))
    frame["reason"] = pd.Series([reject_reason(e) for e in pile], dtype="object")
    ok = frame["reason"].isna()
    rejected = rejected_frame(frame.loc[~ok])
    good = frame[ok]
    ended_at = frame["arrival_time"].max() if len(frame) else None

    # Which events a stream with this delay sets aside: per key, in arrival
    # order, the watermark an event meets is the latest event time seen before
    # it, minus the delay; it is late if it happened before that.
    latest = good.groupby("key", sort=False)["event_time"].cummax()
    latest_before = latest.groupby(good["key"], sort=False).shift()
    watermark_before = latest_before - delay
    late = (good["event_time"] < watermark_before).to_numpy()
    advances = (latest_before.isna() | (latest > latest_before)).to_numpy()
    watermark = watermark_frame(list(zip(
        good["key"][advances], good["arrival_time"][advances], latest[advances] - delay,
    )))
    late_events = late_frame(list(zip(
        good["key"][late], good["value"][late], good["event_time"][late], good["arrival_time"][late],
        watermark_before[late],
    )))

    # The batch answer puts every good event in its window(s), late or not.
    if isinstance(window, Session):
        placed = _sessions(good, window)
    else:
        placed = _fixed(good, window)
    grouped = placed.groupby(["key", "window_start"], sort=True).agg(
        window_end=("window_end", "max"), count=("value", "size"), sum=("value", "sum"),
    )
    if fold is not None:
        # Events enter a fold in event-time order (ties in arrival order), as in bytewax.
        in_order = placed.sort_values(["event_time", "seq"], kind="stable")
        accs = {
            group: fold.over(pile[i] for i in seqs)
            for group, seqs in in_order.groupby(["key", "window_start"], sort=False)["seq"]
        }
    rows = [
        (key, start, row.window_end, row.count, row.sum,
         accs[key, start] if fold is not None else None, ended_at, CLOSED_AT_END)
        for (key, start), row in zip(grouped.index, grouped.itertuples(index=False))
    ]
    return Windowed(
        driver="batch", window=window, delay=delay, fold=fold,
        windows=windows_frame(rows, fold), late_events=late_events, watermark=watermark,
        rejected=rejected, events_read=len(pile),
        ended_at=None if ended_at is None else ended_at.to_pydatetime(),
    )


def _fixed(good: pd.DataFrame, window: Tumbling | Sliding) -> pd.DataFrame:
    """One row per (event, window it falls in), for tumbling and sliding windows."""
    length, slide = _ns(window.length), _ns(window.slide)
    origin = pd.Timestamp(window.align_to).as_unit("ns").value
    since = good["event_time"].dt.as_unit("ns").astype("int64").to_numpy() - origin
    # Window i covers [origin + i*slide, origin + i*slide + length): the same arithmetic as bytewax.
    first = (since - length) // slide + 1
    last = since // slide
    per_event = last - first + 1
    which = np.repeat(np.arange(len(good)), per_event)
    nth = np.arange(per_event.sum()) - np.repeat(np.cumsum(per_event) - per_event, per_event)
    start = origin + (first[which] + nth) * slide
    placed = good.iloc[which].reset_index(drop=True)
    placed["window_start"] = pd.to_datetime(start, unit="ns", utc=True)
    placed["window_end"] = pd.to_datetime(start + length, unit="ns", utc=True)
    return placed


def _sessions(good: pd.DataFrame, window: Session) -> pd.DataFrame:
    """Each event with its session: a new session starts after a silence longer than ``gap``."""
    by_time = good.sort_values(["key", "event_time", "seq"], kind="stable").reset_index(drop=True)
    new = by_time["key"].ne(by_time["key"].shift()) | (
        by_time["event_time"] - by_time["event_time"].shift() > window.gap
    )
    number = new.cumsum()
    by_time["window_start"] = by_time.groupby(number)["event_time"].transform("min")
    by_time["window_end"] = by_time.groupby(number)["event_time"].transform("max")
    return by_time


def tumbling(
    events: Iterable[Event] | Iterable[tuple] | pd.DataFrame,
    length: timedelta | float,
    *,
    delay: timedelta | float = 0.0,
    fold: Fold | None = None,
    align_to: datetime = EPOCH,
    limit: int | None = None,
    until: datetime | None = None,
) -> Windowed:
    """:func:`windowed` over back-to-back windows of ``length``; see :class:`~streamlab.windows.Tumbling`."""
    return windowed(events, Tumbling(length, align_to), delay=delay, fold=fold, limit=limit, until=until)


def sliding(
    events: Iterable[Event] | Iterable[tuple] | pd.DataFrame,
    length: timedelta | float,
    slide: timedelta | float,
    *,
    delay: timedelta | float = 0.0,
    fold: Fold | None = None,
    align_to: datetime = EPOCH,
    limit: int | None = None,
    until: datetime | None = None,
) -> Windowed:
    """:func:`windowed` over windows of ``length``, one every ``slide``; see :class:`~streamlab.windows.Sliding`."""
    return windowed(events, Sliding(length, slide, align_to), delay=delay, fold=fold, limit=limit, until=until)


def session(
    events: Iterable[Event] | Iterable[tuple] | pd.DataFrame,
    gap: timedelta | float,
    *,
    delay: timedelta | float = 0.0,
    fold: Fold | None = None,
    limit: int | None = None,
    until: datetime | None = None,
) -> Windowed:
    """:func:`windowed` over sessions separated by more than ``gap``; see :class:`~streamlab.windows.Session`."""
    return windowed(events, Session(gap), delay=delay, fold=fold, limit=limit, until=until)
