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
from streamlab.panes import Delay, loop, reconcile
from streamlab.windows import Tumbling
from test_exercises_hints import solution_lines

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


def per_store(delay):
    return Delay(delay, per="key", follow_clock=False)


DIFFERS = "Here is an input where your answer differs"
SOLUTION = solution_lines("lesson04")


def assert_hint(feedback, hint):
    """Refused with this hint (or a counterexample), and the message holds no line of the solution."""
    assert feedback.status == "wrong", feedback
    assert hint in feedback.message, feedback
    assert not any(line in feedback.message for line in SOLUTION), feedback


# -- 1. which sales are dropped -----------------------------------------------------------------


def dropped(events, window, delay):
    return [e for e, seen in zip(events, newest_before(events))
            if seen is not None and window_start(e.event_time, window) + window.length <= seen - delay]


def dropped_with_pandas(events, window, delay):
    sales = to_frame(events)
    seen = sales.groupby("key", observed=True)["event_time"].cummax().groupby(sales["key"], observed=True).shift()
    return sales[window_start(sales["event_time"], window) + window.length <= seen - delay]


def dropped_counting_itself(events, window, delay):
    # The newest so far *including* the sale itself: a sale never closes its own window (end > event time).
    newest, out = {}, []
    for e in events:
        newest[e.key] = max(newest.get(e.key, e.event_time), e.event_time)
        out.append(window.starts_for(e.event_time)[0] + window.length <= newest[e.key] - delay)
    return out


def dropped_by_the_lessons_dataflow(events, window, delay):
    # The lesson's mapper, run by hand: a sale is late when its window has already closed.
    states, out = {}, []
    for e in events:
        watermark, open_windows = states.get(e.key) or (None, {})
        start = window_start(e.event_time, window)
        if watermark is not None and start + window.length <= watermark:
            out.append(e)
        else:
            open_windows[start] = open_windows.get(start, 0) + 1
        watermark = max(watermark or e.event_time - delay, e.event_time - delay)
        for closing in [s for s in open_windows if s + window.length <= watermark]:
            del open_windows[closing]
        states[e.key] = (watermark, open_windows)
    return out


@pytest.mark.parametrize(
    "variant",
    [
        dropped,
        dropped_with_pandas,
        dropped_counting_itself,
        dropped_by_the_lessons_dataflow,
        lambda ev, w, d: np.array(dropped_counting_itself(ev, w, d)),
        lambda ev, w, d: pd.Series(dropped_counting_itself(ev, w, d)),
        lambda ev, w, d: list(reversed(dropped(ev, w, d))),
        lambda ev, w, d: set(dropped(ev, w, d)),
        lambda ev, w, d: [(e.key, e.value, e.event_time, e.arrival_time) for e in dropped(ev, w, d)],
        lambda ev, w, d: to_frame(dropped(ev, w, d)).astype({"key": "object"}),
        lambda ev, w, d: stream.panes(ev, w, watermark=per_store(d)).dropped,
        lambda ev, w, d: loop(ev, w, watermark=per_store(d)).dropped,
        lambda ev, w, d: dropped_with_pandas(ev, w, d).assign(
            event_time=lambda f: f["event_time"].dt.tz_convert("Europe/Paris")),
    ],
    ids=["loop", "pandas", "itself", "dataflow", "numpy", "series", "reversed", "set", "tuples", "frame",
         "stream.panes", "panes.loop", "paris"],
)
def test_late_sales_accepts_correct_variants(variant):
    feedback = lesson04.late_sales(variant)
    assert feedback.ok, feedback


def by_rule(rule):
    """Sales picked by a rule of (event, newest of its store before it, window, delay)."""
    def answer(events, window, delay):
        return [e for e, seen in zip(events, newest_before(events))
                if seen is not None and rule(e, seen, window, delay)]

    return answer


def end_of(t, window):
    return window_start(t, window) + window.length


def one_watermark(events, window, delay):
    newest, out = None, []
    for e in events:
        if newest is not None and end_of(e.event_time, window) <= newest - delay:
            out.append(e)
        newest = e.event_time if newest is None else max(newest, e.event_time)
    return out


def whole_list(events, window, delay):
    newest = {}
    for e in events:
        newest[e.key] = max(newest.get(e.key, e.event_time), e.event_time)
    return [e for e in events if end_of(e.event_time, window) <= newest[e.key] - delay]


