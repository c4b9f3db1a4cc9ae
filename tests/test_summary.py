"""The first computation in both drivers: they agree, and nothing is silently dropped."""

import math
from datetime import timedelta

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import event_lists, events, keys

from streamlab import batch, stream
from streamlab.compare import agree
from streamlab.events import COURSE_START, Event, pipe, take, to_frame
from streamlab.summary import INFINITE, MISSING, OVERALL, STATISTICS, Stats, Summary, merge

T = COURSE_START


@given(event_lists, st.sampled_from([1, 7, 1000]), st.randoms(use_true_random=False))
def test_stream_final_answer_equals_batch_answer(pile, batch_size, rnd):
    rnd.shuffle(pile)  # any arrival order: the stream reads them as given
    b = batch.summarize(pile)
    s = stream.summarize(pile, batch_size=batch_size)
    assert agree(b, s).ok, agree(b, s).message()
    assert list(b.table.index) == list(s.table.index)
    assert b.events_read == s.events_read == len(pile)


@given(st.lists(events(key=st.just("only")), min_size=1, max_size=50))
def test_one_key_overall_row_equals_the_key_row(pile):
    table = stream.summarize(pile).table
    assert agree(table.loc[["only"]], table.loc[[OVERALL]].rename(index={OVERALL: "only"})).ok


def test_hand_checked_answer():
    pile = [
        Event("a", 3.0, T, T + timedelta(seconds=1)),
        Event("b", -2.0, T, T + timedelta(seconds=2)),
        Event("a", 0.0, T, T + timedelta(seconds=3)),
        Event("a", 6.0, T, T + timedelta(seconds=4)),
    ]
    expected = pd.DataFrame(
        {"count": [3, 1, 4], "sum": [9.0, -2.0, 7.0], "mean": [3.0, -2.0, 1.75],
         "min": [0.0, -2.0, -2.0], "max": [6.0, -2.0, 6.0]},
        index=pd.Index(["a", "b", OVERALL], name="key"),
    )
    for driver in (batch, stream):
        pd.testing.assert_frame_equal(driver.summarize(pile).table, expected)


def test_stream_updates_are_stamped_with_the_arrival_that_made_them_known():
    pile = [Event("a", float(i), T, T + timedelta(seconds=i)) for i in range(1, 6)]
    s = stream.summarize(pile, batch_size=2)
    a = s.updates[s.updates["key"] == "a"]
    assert a["known_at"].tolist() == [pd.Timestamp(T + timedelta(seconds=i)) for i in (2, 4, 5)]
    assert a["count"].tolist() == [2, 4, 5]
    assert a["sum"].tolist() == [3.0, 10.0, 15.0]
    assert s.known_at == T + timedelta(seconds=5)
    b = batch.summarize(pile)
    assert b.updates["known_at"].unique().tolist() == [pd.Timestamp(T + timedelta(seconds=5))]


def test_running_answer_converges_to_the_batch_answer():
    p = pipe(seed=11)
    s = stream.summarize(p, limit=3000)
    overall = s.updates[s.updates["key"] == OVERALL]
    assert overall["count"].is_monotonic_increasing
    assert overall["count"].iloc[-1] == 3000
    assert agree(batch.summarize(p, limit=3000), s).ok


@pytest.mark.parametrize("bad, reason", [(None, MISSING), (math.nan, MISSING), (math.inf, INFINITE), (-math.inf, INFINITE)])
def test_bad_values_are_routed_aside_with_a_reason_in_both_drivers(bad, reason):
    pile = [Event("a", 1.0, T, T), Event("a", bad, T, T), Event("b", 2.0, T, T)]
    for driver in (batch, stream):
        s = driver.summarize(pile)
        assert s.events_read == 3
        assert s.table.loc[OVERALL, "count"] == 2
        assert s.rejected["reason"].tolist() == [reason]
        assert s.rejected["key"].tolist() == ["a"]


def test_counts_reconcile_on_a_pipe_with_missing_values():
    p = pipe(seed=8, missing=0.05)
    b = batch.summarize(p, limit=4000)
    s = stream.summarize(p, limit=4000, batch_size=100)
    assert b.events_read == s.events_read == 4000
    assert len(b.rejected) == len(s.rejected) > 0
    assert b.table.loc[OVERALL, "count"] + len(b.rejected) == 4000
    assert agree(b, s).ok
    pd.testing.assert_frame_equal(
        b.rejected.reset_index(drop=True).astype({"value": "float64"}),
        s.rejected.astype({"value": "float64"}),
        check_dtype=False,
    )


