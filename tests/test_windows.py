"""Event-time windows in both drivers: hand-checked answers, batch = stream + late, emission times, bad input."""

import math
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamlab import batch, stream
from streamlab.events import Event, pipe, take, to_frame
from streamlab.summary import MISSING
from streamlab.windows import (
    CLOSED_AT_END,
    CLOSED_BY_WATERMARK,
    SKEW,
    Fold,
    Session,
    Sliding,
    Tumbling,
    open_on_arrival,
    reconcile,
)

T = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


def sale(key: str, value: float, happened: float, arrived: float) -> Event:
    return Event(key, value, at(happened), at(arrived))


# --- A hand-checkable trace ----------------------------------------------------------------------
# Sales from two stores' tills, times in seconds after 09:00:00. Tumbling windows of 10 s from
# 09:00:00, watermark delay 5 s. Store 1's watermark (latest event time - 5 s) and what it does:
TRACE = [
    sale("store-1", 10.0, 1, 2),    # W -4
    sale("store-2", 7.0, 3, 3),     # store 2: W -2
    sale("store-1", 20.0, 4, 5),    # W -1
    sale("store-1", 5.0, 12, 13),   # W 7
    sale("store-1", 8.0, 6, 14),    # 6 < W 7: LATE, although its window [0, 10) is still open
    sale("store-1", 4.0, 9, 15),    # 9 >= 7: a straggler that made it in time
    sale("store-1", 1.0, 17, 18),   # W 12: closes [0, 10) at 09:00:18 with 10 + 20 + 4
    sale("store-1", 30.0, 8, 20),   # 8 < W 12: LATE, and its window has closed
    sale("store-2", 9.0, 22, 24),   # store 2: W 17, closes its [0, 10) at 09:00:24
    sale("store-2", 6.0, 11, 25),   # 11 < 17: LATE; the only event of store 2's [10, 20)
    sale("store-1", 2.0, 26, 27),   # W 21: closes [10, 20) at 09:00:27
    sale("store-2", 1.0, 28, 29),   # W 23; the input ends here, at 09:00:29
]
WINDOW = Tumbling(10, align_to=T)


def rows(result, *columns):
    return [tuple(r) for r in result.windows[list(columns)].itertuples(index=False)]


def test_hand_checked_tumbling_windows_in_both_drivers():
    b = batch.windowed(TRACE, WINDOW, delay=5)
    s = stream.windowed(TRACE, WINDOW, delay=5)
    # Batch: every event in its window, all known when the pile is complete (09:00:29).
    assert rows(b, "key", "window_start", "count", "sum") == [
        ("store-1", at(0), 5, 72.0),   # 10 + 20 + 8 + 4 + 30
        ("store-1", at(10), 2, 6.0),   # 5 + 1
        ("store-1", at(20), 1, 2.0),
        ("store-2", at(0), 1, 7.0),
        ("store-2", at(10), 1, 6.0),
        ("store-2", at(20), 2, 10.0),
    ]
    assert set(b.windows["emitted_at"]) == {at(29)} and set(b.windows["closed_by"]) == {CLOSED_AT_END}
    # Stream: only on-time events; each answer when the watermark passes the window's end.
    assert rows(s, "key", "window_start", "window_end", "count", "sum", "emitted_at", "closed_by") == [
        ("store-1", at(0), at(10), 3, 34.0, at(18), CLOSED_BY_WATERMARK),
        ("store-1", at(10), at(20), 2, 6.0, at(27), CLOSED_BY_WATERMARK),
        ("store-1", at(20), at(30), 1, 2.0, at(29), CLOSED_AT_END),
        ("store-2", at(0), at(10), 1, 7.0, at(24), CLOSED_BY_WATERMARK),
        ("store-2", at(20), at(30), 2, 10.0, at(29), CLOSED_AT_END),
    ]
    assert s.windows["latency"].tolist() == [timedelta(seconds=x) for x in (8, 7, -1, 14, -1)]
    expected_late = [
        ("store-1", 8.0, at(6), at(14), at(7)),
        ("store-1", 30.0, at(8), at(20), at(12)),
        ("store-2", 6.0, at(11), at(25), at(17)),
    ]
    for result in (b, s):
        assert [tuple(r) for r in result.late_events.itertuples(index=False)] == expected_late
        assert result.n_late == 3 and result.events_read == 12
    # Batch = stream + late, window by window: store 1's [0, 10) is 5 = 3 + 2 and 72 = 34 + 8 + 30;
    # store 2's [10, 20) exists only in the batch: all of it was late.
    r = reconcile(b, s)
    assert r.ok, r.message()
    first = r.table[(r.table["key"] == "store-1") & (r.table["window_start"] == at(0))].set_index("statistic")
    assert first.loc["count", ["batch", "stream", "late"]].tolist() == [5, 3, 2]
    assert first.loc["sum", ["batch", "stream", "late"]].tolist() == [72.0, 34.0, 38.0]
    only_late = r.table[(r.table["key"] == "store-2") & (r.table["window_start"] == at(10))]
    assert only_late.set_index("statistic").loc["count", ["batch", "stream", "late"]].tolist() == [1, 0, 1]
    assert r.message() == "batch = stream + late in all 6 windows (2 of them with late events)."


