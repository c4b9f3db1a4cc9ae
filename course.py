"""Set up the course and start it, or test it: one command each, on Python 3.11 or 3.12.

    python3 course.py lab    # install everything into .venv and open lesson 01 in JupyterLab
    python3 course.py test   # install everything (with the test tools) into .venv and run every test

Anything after the command goes to JupyterLab or pytest, e.g.
``python3 course.py lab --no-browser --port 8899`` or ``python3 course.py test -k windows``.

The first run creates the virtual environment ``.venv`` beside this file and installs the
course into it, at the versions locked in ``requirements.lock``; later runs reuse it and start
in seconds. If the Python running this script is not 3.11 or 3.12, the script looks for one
(``python3.12``/``python3.11`` on PATH, ``py -3.12`` on Windows, pyenv's and uv's Pythons) and
re-runs itself with it.

For maintainers:

    python3 course.py info             # which Python and environment the course would use; installs nothing
    python3 course.py test --python 3.11   # use (and if need be rebuild .venv with) exactly Python 3.11
    python3 course.py test --latest    # the newest releases, unlocked, in .venv-latest (an upgrade check)
    python3 course.py lock             # re-resolve requirements.lock from pyproject.toml (needs uv, fetched for you)

This script uses the standard library only and runs on any Python from 3.8 on, so that it can
find a supported Python even when started with an old or a too-new one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv"
LATEST_VENV = HERE / ".venv-latest"
LOCK = HERE / "requirements.lock"
STAMP = "streamlab-installed.json"
FIRST_LESSON = "notebooks/01_pile_versus_pipe.ipynb"
# bytewax 0.21.1 has wheels for CPython up to 3.12; 3.10 is past its end of life (no pandas 3).
SUPPORTED = ((3, 11), (3, 12))
# Set on the re-run, so that a candidate that lied about its version cannot make a loop.
REEXEC_FLAG = "STREAMLAB_COURSE_REEXEC"
# The command that re-resolves the lock; written into the lock's header by `course.py lock`.
LOCK_COMMAND = [
    "pip", "compile", "pyproject.toml", "--extra", "test", "--extra", "instructor",
    # One resolution for every OS and both supported Pythons, and the fewest versions of each
    # package across them, so 3.11 and 3.12 install the very same releases.
    "--universal", "--fork-strategy", "fewest", "--python-version", "3.11",
    "--custom-compile-command", "python3 course.py lock", "-o", "requirements.lock",
]

HOW_TO_GET_PYTHON = """\
streamlab needs Python 3.11 or 3.12 (its stream engine, bytewax, has no build for other
versions), and none was found on this machine. Install one, then run the same command again:

  any system, with uv:     uv python install 3.12
  macOS or Linux, pyenv:   pyenv install 3.12
  Windows or macOS:        the 3.12 installer from python.org (Downloads, "Python 3.12.x")
  Debian or Ubuntu:        sudo apt install python3.12 python3.12-venv
  conda or mamba:          conda env create -f environment.yml   (then see README.md)

