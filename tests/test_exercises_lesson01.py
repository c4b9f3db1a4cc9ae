"""Lesson 01's dataflow exercise: the check accepts right mappers in their usual forms and names typical mistakes.

Every wrong mapper below is written as a learner would write it, not taken from
the check's own models of mistakes, so a test fails if the check stops
recognising a mistake or recognises it for the wrong reason. (The other lesson 01
checks are tested in tests/test_exercises.py.)
"""

import math

import pytest

from streamlab.exercises import lesson01
from streamlab.summary import Stats, reject_reason


def missing(value):
    return value is None or math.isnan(value)


# -- right answers -----------------------------------------------------------------------------


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


def a_dict_state_and_a_list_answer(state, sale):
    state = state or {"count": 0, "sum": 0, "min": None, "max": None}
    if not missing(sale.value):
        v = sale.value
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


@pytest.mark.parametrize("variant", [solution, from_the_first_sale, a_dict_state_and_a_list_answer,
                                     with_the_librarys_stats])
def test_running_summary_accepts_correct_variants(variant):
    feedback = lesson01.running_summary(variant)
    assert feedback.ok, feedback


# -- typical mistakes --------------------------------------------------------------------------


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


def state_not_returned(state, sale):
    if missing(sale.value):
        return state, state
    count, total, low, high = state or (0, 0.0, math.inf, -math.inf)
    new = (count + 1, total + sale.value, min(low, sale.value), max(high, sale.value))
    return None, new


def emits_the_old_state(state, sale):
    if missing(sale.value):
        return state, state
    count, total, low, high = state or (0, 0.0, math.inf, -math.inf)
    new = (count + 1, total + sale.value, min(low, sale.value), max(high, sale.value))
    return new, state


def max_from_zero(state, sale):
    if missing(sale.value):
        return state, state
    count, total, low, high = state or (0, 0.0, math.inf, 0.0)
    state = (count + 1, total + sale.value, min(low, sale.value), max(high, sale.value))
    return state, state


def everything_from_zero(state, sale):
    if missing(sale.value):
        return state, state
    count, total, low, high = state or (0, 0, 0, 0)
    state = (count + 1, total + sale.value, min(low, sale.value), max(high, sale.value))
    return state, state


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


def missing_as_zero(state, sale):
    value = 0.0 if missing(sale.value) else sale.value
    count, total, low, high = state or (0, 0.0, math.inf, -math.inf)
    state = (count + 1, total + value, min(low, value), max(high, value))
    return state, state


def no_check_for_missing(state, sale):
    count, total, low, high = state or (0, 0.0, math.inf, -math.inf)
    state = (count + 1, total + sale.value, min(low, sale.value), max(high, sale.value))
    return state, state


def returns_only_the_state(state, sale):
    return solution(state, sale)[0]


def three_numbers(state, sale):
    state, answer = solution(state, sale)
    return state, answer and answer[:3]


def mean_for_sum(state, sale):
    state, answer = solution(state, sale)
    return state, answer and (answer[0], answer[1] / answer[0], answer[2], answer[3])


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (one_total_for_every_store(), "not kept per store: every store shares one running total"),
        (state_not_returned, "never grow past one sale"),
        (emits_the_old_state, "not the one from before it"),
        (max_from_zero, "your max starts at 0"),
        (everything_from_zero, "your min and max start at 0"),
        (only_none_is_missing, "can be NaN as well as None"),
        (missing_as_zero, "you counted the sales with a missing amount (as 0 €)"),
        (no_check_for_missing, "crashed on a sale with a missing amount"),
        (returns_only_the_state, "must return a pair"),
        (three_numbers, "should be (count, sum, min, max)"),
        (mean_for_sum, "your answers differ from the running count, sum, min and max"),
    ],
)
def test_running_summary_names_typical_mistakes(wrong, hint):
    feedback = lesson01.running_summary(wrong)
    assert feedback.status == "wrong" and hint in feedback.message, feedback


def test_running_summary_not_implemented_is_not_yet():
    def running(state, sale):
        raise NotImplementedError()

    assert lesson01.running_summary(running).status == "not yet"
