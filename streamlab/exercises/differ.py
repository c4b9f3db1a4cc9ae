"""Compare a learner's function with the solution, on inputs made to hit the edges; show the smallest difference.

A hand-picked data set and a catalogue of known mistakes cannot cover what a
class writes. A check built here runs the learner's function and the solution
side by side on the lesson's data, on fresh seeds and on generated inputs
holding each exercise's edges (ties on every boundary and cut, pipes that start
at other times, missing and extreme values, empty and single-event inputs, long
replays, several keys, out-of-order arrival). At the first input where the two
answers differ in meaning, it shrinks that input (dropping items while the
answers still differ, within a step budget) and raises a :class:`Mistake` that
shows the small case::

    With these 2 sales: ... your answer is 0; it should be 1.

A known mistake still gets its own hint, but only when its model gives, on that
very counterexample, the learner's wrong answer: the hint then explains the case
shown. Otherwise the message is the neutral one. Hints never hold the
solution's code or formulas (a test scans them all).

Answers are compared by *meaning*: numpy and Python numbers alike (``np.int64(1)``
is the count 1), floats within rounding, NaN equal to NaN, any sequence as a
tuple, a Series as a mapping, and, where order does not matter, as a bag
(:func:`bag`). Hidden state is caught: at a difference, every case before it
is run again and must give the same answer as the first time; when all agree,
the first :attr:`Exercise.rerun` cases are run again in reverse order; and a
counterexample is shown only after the learner's function gave it twice in a
row (else the hint says it keeps something between calls). A ``stateful_map``
mapper wrapped by :func:`resuming` is also resumed from snapshots of its state,
as bytewax resumes after a crash, which shows state kept outside it even when
every run is right.

**Writing a check with it** (lessons 06-09 do the same): describe the exercise
once, at module level, then call :meth:`Exercise.compare` in the check::

    from streamlab.exercises import Feedback, checker, correct
    from streamlab.exercises.differ import Case, Exercise, Known, events, show_events

    def _cases():
        yield Case((lesson_pile, 3), "the lesson's data")
        rng = random.Random(7)                       # fixed seed: the same cases every run
        for _ in range(40):
            yield Case((events(rng, n=rng.randint(0, 8)), rng.choice([1, 2, 5])), "a generated case")

    BIG = Exercise(
        solution=big_count,                          # the reference, the library's or the solution's
        cases=_cases,                                # the first item of args is shrunk (items=0)
        describe=lambda case: f"with {show_events(case.args[0])} and n={case.args[1]}",
        known=(Known("you counted ...: ...", model=lambda pile, n: ...),),   # a hint, a model of its mistake
    )

    @checker
    def big_count(fn) -> Feedback:
        BIG.compare(fn)
        return correct("...")

``meaning=`` turns an answer into its normal form and raises ``Mistake`` for a
malformed one (a string where a count is asked); ``call=`` runs a function on a
case in another way (a mapper in a bytewax dataflow, through
:func:`streamlab.stream.run`: an error in a step is then an outcome like any
other, shown with its case); ``same=`` compares two normal forms when "equal"
needs a tolerance; ``Known(hint, when=...)`` recognises a mistake by a test of
the learner's answer against the right one on the case (a count that never grows
past 1). ``budget``, ``fewest``, ``evidence`` and ``rerun`` bound the shrinking
and the re-runs. The solution's answers are computed once and kept; the cases
must therefore be deterministic (seeded generators, :func:`events`). The
lessons' own checks (``lesson01`` to ``lesson05``) are worked examples; a
dataflow a learner writes is run with :func:`run_flow` or inside
:func:`learner_dataflow`, which turn its errors into hints.

A new lesson adopts it in three steps: write the cases (the lesson's data, a
fresh seed, and a seeded generator of small inputs holding the exercise's edges);
describe the exercise (solution, how to call, normal form, how to show a case
and an answer, known mistakes); make the check call ``compare``. Its tests then
list right answers in several forms and wrong ones, as ``tests/test_exercises_lesson01.py`` does.

>>> def count_big(values, limit):
...     return sum(1 for v in values if v is not None and v > limit)
>>> ex = Exercise(solution=count_big,
...               cases=lambda: [Case(([31, 30, None, 5, 40], 30), "a case")],
...               describe=lambda case: f"with values {case.args[0]} and limit {case.args[1]}")
>>> try:
...     ex.compare(lambda values, limit: sum(1 for v in values if v is not None and v >= limit))
... except Mistake as mistake:
...     print(mistake.message)
Here is an input where your answer differs: with values [30] and limit 30
your answer is 1; it should be 0.
>>> import numpy as np
>>> [answer for _, answer in ex.compare(lambda values, limit: np.int64(count_big(values, limit)))]  # a count
[2.0]
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import copy
import dataclasses
import datetime as dt
import math
import numbers
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from streamlab.events import COURSE_START, Event
from streamlab.exercises import Mistake

__all__ = [
    "Case",
    "Exercise",
    "Known",
    "Raised",
    "bag",
    "events",
    "fresh",
    "kept_dir",
    "learner_dataflow",
    "meaning",
    "remove_left_behind",
    "resumed_steps",
    "resuming",
    "run_flow",
    "same",
    "show",
    "show_events",
    "show_time",
]

#: The most calls a shrink may make: a check stays well under a second.
SHRINK_BUDGET = 80
#: When every answer is right, how many of the first cases are run again to look for hidden state.
RERUN = 8
#: A known mistake explains a difference when its model gives the learner's answers on the cases up to the
#: first that differs and on this many after it (two mistakes that agree on one case rarely agree on many).
EVIDENCE = 12

STATE_HINT = (
    "called twice with the same input, your function gave two different answers: it keeps something from one call "
    "to the next (a variable outside the function, a list or set filled as it goes). Everything it needs must come "
    "from its arguments"
)


# -- answers by meaning ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Raised:
    """The outcome of a call that raised: compared by the error's type only (messages vary)."""

    error: type
    message: str = field(default="", compare=False)

    def __repr__(self) -> str:
        return f"an error: {self.error.__name__}: {self.message}" if self.message else f"an error: {self.error.__name__}"


