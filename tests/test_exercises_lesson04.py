"""Lesson 04's exercises: each check accepts right answers in their usual forms and names typical mistakes.

Every wrong answer below is written as a learner would write it, not taken
from the check's own models of mistakes, so a test fails if a check stops
recognising a mistake or recognises it for the wrong reason.
"""

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from streamlab import batch, stream, to_frame
from streamlab.exercises import lesson04
from streamlab.windows import Tumbling, reconcile

# -- shared by the answers below ---------------------------------------------------------------


def newest_before(events):
    """Per event: the newest event time of its store among the events listed before it (None for the first)."""
    newest, out = {}, []
    for e in events:
        out.append(newest.get(e.key))
        if e.key not in newest or e.event_time > newest[e.key]:
            newest[e.key] = e.event_time
    return out


def window_start(t, window):
    return window.align_to + (t - window.align_to) // window.length * window.length


def per_window(frame, window, *, time="event_time", agg=("count", "sum")):
    frame = frame.assign(window_start=window_start(frame[time], window))
    return frame.groupby(["key", "window_start"], observed=True)["value"].agg(list(agg)).reset_index()


def assert_hint(feedback, hint):
    assert feedback.status == "wrong", feedback
    assert hint in feedback.message, feedback


# -- 1. which sales are late --------------------------------------------------------------------


def late(events, delay):
    return [e for e, seen in zip(events, newest_before(events)) if seen is not None and e.event_time < seen - delay]


def late_with_pandas(events, delay):
    sales = to_frame(events)
    seen = sales.groupby("key", observed=True)["event_time"].cummax().groupby(sales["key"], observed=True).shift()
    return sales[sales["event_time"] < seen - delay]


def late_counting_itself(events, delay):
    # The newest so far *including* the sale itself: the same watermark for a late sale, never late otherwise.
    newest, out = {}, []
    for e in events:
        newest[e.key] = max(newest.get(e.key, e.event_time), e.event_time)
        out.append(e.event_time < newest[e.key] - delay)
    return out


@pytest.mark.parametrize(
    "variant",
    [
        late,
        late_with_pandas,
        late_counting_itself,
        lambda events, delay: np.array(late_counting_itself(events, delay)),
        lambda events, delay: pd.Series(late_counting_itself(events, delay)),
        lambda events, delay: list(reversed(late(events, delay))),
        lambda events, delay: set(late(events, delay)),
        lambda events, delay: [(e.key, e.value, e.event_time, e.arrival_time) for e in late(events, delay)],
        lambda events, delay: to_frame(late(events, delay)).astype({"key": "object"}),
        lambda events, delay: batch.windowed(events, Tumbling(10), delay=delay).late_events,
        lambda events, delay: late_with_pandas(events, delay).assign(
            event_time=lambda f: f["event_time"].dt.tz_convert("Europe/Paris")),
    ],
    ids=["loop", "pandas", "itself", "numpy", "series", "reversed", "set", "tuples", "frame", "library", "paris"],
)
def test_late_sales_accepts_correct_variants(variant):
    assert lesson04.late_sales(variant).ok


def took_longer(events, delay):
    return [e for e in events if e.arrival_time - e.event_time > delay]


def one_watermark(events, delay):
    newest, out = None, []
    for e in events:
        if newest is not None and e.event_time < newest - delay:
            out.append(e)
        newest = e.event_time if newest is None else max(newest, e.event_time)
    return out


def at_or_behind(events, delay):
    return [e for e, seen in zip(events, newest_before(events)) if seen is not None and e.event_time <= seen - delay]


def whole_list(events, delay):
    newest = {}
    for e in events:
        newest[e.key] = max(newest.get(e.key, e.event_time), e.event_time)
    return [e for e in events if e.event_time < newest[e.key] - delay]


def arrival_watermark(events, delay):
    newest, out = {}, []
    for e in events:
        if e.key in newest and e.event_time < newest[e.key] - delay:
            out.append(e)
        newest[e.key] = e.arrival_time
    return out


def no_delay(events, delay):
    return late(events, timedelta(0))


