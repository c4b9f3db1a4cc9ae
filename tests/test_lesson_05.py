"""Lesson 05 is clean: no machine paths, the course style first, run in order, nothing exempt from nbval."""

import json
import re
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "05_fraud_detection.ipynb"


def lesson():
    return json.loads(NOTEBOOK.read_text())


def test_no_absolute_machine_paths_in_sources_or_outputs():
    assert not re.search(r"/(tmp|work|home|root|Users)/", json.dumps(lesson()))


def test_first_code_cell_imports_and_sets_the_course_style():
    notebook = lesson()
    first = next(c for c in notebook["cells"] if c["cell_type"] == "code")
    assert "plt.style.use(plots.STYLE)" in "".join(first["source"])
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"


def test_every_code_cell_was_run_in_order_kept_its_outputs_and_is_checked_by_nbval():
    code = [c for c in lesson()["cells"] if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1))
    assert all(c["outputs"] or c is code[0] for c in code)
    assert not any(o.get("output_type") in ("error", "stream") for c in code for o in c["outputs"])
    # Nothing in this lesson depends on timing: every output is compared, strictly.
    assert not any(c.get("metadata", {}).get("tags") for c in code)


def test_the_lesson_asks_before_it_shows_and_ends_with_a_recap():
    text = "".join("".join(c["source"]) for c in lesson()["cells"] if c["cell_type"] == "markdown")
    assert text.count("**Predict before you run.**") >= 4
    assert "## Recap" in text and "By the end of this lesson you will be able to" in text


def test_the_lesson_never_reads_the_ground_truth_into_a_detector():
    sources = ["".join(c["source"]) for c in lesson()["cells"] if c["cell_type"] == "code"]
    for source in sources:
        for call in re.findall(r"detect_fraud\(([^)]*)\)", source):
            assert "truth" not in call
