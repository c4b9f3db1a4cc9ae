"""The conda route (environment.yml) and the pip route (pyproject.toml) install the same things."""

import re
from pathlib import Path

import pytest

# tomllib is standard from Python 3.11; on 3.10 these checks are left to CI.
tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[1]


def names(requirements):
    return {re.split(r"[<>=!~\[ ]", r.strip(), maxsplit=1)[0].lower() for r in requirements}


def environment():
    # environment.yml is simple YAML; reading it line by line avoids a YAML dependency for one test.
    conda, pip, section = [], [], None
    for raw in (ROOT / "environment.yml").read_text().splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if re.match(r"^\S", line):
            section = line.split(":")[0]
        elif section == "dependencies" and re.match(r"^  - pip:$", line):
            section = "pip"
        elif section == "dependencies" and line.startswith("  - "):
            conda.append(line[4:].strip())
        elif section == "pip" and line.startswith("      - "):
            pip.append(line[8:].strip())
    return conda, pip


def test_environment_names_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = names(project["dependencies"] + project["optional-dependencies"]["test"])
    conda, pip = environment()
    have = names(conda + [p for p in pip if not p.startswith("-e")]) - {"python", "pip"}
    assert have == wanted
    assert "-e ." in pip, "environment.yml must install the course package itself"


def test_bytewax_is_pinned_the_same_way_in_both():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    conda, pip = environment()
    assert "bytewax==0.21.1" in project["dependencies"]
    assert "bytewax==0.21.1" in pip


def test_environment_python_is_one_bytewax_supports():
    conda, _ = environment()
    (python,) = [c for c in conda if c.startswith("python")]
    assert python == "python=3.12"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.10,<3.13"


def test_every_pin_says_why_it_is_there():
    lines = [raw for raw in (ROOT / "environment.yml").read_text().splitlines() if re.match(r"^\s+- \S", raw)]
    unexplained = [raw.strip() for raw in lines if raw.strip() not in ("- pip", "- pip:") and "#" not in raw]
    assert lines and not unexplained
