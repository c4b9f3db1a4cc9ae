"""Pictures for failure and recovery: what a crash replayed or lost, record by record; the snapshot trade-off."""

from __future__ import annotations

from collections import Counter

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.patches import Patch

from streamlab.recovery import Recovery

_ONCE, _TWICE, _NEVER, _SNAP, _AGAIN = "tab:green", "tab:orange", "tab:red", "black", "tab:cyan"


def replay_timeline(trial: Recovery, *, ax: Axes | None = None) -> Axes:
    """One lane per log partition, offsets across: each record's rows in the output (once, twice, rewritten in place, never counted).

    A black tick marks where the recovery store's snapshot stood (where a
    resume by snapshot starts reading); a cross where the crashed run stopped writing.
    """
    ax = ax or plt.gca()
    counts = Counter(r.position for r in trial.rows)
    skipped = set(trial.skipped)
    replayed = set(trial.replayed)
    partitions = sorted(trial.snapshot_at)
    ends = {p: max([o + 1 for (q, o) in counts if q == p] + [trial.resumed_from[p]]) for p in partitions}
    for p in partitions:
        colors = []
        for o in range(ends[p]):
            n = counts.get((p, o), 0)
            if (p, o) in skipped or n == 0:
                colors.append(_NEVER)
            elif n > 1:
                colors.append(_TWICE)
            else:  # one row: written once, or written again over itself (an idempotent sink)
                colors.append(_AGAIN if (p, o) in replayed else _ONCE)
        # One bar per run of records with the same fate (a bar per record would be slow to draw).
        start = 0
        for o in range(1, len(colors) + 1):
            if o == len(colors) or colors[o] != colors[start]:
                ax.broken_barh([(start, o - start)], (p - 0.35, 0.7), facecolors=colors[start], linewidth=0)
                start = o
        ax.plot([trial.snapshot_at[p]] * 2, [p - 0.45, p + 0.45], color=_SNAP, linewidth=2.5)
        written = [r.offset for r in trial.written_before if r.partition == p]
        if written:
            ax.plot(max(written) + 1, p, marker="x", color=_SNAP, markersize=9, markeredgewidth=2)
    ax.set_yticks(partitions, [f"partition {p}" for p in partitions])
    ax.set_ylim(len(partitions) - 0.5, -0.5)
    ax.set_xlabel("offset in the partition (read left to right)")
    ax.set_title(f"{trial.guarantee}: {trial.duplicates} rows written twice, {trial.lost} sales never counted")
    ax.grid(False)
    ax.legend(
        handles=[Patch(color=_ONCE, label="counted once"), Patch(color=_TWICE, label="written twice (replayed)"),
                 Patch(color=_AGAIN, label="written again, replaced itself"),
                 Patch(color=_NEVER, label="never counted (lost)"),
                 plt.Line2D([], [], color=_SNAP, linewidth=2.5, label="snapshot"),
                 plt.Line2D([], [], color=_SNAP, marker="x", linestyle="", label="crash")],
        loc="upper left", bbox_to_anchor=(1.0, 1.0),
    )
    return ax


def guarantees(table: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Bars of duplicates and lost records per setup (the frame of :func:`streamlab.stream.recovery.account`)."""
    ax = ax or plt.gca()
    x = range(len(table))
    ax.bar([i - 0.2 for i in x], table["duplicates"], width=0.4, color=_TWICE, label="rows written twice")
    ax.bar([i + 0.2 for i in x], table["lost"], width=0.4, color=_NEVER, label="sales never counted")
    for i, (dup, lost) in enumerate(zip(table["duplicates"], table["lost"], strict=True)):
        ax.annotate(str(dup), (i - 0.2, dup), ha="center", va="bottom")
        ax.annotate(str(lost), (i + 0.2, lost), ha="center", va="bottom")
    ax.set_xticks(list(x), list(table.index))
    ax.set_ylabel("records")
    ax.set_title("The same crash, three setups")
    ax.legend(loc="upper right")
    return ax


def snapshot_tradeoff(replays: pd.DataFrame, throughput: pd.DataFrame | None = None, *, ax: Axes | None = None) -> Axes:
    """Rows replayed after a crash against the snapshot interval; with ``throughput``, records per second on a second axis.

    ``replays`` as :func:`streamlab.stream.recovery.replay_by_interval` returns
    it (one row per crash); ``throughput``: ``snapshot_every`` and ``records_per_s``.
    """
    ax = ax or plt.gca()
    by = replays.groupby("snapshot_every")["replayed"]
    ax.plot(by.mean().index, by.mean().values, marker="o", color=_TWICE, label="replayed, mean over crashes")
    ax.plot(by.max().index, by.max().values, marker="^", linestyle="--", color=_TWICE, label="replayed, worst crash")
    intervals = sorted(replays["snapshot_every"].unique())
    ax.set_xscale("log")
    ax.set_xticks(intervals, [str(i) for i in intervals])
    ax.minorticks_off()
    ax.set_xlabel("snapshot every … records")
    ax.set_ylabel("rows replayed after a crash")
    ax.set_title("The snapshot trade-off")
    handles, labels = ax.get_legend_handles_labels()
    if throughput is not None:
        right = ax.twinx()
        right.plot(throughput["snapshot_every"], throughput["records_per_s"] / 1000, marker="s", color="tab:blue",
                   label="throughput (k records/s)")
        right.set_ylabel("k records/s")
        right.set_ylim(bottom=0)
        right.grid(False)
        more_h, more_l = right.get_legend_handles_labels()
        handles, labels = handles + more_h, labels + more_l
    ax.legend(handles, labels, loc="upper left")
    return ax
