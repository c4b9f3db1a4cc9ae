"""Checks for the exercises of lesson 06, EV charging at scale.

1. ``pile_gb``: a function ``pile_gb(rate, bytes_per_message, hours)`` giving
   the size of the pile, in gigabytes (10⁹ bytes), of a pipe of ``rate``
   messages a second after ``hours`` hours.
2. ``charger_key``: a function ``charger_key(message)``, the key of the
   lesson's dataflow, chosen so that the answer does not change; the check
   names a key that raises, is no string, splits a charger or is a single key,
   then runs the lesson's dataflow with it on one worker and on two, on the
   lesson's fleet and on small generated ones, and compares with the same
   dataflow keyed by charger (the batch job's answer, tested).
3. ``site_clock``: a function ``site_clock(watermarks, partitions)`` giving a
   site's clock from the watermarks of the partitions heard from so far (a dict
   partition → datetime): the slowest, once every partition has been heard
   from, else ``None``.

Each check compares with the solution on generated cases, the edges included,
and shows the smallest input where an answer differs (:mod:`streamlab.exercises.differ`).
"""

from __future__ import annotations

import builtins
import collections
import contextlib
import functools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.testing import TestingSink, cluster_main

from streamlab.ev import Chargers, Message, fleet, partition_for
from streamlab.events import COURSE_START
from streamlab.exercises import Feedback, Mistake, checker, correct
from streamlab.exercises.differ import Case, Exercise, Known, Raised, show, show_time

__all__ = ["charger_key", "pile_gb", "site_clock"]


# --------------------------------------------------------------------------- exercise 1


def _pile_gb(rate: float, bytes_per_message: float, hours: float) -> float:
    return rate * 3600 * hours * bytes_per_message / 1e9


def _sizes() -> list[Case]:
    cases = [Case((12_500, 185, 24), "the lesson's numbers", items=None),
             Case((12_500, 100, 24), "the lesson's numbers, in pandas", items=None)]
    rng = random.Random(6)
    for _ in range(30):
        cases.append(Case((rng.choice([1, 10, 350, 12_500, 1e6]), rng.choice([0, 1, 80, 185, 1024]),
                           rng.choice([0, 0.5, 1, 3, 24, 24 * 7])), items=None))
    return cases


PILE = Exercise(
    solution=_pile_gb,
    cases=_sizes,
    describe=lambda case: "with rate={}, bytes_per_message={}, hours={}".format(*case.args),
    known=(
        Known("a rate counts messages per second, and an hour has 3,600 seconds",
              model=lambda rate, size, hours: rate * hours * size / 1e9),
        Known("a rate counts messages per second: an hour has 60 minutes of 60 seconds each",
              model=lambda rate, size, hours: rate * 60 * hours * size / 1e9),
        Known("a gigabyte here is 10⁹ bytes (the unit disks and networks use), not 2³⁰",
              model=lambda rate, size, hours: rate * 3600 * hours * size / 2**30),
        Known("the answer is in gigabytes, not bytes", model=lambda rate, size, hours: rate * 3600 * hours * size),
    ),
)


@checker
def pile_gb(fn: Callable[[float, float, float], Any]) -> Feedback:
    """Check ``pile_gb(rate, bytes_per_message, hours)`` on the lesson's numbers and generated ones."""
    PILE.compare(fn)
    return correct("a day at 12,500 messages a second is over a billion messages: about 200 gigabytes of JSON, at 185 bytes each.")


# --------------------------------------------------------------------------- exercise 2

#: The lesson's fleet (the exercises notebook's), cut after 10 minutes: every charger has spoken by then.
LESSON_FLEET = dict(seed=11, chargers=120, sites=8, broken=0.02, outages=0.05, unregistered=3)
LESSON_MINUTES = 10


@functools.lru_cache(maxsize=1)
def _keying_case() -> tuple[Any, list[Message]]:
    """The lesson's fleet and its pile (unregistered chargers and broken messages included)."""
    chargers = fleet(**LESSON_FLEET)
    return chargers, chargers.pile(until=COURSE_START + timedelta(minutes=LESSON_MINUTES))


class _Piles(FixedPartitionedSource[Message, int]):
    """A pile of messages split into ``partitions`` partitions by charger, as the lesson's log splits them."""

    def __init__(self, pile: list[Message], partitions: int) -> None:
        self.parts = [[m for m in pile if partition_for(m.charger, partitions) == p] for p in range(partitions)]

    def list_parts(self) -> list[str]:
        return [str(p) for p in range(len(self.parts))]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _PilePartition:
        return _PilePartition(self.parts[int(for_part)])


