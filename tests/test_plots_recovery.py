"""The lesson 08 plots draw on the Axes they are given, return it, show what the accounts say, and change no global setting."""

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from streamlab.events import pipe, take
from streamlab.log import Log
from streamlab.plots import recovery as recovery_plots
from streamlab.recovery import Crash, publish_sales
from streamlab.stream.recovery import account, crash_and_resume, replay_by_interval


@pytest.fixture(scope="module")
def trials(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plots")
    log = Log.create(tmp / "sales", partitions=3)
    publish_sales(log, take(pipe(seed=8, keys=6), 240))
    crash = Crash(100, "sink")
    return log, tmp, {g: crash_and_resume(log, g, crash, tmp, batch_size=20)
                      for g in ("at most once", "at least once", "effectively once")}


def _colors(ax):
    return {tuple(round(c, 3) for c in coll.get_facecolor()[0]) for coll in ax.collections}


def test_the_plots_draw_on_the_given_axes_and_leave_settings_alone(trials):
    log, tmp, by_setup = trials
    before = dict(matplotlib.rcParams)
    fig, axes = plt.subplots(5)
    for ax, trial in zip(axes, by_setup.values()):
        assert recovery_plots.replay_timeline(trial, ax=ax) is ax
    table = account(by_setup)
    assert recovery_plots.guarantees(table, ax=axes[3]) is axes[3]
    replays = replay_by_interval(log, tmp / "intervals", [10, 20], [50, 130])
    throughput = pd.DataFrame({"snapshot_every": [30, 60], "records_per_s": [1000.0, 2000.0]})
    assert recovery_plots.snapshot_tradeoff(replays, throughput, ax=axes[4]) is axes[4]
    assert dict(matplotlib.rcParams) == before
    # What each lane shows follows the accounts: red only for a loss, orange only for duplicates.
    red, orange, cyan = (tuple(round(c, 3) for c in matplotlib.colors.to_rgba(n)) for n in ("tab:red", "tab:orange", "tab:cyan"))
    most, least, once = axes[0], axes[1], axes[2]
    assert red in _colors(most) and orange not in _colors(most)
    assert orange in _colors(least) and red not in _colors(least)
    assert cyan in _colors(once) and orange not in _colors(once) and red not in _colors(once)
    assert least.get_title().startswith(f"at least once: {by_setup['at least once'].duplicates} rows written twice")
    plt.close(fig)
