"""Drawing only: each function takes ``ax=None``, draws on it and returns it; no global settings change."""

from pathlib import Path

from streamlab.plots.summary import answer_over_time, memory_growth
from streamlab.plots.logs import consumer_lag, order_over_time, status_counts
from streamlab.plots.windows import batch_versus_stream, delay_tradeoff, event_time_chart
from streamlab.plots.fraud import alert_latency, money_at_stake, swipe_map
from streamlab.plots.panes import panes_chart, panes_tradeoff
from streamlab.plots.schemas import dead_letter_reasons, validation_dataflow
from streamlab.plots import charging
from streamlab.plots import live

#: The course's plot style: ``plt.style.use(streamlab.plots.STYLE)`` at the top of a lesson.
STYLE = str(Path(__file__).with_name("course.mplstyle"))

__all__ = [
    "STYLE", "answer_over_time", "memory_growth", "consumer_lag", "order_over_time", "status_counts",
    "batch_versus_stream", "delay_tradeoff", "event_time_chart",
    "alert_latency", "money_at_stake", "swipe_map", "panes_chart", "panes_tradeoff",
    "dead_letter_reasons", "validation_dataflow",
]
