"""No hint states the answer: every hint text of lessons 01-05 is scanned for the solution's code and formulas.

The hints are read from the checks' source (every string given to ``Mistake``,
``Known``, ``hint`` or a module-level hint constant, f-string holes left as
``{}``) and from the messages the checks give on the tests' wrong answers.
"""

import ast
import re
from pathlib import Path

import nbformat
import pytest

from streamlab.exercises import build

LESSONS = ["lesson01", "lesson02", "lesson03", "lesson04", "lesson05"]
MODULES = Path(build.__file__).parent

#: An assignment of a computed value (``precision = a / b``, ``mean = sum/count``): a formula, not a hint.
FORMULA = re.compile(r"\b[a-z_]\w*\s*=\s*[^=,;.]*?[\w|)\]]\s*[/*]\s*[\w|(]")


def _text(node: ast.AST) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _text(node.left) + _text(node.right)
    return ""


def hints_in_source(lesson: str) -> list[str]:
    tree = ast.parse((MODULES / f"{lesson}.py").read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in {"Mistake", "Known", "hint"}:
            found += [t for t in map(_text, [*node.args, *(k.value for k in node.keywords)]) if len(t) > 20]
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets):
            text = _text(node.value)
            if len(text) > 40 and " " in text:
                found.append(text)
    return found


def solution_lines(lesson: str) -> list[str]:
    nb = nbformat.read(build.SOLUTIONS / f"{lesson[-2:]}_exercises.ipynb", as_version=4)
    lines = []
    for cell in nb.cells:
        inside = False
        for line in cell.source.splitlines():
            if "### BEGIN SOLUTION" in line:
                inside = True
            elif "### END SOLUTION" in line:
                inside = False
            elif inside and len(line.strip()) >= 16 and not line.strip().startswith("#"):
                lines.append(line.strip())
    return lines


@pytest.mark.parametrize("lesson", LESSONS)
def test_hints_in_the_source_hold_no_solution_code_and_no_formula(lesson):
    hints = hints_in_source(lesson)
    assert len(hints) >= 5, "the scan found no hints: has the way hints are written changed?"
    code = solution_lines(lesson)
    assert code
    for text in hints:
        assert not FORMULA.search(text), f"a hint states a formula: {text!r}"
        for line in code:
            assert line not in text, f"a hint holds the solution's line {line!r}: {text!r}"


def test_the_scan_catches_a_formula_and_a_line_of_code():
    assert FORMULA.search("precision = |flagged ∩ fraud| / |flagged|")
    assert FORMULA.search("use mean = total / count")
    assert not FORMULA.search("`over 30 €` means more than 30; 'within' is a gap of at most 0.5")
    assert "return arrived_before(sales, sales.start + timedelta(minutes=minutes))" in solution_lines("lesson01")
