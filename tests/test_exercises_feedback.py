"""Feedback is shown as its Markdown means: hints in italics and code, never raw `*` and backticks."""

import ast
import re
from pathlib import Path

import pytest

from streamlab.exercises import Feedback, correct, hint, inline_markdown, not_yet

EXERCISES = Path(__file__).resolve().parents[1] / "streamlab" / "exercises"


def test_not_yet_shows_its_code_as_code():
    shown = not_yet()._repr_html_()
    assert "<code>raise NotImplementedError()</code>" in shown
    assert "`" not in shown


def test_a_hint_shows_emphasis_not_stars():
    shown = hint("your pile holds the sales that *happened* before the cut, not **arrived**.")._repr_html_()
    assert "<em>happened</em>" in shown and "<strong>arrived</strong>" in shown
    assert "*" not in shown


def test_html_in_a_message_is_text_and_dollars_are_never_math():
    shown = correct("<script>x</script> costs $4 and $5")._repr_html_()
    assert "<script>" not in shown and "&lt;script&gt;" in shown
    assert 'class="mathjax_ignore"' in shown  # JupyterLab's MathJax skips the paragraph
    assert "mathjax_ignore" not in correct("no dollars")._repr_html_()


@pytest.mark.parametrize("text", ["a * b * c", "2*3*4", "x ** 2", "*", "`", "un`closed", "**"])
def test_lone_stars_and_backticks_are_left_as_they_are(text):
    assert inline_markdown(text) == text


def test_code_keeps_its_stars():
    assert inline_markdown("`*args`, *then*") == "<code>*args</code>, <em>then</em>"


def test_the_marks_and_colours_stay():
    for status, mark in [("correct", "✓ Correct"), ("wrong", "✗ Not quite"), ("not yet", "… Not yet")]:
        assert mark in Feedback(status, "x")._repr_html_()


def messages() -> list[str]:
    found = []
    for path in sorted(EXERCISES.glob("lesson*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            # Docstrings (reStructuredText, with ``double`` backticks) are for the reader of the code.
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and " " in node.value and "``" not in node.value:
                found.append(node.value)
    return found


def test_every_hint_written_in_the_checks_renders_without_raw_marks():
    rendered = [inline_markdown(m) for m in messages() if "`" in m or re.search(r"\*\w", m)]
    assert len(rendered) > 20  # the checks do use Markdown: this test reads them
    leftover = [r for r in rendered if "`" in r or re.search(r"(?<![\w*])\*\w[^*]*\w\*(?!\w)", r)]
    assert not leftover, leftover[:3]
