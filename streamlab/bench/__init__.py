"""Benchmarks you can trust: every computation timed against a plain Python loop with the same semantics.

Run ``python -m streamlab.bench`` for every timing benchmark, or name some:
``python -m streamlab.bench summary log windows panes fraud`` (``memory``, which
starts fresh processes over 10 M events, runs only when named). ``--quick``
runs them on small inputs, in two rounds: the test suite uses it to check the
answers, never the speed.

**The method**, the same for every benchmark (:func:`measure`):

1. The input is built once, before anything is timed, and every contender
   reads the same one.
2. Every contender runs once and its answer is checked against the plain
   loop's (:class:`AnswerMismatch` stops the benchmark if they differ). That
   run is also the warm-up.
3. Then rounds: A, B, C, A, B, C, ... in one process. Each call is timed in
   CPU time (:func:`time.process_time`: this process only, all its threads,
   so other programs on a shared machine barely count) and in wall time.
4. Each ratio is taken within a round (a contender's time over the plain
   loop's time in the same round), and the report gives the median over the
   rounds with its min-max.

**Garbage collection**, the same for every contender: before the rounds the
input is moved out of the collector's reach (:func:`gc.freeze`), so that no
contender's collections rescan millions of input objects it did not make;
before every timed call :func:`gc.collect` clears what the previous call left,
so that no contender pays for another's garbage; during the call the
collector runs as it normally does.

Each benchmark is a module of this package with a ``benchmark(quick)``
function returning a :class:`Benchmark`; a new lesson adds its own module and
its name to :data:`TIMED`.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

from tqdm import tqdm

__all__ = [
    "SEED",
    "TIMED",
    "AnswerMismatch",
    "Benchmark",
    "Contender",
    "Group",
    "Measured",
    "Timing",
    "check_answers",
    "environment",
    "frame_difference",
    "main",
    "measure",
    "table",
]

#: The seed of every benchmark's input: the same input on every run.
SEED = 2026
#: The timing benchmarks, run by default, in the order of the lessons.
TIMED: tuple[str, ...] = ("summary", "log", "windows", "panes", "fraud", "charging", "schemas", "recovery")
#: Benchmarks run only when named (they take minutes and start processes of their own).
ON_REQUEST: tuple[str, ...] = ("memory", "scale", "lakehouse", "checks")
#: Rounds of a full run, and of a quick one.
ROUNDS, QUICK_ROUNDS = 7, 2


class AnswerMismatch(AssertionError):
    """A contender's answer differs from the plain loop's: timing it would compare different work."""


#: A check: given a contender's result and the plain loop's answer, say how they differ (``None``: they agree).
Check = Callable[[Any, Any], "str | None"]


@dataclass(frozen=True)
class Contender:
    """One way of computing the answer: a label for the table, and the call that is timed.

    ``run`` gets the group's prebuilt input. ``check`` compares its result with
    the plain loop's answer, untimed.
    """

    label: str
    run: Callable[[Any], Any]
    check: Check


@dataclass(frozen=True)
class Group:
    """Contenders over one prebuilt input, each timed against the same plain loop (the reference).

    ``answer`` turns the reference's result into what each contender's check
    compares with (untimed). ``size`` counts the input's items, for the rate.
    ``baseline`` names the reference in the table's header.
    """

    title: str
    input: Any
    size: int
    reference: Contender
    contenders: tuple[Contender, ...]
    answer: Callable[[Any], Any] = lambda result: result
    baseline: str = "the plain loop"


@dataclass
class Benchmark:
    """A computation's contenders, in one or more groups, and what the report says around them."""

    name: str
    title: str
    unit: str
    groups: list[Group]
    notes: list[str] = field(default_factory=list)
    close: Callable[[], None] = lambda: None


@dataclass(frozen=True)
class Timing:
    """One timed call: CPU seconds and wall seconds."""

    cpu: float
    wall: float


@dataclass
class Measured:
    """Every round's timings of one contender, and its ratios to the reference of the same round."""

    group: str
    label: str
    size: int
    timings: list[Timing]
    cpu_ratios: list[float]
    wall_ratios: list[float]
    is_reference: bool = False

    @property
    def cpu_median(self) -> float:
        """The median CPU time of one call, in seconds."""
        return statistics.median(t.cpu for t in self.timings)

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain data (for ``--json``)."""
        return {
            "group": self.group, "label": self.label, "size": self.size, "reference": self.is_reference,
            "cpu_seconds": [t.cpu for t in self.timings], "wall_seconds": [t.wall for t in self.timings],
            "cpu_ratio": _spread(self.cpu_ratios), "wall_ratio": _spread(self.wall_ratios),
        }


def frame_difference(left: Any, right: Any, what: str, **options: Any) -> str | None:
    """Say how two frames differ (``None`` if they do not), with :func:`pandas.testing.assert_frame_equal`'s words.

    ``options`` go to ``assert_frame_equal`` (e.g. ``check_exact=False`` for sums
    that two drivers add up in different orders).
    """
    import pandas.testing

    try:
        pandas.testing.assert_frame_equal(left, right, **options)
    except AssertionError as err:
        return f"{what} differ: {err}"
    return None


def _spread(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _timed(fn: Callable[[Any], Any], data: Any) -> tuple[Timing, Any]:
    gc.collect()  # the previous call's garbage is not this call's cost
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn(data)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Timing(cpu, wall), result


def check_answers(bench: Benchmark) -> None:
    """Run every contender once and compare its answer with the plain loop's; raise :class:`AnswerMismatch` if not."""
    for group in bench.groups:
        expected = group.answer(group.reference.run(group.input))
        for contender in group.contenders:
            difference = contender.check(contender.run(group.input), expected)
            if difference is not None:
                raise AnswerMismatch(
                    f"{bench.name} ({group.title}): {contender.label} and {group.reference.label} "
                    f"give different answers, so timing them would compare different work: {difference}"
                )


