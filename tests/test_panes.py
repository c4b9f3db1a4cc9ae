"""Panes (the Beam model's windowing): hand-checked traces, then properties against the batch answer.

Each trace is small enough to follow on paper; the expected panes were worked
out by hand from the rules in streamlab/panes.py, step by step, before the
engine was run. Every trace runs through the plain loop and the bytewax stream,
which must give the same panes.
"""

from datetime import timedelta

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamlab import batch, stream
from streamlab.events import COURSE_START as T
from streamlab.events import Event, pipe
from streamlab.panes import BEYOND, Delay, Schedule, Trigger, check_settings, loop, reconcile
from streamlab.windows import Session, Sliding, Tumbling


def at(seconds: float):
    return T + timedelta(seconds=seconds)


def ev(key, value, happened, arrived):
    return Event(key, float(value), at(happened), at(arrived))


def both(events, window, **kw):
    """The loop's panes, checked equal to the stream's (with tiny and default batches)."""
    looped = loop(events, window, **kw)
    for batch_size in (1, 1000):
        streamed = stream.panes(events, window, batch_size=batch_size, **kw)
        pd.testing.assert_frame_equal(streamed.panes, looped.panes)
        pd.testing.assert_frame_equal(streamed.dropped, looped.dropped)
        pd.testing.assert_frame_equal(streamed.late, looped.late)
        pd.testing.assert_frame_equal(streamed.watermark, looped.watermark)
        assert streamed.counted == looped.counted
    return looped


def rows(result, key=None):
    """Panes (of one key, if given) as (window start s, window end s, count, sum, timing, pane index, emitted at s, sign)."""
    p = result.panes if key is None else result.panes[result.panes["key"] == key]
    seconds = lambda col: [round((t - pd.Timestamp(T)).total_seconds(), 6) for t in p[col]]
    out = list(zip(seconds("window_start"), seconds("window_end"), p["count"], p["sum"], p["timing"],
                   p["pane_index"], seconds("emitted_at"), p["sign"]))
    return [tuple(x if not isinstance(x, float) or x != int(x) else int(x) for x in r) for r in out]


# Trace A: one key, 10 s windows, a watermark 2 s behind that follows the clock, 5 s allowed lateness,
# an early pane 3 s after the first event of a pane.
TRACE_A = [ev("a", 1, 1, 1), ev("a", 2, 4, 6), ev("a", 4, 11, 11), ev("a", 8, 8, 13), ev("a", 16, 2, 25)]
A = dict(watermark=Delay(2), allowed_lateness=5, trigger=Trigger(early_every=3))


def test_trace_a_accumulating_early_on_time_late_and_beyond():
    got = both(TRACE_A, Tumbling(10, align_to=T), mode="accumulating", **A)
    assert rows(got) == [
        (0, 10, 1, 1, "EARLY", 0, 4, 1),     # 3 s after the first event of the pane (at 1)
        (0, 10, 2, 3, "EARLY", 1, 9, 1),     # 3 s after the event that arrived at 6
        (0, 10, 2, 3, "ON_TIME", 2, 12, 1),  # the watermark (-1 at 1, +1 per second) reaches 10 at 12
        (0, 10, 3, 11, "LATE", 3, 13, 1),    # event time 8 arrives at 13: window closed, within lateness
        (10, 20, 1, 4, "EARLY", 0, 14, 1),
        (10, 20, 1, 4, "ON_TIME", 1, 22, 1),  # the watermark reaches 20 at 22, between two arrivals
    ]
    # Event time 2 arrives at 25: its window ended at 10, 10 + 5 <= watermark 23: beyond allowed lateness.
    assert got.late["value"].tolist() == [8.0]  # counted, in the LATE pane
    (dropped,) = got.dropped.itertuples(index=False)
    assert (dropped.value, dropped.reason, dropped.watermark) == (16.0, BEYOND, pd.Timestamp(at(23)))
    assert (got.counted, got.events_read) == (4, 5)