@dataclass(frozen=True)
class _Bag:
    """Items whose order does not matter, in a fixed order for comparing and showing."""

    items: tuple

    def __repr__(self) -> str:
        return "{" + ", ".join(map(repr, self.items)) + "}" if self.items else "nothing"


def _sort_key(x: Any) -> tuple:
    # Items of a bag may mix types (None and numbers): sort by type name first, NaN last.
    if isinstance(x, float) and math.isnan(x):
        return ("float", 1, 0.0)
    if isinstance(x, tuple):
        return ("tuple", 0, tuple(_sort_key(i) for i in x))
    try:
        return (type(x).__name__, 0, x if isinstance(x, (int, float, str, pd.Timestamp, pd.Timedelta)) else repr(x))
    except TypeError:
        return (type(x).__name__, 0, repr(x))


def meaning(x: Any) -> Any:
    """The normal form of an answer: what it means, whatever the container or number type.

    >>> meaning(np.int64(3)), meaning([np.float64(1.5), None]), meaning({"a": np.int32(1)})
    (3.0, (1.5, None), {'a': 1.0})
    >>> meaning(pd.Series({"store-0": 2}))
    {'store-0': 2.0}
    >>> meaning(10**400) == 10**400, meaning(b"\\x00\\x14")
    (True, b'\\x00\\x14')
    """
    if x is None or isinstance(x, (str, bytes, Raised, _Bag)):
        return x
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, numbers.Real) or isinstance(x, np.number):
        try:
            return float(x)
        except OverflowError:  # an int too large for a float: itself, equal only to the same int
            return int(x)
    if isinstance(x, (dt.datetime, np.datetime64)):
        return pd.Timestamp(x)
    if isinstance(x, (dt.timedelta, np.timedelta64)):
        return pd.Timedelta(x)
    if isinstance(x, pd.DataFrame):
        return tuple(meaning(row) for row in x.to_dict("records"))
    if isinstance(x, pd.Series):
        return {meaning(k): meaning(v) for k, v in x.items()}
    if isinstance(x, Mapping):
        return {meaning(k): meaning(v) for k, v in x.items()}
    if isinstance(x, (set, frozenset)):
        return bag(x)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return x
    if isinstance(x, (list, tuple, np.ndarray, pd.Index)) or (isinstance(x, Iterable) and hasattr(x, "__len__")):
        return tuple(meaning(i) for i in x)
    return x


