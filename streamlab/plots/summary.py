"""Pictures for the first computation: when the answer is known, and what it costs in memory."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

from streamlab.summary import OVERALL, Summary


def _minutes_since(times: pd.Series, start: pd.Timestamp) -> pd.Series:
    return (times - start).dt.total_seconds() / 60


def answer_over_time(
    stream_summary: Summary,
    batch_summary: Summary,
    *,
    statistic: str = "sum",
    key: str = OVERALL,
    ax: Axes | None = None,
) -> Axes:
    """Plot the stream's running answer against arrival time, and the batch's single answer.

    The x axis is minutes of simulated arrival time since the first stream update.
    """
    ax = ax or plt.gca()
    stream_rows = stream_summary.updates[stream_summary.updates["key"] == key]
    batch_rows = batch_summary.updates[batch_summary.updates["key"] == key]
    if stream_rows.empty or batch_rows.empty:
        raise ValueError(f"no {key!r} answers to plot; keys are {sorted(stream_summary.table.index)}")
    start = stream_rows["known_at"].min()
    x = _minutes_since(stream_rows["known_at"], start)
    ax.step(x, stream_rows[statistic], where="post", label="stream: answer so far")
    done = _minutes_since(batch_rows["known_at"], start)
    answer = batch_rows[statistic]
    ax.axhline(answer.iloc[0], linestyle=":", color="grey", linewidth=1)
    ax.plot(done, answer, marker="*", markersize=14, linestyle="none", color="C3",
            label="batch: one answer, once the pile is complete")
    ax.set_xlabel("arrival time (minutes)")
    ax.set_ylabel(f"{statistic} ({key})")
    ax.set_title(f"When is the {statistic} known?")
    ax.legend(loc="best")
    return ax


def memory_growth(growth: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Plot measured peak memory against events read, for the pile and the pipe.

    ``growth`` is the frame :func:`streamlab.memory.memory_growth` returns.
    """
    ax = ax or plt.gca()
    mib = 2**20
    ax.plot(growth["events"], growth["batch_bytes"] / mib, marker="o", label="batch: holds the pile")
    ax.plot(growth["events"], growth["stream_bytes"] / mib, marker="o", label="stream: holds one state per key")
    ax.set_xlabel("events read")
    ax.set_ylabel("peak memory (MiB)")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_ylim(bottom=0)
    ax.set_title("Memory needed, measured")
    ax.legend(loc="upper left")
    return ax
