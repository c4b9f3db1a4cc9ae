"""Pictures for joins: what a stream holds, record after record, while it waits for the other side."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from streamlab.joins import TemporalJoin, TimeBoundJoin


def join_state(
    joins: Mapping[str, TemporalJoin | TimeBoundJoin],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw, for each stream join, how many records it held after each record it read, against the clock.

    ``joins`` maps a label to a stream driver's answer (its ``state``); the
    batch job's has no state to draw and is refused. ``since`` and ``until``
    cut the clock shown. A dashed line marks each join's peak.
    """
    if not isinstance(joins, Mapping) or not joins:
        raise TypeError(f"joins must be a dict of label to a stream join's answer, got {type(joins).__name__}")
    ax = ax if ax is not None else plt.gca()
    for n, (label, join) in enumerate(joins.items()):
        if not isinstance(join, (TemporalJoin, TimeBoundJoin)):
            raise TypeError(f"joins[{label!r}] must be a TemporalJoin or TimeBoundJoin, got {type(join).__name__}")
        if join.state.empty:
            raise ValueError(f"joins[{label!r}] holds no state to draw: pass the stream driver's answer")
        state = join.state
        held = state["purchases"] + state["confirmations"]
        shown = state["clock"].notna()
        if since is not None:
            shown &= state["clock"] >= since
        if until is not None:
            shown &= state["clock"] <= until
        line, = ax.step(state["clock"][shown], held[shown], where="post", label=f"{label} (peak {join.peak_state})",
                        linewidth=1.2, zorder=3 - n * 0.1)
        ax.axhline(join.peak_state, color=line.get_color(), linestyle="--", linewidth=0.8)
    ax.set_xlabel("clock (arrival time, UTC)")
    ax.set_ylabel("records held")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left")
    return ax