def test_trace_a_discarding_panes_add_up_to_the_window():
    got = both(TRACE_A, Tumbling(10, align_to=T), mode="discarding", **A)
    assert [(r[2], r[3], r[4]) for r in rows(got)] == [
        (1, 1, "EARLY"), (1, 2, "EARLY"), (0, 0, "ON_TIME"), (1, 8, "LATE"), (1, 4, "EARLY"), (0, 0, "ON_TIME"),
    ]
    assert got.table()[["count", "sum"]].values.tolist() == [[3, 11.0], [1, 4.0]]


def test_trace_a_retracting_takes_each_pane_back_before_the_next():
    got = both(TRACE_A, Tumbling(10, align_to=T), mode="retracting", **A)
    assert rows(got) == [
        (0, 10, 1, 1, "EARLY", 0, 4, 1),
        (0, 10, 1, 1, "EARLY", 0, 9, -1), (0, 10, 2, 3, "EARLY", 1, 9, 1),
        (0, 10, 2, 3, "ON_TIME", 1, 12, -1), (0, 10, 2, 3, "ON_TIME", 2, 12, 1),
        (0, 10, 2, 3, "LATE", 2, 13, -1), (0, 10, 3, 11, "LATE", 3, 13, 1),
        (10, 20, 1, 4, "EARLY", 0, 14, 1),
        (10, 20, 1, 4, "ON_TIME", 0, 22, -1), (10, 20, 1, 4, "ON_TIME", 1, 22, 1),
    ]
    assert got.table()[["count", "sum"]].values.tolist() == [[3, 11.0], [1, 4.0]]


def test_trace_a_early_panes_every_two_events_and_late_panes_gathered():
    events = TRACE_A[:4] + [ev("a", 32, 9, 14), ev("a", 64, 12, 15), ev("a", 128, 23, 23)]
    got = both(events, Tumbling(10, align_to=T), watermark=Delay(2), allowed_lateness=5,
               trigger=Trigger(early_count=2, late_every=3), mode="accumulating")
    assert rows(got) == [
        (0, 10, 2, 3, "EARLY", 0, 6, 1),      # the second event of the pane
        (0, 10, 2, 3, "ON_TIME", 1, 12, 1),
        (10, 20, 2, 68, "EARLY", 0, 15, 1),   # events at 11 and 12
        (0, 10, 4, 43, "LATE", 2, 16, 1),     # late events arriving at 13 and 14, gathered 3 s after the first
        (10, 20, 2, 68, "ON_TIME", 1, 22, 1),
        (20, 30, 1, 128, "ON_TIME", 0, 23, 1),  # the input ends at 23
    ]


def test_the_edges_of_lateness_are_exact():
    """On the boundaries: a window whose end the watermark has just reached is closed; end + lateness is gone."""
    mark_at_10 = [ev("a", 1, 10, 10)]  # Delay(0), no clock: the watermark is 10 from here on
    on_end = both(mark_at_10 + [ev("a", 2, 9.5, 11)], Tumbling(10, align_to=T),
                  watermark=Delay(0, follow_clock=False), allowed_lateness=0)
    assert on_end.dropped["reason"].tolist() == [BEYOND]  # end 10 + 0 <= 10: beyond
    kept = both(mark_at_10 + [ev("a", 2, 9.5, 11)], Tumbling(10, align_to=T),
                watermark=Delay(0, follow_clock=False), allowed_lateness=0.000001)
    assert kept.dropped.empty and rows(kept)[0][4] == "LATE"  # closed (10 <= 10), but within lateness
    still_open = both([ev("a", 1, 9, 9), ev("a", 2, 9.999, 10)], Tumbling(10, align_to=T),
                      watermark=Delay(0, follow_clock=False))
    assert still_open.dropped.empty and rows(still_open) == [(0, 10, 2, 3, "ON_TIME", 0, 10, 1)]


