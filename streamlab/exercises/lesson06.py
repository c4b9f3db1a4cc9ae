"""Checks for the exercises of lesson 06, EV charging at scale.

1. ``pile_gb``: a function ``pile_gb(rate, bytes_per_message, hours)`` giving
   the size of the pile, in gigabytes (10⁹ bytes), of a pipe of ``rate``
   messages a second after ``hours`` hours.
2. ``charger_key``: a function ``charger_key(message)``, the key of the
   lesson's dataflow, chosen so that the answer does not change; the check
   runs the lesson's dataflow with it on one worker and on two, and compares
   with the batch job.
3. ``site_clock``: a function ``site_clock(watermarks, partitions)`` giving a
   site's clock from the watermarks of the partitions heard from so far (a dict
   partition → datetime): the slowest, once every partition has been heard
   from, else ``None``.

Checks 1 and 3 compare with the solution on generated cases, the edges included,
and show the smallest input where an answer differs (:mod:`streamlab.exercises.differ`).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import bytewax.operators as op
import pandas as pd
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, cluster_main

from streamlab.batch.charging import charging as batch_charging
from streamlab.ev import Chargers, Message, fleet
from streamlab.events import COURSE_START
from streamlab.exercises import Feedback, Mistake, checker, correct
from streamlab.exercises.differ import Case, Exercise, Known, learner_dataflow, show_time

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


@functools.lru_cache(maxsize=1)
def _keying_case() -> tuple[Any, list[Message], pd.Series, pd.Series]:
    """A small fleet's pile (unregistered chargers and broken messages included) and the batch job's answer."""
    chargers = fleet(seed=11, chargers=120, sites=8, broken=0.02, outages=0.05, unregistered=3)
    until = COURSE_START + timedelta(minutes=20)
    pile = chargers.pile(until=until)
    answer = batch_charging(chargers, until=until, pile=pile)
    return chargers, pile, answer.chargers.set_index("charger")["energy_wh"], answer.reasons


def _run(key: Callable[[Message], str], chargers: Any, pile: list[Message], workers: int) -> tuple[pd.Series, pd.Series]:
    """The lesson's dataflow keyed by ``key``, on ``workers`` worker threads: energy per charger, reasons set aside."""

    def apply_rules(state: Chargers | None, message: Message) -> tuple[Chargers, list]:
        state = state or Chargers(chargers.site_of)
        state.feed(message)
        found = [("session", s) for s in state.sessions] + [("aside", a.reason) for a in state.aside]
        state.sessions, state.aside = [], []
        return state, found

    out: list = []
    flow = Dataflow("learner_key")
    messages = op.input("messages", flow, TestingSource(pile))
    keyed = op.key_on("your key", messages, key)
    found = op.stateful_map("rules", keyed, apply_rules)
    op.output("found", op.flat_map("each", found, lambda kv: kv[1]), TestingSink(out))
    with learner_dataflow(what="the dataflow with your key"):
        cluster_main(flow, [], 0, worker_count_per_proc=workers)
    sessions = pd.DataFrame([s for kind, s in out if kind == "session"])
    energy = sessions.groupby("charger")["energy_wh"].sum() if len(sessions) else pd.Series(dtype="int64")
    reasons = pd.Series([r for kind, r in out if kind == "aside"], dtype=object).value_counts().sort_index()
    return energy, reasons


@checker
def charger_key(fn: Callable[[Message], Any]) -> Feedback:
    """Check ``charger_key(message)``: every message keyed, each charger under one key, several keys; then run it."""
    chargers, pile, energy, reasons = _keying_case()
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
    for workers in (1, 2):
        got_energy, got_reasons = _run(fn, chargers, pile, workers)
        if not (got_energy.sort_index().equals(energy.sort_index()) and got_reasons.equals(reasons)):
            raise Mistake(f"on {workers} worker(s), the dataflow with your key does not give the batch job's energy "
                          "per charger and messages set aside. Check that the key depends only on the charger.")
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
        Known("the fastest partition would close minutes the slowest has not delivered yet: take the slowest",
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
