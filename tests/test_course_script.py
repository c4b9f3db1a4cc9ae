"""The set-up script: clear usage, and a clear refusal on a Python bytewax does not support."""

import importlib.util
import sys
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("course", Path(__file__).resolve().parents[1] / "course.py")
course = importlib.util.module_from_spec(spec)
spec.loader.exec_module(course)


def test_unknown_command_prints_usage(capsys):
    assert course.main(["serve"]) == 2
    assert "python3 course.py lab" in capsys.readouterr().out


def test_python_313_is_refused_with_a_clear_message(monkeypatch):
    monkeypatch.setattr(sys, "version_info", (3, 13, 0, "final", 0))
    monkeypatch.setattr(sys, "version", "3.13.0 (main)")
    with pytest.raises(SystemExit, match="needs Python 3.10, 3.11 or 3.12.*this is 3.13.0"):
        course.install(None)


def test_lab_opens_lesson_01_from_the_course_root(monkeypatch):
    calls = []
    monkeypatch.setattr(course, "install", lambda extra: Path("python"))
    monkeypatch.setattr(course.subprocess, "call", lambda cmd, cwd: calls.append(cmd) or 0)
    assert course.main(["lab", "--no-browser"]) == 0
    (cmd,) = calls
    assert f"--ServerApp.root_dir={course.HERE}" in cmd
    assert "--LabApp.default_url=/lab/tree/notebooks/01_pile_versus_pipe.ipynb" in cmd
    assert cmd[-1] == "--no-browser"
    assert (course.HERE / course.FIRST_LESSON).exists()
