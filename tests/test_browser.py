"""Every lesson and every solution, opened in JupyterLab in a real browser, runs and shows what it should.

The test starts JupyterLab on a free local port (serving a copy of notebooks/, so nothing committed is
touched), opens each notebook in the system's Chromium driven by Playwright, runs all cells with
JupyterLab's own "Run All" (a few notebooks at once, in parallel pages), and checks what a learner sees:
no error output; no text typeset as math (a pair of ``$`` in prose); the plots drawn; in every solution,
a check answering "✓ Correct" and, for a wrong answer added at the end, a hint rendered as text (no raw
Markdown marks); in a lesson with a live view, the view playing (at least MIN_FRAMES pictures). Screenshots of each notebook go to a temporary folder (its path is printed and kept).

Without Chromium (a student's laptop) or Playwright the test skips, saying which is missing. .ci/run
installs Chromium from the system's packages when CI runs as root on Debian, and there a missing
browser fails the test instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
LESSONS = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb") if not p.name.endswith("_exercises.ipynb"))
SOLUTIONS = sorted(f"solutions/{p.name}" for p in (NOTEBOOKS / "solutions").glob("[0-9][0-9]_exercises.ipynb"))
PAGES_AT_ONCE = 3  # notebooks running side by side: kernels mostly wait on each other's CPU beyond that
NOTEBOOK_TIMEOUT_S = 150
MIN_FRAMES = 10  # a live view plays: the page got at least this many pictures in a row


def chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def missing(reason: str) -> None:
    """Skip on a learner's machine; fail in CI (.ci/run sets STREAMLAB_BROWSER_REQUIRED), where it must run."""
    if os.environ.get("STREAMLAB_BROWSER_REQUIRED"):
        pytest.fail(reason)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except OSError:
        return 0