def arrival_watermark(events, window, delay):
    newest, out = {}, []
    for e in events:
        if e.key in newest and end_of(e.event_time, window) <= newest[e.key] - delay:
            out.append(e)
        newest[e.key] = max(newest.get(e.key, e.arrival_time), e.arrival_time)
    return out


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (by_rule(lambda e, seen, w, d: e.event_time < seen - d), "you used bytewax's rule"),
        (lambda ev, w, d: [e for e in ev if e.arrival_time - e.event_time > d], "took longer than delay to arrive"),
        (lambda ev, w, d: [e for e in ev if e.arrival_time - e.event_time >= d], "took longer than delay to arrive"),
        (one_watermark, "your watermark mixes the stores"),
        (by_rule(lambda e, seen, w, d: end_of(e.event_time, w) < seen - d), "end is exactly at the watermark"),
        (arrival_watermark, "made of arrival times"),
        (lambda ev, w, d: dropped(ev, w, timedelta(0)), "you forgot the delay"),
        (whole_list, "knows the future"),
        (by_rule(lambda e, seen, w, d: window_start(e.event_time, w) <= seen - d), "compared the window's start"),
        (by_rule(lambda e, seen, w, d: end_of(e.arrival_time, w) <= seen - d), DIFFERS),
        (lambda ev, w, d: dropped(sorted(ev, key=lambda e: e.event_time), w, d), DIFFERS),
        (lambda ev, w, d: [e for e in ev if e not in dropped(ev, w, d)], "you returned the sales that were counted"),
        (lambda ev, w, d: ev[:2], DIFFERS),
        (lambda ev, w, d: dropped(ev, w, d)[:-1], DIFFERS),
        (lambda ev, w, d: None, "returned None"),
        (lambda ev, w, d: 42, "got int"),
        (lambda ev, w, d: [e.key for e in dropped(ev, w, d)], "your answer holds a str"),
        (lambda ev, w, d: [(e.key, e.value, e.event_time.replace(tzinfo=None), e.arrival_time)
                           for e in dropped(ev, w, d)], "a naive datetime"),
        (lambda ev, w, d: [(e.key, e.event_time, e.arrival_time, e.value) for e in dropped(ev, w, d)], "is not a sale"),
        (lambda ev, w, d: dropped(ev, w, d) * 2, "the same sale twice"),
        (lambda ev, w, d: [True, False], "True/False values for"),
        (lambda ev, w, d: to_frame(dropped(ev, w, d)).drop(columns="arrival_time"),
         "lacks the column(s) ['arrival_time']"),
        (lambda ev, w, d: [type(e)(e.key, e.value, e.event_time, e.arrival_time + d) for e in dropped(ev, w, d)],
         "not in the list given"),
        (lambda ev, w, d: [e for e in ev if e.event_time < datetime(2026, 3, 1, 9, 0, 5)], "a naive datetime"),
        (lambda ev, w, d: to_frame(dropped(ev, w, d)).assign(event_time=lambda f: f["event_time"].dt.tz_localize(None)),
         "a naive datetime"),
    ],
)
def test_late_sales_rejects_typical_mistakes_with_the_right_hint(wrong, hint):
    assert_hint(lesson04.late_sales(wrong), hint)


def previous_sale_only(events, window, delay):
    """The watermark from the store's previous sale only, not the newest of all its sales so far."""
    last, out = {}, []
    for e in events:
        seen = last.get(e.key)
        out.append(seen is not None and window_start(e.event_time, window) + window.length <= seen - delay)
        last[e.key] = e.event_time
    return out


@pytest.mark.parametrize("wrong, hint", [
    (by_rule(lambda e, seen, w, d: window_start(e.event_time, Tumbling(w.length)) + w.length <= seen - d), DIFFERS),
    (by_rule(lambda e, seen, w, d: end_of(e.event_time, w) - timedelta(seconds=1) <= seen - d), DIFFERS),
    (previous_sale_only, DIFFERS),
    (by_rule(lambda e, seen, w, d: w.align_to + round((e.event_time - w.align_to) / w.length) * w.length
             + w.length <= seen - d), DIFFERS),
    (by_rule(lambda e, seen, w, d: end_of(e.event_time, w) <= seen + d), DIFFERS),
])
def test_late_sales_refuses_more_wrong_answers_with_a_case(wrong, hint):
    feedback = lesson04.late_sales(wrong)
    assert_hint(feedback, hint)
    assert "it should be" in feedback.message


def test_late_sales_not_implemented_is_not_yet_and_a_hard_coded_answer_fails():
    def not_written(events, window, delay):
        raise NotImplementedError()

    assert lesson04.late_sales(not_written).status == "not yet"
    trace = lesson04.hand_trace()
    lesson_answer = dropped(trace, Tumbling(10, align_to=lesson04.NINE), timedelta(seconds=5))
    assert [e.value for e in lesson_answer] == [30.0]  # as the lesson shows
    assert lesson04.late_sales(lambda events, window, delay: lesson_answer).status == "wrong"


