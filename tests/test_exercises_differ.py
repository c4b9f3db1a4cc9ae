"""The machinery of the checks: answers compared by meaning, counterexamples shrunk, hints only when they explain.

(streamlab.exercises.differ; every lesson's check is built on it.)
"""

import random
from datetime import timedelta

import bytewax.operators as op
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamlab.events import COURSE_START, Event
from streamlab.exercises import Mistake, checker, correct
from streamlab.exercises.differ import (
    Case,
    Exercise,
    Known,
    Raised,
    bag,
    events,
    learner_dataflow,
    meaning,
    resumed_steps,
    resuming,
    run_flow,
    same,
    show,
    show_events,
)


def count_over(values, limit):
    return sum(1 for v in values if v is not None and v > limit)


def over_cases():
    yield Case(([31.0, 30.0, None, 5.0, 40.0], 30.0), "the lesson's data")
    rng = random.Random(3)
    for _ in range(20):
        yield Case(([rng.choice([None, 29.0, 30.0, 31.0, 1e9]) for _ in range(rng.randint(0, 8))], 30.0))


OVER = Exercise(
    solution=count_over,
    cases=over_cases,
    describe=lambda case: f"with values {case.args[0]} and limit {case.args[1]:g}",
    known=(
        Known("'over' leaves the limit out.", model=lambda values, limit: sum(1 for v in values if v is not None and v >= limit)),
        Known("you counted every value.", model=lambda values, limit: len(values)),
    ),
)


@checker
def check_over(fn):
    OVER.compare(fn)
    return correct()


# -- answers by meaning ------------------------------------------------------------------------

@pytest.mark.parametrize("a, b", [
    (np.int64(1), 1), (1, 1.0), (np.float32(0.5), 0.5), ([1, 2], (np.int64(1), np.float64(2.0))),
    (pd.Series({"a": 1}), {"a": np.int64(1)}), (np.array([1.5, np.nan]), [1.5, float("nan")]),
    (bag([3, 1, 2]), bag((2, 3, 1))), ({1, 2}, {2.0, 1.0}),
    (pd.Timestamp("2026-03-01", tz="UTC"), COURSE_START), (0.1 + 0.2, 0.3),
])
def test_answers_that_mean_the_same_are_the_same(a, b):
    assert same(a, b) and same(b, a)


@pytest.mark.parametrize("a, b", [
    (1, 2), (True, 1), ([1, 2], [2, 1]), ({"a": 1}, {"a": 1, "b": 2}), (None, 0), ("1", 1),
    (pd.Timestamp("2026-03-01"), COURSE_START), (float("nan"), 0.0), (bag([1, 1]), bag([1])),
])
def test_answers_that_differ_are_not_the_same(a, b):
    assert not same(a, b)


def test_a_numpy_count_is_a_count():
    assert check_over(lambda values, limit: np.int64(count_over(values, limit))).ok
    assert check_over(lambda values, limit: float(count_over(values, limit))).ok


def test_show_gives_counts_as_integers_and_times_as_times():
    assert show([np.int64(2), 0.5]) == "(2, 0.5)"
    assert show(COURSE_START + timedelta(seconds=90)) == "00:01:30"
    assert show(Raised(TypeError, "bad")) == "an error: TypeError: bad"


# -- the counterexample ------------------------------------------------------------------------

def test_the_counterexample_is_the_smallest_input_that_still_differs():
    feedback = check_over(lambda values, limit: sum(1 for v in values if v is not None and v >= limit))
    assert feedback.message.startswith("'over' leaves the limit out. For example, with values [30.0] and limit 30")
    assert "your answer is 1; it should be 0." in feedback.message


@given(st.lists(st.sampled_from([None, 29.0, 30.0, 31.0]), max_size=30))
def test_shrinking_keeps_the_difference_and_never_grows(values):
    def wrong(vs, limit):
        return sum(1 for v in vs if v is not None and v >= limit)

    case = Case((values, 30.0))
    smaller = OVER.shrink(wrong, case)
    assert len(smaller.args[0]) <= len(values)
    if wrong(values, 30.0) != count_over(values, 30.0):
        assert smaller.args[0] == [30.0]  # one value on the limit is the whole story