def test_late_events_waiting_for_their_pane_get_it_when_the_window_expires():
    pile = [ev("a", 1, 1, 1), ev("a", 2, 11, 11), ev("a", 4, 8, 12), ev("a", 8, 16, 16)]
    got = both(pile, Tumbling(10, align_to=T), watermark=Delay(0, follow_clock=False), allowed_lateness=5,
               trigger=Trigger(late_every=10))
    assert rows(got) == [
        (0, 10, 1, 1, "ON_TIME", 0, 11, 1),
        (0, 10, 2, 5, "LATE", 1, 16, 1),    # due at 22, but the window expires at 16 (10 + 5 <= 16): out now
        (10, 20, 2, 10, "ON_TIME", 0, 16, 1),
    ]


# Trace B: sessions with a 5 s gap (Beam's: [first, last + gap)), a watermark that only events move,
# 20 s allowed lateness, retracting: a straggler bridges two sessions that have both fired.
TRACE_B = [ev("s", 1, 0, 0), ev("s", 2, 8, 8), ev("s", 4, 20, 20), ev("s", 8, 4, 21)]


def test_trace_b_a_straggler_merges_two_sessions_and_retracts_both():
    got = both(TRACE_B, Session(5), watermark=Delay(0, follow_clock=False), allowed_lateness=20,
               mode="retracting")
    assert rows(got) == [
        (0, 5, 1, 1, "ON_TIME", 0, 8, 1),
        (8, 13, 1, 2, "ON_TIME", 0, 20, 1),
        (8, 13, 1, 2, "LATE", 0, 21, -1),    # both earlier sessions taken back...
        (0, 5, 1, 1, "LATE", 0, 21, -1),
        (0, 13, 3, 11, "LATE", 1, 21, 1),    # ...for the one they became
        (20, 25, 1, 4, "ON_TIME", 0, 21, 1),  # still open when the input ends
    ]
    assert got.panes["at_end"].tolist() == [False] * 5 + [True]
    assert got.table()[["window_start", "window_end", "count", "sum"]].assign(
        window_start=lambda f: (f.window_start - pd.Timestamp(T)).dt.total_seconds(),
        window_end=lambda f: (f.window_end - pd.Timestamp(T)).dt.total_seconds(),
    ).values.tolist() == [[0, 13, 3, 11.0], [20, 25, 1, 4.0]]
    assert batch.panes(TRACE_B, Session(5)).table().equals(got.table())


def test_sessions_exactly_one_gap_apart_are_two_sessions():
    pile = [ev("g", 1, 0, 0), ev("g", 2, 5, 5), ev("g", 4, 9.999, 9.999)]
    assert [(r[0], r[1], r[2]) for r in rows(both(pile, Session(5)))] == [(0, 5, 1), (5, 14.999, 2)]
    assert [(r[0], r[1], r[2]) for r in rows(batch.panes(pile, Session(5)))] == [(0, 5, 1), (5, 14.999, 2)]


# Trace C: an idle key, per-key watermarks 1 s behind.
TRACE_C = [ev("idle", 1, 1, 1), ev("busy", 2, 30, 30)]


def test_trace_c_an_idle_keys_window_closes_by_the_clock_alone():
    got = both(TRACE_C, Tumbling(10, align_to=T), watermark=Delay(1, per="key"))
    # Its watermark is 0 at 1 and follows the clock: it reaches 10 at 11, when nothing arrives.
    assert rows(got, "idle") == [(0, 10, 1, 1, "ON_TIME", 0, 11, 1)]
    assert not got.panes["at_end"].iloc[0]


def test_trace_c_without_the_clock_an_idle_key_waits_for_the_end_of_input():
    got = both(TRACE_C, Tumbling(10, align_to=T), watermark=Delay(1, per="key", follow_clock=False))
    assert rows(got, "idle") == [(0, 10, 1, 1, "ON_TIME", 0, 30, 1)]
    assert got.panes.loc[got.panes["key"] == "idle", "at_end"].all()


def test_trace_c_one_watermark_for_the_input_closes_it_when_another_key_moves_it():
    got = both(TRACE_C, Tumbling(10, align_to=T), watermark=Delay(1, follow_clock=False))
    assert rows(got, "idle") == [(0, 10, 1, 1, "ON_TIME", 0, 30, 1)]  # moved on by the busy key's event
    assert not got.panes["at_end"].iloc[0]


