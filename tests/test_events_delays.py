"""The pipe's long-tail delays: most events arrive soon, a few late, none later than ``disorder``."""

import statistics
from datetime import timedelta

import pytest

from streamlab.events import LONG_TAIL_MEAN, pipe, take


def delays(**kwargs):
    events = take(pipe(seed=7, rate=50.0, disorder=60, **kwargs), 20_000)
    # Only events that happened a full `disorder` before the cut have surely all arrived;
    # nearer the cut, the slow ones are still on their way and would bias the sample.
    settled = events[-1].arrival_time - timedelta(seconds=60)
    return [e.delay.total_seconds() for e in events if e.event_time < settled]


def test_long_tail_delays_are_mostly_short_with_a_tail_up_to_disorder():
    tail = sorted(delays(delays="long_tail"))
    assert min(tail) >= 0 and max(tail) <= 60
    # Exponential with mean disorder / 10: mean 6 s, median 6 ln 2 s, one in a hundred over 6 ln 100 s.
    assert statistics.mean(tail) == pytest.approx(LONG_TAIL_MEAN * 60, rel=0.05)
    assert statistics.median(tail) == pytest.approx(6 * 0.6931, rel=0.05)
    share_over_27s = sum(d > 6 * 4.605 for d in tail) / len(tail)
    assert share_over_27s == pytest.approx(0.01, abs=0.003)
    # The uniform default spreads delays evenly: half of them exceed half of disorder.
    uniform = delays()
    assert sum(d > 30 for d in uniform) / len(uniform) == pytest.approx(0.5, abs=0.02)


def test_long_tail_pipe_still_arrives_in_arrival_order_and_is_seeded():
    events = take(pipe(seed=3, disorder=timedelta(seconds=20), delays="long_tail"), 3000)
    arrivals = [e.arrival_time for e in events]
    assert arrivals == sorted(arrivals)
    assert events == take(pipe(seed=3, disorder=20, delays="long_tail"), 3000)
    # Same seed, same event times and values: only when the events arrive changes.
    uniform = take(pipe(seed=3, disorder=20), 3000)
    assert sorted(e.event_time for e in events)[:100] == sorted(e.event_time for e in uniform)[:100]


def test_delays_must_be_a_known_shape_and_show_in_the_repr():
    with pytest.raises(ValueError, match="delays must be one of \\('uniform', 'long_tail'\\), got 'pareto'"):
        pipe(delays="pareto")
    assert "disorder=60s (long_tail)" in repr(pipe(disorder=60, delays="long_tail"))
    assert "long_tail" not in repr(pipe(disorder=60))