def test_hand_checked_watermark_advances():
    s = stream.windowed(TRACE, WINDOW, delay=5)
    one = s.watermark[s.watermark["key"] == "store-1"]
    # Only events later than any before them move the watermark; stragglers don't.
    assert list(zip(one["arrival_time"], one["watermark"])) == [
        (at(2), at(-4)), (at(5), at(-1)), (at(13), at(7)), (at(18), at(12)), (at(27), at(21)),
    ]
    pd.testing.assert_frame_equal(batch.windowed(TRACE, WINDOW, delay=5).watermark, s.watermark)


def test_bytewax_sets_an_event_aside_even_while_its_window_is_open_unlike_flink_and_beam():
    s = stream.windowed(TRACE, WINDOW, delay=5)
    window = s.windows.set_index(["key", "window_start"]).loc[("store-1", pd.Timestamp(at(0)))]
    late = s.late_events[s.late_events["key"] == "store-1"]
    # The 8.00 sale (happened 09:00:06) arrived at 09:00:14, before its window's answer came out
    # at 09:00:18: Flink or Beam would have counted it. bytewax set it aside anyway.
    assert late["arrival_time"].iloc[0] == at(14) < window["emitted_at"] == at(18)
    assert window["count"] == 3
    # The 30.00 sale arrived at 09:00:20, after the answer: late under every rule.
    assert late["arrival_time"].iloc[1] == at(20) > window["emitted_at"]
    # Store 2's 6.00 sale (09:00:11) met a watermark of 09:00:17, short of its window's end, 09:00:20.
    assert open_on_arrival(s).tolist() == [True, False, True]
    with pytest.raises(ValueError, match="needs tumbling windows"):
        open_on_arrival(stream.windowed(TRACE, Session(5), delay=5))


def test_with_a_delay_as_long_as_the_slowest_event_nothing_is_late():
    slowest = max(e.delay for e in TRACE)
    assert slowest == timedelta(seconds=14)
    b, s = batch.windowed(TRACE, WINDOW, delay=slowest), stream.windowed(TRACE, WINDOW, delay=slowest)
    assert s.n_late == b.n_late == 0
    assert rows(s, "key", "window_start", "count", "sum") == rows(b, "key", "window_start", "count", "sum")
    # Enough, but more than needed: what makes an event late is how far it is behind the newest
    # event of its key already seen. The furthest behind is store 2's 09:00:11 sale, which
    # arrived after its 09:00:22 one: 11 s. Wait 11 s and nothing is late; wait 10 s and it is.
    assert stream.windowed(TRACE, WINDOW, delay=11).n_late == 0
    assert stream.windowed(TRACE, WINDOW, delay=10).late_events["value"].tolist() == [6.0]


