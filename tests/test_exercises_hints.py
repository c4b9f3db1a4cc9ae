"""No hint states the answer: every hint text of lessons 01-09 is scanned for the solution's code and formulas.

The hints are read from the checks' source: every string given to ``Mistake``,
``Known``, ``hint`` or a module-level hint constant, and every string held by a
function that turns a learner's error or answer into a hint (named
``explain``, ``_explain_...``: what it returns, or a table of probes and their
hints), f-string holes left as ``{}``. The messages the checks give on
the tests' wrong answers are scanned by the lessons' own tests.
"""

import ast
import re
from pathlib import Path

import nbformat
import pytest

from streamlab.exercises import build

LESSONS = [f"lesson{n:02d}" for n in range(1, 10)]
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


#: A function that turns a learner's error or answer into a hint (``explain``, ``_explain_fix``): its strings are hints.
EXPLAINER = re.compile(r"^_?explain")


def _strings_held(function: ast.FunctionDef) -> list[str]:
    """Every string a function holds, whole, but its docstring and the patterns it looks for (``"x" in text``)."""
    body = function.body[1:] if ast.get_docstring(function) is not None else function.body
    inside = {id(v) for node in ast.walk(function) if isinstance(node, ast.JoinedStr) for v in node.values}
    tested = {id(n) for node in ast.walk(function) if isinstance(node, ast.Compare)
              for n in [node.left, *node.comparators]}
    found = []
    for statement in body:
        for node in ast.walk(statement):
            if isinstance(node, (ast.Constant, ast.JoinedStr)) and id(node) not in inside | tested:
                text = _text(node)
                if len(text) > 20 and " " in text:
                    found.append(text)
    return found


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
        if isinstance(node, ast.FunctionDef) and EXPLAINER.match(node.name):
            found += _strings_held(node)
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


@pytest.mark.parametrize("words", [
    "not how many there are",  # a Mistake raised while reading an answer
    "*next* offset to read",  # a known mistake's hint
    "the sink wrote some rows again",
    "a dict of your own",
])
def test_the_scan_finds_the_hints_of_a_lesson(words):
    assert any(words in text for text in hints_in_source("lesson08"))


@pytest.mark.parametrize("lesson", LESSONS)
def test_the_scan_reads_what_explainers_return(lesson):
    tree = ast.parse((MODULES / f"{lesson}.py").read_text(encoding="utf-8"))
    hints = set(hints_in_source(lesson))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and EXPLAINER.match(node.name):
            returned = [_text(r.value) for r in ast.walk(node) if isinstance(r, ast.Return) and r.value is not None]
            assert {text for text in returned if len(text) > 20} <= hints, node.name


@pytest.mark.parametrize("lesson", LESSONS)
def test_the_scan_takes_no_docstring_and_no_praise(lesson):
    tree = ast.parse((MODULES / f"{lesson}.py").read_text(encoding="utf-8"))
    docs = {ast.get_docstring(node) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node)}
    praise = {_text(arg) for node in ast.walk(tree)
              if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "correct" for arg in node.args}
    assert praise, "no correct(...) message found: has the way checks praise changed?"
    assert not set(hints_in_source(lesson)) & (docs | praise)


def test_an_explainer_gives_its_hints_not_its_docstring_or_the_patterns_it_looks_for():
    source = '''
def _explain(cause):
    """Turn the learner's error into a hint, when it is one we know."""
    if "must be finite numbers" in str(cause):
        return f"your function crashed on a broken purchase ({cause}): route it aside"
    probes = [("12.5", "an amount sent as text must become a number")]
'''
    assert _strings_held(ast.parse(source).body[0]) == [
        "your function crashed on a broken purchase ({}): route it aside",
        "an amount sent as text must become a number",
    ]
