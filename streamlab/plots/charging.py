"""Pictures of lesson 06: a site's load, the hot key, and throughput against the seed's rate."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes

__all__ = ["site_load", "skew", "throughput"]


def site_load(load: pd.DataFrame, sites: list[str], *, ax: Axes | None = None) -> Axes:
    """Each named site's load (kW, the energy of each minute as an average power) over the minutes."""
    ax = ax or plt.gca()
    for site in sites:
        rows = load[load["site"] == site]
        ax.step(pd.to_datetime(rows["minute"], utc=True), rows["kw"], where="post", label=site)
    ax.set_xlabel("minute (event time, UTC)")
    ax.set_ylabel("load, kW")
    ax.set_title("Load per site, 1-minute windows")
    ax.legend()
    return ax


def skew(items: Mapping[str, pd.Series], *, ax: Axes | None = None) -> Axes:
    """Items each site's key receives, one series per dataflow, sites sorted by the first; the hot key stands out."""
    ax = ax or plt.gca()
    names = list(items)
    order = items[names[0]].sort_values(ascending=False).index
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        values = items[name].reindex(order).fillna(0)
        shares = values / values.sum()
        ax.bar([x + i * width for x in range(len(order))], shares, width=width, label=name)
    ax.set_xticks([])
    ax.set_xlabel(f"the {len(order)} sites, busiest first")
    ax.set_ylabel("share of the items keyed by site")
    ax.yaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    ax.set_title("What one key gets: the hot site")
    ax.legend()
    return ax


def throughput(rates: Mapping[str, float], seed_rate: float, *, ax: Axes | None = None) -> Axes:
    """Messages per second of each configuration, with the production rate to keep up with as a line."""
    ax = ax or plt.gca()
    names = list(rates)
    ax.barh(names, [rates[n] for n in names], color="C0")
    ax.axvline(seed_rate, color="C3", linestyle="--", label=f"the seed's rate: {seed_rate / 1e3:.1f} k messages/s")
    ax.invert_yaxis()
    ax.set_xlabel("messages per second (wall clock, start-up included)")
    ax.set_title("Throughput on this machine")
    ax.legend(loc="lower right")
    return ax