def test_hand_checked_sliding_windows():
    store1 = [e for e in TRACE if e.key == "store-1"]
    w = Sliding(10, slide=5, align_to=T)
    b, s = batch.windowed(store1, w, delay=5), stream.windowed(store1, w, delay=5)
    assert rows(b, "window_start", "count", "sum") == [
        (at(-5), 2, 30.0), (at(0), 5, 72.0), (at(5), 4, 47.0), (at(10), 2, 6.0),
        (at(15), 1, 1.0), (at(20), 1, 2.0), (at(25), 1, 2.0),
    ]
    assert rows(s, "window_start", "count", "sum", "emitted_at", "closed_by") == [
        (at(-5), 2, 30.0, at(13), CLOSED_BY_WATERMARK),
        (at(0), 3, 34.0, at(18), CLOSED_BY_WATERMARK),
        (at(5), 2, 9.0, at(27), CLOSED_BY_WATERMARK),    # 12 and 9; the late 6 and 8 are set aside
        (at(10), 2, 6.0, at(27), CLOSED_BY_WATERMARK),
        (at(15), 1, 1.0, at(27), CLOSED_AT_END),
        (at(20), 1, 2.0, at(27), CLOSED_AT_END),
        (at(25), 1, 2.0, at(27), CLOSED_AT_END),
    ]
    # A late event falls in two sliding windows but is one late event, listed once.
    assert s.late_events["value"].tolist() == [8.0, 30.0]
    assert reconcile(b, s).ok


# Sessions with a 5 s gap. Two bursts, 09:00:00-03 and 09:00:12-14, are 9 s apart: two
# sessions. Then a straggler that happened at 09:00:07 arrives, within 5 s of both: one session.
SESSIONS = [
    sale("till", 1.0, 0, 1),
    sale("till", 2.0, 3, 4),
    sale("till", 3.0, 12, 13),
    sale("till", 4.0, 14, 15),
    sale("till", 5.0, 7, 16),   # the straggler
    sale("till", 6.0, 30, 31),
]


def test_hand_checked_sessions_merge_when_a_straggler_arrives():
    gap = Session(5)
    before = batch.windowed(SESSIONS, gap, until=at(16))   # the pile before the straggler arrived
    assert rows(before, "window_start", "window_end", "count", "sum") == [
        (at(0), at(3), 2, 3.0), (at(12), at(14), 2, 7.0),
    ]
    after = batch.windowed(SESSIONS, gap, delay=10)
    assert rows(after, "window_start", "window_end", "count", "sum") == [
        (at(0), at(14), 5, 15.0), (at(30), at(30), 1, 6.0),
    ]
    # Waiting 10 s, the stream holds the first burst open until the straggler arrives (W = 4 <= 7),
    # so it sees one session, closed when 09:00:30 moves W to 20 > 14 + 5.
    patient = stream.windowed(SESSIONS, gap, delay=10)
    assert patient.n_late == 0
    assert rows(patient, "window_start", "window_end", "count", "sum", "emitted_at", "closed_by") == [
        (at(0), at(14), 5, 15.0, at(31), CLOSED_BY_WATERMARK),
        (at(30), at(30), 1, 6.0, at(31), CLOSED_AT_END),
    ]
    # Waiting 5 s, 09:00:14 moves W to 9 > 3 + 5: the first session closes at 09:00:15, and the
    # straggler (7 < 9) is late. Batch = stream + late: 5 = 2 + 2 + 1 and 15 = 3 + 7 + 5.
    hasty = stream.windowed(SESSIONS, gap, delay=5)
    assert rows(hasty, "window_start", "window_end", "count", "sum", "emitted_at") == [
        (at(0), at(3), 2, 3.0, at(15)),
        (at(12), at(14), 2, 7.0, at(31)),
        (at(30), at(30), 1, 6.0, at(31)),
    ]
    assert hasty.late_events["value"].tolist() == [5.0]
    r = reconcile(batch.windowed(SESSIONS, gap, delay=5), hasty)
    assert r.ok, r.message()
    merged = r.table[(r.table["window_start"] == at(0))].set_index("statistic")
    assert merged.loc["count", ["batch", "stream", "late"]].tolist() == [5, 4, 1]
    assert merged.loc["sum", ["batch", "stream", "late"]].tolist() == [15.0, 10.0, 5.0]