def test_late_sales_cases_have_ties_and_tell_every_typical_mistake_apart():
    cases = lesson04._late_cases()
    wants = [lesson04._dropped_mask(c.events, c.window, c.delay) for c in cases]
    models = [[m for m, _ in lesson04._late_models(c.events, c.window, c.delay)] for c in cases]
    for case, want in zip(cases, wants):
        assert want.any()
        assert np.array_equal(want, np.array(dropped_counting_itself(list(case.events), case.window, case.delay)))
    for j in range(len(models[0])):
        assert any(not np.array_equal(m[j], w) for m, w in zip(models, wants)), j
        for k in range(j + 1, len(models[0])):
            assert any(not np.array_equal(m[j], m[k]) for m in models), (j, k)
    # A sale whose window's end is exactly at its store's watermark, in a trace on whole seconds.
    assert any(
        any(seen is not None and end_of(e.event_time, c.window) == seen - c.delay
            for e, seen in zip(c.events, newest_before(c.events)))
        for c in cases[1:3]
    )


# -- 2. allowed lateness in the lesson's dataflow -------------------------------------------------


def windows(state, sale, length, delay, allowed, align_to):
    """The solution: open windows, and closed ones kept until the watermark passes end + allowed."""
    watermark, open_windows, kept = state or (None, {}, {})
    start = align_to + (sale.event_time - align_to) // length * length
    out = []
    if watermark is not None and start + length + allowed <= watermark:
        out.append(("dropped", start, sale.value))
    elif watermark is not None and start + length <= watermark:
        count, total = kept.get(start, (0, 0.0))
        kept[start] = (count + 1, total + sale.value)
        out.append(("late answer", start, count + 1, total + sale.value, sale.arrival_time))
    else:
        count, total = open_windows.get(start, (0, 0.0))
        open_windows[start] = (count + 1, total + sale.value)
    watermark = max(watermark or sale.event_time - delay, sale.event_time - delay)
    for closing in sorted(s for s in open_windows if s + length <= watermark):
        kept[closing] = open_windows.pop(closing)
        out.append(("answer", closing, *kept[closing], sale.arrival_time))
    for expired in [s for s in kept if s + length + allowed <= watermark]:
        del kept[expired]
    return (watermark, open_windows, kept), out


def edited(change):
    """The solution, its items changed by ``change`` (called once per sale: the state moves on once)."""
    def mapper(*args):
        state, items = windows(*args)
        return state, change(items)

    return mapper


def keeping_expired_windows(state, sale, length, delay, allowed, align_to):
    # One dict of every window ever seen, with a flag; never forgotten, but the decision is still end + allowed.
    if state is None:
        state = {"watermark": None, "windows": {}}
    start = align_to + (sale.event_time - align_to) // length * length
    end, mark, out = start + length, state["watermark"], []
    known = state["windows"].setdefault(start, {"count": 0, "total": 0.0, "closed": False})
    if mark is not None and end + allowed <= mark:
        out.append(["dropped", pd.Timestamp(start), np.float64(sale.value)])
    else:
        known["count"] += 1
        known["total"] += sale.value
        if mark is not None and end <= mark:
            known["closed"] = True
            out.append(["late answer", pd.Timestamp(start), float(known["count"]), known["total"], sale.arrival_time])
    state["watermark"] = mark = sale.event_time - delay if mark is None else max(mark, sale.event_time - delay)
    for s, w in state["windows"].items():  # insertion order, not sorted: answers at one moment in any order
        if not w["closed"] and w["count"] and s + length <= mark:
            w["closed"] = True
            out.append(("answer", s, w["count"], w["total"], sale.arrival_time))
    return state, out


def watermark_first(state, sale, length, delay, allowed, align_to):
    # The watermark moved first: a sale never closes its own window, so the decisions are the same.
    watermark, open_windows, kept = state or (None, {}, {})
    watermark = max(watermark or sale.event_time - delay, sale.event_time - delay)
    out = []
    for closing in sorted(s for s in open_windows if s + length <= watermark):
        kept[closing] = open_windows.pop(closing)
        out.append(("answer", closing, *kept[closing], sale.arrival_time))
    start = align_to + (sale.event_time - align_to) // length * length
    if start + length + allowed <= watermark:
        out.append(("dropped", start, sale.value))
    elif start + length <= watermark:
        kept[start] = (kept.get(start, (0, 0.0))[0] + 1, kept.get(start, (0, 0.0))[1] + sale.value)
        out.append(("late answer", start, *kept[start], sale.arrival_time))
    else:
        count, total = open_windows.get(start, (0, 0.0))
        open_windows[start] = (count + 1, total + sale.value)
    return (watermark, open_windows, kept), out