def test_a_hint_is_given_only_when_its_mistake_explains_the_counterexample():
    # Counts every value but None: neither model gives its answers, so the message is the neutral one.
    feedback = check_over(lambda values, limit: sum(1 for v in values if v is not None))
    assert feedback.message.startswith("Here is an input where your answer differs: with values [")
    assert "'over'" not in feedback.message and "every value" not in feedback.message
    assert check_over(lambda values, limit: len(values)).message.startswith("you counted every value.")


def test_an_error_on_an_input_is_an_answer_shown_with_its_case():
    feedback = check_over(lambda values, limit: sum(1 for v in values if v > limit))
    assert "with values [None]" in feedback.message and "TypeError" in feedback.message


def test_a_malformed_answer_gets_the_exercises_own_hint():
    def meaning_of_count(answer, case):
        if isinstance(answer, str):
            raise Mistake("return a number, not a string.")
        return meaning(answer)

    strict = Exercise(solution=count_over, cases=over_cases, describe=OVER.describe, meaning=meaning_of_count)
    with pytest.raises(Mistake, match="not a string"):
        strict.compare(lambda values, limit: str(count_over(values, limit)))


def test_a_not_yet_written_function_is_not_yet():
    def placeholder(values, limit):
        raise NotImplementedError()

    assert check_over(placeholder).status == "not yet"


# -- hidden state ------------------------------------------------------------------------------

def test_state_kept_between_calls_is_caught():
    seen = set()

    def remembers(values, limit):
        fresh = [v for v in values if v not in seen]
        seen.update(values)
        return count_over(fresh, limit)

    assert "keeps something from one call to the next" in check_over(remembers).message


def test_state_that_only_changes_later_calls_is_caught_even_when_every_answer_was_right():
    calls = []

    def right_the_first_times(values, limit):
        calls.append(1)
        return count_over(values, limit) + (len(calls) > 21)

    assert "keeps something from one call to the next" in check_over(right_the_first_times).message


# -- generated events and dataflows ------------------------------------------------------------

def test_generated_events_tie_and_arrive_out_of_order():
    pile = events(random.Random(0), 200, step=15.0)
    assert all(a.arrival_time <= b.arrival_time for a, b in zip(pile, pile[1:]))
    times = [e.event_time for e in pile]
    assert len(set(times)) < len(times)  # ties
    assert any(later.event_time < earlier.event_time for earlier, later in zip(pile, pile[1:]))
    assert all((e.event_time - COURSE_START).total_seconds() % 15 == 0 for e in pile)
    assert any(e.value is None for e in pile) and any(e.value == 0.0 for e in pile)


def test_show_events_lists_each_event_on_its_line():
    t = COURSE_START
    text = show_events([Event("a", None, t, t), Event("b", 2.5, t, t + timedelta(seconds=1))])
    assert text.splitlines() == ["these 2 sales (key, amount, happened, arrived):",
                                 "  a, missing, 00:00:00, 00:00:00", "  b, 2.5 €, 00:00:00, 00:00:01"]


def test_a_learners_dataflow_that_raises_becomes_a_hint_with_its_cause():
    t = COURSE_START
    pile = [Event("a", 1.0, t, t)]
    assert run_flow(lambda s: op.map("m", s, lambda e: e.key), pile) == ["a"]
    with pytest.raises(Mistake, match="your dataflow stopped: ZeroDivisionError: division by zero"):
        run_flow(lambda s: op.map("m", s, lambda e: 1 / 0), pile)
    with pytest.raises(Mistake, match="a zero"):
        run_flow(lambda s: op.map("m", s, lambda e: 1 / 0), pile,
                 explain=lambda cause: "a zero" if isinstance(cause, ZeroDivisionError) else None)
    with pytest.raises(NotImplementedError):
        run_flow(lambda s: op.map("m", s, lambda e: (_ for _ in ()).throw(NotImplementedError())), pile)


def test_learner_dataflow_passes_other_errors_through():
    with pytest.raises(KeyError), learner_dataflow():
        raise KeyError("not a dataflow's")


# -- a mapper resumed from snapshots of its state ------------------------------------------------------

def running_counts(state, sale):
    """Right: the count per key, the state changed in place."""
    state = state if state is not None else {"n": 0}
    state["n"] += 1
    return state, (sale.key, state["n"])