@pytest.fixture(scope="module")
def lab(tools, tmp_path_factory) -> Iterator[tuple[str, str]]:
    """JupyterLab serving a copy of notebooks/: (base URL, token). Its kernels and itself are stopped after."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(NOTEBOOKS, root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = root / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # Every cell attached to the page (not only those in view), so what the page shows is all there.
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    notices = root / "settings" / "@jupyterlab" / "apputils-extension"
    notices.mkdir(parents=True)
    (notices / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(root / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(root / "workspaces"), "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    port, token = free_port(), "streamlab-browser-test"
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
               f"--ServerApp.token={token}", f"--ServerApp.root_dir={root / 'notebooks'}",
               "--expose-app-in-browser", "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI runs as root
    log = (root / "lab.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while _get(f"{base}/api/status?token={token}") != 200:
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start: {(root / 'lab.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield base, token
    finally:
        try:  # kernels first, so none outlives the server
            with urllib.request.urlopen(f"{base}/api/kernels?token={token}", timeout=5) as response:
                for kernel in json.load(response):
                    request = urllib.request.Request(f"{base}/api/kernels/{kernel['id']}?token={token}",
                                                     method="DELETE")
                    urllib.request.urlopen(request, timeout=10).close()
        except OSError:
            pass
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


# Run in the page. Waits for the notebook's kernel, runs all cells with JupyterLab's command, and for a
# solution adds a cell calling its first check with a wrong answer. The result lands in window.__run.
START = """
async ([wrongAnswer]) => {
  window.__run = 'starting';
  // Frames of a live view: each is a new picture in an ipywidgets Image, i.e. a new src on its <img>.
  window.__frames = 0;
  new MutationObserver(changes => {
    for (const c of changes) if (c.target.tagName === 'IMG' && c.target.closest('.jupyter-widgets')) window.__frames++;
  }).observe(document.body, {subtree: true, attributes: true, attributeFilter: ['src']});
  const app = window.jupyterapp;
  let panel = null;
  for (let i = 0; i < 600 && !panel; i++) {
    const w = app.shell.currentWidget;
    if (w && w.content && w.content.model && w.sessionContext) { panel = w; break; }
    await new Promise(r => setTimeout(r, 100));
  }
  if (!panel) { window.__run = 'error: no notebook opened'; return; }
  (async () => {
    await panel.context.ready;
    await panel.sessionContext.ready;
    const ok = await app.commands.execute('notebook:run-all-cells');
    if (wrongAnswer) {
      const model = panel.content.model;
      model.sharedModel.insertCell(model.cells.length, {cell_type: 'code', source: wrongAnswer});
      panel.content.activeCellIndex = model.cells.length - 1;
      await app.commands.execute('notebook:run-cell');
    }
    window.__run = ok ? 'done' : 'failed';
  })().catch(e => { window.__run = 'error: ' + e; });
}
"""

# What a learner sees, read from the page once a run is done.
INSPECT = """
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const node = panel.content.node;
  const cells = [];
  for (const cell of panel.content.model.cells) {
    if (cell.type !== 'code') continue;
    cells.push({count: cell.executionCount, outputs: cell.outputs.toJSON().map(o => ({
      type: o.output_type, ename: o.ename || '', evalue: o.evalue || '',
      png: !!(o.data && o.data['image/png'])}))});
  }
  const texts = [...node.querySelectorAll('.jp-OutputArea-output')].map(o => o.innerText);
  const images = [...node.querySelectorAll('.jp-OutputArea-output img')];
  return {
    cells,
    kernel: panel.sessionContext.session && panel.sessionContext.session.kernel.status,
    math: node.querySelectorAll('mjx-container, .MathJax').length,
    frames: window.__frames,
    math_where: [...node.querySelectorAll('mjx-container')].slice(0, 3).map(
      m => (m.closest('.jp-OutputArea-output') || m.closest('.jp-Cell') || m).innerText.slice(0, 300)),
    images: images.length,
    images_drawn: images.filter(i => i.complete && i.naturalWidth > 0).length,
    correct: texts.filter(t => t.includes('✓ Correct')).length,
    hints: texts.filter(t => t.includes('✗ Not quite')),
    last: texts.length ? texts[texts.length - 1].trim() : '',
    raw_marks: texts.filter(t => /^(✓ Correct|✗ Not quite|… Not yet)/.test(t.trim()) && t.includes('`')),
  };
}
"""

SHOW_LIVE = """
() => {
  const img = document.querySelector('.jp-OutputArea-output img.jupyter-widgets');
  if (img) img.scrollIntoView({block: 'center'});
}
"""


def wrong_answer(notebook: str) -> str | None:
    """A cell calling the notebook's first check with an answer that is wrong for any exercise."""
    text = (NOTEBOOKS / notebook).read_text()
    found = re.search(r"check\.(\w+)\(\w+\)", text)  # a check given the learner's function
    return f"check.{found.group(1)}(lambda *args, **kwargs: None)" if found else None


@pytest.fixture(scope="module")
def tools():
    """Playwright's entry point and the system's Chromium, or a skip (a fail in CI) naming what is missing."""
    if os.environ.get("STREAMLAB_BROWSER_SKIP"):
        # CI runs the suite once per Python, and what a browser shows does not depend on it: once is enough.
        pytest.skip(os.environ["STREAMLAB_BROWSER_SKIP"])
    if (browser_path := chromium()) is None:
        missing("no Chromium: install the system's chromium package to run the browser test")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("no playwright: it comes with the course's test extra (course.py test)")
    return sync_playwright, browser_path


