"""Lesson 01's checks: right answers in their many forms accepted, wrong ones refused with their own hint or a case.

Every answer below is written as a learner would write it, not taken from the
checks' own models of mistakes. A wrong answer must be refused either with the
hint of its mistake or with a concrete counterexample ("Here is an input where
your answer differs"), never with another mistake's hint.
"""

import itertools
import math
from collections import defaultdict
from datetime import timedelta

import bytewax.operators as op
import numpy as np
import pandas as pd
import pytest

from streamlab.events import COURSE_START, arrived_before, take, to_frame
from streamlab.exercises import lesson01
from streamlab.summary import Stats, reject_reason

from test_exercises_hints import solution_lines

DIFFERS = "Here is an input where your answer differs"
SOLUTION = solution_lines("lesson01")


def refused(feedback, hint):
    """Refused with this hint (or a counterexample), and the message holds no line of the solution."""
    assert feedback.status == "wrong", feedback
    assert hint in feedback.message, feedback
    assert not any(line in feedback.message for line in SOLUTION), feedback
    return feedback


def missing(value):
    return value is None or math.isnan(value)


# -- 1. cut the pile ---------------------------------------------------------------------------

def cut(sales, minutes):
    return arrived_before(sales, sales.start + timedelta(minutes=minutes))


def cut_with_takewhile(sales, minutes):
    end = sales.start + timedelta(minutes=minutes)
    return list(itertools.takewhile(lambda e: e.arrival_time < end, sales))


def cut_with_a_loop_and_a_frame(sales, minutes):
    rows = []
    for sale in sales:
        if (sale.arrival_time - sales.start).total_seconds() >= 60 * minutes:
            break
        rows.append(sale)
    return to_frame(rows).sort_values("key").astype({"key": "category"})


@pytest.mark.parametrize("variant", [
    cut, cut_with_takewhile, cut_with_a_loop_and_a_frame,
    lambda s, m: tuple(reversed(cut(s, m))),
])
def test_cut_the_pile_accepts_correct_variants(variant):
    assert lesson01.cut_the_pile(variant).ok


@pytest.mark.parametrize("wrong, hint", [
    (lambda s, m: [e for e in take(s, 5000) if e.event_time < s.start + timedelta(minutes=m)], "*happened*"),
    (lambda s, m: arrived_before(s, s.start + timedelta(seconds=m)), "seconds after the start"),
    (lambda s, m: take(s, m * 60 * 2), "a fixed number of sales does that"),
    (lambda s, m: list(itertools.takewhile(lambda e: e.arrival_time <= s.start + timedelta(minutes=m), s)),
     "exactly at the cut"),
    (lambda s, m: arrived_before(s, COURSE_START + timedelta(minutes=m)), "does not move with the pipe"),
    (lambda s, m: arrived_before(s, s.start + timedelta(minutes=m + 1)), DIFFERS),
    (lambda s, m: arrived_before(s, s.start + timedelta(minutes=m))[1:], DIFFERS),  # the first sale lost
    (lambda s, m: [e for e in cut(s, m) if e.value is not None], DIFFERS),  # sales without amount dropped
    (lambda s, m: s, "not the pipe"),
    (lambda s, m: 42, "got int"),
    (lambda s, m: to_frame(cut(s, m)).drop(columns=["arrival_time"]), "lacks the column(s) ['arrival_time']"),
])
def test_cut_the_pile_refuses_wrong_answers_with_their_hint_or_a_case(wrong, hint):
    refused(lesson01.cut_the_pile(wrong), hint)


def test_a_counterexample_is_shrunk_and_shown():
    feedback = lesson01.cut_the_pile(lambda s, m: arrived_before(s, s.start + timedelta(minutes=m + 1)))
    assert "this 1 sale" in feedback.message and "it should be an empty pile" in feedback.message


# -- 2. the stream version of big sales --------------------------------------------------------

