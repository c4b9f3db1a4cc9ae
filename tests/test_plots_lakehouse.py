"""Lesson 09's plots draw on the Axes given and return it, changing no global setting."""

from __future__ import annotations

from datetime import timedelta

import matplotlib.pyplot as plt

from streamlab import lakehouse as lh
from streamlab.batch import lakehouse as nightly
from streamlab.events import COURSE_START, arrived_before
from streamlab.log import Log
from streamlab.orders import order_pipe
from streamlab.plots import lakehouse as plots


def test_plots_draw_on_the_axes_given(tmp_path):
    before = dict(plt.rcParams)
    events = list(arrived_before(order_pipe(seed=2, rate=0.01), COURSE_START + timedelta(hours=3)))
    log = Log.create(tmp_path / "log", partitions=1)
    lh.publish_raw(log, lh.raw_orders(events, seed=2))
    table = lh.create_table(lh.open_warehouse(tmp_path), "shop.orders")
    nightly.load_orders(log, table)
    fig, axes = plt.subplots(1, 3)
    assert plots.freshness({"nightly": lh.freshness(table)}, ax=axes[0]) is axes[0]
    assert len(axes[0].lines) == 1 and max(axes[0].lines[0].get_ydata()) > 24  # the first hour waits over a day
    assert plots.commit_latency({"a": [0.01, 0.02, 0.03]}, ax=axes[1]) is axes[1]
    assert len(axes[1].lines) == 2
    sweep = lh.batch_sweep([e.arrival_time for e in events], [timedelta(minutes=5), timedelta(hours=1)])
    assert plots.batch_sizes(sweep, ax=axes[2]) is axes[2]
    assert list(axes[2].lines[0].get_ydata()) == sweep["commits"].tolist()
    plt.close(fig)
    assert dict(plt.rcParams) == before