@pytest.mark.parametrize(
    "variant",
    [
        windows,
        keeping_expired_windows,
        watermark_first,
        edited(lambda items: [tuple(np.float64(x) if isinstance(x, float) else x for x in item) for item in items]),
        edited(lambda items: (list(item) for item in items)),
    ],
    ids=["solution", "keeping-expired-windows", "watermark-first", "numpy-floats", "list-of-items"],
)
def test_late_answers_accepts_correct_variants(variant):
    feedback = lesson04.late_answers(variant)
    assert feedback.ok, feedback
    assert "in all 145 windows it answered in the lesson's half hour" in feedback.message


def with_late_sale(handle):
    """The solution's skeleton, with another way of handling a sale whose window has closed (within allowance)."""
    def mapper(state, sale, length, delay, allowed, align_to):
        watermark, open_windows, kept = state or (None, {}, {})
        start = align_to + (sale.event_time - align_to) // length * length
        out = []
        if watermark is not None and start + length + allowed <= watermark:
            out.append(("dropped", start, sale.value))
        elif watermark is not None and start + length <= watermark:
            handle(sale, start, open_windows, kept, out)
        else:
            count, total = open_windows.get(start, (0, 0.0))
            open_windows[start] = (count + 1, total + sale.value)
        watermark = max(watermark or sale.event_time - delay, sale.event_time - delay)
        for closing in sorted(s for s in open_windows if s + length <= watermark):
            kept[closing] = open_windows.pop(closing)
            out.append(("answer", closing, *kept[closing], sale.arrival_time))
        return (watermark, open_windows, kept), out

    return mapper


def late_alone(sale, start, open_windows, kept, out):
    out.append(("late answer", start, 1, sale.value, sale.arrival_time))


def late_silently(sale, start, open_windows, kept, out):
    count, total = kept.get(start, (0, 0.0))
    kept[start] = (count + 1, total + sale.value)


def late_reopens(sale, start, open_windows, kept, out):
    count, total = open_windows.get(start, (0, 0.0))
    open_windows[start] = (count + 1, total + sale.value)


def late_without_default(sale, start, open_windows, kept, out):
    count, total = kept[start]
    kept[start] = (count + 1, total + sale.value)
    out.append(("late answer", start, count + 1, total + sale.value, sale.arrival_time))


def late_stamped_with_event_time(sale, start, open_windows, kept, out):
    count, total = kept.get(start, (0, 0.0))
    kept[start] = (count + 1, total + sale.value)
    out.append(("late answer", start, count + 1, total + sale.value, sale.event_time))


def late_kind_from_the_lesson(sale, start, open_windows, kept, out):
    out.append(("late", start, sale.value))


def late_sales_only(state, sale, length, delay, allowed, align_to):
    # Closed windows are not kept: the late sales are counted from nothing.
    watermark, open_windows, late = state or (None, {}, {})
    start = align_to + (sale.event_time - align_to) // length * length
    out = []
    if watermark is not None and start + length + allowed <= watermark:
        out.append(("dropped", start, sale.value))
    elif watermark is not None and start + length <= watermark:
        count, total = late.get(start, (0, 0.0))
        late[start] = (count + 1, total + sale.value)
        out.append(("late answer", start, count + 1, total + sale.value, sale.arrival_time))
    else:
        count, total = open_windows.get(start, (0, 0.0))
        open_windows[start] = (count + 1, total + sale.value)
    watermark = max(watermark or sale.event_time - delay, sale.event_time - delay)
    for closing in sorted(s for s in open_windows if s + length <= watermark):
        out.append(("answer", closing, *open_windows.pop(closing), sale.arrival_time))
    return (watermark, open_windows, late), out


def with_rule(dropped_when, late_when, closes_when, stamp=lambda sale: sale.arrival_time):
    """A whole mapper whose comparisons are given: dropped_when(sale, end, watermark, allowed), ..."""
    def mapper(state, sale, length, delay, allowed, align_to):
        watermark, open_windows, kept = state or (None, {}, {})
        start = align_to + (sale.event_time - align_to) // length * length
        out = []
        if watermark is not None and dropped_when(sale, start + length, watermark, allowed):
            out.append(("dropped", start, sale.value))
        elif watermark is not None and late_when(sale, start + length, watermark, allowed):
            kept[start] = (kept.get(start, (0, 0.0))[0] + 1, kept.get(start, (0, 0.0))[1] + sale.value)
            out.append(("late answer", start, *kept[start], stamp(sale)))
        else:
            count, total = open_windows.get(start, (0, 0.0))
            open_windows[start] = (count + 1, total + sale.value)
        watermark = max(watermark or sale.event_time - delay, sale.event_time - delay)
        for closing in sorted(s for s in open_windows if closes_when(s + length, watermark)):
            kept[closing] = open_windows.pop(closing)
            out.append(("answer", closing, *kept[closing], stamp(sale)))
        return (watermark, open_windows, kept), out

    return mapper


def no_allowance(sale, end, watermark, allowed):
    return end <= watermark