def test_ties_an_event_at_the_watermark_is_on_time_and_a_window_closes_when_the_watermark_reaches_its_end():
    pile = [
        sale("k", 1.0, 5, 5),     # W 5
        sale("k", 2.0, 10, 10),   # W 10 reaches [0, 10)'s end: it closes, at 09:00:10
        sale("k", 3.0, 10, 11),   # exactly at the watermark: on time, in [10, 20)
        sale("k", 4.0, 9, 12),    # 9 < 10: late
    ]
    s = stream.windowed(pile, WINDOW, delay=0)
    assert rows(s, "window_start", "count", "emitted_at", "closed_by") == [
        (at(0), 1, at(10), CLOSED_BY_WATERMARK), (at(10), 2, at(12), CLOSED_AT_END),
    ]
    assert s.late_events["value"].tolist() == [4.0]
    assert reconcile(batch.windowed(pile, WINDOW, delay=0), s).ok


def test_ties_a_session_stays_open_while_the_watermark_is_exactly_gap_past_its_last_event():
    pile = [
        sale("k", 1.0, 0, 0),
        sale("k", 2.0, 6, 6),     # W 5 = 0 + gap: not yet past it, so the session stays open
        sale("k", 3.0, 5, 7),     # on time (5 >= W 5) and within the gap of 0 (and of 6): one session
    ]
    s = stream.windowed(pile, Session(5), delay=1)
    assert rows(s, "window_start", "window_end", "count", "emitted_at", "closed_by") == [
        (at(0), at(6), 3, at(7), CLOSED_AT_END),
    ]
    assert reconcile(batch.windowed(pile, Session(5), delay=1), s).ok


@pytest.mark.parametrize("window", [WINDOW, Sliding(10, 5, align_to=T), Session(5)])
def test_answers_and_emission_times_do_not_depend_on_the_batch_size(window):
    reference = stream.windowed(TRACE, window, delay=5, batch_size=1)
    for size in (2, 5, 1000):
        other = stream.windowed(TRACE, window, delay=5, batch_size=size)
        pd.testing.assert_frame_equal(reference.windows, other.windows)
        pd.testing.assert_frame_equal(reference.late_events, other.late_events)


def test_a_fold_of_your_own_per_window_and_batch_equals_merge_of_stream_and_late():
    biggest = Fold("biggest", lambda: -math.inf, lambda acc, e: max(acc, e.value), max)
    b = batch.windowed(TRACE, WINDOW, delay=5, fold=biggest)
    s = stream.windowed(TRACE, WINDOW, delay=5, fold=biggest)
    assert b.windows["biggest"].tolist() == [30.0, 5.0, 2.0, 7.0, 6.0, 9.0]
    assert s.windows["biggest"].tolist() == [20.0, 5.0, 2.0, 7.0, 9.0]   # without the late 30 and 6
    r = reconcile(b, s)
    assert r.ok, r.message()
    row = r.table[(r.table["statistic"] == "biggest") & (r.table["window_start"] == at(0))].iloc[0]
    assert (row["batch"], row["stream"], row["late"]) == (30.0, 20.0, 30.0)
    times = Fold("times", frozenset, lambda acc, e: acc | {e.event_time.second}, frozenset.union)
    r = reconcile(batch.session(SESSIONS, 5, delay=5, fold=times), stream.session(SESSIONS, 5, delay=5, fold=times))
    assert r.ok
    assert r.table[r.table["statistic"] == "times"]["batch"].iloc[0] == frozenset({0, 3, 7, 12, 14})


