"""Exercises: student versions are generated and current, run with placeholders, and checks give the right hint."""

from datetime import timedelta

import bytewax.operators as op
import nbformat
import pytest
from nbclient import NotebookClient

from streamlab.events import arrived_before, take, to_frame
from streamlab.exercises import Feedback, Mistake, build, correct, lesson01
from streamlab.exercises import checker as make_checker

STUDENT_VERSIONS = sorted(build.NOTEBOOKS.glob("[0-9]*_exercises.ipynb"))


# -- the machinery -------------------------------------------------------------------------

def test_every_solution_notebook_has_a_current_student_version():
    sources = sorted(build.SOLUTIONS.glob("*_exercises.ipynb"))
    assert sources, "no exercise notebooks found"
    assert [s.name for s in sources] == [s.name for s in STUDENT_VERSIONS]
    assert build.out_of_date() == [], "run: python -m streamlab.exercises build"


def test_a_stale_student_version_is_detected(tmp_path, monkeypatch):
    (tmp_path / "solutions").mkdir()
    source = build.SOLUTIONS / STUDENT_VERSIONS[0].name
    (tmp_path / "solutions" / source.name).write_text(source.read_text())
    monkeypatch.setattr(build, "NOTEBOOKS", tmp_path)
    monkeypatch.setattr(build, "SOLUTIONS", tmp_path / "solutions")
    assert build.out_of_date() == [tmp_path / source.name]  # missing
    build.build_all()
    assert build.out_of_date() == []
    student = tmp_path / source.name
    student.write_text(student.read_text().replace("NotImplementedError", "NotImplementedErr"))
    assert build.out_of_date() == [student]  # edited by hand


def test_student_version_hides_solutions_and_instructor_notes_and_outputs():
    for student in STUDENT_VERSIONS:
        nb = nbformat.read(student, as_version=4)
        solution = nbformat.read(build.SOLUTIONS / student.name, as_version=4)
        text = "\n".join(c.source for c in nb.cells)
        assert "BEGIN SOLUTION" not in text and "Solution notes" not in text
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert code.count("raise NotImplementedError()") == sum(
            c.source.count("### BEGIN SOLUTION") for c in solution.cells
        )
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("student", STUDENT_VERSIONS, ids=lambda p: p.name)
def test_student_notebook_runs_top_to_bottom_and_every_check_says_not_yet(student):
    nb = nbformat.read(student, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(student.parent)}}).execute()
    checks = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("check.")]
    assert checks
    for cell in checks:
        (result,) = [o for o in cell.outputs if o.output_type == "execute_result"]
        assert result["data"]["text/plain"].startswith("… Not yet"), cell.source


def test_checker_turns_learner_errors_into_hints_and_never_raises():
    @make_checker
    def check(fn) -> Feedback:
        if fn() != 1:
            raise Mistake("return one")
        return correct()

    def not_written():
        raise NotImplementedError()

    assert check(lambda: 1).ok
    assert check(lambda: 2) == Feedback("wrong", "return one")
    assert check(lambda: 1 / 0).message == "your code raised ZeroDivisionError: division by zero"
    assert repr(check(not_written)).startswith("… Not yet")


# -- lesson 01, exercise 1: cut the pile --------------------------------------------------------

def cut(sales, minutes):
    return arrived_before(sales, sales.start + timedelta(minutes=minutes))


@pytest.mark.parametrize(
    "variant",
    [
        cut,
        lambda s, m: to_frame(cut(s, m)),
        lambda s, m: list(reversed(cut(s, m))),
        lambda s, m: to_frame(cut(s, m)).astype({"key": "object"}).assign(extra=1).iloc[::-1],
        lambda s, m: [e for e in take(s, 5000) if e.arrival_time < s.start + timedelta(minutes=m)],
    ],
)
def test_cut_the_pile_accepts_correct_variants(variant):
    assert lesson01.cut_the_pile(variant).ok


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda s, m: [e for e in take(s, 5000) if e.event_time < s.start + timedelta(minutes=m)], "*happened*"),
        (lambda s, m: arrived_before(s, s.start + timedelta(seconds=m)), "seconds after the start, not"),
        (lambda s, m: take(s, m * 60 * 2), "fixed number of sales"),
        (lambda s, m: s, "not the pipe"),
        (lambda s, m: iter(cut(s, m)), "not the pipe or an iterator"),
        (lambda s, m: 42, "got int"),
        (lambda s, m: arrived_before(s, s.start + timedelta(minutes=m + 1)), "more sales than arrived"),
        (lambda s, m: to_frame(cut(s, m)).drop(columns=["arrival_time"]), "lacks the column(s) ['arrival_time']"),
    ],
)
def test_cut_the_pile_rejects_typical_mistakes_with_the_right_hint(wrong, hint):
    feedback = lesson01.cut_the_pile(wrong)
    assert feedback.status == "wrong" and hint in feedback.message