def bag(items: Iterable[Any]) -> _Bag:
    """Items where their order does not matter (a set of alerts, rows of a table).

    >>> bag([2, np.int64(1), None]) == bag([None, 1.0, 2])
    True
    """
    return _Bag(tuple(sorted((meaning(i) for i in items), key=_sort_key)))


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def same(a: Any, b: Any) -> bool:
    """Do two answers mean the same? Numbers within rounding (NaN equal to NaN), containers item by item.

    >>> same([1, 2.0000000001], (np.int64(1), 2)), same({"a": 1}, {"a": 2}), same(float("nan"), np.nan)
    (True, False, True)
    """
    a, b = meaning(a), meaning(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, float) and isinstance(b, float):
        return _close(a, b)
    if isinstance(a, _Bag) and isinstance(b, _Bag):
        return same(a.items, b.items)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if type(a) is not type(b):
        return False
    try:
        return bool(a == b)
    except Exception:  # an odd object whose == does not give a truth value
        return False


# -- showing a case ------------------------------------------------------------------------------

def show_time(t: Any, start: dt.datetime = COURSE_START) -> str:
    """A time as the learner reads it: ``HH:MM:SS`` (with fractions when there are some); the date if not the course's.

    >>> from datetime import timedelta
    >>> show_time(COURSE_START + timedelta(seconds=61.5))
    '00:01:01.5'
    """
    if not isinstance(t, dt.datetime):
        return repr(t)
    text = f"{t:%H:%M:%S}"
    if t.microsecond:
        text += f".{t.microsecond:06d}".rstrip("0")
    if t.date() != start.date():
        text = f"{t:%Y-%m-%d} {text}"
    if t.tzinfo is None:
        text += " (naive)"
    return text


def show_events(pile: Sequence[Event], *, noun: str = "sales", unit: str = " €") -> str:
    """A short list of events, one per line: key, value, when it happened, when it arrived.

    >>> from datetime import timedelta
    >>> t = COURSE_START
    >>> print(show_events([Event("store-0", 31.0, t, t + timedelta(seconds=2))]))
    this 1 sale (key, amount, happened, arrived):
      store-0, 31 €, 00:00:00, 00:00:02
    """
    if not pile:
        return f"no {noun} at all"
    one = noun[:-1] if noun.endswith("s") else noun
    head = f"this 1 {one}" if len(pile) == 1 else f"these {len(pile)} {noun}"
    lines = [
        f"  {e.key}, {'missing' if e.value is None else f'{e.value:g}{unit}'}, {show_time(e.event_time)}, "
        f"{show_time(e.arrival_time)}"
        for e in pile
    ]
    return f"{head} (key, amount, happened, arrived):\n" + "\n".join(lines)


def _text(x: Any) -> str:
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.10g}"
    if isinstance(x, pd.Timestamp):
        return show_time(x.to_pydatetime())
    if isinstance(x, tuple):
        inner = ", ".join(map(_text, x))
        return f"({inner},)" if len(x) == 1 else f"({inner})"
    if isinstance(x, dict):
        return "{" + ", ".join(f"{_text(k)}: {_text(v)}" for k, v in x.items()) + "}"
    if isinstance(x, _Bag):
        return "{" + ", ".join(map(_text, x.items)) + "}" if x.items else "nothing"
    return repr(x)



def show(answer: Any, limit: int = 300) -> str:
    """An answer shown short, as its meaning (a count as 1, not 1.0), cut at ``limit`` characters.

    >>> show([np.int64(1), 2.5, None])
    '(1, 2.5, None)'
    """
    text = _text(meaning(answer))
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- generated inputs ------------------------------------------------------------------------------