def solution_flow(events):
    big = op.filter("big", events, lambda e: e.value is not None and e.value > 30)
    by_store = op.key_on("by_store", big, lambda e: e.key)
    return op.stateful_map("count", by_store, lambda n, e: ((n or 0) + 1, (n or 0) + 1))


def numpy_counts_keyed_first(events):
    by_store = op.key_on("by_store", events, lambda e: e.key)
    big = op.filter_value("big", by_store, lambda e: e.value is not None and e.value > 30)
    return op.stateful_map("count", big, lambda n, e: (np.int64(n or 0) + 1, np.int64(n or 0) + 1))


def float_counts_on_every_sale_once_big(events):
    """Emits on every sale, the count unchanged by small ones: still a running count."""
    by_store = op.key_on("by_store", events, lambda e: e.key)

    def count(n, e):
        n = (n or 0.0) + (1.0 if e.value and e.value > 30.0 else 0.0)
        return n, n

    return op.filter_value("seen", op.stateful_map("count", by_store, count), lambda n: n > 0)


def counts_with(predicate, step=lambda n: (n or 0) + 1):
    def flow(events):
        big = op.filter("big", events, predicate)
        by_store = op.key_on("by_store", big, lambda e: e.key)
        return op.stateful_map("count", by_store, lambda n, e: (step(n), step(n)))

    return flow


def final_counts(events):
    big = op.filter("big", events, lambda e: e.value is not None and e.value > 30)
    return op.count_final("count", big, lambda e: e.key)


def one_set_of_seen_sales():
    seen = set()

    def new_and_big(e):
        if (e.key, e.event_time) in seen:
            return False
        seen.add((e.key, e.event_time))
        return e.value is not None and e.value > 30

    return counts_with(new_and_big)


@pytest.mark.parametrize("variant", [solution_flow, numpy_counts_keyed_first, float_counts_on_every_sale_once_big])
def test_big_sales_accepts_correct_variants(variant):
    assert lesson01.big_sales_flow(variant).ok


@pytest.mark.parametrize("wrong, hint", [
    (counts_with(lambda e: e.value > 30), "crashed on a sale with a missing amount"),
    (counts_with(lambda e: e.value is not None and e.value >= 30), "exactly 30 € too"),
    (counts_with(lambda e: True), "you counted every sale;"),
    (counts_with(lambda e: e.value is not None and e.value > 30, step=lambda n: 1), "never grow past 1"),
    (final_counts, "once, at the end, as a batch job"),
    (one_set_of_seen_sales(), "keeps something from one call to the next"),
    (counts_with(lambda e: e.value is not None and int(e.value) > 30), DIFFERS),  # NaN cannot be an int
    (counts_with(lambda e: e.value is not None and round(e.value) > 30), DIFFERS),  # 30.4 rounds to 30
    (counts_with(lambda e: e.value is not None and 30 < e.value < 1e6), DIFFERS),  # huge sales left out
    (lambda events: op.map("values", events, lambda e: e.value), "emit (store, count) pairs"),
    (lambda events: op.map("boom", events, lambda e: 1 / 0), "ZeroDivisionError"),
])
def test_big_sales_refuses_wrong_answers_with_their_hint_or_a_case(wrong, hint):
    refused(lesson01.big_sales_flow(wrong), hint)


def test_big_sales_not_implemented_is_not_yet():
    def flow(events):
        raise NotImplementedError()

    assert lesson01.big_sales_flow(flow).status == "not yet"


# -- 3. the engine's mapper --------------------------------------------------------------------

def solution(state, sale):
    if missing(sale.value):
        return state, state
    count, total, low, high = state or (0, 0.0, math.inf, -math.inf)
    state = (count + 1, total + sale.value, min(low, sale.value), max(high, sale.value))
    return state, state


def from_the_first_sale(state, sale):
    value = sale.value
    if value is None or value != value:
        return state, None  # nothing new to say
    if state is None:
        state = (1, value, value, value)
    else:
        count, total, low, high = state
        state = (count + 1, total + value, low if low < value else value, high if high > value else value)
    return state, state