@pytest.fixture(scope="module")
def seen(tools, lab, request) -> dict[str, dict]:
    """Every lesson and solution asked for (all, unless -k picks some) run in the browser, a few at a time."""
    sync_playwright, browser_path = tools
    base, token = lab
    # Kept after the run for a person to look at; the previous run's are replaced, so that runs do not pile up.
    for previous in Path(tempfile.gettempdir()).glob("streamlab-screenshots-*"):
        shutil.rmtree(previous, ignore_errors=True)
    shots = Path(tempfile.mkdtemp(prefix="streamlab-screenshots-"))
    print(f"\nscreenshots of every notebook in JupyterLab: {shots}")
    todo = [item.callspec.params["name"] for item in request.session.items
            # Doctests and notebooks' cells collected alongside have no module: only this file's tests count.
            if getattr(item, "module", None) is request.module and hasattr(item, "callspec")]
    results: dict[str, dict] = {}
    args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=args)
        try:
            running: dict[str, tuple] = {}
            while todo or running:
                while todo and len(running) < PAGES_AT_ONCE:
                    name = todo.pop(0)
                    page = browser.new_page(viewport={"width": 1280, "height": 1000})
                    workspace = re.sub(r"\W", "-", name)
                    page.goto(f"{base}/lab/workspaces/{workspace}/tree/{name}?reset&token={token}")
                    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=60_000)
                    page.evaluate(START, [wrong_answer(name) if name.startswith("solutions/") else None])
                    running[name] = (page, time.monotonic())
                time.sleep(0.5)
                for name, (page, started) in list(running.items()):
                    state = page.evaluate("() => window.__run")
                    late = time.monotonic() - started > NOTEBOOK_TIMEOUT_S
                    if state in ("starting", None) and not late:
                        continue
                    result = page.evaluate(INSPECT)
                    result.update(state="timeout" if late and state == "starting" else state,
                                  seconds=round(time.monotonic() - started))
                    stem = name.replace("/", "-").removesuffix(".ipynb")
                    page.screenshot(path=shots / f"{stem}-end.png")
                    page.evaluate("() => window.jupyterapp.shell.currentWidget.content.scrollToItem(0)")
                    page.screenshot(path=shots / f"{stem}-top.png")
                    if result["frames"]:  # the live view's last frame, as the learner sees it
                        page.evaluate(SHOW_LIVE)
                        page.wait_for_timeout(500)
                        page.screenshot(path=shots / f"{stem}-live.png")
                    results[name] = result
                    page.close()
                    del running[name]
        finally:
            browser.close()
    return results


@pytest.mark.parametrize("name", [*LESSONS, *SOLUTIONS])
def test_a_notebook_runs_in_jupyterlab_and_shows_what_it_should(seen, name):
    result = seen[name]
    assert result["state"] == "done", f"{name}: Run All ended '{result['state']}' after {result['seconds']} s"
    code = result["cells"][:-1] if name.startswith("solutions/") else result["cells"]
    assert all(c["count"] for c in code), "every code cell ran"
    errors = [f"{o['ename']}: {o['evalue']}" for c in code for o in c["outputs"] if o["type"] == "error"]
    assert not errors
    assert result["math"] == 0, f"text typeset as math (a pair of $ in prose): {result['math_where']}"
    plots = sum(o["png"] for c in code for o in c["outputs"])
    assert result["images"] == result["images_drawn"] == plots, "every plot is drawn on the page"
    if "plots.live." in (NOTEBOOKS / name).read_text():
        assert result["frames"] >= MIN_FRAMES, f"the live view showed {result['frames']} frames"
    if not name.startswith("solutions/"):
        assert plots > 0, "every lesson has a plot"
    else:
        assert result["correct"] >= 1, "a check answers ✓ for the solution"
        assert result["hints"] and result["last"].startswith("✗ Not quite"), "a wrong answer gets a hint"
        assert not result["raw_marks"], f"feedback shows raw Markdown: {result['raw_marks'][0][:200]}"


def test_a_missing_browser_is_a_skip_for_a_learner_and_a_failure_in_ci(monkeypatch):
    monkeypatch.delenv("STREAMLAB_BROWSER_REQUIRED", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Chromium"):
        missing("no Chromium: install the system's chromium package to run the browser test")
    monkeypatch.setenv("STREAMLAB_BROWSER_REQUIRED", "1")
    with pytest.raises(pytest.fail.Exception, match="no Chromium"):
        missing("no Chromium: install the system's chromium package to run the browser test")
