"""Classroom exercises: checks that answer ✓ or give a specific hint, never the answer.

Every exercise asks for a function. Its check calls the function, on the
lesson's data and on fresh data, and returns :class:`Feedback`:

* ``✓`` when the answer is right (in any reasonable form: another row order,
  other dtypes, float noise, a list or a DataFrame);
* ``… not yet`` while the function still raises ``NotImplementedError`` (the
  placeholder of the student version);
* ``✗`` with a hint aimed at the mistake (wrong keys, off by one, late events
  not handled, ...), never with the expected answer.

A check never raises: an error in the learner's code becomes a hint too.

Checks are written with :mod:`streamlab.exercises.differ`: an exercise is
described once (the solution, the inputs to try: the lesson's data, fresh seeds
and generated edge cases, the known mistakes with their hints) and its check
compares the learner's function with the solution on all of them, showing the
smallest input found where they differ. Its docstring says how to write a check
for a new lesson's exercise in a dozen lines.

>>> @checker
... def check_double(fn):
...     return correct("doubles") if fn(2) == 4 else hint("double the input")
>>> def double(x):
...     raise NotImplementedError()
>>> check_double(double).status
'not yet'
>>> check_double(lambda x: x * 2)
✓ Correct: doubles
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Feedback", "Mistake", "checker", "correct", "hint", "not_yet"]

Status = Literal["correct", "not yet", "wrong"]

_MARK = {"correct": "✓ Correct", "not yet": "… Not yet", "wrong": "✗ Not quite"}
_COLOUR = {"correct": "#1a7f37", "not yet": "#6e7781", "wrong": "#cf222e"}


@dataclass(frozen=True)
class Feedback:
    """The outcome of a check: its status and a message for the learner."""

    status: Status
    message: str

    @property
    def ok(self) -> bool:
        return self.status == "correct"

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return f"{_MARK[self.status]}: {self.message}"

    def _repr_html_(self) -> str:
        # Messages are written in Markdown (`code`, *emphasis*, **strong**): shown as such, not as raw
        # marks. mathjax_ignore: a "$" in a message is text, never the start of math in JupyterLab.
        ignore = ' class="mathjax_ignore"' if "$" in self.message else ""
        return (
            f'<p{ignore} style="color:{_COLOUR[self.status]}">'
            f"<b>{html.escape(_MARK[self.status])}:</b> {inline_markdown(self.message)}</p>"
        )


_CODE = re.compile(r"`([^`\n]+)`")
_STRONG = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_EMPHASIS = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]+?)(?<=\S)\*(?![\w*])")


def inline_markdown(text: str) -> str:
    r"""Render the inline Markdown of a feedback message as HTML: `code`, **strong**, *emphasis*, line breaks.

    Everything else is escaped; code is kept verbatim (a ``*`` in code is not emphasis).

    >>> inline_markdown("it *happened*: use `a * b` and **not** <b>")
    'it <em>happened</em>: use <code>a * b</code> and <strong>not</strong> &lt;b&gt;'
    >>> inline_markdown("2 * 3 = 6\nnext line")
    '2 * 3 = 6<br>next line'
    """
    pieces = _CODE.split(text)  # odd indices are code spans
    out = []
    for i, piece in enumerate(pieces):
        if i % 2:
            out.append(f"<code>{html.escape(piece)}</code>")
        else:
            piece = html.escape(piece)
            piece = _STRONG.sub(r"<strong>\1</strong>", piece)
            piece = _EMPHASIS.sub(r"<em>\1</em>", piece)
            out.append(piece.replace("\n", "<br>"))  # a counterexample's lines stay lines
    return "".join(out)


def correct(message: str = "well done.") -> Feedback:
    return Feedback("correct", message)


def hint(message: str) -> Feedback:
    return Feedback("wrong", message)


def not_yet(message: str = "replace `raise NotImplementedError()` with your code, then run this check again.") -> Feedback:
    return Feedback("not yet", message)


class Mistake(Exception):
    """Raised inside a check to stop at the first mistake found, with its hint."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def checker(check: Callable[..., Feedback]) -> Callable[..., Feedback]:
    """Make a check safe to call on anything a learner writes.

    The wrapped check may raise :class:`Mistake` to give a hint. A
    ``NotImplementedError`` from the learner's code means "not yet"; any other
    error from it becomes a hint naming the error.
    """

    @functools.wraps(check)
    def safe(*args: Any, **kwargs: Any) -> Feedback:
        try:
            return check(*args, **kwargs)
        except Mistake as mistake:
            return hint(mistake.message)
        except NotImplementedError:
            return not_yet()
        except Exception as error:  # the learner's code failed: say how, not where we are
            cause = error.__cause__ or error
            if isinstance(cause, NotImplementedError):
                return not_yet()
            return hint(f"your code raised {type(cause).__name__}: {cause}")

    return safe
