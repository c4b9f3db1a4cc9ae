"""The conda route (environment.yml), the pip route (pyproject.toml) and the lock agree."""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

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
    assert project["requires-python"] == ">=3.11,<3.13"


def locked():
    """requirements.lock as {name: version}; a package locked twice (per Python) would fail here."""
    versions = {}
    for raw in (ROOT / "requirements.lock").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, version = line.split(";", 1)[0].strip().split("==")
        assert name.lower() not in versions, f"{name} is locked at two versions: 3.11 and 3.12 would differ"
        versions[name.lower()] = version
    return versions


def test_the_lock_satisfies_every_requirement_of_the_project():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = locked()
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    for requirement in map(Requirement, requirements):
        name = requirement.name.lower()
        assert name in lock, f"{name} is required but not locked: run python3 course.py lock"
        assert requirement.specifier.contains(lock[name]), (
            f"{name}=={lock[name]} in requirements.lock does not satisfy {requirement}: run python3 course.py lock")


def test_environment_pins_the_locked_versions():
    conda, pip = environment()
    lock = locked()
    pins = [p for p in conda + pip if "==" in p]
    assert len(pins) == len([p for p in conda + pip if p not in ("pip", "-e .") and not p.startswith("python=")])
    # A pin may name extras (pyiceberg[pyarrow,sql-sqlite]); the lock names the package alone.
    differ = {name: (version, lock.get(name.split("[")[0].lower())) for name, version in (p.split("==") for p in pins)
              if lock.get(name.split("[")[0].lower()) != version}
    assert not differ, f"environment.yml pin -> lock: {differ}"


def test_every_pin_says_why_it_is_there():
    lines = [raw for raw in (ROOT / "environment.yml").read_text().splitlines() if re.match(r"^\s+- \S", raw)]
    unexplained = [raw.strip() for raw in lines if raw.strip() not in ("- pip", "- pip:") and "#" not in raw]
    assert lines and not unexplained
