"""Watch the pipe flow: a view that plays a stream's run in place, paced by the simulated clock.

Built on matplotlib (the course's plots, drawn the same way) and ipywidgets (an ``Image`` widget whose
picture is replaced frame by frame over the kernel's widget channel: the output stays where it is, no
flicker, no extra package: ipywidgets is what JupyterLab ships support for). Everything shown is
computed first from the run's results (stamped with simulated times); playing only chooses which
simulated moment each frame shows. The wall clock paces the frames (``speed`` simulated seconds per real
second) and decides nothing else.

In a notebook, ``play`` shows one output that carries both the live widget and the **final frame** as a
PNG: JupyterLab plays the widget; GitHub, nbval and a notebook opened without running it show the
final frame, identical on every execution. Playing runs in the cell itself (no thread, no timer): an
interrupt (the ■ button) stops it at the frame it reached, and the figure is closed either way.

>>> from datetime import timedelta
>>> from streamlab import COURSE_START, batch, pipe, stream, arrived_before
>>> sales = pipe(seed=1, rate=0.5, keys=2)
>>> end = COURSE_START + timedelta(minutes=2)
>>> view = answer_converging(arrived_before(sales, end), stream.summarize(sales, until=end, batch_size=1),
...                          batch.summarize(arrived_before(sales, end)), until=end, step=timedelta(seconds=30))
>>> [f"{t:%H:%M:%S}" for t in view.moments]
['00:00:00', '00:00:30', '00:01:00', '00:01:30', '00:02:00']
>>> view.close()
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from streamlab.events import Event
from streamlab.panes import Delay, Panes
from streamlab.plots.panes import _watermark_line
from streamlab.plots.windows import _CLOCK, _pick_key
from streamlab.summary import OVERALL
from streamlab.windows import in_arrival_order

__all__ = ["LiveView", "answer_converging", "windows_closing"]


@dataclass
class LiveView:
    """A figure and how to draw it at any simulated moment; ``play`` shows it moving, ``frame`` one moment."""

    figure: Figure
    draw: Callable[[datetime], None]
    moments: list[datetime]
    title: str
    shown: int = field(default=0, init=False)  # frames sent to the page by the last play

    def frame(self, at: datetime) -> bytes:
        """The PNG of the view at simulated time ``at``."""
        self.draw(at)
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", metadata={"Software": None})
        # Laid out once, on the first frame drawn (the last moment, with everything on it): later frames
        # keep that layout, so nothing jumps while playing and each frame draws faster.
        self.figure.set_layout_engine("none")
        return buffer.getvalue()

    def play(self, speed: float = 60.0) -> None:
        """Play the run in place, ``speed`` simulated seconds per real second (``.shown``: frames sent).

        The output is the live widget with the final frame as its still picture. An interrupt stops the
        playing, not the lesson's state: the figure is closed and nothing keeps running.
        """
        if not speed > 0:
            raise ValueError(f"speed must be a positive number of simulated seconds per real second, got {speed!r}")
        import ipywidgets
        from IPython.display import display

        final = self.frame(self.moments[-1])
        image = ipywidgets.Image(value=final, format="png", layout=ipywidgets.Layout(max_width="100%"))
        span = (self.moments[-1] - self.moments[0]).total_seconds()
        display({
            "application/vnd.jupyter.widget-view+json": {"version_major": 2, "version_minor": 0,
                                                         "model_id": image.model_id},
            "image/png": base64.b64encode(final).decode("ascii"),
            "text/plain": f"<{self.title}: {len(self.moments)} frames, {span:g} simulated seconds>",
        }, raw=True)
        self.shown = 0
        started = time.monotonic()  # pacing only: which frame is shown when, never what it shows
        try:
            for at in self.moments:
                due = started + (at - self.moments[0]).total_seconds() / speed
                time.sleep(max(0.0, due - time.monotonic()))
                image.value = self.frame(at)
                self.shown += 1
        except KeyboardInterrupt:
            pass  # stopped where it was: the widget keeps the last frame sent
        finally:
            self.close()

    def close(self) -> None:
        """Close the figure (``play`` does it when it ends)."""
        plt.close(self.figure)


def _moments(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    if step <= timedelta(0):
        raise ValueError(f"step must be a positive duration, got {step!r}")
    count = int((end - start) / step)
    moments = [start + i * step for i in range(count + 1)]
    return moments if moments[-1] == end else [*moments, end]


def answer_converging(
    pile: Iterable[Event],
    stream_answer,
    batch_answer,
    *,
    until: datetime,
    statistic: str = "mean",
    step: timedelta = timedelta(minutes=2),
) -> LiveView:
    """Lesson 01 live: sales arriving, the stream's running answer per store moving, the batch's waiting.

    Left: each sale at (when it happened, when it arrived) once it has arrived. Right: the stream's
    ``statistic`` per store so far; the batch's answer appears only when the pile closes at ``until``.
    ``stream_answer`` and ``batch_answer`` as ``stream.summarize`` and ``batch.summarize`` return them.
    """
    events = list(in_arrival_order(pile))
    start = min(e.arrival_time for e in events) if events else until
    start = start.replace(second=0, microsecond=0)
    updates = stream_answer.updates[stream_answer.updates["key"] != OVERALL]
    keys = sorted(updates["key"].unique())
    table = batch_answer.table

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2), width_ratios=[1, 1.3])
    arrival = np.array([pd.Timestamp(e.arrival_time).value for e in events])
    happened = pd.to_datetime([e.event_time for e in events], utc=True)
    arrived = pd.to_datetime([e.arrival_time for e in events], utc=True)
    dots = left.scatter(happened, arrived, s=4, color="C0", alpha=0.5, label="a sale, once it has arrived")
    points = np.column_stack([mdates_num(happened), mdates_num(arrived)])
    left.plot([start, until], [start, until], linestyle="--", color="grey", linewidth=1, label="arrived as it happened")
    now_line = left.axhline(start, color="C3", linewidth=1, label="now (simulated clock)")
    left.set_xlim(start, until)
    left.set_ylim(start, until)
    for axis in (left.xaxis, left.yaxis, right.xaxis):
        axis.set_major_locator(mdates.MinuteLocator(byminute=range(0, 60, 15)))
        axis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    left.set_xlabel("event time: when it happened")
    left.set_ylabel("when it arrived")
    left.legend(loc="upper left", fontsize="x-small")
    left.set_title("The pipe: each sale once it has arrived")

    lines, batch_lines = {}, {}
    per_key = {}
    for i, key in enumerate(keys):
        rows = updates[updates["key"] == key]
        known = pd.DatetimeIndex(pd.to_datetime(rows["known_at"], utc=True))
        per_key[key] = (_ns(known), mdates_num(known), rows[statistic].to_numpy())
        (lines[key],) = right.step([], [], where="post", color=f"C{i}", label=key)
        (batch_lines[key],) = right.plot([until], [table.loc[key, statistic]], marker="D", markersize=7,
                                         color=f"C{i}", markeredgecolor="black", linestyle="none", clip_on=False)
    values = updates[statistic]
    spread = values.quantile(0.98) - values.quantile(0.02)
    right.set_ylim(values.quantile(0.02) - 0.1 * spread, values.quantile(0.98) + 0.1 * spread)
    right.set_xlim(start, until)
    right.set_xlabel("processing time: when it was known")
    right.set_ylabel(f"{statistic} so far")
    right.set_title("The answer per store: the stream's moving, the batch's (◆) at the close")
    right.plot([], [], marker="D", color="grey", markeredgecolor="black", linestyle="none",
               label=f"batch, at {until:%H:%M}")
    right.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize="small")
    status = fig.suptitle(" ", fontsize="medium")

    def draw(at: datetime) -> None:
        stamp = pd.Timestamp(at).value
        now = mdates.date2num(at)
        seen = arrival < stamp if at < until else arrival <= stamp
        dots.set_offsets(points[seen])
        now_line.set_ydata([at, at])
        for key, (stamps, known, value) in per_key.items():
            n = int(np.searchsorted(stamps, stamp, side="right"))
            xs = np.append(known[:n], now) if n else known[:0]
            ys = np.append(value[:n], value[n - 1]) if n else value[:0]
            lines[key].set_data(xs, ys)
            batch_lines[key].set_visible(at >= until)
        closed = at >= until
        status.set_text(f"{at:%H:%M}: {int(seen.sum()):,} sales arrived, the stream has answered every one; "
                        + ("the pile has closed: the batch answers" if closed
                           else f"the batch waits for the pile to close at {until:%H:%M}"))

    return LiveView(fig, draw, _moments(start, until, step), "live view: the answer converging")


def mdates_num(times: pd.DatetimeIndex) -> np.ndarray:
    """Matplotlib's date numbers for UTC timestamps (days since its epoch), as plain floats."""
    return np.asarray(mdates.date2num(times), dtype=float)