def events(
    rng: random.Random,
    n: int,
    *,
    keys: int = 3,
    start: dt.datetime = COURSE_START,
    step: float = 1.0,
    values: Sequence[float | None] = (None, float("nan"), 0.0, -5.0, 30.0, 1e9),
    typical: Callable[[random.Random], float] = lambda rng: round(rng.uniform(1.0, 60.0), 2),
    special: float = 0.3,
    disorder: int = 3,
    key_prefix: str = "store-",
) -> list[Event]:
    """``n`` events in arrival order, made to tie: times on a grid of ``step`` seconds, values often special.

    Event times fall on whole multiples of ``step`` from ``start``, so events
    share times and land exactly on boundaries; each arrives 0 to ``disorder``
    steps after it happened (so out of event-time order); with probability
    ``special`` a value is one of ``values`` (missing, zero, negative, a
    boundary, huge), else ``typical(rng)``.

    >>> pile = events(random.Random(1), 6)
    >>> len(pile), all(a.arrival_time <= b.arrival_time for a, b in zip(pile, pile[1:]))
    (6, True)
    """
    out = []
    clock = 0
    for _ in range(n):
        clock += rng.choice((0, 0, 1, 1, 2, 5))
        happened = start + dt.timedelta(seconds=clock * step)
        arrived = happened + dt.timedelta(seconds=rng.randint(0, disorder) * step)
        value = rng.choice(values) if values and rng.random() < special else typical(rng)
        out.append(Event(f"{key_prefix}{rng.randrange(keys)}", value, happened, arrived))
    out.sort(key=lambda e: e.arrival_time)
    return out


# -- running a learner's dataflow ------------------------------------------------------------------

def dataflow_cause(error: BaseException) -> BaseException:
    """The learner's own error inside a stopped dataflow: the root of the chain bytewax and the runner make."""
    while error.__cause__ is not None:
        error = error.__cause__
    return error


@contextlib.contextmanager
def learner_dataflow(explain: Callable[[BaseException], str | None] | None = None, *, what: str = "your dataflow") -> Iterator[None]:
    """Run a learner's dataflow inside: a step that raises becomes a hint, never a bytewax traceback.

    The error is unwrapped to its cause (the learner's own exception).
    ``NotImplementedError`` passes through (the placeholder: "not yet"), a
    :class:`Mistake` raised inside a step passes through, ``explain(cause)`` may
    give the hint for an error it recognises, and any other error says that the
    dataflow stopped, and why.
    """
    from bytewax.errors import BytewaxRuntimeError

    from streamlab.stream import StreamError

    try:
        yield
    except (StreamError, BytewaxRuntimeError) as error:
        cause = dataflow_cause(error)
        if isinstance(cause, (NotImplementedError, Mistake)):
            raise cause.with_traceback(None) from None
        message = explain(cause) if explain is not None else None
        raise Mistake(message or f"{what} stopped: {type(cause).__name__}: {cause}") from None


def run_flow(
    build: Callable[..., Any],
    events: Iterable[Event],
    *,
    explain: Callable[[BaseException], str | None] | None = None,
    what: str = "your dataflow",
    **run: Any,
) -> list[Any]:
    """Run a learner's dataflow body with :func:`streamlab.stream.run`; what it emits, or a hint if it stops."""
    from streamlab import stream

    with learner_dataflow(explain, what=what):
        return stream.run(build, list(events), **run)["out"]


# -- inputs a check builds once and keeps -------------------------------------------------------------

def kept_dir(prefix: str) -> Path:
    """A temporary directory for what checks build once and reuse while this process runs (logs, tables).

    Removed when the process exits. A process killed first (a kernel
    restarted or stopped) cannot remove its own, so, on POSIX, where a process
    can be asked about by its id, making one removes those of processes that no
    longer run. Its name is ``<prefix><pid>-<random>``.

    >>> path = kept_dir("streamlab-doctest-")
    >>> path.is_dir(), path.name.startswith(f"streamlab-doctest-{os.getpid()}-")
    (True, True)
    """
    remove_left_behind(prefix)
    root = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-"))
    atexit.register(shutil.rmtree, root, True)
    return root


