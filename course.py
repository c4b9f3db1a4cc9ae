"""Set up the course and start it, or test it: one command each, on any machine with Python 3.10-3.12.

    python3 course.py lab    # install everything into .venv and open lesson 01 in JupyterLab
    python3 course.py test   # install everything (with the test tools) into .venv and run every test

Anything after the command goes to JupyterLab or pytest, e.g.
``python3 course.py lab --no-browser --port 8899`` or ``python3 course.py test -k windows``.

The first run creates the virtual environment ``.venv`` beside this file and
installs the course into it; later runs reuse it and start in seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv"
FIRST_LESSON = "notebooks/01_pile_versus_pipe.ipynb"
SUPPORTED = ((3, 10), (3, 12))


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def install(extra: str | None) -> Path:
    """Create .venv if needed and install the course (editable) into it."""
    if not (SUPPORTED[0] <= sys.version_info[:2] <= SUPPORTED[1]):
        sys.exit(
            f"streamlab needs Python 3.10, 3.11 or 3.12 (bytewax has no wheels for others); "
            f"this is {sys.version.split()[0]}. Run this script with, for example, python3.12."
        )
    if not venv_python().exists():
        print(f"Creating the virtual environment {VENV.name}/ ...", flush=True)
        venv.create(VENV, with_pip=True)
    target = f".[{extra}]" if extra else "."
    print(f"Installing the course and its packages ({target}) ...", flush=True)
    subprocess.run(
        [str(venv_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", target],
        cwd=HERE, check=True,
    )
    return venv_python()


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("lab", "test"):
        print(__doc__)
        return 2
    command, extra = argv[0], argv[1:]
    if command == "lab":
        python = install(None)
        # Serve the whole course folder (lessons and library source), opening lesson 01.
        lab = [str(python), "-m", "jupyter", "lab", f"--ServerApp.root_dir={HERE}",
               f"--LabApp.default_url=/lab/tree/{FIRST_LESSON}"]
        return subprocess.call([*lab, *extra], cwd=HERE)
    python = install("test")
    return subprocess.call([str(python), "-m", "pytest", *extra], cwd=HERE)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
