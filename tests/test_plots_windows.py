"""The pictures of lesson 04 draw what the results say, on the axes they are given."""

import matplotlib.pyplot as plt
import pytest
from test_windows import SESSIONS, TRACE, WINDOW

from streamlab import batch, plots, stream
from streamlab.events import pipe
from streamlab.windows import Session, Tumbling, reconcile


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_event_time_chart_marks_each_event_the_watermark_and_the_answers(ax):
    result = stream.windowed(TRACE, WINDOW, delay=5)
    assert plots.event_time_chart(TRACE, result, key="store-1", ax=ax) is ax
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert len(lines["event (counted)"].get_xdata()) == 6   # store 1's eight sales, two of them late
    assert len(lines["late event (set aside)"].get_xdata()) == 2
    assert len(lines["answer out (watermark passed)"].get_xdata()) == 2
    assert len(lines["answer out (end of input)"].get_xdata()) == 1
    # The watermark staircase: two points per advance (store 1's watermark moves five times).
    assert len(lines["watermark (latest event time − 5 s)"].get_xdata()) == 10
    assert "store-1" in ax.get_title()


def test_event_time_chart_for_sessions_and_bad_keys(ax):
    result = stream.windowed(SESSIONS, Session(5), delay=5)
    plots.event_time_chart(SESSIONS, result, ax=ax)
    assert "till" in ax.get_title()
    with pytest.raises(ValueError, match="key must be one of \\['till'\\], got 'nope'"):
        plots.event_time_chart(SESSIONS, result, key="nope", ax=ax)
    with pytest.raises(ValueError, match="a pipe never ends"):
        plots.event_time_chart(pipe(), result, ax=ax)


def test_batch_versus_stream_stacks_the_late_contribution_on_the_stream_bar(ax):
    r = reconcile(batch.windowed(TRACE, WINDOW, delay=5), stream.windowed(TRACE, WINDOW, delay=5))
    plots.batch_versus_stream(r, statistic="sum", key="store-1", ax=ax)
    heights = [round(p.get_height(), 6) for p in ax.patches]
    # Three windows: batch bars, then stream bars, then late bars stacked on the stream ones.
    assert heights == [72.0, 6.0, 2.0, 34.0, 6.0, 2.0, 38.0, 0.0, 0.0]
    assert [round(p.get_y(), 6) for p in ax.patches[6:]] == [34.0, 6.0, 2.0]
    ax.clear()
    plots.batch_versus_stream(r, statistic="count", key="store-1", limit=1, ax=ax)
    assert [p.get_height() for p in ax.patches] == [5, 3, 2]
    with pytest.raises(ValueError, match="statistic must be 'count' or 'sum'"):
        plots.batch_versus_stream(r, statistic="mean", ax=ax)


def test_delay_tradeoff_plots_both_curves_on_two_axes(ax):
    curve = stream.delay_tradeoff(pipe(seed=1, disorder=5), Tumbling(10), [0, 1, 5], limit=300)
    assert plots.delay_tradeoff(curve, ax=ax) is ax
    assert list(ax.get_lines()[0].get_ydata()) == curve["late_share"].tolist()
    twin = [other for other in ax.figure.axes if other is not ax]
    assert list(twin[0].get_lines()[0].get_ydata()) == curve["median_latency_s"].tolist()
