"""Exercises: student versions are generated and current, run with placeholders, and checks give the right hint."""

from datetime import timedelta

import nbformat
import pytest
from nbclient import NotebookClient

from streamlab.events import arrived_before
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


# -- lesson 01's checks are tested in tests/test_exercises_lesson01.py -------------------------------

def test_feedback_shows_as_html_with_its_mark():
    def cut(sales, minutes):
        return arrived_before(sales, sales.start + timedelta(minutes=minutes))

    assert "✓ Correct" in lesson01.cut_the_pile(cut)._repr_html_()
