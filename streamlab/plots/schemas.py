"""Pictures for schemas and bad data: the dataflow with its dead-letter branch, and why letters died."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes

#: The rules a message can break before it is a record (on the wire), as opposed to the rule table's checks.
WIRE_RULES = ("framing", "schema_id", "avro", "resolution", "trailing_bytes", "payload_type")


def _box(ax: Axes, x: float, y: float, text: str, color: str) -> None:
    ax.text(x, y, text, ha="center", va="center", fontsize="small",
            bbox={"boxstyle": "round,pad=0.5", "facecolor": color, "edgecolor": "0.3"})


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], label: str = "") -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "color": "0.3"})
    if label:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.07, label, ha="center", fontsize="small")


def validation_dataflow(dead: pd.DataFrame, count_in: int, *, ax: Axes | None = None) -> Axes:
    """Draw the validating dataflow with the counts that went down each branch (``dead``: a dead-letter frame).

    Payloads are decoded (the wire), then checked against the rule table;
    what passes goes on to the table of orders, every other payload to the
    dead-letter topic. The numbers on the arrows add up: in = processed + dead-lettered.
    """
    ax = ax or plt.gca()
    at_wire = int(dead["rule"].isin(WIRE_RULES).sum())
    by_rules = len(dead) - at_wire
    processed = count_in - len(dead)
    _box(ax, 0.0, 0.6, f"payloads\n{count_in:,}", "#dde8f4")
    _box(ax, 1.0, 0.6, "decode\n(wire: id + Avro)", "#eeeeee")
    _box(ax, 2.0, 0.6, "validate\n(the rule table)", "#eeeeee")
    _box(ax, 3.0, 0.6, f"the table of orders\n{processed:,} events", "#dff0d8")
    _box(ax, 1.5, 0.0, f"dead-letter topic\n{len(dead):,} letters", "#f6dddd")
    _arrow(ax, (0.3, 0.6), (0.7, 0.6), f"{count_in:,}")
    _arrow(ax, (1.3, 0.6), (1.7, 0.6), f"{count_in - at_wire:,}")
    _arrow(ax, (2.3, 0.6), (2.6, 0.6), f"{processed:,}")
    _arrow(ax, (1.0, 0.45), (1.35, 0.13), f"{at_wire:,}   ")
    _arrow(ax, (2.0, 0.45), (1.65, 0.13), f"   {by_rules:,}")
    ax.set_xlim(-0.4, 3.5)
    ax.set_ylim(-0.25, 0.85)
    ax.set_axis_off()
    ax.set_title(f"Nothing lost: {count_in:,} in = {processed:,} processed + {len(dead):,} dead-lettered")
    return ax


def dead_letter_reasons(dead: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Plot how many dead letters each rule made, wire rules apart from the rule table's checks."""
    ax = ax or plt.gca()
    counts = dead.assign(where=dead["field"].where(dead["field"] != "", "(whole payload)"))
    counts = counts.groupby(["rule", "where"]).size().rename("letters").reset_index()
    counts["label"] = counts["rule"] + " · " + counts["where"]
    counts["wire"] = counts["rule"].isin(WIRE_RULES)
    counts = counts.sort_values(["wire", "letters"], ascending=[True, True])
    colors = ["#c0504d" if wire else "#4f81bd" for wire in counts["wire"]]
    ax.barh(counts["label"], counts["letters"], color=colors)
    ax.set_xlabel("dead letters")
    ax.set_title("Why each dead letter died: rule · field")
    ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color="#c0504d"), plt.Rectangle((0, 0), 1, 1, color="#4f81bd")],
              labels=["on the wire (not a record)", "the rule table (a field)"], loc="lower right")
    return ax
