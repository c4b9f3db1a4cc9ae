"""The lesson 02 and 03 plots draw on the Axes they are given, return it, and change no global setting."""

from datetime import timedelta

import matplotlib
import matplotlib.pyplot as plt
import pytest

from streamlab import batch, plots
from streamlab.consumers import Fraud, Payments, follow
from streamlab.events import COURSE_START, take
from streamlab.log import Log
from streamlab.orders import order_pipe


@pytest.fixture
def changelog():
    return batch.orders_changelog(take(order_pipe(seed=1), 300))


def test_plots_draw_on_the_given_axes_and_leave_settings_alone(changelog, tmp_path):
    before = dict(matplotlib.rcParams)
    log = Log.create(tmp_path / "log", partitions=2)
    readers = [Payments(), Fraud()]
    for r in readers:
        log.add_consumer(r.name)
    lag = follow(log, order_pipe(seed=1), readers, {"payments": 50, "fraud": 5},
                 every=timedelta(minutes=10), until=COURSE_START + timedelta(hours=1))
    fig, axes = plt.subplots(3)
    assert plots.order_over_time(changelog, "order-00000", ax=axes[0]) is axes[0]
    assert [t.get_text() for t in axes[0].get_yticklabels()] == ["placed", "paid", "shipped", "cancelled"]
    assert plots.status_counts(changelog.status_counts(), ax=axes[1]) is axes[1]
    assert len(axes[1].get_lines()) == 4
    assert plots.consumer_lag(lag, ax=axes[2]) is axes[2]
    assert [t.get_text() for t in axes[2].get_legend().get_texts()] == ["fraud", "payments"]
    plt.close(fig)
    assert dict(matplotlib.rcParams) == before


def test_an_unknown_order_is_a_clear_error(changelog):
    fig, ax = plt.subplots()
    with pytest.raises(KeyError, match="no changes for order 'order-99999'"):
        plots.order_over_time(changelog, "order-99999", ax=ax)
    plt.close(fig)