def naive_alignment(state, sale, length, delay, allowed, align_to):
    return windows(state, sale, length, delay, allowed, datetime(2026, 3, 1, 9))


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (with_late_sale(late_alone), "your late answer holds only the late sale"),
        (with_rule(no_allowance, lambda *a: False, lambda end, wm: end <= wm),
         "you dropped every sale that arrived after its window closed"),
        (with_rule(lambda s, end, wm, allowed: end + allowed < wm, lambda s, end, wm, allowed: end <= wm,
                   lambda end, wm: end <= wm), "exactly at window end + allowed is beyond allowed lateness"),
        (with_late_sale(late_silently), "but you gave no late answer"),
        (with_late_sale(late_reopens), "a late sale went into a fresh window"),
        (late_sales_only, "your late answers count only the late sales"),
        (with_rule(lambda s, end, wm, allowed: end + allowed < wm, lambda s, end, wm, allowed: end < wm,
                   lambda end, wm: end < wm), "end <= watermark, not <"),
        (lambda *args: windows(*args[:3], args[3] + timedelta(seconds=1), *args[4:]), DIFFERS),
        (with_rule(lambda s, end, wm, allowed: s.event_time < wm, lambda *a: False, lambda end, wm: end <= wm),
         "you used bytewax's rule"),
        (with_late_sale(late_stamped_with_event_time), "the arrival time of the sale that caused it"),
        (with_rule(lambda s, end, wm, allowed: end + allowed <= wm, lambda s, end, wm, allowed: end <= wm,
                   lambda end, wm: end <= wm, stamp=lambda sale: sale.event_time),
         "the arrival time of the sale that caused it"),
        (with_late_sale(late_without_default), "KeyError"),
        (with_late_sale(late_kind_from_the_lesson), "an item of kind 'late'"),
        (lambda *args: windows(*args)[1], "must return a pair"),
        (naive_alignment, "a naive datetime"),
        (edited(lambda items: [item[:4] for item in items]), "item has 4 fields"),
        (edited(lambda items: [(item[0], str(item[1]), *item[2:]) for item in items]),
         "window_start of each item should be a datetime"),
        (edited(lambda items: [item[:4] + (item[4].replace(tzinfo=None),) if len(item) == 5 else item
                               for item in items]), "a naive datetime"),
        (edited(lambda items: [(*item[:3], item[3] + 1, item[4]) if len(item) == 5 else item for item in items]),
         DIFFERS),
        (edited(lambda items: [item for item in items if item[0] != "dropped"]),
         DIFFERS),
        (edited(lambda items: [item for item in items if item[0] == "dropped"]), DIFFERS),
        (edited(lambda items: 1 / 0), "ZeroDivisionError"),
        (edited(lambda items: [("answer", *item[1:]) if item[0] == "late answer" else item for item in items]),
         DIFFERS),
    ],
)
def test_late_answers_rejects_typical_mistakes_with_the_right_hint(wrong, hint):
    assert_hint(lesson04.late_answers(wrong), hint)


def test_late_answers_not_implemented_is_not_yet():
    def not_written(state, sale, length, delay, allowed, align_to):
        raise NotImplementedError()

    assert lesson04.late_answers(not_written).status == "not yet"