def sorted_first(events, delay):
    return late(sorted(events, key=lambda e: e.event_time), delay)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (took_longer, "took longer than `delay` to arrive"),
        (lambda ev, d: [e for e in ev if e.arrival_time - e.event_time >= d], "took longer than `delay` to arrive"),
        (one_watermark, "your watermark mixes the stores"),
        (at_or_behind, "exactly at the watermark"),
        (whole_list, "knows the future"),
        (arrival_watermark, "made of arrival times"),
        (no_delay, "you forgot the delay"),
        (sorted_first, "did you sort by event time first?"),
        (lambda ev, d: [e for e in ev if e not in late(ev, d)], "you returned the sales that were on time"),
        (lambda ev, d: ev[:2], "are on time and"),
        (lambda ev, d: late(ev, d)[:-1], "late sale(s) are missing"),
        (lambda ev, d: None, "returned None"),
        (lambda ev, d: 42, "got int"),
        (lambda ev, d: [e.key for e in late(ev, d)], "your answer holds a str"),
        (lambda ev, d: [(e.key, e.value, e.event_time.replace(tzinfo=None), e.arrival_time) for e in late(ev, d)],
         "a naive datetime"),
        (lambda ev, d: [(e.key, e.event_time, e.arrival_time, e.value) for e in late(ev, d)], "is not a sale"),
        (lambda ev, d: late(ev, d) * 2, "the same sale twice"),
        (lambda ev, d: [True, False], "2 True/False values for 12 sales"),
        (lambda ev, d: to_frame(late(ev, d)).drop(columns="arrival_time"), "lacks the column(s) ['arrival_time']"),
        (lambda ev, d: [type(e)(e.key, e.value, e.event_time, e.arrival_time + d) for e in late(ev, d)],
         "not in the list given"),
        (lambda ev, d: [e for e in ev if e.event_time < datetime(2026, 3, 1, 9, 0, 5)], "a naive datetime"),
        (lambda ev, d: to_frame(late(ev, d)).assign(event_time=lambda f: f["event_time"].dt.tz_localize(None)),
         "a naive datetime"),
    ],
)
def test_late_sales_rejects_typical_mistakes_with_the_right_hint(wrong, hint):
    assert_hint(lesson04.late_sales(wrong), hint)


def test_late_sales_not_implemented_is_not_yet_and_a_hard_coded_answer_fails():
    def not_written(events, delay):
        raise NotImplementedError()

    assert lesson04.late_sales(not_written).status == "not yet"
    lesson_answer = late(lesson04.hand_trace(), timedelta(seconds=5))
    assert len(lesson_answer) == 3  # as the lesson shows
    assert lesson04.late_sales(lambda events, delay: lesson_answer).status == "wrong"


# -- 2. the smallest delay for one window --------------------------------------------------------


def smallest(events, window, key, start):
    end = start + window.length
    gaps = [
        seen - e.event_time
        for e, seen in zip(events, newest_before(events))
        if e.key == key and start <= e.event_time < end and seen is not None
    ]
    return max([timedelta(0), *gaps])


def smallest_with_pandas(events, window, key, start):
    sales = to_frame(events)
    seen = sales.groupby("key", observed=True)["event_time"].cummax().groupby(sales["key"], observed=True).shift()
    mine = (sales["key"] == key) & (sales["event_time"] >= start) & (sales["event_time"] < start + window.length)
    return (seen - sales["event_time"])[mine].clip(lower=pd.Timedelta(0)).max() if mine.any() else pd.Timedelta(0)


def smallest_with_the_library(events, window, key, start):
    # Without waiting, every sale behind its store's newest is late, and its watermark says by how much.
    behind = batch.windowed(events, window, delay=0).late_events
    mine = behind[(behind["key"] == key) & (behind["event_time"] >= start)
                  & (behind["event_time"] < start + window.length)]
    return (mine["watermark"] - mine["event_time"]).max() if len(mine) else timedelta(0)


@pytest.mark.parametrize(
    "variant",
    [
        smallest,
        smallest_with_pandas,
        smallest_with_the_library,
        lambda *args: smallest(*args).total_seconds(),
        lambda *args: np.timedelta64(smallest(*args)),
        lambda *args: smallest(*args).total_seconds() * (1 + 1e-12),
        lambda *args: np.float64(smallest(*args).total_seconds()),
    ],
    ids=["loop", "pandas", "library", "seconds", "numpy", "float-noise", "numpy-float"],
)
def test_smallest_delay_accepts_correct_variants(variant):
    assert lesson04.smallest_delay(variant).ok


