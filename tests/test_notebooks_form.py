"""Every notebook under notebooks/ is stored in one form: no execution timings, sorted keys, one-space indent."""

import json

import pytest

from streamlab.normalise import NOTEBOOKS, every_notebook, main, normal_form


def test_every_notebook_is_found():
    found = {p.relative_to(NOTEBOOKS).as_posix() for p in every_notebook()}
    assert {"01_pile_versus_pipe.ipynb", "01_exercises.ipynb", "solutions/01_exercises.ipynb"} <= found
    assert len(found) >= 27


@pytest.mark.parametrize("path", every_notebook(), ids=lambda p: p.relative_to(NOTEBOOKS).as_posix())
def test_a_notebook_on_disk_is_in_normal_form(path):
    text = path.read_text(encoding="utf-8")
    assert text == normal_form(text), f"run: python -m streamlab.normalise {path.relative_to(NOTEBOOKS.parent)}"
    assert not any("execution" in c.get("metadata", {}) for c in json.loads(text)["cells"])


def test_timings_and_widget_state_are_removed_and_the_rest_kept(tmp_path):
    notebook = {
        "cells": [{"cell_type": "code", "execution_count": 3, "outputs": [], "source": ["x = 1"],
                   "metadata": {"execution": {"shell.execute_reply": "2026-12-05T10:00:00Z"},
                                "tags": ["nbval-ignore-output"]}}],
        "metadata": {"kernelspec": {"name": "python3"}, "widgets": {"state": {}}},
        "nbformat": 4, "nbformat_minor": 5,
    }
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps(notebook, indent=2))
    assert main(["--check", str(path)]) == 1
    assert main([str(path)]) == 0
    assert main(["--check", str(path)]) == 0
    stored = json.loads(path.read_text())
    assert stored["cells"][0]["metadata"] == {"tags": ["nbval-ignore-output"]}
    assert stored["metadata"] == {"kernelspec": {"name": "python3"}}
    assert stored["cells"][0]["execution_count"] == 3
    assert path.read_text().endswith("}\n") and '\n "cells": [' in path.read_text()