def test_late_answers_reference_is_the_engine_and_the_stream_and_the_cases_have_every_trap():
    cases = lesson04._dataflow_cases()
    born_closed = several_late = ties = 0
    for case in cases:
        want = lesson04._engine_output(case.events, case.window, case.delay, case.allowed)
        # The solution run by hand (as op.stateful_flat_map runs it) gives the engine's output ...
        mapper = lambda state, sale: windows(state, sale, case.window.length, case.delay, case.allowed,  # noqa: E731
                                             case.window.align_to)
        assert lesson04._same_output(lesson04._output(lesson04._simulate(mapper, case.events)), want)
        # ... and the engine in the bytewax stream the same panes as in the plain loop.
        if len(case.events) < 1000:
            settings = dict(watermark=per_store(case.delay), allowed_lateness=case.allowed, mode="accumulating")
            streamed = stream.panes(case.events, case.window, **settings)
            looped = loop(case.events, case.window, **settings)
            pd.testing.assert_frame_equal(streamed.panes, looped.panes)
            pd.testing.assert_frame_equal(streamed.dropped, looped.dropped)
        for key, (panes, _) in want.items():
            answered, late = set(), {}
            for kind, start, *_ in panes:
                if kind == "answer":
                    answered.add(start)
                else:
                    born_closed += start not in answered and start not in late
                    late[start] = late.get(start, 0) + 1
            several_late += sum(n > 1 for n in late.values())
        # A sale arriving exactly when its store's watermark is at its window's end + allowed lateness.
        for e, seen in zip(case.events, newest_before(case.events)):
            ties += seen is not None and end_of(e.event_time, case.window) + case.allowed == seen - case.delay
    assert born_closed and several_late and ties
    models = [lesson04._dataflow_models(c.events, c.window, c.delay, c.allowed) for c in cases]
    wants = [lesson04._engine_output(c.events, c.window, c.delay, c.allowed) for c in cases]
    n = len(models[0])
    for j in range(n):
        assert any(not lesson04._same_output(m[j], w) for m, w in zip(models, wants)), j
        for k in range(j + 1, n):
            assert any(not lesson04._same_output(m[j], m[k]) for m in models), (j, k)


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
        (lambda pile, w: per_window(to_frame(pile), w, time="arrival_time"), "window of its arrival time"),
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
        (lambda pile, w: per_window(to_frame(pile).assign(key="all"), w), "your keys are not the stores'"),
        (lambda pile, w: per_window(to_frame(pile), w).drop(columns="key"), "Group by key too"),
        (lambda pile, w: stream.windowed(pile, w, delay=5).windows, "some sales are missing from your windows"),
        (lambda pile, w: takings(pile, w).set_index(["key", "window_start"])["sum"], "you returned a Series"),
        (lambda pile, w: takings(pile, w).drop(columns="count"), "lacks the column(s) ['count']"),
        (lambda pile, w: to_frame(pile).assign(window_start=lambda f: window_start(f["event_time"], w)).groupby(
            ["key", "window_start"], observed=True).agg({"value": ["count", "sum"]}), "two levels of column names"),
        (lambda pile, w: takings(pile, w).rename(columns={"window_start": "event_time"}),
         "Name the column of window starts `window_start`"),
        (lambda pile, w: pd.concat([takings(pile, w)] * 2), "appears twice"),
        (lambda pile, w: takings(pile, w).assign(count=lambda f: f["count"] / 2), DIFFERS),
        (lambda pile, w: takings(pile, w).assign(window_start="soon"), "should hold datetimes"),
        (lambda pile, w: takings(pile, w).assign(window_start=lambda f: f["window_start"].astype("int64")),
         "got numbers"),
        (lambda pile, w: takings(pile, w).assign(sum=lambda f: f["sum"] + 1), DIFFERS),
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
        assert lesson04._same_table(with_stream, lesson04._table(batch.panes(case.events, case.window).table(),
                                                                 "windows"))
        # The stream driver itself gives that answer too (the check uses the engine's plain loop, for speed).
        if len(case.events) < 1000:
            slowest = max(e.arrival_time - e.event_time for e in case.events)
            streamed = stream.panes(case.events, case.window, watermark=Delay(slowest)).table()
            assert lesson04._same_table(with_stream, lesson04._table(streamed, "windows"))
    # The fresh pipe has sales with missing amounts, the whole-second trace sales on window boundaries.
    _, fresh, ticks = lesson04._takings_cases()
    assert any(e.value is None for e in fresh.events)
    assert any(fresh.window.starts_for(e.event_time)[0] != Tumbling(fresh.window.length).starts_for(e.event_time)[0]
               for e in fresh.events)
    assert any(ticks.window.starts_for(e.event_time)[0] == e.event_time for e in ticks.events)


# -- 4. the dropped sales' contribution ---------------------------------------------------------------


def contribution(events, window, delay):
    return per_window(to_frame(dropped(events, window, delay)), window)


def contribution_from_the_stream(events, window, delay):
    return per_window(stream.panes(events, window, watermark=per_store(delay)).dropped, window)


def batch_minus_stream(events, window, delay):
    full = batch.panes(events, window).table().set_index(["key", "window_start"])[["count", "sum"]]
    counted = loop(events, window, watermark=per_store(delay)).table().set_index(["key", "window_start"])
    return full.sub(counted[["count", "sum"]], fill_value=0)


def from_reconcile(events, window, delay):
    accounts = reconcile(batch.panes(events, window), loop(events, window, watermark=per_store(delay)))
    return accounts.rename(columns={"dropped_count": "count", "dropped_sum": "sum"})[
        ["key", "window_start", "count", "sum"]]


@pytest.mark.parametrize(
    "variant",
    [contribution, contribution_from_the_stream, batch_minus_stream, from_reconcile],
    ids=["loop", "stream", "batch-minus-stream", "reconcile"],
)
def test_dropped_contribution_accepts_correct_variants(variant):
    feedback = lesson04.dropped_contribution(variant)
    assert feedback.ok, feedback
    assert "all 150 windows of the lesson's half hour (56 of them with dropped sales)" in feedback.message


def all_dropped_windows_forgotten(events, window, delay):
    full = batch.panes(events, window).table().set_index(["key", "window_start"])[["count", "sum"]]
    counted = loop(events, window, watermark=per_store(delay)).table().set_index(["key", "window_start"])
    return (full - counted[["count", "sum"]]).dropna().reset_index()