def slowest(events, window, key, start):
    return max([timedelta(0)] + [e.delay for e in events
                                 if e.key == key and start <= e.event_time < start + window.length])


def whole_store(events, window, key, start):
    return max([timedelta(0)] + [seen - e.event_time for e, seen in zip(events, newest_before(events))
                                 if e.key == key and seen is not None])


def any_store(events, window, key, start):
    newest, gaps = None, [timedelta(0)]
    for e in events:
        if e.key == key and start <= e.event_time < start + window.length and newest is not None:
            gaps.append(newest - e.event_time)
        newest = e.event_time if newest is None else max(newest, e.event_time)
    return max(gaps)


def every_store(events, window, key, start):
    return max([timedelta(0)] + [seen - e.event_time for e, seen in zip(events, newest_before(events))
                                 if start <= e.event_time < start + window.length and seen is not None])


def window_before(events, window, key, start):
    return smallest(events, window, key, start - window.length)


def end_included(events, window, key, start):
    return max([timedelta(0)] + [seen - e.event_time for e, seen in zip(events, newest_before(events))
                                 if e.key == key and start <= e.event_time <= start + window.length
                                 and seen is not None])


def by_arrival(events, window, key, start):
    return max([timedelta(0)] + [seen - e.event_time for e, seen in zip(events, newest_before(events))
                                 if e.key == key and start <= e.arrival_time < start + window.length
                                 and seen is not None])


def naive_end(events, window, key, start):
    end = datetime(start.year, start.month, start.day, start.hour, start.minute, start.second) + window.length
    return max([timedelta(0)] + [e.delay for e in events if e.key == key and start <= e.event_time < end])


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (slowest, "as long as the slowest sale of the window took"),
        (whole_store, "every sale of the store on time, in every window"),
        (any_store, "newest sale of *any* store"),
        (every_store, "the sales of every store in that time range"),
        (window_before, "your answer is for another window"),
        (lambda ev, w, k, s: smallest(ev, w, k, s + w.length), "your answer is for another window"),
        (end_included, "exactly at the window's end belongs to the next window"),
        (by_arrival, "by arrival time"),
        (lambda *args: smallest(*args) + timedelta(seconds=1), "a bit longer than needed"),
        (lambda *args: smallest(*args) + timedelta(seconds=0.5), "a bit longer than needed"),
        (lambda *args: smallest(*args) * 2 + timedelta(seconds=5), "a shorter delay than yours"),
        (lambda *args: timedelta(seconds=9), "are still late"),  # the lesson's first answer, hard-coded
        (lambda *args: timedelta(0), "your delay is always 0 s"),
        (lambda *args: max(smallest(*args) - timedelta(microseconds=10), timedelta(0)), "are still late"),
        (lambda *args: -smallest(*args), "negative"),
        (lambda *args: str(smallest(*args)), "got str"),
        (lambda *args: None, "got NoneType"),
        (lambda *args: pd.NaT, "NaT"),
        (lambda *args: float("nan"), "return a duration"),
        (naive_end, "a naive datetime"),
    ],
)
def test_smallest_delay_rejects_typical_mistakes_with_the_right_hint(wrong, hint):
    assert_hint(lesson04.smallest_delay(wrong), hint)


def test_smallest_delay_windows_tell_every_typical_mistake_apart():
    cases = lesson04._delay_cases()
    assert [c.name for c in cases[:3]] == ["the lesson's trace"] * 3
    assert {c.name for c in cases[3:]} == {"a trace on whole seconds", "the lesson's half hour"}
    answers = [lesson04._answers(c) for c in cases]
    n = len(answers[0])
    for i in range(n):
        for j in range(i + 1, n):
            assert any(a[i] != a[j] for a in answers), (i, j)
    for case, (needed, *_) in zip(cases, answers):
        # The right answer leaves none of the window's sales late, and is the shortest that does.
        assert needed == smallest(list(case.events), case.window, case.key, case.start)
        for delay, none_late in ((needed, True), (needed - timedelta(microseconds=1), False)):
            if delay < timedelta(0):
                continue
            late = batch.windowed(case.events, case.window, delay=delay).late_events
            n_late = sum(k == case.key and case.window.starts_for(t.to_pydatetime())[0] == case.start
                         for k, t in zip(late["key"], late["event_time"]))
            assert (n_late == 0) == none_late


