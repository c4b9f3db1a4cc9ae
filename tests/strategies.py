"""Hypothesis strategies for events: many or few keys, any values, any arrival order."""

from datetime import timedelta

from hypothesis import strategies as st

from streamlab.events import COURSE_START, Event

keys = st.sampled_from(["a", "b", "c", "d", "e", "f", "g", "h"])
# Values like amounts: zero, negatives, integers and floats with cents.
values = st.one_of(
    st.integers(min_value=-10_000, max_value=10_000),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
    st.just(0.0),
)
seconds = st.integers(min_value=0, max_value=3600)


@st.composite
def events(draw, value=values, key=keys):
    happened = COURSE_START + timedelta(seconds=draw(seconds))
    arrived = happened + timedelta(seconds=draw(st.integers(min_value=0, max_value=120)))
    return Event(draw(key), draw(value), happened, arrived)


event_lists = st.lists(events(), max_size=150)
