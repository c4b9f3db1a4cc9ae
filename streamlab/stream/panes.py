"""Panes over a pipe: the windowing engine of :mod:`streamlab.panes` inside a bytewax dataflow.

The dataflow (:func:`panes_flow`) has two steps:

1. ``check``: make sure events come in arrival order, the order the simulated
   clock needs, and send them all to the engine's state;
2. ``panes``: one ``stateful_batch`` step holding the :class:`~streamlab.panes.Engine`.
   It takes a whole batch of events in one loop, as lesson 01's combiner does:
   it routes aside those that cannot be counted (with a reason), feeds the
   others to the engine, and hands on everything the batch made come out. At
   the end of the input it gives every open window its last pane.

**Why one state for every key.** The watermark (per input) and the simulated
clock belong to the whole input: a window of a key that has gone quiet must
still close when other keys' events move the clock on. So the engine that
holds every key's windows sees every event. (A cluster would shard the keys
and send each shard the clock; on one worker one state is the simple, exact
way.) bytewax still does the rest: it reads the input in batches, runs the
steps, and can snapshot the engine's state for recovery.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import bytewax.operators as op
import pandas as pd
from bytewax.dataflow import Stream
from bytewax.operators import StatefulBatchLogic

from streamlab.events import Event
from streamlab.panes import (
    ACCUMULATING,
    DISCARDING,
    LATE,
    ON_TIME,
    Delay,
    Engine,
    Panes,
    Settings,
    Trigger,
    Watermark,
    _result,
    check_settings,
)
from streamlab.stream.runner import DEFAULT_BATCH_SIZE, run
from streamlab.windows import Fold, Window, check_delays, in_arrival_order, reject_reason

__all__ = ["panes", "panes_flow", "panes_tradeoff"]

#: The routing key of the engine's one state.
ALL = "all"


@dataclass
class _Check:
    """Refuse events out of arrival order; remember the last arrival; key every event to the engine's state."""

    last_arrival: datetime | None = None

    def __call__(self, batch: list[Event]) -> list[tuple[str, Event]]:
        last = self.last_arrival
        for e in batch:
            if last is not None and e.arrival_time < last:
                raise ValueError(
                    f"events must come in arrival order: one arrived at {e.arrival_time.isoformat()} "
                    f"after one that arrived at {last.isoformat()}"
                )
            last = e.arrival_time
        self.last_arrival = last
        return [(ALL, e) for e in batch]


class _Panes(StatefulBatchLogic[Event, dict, Engine]):
    """The engine as a bytewax state: a batch of events in, whatever it made come out."""

    def __init__(self, engine: Engine, check: _Check) -> None:
        self.engine = engine
        self.check = check

    def on_batch(self, events: list[Event]) -> tuple[list[dict], bool]:
        good, rejected = [], []
        for e in events:
            reason = reject_reason(e)
            if reason is None:
                good.append(e)
            else:
                rejected.append((e.key, e.value, e.event_time, e.arrival_time, reason))
        self.engine.on_events(good)  # the whole batch in one loop
        out = self.engine.take()
        out["rejected"] = rejected
        return [out], StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[list[dict], bool]:
        # The input has ended: the watermark goes to the end of time.
        self.engine.finish(self.check.last_arrival)
        out = self.engine.take()
        out["rejected"] = []
        return [out], StatefulBatchLogic.RETAIN

    def snapshot(self) -> Engine:
        return self.engine


