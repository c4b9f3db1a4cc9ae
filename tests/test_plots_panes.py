"""The pictures of panes draw what the result says, on the axes they are given."""

import matplotlib.pyplot as plt
import pytest
from test_panes import A, TRACE_A, TRACE_C

from streamlab import plots, stream
from streamlab.events import COURSE_START as T
from streamlab.events import pipe
from streamlab.panes import Delay, loop
from streamlab.windows import Tumbling


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_panes_chart_marks_each_event_by_what_became_of_it_and_each_pane_by_its_timing(ax):
    result = loop(TRACE_A, Tumbling(10, align_to=T), mode="accumulating", **A)
    assert plots.panes_chart(TRACE_A, result, ax=ax) is ax
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert len(lines["event: on time"].get_xdata()) == 3
    assert len(lines["event: late, counted"].get_xdata()) == 1
    assert len(lines["event: dropped"].get_xdata()) == 1
    assert (len(lines["EARLY pane"].get_xdata()), len(lines["ON_TIME pane"].get_xdata()),
            len(lines["LATE pane"].get_xdata())) == (3, 2, 1)
    # The watermark follows the clock: one slope per jump (it jumped once, at the first event).
    assert len(lines["watermark"].get_xdata()) == 2


def test_a_watermark_per_key_is_drawn_for_that_key(ax):
    result = loop(TRACE_C, Tumbling(10, align_to=T), watermark=Delay(1, per="key", follow_clock=False))
    plots.panes_chart(TRACE_C, result, key="idle", ax=ax)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert len(lines["watermark"].get_xdata()) == 2  # one jump, then it stands still
    with pytest.raises(ValueError, match="key must be one of"):
        plots.panes_chart(TRACE_C, result, key="nope", ax=ax)


def test_panes_tradeoff_plots_both_curves_on_two_axes(ax):
    curve = stream.panes_tradeoff(pipe(seed=1, disorder=5), Tumbling(10), [0, 1, 5], limit=300)
    assert plots.panes_tradeoff(curve, ax=ax) is ax
    assert list(ax.get_lines()[0].get_ydata()) == curve["late_share"].tolist()
    assert len(ax.figure.axes) == 2