def remove_left_behind(prefix: str) -> None:
    """Remove the kept directories (:func:`kept_dir`) of processes that no longer run: killed kernels leave theirs."""
    if os.name != "posix":  # elsewhere, os.kill(pid, 0) is no question about a process
        return
    for left in Path(tempfile.gettempdir()).glob(f"{prefix}*-*"):
        pid = left.name[len(prefix):].split("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            shutil.rmtree(left, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent; only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


# -- state kept outside the state: resuming from a snapshot --------------------------------------------

RESUME_HINT = (
    "resumed from a snapshot of its state, as bytewax resumes a dataflow after a crash, your mapper answered "
    "differently from the first time: it keeps something outside the state it is handed (a variable outside the "
    "function, changed as it goes), which a snapshot does not hold and a fresh process would not have. Everything it "
    "remembers must be in that state"
)


@dataclass
class _Resumable:
    """What bytewax keeps for a key when a mapper runs under :func:`resuming`: the mapper's state and its recent calls."""

    state: Any
    calls: int = 0
    #: The state before the first call since the last replay, as a snapshot holds it (or None: nothing to replay).
    snapshot: tuple[Any] | None = None
    #: The calls since then: their arguments after the state, and the answer each gave.
    past: list[tuple[tuple, Any]] = field(default_factory=list)

    def __deepcopy__(self, memo: dict) -> _Resumable:
        # bytewax snapshots every changed key's state at each epoch: copy the mapper's state, share the record of
        # calls (never changed once written), or the copies cost more than the whole check.
        return _Resumable(copy.deepcopy(self.state, memo), self.calls, self.snapshot, list(self.past))


#: Whether :func:`resuming` replays: off while :meth:`Exercise.compare` compares answers, on in its last stage.
_RESUME: contextvars.ContextVar[bool] = contextvars.ContextVar("resume", default=True)


def _snapshot(state: Any) -> tuple[Any] | None:
    # bytewax snapshots a key's state with copy.deepcopy: the same copy is what a resumed run starts from.
    try:
        return (copy.deepcopy(state),)
    except Exception:  # a state that cannot be copied cannot be resumed either: nothing to compare
        return None


def _read(answer: Any) -> Any:
    # A generator can be read only once: read it here, for the replay and for bytewax alike.
    return list(answer) if isinstance(answer, Iterator) else answer


def resuming(
    mapper: Callable[..., Any],
    *,
    hint: str = RESUME_HINT,
    show_items: Callable[[list[Any]], str] = lambda items: f"these {len(items)} items: {items!r:.200}",
) -> Callable[..., Any]:
    """A ``stateful_map`` mapper that also resumes, now and then, from a snapshot of its state, and must repeat itself.

    After a crash, bytewax gives each key's mapper the state of the last
    snapshot (a deep copy) and replays what came after it, in a fresh process
    or in the same one. A mapper that keeps anything outside its state (a dict
    outside the function, set up when its state is None) then answers
    differently, although every single run, and every run twice, is right.
    Wrapped, at each power of two of a key's calls the mapper is resumed from
    the snapshot taken half as many calls before and given the same items
    again; the first answer that differs raises :class:`Mistake` with ``hint``
    and the items replayed (``show_items`` shows them). It costs about twice
    the calls. The wrapper's state is its own (the mapper's inside it); an
    answer that is not a pair is passed through, for the check's own message.

    Inside :meth:`Exercise.compare` it replays only in the last stage, once
    every answer is right (``Exercise.resume`` cases): a replay changes what a
    mapper keeps outside, so the answers are compared first, unchanged, and a
    mistake that has its own hint gets it.

    >>> outside = {}
    >>> def count(state, sale):                       # the count kept outside the state
    ...     outside["n"] = (outside["n"] if state else 0) + 1
    ...     return True, outside["n"]
    >>> mapper, state = resuming(count, show_items=lambda items: f"{items}"), None
    >>> try:
    ...     for sale in "abc":
    ...         state, answer = mapper(state, sale)
    ... except Mistake as mistake:
    ...     print(mistake.message.split(". Resumed")[1])
     from its state before ['b']
    it answered 3 to the last one, where it had answered 2 the first time.
    """
    def replay(snapshot: Any, past: list[tuple[tuple, Any]]) -> None:
        state = copy.deepcopy(snapshot)
        for n, (args, want) in enumerate(past, 1):
            try:
                state, answer = mapper(state, *args)
                got = meaning(_read(answer))
            except Exception as error:  # it raised where it had answered: a difference like any other
                got = Raised(type(error), str(error)[:200])
            if not same(got, want):
                items = [a[0] for a, _ in past[:n]]
                # Said at once: the replay has changed whatever is kept outside, so later answers mean nothing.
                raise Mistake(f"{hint}. Resumed from its state before {show_items(items)}\n"
                              f"it answered {show(got)} to the last one, where it had answered {show(want)} "
                              "the first time.")

    def resumed(kept: Any, *args: Any) -> Any:
        if not _RESUME.get():  # the same for a whole run: the state is then the mapper's own
            return mapper(kept, *args)
        if not isinstance(kept, _Resumable):
            kept = _Resumable(kept)
        # Only the state a replay starts from is copied (about log2 of the calls): copying every state costs more
        # than the mapper.
        snapshot = _snapshot(kept.state) if not kept.past else kept.snapshot
        out = mapper(kept.state, *args)
        if not (isinstance(out, tuple) and len(out) == 2):
            return out
        state, answer = out[0], _read(out[1])
        kept.state, kept.calls, kept.snapshot = state, kept.calls + 1, snapshot
        if snapshot is not None:
            kept.past.append((args, meaning(answer)))
        if kept.past and kept.calls & (kept.calls - 1) == 0:  # a power of two: replay the calls since the last one
            replay(snapshot[0], kept.past)
            kept.past = []
        return kept, answer

    return resumed


@contextlib.contextmanager
def resumed_steps(**how: Any) -> Iterator[None]:
    """Build a learner's dataflow inside: each of its ``op.stateful_map``/``op.stateful_flat_map`` steps is :func:`resuming`.

    A learner who writes the whole dataflow hands the check no mapper to
    wrap; inside this block, ``bytewax.operators.stateful_flat_map`` (on which
    ``stateful_map`` is built) wraps the mapper it is given before bytewax gets
    it; ``how`` goes to :func:`resuming`. The step's name and what it emits are
    unchanged, and outside the block bytewax is as it was.
    """
    import bytewax.operators as op

    original = op.stateful_flat_map

    def stateful_flat_map(step_id: str, up: Any, mapper: Callable[..., Any]) -> Any:
        return original(step_id, up, resuming(mapper, **how))

    op.stateful_flat_map = stateful_flat_map
    try:
        yield
    finally:
        op.stateful_flat_map = original


# -- the comparison ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One input, given to the learner's function and to the solution alike.

    ``args`` are the arguments; ``label`` says where the input comes from ("the
    lesson's data", "a generated case"); ``items`` is the index of the argument
    that shrinking may cut (a list), or None.
    """

    args: tuple
    label: str = "a generated case"
    items: int | None = 0

    def with_items(self, items: list[Any]) -> Case:
        args = list(self.args)
        args[self.items] = items  # type: ignore[index]
        return dataclasses.replace(self, args=tuple(args))


@dataclass(frozen=True)
class Known:
    """A known mistake and the hint that explains it, recognised on the counterexample itself.

    Either ``model``, a function with the learner's signature that makes the
    mistake (it is recognised when it gives the learner's wrong answer; ``same``
    may loosen that comparison, say to the first two numbers of a tuple), or
    ``when(got, want, case)``, a test of the learner's answer against the right
    one on the case (a count that never grows past 1, items after the cut).
    """

    hint: str
    model: Callable[..., Any] | None = None
    same: Callable[[Any, Any], bool] | None = None
    when: Callable[[Any, Any, Case], bool] | None = None


def _frozen(x: Any) -> bool:
    params = getattr(type(x), "__dataclass_params__", None)
    return isinstance(x, (str, int, float, bool, type(None), dt.datetime, dt.timedelta)) or bool(params and params.frozen)


def fresh(arg: Any) -> Any:
    """A copy of an argument the learner may change freely: frames copied, lists of frozen items copied shallowly."""
    if isinstance(arg, (pd.DataFrame, pd.Series)):
        return arg.copy()
    if isinstance(arg, list) and all(map(_frozen, arg)):
        return list(arg)
    if _frozen(arg):
        return arg
    return copy.deepcopy(arg)


def _default_call(fn: Callable[..., Any], case: Case) -> Any:
    return fn(*map(fresh, case.args))


@dataclass
class Exercise:
    """An exercise's check: the solution, the inputs to try, how to call, compare and show; its known mistakes."""

    solution: Callable[..., Any]
    cases: Callable[[], Iterable[Case]]
    describe: Callable[[Case], str]
    known: Sequence[Known] = ()
    call: Callable[[Callable[..., Any], Case], Any] = _default_call
    meaning: Callable[[Any, Case], Any] = field(default=lambda answer, case: meaning(answer))
    same: Callable[[Any, Any], bool] = same
    show: Callable[[Any], str] = show
    budget: int = SHRINK_BUDGET
    #: The fewest items shrinking leaves (1 where an empty input is outside the exercise).
    fewest: int = 0
    state_hint: str = STATE_HINT
    #: How many cases after the first difference a known mistake's model must also explain (see :data:`EVIDENCE`).
    evidence: int = EVIDENCE
    #: How many of the first cases are run again when every answer is right (see :data:`RERUN`).
    rerun: int = RERUN
    #: How many of the first cases are run once more when every answer is right, for a mapper wrapped by
    #: :func:`resuming` to resume from snapshots of its state (0: the exercise has no such mapper).
    resume: int = 0
    #: The cases and the solution's outcome on each, computed once (the learner gets copies, never these).
    _solved: list[tuple[Case, Any]] | None = field(default=None, init=False, repr=False, compare=False)

    def solved(self) -> list[tuple[Case, Any]]:
        """Every case with the solution's answer on it (in normal form), computed on the first check and kept."""
        if self._solved is None:
            self._solved = [(case, self.outcome(self.solution, case)) for case in self.cases()]
        return self._solved

    def outcome(self, fn: Callable[..., Any], case: Case) -> Any:
        """What ``fn`` gives on ``case``, in its normal form; an error it raises as :class:`Raised`.

        ``NotImplementedError`` and a :class:`Mistake` (a malformed answer) pass through.
        """
        try:
            answer = self.call(fn, case)
        except (NotImplementedError, Mistake):
            raise
        except Exception as error:  # the learner's code failed on this input: an outcome like any other
            cause = dataflow_cause(error)
            if isinstance(cause, (NotImplementedError, Mistake)):
                raise cause.with_traceback(None) from None
            return Raised(type(cause), str(cause)[:200])
        return self.meaning(answer, case)

    def first_difference(self, fn: Callable[..., Any]) -> tuple[list[Case], list[Any], bool]:
        """Every case and ``fn``'s answers up to the first that differs from the solution's (all when none does).

        The flag says whether one differs.

        Hidden state is looked for first: the cases before the difference (or
        the first few, when there is none) are run again, and an answer that
        changed raises the state hint.
        """
        solved = self.solved()
        cases = [case for case, _ in solved]
        answers = []
        for i, (case, want) in enumerate(solved):
            got = self.outcome(fn, case)
            if not self.same(got, want):
                self._same_again(fn, cases[: i + 1], [*answers, got])
                return cases, [*answers, got], True
            answers.append(got)
        # In reverse order: what a call left behind meets the cases it did not come from.
        self._same_again(fn, cases[: self.rerun][::-1], answers[: self.rerun][::-1])
        return cases, answers, False

    def _same_again(self, fn: Callable[..., Any], cases: list[Case], answers: list[Any]) -> None:
        """Run the cases again: an answer that changed means the function keeps something between calls."""
        changed = [c for c, before in zip(cases, answers) if not self.same(self.outcome(fn, c), before)]
        if changed:
            case = min(changed, key=lambda c: len(c.args[c.items]) if c.items is not None else 0)
            raise Mistake(f"{self.state_hint}. Called again {self.describe(case)}\nyour answer changed.")

    def shrink(self, fn: Callable[..., Any], case: Case) -> Case:
        """A smaller case on which ``fn`` and the solution still differ: items dropped, halves first, then one by one."""
        if case.items is None:
            return case
        budget = self.budget

        def differs(candidate: Case) -> bool:
            nonlocal budget
            budget -= 1
            try:
                want = self.outcome(self.solution, candidate)
                # An input the solution refuses is outside the exercise; a malformed answer is another story.
                return not isinstance(want, Raised) and not self.same(self.outcome(fn, candidate), want)
            except Mistake:
                return False

        items = list(case.args[case.items])
        chunk = max(1, len(items) // 2)
        while chunk >= 1 and budget > 0:
            start, shrunk = 0, False
            while start < len(items) and budget > 0:
                candidate = items[:start] + items[start + chunk:]
                if len(candidate) >= self.fewest and differs(case.with_items(candidate)):
                    items, shrunk = candidate, True
                else:
                    start += chunk
            if not shrunk or chunk > 1:
                chunk //= 2
        return case.with_items(items)

    def compare(self, fn: Callable[..., Any]) -> list[tuple[Case, Any]]:
        """Raise :class:`Mistake` showing the smallest input found where ``fn`` and the solution differ.

        When they agree on every case, return each case with ``fn``'s answer on
        it (in normal form), for a check that proves something more with them.

        A known mistake's hint comes with it only when the mistake explains the
        learner's answers: its model gives them on the shrunk case, on every case
        up to the first that differed and on ``evidence`` cases after it (or
        its ``when`` test holds on the shrunk case and on the first that differed).
        """
        token = _RESUME.set(False)  # answers first; a replay would change what a mapper keeps outside its state
        try:
            cases, answers, differs = self.first_difference(fn)
            if differs:
                self._explain(fn, cases, answers)
        finally:
            _RESUME.reset(token)
        for case in cases[: self.resume]:  # every answer right: now resumed from snapshots (see resuming)
            self.outcome(fn, case)
        return list(zip(cases, answers))

    def _explain(self, fn: Callable[..., Any], cases: list[Case], answers: list[Any]) -> None:
        """Raise :class:`Mistake` for the first case that differs: shrunk, shown, with a known hint if one explains it."""
        first = len(answers) - 1
        case = self.shrink(fn, cases[first])
        got, want = self.outcome(fn, case), self.outcome(self.solution, case)
        if not self.same(self.outcome(fn, case), got):
            raise Mistake(f"{self.state_hint}. Called twice {self.describe(case)}\nyour answer changed.")
        example = f"{self.describe(case)}\nyour answer is {self.show(got)}; it should be {self.show(want)}."
        learner: dict[int, Any] = {id(c): a for c, a in zip(cases, answers)}

        def explained(mistake: Known, c: Case) -> bool:
            if id(c) not in learner:
                learner[id(c)] = self.outcome(fn, c)
            return self._explains(mistake, learner[id(c)], c)

        for mistake in self.known:
            evidence = ([case, cases[first]] if mistake.when is not None
                        else [case, cases[first], *cases[: first + 1 + self.evidence]])
            if mistake.model is not None and not self._wrong_there(mistake, case):
                continue  # the mistake's model is right on the case shown: it explains nothing there
            if all(explained(mistake, c) for c in evidence):
                hint = mistake.hint.rstrip()
                raise Mistake(f"{hint}{'' if hint.endswith(('.', '?', '!')) else '.'} For example, {example}")
        raise Mistake(f"Here is an input where your answer differs: {example}")

    def _wrong_there(self, mistake: Known, case: Case) -> bool:
        """Is the mistake's model wrong on this case, as its own comparison sees it?"""
        try:
            modelled = self.outcome(mistake.model, case)  # type: ignore[arg-type]
        except Mistake:
            return False
        return not (mistake.same or self.same)(modelled, self.outcome(self.solution, case))

    def _explains(self, mistake: Known, got: Any, case: Case) -> bool:
        """Does the mistake explain the learner's answer ``got`` on this case?"""
        if mistake.when is not None:
            want = self.outcome(self.solution, case)
            try:
                return bool(mistake.when(got, want, case))
            except Exception:  # a test written for another shape of answer: not this mistake
                return False
        try:
            modelled = self.outcome(mistake.model, case)  # type: ignore[arg-type]
        except Mistake:
            return False
        return (mistake.same or self.same)(got, modelled)