def test_a_scripted_watermark_fires_at_its_points():
    schedule = Schedule([(at(3), at(0)), (at(7), at(10)), (at(20), at(15))])
    pile = [ev("a", 1, 1, 1), ev("a", 2, 12, 12), ev("a", 4, 5, 13)]
    got = both(pile, Tumbling(10, align_to=T), watermark=schedule, allowed_lateness=5)
    assert rows(got) == [
        (0, 10, 1, 1, "ON_TIME", 0, 7, 1),  # the watermark reaches 10 at 7
        (0, 10, 2, 5, "LATE", 1, 13, 1),
        (10, 20, 1, 2, "ON_TIME", 0, 13, 1),  # not reached by 13: the end of input
    ]
    assert got.dropped.empty
    assert got.watermark["watermark"].tolist() == [pd.Timestamp(at(0)), pd.Timestamp(at(10))]


def test_bytewax_rule_matches_bytewax_windowing_exactly():
    """The engine with bytewax's rule and clock gives what bytewax's fold_window gives (lesson 04's driver)."""
    events = pipe(seed=7, keys=3, disorder=4)
    for window in (Tumbling(5), Sliding(6, slide=3)):
        ours = both(events, window, watermark=Delay(2, per="key", follow_clock=False), lateness="bytewax",
                    limit=400)
        theirs = stream.windowed(events, window, delay=2, limit=400)
        got = ours.panes[["key", "window_start", "window_end", "count", "sum", "emitted_at"]]
        want = theirs.windows[["key", "window_start", "window_end", "count", "sum", "emitted_at"]]
        sort = ["key", "window_start"]
        pd.testing.assert_frame_equal(got.sort_values(sort, ignore_index=True), want.sort_values(sort, ignore_index=True))
        assert set(map(tuple, ours.dropped[["key", "event_time", "arrival_time"]].values)) == set(
            map(tuple, theirs.late_events[["key", "event_time", "arrival_time"]].values))