def contribution_by_rule(rule):
    def answer(events, window, delay):
        return per_window(to_frame(by_rule(rule)(events, window, delay)), window)

    return answer


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda ev, w, d: loop(ev, w, watermark=per_store(d)).table(), "that is the stream's answer"),
        (lambda ev, w, d: batch.panes(ev, w).table(), "that is the batch answer"),
        (all_dropped_windows_forgotten, "windows in which every sale was dropped are missing"),
        (contribution_by_rule(lambda e, seen, w, d: e.event_time < seen - d), "you used bytewax's rule"),
        (lambda ev, w, d: per_window(to_frame([e for e in ev if e.arrival_time - e.event_time > d]), w),
         "took longer than delay"),
        (lambda ev, w, d: per_window(to_frame(one_watermark(ev, w, d)), w), "your watermark mixes the stores"),
        (contribution_by_rule(lambda e, seen, w, d: end_of(e.event_time, w) < seen - d),
         "end is exactly at the watermark"),
        (lambda ev, w, d: per_window(to_frame(dropped(ev, w, d)), w, time="arrival_time"),
         "window of its arrival time"),
        (lambda ev, w, d: per_window(to_frame(dropped(ev, w, d)), Tumbling(w.length)), "not where the spec puts them"),
        (lambda ev, w, d: contribution(ev, w, d).assign(window_start=lambda f: f["window_start"] + w.length),
         "off by one"),
        (lambda ev, w, d: contribution(ev, w, d).assign(window_start=lambda f: f["window_start"].dt.tz_localize(None)),
         "a naive datetime"),
        (lambda ev, w, d: contribution(ev, w, d).iloc[:-1], DIFFERS),
        (lambda ev, w, d: contribution(ev, w, d)[["key", "window_start", "sum"]], "lacks the column(s) ['count']"),
    ],
)
def test_dropped_contribution_rejects_typical_mistakes_with_the_right_hint(wrong, hint):
    assert_hint(lesson04.dropped_contribution(wrong), hint)


def test_dropped_contribution_cases_have_ties_and_windows_with_only_dropped_sales():
    cases = lesson04._contribution_cases()
    for case in cases:
        accounts = lesson04._accounts(case.events, case.window, case.delay)
        assert len(accounts.dropped) > 0
        # The expected contribution is reconcile's dropped columns, and the stream driver's own.
        assert lesson04._same_table(accounts.dropped, lesson04._table(
            from_reconcile(case.events, case.window, case.delay), "dropped"))
        if len(case.events) < 1000:
            assert lesson04._same_table(accounts.dropped, lesson04._table(
                contribution_from_the_stream(case.events, case.window, case.delay), "dropped"))
    # Some window has every one of its sales dropped (no stream answer at all) ...
    assert any(
        not lesson04._accounts(c.events, c.window, c.delay).dropped.merge(
            lesson04._accounts(c.events, c.window, c.delay).stream, on=["key", "window_start"], how="left",
            indicator=True).query("_merge == 'left_only'").empty
        for c in cases
    )
    # ... and some dropped sale's window ends exactly at its store's watermark.
    assert any(
        any(seen is not None and end_of(e.event_time, c.window) == seen - c.delay
            for e, seen in zip(c.events, newest_before(c.events)))
        for c in cases
    )
    models = [[m for m, _ in lesson04._contribution_models(c.events, c.window, c.delay)
               + lesson04._window_models(c.events, c.window, c.delay)] for c in cases]
    wants = [lesson04._accounts(c.events, c.window, c.delay).dropped for c in cases]
    for j in range(len(models[0]) - 1):  # the last (missing amounts counted) cannot happen: no amount is missing
        assert any(not lesson04._same_table(m[j], w) for m, w in zip(models, wants)), j


# -- the check data ------------------------------------------------------------------------------


def test_the_learner_gets_a_copy_of_the_data():
    def vandal(events, window, delay):
        events.clear()
        return []

    lesson04.late_sales(vandal)
    assert lesson04.late_sales(dropped).ok
    assert len(lesson04.half_hour()) == 3482
    lesson04.half_hour().clear()
    assert len(lesson04.half_hour()) == 3482


def test_the_hand_trace_is_the_lessons():
    trace = lesson04.hand_trace()
    assert len(trace) == 12
    assert lesson04.NINE == datetime(2026, 3, 1, 9, tzinfo=timezone.utc)
    assert [(e.event_time - lesson04.NINE).seconds for e in trace][:5] == [1, 3, 4, 12, 6]
    ten = Tumbling(10, align_to=lesson04.NINE)
    assert len(stream.panes(trace, ten, watermark=per_store(5)).dropped) == 1
    assert len(stream.panes(trace, ten, watermark=per_store(5), lateness="bytewax").dropped) == 3