def a_dict_state_and_numpy_numbers(state, sale):
    state = state or {"count": np.int64(0), "sum": np.float64(0), "min": None, "max": None}
    if not missing(sale.value):
        v = np.float64(sale.value)
        state = {"count": state["count"] + 1, "sum": state["sum"] + v,
                 "min": v if state["min"] is None else min(state["min"], v),
                 "max": v if state["max"] is None else max(state["max"], v)}
    if state["count"] == 0:
        return state, None
    return state, [state["count"], state["sum"], state["min"], state["max"]]


def with_the_librarys_stats(state, sale):
    if reject_reason(sale.value) is not None:
        return state, state
    stats = Stats(*(state or ()))
    stats.add(sale.value)
    return stats.as_tuple(), stats.as_tuple()


@pytest.mark.parametrize("variant", [solution, from_the_first_sale, a_dict_state_and_numpy_numbers,
                                     with_the_librarys_stats])
def test_running_summary_accepts_correct_variants(variant):
    feedback = lesson01.running_summary(variant)
    assert feedback.ok, feedback


def one_total_for_every_store():
    shared = [0, 0.0, math.inf, -math.inf]

    def running(state, sale):
        if missing(sale.value):
            return state, tuple(shared) if shared[0] else None
        shared[0] += 1
        shared[1] += sale.value
        shared[2] = min(shared[2], sale.value)
        shared[3] = max(shared[3], sale.value)
        return tuple(shared), tuple(shared)

    return running


def totals_in_a_dict_by_store():
    """Kept per store, but outside the state: right once, wrong the next time the cell runs."""
    table = defaultdict(lambda: [0, 0.0, math.inf, -math.inf])

    def running(state, sale):
        if missing(sale.value):
            return state, state
        t = table[sale.key]
        t[0] += 1
        t[1] += sale.value
        t[2] = min(t[2], sale.value)
        t[3] = max(t[3], sale.value)
        return tuple(t), tuple(t)

    return running


def starting_from(start):
    def running(state, sale):
        if missing(sale.value):
            return state, state
        count, total, low, high = state or start
        state = (count + 1, total + sale.value, min(low, sale.value), max(high, sale.value))
        return state, state

    return running


def only_none_is_missing(state, sale):
    if sale.value is None:
        return state, state
    count, total, low, high = state or (0, 0.0, math.inf, -math.inf)
    if sale.value < low:
        low = sale.value
    if sale.value > high:
        high = sale.value
    state = (count + 1, total + sale.value, low, high)
    return state, state


def falsy_is_missing(state, sale):
    """Skips a sale of 0 € as if its amount were missing."""
    if not sale.value or math.isnan(sale.value):
        return state, state
    return solution(state, sale)


def missing_as_zero(state, sale):
    value = 0.0 if missing(sale.value) else sale.value
    count, total, low, high = state or (0, 0.0, math.inf, -math.inf)
    state = (count + 1, total + value, min(low, value), max(high, value))
    return state, state


def no_check_for_missing(state, sale):
    count, total, low, high = state or (0, 0.0, math.inf, -math.inf)
    state = (count + 1, total + sale.value, min(low, sale.value), max(high, sale.value))
    return state, state


def state_not_returned(state, sale):
    if missing(sale.value):
        return state, state
    count, total, low, high = state or (0, 0.0, math.inf, -math.inf)
    return None, (count + 1, total + sale.value, min(low, sale.value), max(high, sale.value))


def emits_the_old_state(state, sale):
    if missing(sale.value):
        return state, state
    count, total, low, high = state or (0, 0.0, math.inf, -math.inf)
    return (count + 1, total + sale.value, min(low, sale.value), max(high, sale.value)), state


def totals_outside_reset_by_a_new_store():
    """Kept outside the state, set up afresh at a store's first sale: right on every run, wrong when resumed."""
    table = {}

    def running(state, sale):
        if missing(sale.value):
            return state, state
        if state is None:
            table[sale.key] = [0, 0.0, math.inf, -math.inf]
        t = table[sale.key]
        t[0] += 1
        t[1] += sale.value
        t[2] = min(t[2], sale.value)
        t[3] = max(t[3], sale.value)
        return tuple(t), tuple(t)

    return running