def _ns(times: pd.DatetimeIndex) -> np.ndarray:
    return times.as_unit("ns").asi8


def windows_closing(
    events: Iterable[Event],
    result: Panes,
    *,
    key: str | None = None,
    step: timedelta = timedelta(seconds=1),
) -> LiveView:
    """Lesson 04 live: one key's events arriving, the watermark climbing, windows opening, firing and closing.

    Left: the events at (when they happened, when they arrived), once arrived; the watermark as far as
    it has come; each window shaded from its first event on, outlined once its pane has fired. Right:
    each window's stream answer (the ``sum`` of its latest pane) as it comes out, and the batch answer
    for every window only when the input has ended.
    """
    everything = list(in_arrival_order(events))
    key = _pick_key((e.key for e in everything), key)
    mine = [e for e in everything if e.key == key]
    start = min(min(e.event_time for e in mine), min(e.arrival_time for e in mine)).replace(microsecond=0)
    end = pd.Timestamp(result.ended_at).to_pydatetime() if result.ended_at is not None else max(
        e.arrival_time for e in mine)
    panes = result.panes[(result.panes["key"] == key) & (result.panes["sign"] > 0)].sort_values("emitted_at")
    windows = panes[["window_start", "window_end"]].drop_duplicates().sort_values("window_start").reset_index(drop=True)
    if len(windows):  # from the first window's start: the picture begins where event time is counted
        start = min(start, pd.Timestamp(windows["window_start"].min()).to_pydatetime())
    dropped = result.dropped[result.dropped["key"] == key]
    too_late = set(zip(pd.to_datetime(dropped["event_time"], utc=True), pd.to_datetime(dropped["arrival_time"], utc=True)))
    batch_sum = {w.window_start: sum(e.value for e in mine if w.window_start <= pd.Timestamp(e.event_time) < w.window_end)
                 for w in windows.itertuples()}

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.4), width_ratios=[1.25, 1])
    owner = key if isinstance(result.settings.watermark, Delay) and result.settings.watermark.per == "key" else "*"
    wm_x, wm_y = _watermark_line(result, owner, pd.Timestamp(end))
    wm_x, wm_y = pd.to_datetime(wm_x, utc=True), pd.to_datetime(wm_y, utc=True)
    bands, outlines = [], []
    for i, w in enumerate(windows.itertuples()):
        bands.append(left.axvspan(w.window_start, w.window_end, color="C0" if i % 2 == 0 else "C2", alpha=0.12,
                                  linewidth=0))
        outlines.append(left.axvline(w.window_end, color="C4", linewidth=1.2, linestyle="-"))
    low = pd.Timestamp(start)
    high = max(pd.Timestamp(end), *(pd.Timestamp(t) for t in windows["window_end"]))
    left.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1, label="arrived as it happened")
    (watermark,) = left.plot([], [], color="C1", linewidth=1.8, label="watermark so far")
    happened = pd.to_datetime([e.event_time for e in mine], utc=True)
    arrived = pd.to_datetime([e.arrival_time for e in mine], utc=True)
    late = np.array([(h, a) in too_late for h, a in zip(happened, arrived)], dtype=bool)
    dots = left.scatter(happened[~late], arrived[~late], s=22, color="C0", zorder=3, label="event, once arrived")
    crosses = left.scatter(happened[late], arrived[late], s=40, marker="X", color="C3", zorder=3,
                           label="event too late: dropped")
    points = np.column_stack([mdates_num(happened), mdates_num(arrived)])
    fired = left.scatter(panes["window_end"], panes["emitted_at"], marker="D", s=40, facecolor="white",
                         edgecolor="C4", linewidth=1.5, zorder=4, label="pane fired (window's end, when)")
    now_line = left.axhline(low, color="C3", linewidth=1, label="now (simulated clock)")
    left.set_xlim(low, high)
    left.set_ylim(low, high)
    for axis in (left.xaxis, left.yaxis):
        axis.set_major_locator(mdates.SecondLocator(bysecond=range(0, 60, 10)))
        axis.set_major_formatter(_CLOCK)
    left.set_xlabel("event time: when it happened")
    left.set_ylabel("processing time: when it arrived")
    left.legend(loc="upper left", fontsize="x-small")

    labels = [f"{w.window_start:%H:%M:%S}" for w in windows.itertuples()]
    positions = np.arange(len(windows))
    stream_bars = right.bar(positions - 0.2, [0] * len(windows), width=0.4, color="C0", label="stream: latest pane")
    batch_bars = right.bar(positions + 0.2, [batch_sum[w] for w in windows["window_start"]], width=0.4,
                           color="grey", alpha=0.6, label="batch: when the input has ended")
    right.set_xticks(positions, labels, rotation=30)
    right.set_xlabel("window (start)")
    right.set_ylabel("sum")
    top = max([*batch_sum.values(), *panes["sum"].tolist(), 1])
    right.set_ylim(0, top * 1.25)
    right.legend(loc="upper left", fontsize="x-small")
    emitted = np.array([pd.Timestamp(t).value for t in panes["emitted_at"]])
    pane_x = pd.DatetimeIndex(pd.to_datetime(panes["window_end"], utc=True))
    pane_y = pd.DatetimeIndex(pd.to_datetime(panes["emitted_at"], utc=True))
    pane_points = np.column_stack([mdates_num(pane_x), mdates_num(pane_y)]).reshape(-1, 2)
    wm_stamps = _ns(wm_y)
    arrival = _ns(arrived)

    def draw(at: datetime) -> None:
        stamp = pd.Timestamp(at).value
        seen = arrival <= stamp
        dots.set_offsets(points[seen & ~late])
        crosses.set_offsets(points[seen & late])
        n = int(np.searchsorted(wm_stamps, stamp, side="right"))
        xs, ys = list(wm_x[:n]), list(wm_y[:n])
        if n and n < len(wm_x) and n % 2 == 1:  # inside a slope: draw it up to now
            frac = (stamp - wm_stamps[n - 1]) / max(1, wm_stamps[n] - wm_stamps[n - 1])
            xs.append(wm_x[n - 1] + (wm_x[n] - wm_x[n - 1]) * frac)
            ys.append(pd.Timestamp(at))
        watermark.set_data(xs, ys)
        out = emitted <= stamp
        fired.set_offsets(pane_points[out])
        latest = panes[out].groupby("window_start")["sum"].last()
        for i, w in enumerate(windows.itertuples()):
            opened = bool((seen & (happened >= w.window_start) & (happened < w.window_end)).any())
            bands[i].set_visible(opened)
            outlines[i].set_visible(w.window_start in latest.index)
            stream_bars[i].set_height(latest.get(w.window_start, 0))
        ended = at >= end
        for bar in batch_bars:
            bar.set_visible(ended)
        now_line.set_ydata([at, at])
        left.set_title(f"{key} at {at:%H:%M:%S}: events arrived {int(seen.sum())}, panes fired {int(out.sum())}")
        right.set_title("Sum per window" + (": the batch's too, now" if ended else ""))

    return LiveView(fig, draw, _moments(start, end, step), "live view: windows closing")
