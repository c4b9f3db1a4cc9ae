"""Pictures for things versus happenings and log versus queue: one order's life, the table over time, consumer lag."""

from __future__ import annotations

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes

from streamlab.orders import STATUSES, Changelog


def _clock(ax: Axes) -> None:
    # Times on the axis as HH:MM of the simulated UTC clock.
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz="UTC"))


def _together(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names) + " (same lag)"


def order_over_time(changelog: Changelog, order_id: str, *, ax: Axes | None = None) -> Axes:
    """Plot one order's status against the time each change became known: one key of the changelog, as a step line."""
    ax = ax or plt.gca()
    history = changelog.history(order_id)
    levels = history["status"].cat.codes
    times = history["known_at"]
    ax.step(times, levels, where="post", marker="o", label=order_id)
    for when, level, status in zip(times, levels, history["status"], strict=True):
        ax.annotate(str(status), (when, level), textcoords="offset points", xytext=(6, 6), fontsize="small")
    ax.set_yticks(range(len(STATUSES)), STATUSES)
    ax.set_ylim(-0.5, len(STATUSES) - 0.5)
    ax.set_xlabel("known at (arrival time, UTC)")
    ax.set_ylabel("status")
    ax.set_title(f"{order_id}: one key of the changelog")
    _clock(ax)
    return ax


def status_counts(counts: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Plot how many orders were in each status over time (the frame of :meth:`Changelog.status_counts`)."""
    ax = ax or plt.gca()
    for status in counts.columns:
        ax.step(counts.index, counts[status], where="post", label=status)
    ax.set_xlabel("known at (arrival time, UTC)")
    ax.set_ylabel("orders")
    ax.set_title("The table, replayed: orders in each status")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left")
    _clock(ax)
    return ax


def consumer_lag(lag: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Plot each consumer's lag (records in the log it has not committed) over time; ``lag`` as :func:`streamlab.consumers.follow` returns it."""
    ax = ax or plt.gca()
    # Consumers that keep up all sit on zero: distinct line styles keep each one visible, and consumers
    # whose lag is the same at every moment share one line named for all of them (one line drawn over
    # another would hide it while the legend still listed it).
    styles = ["-", "--", ":", "-."]
    lines: dict[tuple, list[str]] = {}
    for name, rows in lag.groupby("consumer", sort=True):
        series = tuple(zip(rows["time"], rows["lag"], strict=True))
        lines.setdefault(series, []).append(str(name))
    for i, (series, names) in enumerate(lines.items()):
        times, lags = zip(*series, strict=True) if series else ((), ())
        ax.step(list(times), list(lags), where="post", label=_together(names), linestyle=styles[i % len(styles)])
    ax.set_xlabel("time (arrival, UTC)")
    ax.set_ylabel("lag (records)")
    ax.set_title("How far behind each consumer is")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left")
    _clock(ax)
    return ax