def test_at_the_smallest_delay_the_stream_answer_equals_the_batch_answer_for_that_window():
    for case in lesson04._delay_cases()[:4]:
        needed = smallest(list(case.events), case.window, case.key, case.start)
        full = batch.windowed(case.events, case.window).windows.set_index(["key", "window_start"])
        on_time = stream.windowed(case.events, case.window, delay=needed).windows.set_index(["key", "window_start"])
        at = (case.key, pd.Timestamp(case.start))
        assert on_time.loc[at, "count"] == full.loc[at, "count"]
        assert on_time.loc[at, "sum"] == pytest.approx(full.loc[at, "sum"])
        if needed > timedelta(0):
            shorter = stream.windowed(case.events, case.window, delay=needed - timedelta(microseconds=1)).windows
            row = shorter[(shorter["key"] == case.key) & (shorter["window_start"] == at[1])]
            assert row.empty or row["count"].iloc[0] < full.loc[at, "count"]


# -- 3. the batch answer with pandas --------------------------------------------------------------


def takings(pile, window):
    return per_window(to_frame(pile), window)


def takings_with_grouper(pile, window):
    sales = to_frame(pile)
    by = ["key", pd.Grouper(key="event_time", freq=window.length, origin=window.align_to)]
    table = sales.groupby(by, observed=True)["value"].agg(["count", "sum"]).reset_index()
    return table.rename(columns={"event_time": "window_start"})


def takings_as_tuples(pile, window):
    return [(r.key, r.window_start.to_pydatetime(), float(r.count), r.sum) for r in takings(pile, window).itertuples()]


@pytest.mark.parametrize(
    "variant",
    [
        takings,
        takings_with_grouper,
        takings_as_tuples,
        lambda pile, window: batch.windowed(pile, window).windows,
        lambda pile, window: takings(pile, window).set_index(["key", "window_start"]),
        lambda pile, window: takings(pile, window).sample(frac=1, random_state=1).astype({"count": "float64"}),
        lambda pile, window: takings(pile, window).assign(
            window_start=lambda f: f["window_start"].dt.tz_convert("Europe/Paris"),
            mean=lambda f: f["sum"] / f["count"]),
        lambda pile, window: takings(pile, window).to_dict("records"),
        lambda pile, window: per_window(to_frame(pile).astype({"key": "object"}), window).pipe(
            lambda f: pd.concat([f, f.head(1).assign(window_start=f["window_start"].max() + window.length * 5,
                                                     count=0, sum=0.0)])),
    ],
    ids=["arithmetic", "grouper", "tuples", "library", "indexed", "shuffled", "paris", "records", "empty-window"],
)
def test_takings_accepts_correct_variants(variant):
    assert lesson04.takings(variant).ok