def min_and_max_rounded(state, sale):
    state, answer = solution(state, sale)
    return state, answer and (answer[0], answer[1], round(answer[2], 2), round(answer[3], 2))


@pytest.mark.parametrize("wrong, hint", [
    (one_total_for_every_store(), "it keeps something outside the state"),
    (totals_in_a_dict_by_store(), "it keeps something outside the state"),
    (totals_outside_reset_by_a_new_store(), "resumed from a snapshot of its state"),
    (state_not_returned, "never grow past one sale"),
    (emits_the_old_state, "not the one from before it"),
    (starting_from((0, 0.0, math.inf, 0.0)), "your max starts at 0"),
    (starting_from((0, 0, 0, 0)), "your min and max start at 0"),
    (only_none_is_missing, "can be NaN as well as None"),
    (missing_as_zero, "you counted the sales with a missing amount (as 0 €)"),
    (no_check_for_missing, "crashed on a sale with a missing amount"),
    (falsy_is_missing, DIFFERS),
    (min_and_max_rounded, DIFFERS),  # right on the lesson's data, wrong on -1e9 ... well, on 12.345
    (lambda state, sale: solution(state, sale)[0], "must return a pair"),
    (lambda state, sale: (lambda s, a: (s, a and a[:3]))(*solution(state, sale)), "should be (count, sum, min, max)"),
    (lambda state, sale: (lambda s, a: (s, a and (a[0], a[1] / a[0], a[2], a[3])))(*solution(state, sale)), DIFFERS),
])
def test_running_summary_refuses_wrong_answers_with_their_hint_or_a_case(wrong, hint):
    refused(lesson01.running_summary(wrong), hint)


def test_running_summary_not_implemented_is_not_yet():
    def running(state, sale):
        raise NotImplementedError()

    assert lesson01.running_summary(running).status == "not yet"


# -- 4. when did the mean settle? --------------------------------------------------------------

def settled(summary, key, within):
    rows = summary.updates[summary.updates["key"] == key].reset_index(drop=True)
    away = (rows["mean"] - rows["mean"].iloc[-1]).abs() > within
    return rows["known_at"].iloc[away[away].index[-1] + 1 if away.any() else 0]


def settled_by_a_loop(summary, key, within):
    rows = list(summary.updates[summary.updates.key == key].itertuples())
    final = rows[-1].mean
    answer = rows[0].known_at
    for before, row in zip(rows, rows[1:]):
        if abs(before.mean - final) > within:
            answer = row.known_at
    return answer.to_pydatetime()


def settled_backwards(summary, key, within):
    rows = summary.updates.query("key == @key")
    final = rows["mean"].iloc[-1]
    at = rows["known_at"].iloc[-1]
    for moment, mean in zip(rows["known_at"][::-1], rows["mean"][::-1]):
        if abs(mean - final) > within:
            break
        at = moment
    return at


def the_first_close(summary, key, within):
    rows = summary.updates[summary.updates["key"] == key].reset_index(drop=True)
    close = (rows["mean"] - rows["mean"].iloc[-1]).abs() <= within
    return rows["known_at"][close].iloc[0]


def the_last_away(summary, key, within):
    rows = summary.updates[summary.updates["key"] == key].reset_index(drop=True)
    away = (rows["mean"] - rows["mean"].iloc[-1]).abs() > within
    return rows["known_at"][away].iloc[-1]


def at_least_within_is_away(summary, key, within):
    rows = summary.updates[summary.updates["key"] == key].reset_index(drop=True)
    away = (rows["mean"] - rows["mean"].iloc[-1]).abs() >= within
    return rows["known_at"].iloc[away[away].index[-1] + 1 if away.any() else 0]


