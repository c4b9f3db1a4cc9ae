"""The set-up script: it finds a supported Python, or says how to get one and installs nothing.

The interpreters here are stubs (small shell scripts on a PATH of their own, fake pyenv and uv
folders), so the tests do not depend on which Pythons this machine has.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("course", ROOT / "course.py")
course = importlib.util.module_from_spec(spec)
spec.loader.exec_module(course)

posix_only = pytest.mark.skipif(os.name == "nt", reason="the stub interpreters are shell scripts")


def stub(path: Path, body: str) -> Path:
    """An executable shell script at ``path``: a fake interpreter."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def broken_shim(path: Path) -> Path:
    # What pyenv's shim does for a version that is installed but not selected.
    return stub(path, f'echo "pyenv: {path.name}: command not found" >&2; exit 127')


def pretending(path: Path, version: str) -> Path:
    """A stub that answers the version probe as Python ``version`` would."""
    return stub(path, f'echo "{version.replace(".", " ")}"; echo "{path}"')


def real(path: Path) -> Path:
    """A stub that is this very (supported) Python under another name."""
    return stub(path, f'exec "{sys.executable}" "$@"')


@pytest.fixture
def bare(tmp_path):
    """An environment with nothing on PATH but a stub folder, and empty pyenv and uv homes."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    environ = {"PATH": str(bin_dir), "HOME": str(tmp_path / "home"), "PYENV_ROOT": str(tmp_path / "pyenv")}
    return bin_dir, environ


def test_unknown_command_prints_usage(capsys):
    assert course.main(["serve"]) == 2
    assert "python3 course.py lab" in capsys.readouterr().out


def test_options_of_its_own_are_taken_out_and_the_rest_passed_on():
    assert course.take_options(["-k", "windows", "--python", "3.12", "-x"]) == (["-k", "windows", "-x"], (3, 12), False)
    assert course.take_options(["--python=3.11", "--latest"]) == ([], (3, 11), True)
    with pytest.raises(SystemExit, match="supports Python 3.11 and 3.12 only"):
        course.take_options(["--python", "3.13"])
    with pytest.raises(SystemExit, match="not 'twelve'"):
        course.take_options(["--python", "twelve"])


@posix_only
def test_a_shim_that_fails_is_not_taken_for_a_python(tmp_path):
    assert course.probe([str(broken_shim(tmp_path / "python3.12"))]) is None
    assert course.probe([str(stub(tmp_path / "python3.11", "echo garbage"))]) is None
    version, executable = course.probe([str(real(tmp_path / "python3"))])
    assert version == tuple(sys.version_info[:3]) and Path(executable).exists()


@posix_only
def test_search_skips_broken_and_unsupported_pythons_on_path(bare):
    bin_dir, environ = bare
    broken_shim(bin_dir / "python3.12")
    pretending(bin_dir / "python3", "3.13.0")
    assert course.find_python(environ=environ) is None
    real(bin_dir / "python3.11")
    command, version, _ = course.find_python(environ=environ)
    assert command == [str(bin_dir / "python3.11")] and course.supported(version)


@posix_only
def test_search_looks_in_pyenv_and_uv_folders(bare, tmp_path):
    bin_dir, environ = bare
    ours = f"{sys.version_info[0]}.{sys.version_info[1]}"
    in_pyenv = real(tmp_path / f"pyenv/versions/{ours}.99/bin/python{ours}")
    assert course.find_python(environ=environ)[0] == [str(in_pyenv)]
    shutil.rmtree(tmp_path / "pyenv")
    in_uv = real(tmp_path / f"home/.local/share/uv/python/cpython-{ours}.99-linux-x86_64-gnu/bin/python{ours}")
    assert course.find_python(environ=environ)[0] == [str(in_uv)]


@posix_only
def test_a_version_asked_for_must_be_that_version(bare):
    bin_dir, environ = bare
    pretending(bin_dir / "python3.12", "3.11.9")  # a mislabelled interpreter
    assert course.find_python(want=(3, 12), environ=environ) is None


def run_course(tmp_path, environ, *args, version="3.13.0"):
    """Run a copy of course.py in ``tmp_path`` as if this Python were ``version``."""
    shutil.copy(ROOT / "course.py", tmp_path / "course.py")
    parts = ", ".join(version.split(".")) + ", 'final', 0"
    pretend = (f"import runpy, sys; sys.version_info = ({parts}); sys.version = '{version}'; "
               f"sys.argv = ['course.py', *{list(args)!r}]; runpy.run_path('course.py', run_name='__main__')")
    return subprocess.run([sys.executable, "-c", pretend], cwd=tmp_path, env=environ,
                          capture_output=True, text=True, timeout=120)


@posix_only
def test_with_no_supported_python_it_says_how_to_get_one_and_installs_nothing(bare, tmp_path):
    bin_dir, environ = bare
    broken_shim(bin_dir / "python3.12")
    pretending(bin_dir / "python3.11", "3.10.13")
    out = run_course(tmp_path, environ, "test")
    assert out.returncode != 0
    for how in ("This is Python 3.13.0", "uv python install 3.12", "pyenv install 3.12", "python.org",
                "environment.yml", "Nothing was installed"):
        assert how in out.stderr
    assert not (tmp_path / ".venv").exists()


@posix_only
def test_with_a_supported_python_elsewhere_it_reruns_itself_with_it(bare, tmp_path):
    bin_dir, environ = bare
    broken_shim(bin_dir / "python3.12")
    real(bin_dir / "python3.11")
    out = run_course(tmp_path, environ, "info")
    assert out.returncode == 0, out.stderr
    ours = ".".join(map(str, sys.version_info[:3]))
    assert f"this is Python 3.13.0: re-running with Python {ours}" in out.stdout
    assert f"Python: {ours}" in out.stdout  # the re-run itself answering
    assert not (tmp_path / ".venv").exists()


@posix_only
def test_a_rerun_that_is_still_unsupported_stops_instead_of_looping(bare, tmp_path):
    bin_dir, environ = bare
    real(bin_dir / "python3.11")
    out = run_course(tmp_path, {**environ, course.REEXEC_FLAG: "1"}, "info")
    assert out.returncode != 0 and "will not do either" in out.stderr


@posix_only
def test_an_environment_made_with_a_missing_or_unsupported_python_is_rebuilt(tmp_path):
    venv = tmp_path / ".venv"
    broken_shim(venv / "bin/python")
    assert "does not run" in course.usable_venv(venv, None)
    pretending(venv / "bin/python", "3.10.13")
    assert "Python 3.10.13, which the course does not support" in course.usable_venv(venv, None)
    pretending(venv / "bin/python", "3.11.7")
    assert course.usable_venv(venv, None) is None
    assert "--python 3.12 asks for another" in course.usable_venv(venv, (3, 12))
    assert course.usable_venv(tmp_path / "none", None) is None  # nothing to rebuild: it is created


def test_lab_opens_lesson_01_from_the_course_root(monkeypatch):
    calls = []
    monkeypatch.setattr(course, "install", lambda extras, want, latest: Path("python"))
    monkeypatch.setattr(course.subprocess, "call", lambda cmd, cwd: calls.append(cmd) or 0)
    assert course.main(["lab", "--no-browser"]) == 0
    (cmd,) = calls
    assert f"--ServerApp.root_dir={course.HERE}" in cmd
    assert "--LabApp.default_url=/lab/tree/notebooks/01_pile_versus_pipe.ipynb" in cmd
    assert cmd[-1] == "--no-browser"
    assert (course.HERE / course.FIRST_LESSON).exists()


def test_the_lock_command_is_the_one_the_lock_says_made_it():
    assert "python3 course.py lock" in (ROOT / "requirements.lock").read_text().splitlines()[1]
    assert course.LOCK_COMMAND[course.LOCK_COMMAND.index("-o") + 1] == course.LOCK.name


def test_installing_shows_pips_progress_instead_of_minutes_of_silence(monkeypatch, tmp_path, capsys):
    venv = tmp_path / ".venv"
    python = course.venv_python(venv)
    python.parent.mkdir(parents=True)
    python.write_text("")
    monkeypatch.setattr(course, "VENV", venv)
    monkeypatch.setattr(course, "usable_venv", lambda venv_dir, want: None)
    runs = []
    monkeypatch.setattr(course.subprocess, "run",
                        lambda cmd, **kw: runs.append(cmd) or subprocess.CompletedProcess(cmd, 0))
    assert course.install(["test"]) == python
    (cmd,) = runs
    assert cmd[1:4] == ["-m", "pip", "install"]
    assert not {"-q", "--quiet", "-qq"} & set(cmd)  # pip's own progress: each package as it downloads
    said = capsys.readouterr().out
    assert "takes a minute or two" in said and "pip shows each package as it goes" in said
