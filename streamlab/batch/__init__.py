"""The batch driver: pandas over a finite pile.

Every function here has a twin of the same name and signature in
:mod:`streamlab.stream`, so a lesson can run one computation both ways.
"""

from streamlab.batch.summary import summarize
from streamlab.batch.logs import orders_changelog, orders_table
from streamlab.batch.windows import session, sliding, tumbling, windowed
from streamlab.batch.fraud import detect_fraud
from streamlab.batch.panes import panes
from streamlab.batch.charging import charging
from streamlab.batch.schemas import validate_orders
from streamlab.batch.joins import latest_profile_join, temporal_join, time_bound_join

__all__ = [
    "summarize", "orders_changelog", "orders_table", "session", "sliding", "tumbling", "windowed", "panes",
    "detect_fraud", "temporal_join", "latest_profile_join", "time_bound_join", "validate_orders", "charging",
]
