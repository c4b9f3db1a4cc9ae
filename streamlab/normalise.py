"""Notebooks on disk in one form, so that a save or a re-execution changes only what changed.

Run after executing a notebook and before committing it::

    python -m streamlab.normalise                  # every notebook under notebooks/
    python -m streamlab.normalise X.ipynb Y.ipynb  # just these
    python -m streamlab.normalise --check          # list those not in form; exit 1 if any

The form: no per-cell execution timings (nbconvert's and JupyterLab's ``execution`` metadata),
no saved widget state, JSON with one-space indent and sorted keys, UTF-8 as is, a final newline.
tests/test_notebooks_form.py checks every notebook under notebooks/ is in it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

#: Cell metadata that records a run (when it started and ended), not the notebook.
CELL_KEYS = ("execution",)
#: Notebook metadata that records a session: ipywidgets' saved state.
NOTEBOOK_KEYS = ("widgets",)


def normal_form(text: str) -> str:
    """The notebook ``text`` in the course's form.

    >>> cell = {"cell_type": "code", "metadata": {"execution": {"iopub.status.idle": "2026-01-01"}, "tags": []},
    ...         "source": [], "outputs": [], "execution_count": 1}
    >>> print(normal_form(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})))
    {
     "cells": [
      {
       "cell_type": "code",
       "execution_count": 1,
       "metadata": {
        "tags": []
       },
       "outputs": [],
       "source": []
      }
     ],
     "metadata": {},
     "nbformat": 4,
     "nbformat_minor": 5
    }
    <BLANKLINE>
    """
    notebook = json.loads(text)
    for cell in notebook.get("cells", []):
        for key in CELL_KEYS:
            cell.get("metadata", {}).pop(key, None)
    for key in NOTEBOOK_KEYS:
        notebook.get("metadata", {}).pop(key, None)
    return json.dumps(notebook, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def every_notebook() -> list[Path]:
    """Every notebook under notebooks/ (lessons, exercises, solutions), checkpoints left out."""
    return sorted(p for p in NOTEBOOKS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    paths = [Path(a) for a in argv if a != "--check"] or every_notebook()
    differ = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        normal = normal_form(text)
        if normal != text:
            differ.append(path)
            if not check:
                path.write_text(normal, encoding="utf-8")
    verb = "not in form" if check else "normalised"
    for path in differ:
        print(f"{verb}: {path}")
    return 1 if check and differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