def panes_flow(settings: Settings, check: _Check | None = None, keep_watermark: bool = True):
    """Build the dataflow's body for :func:`streamlab.stream.run`: one output, ``"panes"``.

    Its items are ``("all", {"panes": [...], "dropped": [...], "late": [...],
    "watermark": [...], "rejected": [...], "counted": n, "peak_held": n})``, one per
    batch of input (rows as :class:`~streamlab.panes.Engine` makes them).
    """
    check = check or _Check()

    def body(events: Stream[Event]) -> dict[str, Stream[Any]]:
        keyed = op.flat_map_batch("check", events, check)
        # One state for every key: see the module's docstring.
        out = op.stateful_batch("panes", keyed, lambda resumed: _Panes(resumed or Engine(settings, keep_watermark), check))
        return {"panes": out}

    return body


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
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Panes:
    """Window a stream as the Beam model does: panes, as the watermark and the triggers say.

    :param events: a pipe (cut by ``limit`` and/or ``until``) or a pile (read in arrival order).
    :param window: :class:`~streamlab.windows.Tumbling`, :class:`~streamlab.windows.Sliding`
        or :class:`~streamlab.windows.Session` (Beam's sessions: ``[first, last + gap)``).
    :param watermark: :class:`~streamlab.panes.Delay` or :class:`~streamlab.panes.Schedule`;
        a number or timedelta means ``Delay(that)``.
    :param allowed_lateness: how long after the watermark passes a window's end late
        events still update it (LATE panes); later ones go to ``dropped``.
    :param trigger: :class:`~streamlab.panes.Trigger`: early and late firings.
    :param mode: ``"discarding"``, ``"accumulating"`` or ``"retracting"``.
    :param lateness: ``"standard"`` (late = the window has closed) or
        ``"bytewax"`` (late = behind the watermark), to compare.
    :param batch_size: events handed to the dataflow at a time; the panes do not depend on it.

    >>> from streamlab.events import pipe
    >>> from streamlab.windows import Tumbling
    >>> panes(pipe(seed=1, keys=2, disorder=2), Tumbling(5), watermark=1, limit=100)
    Panes(stream, Tumbling(length=5s), accumulating: 6 panes, 4 dropped, 0 rejected, 100 events read)
    """
    settings = check_settings(window, watermark, allowed_lateness, trigger, mode, lateness, fold)
    check = _Check()
    result = run(panes_flow(settings, check), in_arrival_order(events, limit, until), batch_size=batch_size,
                 name="panes")
    out: dict[str, Any] = {"panes": [], "dropped": [], "late": [], "watermark": [], "rejected": [], "counted": 0,
                           "peak_held": 0}
    for _, emitted in result["panes"]:
        for name in ("panes", "dropped", "late", "watermark", "rejected"):
            out[name].extend(emitted[name])
        # Running totals: the last batch's are the whole input's.
        out["counted"], out["peak_held"] = emitted["counted"], emitted["peak_held"]
    return _result("stream", settings, out, out["rejected"], result.events_read, check.last_arrival)


def panes_tradeoff(
    events: Iterable[Event] | Iterable[tuple] | pd.DataFrame,
    window: Window,
    delays: Sequence[timedelta | float],
    *,
    allowed_lateness: timedelta | float = 0.0,
    per: str = "input",
    limit: int | None = None,
    until: datetime | None = None,
) -> pd.DataFrame:
    """Completeness against latency: run the stream once per watermark delay, over the same events.

    One row per delay (watermark ``Delay(delay, per=per)``): ``late_share``, the
    share of the events that could be counted that arrived after their window
    closed (counted in a LATE pane, or dropped); ``dropped_share``, those beyond
    ``allowed_lateness``; ``median_latency_s`` and ``max_latency_s``, from a
    window's end to its ON_TIME pane (panes forced out by the end of the input
    left out); ``peak_held``, the most windows the stream held at once.

    >>> from streamlab.events import pipe
    >>> from streamlab.windows import Tumbling
    >>> curve = panes_tradeoff(pipe(seed=1, disorder=4), Tumbling(10), [0, 4], limit=500)
    >>> curve["late_share"].iloc[-1]
    np.float64(0.0)
    """
    pile = list(in_arrival_order(events, limit, until))
    rows = []
    for delay in check_delays(delays):
        result = panes(pile, window, watermark=Delay(delay, per=per), allowed_lateness=allowed_lateness,
                       mode=DISCARDING)
        p = result.panes
        good = result.events_read - len(result.rejected)
        late = int(p.loc[p["timing"] == LATE, "count"].sum()) + len(result.dropped)
        on_time = p[(p["timing"] == ON_TIME) & ~p["at_end"]]
        latency = (on_time["emitted_at"] - on_time["window_end"]).dt.total_seconds()
        rows.append({
            "delay_s": result.settings.watermark.delay.total_seconds(),
            "late_share": late / good if good else 0.0,
            "dropped_share": len(result.dropped) / good if good else 0.0,
            "median_latency_s": latency.median(),
            "max_latency_s": latency.max(),
            "peak_held": result.peak_held,
        })
    return pd.DataFrame(rows)