class _PilePartition(StatefulSourcePartition[Message, int]):
    def __init__(self, messages: list[Message]) -> None:
        self.messages, self.read = messages, 0

    def next_batch(self) -> list[Message]:
        if self.read >= len(self.messages):
            raise StopIteration()
        batch = self.messages[self.read:self.read + 500]
        self.read += len(batch)
        return batch

    def snapshot(self) -> int:
        return self.read


@dataclass(frozen=True)
class _Keyed:
    """What the lesson's dataflow found with a key: sessions and energy per charger, messages set aside per reason.

    ``split`` (not compared) names a charger whose messages went under several keys in that run, and its keys.
    """

    sessions: tuple[tuple[str, int, int], ...]
    aside: tuple[tuple[str, int], ...]
    split: tuple[str, tuple[str, ...]] | None = field(default=None, compare=False)


def _run(key: Callable[[Message], Any], site_of: dict[str, str], pile: list[Message], partitions: int,
         workers: int) -> _Keyed:
    """The lesson's dataflow keyed by ``key``, its pile in ``partitions`` partitions, on ``workers`` worker threads."""

    def apply_rules(state: Chargers | None, message: Message) -> tuple[Chargers, list]:
        state = state or Chargers(site_of)
        state.feed(message)
        found = [("session", s) for s in state.sessions] + [("aside", a.reason) for a in state.aside]
        state.sessions, state.aside = [], []
        return state, found

    keys: dict[str, set] = {}

    def keyed(message: Message) -> Any:
        k = key(message)
        with contextlib.suppress(TypeError):  # an unhashable key: bytewax says so itself
            keys.setdefault(message.charger, set()).add(k)
        return k

    out: list = []
    flow = Dataflow("learner_key")
    messages = op.input("messages", flow, _Piles(pile, partitions))
    found = op.stateful_map("rules", op.key_on("your key", messages, keyed), apply_rules)
    op.output("found", op.flat_map("each", found, lambda kv: kv[1]), TestingSink(out))
    cluster_main(flow, [], 0, worker_count_per_proc=workers)
    per_charger: dict[str, list[int]] = {}
    for kind, s in out:
        if kind == "session":
            counts = per_charger.setdefault(s.charger, [0, 0])
            counts[0], counts[1] = counts[0] + 1, counts[1] + s.energy_wh
    reasons = collections.Counter(r for kind, r in out if kind == "aside")
    split = next(((c, tuple(sorted(map(repr, ks)))) for c, ks in sorted(keys.items()) if len(ks) > 1), None)
    return _Keyed(tuple(sorted((c, n, wh) for c, (n, wh) in per_charger.items())), tuple(sorted(reasons.items())), split)


def _lesson_key(message: Message) -> str:
    """The lesson's own key, the reference: any key that depends only on the charger gives its answer."""
    return message.charger


def _key_cases() -> Iterator[Case]:
    # Small fleets first: a difference found there is shown whole. Each has its edge: hours and days that turn
    # during the pile (a key with the time in it splits a session), unregistered chargers, broken messages
    # (retries, missing fields, readings going backwards), outages, several partitions, one or two workers.
    rng = random.Random(6)
    starts = (timedelta(0), timedelta(minutes=52), timedelta(hours=23, minutes=53), timedelta(hours=9, minutes=57))
    for n in range(14):
        chargers = rng.randint(1, 5)
        f = fleet(seed=rng.randrange(10_000), chargers=chargers, sites=rng.randint(1, chargers),
                  unregistered=rng.choice([0, 0, 1, 2]), broken=rng.choice([0.0, 0.1, 0.3]),
                  outages=rng.choice([0.0, 0.3]), disorder=rng.choice([0.0, 5.0, 40.0]),
                  meter_interval=rng.choice([30.0, 120.0, 300.0]), heartbeat_interval=rng.choice([60.0, 300.0, 900.0]),
                  start=COURSE_START + starts[n % len(starts)])
        # Long enough for sessions to start and end, with few messages: readings and heartbeats minutes apart.
        pile = f.pile(until=f.start + timedelta(minutes=rng.randint(10, 90)))
        yield Case((pile, f.site_of, rng.randint(1, 3), 1 + n % 2), "a small generated fleet")
    chargers, pile = _keying_case()
    yield Case((pile, chargers.site_of, 1, 1), "the lesson's fleet, one worker")
    yield Case((pile, chargers.site_of, 8, 2), "the lesson's fleet, two workers")