def test_reconcile_finds_a_real_difference():
    b = batch.windowed(TRACE, WINDOW, delay=5)
    s = stream.windowed(TRACE, WINDOW, delay=5)
    wrong = s.windows.copy()
    wrong.loc[0, "sum"] = 35.0
    broken = type(s)(**{**s.__dict__, "windows": wrong})
    r = reconcile(b, broken)
    assert not r.ok
    assert "store-1 @ 2026-03-01T09:00:00+00:00 sum: batch 72, stream + late 73" in r.message()
    with pytest.raises(ValueError, match="same question"):
        reconcile(b, stream.windowed(TRACE, Tumbling(5, align_to=T), delay=5))
    # The batch answer does not depend on the delay: compared with a stream that waited 6 s it
    # still reconciles, but its late events were predicted for 5 s, so they are not compared.
    other = reconcile(b, stream.windowed(TRACE, WINDOW, delay=6))
    assert other.ok and other.same_late_events is None
    wrong_late = s.late_events.copy()
    wrong_late.loc[2, "watermark"] = pd.Timestamp(at(16))
    fooled = reconcile(b, type(s)(**{**s.__dict__, "late_events": wrong_late}))
    assert fooled.same_late_events is False and not fooled.ok
    assert fooled.agreement.ok   # the numbers still add up; only the prediction differs


# --- Properties: random traces with disorder up to D ---------------------------------------------


@st.composite
def traces(draw, min_disorder=0, max_disorder=12):
    """Events over a minute on a few keys, each arriving up to D seconds after it happened.

    Times are whole seconds, so that ties (an event exactly at the watermark, a watermark
    exactly at a window's end) happen often: the rules' boundaries are where bugs hide.
    """
    disorder = draw(st.integers(min_value=min_disorder, max_value=max_disorder))
    n = draw(st.integers(min_value=0, max_value=40))
    events = []
    for _ in range(n):
        happened = draw(st.integers(min_value=0, max_value=60))
        lag = draw(st.integers(min_value=0, max_value=disorder))
        key = draw(st.sampled_from(["a", "b"]))
        value = float(draw(st.integers(min_value=-50, max_value=50)))
        events.append(sale(key, value, happened, happened + lag))
    return events, disorder


WINDOW_KINDS = {
    "tumbling": st.integers(min_value=1, max_value=20).map(lambda n: Tumbling(n, align_to=T)),
    "sliding": st.integers(min_value=2, max_value=20).flatmap(
        lambda length: st.integers(min_value=1, max_value=length).map(
            lambda slide: Sliding(length, slide, align_to=T)
        )
    ),
    "session": st.integers(min_value=1, max_value=10).map(Session),
}


def check_emission_times(events, result):
    """An independent oracle for ``emitted_at`` and the counts of a stream result.

    A window's answer comes out at the arrival of the first event of its key that moved the
    watermark past its end, else at the end of input; it counts exactly the key's events in
    the window that were not late, and every one of them arrived before the answer came out.
    """
    if not events:
        assert result.windows.empty
        return
    ended = max(e.arrival_time for e in events)
    late = set(result.late_events[["key", "event_time", "arrival_time"]].itertuples(index=False, name=None))
    session = isinstance(result.window, Session)
    for w in result.windows.itertuples(index=False):
        start, end = w.window_start.to_pydatetime(), w.window_end.to_pydatetime()
        mine = sorted((e for e in events if e.key == w.key), key=lambda e: e.arrival_time)
        latest = None
        expected = (ended, CLOSED_AT_END)
        for e in mine:
            latest = e.event_time if latest is None else max(latest, e.event_time)
            watermark = latest - result.delay
            # Written out again here rather than calling the library's own rule, so a slip in one shows.
            if (watermark > end + result.window.gap) if session else (watermark >= end):
                expected = (e.arrival_time, CLOSED_BY_WATERMARK)
                break
        assert (w.emitted_at, w.closed_by) == expected, w
        counted = [
            e for e in mine
            if (start <= e.event_time <= end if session else start <= e.event_time < end)
            and (e.key, e.event_time, e.arrival_time) not in late
        ]
        assert w.count == len(counted), w
        assert max(e.arrival_time for e in counted) <= w.emitted_at