# -- lesson 01, exercise 2: the stream version of big sales --------------------------------------

def solution_flow(events):
    big = op.filter("big", events, lambda e: e.value is not None and e.value > 30)
    by_store = op.key_on("by_store", big, lambda e: e.key)
    return op.stateful_map("count", by_store, lambda n, e: ((n or 0) + 1, (n or 0) + 1))


def float_counts_keyed_first(events):
    by_store = op.key_on("by_store", events, lambda e: e.key)
    big = op.filter_value("big", by_store, lambda e: e.value is not None and e.value > 30)
    return op.stateful_map("count", big, lambda n, e: ((n or 0.0) + 1.0, (n or 0.0) + 1.0))


def counts_with(predicate, step=lambda n: (n or 0) + 1):
    def flow(events):
        big = op.filter("big", events, predicate)
        by_store = op.key_on("by_store", big, lambda e: e.key)
        return op.stateful_map("count", by_store, lambda n, e: (step(n), step(n)))

    return flow


@pytest.mark.parametrize("variant", [solution_flow, float_counts_keyed_first])
def test_big_sales_accepts_correct_variants(variant):
    assert lesson01.big_sales_flow(variant).ok


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (counts_with(lambda e: e.value > 30), "crashed on a sale with a missing amount"),
        (counts_with(lambda e: e.value is not None and e.value >= 30), "means > 30"),
        (counts_with(lambda e: True), "you counted every sale"),
        (counts_with(lambda e: e.value is not None and e.value > 30, step=lambda n: 1), "never grow past 1"),
        (lambda events: op.map("values", events, lambda e: e.value), "emit (store, count) pairs"),
        (lambda events: op.filter("none", events, lambda e: False), "emitted nothing"),
        (counts_with(lambda e: e.value is not None and e.value > 31), "differ from the batch answer"),
        (lambda events: op.map("boom", events, lambda e: 1 / 0), "your flow stopped"),
    ],
)
def test_big_sales_rejects_typical_mistakes_with_the_right_hint(wrong, hint):
    feedback = lesson01.big_sales_flow(wrong)
    assert feedback.status == "wrong" and hint in feedback.message, feedback


def test_big_sales_not_implemented_is_not_yet():
    def flow(events):
        raise NotImplementedError()

    assert lesson01.big_sales_flow(flow).status == "not yet"


# -- lesson 01, exercise 3: when did the mean settle? ---------------------------------------------

def settled(summary, key, within):
    rows = summary.updates[summary.updates["key"] == key].reset_index(drop=True)
    away = (rows["mean"] - rows["mean"].iloc[-1]).abs() > within
    return rows["known_at"].iloc[away[away].index[-1] + 1 if away.any() else 0]


def first_close(summary, key, within):
    rows = summary.updates[summary.updates["key"] == key].reset_index(drop=True)
    close = (rows["mean"] - rows["mean"].iloc[-1]).abs() <= within
    return rows["known_at"][close].iloc[0]


def last_away(summary, key, within):
    rows = summary.updates[summary.updates["key"] == key].reset_index(drop=True)
    away = (rows["mean"] - rows["mean"].iloc[-1]).abs() > within
    return rows["known_at"][away].iloc[-1]


@pytest.mark.parametrize(
    "variant",
    [settled, lambda s, k, w: settled(s, k, w).to_pydatetime()],
)
def test_settled_at_accepts_correct_variants(variant):
    assert lesson01.settled_at(variant).ok


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (first_close, "strayed more than"),
        (last_away, "was still more than"),
        (lambda s, k, w: settled(s, k, w).tz_localize(None).to_pydatetime(), "yours is naive"),
        (lambda s, k, w: str(settled(s, k, w)), "return a datetime"),
        (lambda s, k, w: settled(s, "all keys", w), "is not a moment at which the answer for"),
        (lambda s, k, w: s.updates.loc[s.updates["key"] == k, "known_at"].iloc[-1], "your answer is too late"),
    ],
)
def test_settled_at_rejects_typical_mistakes_with_the_right_hint(wrong, hint):
    feedback = lesson01.settled_at(wrong)
    assert feedback.status == "wrong" and hint in feedback.message, feedback


def test_feedback_shows_as_html_with_its_mark():
    assert "✓ Correct" in lesson01.cut_the_pile(cut)._repr_html_()
