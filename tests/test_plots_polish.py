"""What the pictures look like in JupyterLab: sharp enough, legends that fit, no line hidden, names readable."""

import base64
import json
import struct
from datetime import timedelta
from itertools import combinations
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import pandas as pd
import pytest
from test_panes import A, TRACE_A

from streamlab import COURSE_START, batch, plots
from streamlab.events import COURSE_START as T
from streamlab.panes import loop
from streamlab.purchases import purchases
from streamlab.windows import Tumbling

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
LESSONS = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb") if not p.name.endswith("_exercises.ipynb"))


def png_dpi(png: bytes) -> float:
    """The resolution a PNG declares in its pHYs chunk (matplotlib writes the figure's dpi there)."""
    at = 8
    while at < len(png):
        length, kind = struct.unpack(">I4s", png[at:at + 8])
        if kind == b"pHYs":
            per_metre, _, unit = struct.unpack(">IIB", png[at + 8:at + 17])
            assert unit == 1
            return per_metre * 0.0254
        at += 12 + length
    raise AssertionError("no pHYs chunk")


def test_the_course_style_draws_a_default_figure_as_wide_as_jupyterlabs_column():
    style = mpl.rc_params_from_file(plots.STYLE, use_default_template=False)
    assert style["figure.dpi"] >= 100
    width_px = style["figure.figsize"][0] * style["figure.dpi"]
    assert 800 <= width_px <= 1000


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_every_committed_plot_is_drawn_at_100_dpi_at_least(path):
    pngs = [base64.b64decode(o["data"]["image/png"])
            for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"
            for o in c["outputs"] if "image/png" in o.get("data", {})]
    assert pngs, "every lesson has a plot"
    assert min(round(png_dpi(p)) for p in pngs) >= 100


def test_consumers_with_the_same_lag_share_one_line_named_for_both():
    times = pd.date_range(T, periods=4, freq="10min")
    lag = pd.DataFrame({
        "time": list(times) * 3,
        "consumer": ["payments"] * 4 + ["fraud"] * 4 + ["loyalty"] * 4,
        "lag": [5, 0, 0, 0] + [5, 0, 0, 0] + [5, 9, 12, 0],
    })
    fig, ax = plt.subplots()
    plots.consumer_lag(lag, ax=ax)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["fraud, payments (same lag)", "loyalty"]
    drawn = [tuple(line.get_ydata()) for line in ax.get_lines()]
    assert len(drawn) == len(set(drawn)) == 2  # no line drawn over another
    plt.close(fig)


def test_the_panes_legend_sits_beside_the_chart_not_on_its_events():
    result = loop(TRACE_A, Tumbling(10, align_to=T), mode="accumulating", **A)
    with plt.style.context(plots.STYLE):
        fig, ax = plt.subplots(figsize=(8, 5))
        plots.panes_chart(TRACE_A, result, ax=ax)
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        legend = ax.get_legend().get_window_extent(renderer)
        assert len(ax.get_legend().get_texts()) >= 7  # every kind of event and pane: the crowded case
        assert not legend.overlaps(ax.get_window_extent(renderer))
        assert fig.bbox.contains(legend.x0, legend.y0) and fig.bbox.contains(legend.x1, legend.y1)
        assert ax.get_legend().get_texts()[0].get_fontsize() >= 8  # legible, not x-small
    plt.close(fig)


def test_the_lessons_map_names_every_city_without_two_names_overlapping():
    bank = purchases(seed=8)  # lesson 05's day
    pile = bank.arrived_before(COURSE_START + timedelta(days=1))
    nightly = batch.detect_fraud(pile, bank.profiles)
    with plt.style.context(plots.STYLE):
        fig, ax = plt.subplots(figsize=(10, 5.5))  # as the lesson draws it
        plots.swipe_map(pile, nightly, ax=ax)
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        boxes = {t.get_text(): t.get_window_extent(renderer) for t in ax.texts}
    assert {"Toronto", "Boston", "New York", "Amsterdam", "Berlin"} <= set(boxes)
    clashes = [(a, b) for (a, box_a), (b, box_b) in combinations(boxes.items(), 2) if box_a.overlaps(box_b)]
    assert not clashes
    assert all(fig.bbox.contains(b.x0, b.y0) and fig.bbox.contains(b.x1, b.y1) for b in boxes.values())
    plt.close(fig)