def check_open_on_arrival(result):
    """A late event's window was open on its arrival exactly when its answer came out no earlier."""
    answers = result.windows.set_index(["key", "window_start"])
    for (_, e), still_open in zip(result.late_events.iterrows(), open_on_arrival(result), strict=True):
        start = pd.Timestamp(result.window.starts_for(e["event_time"].to_pydatetime())[0])
        if (e["key"], start) not in answers.index:
            continue  # every event of that window was late: the stream never answered it
        answer = answers.loc[(e["key"], start)]
        if answer["closed_by"] == CLOSED_AT_END:
            assert still_open
        elif still_open:
            assert e["arrival_time"] <= answer["emitted_at"]   # equal: it arrived just before the closing event
        else:
            assert e["arrival_time"] >= answer["emitted_at"]


@pytest.mark.parametrize("kind", ["tumbling", "sliding", "session"])
def test_property_delay_at_least_the_disorder_stream_equals_batch(kind):
    @settings(max_examples=30)
    @given(traces(), WINDOW_KINDS[kind], st.integers(min_value=0, max_value=10))
    def check(trace, window, extra):
        events, disorder = trace
        b = batch.windowed(events, window, delay=disorder + extra)
        s = stream.windowed(events, window, delay=disorder + extra)
        assert s.n_late == 0 and b.n_late == 0
        columns = ["key", "window_start", "window_end", "count", "sum", "mean"]
        pd.testing.assert_frame_equal(b.windows[columns], s.windows[columns])
        check_emission_times(events, s)

    check()


@pytest.mark.parametrize("kind", ["tumbling", "sliding", "session"])
def test_property_smaller_delay_batch_equals_stream_plus_late_window_by_window(kind):
    with_late = []

    @settings(max_examples=40)
    @given(traces(min_disorder=1), WINDOW_KINDS[kind], st.data())
    def check(trace, window, data):
        events, disorder = trace
        # Any delay shorter than the disorder, in half seconds.
        delay = data.draw(st.integers(min_value=0, max_value=max(2 * disorder - 1, 0))) / 2
        b = batch.windowed(events, window, delay=delay)
        s = stream.windowed(events, window, delay=delay)
        r = reconcile(b, s)
        assert r.ok, r.message()
        assert r.same_late_events  # the batch driver knew exactly which events the stream would set aside
        check_emission_times(events, s)
        assert s.events_read == len(events)
        with_late.append(s.n_late > 0)
        if kind == "tumbling":
            check_open_on_arrival(s)

    check()
    # The property was tried where it matters: on traces with late events.
    assert sum(with_late) >= 5


def test_the_pipe_with_long_tail_delays_reconciles_for_every_window_kind():
    p = pipe(seed=4, disorder=30, delays="long_tail", missing=0.02)
    for window in (Tumbling(20), Sliding(20, 5), Session(1)):
        b = batch.windowed(p, window, delay=3, limit=2000)
        s = stream.windowed(p, window, delay=3, limit=2000)
        assert s.n_late > 0 and len(s.rejected) > 0
        assert reconcile(b, s).ok
        assert s.events_read == 2000


# --- Input: piles of your own, a pipe, and bad input ----------------------------------------------


