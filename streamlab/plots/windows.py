"""Pictures of event time: the event time × arrival time chart, batch against stream, the watermark's trade-off."""

from __future__ import annotations

from collections.abc import Iterable

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import PercentFormatter

from streamlab.events import Event
from streamlab.windows import CLOSED_BY_WATERMARK, Reconciliation, Session, Windowed, in_arrival_order

__all__ = ["batch_versus_stream", "delay_tradeoff", "event_time_chart"]

_CLOCK = mdates.DateFormatter("%H:%M:%S")


def _pick_key(keys: Iterable[str], key: str | None) -> str:
    keys = sorted(set(keys))
    if key is None:
        if not keys:
            raise ValueError("nothing to plot: no events")
        return keys[0]
    if key not in keys:
        raise ValueError(f"key must be one of {keys}, got {key!r}")
    return key


def event_time_chart(
    events: Iterable[Event],
    result: Windowed,
    *,
    key: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Each event as a dot at (when it happened, when it arrived), with the watermark, the windows and the answers.

    For one key (the first, unless ``key`` is given), since each key has its
    own watermark. ``events`` are the events the result was computed from;
    ``result`` is what a driver returned for them (the stream's, usually).

    * dots on the dashed diagonal arrived the moment they happened; the further
      above it, the later they arrived;
    * the watermark is the staircase: at each arrival time (up the y axis), how
      far event time is known to be complete; an event left of it when it
      arrives is late (a red cross);
    * shaded bands are the windows, in event time; each window's answer is the
      short horizontal bar at the height (arrival time) it came out, a filled
      diamond if the watermark closed the window, a hollow one if the input's end did.
    """
    ax = ax or plt.gca()
    everything = list(in_arrival_order(events))  # a pipe must be cut first: this raises if it isn't
    key = _pick_key((e.key for e in everything), key)
    pile = [e for e in everything if e.key == key]
    late = result.late_events[result.late_events["key"] == key]
    late_ids = set(zip(late["event_time"], late["arrival_time"], late["value"]))
    rejected = result.rejected[result.rejected["key"] == key]
    rejected_ids = set(zip(rejected["event_time"], rejected["arrival_time"]))
    on_time = [
        e for e in pile
        if (pd.Timestamp(e.event_time), pd.Timestamp(e.arrival_time), e.value) not in late_ids
        and (pd.Timestamp(e.event_time), pd.Timestamp(e.arrival_time)) not in rejected_ids
    ]
    windows = result.windows[result.windows["key"] == key]

    # Windows, as bands of event time.
    for i, w in enumerate(windows.itertuples(index=False)):
        ax.axvspan(w.window_start, w.window_end, color="C0" if i % 2 == 0 else "C2", alpha=0.08, linewidth=0)
        if isinstance(result.window, Session):
            ax.axvline(w.window_start, color="C2", alpha=0.4, linewidth=0.8)
            ax.axvline(w.window_end, color="C2", alpha=0.4, linewidth=0.8)

    times = [e.event_time for e in pile] + [e.arrival_time for e in pile]
    if times:
        low, high = min(times), max(times)
        ax.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1,
                label="arrived as it happened")

    # The watermark as a staircase: it holds still between the arrivals that move it.
    trace = result.watermark[result.watermark["key"] == key]
    if len(trace):
        marks, arrived = trace["watermark"].tolist(), trace["arrival_time"].tolist()
        end = pd.Timestamp(result.ended_at) if result.ended_at is not None else arrived[-1]
        xs, ys = [], []
        for i, (mark, at) in enumerate(zip(marks, arrived)):
            xs += [mark, mark]
            ys += [at, arrived[i + 1] if i + 1 < len(arrived) else end]
        delay = result.delay.total_seconds()
        ax.plot(xs, ys, color="C1", linewidth=1.5, label=f"watermark (latest event time − {delay:g} s)")

    if on_time:
        ax.plot([e.event_time for e in on_time], [e.arrival_time for e in on_time], "o", color="C0",
                markersize=5, label="event (counted)")
    if len(late):
        ax.plot(late["event_time"], late["arrival_time"], "X", color="C3", markersize=8,
                label="late event (set aside)")

    # Each answer: a bar over its window, at the arrival time it came out.
    closed = windows[windows["closed_by"] == CLOSED_BY_WATERMARK]
    forced = windows[windows["closed_by"] != CLOSED_BY_WATERMARK]
    answers = ((closed, True, "answer out (watermark passed)"), (forced, False, "answer out (end of input)"))
    for part, filled, label in answers:
        if part.empty:
            continue
        ax.hlines(part["emitted_at"], part["window_start"], part["window_end"], color="C4", linewidth=2)
        ax.plot(part["window_end"], part["emitted_at"], "D", color="C4", markersize=6,
                markerfacecolor="C4" if filled else "white", label=label)

    ax.xaxis.set_major_formatter(_CLOCK)
    ax.yaxis.set_major_formatter(_CLOCK)
    ax.set_xlabel("event time: when it happened")
    ax.set_ylabel("arrival time: when it arrived")
    ax.set_title(f"{key}: event time against arrival time ({result.window.label})")
    ax.legend(loc="upper left", fontsize="x-small")
    return ax


def batch_versus_stream(
    reconciliation: Reconciliation,
    *,
    statistic: str = "count",
    key: str | None = None,
    limit: int | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Per window, the batch answer beside the stream's, with the late events' contribution stacked on top.

    ``statistic`` is ``"count"`` or ``"sum"`` (they add up; a mean does not).
    One key: the first, unless ``key`` is given; its first ``limit`` windows (all by default).
    """
    if statistic not in ("count", "sum"):
        raise ValueError(f"statistic must be 'count' or 'sum' (they add up), got {statistic!r}")
    ax = ax or plt.gca()
    table = reconciliation.table
    key = _pick_key(table["key"], key)
    rows = table[(table["key"] == key) & (table["statistic"] == statistic)].head(limit)
    x = np.arange(len(rows))
    width = 0.38
    batch = rows["batch"].astype("float64").to_numpy()
    stream = rows["stream"].astype("float64").to_numpy()
    late = rows["late"].astype("float64").to_numpy()
    ax.bar(x - width / 2, batch, width, color="grey", label="batch (every event)")
    ax.bar(x + width / 2, stream, width, color="C0", label="stream (on time)")
    ax.bar(x + width / 2, late, width, bottom=stream, color="C3", alpha=0.8, label="+ late events")
    ax.set_xticks(x, [t.strftime("%H:%M:%S") for t in rows["window_start"]], rotation=45, ha="right")
    ax.set_xlabel("window start (event time)")
    ax.set_ylabel(statistic)
    ax.set_title(f"{key}: batch = stream + late, window by window ({statistic})")
    # Headroom above the bars for the legend, so it never hides one.
    ax.set_ylim(0, max(batch.max(initial=0.0), (stream + late).max(initial=0.0), 1.0) * 1.25)
    ax.legend(loc="upper center", ncol=3)
    return ax


def delay_tradeoff(curve: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """The watermark's trade-off, measured: share of events late and answer latency, against the delay.

    ``curve`` is the frame :func:`streamlab.stream.delay_tradeoff` returns. The
    late share is on the left axis (dashed: the share Flink or Beam would drop,
    for tumbling windows); the median latency of the answers on a
    second axis on the right (returned axes: the left one).
    """
    ax = ax or plt.gca()
    ax.plot(curve["delay_s"], curve["late_share"], marker="o", color="C3", label="events late (bytewax)")
    if "closed_window_share" in curve:
        ax.plot(curve["delay_s"], curve["closed_window_share"], marker="o", linestyle="--", color="C3",
                alpha=0.6, label="events whose window had closed (dropped by Flink, Beam)")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("watermark delay (s)")
    ax.set_ylabel("events late (set aside)", color="C3")
    right = ax.twinx()
    right.plot(curve["delay_s"], curve["median_latency_s"], marker="s", color="C0", label="median answer latency")
    right.set_ylabel("median answer latency (s)", color="C0")
    right.set_ylim(bottom=0)
    right.grid(False)
    lines = ax.get_lines() + right.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="upper center")
    ax.set_title("Waiting longer: fewer late events, later answers")
    return ax