def _show_messages(case: Case) -> str:
    pile, site_of, partitions, workers = case.args
    if not pile:
        return f"with no message at all, in {partitions} partition(s) on {workers} worker(s)"
    lines = []
    for m in pile[:12]:
        fields = ", ".join(f"{name} {getattr(m, name)}" for name in ("transaction", "meter_wh", "status")
                           if getattr(m, name) is not None)
        lines.append(f"  {m.message_id} {m.kind}{f' ({fields})' if fields else ''}, happened "
                     f"{show_time(m.event_time)}, arrived {show_time(m.arrival_time)}")
    more = f"\n  ... and {len(pile) - 12} more" if len(pile) > 12 else ""
    chargers = sorted({m.charger for m in pile})
    where = "; ".join(f"{c} on {site_of[c]}" if c in site_of else f"{c} not registered" for c in chargers[:6])
    head = "this 1 message" if len(pile) == 1 else f"these {len(pile)} messages"
    return (f"with {head} ({where}), in {partitions} partition(s) on {workers} worker(s):\n"
            + "\n".join(lines) + more)


def _show_keyed(answer: Any) -> str:
    if not isinstance(answer, _Keyed):
        return show(answer)
    sessions = ", ".join(f"{c}: {n} session(s), {wh} Wh" for c, n, wh in answer.sessions) or "none"
    aside = ", ".join(f"{reason}: {n}" for reason, n in answer.aside) or "none"
    text = f"sessions {{{sessions}}}, set aside {{{aside}}}"
    if answer.split is not None:
        charger, keys = answer.split
        text += f" (the messages of {charger} went under the keys {', '.join(keys[:3])})"
    return text


KEY = Exercise(
    solution=_lesson_key,
    cases=_key_cases,
    call=lambda fn, case: _run(fn, case.args[1], list(case.args[0]), case.args[2], case.args[3]),
    describe=_show_messages,
    show=_show_keyed,
    budget=30,
    rerun=2,
    known=(
        Known("Your key gives one charger's messages different keys on this input: state lives per key, so some of "
              "its messages meet a state that never saw the ones before (its session's start, its last message). "
              "Every message of one charger must get the same key, whenever and whatever it is.",
              when=lambda got, want, case: isinstance(got, _Keyed) and got.split is not None),
        Known("Your key raised on a message of this input. Every message needs a key, even one the rules will set "
              "aside.", when=lambda got, want, case: isinstance(got, Raised)),
    ),
)


_SALTED = (str, bytes)


def _salted_hash(value: Any) -> int:
    """``hash()`` as another process computes it: a text's (or bytes') hash salted otherwise, any other the same."""
    original = _ORIGINAL_HASH
    if isinstance(value, _SALTED):
        return original((value, "another process"))
    if isinstance(value, (tuple, frozenset)):  # their hash is made of their items' hashes
        return original(tuple(_salted_hash(v) for v in value)) if isinstance(value, tuple) else original(
            frozenset(_salted_hash(v) for v in value))
    return original(value)


_ORIGINAL_HASH = builtins.hash


@contextlib.contextmanager
def _as_another_process() -> Iterator[None]:
    """Inside, ``hash()`` gives what another process would: Python salts the hash of a text anew in every process.

    Only the builtin is changed (dicts and sets use ``__hash__`` itself), and
    only while the learner's key runs, helpers it calls included.
    """
    builtins.hash = _salted_hash
    try:
        yield
    finally:
        builtins.hash = _ORIGINAL_HASH


def _same_in_another_process(fn: Callable[[Message], Any], pile: list[Message]) -> None:
    """A key must be the same in every process: after a restart, state is found again only under the same key."""
    here = [fn(m) for m in pile]
    try:
        with _as_another_process():
            there = [fn(m) for m in pile]
    except Exception:  # what the key cannot do with another hash: the comparison below has nothing to say
        return
    for m, a, b in zip(pile, here, there):
        if a != b:
            raise Mistake(
                f"your key changes from one process to the next: Python salts hash() of a text anew in every process "
                f"(unless PYTHONHASHSEED is set), so {m.charger} gets the key {a!r:.40} here and {b!r:.40} in "
                "another. After a restart from a snapshot, or on the second machine of a two-machine run, its state "
                "would be under another key, and lost. The key must come from the charger's id the same way "
                "everywhere.")