def test_a_pile_of_tuples_or_a_frame_gives_the_same_answer_in_any_order():
    expected = stream.windowed(TRACE, WINDOW, delay=5)
    as_tuples = [(e.key, e.value, e.event_time, e.arrival_time) for e in reversed(TRACE)]
    for pile in (as_tuples, to_frame(TRACE).iloc[::-1]):
        for driver in (batch, stream):
            got = driver.windowed(pile, WINDOW, delay=5)
            pd.testing.assert_frame_equal(got.late_events, expected.late_events)
        pd.testing.assert_frame_equal(stream.windowed(pile, WINDOW, delay=5).windows, expected.windows)


def test_a_pipe_is_read_lazily_and_must_be_cut():
    p = pipe(seed=2, disorder=5)
    cut = stream.tumbling(p, 10, delay=1, until=T.replace(hour=0) + timedelta(seconds=60))
    assert cut.events_read == len(take(p, cut.events_read))
    with pytest.raises(ValueError, match="a pipe never ends"):
        stream.tumbling(p, 10)
    with pytest.raises(ValueError, match="a pipe never ends"):
        batch.tumbling(p, 10)


def test_nothing_in_nothing_out():
    for driver in (batch, stream):
        result = driver.windowed([], WINDOW, delay=5)
        assert result.windows.empty and result.late_events.empty and result.events_read == 0
        assert list(result.windows.columns) == [
            "key", "window_start", "window_end", "count", "sum", "mean", "emitted_at", "latency", "closed_by"
        ]
    assert reconcile(batch.windowed([], WINDOW), stream.windowed([], WINDOW)).ok