def ceil_windows(pile, window):
    sales = to_frame(pile)
    since = sales["event_time"] - window.align_to
    sales["window_start"] = window.align_to + (-(-since // window.length)) * window.length - window.length
    return sales.groupby(["key", "window_start"], observed=True)["value"].agg(["count", "sum"]).reset_index()


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda pile, w: per_window(to_frame(pile), w, time="arrival_time"), "window of its *arrival* time"),
        (lambda pile, w: per_window(to_frame(pile), Tumbling(w.length)), "not where the spec puts them"),
        (lambda pile, w: to_frame(pile).assign(window_start=lambda f: f["event_time"].dt.floor(w.length)).groupby(
            ["key", "window_start"], observed=True)["value"].agg(["count", "sum"]).reset_index(),
         "not where the spec puts them"),
        (lambda pile, w: takings(pile, w).assign(window_start=lambda f: f["window_start"] + w.length), "off by one"),
        (lambda pile, w: takings(pile, w).assign(window_start=lambda f: f["window_start"] - w.length), "off by one"),
        (ceil_windows, "exactly on a window's boundary went into the window before"),
        (lambda pile, w: per_window(to_frame(pile), w, agg=("size", "sum")).rename(columns={"size": "count"}),
         "counted the sales with a missing amount"),
        (lambda pile, w: takings(pile, w).assign(window_start=lambda f: f["window_start"].dt.tz_localize(None)),
         "a naive datetime"),
        (lambda pile, w: per_window(to_frame(pile).assign(key="all"), w), "the answer is per store"),
        (lambda pile, w: per_window(to_frame(pile), w).drop(columns="key"), "Group by key too"),
        (lambda pile, w: stream.windowed(pile, w, delay=5).windows, "some sales are missing from your windows"),
        (lambda pile, w: takings(pile, w).set_index(["key", "window_start"])["sum"], "you returned a Series"),
        (lambda pile, w: takings(pile, w).drop(columns="count"), "lacks the column(s) ['count']"),
        (lambda pile, w: to_frame(pile).assign(window_start=lambda f: window_start(f["event_time"], w)).groupby(
            ["key", "window_start"], observed=True).agg({"value": ["count", "sum"]}), "two levels of column names"),
        (lambda pile, w: takings(pile, w).rename(columns={"window_start": "event_time"}),
         "Name the column of window starts `window_start`"),
        (lambda pile, w: pd.concat([takings(pile, w)] * 2), "appears twice"),
        (lambda pile, w: takings(pile, w).assign(count=lambda f: f["count"] / 2), "whole number"),
        (lambda pile, w: takings(pile, w).assign(window_start="soon"), "should hold datetimes"),
        (lambda pile, w: takings(pile, w).assign(window_start=lambda f: f["window_start"].astype("int64")),
         "got numbers"),
        (lambda pile, w: takings(pile, w).assign(sum=lambda f: f["sum"] + 1), "with another count or sum"),
        (lambda pile, w: takings(pile, w).iloc[1:], "some sales are missing"),
        (lambda pile, w: None, "returned None"),
        (lambda pile, w: 42, "got int"),
    ],
)
def test_takings_rejects_typical_mistakes_with_the_right_hint(wrong, hint):
    assert_hint(lesson04.takings(wrong), hint)


def test_takings_is_checked_against_the_stream_with_nothing_late_which_equals_the_batch():
    for case in lesson04._takings_cases():
        with_stream = lesson04._stream_complete(case.events, case.window)
        assert lesson04._same_table(with_stream, lesson04._table(batch.windowed(case.events, case.window).windows,
                                                                 "windows"))
    # The fresh pipe has sales with missing amounts, the whole-second trace sales on window boundaries.
    _, fresh, ticks = lesson04._takings_cases()
    assert any(e.value is None for e in fresh.events)
    assert any(fresh.window.starts_for(e.event_time)[0] != Tumbling(fresh.window.length).starts_for(e.event_time)[0]
               for e in fresh.events)
    assert any(ticks.window.starts_for(e.event_time)[0] == e.event_time for e in ticks.events)


# -- 4. the late sales' contribution ----------------------------------------------------------------


def contribution(events, window, delay):
    return per_window(to_frame(late(events, delay)), window)


def contribution_from_the_library(events, window, delay):
    set_aside = batch.windowed(events, window, delay=delay).late_events
    return per_window(set_aside, window)


def batch_minus_stream(events, window, delay):
    full = batch.windowed(events, window).windows.set_index(["key", "window_start"])[["count", "sum"]]
    on_time = stream.windowed(events, window, delay=delay).windows.set_index(["key", "window_start"])[["count", "sum"]]
    return full.sub(on_time, fill_value=0)


def from_reconcile(events, window, delay):
    table = reconcile(batch.windowed(events, window, delay=delay), stream.windowed(events, window, delay=delay)).table
    wide = table.pivot_table(index=["key", "window_start"], columns="statistic", values="late", aggfunc="first")
    return wide.reset_index()


@pytest.mark.parametrize(
    "variant",
    [contribution, contribution_from_the_library, batch_minus_stream, from_reconcile],
    ids=["loop", "library", "batch-minus-stream", "reconcile"],
)
def test_late_contribution_accepts_correct_variants(variant):
    feedback = lesson04.late_contribution(variant)
    assert feedback.ok, feedback
    assert "all 150 windows of the lesson's half hour (149 of them with late sales)" in feedback.message