# -- wrong answers written for the checks that compare with the solution ---------------------------

def takings_in_bins_closed_on_the_right(pile, window):
    sales = to_frame(pile)
    start = window_start(sales["event_time"], window)
    # (start, end] instead of [start, end): a sale exactly on a boundary goes to the window before.
    on_edge = start == sales["event_time"]
    sales["window_start"] = start.where(~on_edge, start - window.length)
    return sales.groupby(["key", "window_start"], observed=True)["value"].agg(["count", "sum"]).reset_index()


@pytest.mark.parametrize("wrong, hint", [
    (lambda pile, w: to_frame(pile).assign(window_start=lambda f: f["event_time"].dt.floor(w.length))
     .groupby(["key", "window_start"], observed=True)["value"].agg(["count", "sum"]).reset_index(),
     "not where the spec puts them"),
    (lambda pile, w: per_window(to_frame(pile).fillna({"value": 0.0}), w), "counted the sales with a missing amount"),
    (takings_in_bins_closed_on_the_right, "exactly on a window's boundary"),
    (lambda pile, w: (lambda t: t[t["count"] > 1])(takings(pile, w)), "some sales are missing from your windows"),
    (lambda pile, w: per_window(to_frame(pile), w, agg=("count", "mean")).rename(columns={"mean": "sum"}), DIFFERS),
])
def test_takings_refuses_more_wrong_answers(wrong, hint):
    assert_hint(lesson04.takings(wrong), hint)


@pytest.mark.parametrize("wrong, hint", [
    (contribution_by_rule(lambda e, seen, w, d: e.event_time <= seen - d), DIFFERS),
    (lambda ev, w, d: per_window(to_frame(dropped(ev, w, d)), Tumbling(w.length)), "not where the spec puts them"),
    (lambda ev, w, d: contribution(ev, w, d * 2), DIFFERS),
    (lambda ev, w, d: per_window(to_frame(dropped(ev, w, d)).drop_duplicates(["key", "event_time"]), w), DIFFERS),
    (lambda ev, w, d: contribution(ev, w, d).assign(sum=lambda f: f["sum"].round(-1)), DIFFERS),
])
def test_dropped_contribution_refuses_more_wrong_answers(wrong, hint):
    assert_hint(lesson04.dropped_contribution(wrong), hint)


def windows_with(*, late_total=True, keep=True, stamp=lambda sale, start, length: sale.arrival_time, gone="<=",
                 kept_outside=None):
    """The solution with one change: the late total not updated, closed windows not kept, another emitted_at,
    expired windows compared with <, or each store's closed windows kept in a dict outside the state."""
    def mapper(state, sale, length, delay, allowed, align_to):
        watermark, open_windows, kept = state or (None, {}, {})
        if kept_outside is not None:
            if state is None:  # set up afresh at a store's first sale: every run is right, a resumed one is not
                kept_outside[sale.key] = {}
            kept = kept_outside[sale.key]
        start = align_to + (sale.event_time - align_to) // length * length
        out = []
        expired = {"<=": lambda s: s + length + allowed <= watermark, "<": lambda s: s + length + allowed < watermark,
                   "never": lambda s: False}[gone]
        if watermark is not None and (expired(start) or not keep and start + length <= watermark):
            out.append(("dropped", start, sale.value))
        elif watermark is not None and start + length <= watermark:
            count, total = kept.get(start, (0, 0.0))
            kept[start] = (count + 1, total + sale.value if late_total else total)
            out.append(("late answer", start, *kept[start], stamp(sale, start, length)))
        else:
            count, total = open_windows.get(start, (0, 0.0))
            open_windows[start] = (count + 1, total + sale.value)
        watermark = max(watermark or sale.event_time - delay, sale.event_time - delay)
        for closing in sorted(s for s in open_windows if s + length <= watermark):
            kept[closing] = open_windows.pop(closing)
            out.append(("answer", closing, *kept[closing], stamp(sale, closing, length)))
        for old in [s for s in kept if expired(s)]:
            del kept[old]
        return (watermark, open_windows, kept), out

    return mapper


@pytest.mark.parametrize("wrong, hint", [
    (windows_with(late_total=False), DIFFERS),
    (windows_with(keep=False), "you dropped every sale that arrived after its window closed"),
    (windows_with(stamp=lambda sale, start, length: start + length), DIFFERS),
    (windows_with(gone="<"), "beyond allowed lateness"),
    (windows_with(gone="never"), DIFFERS),  # allowed lateness ignored: closed windows kept for ever
    (windows_with(kept_outside={}), "resumed from a snapshot of its state"),
])
def test_late_answers_refuses_more_wrong_answers(wrong, hint):
    assert_hint(lesson04.late_answers(wrong), hint)
