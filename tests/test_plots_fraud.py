"""The pictures of lesson 05 draw what the detections say, on the axes they are given."""

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pytest

from streamlab import batch, plots, stream
from streamlab.fraud import money_at_stake
from streamlab.plots.fraud import arc
from streamlab.purchases import adversarial_trace


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


@pytest.fixture(scope="module")
def found():
    trace = adversarial_trace()
    return trace, batch.detect_fraud(trace.purchases, trace.profiles), stream.detect_fraud(
        trace.purchases, trace.profiles, batch_size=1
    )


def test_an_arc_takes_the_short_way_across_the_antimeridian():
    lat, lon = arc(-18.14, 178.44, -13.85, -171.75)  # Suva to Apia
    steps = np.abs(np.diff(lon))
    assert (steps < 1).sum() == len(steps) - 1   # small steps, and one jump: the edge of the map
    assert steps.max() > 350
    assert lat[0] == -18.14 and lat[-1] == -13.85
    lat, lon = arc(40.7, -74.0, 48.9, 2.4)  # New York to Paris: no jump, bulging north
    assert np.abs(np.diff(lon)).max() < 5 and lat.max() > 48.9


def test_swipe_map_draws_one_arc_per_flagged_city_pair_and_a_cross_at_each_blamed_swipe(ax, found):
    trace, _, live = found
    before = dict(mpl.rcParams)
    assert plots.swipe_map(trace.purchases, live, ax=ax) is ax
    assert dict(mpl.rcParams) == before
    crosses = [line for line in ax.get_lines() if line.get_marker() == "x"]
    # Four impossible pairs in the trace: Paris, Tokyo, Rome, and Apia (blamed).
    assert len(crosses) == 4
    blamed = sorted((round(float(c.get_xdata()[0]), 1), round(float(c.get_ydata()[0]), 1)) for c in crosses)
    assert blamed[0][0] < -170   # Apia, west of the antimeridian
    arcs = [line for line in ax.get_lines() if line.get_marker() != "x"]
    assert len(arcs) == 5        # the Suva-Apia arc is cut in two at the edge of the map
    labels = {t.get_text() for t in ax.texts}
    assert {"Paris", "New York", "Tokyo", "London", "Rome", "Madrid", "Suva", "Apia"} == labels


def test_alert_latency_histograms_both_drivers(ax, found):
    _, nightly, live = found
    plots.alert_latency({"stream": live, "nightly job": nightly}, ax=ax)
    assert ax.get_xscale() == "log"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["stream (8 flagged)", "nightly job (8 flagged)"]
    counted = sum(p.get_height() for p in ax.patches)
    assert counted == 16


def test_money_at_stake_stacks_the_outcomes_per_driver(ax, found):
    trace, nightly, live = found
    money = {"stream": money_at_stake(live, trace.purchases, trace.truth),
             "nightly job": money_at_stake(nightly, trace.purchases, trace.truth)}
    plots.money_at_stake(money, ax=ax)
    widths = [round(p.get_width(), 2) for p in ax.patches]
    total = round(sum(p.amount for p in trace.purchases if p.purchase_id in trace.truth), 2)
    # Bars come by outcome (stopped, afterwards, missed), each with a stream and a nightly bar.
    assert widths[0] + widths[2] + widths[4] == pytest.approx(total)
    assert widths[1] == 0.0 and widths[3] == pytest.approx(total)
