"""How long an exercise check takes to answer: every right and wrong answer of the checks' tests, timed in rounds.

``python -m streamlab.bench checks`` (run only when named: it needs the
course's checkout, whose ``tests/`` hold the answers) collects, from
``tests/test_exercises_lessonNN.py``, every test that gives one answer to one
check (the parametrised ``…accepts…``, ``…rejects…`` and ``…refuses…``
tests: right answers written several ways, and wrong ones) and runs them all,
in the same order, in ``rounds`` rounds in one process. A test's time is its
call (the check and the test's few assertions), in wall time: what a learner
waits for after running the cell.

The first round is the one a learner meets first: an exercise's first check
in a fresh kernel also builds the lesson's data and computes the solution's
answers on every case, which later checks reuse. The report gives, per lesson,
the first round's slowest call, then for the later rounds each answer's median
over the rounds, and over the answers their median, 95th percentile and
maximum, and how many answers took a second or more.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

#: Where the checks' tests are: the checkout this package sits in.
TESTS = Path(__file__).resolve().parents[2] / "tests"
#: Words in the name of a test that gives one answer to a check.
ANSWER_TESTS = ("accepts", "rejects", "refuses")
ROUNDS, QUICK_ROUNDS = 4, 2


class _Timer:
    """A pytest plugin that runs the collected tests in rounds and keeps each test's call time."""

    def __init__(self, rounds: int, keyword: str) -> None:
        self.rounds, self.keyword = rounds, keyword
        self.times: dict[str, list[float]] = defaultdict(list)
        self.failed: list[str] = []

    def pytest_collection_modifyitems(self, items: list[Any]) -> None:
        items[:] = [item for item in items if any(word in item.originalname for word in ANSWER_TESTS)
                    and (not self.keyword or self.keyword in item.nodeid)]

    def pytest_runtestloop(self, session: Any) -> bool:
        from _pytest.runner import runtestprotocol

        for round_ in range(self.rounds):
            for item in session.items:
                started = time.perf_counter()
                reports = runtestprotocol(item, nextitem=None, log=False)
                call = next((r for r in reports if r.when == "call"), None)
                # Only the first round must pass: a wrong answer that keeps something between calls is made once,
                # so later rounds give it what earlier ones left (a check still answers it, in its time).
                if call is None or (round_ == 0 and not call.passed):
                    self.failed.append(item.nodeid)
                # The call's own duration: the test's setup (fixtures) is not the check's.
                self.times[item.nodeid].append(call.duration if call is not None else time.perf_counter() - started)
        return True


def measure_checks(rounds: int, *, lessons: tuple[str, ...] = (), keyword: str = "") -> _Timer:
    """Run every answer test of the checks ``rounds`` times; raise if the tests are missing or one fails."""
    import pytest

    if not TESTS.is_dir():
        raise FileNotFoundError(f"the checks' tests are not here ({TESTS}): run this from the course's checkout")
    files = sorted(TESTS.glob("test_exercises_lesson*.py"))
    files = [f for f in files if not lessons or f.stem.removeprefix("test_exercises_") in lessons]
    timer = _Timer(rounds, keyword)
    code = pytest.main(["-p", "no:terminal", "-p", "no:cacheprovider", "-o", "addopts=",
                        "--rootdir", str(TESTS.parent), *map(str, files)], plugins=[timer])
    if timer.failed or code not in (0, pytest.ExitCode.OK):
        raise RuntimeError(f"the checks' tests did not all pass (exit {code}): {timer.failed[:5]}")
    return timer


def _lesson(nodeid: str) -> str:
    return nodeid.split("test_exercises_", 1)[1][:8]


def summarise(times: dict[str, list[float]]) -> list[dict[str, Any]]:
    """Per lesson: answers timed, first-round maximum, and the later rounds' median, 95th percentile and maximum.

    >>> rows = summarise({"tests/test_exercises_lesson01.py::t[a]": [2.0, 0.1, 0.3],
    ...                   "tests/test_exercises_lesson01.py::t[b]": [0.5, 0.2, 0.2]})
    >>> rows[0]["lesson"], rows[0]["answers"], rows[0]["first"], rows[0]["median"], rows[0]["max"], rows[0]["over_1s"]
    ('lesson01', 2, 2.0, 0.2, 0.2, 0)
    """
    by_lesson: dict[str, list[list[float]]] = defaultdict(list)
    for nodeid, runs in times.items():
        by_lesson[_lesson(nodeid)].append(runs)
    rows = []
    for lesson, answers in sorted(by_lesson.items()):
        later = sorted(statistics.median(runs[1:] or runs) for runs in answers)
        slow = sorted((statistics.median(runs[1:] or runs), nodeid.split("::", 1)[1])
                      for nodeid, runs in times.items() if _lesson(nodeid) == lesson
                      and statistics.median(runs[1:] or runs) >= 1.0)
        rows.append({
            "lesson": lesson,
            "answers": len(answers),
            "first": max(runs[0] for runs in answers),
            "median": statistics.median(later),
            "p95": later[min(len(later) - 1, round(0.95 * (len(later) - 1)))],
            "max": later[-1],
            "over_1s": sum(t >= 1.0 for t in later),
            "slow": slow,
        })
    return rows


def report(quick: bool = False, *, lessons: tuple[str, ...] = (), keyword: str = "") -> str:
    """The benchmark's report as Markdown (``quick``: two rounds, lesson 01's first exercise only)."""
    if quick:
        lessons, keyword = lessons or ("lesson01",), keyword or "cut_the_pile"
    rounds = QUICK_ROUNDS if quick else ROUNDS
    return render(summarise(measure_checks(rounds, lessons=lessons, keyword=keyword).times), rounds)


def render(rows: list[dict[str, Any]], rounds: int) -> str:
    """The table of :func:`summarise`'s rows, as Markdown."""
    lines = [
        "### How long a check takes to answer",
        "",
        f"Every right and wrong answer of the checks' tests, {rounds} rounds in one process; wall seconds of one "
        "check. The first round includes each exercise's first check in a fresh kernel (the lesson's data built, "
        "the solution's answers computed); the other columns are each answer's median over the later rounds.",
        "",
        "| lesson | answers | first round, slowest | median | 95th percentile | slowest | answers ≥ 1 s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['lesson'][-2:]} | {r['answers']} | {r['first']:.2f} s | {r['median']:.3f} s "
                     f"| {r['p95']:.2f} s | {r['max']:.2f} s | {r['over_1s']} |")
    total = sum(r["answers"] for r in rows)
    slow = sum(r["over_1s"] for r in rows)
    lines += ["", f"{total} answers; {slow} took a second or more once the lesson's data was built"
              + (":" if slow else ".")]
    lines += [f"- {seconds:.2f} s: {name}" for r in rows for seconds, name in r["slow"]]
    return "\n".join(lines) + "\n"
