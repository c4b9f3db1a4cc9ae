"""Pictures for the lakehouse: when each hour's rows became readable, and what small commits cost."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes


def freshness(tables: Mapping[str, pd.DataFrame], *, ax: Axes | None = None) -> Axes:
    """Plot, per hour of arrival, the longest any of its rows waited to become readable, one line per table.

    ``tables`` maps a label to a frame of :func:`streamlab.lakehouse.freshness`.
    """
    ax = ax or plt.gca()
    markers = ["o", "s", "^", "D"]
    for i, (label, frame) in enumerate(tables.items()):
        hours = frame.index.hour
        waited = frame["longest_wait"].dt.total_seconds() / 3600
        ax.plot(hours, waited, marker=markers[i % len(markers)], label=label)
    ax.set_xlabel("hour the events arrived in (UTC)")
    ax.set_ylabel("longest wait after arriving (hours)")
    ax.set_title("When an hour's orders could be queried")
    ax.set_xticks(range(0, 24, 3))
    ax.set_ylim(bottom=-0.5)
    ax.legend(loc="upper right")
    return ax


def commit_latency(latencies: Mapping[str, Sequence[float]], *, ax: Axes | None = None) -> Axes:
    """Plot each commit's time in milliseconds against its number, one line per table setting."""
    ax = ax or plt.gca()
    for label, seconds in latencies.items():
        ms = pd.Series(seconds, index=range(1, len(seconds) + 1)) * 1000
        ax.plot(ms.index, ms, alpha=0.35, linewidth=1)
        ax.plot(ms.index, ms.rolling(10, min_periods=1).median(), label=f"{label} (median of 10)",
                color=ax.lines[-1].get_color())
    ax.set_xlabel("commit number")
    ax.set_ylabel("commit time (ms)")
    ax.set_title("Small commits: each one slower, unless the table is kept tidy")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left")
    return ax


def batch_sizes(sweep: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Plot commits per day (log scale) against the worst wait before a row is readable, one point per micro-batch size.

    ``sweep`` has columns ``every`` (a label), ``commits`` and ``worst wait (min)``.
    """
    ax = ax or plt.gca()
    ax.plot(sweep["worst wait (min)"], sweep["commits"], marker="o")
    for _, row in sweep.iterrows():
        ax.annotate(str(row["every"]), (row["worst wait (min)"], row["commits"]), textcoords="offset points",
                    xytext=(6, 4), fontsize="small")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("worst wait before a row is readable (minutes)")
    ax.set_ylabel("commits (files) per day")
    ax.set_title("Fresher means more commits, and more small files")
    return ax