def _structure(fn: Callable[[Message], Any], pile: list[Message]) -> set:
    """The learner's keys on the lesson's pile, with a hint at once for a key that raises, is no string or splits."""
    keys: dict[str, set] = {}
    for m in pile:
        try:
            k = fn(m)
        except NotImplementedError:
            raise
        except Exception as error:
            raise Mistake(f"your key raised {type(error).__name__}: {error} for the message {m.message_id} "
                          f"({m.kind} from {m.charger}). Every message needs a key, even one the rules will set "
                          "aside (a charger missing from the back office's table, say).") from None
        if not isinstance(k, str):
            raise Mistake(f"a key must be a string (bytewax routes keys by their text); yours gives "
                          f"{type(k).__name__} {k!r:.40} for {m.message_id}.")
        keys.setdefault(m.charger, set()).add(k)
    split = next(((c, ks) for c, ks in keys.items() if len(ks) > 1), None)
    if split is not None:
        charger, ks = split
        raise Mistake(f"the messages of {charger} get {len(ks)} different keys ({', '.join(sorted(ks)[:3])}). "
                      "State lives per key: its readings would meet a state that never saw its session start. "
                      "Every message of one charger must get the same key.")
    distinct = set().union(*keys.values())
    if len(distinct) == 1:
        raise Mistake(f"every message gets the key {next(iter(distinct))!r}. The answer stays right, but one key "
                      "lives on one worker: nothing is shared out however many workers you add. Choose a key with "
                      "many values.")
    return distinct


@checker
def charger_key(fn: Callable[[Message], Any]) -> Feedback:
    """Check ``charger_key(message)``: every message keyed, each charger under one key, several keys; then run it.

    The lesson's dataflow keyed by it runs on the lesson's fleet and on small generated fleets (hours and days
    turning, unregistered chargers, broken messages, several partitions), on one worker and on two, and must
    find what it finds keyed by charger.
    """
    distinct = _structure(fn, _keying_case()[1])
    _same_in_another_process(fn, _keying_case()[1])
    KEY.compare(fn)
    return correct(f"{len(distinct)} keys, each charger's messages under one of them: the same answer on one worker "
                   "and on two.")


# --------------------------------------------------------------------------- exercise 3


def _site_clock(watermarks: dict[int, datetime], partitions: int) -> datetime | None:
    if len(watermarks) < partitions:
        return None
    return min(watermarks.values())


def _clocks() -> list[Case]:
    t = COURSE_START + timedelta(minutes=10)
    cases = [
        Case(({0: t, 1: t + timedelta(seconds=30), 2: t - timedelta(seconds=4)}, 3), "three partitions", items=None),
        Case(({0: t, 2: t + timedelta(seconds=8)}, 3), "one partition not heard from yet", items=None),
        Case(({}, 2), "nothing heard yet", items=None),
        Case(({0: t}, 1), "one partition", items=None),
        Case(({0: t, 1: t}, 2), "a tie", items=None),
    ]
    rng = random.Random(16)
    for _ in range(40):
        partitions = rng.randint(1, 6)
        heard = rng.sample(range(partitions), rng.randint(0, partitions))
        cases.append(Case(({p: t + timedelta(seconds=rng.randint(-120, 120)) for p in heard}, partitions), items=None))
    return cases


def _show_marks(case: Case) -> str:
    marks, partitions = case.args
    heard = ", ".join(f"{p}: {show_time(t)}" for p, t in sorted(marks.items())) or "none"
    return f"with {partitions} partition(s) and the watermarks heard so far {{{heard}}}"


CLOCK = Exercise(
    solution=_site_clock,
    cases=_clocks,
    describe=_show_marks,
    show=lambda answer: "None" if answer is None else show_time(answer),
    known=(
        Known("your clock follows the fastest partition, so it would close minutes that a slower partition has not "
              "delivered yet. Which partition can the site's clock safely follow?",
              model=lambda marks, n: max(marks.values()) if len(marks) == n and marks else None),
        Known("a partition not heard from yet may still send energy for any minute: wait until every partition "
              "has spoken", model=lambda marks, n: min(marks.values()) if marks else None),
    ),
)


@checker
def site_clock(fn: Callable[[dict[int, datetime], int], Any]) -> Feedback:
    """Check ``site_clock(watermarks, partitions)`` on hand-made and generated cases."""
    CLOCK.compare(fn)
    return correct("the slowest partition sets the clock, and none may be missing: a window closed by it is complete.")
