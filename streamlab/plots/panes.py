"""Pictures of panes: the event time × processing time chart with the watermark and every pane, and the trade-off."""

from __future__ import annotations

from collections.abc import Iterable

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import PercentFormatter

from streamlab.events import Event
from streamlab.panes import EARLY, LATE, ON_TIME, Delay, Panes
from streamlab.plots.windows import _CLOCK, _pick_key
from streamlab.windows import in_arrival_order

__all__ = ["panes_chart", "panes_tradeoff"]

_TIMING_MARKERS = {EARLY: ("^", "C2", "EARLY pane"), ON_TIME: ("D", "C4", "ON_TIME pane"), LATE: ("s", "C3", "LATE pane")}


def _watermark_line(result: Panes, owner: str, end: pd.Timestamp) -> tuple[list, list]:
    """The watermark as (event time, processing time) points: jumps, and slopes where it follows the clock."""
    trace = result.watermark[result.watermark["owner"] == owner]
    wm = result.settings.watermark
    follows = isinstance(wm, Delay) and wm.follow_clock
    xs: list = []
    ys: list = []
    marks, times = trace["watermark"].tolist(), trace["processing_time"].tolist()
    for i, (mark, at) in enumerate(zip(marks, times)):
        until = times[i + 1] if i + 1 < len(times) else end
        xs += [mark, mark + (until - at) if follows else mark]
        ys += [at, until]
    return xs, ys


def panes_chart(
    events: Iterable[Event],
    result: Panes,
    *,
    key: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Events at (when they happened, when they arrived), the watermark, the windows and every pane, for one key.

    * a dot is an event: blue if it was on time, orange if it came after its
      window closed but within allowed lateness, a red cross if it was dropped;
    * the orange line is the watermark (the input's, or the key's): at each
      processing time (up), how far event time is taken to be complete; where
      it follows the clock it climbs at 45°;
    * shaded bands are the windows in event time; each pane is a mark at its
      window's end, at the height (processing time) it came out: a triangle
      for EARLY, a diamond for ON_TIME, a square for LATE.
    """
    ax = ax or plt.gca()
    everything = list(in_arrival_order(events))  # a pipe must be cut first: this raises if it isn't
    key = _pick_key((e.key for e in everything), key)
    pile = [e for e in everything if e.key == key]
    ids = lambda frame: set(zip(frame["event_time"], frame["arrival_time"], frame["value"]))  # noqa: E731
    dropped = ids(result.dropped[result.dropped["key"] == key])
    late = ids(result.late[result.late["key"] == key])
    rejected = result.rejected[result.rejected["key"] == key]
    skipped = set(zip(rejected["event_time"], rejected["arrival_time"]))

    def same(e: Event) -> tuple:
        return pd.Timestamp(e.event_time), pd.Timestamp(e.arrival_time), e.value

    kinds = {"on time": [], "late, counted": [], "dropped": []}
    for e in pile:
        if (pd.Timestamp(e.event_time), pd.Timestamp(e.arrival_time)) in skipped:
            continue
        kinds["dropped" if same(e) in dropped else "late, counted" if same(e) in late else "on time"].append(e)

    panes = result.panes[(result.panes["key"] == key) & (result.panes["sign"] > 0)]
    windows = panes[["window_start", "window_end"]].drop_duplicates().sort_values("window_start")
    for i, w in enumerate(windows.itertuples(index=False)):
        ax.axvspan(w.window_start, w.window_end, color="C0" if i % 2 == 0 else "C2", alpha=0.08, linewidth=0)

    times = [e.event_time for e in pile] + [e.arrival_time for e in pile]
    if times:
        low, high = min(times), max(times)
        ax.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1, label="arrived as it happened")

    owner = key if isinstance(result.settings.watermark, Delay) and result.settings.watermark.per == "key" else "*"
    end = pd.Timestamp(result.ended_at) if result.ended_at is not None else None
    if end is not None:
        xs, ys = _watermark_line(result, owner, end)
        if xs:
            ax.plot(xs, ys, color="C1", linewidth=1.5, label="watermark")

    styles = {"on time": ("o", "C0", 5), "late, counted": ("o", "C1", 6), "dropped": ("X", "C3", 8)}
    for kind, group in kinds.items():
        if group:
            marker, color, size = styles[kind]
            ax.plot([e.event_time for e in group], [e.arrival_time for e in group], marker, color=color,
                    markersize=size, linestyle="none", label=f"event: {kind}")
    for timing, (marker, color, label) in _TIMING_MARKERS.items():
        part = panes[panes["timing"] == timing]
        if len(part):
            ax.plot(part["window_end"], part["emitted_at"], marker, color=color, markersize=7, linestyle="none",
                    markerfacecolor="white", markeredgewidth=1.6, label=label)

    ax.xaxis.set_major_formatter(_CLOCK)
    ax.yaxis.set_major_formatter(_CLOCK)
    ax.set_xlabel("event time: when it happened")
    ax.set_ylabel("processing time: when it arrived")
    ax.set_title(f"{key}: {result.settings.window.label}, {result.settings.mode}")
    # Outside, to the right: up to seven entries, and inside they would cover the events they explain.
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return ax


def panes_tradeoff(curve: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """The watermark's trade-off: late share (left axis) and median on-time latency (right) against the delay."""
    ax = ax or plt.gca()
    ax.plot(curve["delay_s"], curve["late_share"], "o-", color="C3", label="events late (after their window closed)")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("watermark delay (s)")
    ax.set_ylabel("late events")
    right = ax.twinx()
    right.plot(curve["delay_s"], curve["median_latency_s"], "s-", color="C0", label="median on-time latency")
    right.set_ylabel("latency of the on-time answer (s)")
    right.grid(False)
    lines = ax.get_lines() + right.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="upper center", fontsize="x-small")
    ax.set_title("Waiting longer: fewer late events, later answers")
    return ax