def test_clock_skew_and_missing_values_are_routed_aside_and_never_move_the_watermark():
    pile = [
        sale("a", 1.0, 1, 1),
        sale("a", 2.0, 100, 2),      # arrived 98 s before it happened: a clock is wrong
        Event("a", None, at(50), at(3)),
        sale("a", 3.0, 2, 4),        # on time: the skewed event did not push the watermark to 95
    ]
    for driver in (batch, stream):
        result = driver.windowed(pile, WINDOW, delay=5)
        assert result.rejected["reason"].tolist() == [SKEW, MISSING]
        assert result.n_late == 0
        assert result.windows["count"].tolist() == [2]
        assert result.events_read == 4


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: Tumbling(0), ValueError, "length must be > 0, got 0"),
        (lambda: Tumbling(timedelta(seconds=-5)), ValueError, "length must be > 0, got -5s"),
        (lambda: Sliding(10, 0), ValueError, "slide must be > 0, got 0"),
        (lambda: Sliding(10, -1), ValueError, "slide must be > 0, got -1"),
        (lambda: Sliding(10, 15), ValueError, "slide must be <= length"),
        (lambda: Session(0), ValueError, "gap must be > 0, got 0"),
        (lambda: Tumbling("10s"), TypeError, "length must be a timedelta or a number of seconds, got str"),
        (lambda: Tumbling(10, align_to=datetime(2026, 3, 1)), ValueError, "align_to must be timezone-aware UTC"),
        (lambda: stream.windowed(TRACE, WINDOW, delay=-3), ValueError, "delay must be >= 0, got -3"),
        (lambda: batch.windowed(TRACE, WINDOW, delay=timedelta(seconds=-1)), ValueError, "delay must be >= 0, got -1s"),
        (lambda: stream.windowed(TRACE, WINDOW, delay=timedelta(days=40_000)), ValueError, "delay must be at most"),
        (lambda: batch.windowed(TRACE, "tumbling"), TypeError, "window must be Tumbling"),
        (lambda: stream.windowed(TRACE, WINDOW, fold=max), TypeError, "fold must be a Fold"),
        (lambda: Fold("count", int, max, max), ValueError, "name must not be one of the columns"),
        (
            lambda: stream.windowed([("a", 1.0, datetime(2026, 3, 1, 9), T)], WINDOW),
            ValueError, "event 0: event_time must be timezone-aware UTC, got naive datetime",
        ),
        (
            lambda: batch.windowed([("a", 1.0, T, datetime(2026, 3, 1, 9))], WINDOW),
            ValueError, "event 0: arrival_time must be timezone-aware UTC, got naive datetime",
        ),
        (lambda: batch.windowed([("a", 1.0, T)], WINDOW), TypeError, "event 0 must be an Event or a tuple"),
        (
            lambda: stream.windowed(pd.DataFrame({"key": ["a"], "value": [1.0]}), WINDOW),
            ValueError, "needs the columns",
        ),
    ],
)
def test_bad_input_gives_a_clear_error(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_naive_times_in_a_frame_are_refused():
    frame = pd.DataFrame({"key": ["a"], "value": [1.0], "event_time": [pd.Timestamp("2026-03-01 09:00")],
                          "arrival_time": [pd.Timestamp("2026-03-01 09:00")]})
    for driver in (batch, stream):
        with pytest.raises(ValueError, match="event 0: event_time must be timezone-aware UTC"):
            driver.windowed(frame, WINDOW)


def test_the_clock_is_simulated_a_slow_pipe_makes_no_event_late():
    """bytewax's default EventClock adds wall-clock time to the watermark; ours must not."""
    import time

    import bytewax.operators as op
    from bytewax.operators.windowing import EventClock, TumblingWindower, fold_window

    from streamlab.stream import run
    from streamlab.stream.windows import windows_flow

    in_order = [sale("a", 1.0, i / 1000, i / 1000) for i in range(40)]   # a sale every millisecond

    def slowly():
        for e in in_order:
            time.sleep(0.003)   # but each takes 3 ms of wall-clock time to come through
            yield e

    # The dataflow itself, fed lazily by the slow generator (stream.windowed would sort a pile first).
    ours = run(windows_flow(Tumbling(1, align_to=T), timedelta(0), None), slowly(), batch_size=1, limit=40)
    assert ours["late"] == [] and [acc[0] for _, (_, acc) in ours["windows"]] == [40]

    def default_clock(events):
        keyed = op.key_on("key", events, lambda e: e.key)
        clock = EventClock(lambda e: e.event_time, timedelta(0))   # wall clock included
        out = fold_window("w", keyed, clock, TumblingWindower(timedelta(seconds=1), T), int, lambda n, _: n + 1,
                          lambda a, b: a + b)
        return out.late

    assert len(run(default_clock, slowly(), batch_size=1, limit=40)["out"]) > 0   # the trap this course avoids


def test_the_dataflow_refuses_events_out_of_arrival_order():
    from streamlab.stream import StreamError, run
    from streamlab.stream.windows import windows_flow

    with pytest.raises(StreamError, match="events must come in arrival order"):
        run(windows_flow(WINDOW, timedelta(0), None), list(reversed(TRACE)))


# --- The watermark's trade-off --------------------------------------------------------------------


def test_delay_tradeoff_fewer_late_events_later_answers():
    p = pipe(seed=5, disorder=30, delays="long_tail")
    curve = stream.delay_tradeoff(p, Tumbling(30), [0, 2, 5, 10, 30], limit=3000)
    assert curve["delay_s"].tolist() == [0, 2, 5, 10, 30]
    assert curve["late_share"].is_monotonic_decreasing and curve["late_share"].iloc[0] > 0.3
    assert curve["late_events"].iloc[-1] == 0   # waiting as long as the longest delay
    assert curve["median_latency_s"].is_monotonic_increasing
    assert (curve["median_latency_s"] >= curve["delay_s"]).all()
    # Flink and Beam, with the same watermark, would drop only events whose window had closed.
    assert (curve["closed_window_share"] <= curve["late_share"]).all()
    assert curve["closed_window_share"].iloc[0] < curve["late_share"].iloc[0] / 2
    # Each row is exactly what one stream run reports.
    one = stream.tumbling(p, 30, delay=5, limit=3000)
    assert curve.loc[2, "late_events"] == one.n_late
