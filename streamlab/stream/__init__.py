"""The stream driver: bytewax dataflows over an unbounded pipe.

Every computation here has a twin of the same name and signature in
:mod:`streamlab.batch`; :func:`run` runs any dataflow of your own over events.
"""

from streamlab.stream.runner import EventSource, Run, StreamError, run
from streamlab.stream.summary import summarize
from streamlab.stream.logs import LogSource, orders_changelog, orders_table
from streamlab.stream.windows import delay_tradeoff, session, sliding, tumbling, windowed
from streamlab.stream.fraud import detect_fraud
from streamlab.stream.panes import panes, panes_flow, panes_tradeoff
from streamlab.stream.charging import charging, charging_flow
from streamlab.stream.schemas import validate_orders
from streamlab.stream.joins import latest_profile_join, temporal_join, time_bound_join

__all__ = [
    "EventSource", "Run", "StreamError", "run", "summarize", "LogSource", "orders_changelog", "orders_table",
    "delay_tradeoff", "session", "sliding", "tumbling", "windowed", "panes", "panes_flow", "panes_tradeoff",
    "detect_fraud", "temporal_join", "latest_profile_join", "time_bound_join", "validate_orders", "charging", "charging_flow",
]