@pytest.mark.parametrize("bad, message", [
    (dict(mode="replace"), "mode must be one of"),
    (dict(allowed_lateness=-1), "allowed_lateness must be >= 0, got -1"),
    (dict(trigger=Trigger(early_every=10), lateness="sooner"), "lateness must be one of"),
    (dict(watermark="5s"), "watermark must be Delay"),
    (dict(watermark=-5), r"watermark \(its delay\) must be >= 0, got -5"),
    (dict(lateness="bytewax", allowed_lateness=5), "allowed_lateness must be 0"),
])
def test_bad_settings_name_the_parameter_and_the_value(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        check_settings(Tumbling(10), **bad)


@pytest.mark.parametrize("make, message", [
    (lambda: Trigger(early_every=0), "early_every must be > 0, got 0"),
    (lambda: Trigger(late_every=-2), "late_every must be > 0, got -2"),
    (lambda: Trigger(early_count=0), "early_count must be >= 1, got 0"),
    (lambda: Trigger(early_count=2.5), "early_count must be a whole number"),
    (lambda: Schedule([(at(5), at(3)), (at(6), at(2))]), "must never go back"),
    (lambda: Schedule([(at(5), at(3)), (at(5), at(4))]), "processing times must increase"),
    (lambda: Schedule([]), "at least one"),
    (lambda: Delay(-1), "delay must be >= 0, got -1"),
])
def test_bad_watermarks_and_triggers_are_refused_clearly(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


# --------------------------------------------------------------------------- properties

keys = st.sampled_from(["a", "b", "c"])
# Times on whole seconds, often on window boundaries and with round lags, so that an event lands exactly
# on a window's end, the watermark exactly on an end or on end + allowed lateness: the edges of every rule.
seconds_st = st.integers(0, 12).map(lambda x: 5 * x) | st.integers(0, 60)
lags_st = st.sampled_from([0, 2, 4, 5, 10]) | st.integers(0, 12)
event_st = st.tuples(keys, st.integers(-5, 5), seconds_st, lags_st)


def pile_of(raw):
    """Events from (key, value, event second, lag): arrival = event time + lag, in arrival order."""
    events = [Event(k, float(v), at(t), at(t + lag)) for k, v, t, lag in raw]
    return sorted(events, key=lambda e: e.arrival_time)


windows_st = st.sampled_from([Tumbling(10, align_to=T), Sliding(10, slide=5, align_to=T), Session(4)])
watermarks_st = st.builds(Delay, st.integers(0, 6), st.sampled_from(["input", "key"]), st.booleans())
triggers_st = st.builds(Trigger, st.none() | st.integers(1, 8), st.none() | st.integers(1, 4),
                        st.none() | st.integers(1, 8))
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def by_window(frame):
    return frame.set_index(["key", "window_start", "window_end"])[["count", "sum"]].sort_index()


@PROPERTY
@given(st.lists(event_st, max_size=40), windows_st, watermarks_st, triggers_st)
def test_with_lateness_allowed_for_the_largest_delay_the_last_pane_is_the_batch_answer(raw, window, wm, trigger):
    pile = pile_of(raw)
    if not pile:
        return
    whole = batch.panes(pile, window)
    want = whole.table()
    retracting = loop(pile, window, watermark=wm, allowed_lateness=12, trigger=trigger, mode="retracting")
    assert retracting.dropped.empty
    pd.testing.assert_frame_equal(by_window(retracting.table()), by_window(want), check_dtype=False)  # folded
    # Discarding: a window's panes add up to its answer (a session's: the panes of every session inside it).
    discarding = loop(pile, window, watermark=wm, allowed_lateness=12, trigger=trigger, mode="discarding")
    accounts = reconcile(whole, discarding)
    assert accounts["agree"].all() and not accounts["dropped_count"].any()
    # Accumulating: the last pane of every window is its batch answer. (A session merged away keeps its
    # last pane in the output too, under its old extent: only retractions take it back.)
    acc = loop(pile, window, watermark=wm, allowed_lateness=12, trigger=trigger, mode="accumulating").panes
    last = acc.groupby(["key", "window_start", "window_end"])[["count", "sum"]].last()
    pd.testing.assert_frame_equal(last.loc[by_window(want).index], by_window(want), check_dtype=False)


@PROPERTY
@given(st.lists(event_st, max_size=40), windows_st, watermarks_st, triggers_st, st.integers(0, 8))
def test_batch_is_the_final_stream_answer_plus_what_was_dropped_window_by_window(raw, window, wm, trigger, late):
    pile = pile_of(raw)
    for mode in ("discarding", "retracting"):
        got = loop(pile, window, watermark=wm, allowed_lateness=late, trigger=trigger, mode=mode)
        accounts = reconcile(batch.panes(pile, window), got)
        assert accounts["agree"].all(), accounts[~accounts["agree"]]
        # Nothing counted twice, nothing lost: every counted or dropped event is in some batch window.
        if not isinstance(window, Sliding):
            assert accounts["stream_count"].sum() + accounts["dropped_count"].sum() == len(pile)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event_st, max_size=30), windows_st, watermarks_st, triggers_st, st.integers(0, 8),
       st.sampled_from(["discarding", "accumulating", "retracting"]), st.sampled_from([1, 3, 1000]))
def test_the_stream_gives_the_loops_panes_whatever_the_batch_size(raw, window, wm, trigger, late, mode, size):
    pile = pile_of(raw)
    kw = dict(watermark=wm, allowed_lateness=late, trigger=trigger, mode=mode)
    pd.testing.assert_frame_equal(stream.panes(pile, window, batch_size=size, **kw).panes,
                                  loop(pile, window, **kw).panes)


def test_a_slide_so_small_that_one_event_falls_in_too_many_windows_is_refused():
    with pytest.raises(ValueError, match="each event would fall in 3,600,000 windows"):
        Sliding(3600, slide=0.001)


@pytest.mark.parametrize("delays, message", [([], "at least one delay"), ("5", "a list of delays"), ([-1], ">= 0")])
def test_the_tradeoff_refuses_delays_it_cannot_try(delays, message):
    with pytest.raises((ValueError, TypeError), match=message):
        stream.panes_tradeoff(TRACE_A, Tumbling(10, align_to=T), delays)