def late_by_rule(rule):
    def answer(events, window, delay):
        chosen = [e for e, seen in zip(events, newest_before(events)) if rule(e, seen, delay)]
        return per_window(to_frame(chosen), window)

    return answer


def all_late_windows_forgotten(events, window, delay):
    full = batch.windowed(events, window).windows.set_index(["key", "window_start"])[["count", "sum"]]
    on_time = stream.windowed(events, window, delay=delay).windows.set_index(["key", "window_start"])[["count", "sum"]]
    return (full - on_time).dropna().reset_index()


def one_watermark_contribution(events, window, delay):
    return per_window(to_frame(one_watermark(events, delay)), window)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda ev, w, d: stream.windowed(ev, w, delay=d).windows, "that is the stream's answer"),
        (lambda ev, w, d: batch.windowed(ev, w).windows, "that is the batch answer"),
        (all_late_windows_forgotten, "in which *every* sale was late are missing"),
        (late_by_rule(lambda e, seen, d: e.delay > d), "took longer than `delay`"),
        (one_watermark_contribution, "your watermark mixes the stores"),
        (late_by_rule(lambda e, seen, d: seen is not None and e.event_time <= seen - d), "exactly at the watermark"),
        (lambda ev, w, d: per_window(to_frame(late(ev, d)), w, time="arrival_time"), "window of its *arrival* time"),
        (lambda ev, w, d: per_window(to_frame(late(ev, d)), Tumbling(w.length)), "not where the spec puts them"),
        (lambda ev, w, d: contribution(ev, w, d).assign(window_start=lambda f: f["window_start"] + w.length),
         "off by one"),
        (lambda ev, w, d: contribution(ev, w, d).assign(window_start=lambda f: f["window_start"].dt.tz_localize(None)),
         "a naive datetime"),
        (lambda ev, w, d: contribution(ev, w, d).iloc[:-1], "1 window(s) missing"),
        (lambda ev, w, d: contribution(ev, w, d)[["key", "window_start", "sum"]], "lacks the column(s) ['count']"),
    ],
)
def test_late_contribution_rejects_typical_mistakes_with_the_right_hint(wrong, hint):
    assert_hint(lesson04.late_contribution(wrong), hint)


def test_late_contribution_cases_have_ties_and_windows_with_only_late_sales():
    cases = lesson04._contribution_cases()
    for case in cases:
        accounts = lesson04._accounts(case.events, case.window, case.delay)
        assert len(accounts.late) > 0
        # The expected contribution is reconcile's "late" column.
        assert lesson04._same_table(accounts.late, lesson04._table(from_reconcile(case.events, case.window, case.delay),
                                                                   "late"))
    hand, _, ticks = cases
    # The lesson's trace: store-2's window from 09:00:10 has no stream answer at all.
    only_late = lesson04._accounts(hand.events, hand.window, hand.delay).late
    assert (only_late["key"] == "store-2").sum() == 1
    # The whole-second trace has a sale exactly at its store's watermark.
    events = list(ticks.events)
    at_the_watermark = [seen is not None and e.event_time == seen - ticks.delay
                        for e, seen in zip(events, newest_before(events))]
    assert any(at_the_watermark)


# -- the check data ------------------------------------------------------------------------------


def test_the_learner_gets_a_copy_of_the_data():
    def vandal(events, delay):
        events.clear()
        return []

    lesson04.late_sales(vandal)
    assert lesson04.late_sales(late).ok
    assert len(lesson04.half_hour()) == 3482
    lesson04.half_hour().clear()
    assert len(lesson04.half_hour()) == 3482


def test_the_hand_trace_is_the_lessons():
    trace = lesson04.hand_trace()
    assert len(trace) == 12
    assert lesson04.NINE == datetime(2026, 3, 1, 9, tzinfo=timezone.utc)
    assert [(e.event_time - lesson04.NINE).seconds for e in trace][:5] == [1, 3, 4, 12, 6]
    assert stream.windowed(trace, Tumbling(10, align_to=lesson04.NINE), delay=5).n_late == 3
