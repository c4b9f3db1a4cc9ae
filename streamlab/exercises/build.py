"""Build the student version of every exercise notebook from its one source, the solution notebook.

The solutions live in ``notebooks/solutions/NN_exercises.ipynb``, executed and
committed with their outputs. The student version ``notebooks/NN_exercises.ipynb``
is generated from it with nbgrader's and nbconvert's own preprocessors:

* nbgrader's ``ClearSolutions`` replaces every region between ``### BEGIN
  SOLUTION`` and ``### END SOLUTION`` with ``raise NotImplementedError()``;
* nbconvert's ``TagRemovePreprocessor`` drops cells tagged ``solution-only``
  (notes meant for the instructor);
* nbconvert's ``ClearOutputPreprocessor`` removes outputs and execution counts.

Run ``python -m streamlab.exercises build`` after editing a solution notebook, and
``python -m streamlab.exercises check`` to list student versions that are out of date.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat

__all__ = ["NOTEBOOKS", "SOLUTIONS", "build_all", "out_of_date", "student_version"]

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
SOLUTIONS = NOTEBOOKS / "solutions"


def _preprocessors() -> list:
    try:
        from nbgrader.preprocessors import ClearSolutions
    except ImportError:
        raise SystemExit(
            "building student versions needs nbgrader: pip install -e '.[instructor]'"
        ) from None
    from nbconvert.preprocessors import ClearOutputPreprocessor, TagRemovePreprocessor

    # The student versions are plain notebooks, not nbgrader assignments: no
    # nbgrader cell metadata is required.
    return [
        ClearSolutions(enforce_metadata=False),
        TagRemovePreprocessor(remove_cell_tags={"solution-only"}),
        ClearOutputPreprocessor(),
    ]


def student_version(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return the student version of a solution notebook (the input is left unchanged)."""
    nb = copy.deepcopy(solution)
    resources: dict = {}
    for preprocessor in _preprocessors():
        nb, resources = preprocessor.preprocess(nb, resources)
    nb.metadata.pop("widgets", None)
    return nb


def _pairs() -> list[tuple[Path, Path]]:
    return [(source, NOTEBOOKS / source.name) for source in sorted(SOLUTIONS.glob("*_exercises.ipynb"))]


def _render(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def build_all() -> list[Path]:
    """Write the student version of every solution notebook; return the paths written."""
    written = []
    for source, target in _pairs():
        text = _render(student_version(nbformat.read(source, as_version=4)))
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


def out_of_date() -> list[Path]:
    """The student versions that are missing or differ from what their solution would generate."""
    stale = []
    for source, target in _pairs():
        expected = _render(student_version(nbformat.read(source, as_version=4)))
        if not target.exists() or target.read_text(encoding="utf-8") != expected:
            stale.append(target)
    return stale