def against_the_batch_mean(summary, key, within):
    """Compares with the table's mean: right unless the table and the updates could disagree... they cannot,
    but a learner who rounds it can."""
    final = round(summary.table.loc[key, "mean"], 1)
    rows = summary.updates[summary.updates["key"] == key].reset_index(drop=True)
    away = (rows["mean"] - final).abs() > within
    return rows["known_at"].iloc[away[away].index[-1] + 1 if away.any() else 0]


@pytest.mark.parametrize("variant", [settled, settled_by_a_loop, settled_backwards,
                                     lambda s, k, w: settled(s, k, w).to_pydatetime()])
def test_settled_at_accepts_correct_variants(variant):
    assert lesson01.settled_at(variant).ok


@pytest.mark.parametrize("wrong, hint", [
    (the_first_close, "the first time the mean came close"),
    (the_last_away, "the last moment the mean was still too far"),
    (at_least_within_is_away, "exactly `within` away"),
    (lambda s, k, w: settled(s, k, w).tz_localize(None).to_pydatetime(), "yours is naive"),
    (lambda s, k, w: str(settled(s, k, w)), "return a datetime"),
    (lambda s, k, w: settled(s, "all keys", w), DIFFERS),
    (lambda s, k, w: s.updates.loc[s.updates["key"] == k, "known_at"].iloc[-1], DIFFERS),
    (against_the_batch_mean, DIFFERS),
    (lambda s, k, w: settled(s, k, w) + pd.Timedelta(seconds=1), DIFFERS),
])
def test_settled_at_refuses_wrong_answers_with_their_hint_or_a_case(wrong, hint):
    refused(lesson01.settled_at(wrong), hint)


# -- more wrong answers, written for the checks that compare with the solution ---------------------

def cut_from_the_first_sale(sales, minutes):
    """Counts the minutes from the first sale's arrival, not from the pipe's start."""
    first = next(iter(sales)).arrival_time
    return list(itertools.takewhile(lambda e: e.arrival_time < first + timedelta(minutes=minutes), sales))


def whole_euro_sums(state, sale):
    if missing(sale.value):
        return state, state
    count, total, low, high = state or (0, 0, math.inf, -math.inf)
    state = (count + 1, int(total + sale.value), min(low, sale.value), max(high, sale.value))
    return state, state


def zero_is_no_min_yet(state, sale):
    """Takes a min of 0 for 'no min yet': a store whose sales went through 0 € forgets it."""
    if missing(sale.value):
        return state, state
    count, total, low, high = state or (0, 0.0, 0.0, 0.0)
    low = sale.value if not low else min(low, sale.value)
    high = sale.value if not count else max(high, sale.value)
    state = (count + 1, total + sale.value, low, high)
    return state, state


def after_the_first_away(summary, key, within):
    rows = summary.updates[summary.updates["key"] == key].reset_index(drop=True)
    away = (rows["mean"] - rows["mean"].iloc[-1]).abs() > within
    return rows["known_at"].iloc[int(away.idxmax()) + 1 if away.any() else 0]


def against_the_average_mean(summary, key, within):
    rows = summary.updates[summary.updates["key"] == key].reset_index(drop=True)
    away = (rows["mean"] - rows["mean"].mean()).abs() > within
    return rows["known_at"].iloc[away[away].index[-1] + 1 if away.any() and away[away].index[-1] + 1 < len(rows) else 0]


@pytest.mark.parametrize("check, wrong, hint", [
    (lesson01.cut_the_pile, cut_from_the_first_sale, "another moment than the pipe's start"),
    (lesson01.running_summary, whole_euro_sums, DIFFERS),
    (lesson01.running_summary, zero_is_no_min_yet, DIFFERS),
    (lesson01.settled_at, after_the_first_away, DIFFERS),
    (lesson01.settled_at, against_the_average_mean, DIFFERS),
])
def test_more_wrong_answers_are_refused_with_a_case(check, wrong, hint):
    feedback = refused(check(wrong), hint)
    assert "it should be" in feedback.message