def measure(bench: Benchmark, rounds: int = ROUNDS, *, progress: bool = True) -> list[Measured]:
    """Check the answers, then time every contender in ``rounds`` interleaved rounds (see the module docstring)."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    calls = sum(1 + len(g.contenders) for g in bench.groups)
    bar = tqdm(total=calls * (rounds + 1), desc=bench.name, unit="call", file=sys.stderr, disable=not progress,
               leave=False)
    try:
        bar.set_postfix_str("checking the answers agree")
        check_answers(bench)
        bar.update(calls)
        results = {
            (g.title, c.label): Measured(g.title, c.label, g.size, [], [], [], c is g.reference)
            for g in bench.groups for c in (g.reference, *g.contenders)
        }
        gc.collect()
        gc.freeze()  # the input (built before) is out of every collection's way, for every contender alike
        try:
            for _ in range(rounds):
                for group in bench.groups:
                    reference: Timing | None = None
                    for contender in (group.reference, *group.contenders):
                        bar.set_postfix_str(contender.label[:40])
                        timing, result = _timed(contender.run, group.input)
                        del result  # freed before the next call's collection, outside every timing
                        reference = reference or timing
                        m = results[group.title, contender.label]
                        m.timings.append(timing)
                        # A floor of a nanosecond: a tiny quick input must not divide by zero.
                        m.cpu_ratios.append(timing.cpu / max(reference.cpu, 1e-9))
                        m.wall_ratios.append(timing.wall / max(reference.wall, 1e-9))
                        bar.update()
        finally:
            gc.unfreeze()
    finally:
        bar.close()
        bench.close()
    return list(results.values())


def _rate(items_per_second: float) -> str:
    if items_per_second >= 1e6:
        return f"{items_per_second / 1e6:.2f} M/s"
    return f"{items_per_second / 1e3:,.0f} k/s"


def _ratio(values: Sequence[float], bold: bool = False) -> str:
    median = statistics.median(values)
    text = f"{median:.2f}×"
    if bold:
        text = f"**{text}**"
    return f"{text} ({min(values):.2f}–{max(values):.2f})"


def table(bench: Benchmark, measured: list[Measured], rounds: int) -> str:
    """The report of one benchmark as Markdown: one table per group, then its notes."""
    lines = [f"### {bench.title}", ""]
    for group in bench.groups:
        rows = [m for m in measured if m.group == group.title]
        lines += [
            f"{group.title}; median of {rounds} interleaved rounds (min–max):",
            "",
            f"| what | {bench.unit}/s (CPU) | CPU time vs {group.baseline} | wall time vs {group.baseline} |",
            "|---|---|---|---|",
        ]
        for m in rows:
            label = m.label
            if m.is_reference:
                lines.append(f"| {label} | {_rate(m.size / m.cpu_median)} | 1.00× | 1.00× |")
            else:
                bold = label.startswith("**")
                lines.append(
                    f"| {label} | {_rate(m.size / m.cpu_median)} | {_ratio(m.cpu_ratios, bold)} "
                    f"| {_ratio(m.wall_ratios)} |"
                )
        lines.append("")
    lines += [f"{note}" for note in bench.notes]
    return "\n".join(lines).rstrip() + "\n"


def environment() -> str:
    """The machine and the versions the figures were measured with, in one line."""
    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), None)
        cpu = model or cpu
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, bytewax {version('bytewax')}, "
        f"pandas {version('pandas')}, numpy {version('numpy')}"
    )


def main(argv: list[str] | None = None) -> None:
    """The command line: ``python -m streamlab.bench [name ...] [--quick] [--rounds N] [--json FILE]``."""
    parser = argparse.ArgumentParser(prog="python -m streamlab.bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="name",
                        help=f"benchmarks to run: {', '.join(TIMED)} (default: all of those), or {', '.join(ON_REQUEST)}")
    parser.add_argument("--quick", action="store_true",
                        help="small inputs, two rounds: checks the answers (for the tests); the timings mean little")
    parser.add_argument("--rounds", type=int, help=f"interleaved rounds (default {ROUNDS}; {QUICK_ROUNDS} with --quick)")
    parser.add_argument("--json", metavar="FILE", help="also write every timing to FILE, as JSON")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in (*TIMED, *ON_REQUEST)]
    if unknown:
        parser.error(f"no benchmark named {', '.join(unknown)}; choose from {', '.join((*TIMED, *ON_REQUEST))}")
    if args.rounds is not None and args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")
    names = args.names or list(TIMED)
    rounds = args.rounds or (QUICK_ROUNDS if args.quick else ROUNDS)
    print(f"{environment()}\n")
    dump: dict[str, Any] = {"environment": environment(), "rounds": rounds, "quick": args.quick, "benchmarks": {}}
    for name in names:
        module = importlib.import_module(f"streamlab.bench.{name}")
        if name in ON_REQUEST:
            print(module.report(quick=args.quick), flush=True)
            continue
        bench = module.benchmark(quick=args.quick)
        measured = measure(bench, rounds)
        print(table(bench, measured, rounds), flush=True)
        dump["benchmarks"][name] = [m.as_dict() for m in measured]
    if args.json:
        with open(args.json, "w") as out:
            json.dump(dump, out, indent=1)