Nothing was installed."""


def version_text(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


def supported(version: tuple[int, ...]) -> bool:
    return SUPPORTED[0] <= tuple(version[:2]) <= SUPPORTED[1]


def probe(command: list[str]) -> tuple[tuple[int, int, int], str] | None:
    """Run a candidate interpreter once: its version and real executable, or None if it fails.

    Launchers such as pyenv's shims exist on PATH and still fail to run, so a name on PATH
    proves nothing until it has answered.
    """
    ask = "import sys; print(*sys.version_info[:3]); print(sys.executable)"
    try:
        out = subprocess.run(command + ["-c", ask], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.split("\n")
    if out.returncode != 0 or len(lines) < 2:
        return None
    try:
        version = tuple(int(part) for part in lines[0].split())
    except ValueError:
        return None
    if len(version) != 3 or not lines[1].strip():
        return None
    return (version[0], version[1], version[2]), lines[1].strip()


def candidates(versions: list[tuple[int, int]], environ: dict[str, str] | None = None) -> list[list[str]]:
    """Commands that may start one of ``versions``, best first: PATH, the py launcher, pyenv, uv."""
    environ = dict(os.environ) if environ is None else environ
    path = environ.get("PATH", "")
    home = Path(environ.get("HOME") or environ.get("USERPROFILE") or Path.home())
    windows = os.name == "nt"
    found: list[list[str]] = []
    for major, minor in versions:
        name = f"python{major}.{minor}"
        on_path = shutil.which(name, path=path)
        if on_path:
            found.append([on_path])
        launcher = shutil.which("py", path=path) if windows else None
        if launcher:
            found.append([launcher, f"-{major}.{minor}"])
        # pyenv (and pyenv-win) keep each installed version in its own folder.
        pyenv_root = Path(environ.get("PYENV_ROOT") or home / ".pyenv")
        for folder in (pyenv_root / "versions", pyenv_root / "pyenv-win" / "versions"):
            for prefix in sorted(folder.glob(f"{major}.{minor}.*"), reverse=True):
                exe = prefix / ("python.exe" if windows else f"bin/{name}")
                if exe.exists():
                    found.append([str(exe)])
        # uv's managed Pythons (`uv python install 3.12`), and whatever `uv python find` knows.
        uv_dirs = [Path(environ["UV_PYTHON_INSTALL_DIR"])] if environ.get("UV_PYTHON_INSTALL_DIR") else []
        uv_dirs += [home / ".local/share/uv/python", Path(environ.get("APPDATA", home)) / "uv/python"]
        for folder in uv_dirs:
            for prefix in sorted(folder.glob(f"cpython-{major}.{minor}.*"), reverse=True):
                exe = prefix / ("python.exe" if windows else f"bin/{name}")
                if exe.exists():
                    found.append([str(exe)])
        uv = shutil.which("uv", path=path)
        if uv:
            try:
                out = subprocess.run([uv, "python", "find", f"{major}.{minor}"], capture_output=True,
                                     text=True, timeout=30)
                if out.returncode == 0 and out.stdout.strip():
                    found.append([out.stdout.strip()])
            except (OSError, subprocess.SubprocessError):
                pass
    # A supported Python may also hide behind a plain name.
    for name in ("python3", "python"):
        on_path = shutil.which(name, path=path)
        if on_path:
            found.append([on_path])
    return found


def find_python(want: tuple[int, int] | None = None,
                environ: dict[str, str] | None = None) -> tuple[list[str], tuple[int, int, int], str] | None:
    """The first candidate that runs and is supported (and is ``want``, if given): command, version, executable."""
    versions = [want] if want else sorted(SUPPORTED, reverse=True)
    seen = set()
    for command in candidates(versions, environ):
        answer = probe(command)
        if answer is None:
            continue
        version, executable = answer
        if executable in seen:
            continue
        seen.add(executable)
        if supported(version) and (want is None or version[:2] == want):
            return command, version, executable
    return None


def ensure_supported_python(argv: list[str], want: tuple[int, int] | None) -> None:
    """Return if this Python will do; otherwise re-run this script with one that does, or stop."""
    running = tuple(sys.version_info[:3])
    if supported(running) and (want is None or running[:2] == want):
        return
    this = f"Python {version_text(running)}"
    if os.environ.get(REEXEC_FLAG):
        sys.exit(f"course.py was re-run with {this}, which will not do either; please report this.")
    found = find_python(want)
    if found is None:
        if want:
            sys.exit(f"Python {version_text(want)} was asked for (--python) but is not on this machine; "
                     f"this is {this}.\n\n{HOW_TO_GET_PYTHON}")
        sys.exit(f"This is {this}.\n{HOW_TO_GET_PYTHON}")
    command, version, executable = found
    needs = f"--python {version_text(want)} was asked for" if want else "streamlab needs Python 3.11 or 3.12"
    print(f"{needs} and this is {this}: re-running with Python {version_text(version)} ({executable}).",
          flush=True)
    env = dict(os.environ, **{REEXEC_FLAG: "1"})
    call = [executable, str(Path(__file__).resolve()), *argv]
    if os.name == "nt":  # exec on Windows does not hand the console over cleanly
        sys.exit(subprocess.call(call, env=env))
    os.execve(executable, call, env)


def venv_python(venv_dir: Path = VENV) -> Path:
    return venv_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def fingerprint(extras: list[str], locked: bool) -> dict[str, object]:
    """What an installed environment must match to be reused as it is."""
    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return {
        "extras": sorted(extras),
        "pyproject": digest(HERE / "pyproject.toml"),
        "lock": digest(LOCK) if locked else "latest",
    }


def usable_venv(venv_dir: Path, want: tuple[int, int] | None) -> str | None:
    """Why the environment in ``venv_dir`` must be rebuilt, or None if it can be used."""
    if not venv_dir.exists():
        return None
    answer = probe([str(venv_python(venv_dir))])
    if answer is None:
        return f"{venv_dir.name}/ does not run (its Python was moved or removed)"
    version = answer[0]
    if not supported(version):
        return f"{venv_dir.name}/ was made with Python {version_text(version)}, which the course does not support"
    if want and version[:2] != want:
        return f"{venv_dir.name}/ was made with Python {version_text(version)} and --python {version_text(want)} asks for another"
    return None


def install(extras: list[str], want: tuple[int, int] | None = None, latest: bool = False) -> Path:
    """Create the course's virtual environment if needed and install the course into it.

    Runs on a supported Python only (``ensure_supported_python`` first). A second run with
    nothing changed installs nothing; a failed install says what failed and how to retry.
    """
    venv_dir = LATEST_VENV if latest else VENV
    python = venv_python(venv_dir)
    why = usable_venv(venv_dir, want)
    if why:
        print(f"{why}: rebuilding it.", flush=True)
        shutil.rmtree(venv_dir)
    stamp = venv_dir / STAMP
    wanted = fingerprint(extras, locked=not latest)
    if not latest and stamp.exists():
        try:
            have = json.loads(stamp.read_text())
        except ValueError:
            have = {}
        same = all(have.get(key) == wanted[key] for key in ("pyproject", "lock"))
        if same and set(extras) <= set(have.get("extras", [])):
            return python
    if not python.exists():
        print(f"[1/2] Creating the virtual environment {venv_dir.name}/ with Python "
              f"{version_text(sys.version_info[:3])} ...", flush=True)
        try:
            venv.create(venv_dir, with_pip=True)
        except (OSError, subprocess.CalledProcessError) as error:
            shutil.rmtree(venv_dir, ignore_errors=True)  # never leave half an environment behind
            sys.exit(f"Could not create {venv_dir.name}/ ({error}).\nOn Debian or Ubuntu this needs the "
                     f"venv module: sudo apt install python{sys.version_info[0]}.{sys.version_info[1]}-venv")
    target = f".[{','.join(extras)}]" if extras else "."
    pin = ["--upgrade", "--upgrade-strategy", "eager"] if latest else ["--constraint", str(LOCK)]
    what = "the newest releases (unlocked)" if latest else f"the versions locked in {LOCK.name}"
    print(f"[2/2] Installing the course and its packages, {what}, into {venv_dir.name}/.\n"
          "      The first time this downloads about 135 MB and takes a minute or two; "
          "pip shows each package as it goes.", flush=True)
    command = [str(python), "-m", "pip", "install", "--disable-pip-version-check", *pin, "-e", target]
    if stamp.exists():  # an install that stops half-way must not look finished
        stamp.unlink()
    result = subprocess.run(command, cwd=HERE)
    if result.returncode != 0:
        sys.exit(f"\nInstalling the course's packages failed (pip exited with {result.returncode}; "
                 "its message is above).\nCheck the internet connection and run the same command again: "
                 f"it picks up where it stopped. To start clean, delete the folder {venv_dir.name}/ first.")
    stamp.write_text(json.dumps(wanted, indent=1) + "\n")
    print("Installed.", flush=True)
    return python


def info(want: tuple[int, int] | None) -> int:
    """Say which Python and environment the course uses, and whether it is up to date; install nothing."""
    print(f"Python: {version_text(sys.version_info[:3])} ({sys.executable})")
    why = usable_venv(VENV, want)
    if not VENV.exists():
        print(f"Environment: {VENV.name}/ does not exist yet; `python3 course.py lab` creates it.")
    elif why:
        print(f"Environment: {why}; the next `course.py lab` or `test` rebuilds it.")
    else:
        try:
            have = json.loads((VENV / STAMP).read_text())
        except (OSError, ValueError):
            have = {}
        wanted = fingerprint([], locked=True)
        if all(have.get(key) == wanted[key] for key in ("pyproject", "lock")):
            extras = ", ".join(have["extras"]) or "none"
            print(f"Environment: {VENV.name}/ matches {LOCK.name} (extras: {extras}).")
        else:
            print(f"Environment: {VENV.name}/ is not (or not yet) at the versions of {LOCK.name}; "
                  "the next `course.py lab` or `test` brings it up to date.")
    return 0


def lock() -> int:
    """Re-resolve requirements.lock with uv, installed for the occasion in a temporary environment."""
    with tempfile.TemporaryDirectory() as tmp:
        tools = Path(tmp) / "tools"
        print("Fetching uv into a temporary environment ...", flush=True)
        venv.create(tools, with_pip=True)
        subprocess.run([str(venv_python(tools)), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", "uv"], check=True)
        uv = tools / ("Scripts/uv.exe" if os.name == "nt" else "bin/uv")
        code = subprocess.call([str(uv), *LOCK_COMMAND], cwd=HERE)
    if code == 0:
        print(f"{LOCK.name} written. Now: update the pins in environment.yml to match "
              "(tests/test_packaging.py says which differ), run `python3 course.py test` on 3.11 and 3.12, commit.")
    return code


def take_options(argv: list[str]) -> tuple[list[str], tuple[int, int] | None, bool]:
    """Split course.py's own options (--python X.Y, --latest) from what goes to JupyterLab or pytest."""
    rest, want, latest = [], None, False
    items = iter(argv)
    for item in items:
        if item == "--latest":
            latest = True
        elif item == "--python" or item.startswith("--python="):
            value = item.split("=", 1)[1] if "=" in item else next(items, "")
            try:
                major, minor = (int(part) for part in value.split("."))
            except ValueError:
                sys.exit(f"--python takes a version such as 3.12, not {value!r}")
            if not supported((major, minor)):
                sys.exit(f"--python {value}: the course supports Python 3.11 and 3.12 only")
            want = (major, minor)
        else:
            rest.append(item)
    return rest, want, latest


def main(argv: list[str]) -> int:
    commands = ("lab", "test", "info", "lock")
    if not argv or argv[0] not in commands:
        print(__doc__)
        return 2
    command = argv[0]
    extra, want, latest = take_options(argv[1:])
    ensure_supported_python(argv, want)
    if command == "info":
        return info(want)
    if command == "lock":
        return lock()
    if command == "lab":
        python = install([], want, latest)
        # Serve the whole course folder (lessons and library source), opening lesson 01.
        lab = [str(python), "-m", "jupyter", "lab", f"--ServerApp.root_dir={HERE}",
               f"--LabApp.default_url=/lab/tree/{FIRST_LESSON}"]
        return subprocess.call([*lab, *extra], cwd=HERE)
    python = install(["test"], want, latest)
    return subprocess.call([str(python), "-m", "pytest", *extra], cwd=HERE)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