def counts_kept_outside():
    """Per key, in a dict outside the function, set up afresh at each key's first sale: right on every run."""
    outside = {}

    def mapper(state, sale):
        if state is None:
            outside[sale.key] = 0
        outside[sale.key] += 1
        return True, (sale.key, outside[sale.key])

    return mapper


def run_keyed(mapper, pile):
    """``mapper`` as op.stateful_map runs it, per key, in a plain loop."""
    states, out = {}, []
    for sale in pile:
        state, answer = mapper(states.get(sale.key), sale)
        states[sale.key] = state
        out.append(answer)
    return out


COUNTS = Exercise(
    solution=running_counts,
    cases=lambda: [Case((events(random.Random(seed), n=12, keys=2),)) for seed in range(3)],
    call=lambda fn, case: run_keyed(resuming(fn, show_items=show_events), list(case.args[0])),
    describe=lambda case: f"with {show_events(case.args[0])}",
    resume=3,
)


def test_a_mapper_resumed_from_its_snapshots_must_repeat_itself():
    pile = events(random.Random(4), n=40, keys=3)
    assert run_keyed(resuming(running_counts), pile) == run_keyed(running_counts, pile)  # in place: still right
    with pytest.raises(Mistake, match="resumed from a snapshot of its state"):
        run_keyed(resuming(counts_kept_outside()), pile)
    assert run_keyed(counts_kept_outside(), pile) == run_keyed(running_counts, pile)  # right on every run


def test_an_answer_read_once_is_read_for_the_replay_and_passed_on_and_a_non_pair_passes_through():
    pile = events(random.Random(5), n=9, keys=1)
    as_generator = resuming(lambda state, sale: ((state or 0) + 1, (x for x in [sale.key])))
    assert run_keyed(as_generator, pile) == [[pile[0].key]] * 9
    assert resuming(lambda state, sale: "not a pair")(None, pile[0]) == "not a pair"


def test_a_check_compares_the_answers_first_and_resumes_only_when_every_answer_is_right():
    assert COUNTS.compare(running_counts)
    with pytest.raises(Mistake, match="resumed from a snapshot of its state") as kept_outside:
        COUNTS.compare(counts_kept_outside())
    assert "Resumed from its state before" in kept_outside.value.message
    outside = {}

    def off_by_one_and_kept_outside(state, sale):  # wrong answers on every run: said as such, not as a resumed run
        if state is None:
            outside[sale.key] = 0
        outside[sale.key] += 1
        return True, (sale.key, outside[sale.key] - 1)

    with pytest.raises(Mistake, match="Here is an input where your answer differs"):
        COUNTS.compare(off_by_one_and_kept_outside)


def test_the_stateful_steps_of_a_learners_dataflow_are_resumed_inside_the_block_only():
    from streamlab import stream

    pile = events(random.Random(6), n=20, keys=2)
    outside = {}

    def body(sales):  # op.stateful_map, built on op.stateful_flat_map, with its counts kept outside
        def count(state, sale):
            outside[sale.key] = (outside[sale.key] if state else 0) + 1
            return True, outside[sale.key]

        return op.stateful_map("count", op.key_on("k", sales, lambda e: e.key), count)

    original = op.stateful_flat_map
    with pytest.raises(Mistake, match="resumed from a snapshot of its state"), resumed_steps(show_items=show_events):
        run_flow(body, pile)
    assert op.stateful_flat_map is original
    right = stream.run(body, pile)["out"]  # outside the block: bytewax as it was, and every run right
    assert sorted(n for _, n in right) == sorted(n for k in ("store-0", "store-1")
                                                 for n in range(1, 1 + sum(e.key == k for e in pile)))


def test_a_kept_directory_removes_those_of_processes_that_no_longer_run(tmp_path, monkeypatch):
    import os
    import shutil
    import subprocess
    import sys
    import tempfile

    from streamlab.exercises.differ import kept_dir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f"streamlab-test-{int(ended.stdout)}-x"
    alive = tmp_path / f"streamlab-test-{os.getpid()}-y"
    for left in (dead, alive):
        (left / "log-0").mkdir(parents=True)
    root = kept_dir("streamlab-test-")
    try:
        assert not dead.exists() and alive.exists()
        assert root.parent == tmp_path and root.name.startswith(f"streamlab-test-{os.getpid()}-")
    finally:
        shutil.rmtree(root)