def test_a_key_that_collides_with_the_overall_label_is_refused():
    with pytest.raises(ValueError, match="key must not be 'all keys'"):
        batch.summarize([Event(OVERALL, 1.0, T, T)])
    with pytest.raises(ValueError, match="key must not be 'all keys'"):
        stream.summarize([Event(OVERALL, 1.0, T, T)])


def test_summary_refuses_counts_that_do_not_reconcile():
    good = batch.summarize([Event("a", 1.0, T, T)])
    with pytest.raises(AssertionError, match="counts do not reconcile"):
        Summary(good.table, good.updates, good.rejected, events_read=2)


def test_empty_pile_gives_an_empty_answer():
    for driver in (batch, stream):
        s = driver.summarize([])
        assert s.table.empty and s.rejected.empty and s.events_read == 0
        assert list(s.table.columns) == list(STATISTICS)


def test_both_drivers_cut_a_pipe_the_same_way():
    p = pipe(seed=3)
    horizon = T + timedelta(seconds=20)
    b, s = batch.summarize(p, until=horizon), stream.summarize(p, until=horizon)
    assert b.events_read == s.events_read == len([e for e in take(p, 1000) if e.arrival_time < horizon])
    assert agree(b, s).ok
    with pytest.raises(ValueError, match="a pipe never ends"):
        batch.summarize(p)
    with pytest.raises(ValueError, match="a pipe never ends"):
        stream.summarize(p)


def test_batch_accepts_a_frame_but_not_a_cut_of_one():
    frame = to_frame(take(pipe(), 10))
    assert batch.summarize(frame).events_read == 10
    with pytest.raises(ValueError, match="already a finite pile"):
        batch.summarize(frame, limit=5)


def test_keep_updates_false_keeps_only_the_latest_answer_per_key_but_every_rejected_event():
    p = pipe(seed=8, missing=0.05, keys=3)
    s = stream.summarize(p, limit=3000, batch_size=100, keep_updates=False)
    assert sorted(s.updates["key"]) == sorted(["store-0", "store-1", "store-2", OVERALL])
    assert len(s.rejected) == len(batch.summarize(p, limit=3000).rejected)


@given(st.lists(st.tuples(st.integers(0, 5), st.floats(-100, 100)), min_size=1, max_size=40))
def test_merge_of_groups_equals_stats_of_all(pairs):
    groups: dict[int, Stats] = {}
    everything = Stats()
    for group, value in pairs:
        groups.setdefault(group, Stats()).add(value)
        everything.add(value)
    merged = merge(s.as_tuple() for s in groups.values())
    assert merged[0] == everything.count
    assert merged[1] == pytest.approx(everything.sum, abs=1e-9)
    assert merged[2:] == (everything.min, everything.max)


@given(keys)
def test_stats_start_empty(key):
    s = Stats()
    assert s.count == 0 and math.isnan(s.mean)


def test_the_stream_answer_at_any_moment_is_the_batch_answer_over_the_pile_so_far():
    p = pipe(seed=6, rate=2.0)
    s = stream.summarize(p, until=T + timedelta(minutes=10), batch_size=1)
    for minutes in (0.5, 3, 7.25, 10):
        moment = T + timedelta(minutes=minutes)
        assert agree(batch.summarize(p, until=moment), s.as_of(moment)).ok


def test_the_batch_answer_is_unknown_until_the_pile_is_complete():
    p = pipe(seed=6, rate=2.0)
    b = batch.summarize(p, until=T + timedelta(minutes=10))
    assert b.as_of(T + timedelta(minutes=9)).empty
    assert agree(b.as_of(T + timedelta(minutes=11)), b.table).ok


def test_micro_batches_make_the_stream_answer_lag_behind_arrivals():
    p = pipe(seed=6, rate=2.0)
    moment = T + timedelta(minutes=5, seconds=3)
    s = stream.summarize(p, until=T + timedelta(minutes=10), batch_size=100)
    assert s.as_of(moment).loc[OVERALL, "count"] < batch.summarize(p, until=moment).table.loc[OVERALL, "count"]


def test_waits_until_an_answer_includes_each_event():
    from streamlab.summary import waits

    pile = [Event("a", float(i), T, T + timedelta(seconds=i)) for i in range(1, 6)]
    pile.insert(2, Event("b", None, T, T + timedelta(seconds=2)))
    frame = to_frame(pile)
    assert waits(batch.summarize(pile), frame).tolist() == [4.0, 3.0, 2.0, 1.0, 0.0]
    assert waits(stream.summarize(pile, batch_size=1), frame).tolist() == [0.0] * 5
    # Batches of two (the missing value rides in one): answers at 2 s, 3 s (after the bad one), 5 s.
    assert waits(stream.summarize(pile, batch_size=2), frame).tolist() == [1.0, 0.0, 0.0, 1.0, 0.0]
