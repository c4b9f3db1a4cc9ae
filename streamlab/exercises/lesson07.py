"""Checks for the exercises of lesson 07, schemas and bad data.

1. ``replay_fix``: a function ``fix(payload)`` used to replay dead letters: it
   repairs amounts sent as text, takes times without a zone as UTC and drops
   the ``coupon`` field, and leaves everything else as it was.
2. ``validating_flow``: the body of a bytewax dataflow, ``validating_steps(numbered)``,
   that turns a stream of ``(position, payload)`` into two streams: events
   ``(position, OrderEvent)`` and dead letters. The check runs it in a real
   dataflow and compares with the pile's answer.
3. ``evolve_schema``: a function ``orders_v2()`` returning the order schema with
   a new field ``channel``, that a registry in ``FULL_TRANSITIVE`` mode accepts
   after ``orders-v1`` (the check registers it, and reads old and new data both ways).
4. ``upgrade_first``: a function ``upgrade_first(old, new)`` saying which side of
   the pipe must run a new schema first: ``"consumers"``, ``"producers"``,
   ``"either"`` or ``"neither"``.

Checks 1, 2 and 4 compare the learner's answer with the solution
(:mod:`streamlab.exercises.differ`) on the lesson's data (order pipe seed 7,
3,000 events, 15 % broken), on fresh days (other seeds) and on seeded inputs made
to hold each exercise's edges: payloads with each field missing, of the wrong
type or at a bound of its rule, naive and other-zone times, the coupon field and
its look-alikes (1); small pipes, empty, of one payload, all bad, all good, with
duplicates (2); schema changes of every kind, each also undone (4). The first
input where an answer differs is shown, cut down, with the hint of a known
mistake when that mistake explains it. Check 3 takes no input: it asks the
registry and fastavro, and says what each refusal means.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import numbers
import random
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from streamlab.exercises import Feedback, Mistake, checker, correct
from streamlab.exercises.differ import Case, Exercise, Known, Raised, fresh, resumed_steps
from streamlab.orders import OrderEvent, order_pipe, take
from streamlab.registry import CASES, Registry, can_read, load, read_as
from streamlab.schemas import FAULTS, RULES, DeadLetter, dirty_payloads, validate

__all__ = ["CHANNEL", "evolve_schema", "replay_fix", "solution_fix", "upgrade_first", "validating_flow"]

LESSON_SEED, FRESH_SEEDS = 7, (11, 23)
#: The field exercise 3 adds.
CHANNEL = "channel"


@functools.lru_cache(maxsize=4)
def _payloads(seed: int, n: int = 3000) -> tuple[Any, ...]:
    return tuple(p for _, p in dirty_payloads(take(order_pipe(seed=seed), n), seed=seed, bad=0.15))


def _good(**changes: Any) -> dict[str, Any]:
    start = datetime(2026, 3, 1, tzinfo=timezone.utc)
    record = {"order_id": "order-1", "customer": "customer-3", "kind": "placed", "amount": 25.0,
              "event_time": start, "arrival_time": start + timedelta(seconds=3)}
    return {**record, **changes}


# -- 1. A fix for the replay -----------------------------------------------------------------------

def solution_fix(payload: Any) -> Any:
    """The answer of exercise 1: text amounts as numbers, naive times as UTC, ``coupon`` dropped; the rest as it was."""
    if not isinstance(payload, dict):
        return payload
    fixed = {k: v for k, v in payload.items() if k != "coupon"}
    if isinstance(fixed.get("amount"), str):
        try:
            fixed["amount"] = float(fixed["amount"])
        except ValueError:
            pass
    for name in ("event_time", "arrival_time"):
        value = fixed.get(name)
        if isinstance(value, datetime) and value.tzinfo is None:
            fixed[name] = value.replace(tzinfo=timezone.utc)
    return fixed


# How a payload is compared and shown (exercises 1 and 2): as JSON keeps it, whatever the key order, container or
# number type; a time by its clock and zone (``isoformat``), so that any UTC zone object is UTC.

def _norm(x: Any) -> Any:
    """A payload's meaning: dicts by key (any order), lists as tuples, numbers as floats, times as ISO text.

    Plain ``==`` compares two of them (a bool and NaN are tagged: ``True == 1.0`` and ``nan != nan`` in Python).
    """
    if x is None or isinstance(x, str):
        return x
    if isinstance(x, (bool, np.bool_)):
        return ("bool", bool(x))
    if isinstance(x, numbers.Real) and not isinstance(x, Decimal):
        try:
            value = float(x)
        except OverflowError:  # an int too big for a float is its own value
            return ("int", str(int(x)))
        return ("float", "nan") if math.isnan(value) else value
    if isinstance(x, (bytes, bytearray)):
        return ("bytes", bytes(x))
    if isinstance(x, datetime):
        return ("time", x.isoformat())
    if isinstance(x, Mapping):
        return {_norm(k): _norm(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return ("list", tuple(_norm(v) for v in x))
    return ("object", type(x).__name__, repr(x))


_ZONE = re.compile(r"[+-]\d\d:\d\d(:\d\d(\.\d+)?)?$")


def _show_time_text(text: str) -> str:
    return text.replace("T", " ") + ("" if _ZONE.search(text) else " (no zone)")


def _show_value(x: Any, limit: int = 60) -> str:
    """A value of a payload, short: times with their zone (or "no zone"), long bytes cut."""
    if isinstance(x, datetime):
        return f"datetime {_show_time_text(x.isoformat())}"
    if isinstance(x, (bytes, bytearray)) and len(x) > 16:
        return f"{bytes(x[:12])!r}… ({len(x)} bytes)"
    if isinstance(x, Mapping):
        return "{" + ", ".join(f"{k!r}: {_show_value(v)}" for k, v in x.items()) + "}"
    text = repr(x)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show_norm(n: Any) -> str:
    """A payload's meaning (:func:`_norm`) shown as the payload it stands for."""
    if isinstance(n, Raised):
        return repr(n)
    if isinstance(n, _ChangedInPlace):
        return f"{_show_norm(n.answer)}, and the payload it was given was changed too"
    if isinstance(n, dict):
        return "{" + ", ".join(f"{_show_norm(k)}: {_show_norm(v)}" for k, v in n.items()) + "}"
    if isinstance(n, tuple) and n and n[0] == "time":
        return f"datetime {_show_time_text(n[1])}"
    if isinstance(n, tuple) and n and n[0] == "bytes":
        return _show_value(n[1])
    if isinstance(n, tuple) and n and n[0] == "list":
        return "[" + ", ".join(map(_show_norm, n[1])) + "]"
    if isinstance(n, tuple) and n and n[0] in ("int", "float"):
        return n[1]
    if isinstance(n, tuple) and n and n[0] == "bool":
        return repr(n[1])
    if isinstance(n, tuple) and n and n[0] == "object":
        return n[2][:60]
    return repr(n)


@dataclass(frozen=True)
class _ChangedInPlace:
    """The outcome of a fix that changed the payload it was given (the dead letter's record of what arrived)."""

    answer: Any


def _payload_case(payload: Any, label: str) -> Case:
    """A case of exercise 1: a dict as its (field, value) pairs, which shrinking may drop; anything else whole."""
    if isinstance(payload, dict):
        return Case((list(payload.items()),), label)
    return Case((payload,), label, items=None)


def _payload(case: Case) -> Any:
    """The payload of an exercise 1 case, a fresh copy (a fix may change it)."""
    given = copy.deepcopy(case.args[0])
    return dict(given) if case.items == 0 else given


def _fix_call(fn: Callable[[Any], Any], case: Case) -> Any:
    given = _payload(case)
    before = _norm(given)
    answer = fn(given)
    if _norm(given) != before:
        return _ChangedInPlace(answer)
    return answer


def _fix_meaning(answer: Any, case: Case) -> Any:
    if isinstance(answer, _ChangedInPlace):
        return _ChangedInPlace(_norm(answer.answer))
    return _norm(answer)


def _edges() -> list[tuple[str, Any]]:
    """Payloads holding exercise 1's edges, one at a time: each field missing, None, of the wrong type, at a bound of
    its rule; amounts as text of every kind; naive and other-zone times; the coupon field and its look-alikes; unknown
    and nested fields; payloads that are not records."""
    good = _good()
    naive, summer = datetime(2026, 3, 1, 9, 30), datetime(2026, 7, 14, 23, 59, 59, 250_000)
    plus2, minus5 = timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))
    edges: list[tuple[str, Any]] = [("a good order event", good)]
    for name in good:
        edges.append((f"no {name}", {k: v for k, v in good.items() if k != name}))
        edges.append((f"{name} None", {**good, name: None}))
    wrong_types = {"order_id": [5, b"order-1"], "customer": [["customer-3"]], "kind": [3, "PLACED", "refunded"],
                   "amount": [b"12.5", ["12.5"], {"value": "12.5"}, Decimal("12.5"), (12.5,)],
                   "event_time": ["2026-03-01T09:30:00", "2026-03-01T09:30:00+00:00", 1772357400, date(2026, 3, 1)],
                   "arrival_time": ["2026-03-01 09:30:03", 1772357403.5]}
    for name, values in wrong_types.items():
        edges += [(f"{name} of another type", {**good, name: v}) for v in values]
    amounts = ["12.5", "7", " 30.0 ", "-5", "0", "0.0", "1000000", "1000000.01", "1e3", "twenty", "", " ", "12,5",
               "USD 5", "12.5.1", "5 €", True, False, 0, 7, -1.0, 1_000_000.0, 1_000_000.5, float("nan"),
               float("inf"), 10**400]
    edges += [("an odd amount", {**good, "amount": a}) for a in amounts]
    times = [naive, summer, naive.replace(microsecond=1), datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59),
             naive.replace(tzinfo=plus2), naive.replace(tzinfo=minus5), naive.replace(tzinfo=timezone.utc),
             naive.replace(tzinfo=ZoneInfo("UTC")), naive.replace(tzinfo=timezone(timedelta(0))),
             summer.replace(tzinfo=ZoneInfo("Europe/London")), pd.Timestamp(naive), pd.Timestamp(summer, tz="UTC")]
    for name in ("event_time", "arrival_time"):
        edges += [("an odd time", {**good, name: t}) for t in times]
    edges += [("both times naive", {**good, "event_time": naive, "arrival_time": naive + timedelta(seconds=2)})]
    extras = [{"coupon": "SPRING"}, {"coupon": None}, {"coupon": ""}, {"Coupon": "X"}, {"coupons": "X"},
              {"coupon_code": "X"}, {" coupon": "X"}, {"discount": "10%"}, {"note": {}},
              {"meta": {"coupon": "X", "amount": "5"}}, {"tags": ["coupon"]}, {1: "one"}, {None: "none"},
              {"coupon": "SPRING", "discount": "10%"}]
    edges += [("an extra field", {**good, **extra}) for extra in extras]
    edges += [("everything at once", {**good, "amount": "12.5", "coupon": "SPRING", "event_time": naive,
                                      "arrival_time": naive.replace(tzinfo=plus2), "note": "x"}),
              ("a coupon and a bad amount", {**good, "amount": "twenty", "coupon": "SPRING"}),
              ("only a coupon", {"coupon": "SPRING"}), ("an empty record", {})]
    edges += [("not a record", p) for p in (None, [1, 2], [{**good, "coupon": "X"}], "order-1", 42, 2.5, b"",
                                             b"\x00\x00\x00\x00\x01\x0eorder-1", (good,), True)]
    return edges


def _fix_cases() -> Iterator[Case]:
    """The dead letters of the lesson's day, payloads holding every edge, then combinations of edges, fresh days."""
    for letter in _letters(LESSON_SEED):
        yield _payload_case(letter.payload, f"a dead letter of the lesson's day, position {letter.position}")
    edges = _edges()
    for what, payload in edges:
        yield _payload_case(payload, what)
    rng = random.Random(1707)  # fixed seed: the same cases every run
    good = _good()
    records = [p for _, p in edges if isinstance(p, dict) and p != good]
    for _ in range(60):
        mixed = dict(good)
        for record in rng.sample(records, rng.randint(2, 3)):  # each brings its edge: a field changed, added, gone
            mixed.update({k: v for k, v in record.items() if k not in good or _norm(v) != _norm(good[k])})
            for k in good.keys() - record.keys():
                mixed.pop(k, None)
        yield _payload_case(mixed, "a generated payload")
    for seed in FRESH_SEEDS:
        for letter in _letters(seed, 1000):
            yield _payload_case(letter.payload, f"a dead letter of another day (seed {seed}), position {letter.position}")


@functools.lru_cache(maxsize=4)
def _letters(seed: int, n: int = 3000) -> tuple[DeadLetter, ...]:
    """The dead letters of a day of the order pipe (seed, n payloads), as the lesson makes them."""
    checked = (validate(p, source=f"orders#{i}", position=i) for i, p in enumerate(_payloads(seed, n)))
    return tuple(d for d in checked if isinstance(d, DeadLetter))


_ABSENT = object()


def _fix_wrongs(got: Any, want: Any, case: Case) -> set[str]:
    """What a fix got wrong on a payload, by kind: which field, what it had, what the fix did with it."""
    original = _payload(case)
    if isinstance(got, Raised):
        # A fix that moves a naive time (astimezone) raises where the clock cannot move: that is the time's mistake.
        naive = isinstance(original, dict) and any(
            isinstance(original.get(k), datetime) and original[k].tzinfo is None for k in ("event_time", "arrival_time"))
        return {"raised", "naive time"} if naive else {"raised"}
    if isinstance(got, _ChangedInPlace):
        return {"in place"}
    if not isinstance(original, dict):
        return {"not a record"}
    if not isinstance(got, dict):
        return {"not a dict"}
    kinds = set()
    for key in set(got) | set(want):
        mine, right = got.get(key, _ABSENT), want.get(key, _ABSENT)
        if mine is not _ABSENT and right is not _ABSENT and mine == right:
            continue
        was = original.get(key, _ABSENT)
        if key == "coupon" and mine is not _ABSENT:
            kinds.add("coupon kept")
        elif mine is _ABSENT:
            kinds.add("rule field dropped" if key in _RULE_FIELDS else "field dropped")
        elif was is _ABSENT:
            kinds.add("field added")
        elif key == "amount" and isinstance(was, str):
            kinds.add("text number" if _reads_as_number(was) else "text not a number")
        elif key == "amount":
            kinds.add("bool amount" if isinstance(was, bool) else "other amount")
        elif key in ("event_time", "arrival_time") and isinstance(was, datetime):
            kinds.add("naive time" if was.tzinfo is None else "zoned time")
        elif key in ("event_time", "arrival_time"):
            kinds.add("time not a datetime")
        else:
            kinds.add("other field")
    return kinds


def _reads_as_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


_RULE_FIELDS = frozenset(r.field for r in RULES)


def _wrong(kind: str) -> Callable[[Any, Any, Case], bool]:
    return lambda got, want, case: kind in _fix_wrongs(got, want, case)


FIX = Exercise(
    solution=solution_fix,
    cases=_fix_cases,
    call=_fix_call,
    meaning=_fix_meaning,
    same=lambda a, b: a == b,  # the normal forms are exact (see _norm)
    describe=lambda case: f"with the payload {_show_value(_payload(case), limit=200)} (from {case.label})",
    show=_show_norm,
    known=(
        Known("a time without a zone is taken as UTC: give it the UTC zone without moving the clock (astimezone "
              "would assume the machine's own zone).", when=_wrong("naive time")),
        Known("your fix raised on a payload: replay would keep its letter dead with the fix's error as its only "
              "reason, and lose the real one. A payload your fix cannot repair (bytes, a list, None, an amount "
              "that is not a number) must come back unchanged.", when=_wrong("raised")),
        Known("your fix changed the dead letter's own payload: return a new dict and leave the letter as it "
              "arrived (it is the record of what was sent).", when=_wrong("in place")),
        Known("a payload that is not a record (bytes, a list, None, a number) has nothing to repair: it must come "
              "back unchanged, as it came.", when=_wrong("not a record")),
        Known("your fix must return the payload, repaired: for a record, a dict.", when=_wrong("not a dict")),
        Known("the coupon field is to be dropped (the shop decided nobody reads it).", when=_wrong("coupon kept")),
        Known("an amount sent as text that reads as a number (\"12.5\") must become that number.",
              when=_wrong("text number")),
        Known("an amount that does not read as a number must stay as it was: the letter stays dead, with its "
              "reason.", when=_wrong("text not a number")),
        Known("only amounts sent as text are repaired: a bool is not an amount, and float(True) would invent one.",
              when=_wrong("bool amount")),
        Known("only amounts sent as text are repaired: an amount of any other type (a list, bytes, a Decimal, a "
              "dict) stays as it was, and the rule table says why it is dead.", when=_wrong("other amount")),
        Known("a time with another zone is not a time without a zone: leave it, the rule table says why it is "
              "dead.", when=_wrong("zoned time")),
        Known("only times without a zone were decided: a time sent as text or as a number stays as it was, and "
              "its letter stays dead with its reason.", when=_wrong("time not a datetime")),
        Known("only coupon was decided: a field nobody knows might matter, so it stays, and the letter stays dead.",
              when=_wrong("field dropped")),
        Known("your fix removed a field of the rule table: a field the fix may not repair stays as it arrived, "
              "and the letter stays dead with its reason.", when=_wrong("rule field dropped")),
        Known("your fix added a field the payload did not have: a missing field stays missing, and the letter "
              "stays dead with its reason.", when=_wrong("field added")),
        Known("your fix changed a field none of the three decisions is about: leave it as it arrived.",
              when=_wrong("other field")),
    ),
)


@checker
def replay_fix(fn: Callable[[Any], Any]) -> Feedback:
    """Check exercise 1: ``fn`` and the solution on every dead letter and on payloads made to hold the edges."""
    FIX.compare(fn)
    return correct("the replay brings back the amounts sent as text, the times without a zone (as UTC) and the "
                   "records with a coupon, and leaves every other letter dead with its reason.")


# -- 2. The validating dataflow --------------------------------------------------------------------

def _reference_steps(numbered: Any) -> tuple[Any, Any]:
    """The answer of exercise 2: one map validates each payload at its position, one branch splits."""
    import bytewax.operators as op

    checked = op.map("validate", numbered, lambda item: (
        item[0], validate(item[1], source=f"orders#{item[0]}", position=item[0])))
    split = op.branch("event or dead letter", checked, lambda item: isinstance(item[1], OrderEvent))
    return split.trues, op.map("the letter", split.falses, lambda item: item[1])


def _show_numbered(items: list[Any]) -> str:
    """Items of the numbered stream, as a resumed step's hint shows the ones it replayed: position, payload."""
    if not all(isinstance(i, tuple) and len(i) == 2 for i in items):
        return f"these {len(items)} items: {items!r:.200}"
    head = "this payload" if len(items) == 1 else f"these {len(items)} payloads"
    lines = "\n".join(f"  {i!r}: {_show_value(p, limit=120)}" for i, p in items[:10])
    return f"{head} (position: payload):\n{lines}" + ("\n  …" if len(items) > 10 else "")


def _run_steps(fn: Callable[[Any], Any], payloads: list[Any]) -> tuple[list[Any], list[Any]]:
    """Run the learner's steps between the check's input (``(position, payload)``) and its two outputs.

    The steps are built inside :func:`resumed_steps`: a stateful step they add
    is resumed from snapshots of its state in the check's last stage. An error
    while building them is a hint at once (it does not depend on the payloads);
    an error in a step stops the run and is an outcome, shown with its payloads.
    """
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow, Stream
    from bytewax.testing import TestingSink, TestingSource

    from streamlab.stream.runner import run_flow

    events: list[Any] = []
    dead: list[Any] = []
    flow = Dataflow("exercise_07_validation")
    numbered = op.input("payloads", flow, TestingSource(list(enumerate(payloads)), batch_size=200))
    try:
        with resumed_steps(show_items=_show_numbered):
            out = fn(numbered)
    except (NotImplementedError, Mistake):
        raise
    except Exception as error:
        raise Mistake(f"building your steps raised {type(error).__name__}: {error}") from None
    if not isinstance(out, tuple) or len(out) != 2 or not all(isinstance(stream, Stream) for stream in out):
        raise Mistake("return two streams, as a tuple: the events first, then the dead letters")
    op.output("check_events_out", out[0], TestingSink(events))
    op.output("check_dead_letters_out", out[1], TestingSink(dead))
    run_flow(flow)  # a step's error: StreamError, its cause the learner's own (an outcome, see Exercise.outcome)
    return events, dead


def _flow_meaning(answer: tuple[list[Any], list[Any]], case: Case) -> dict[str, Any]:
    """Events as rows (position, its fields), dead letters as rows (position, source, field, rule), in any order."""
    events, dead = answer
    if any(isinstance(e, DeadLetter) for e in events) or any(
            isinstance(d, tuple) and len(d) == 2 and isinstance(d[1], OrderEvent) for d in dead):
        raise Mistake("your two streams are the wrong way round, or mixed: the events first, then the dead letters")
    if any(isinstance(e, tuple) and len(e) == 2 and isinstance(e[1], DeadLetter) for e in events):
        raise Mistake("your events stream holds dead letters (a position with a DeadLetter): every payload validate "
                      "refuses, whatever its rule, leaves by the dead-letter stream")
    if not all(isinstance(e, tuple) and len(e) == 2 and isinstance(e[1], OrderEvent) for e in events):
        raise Mistake("each item of the events stream must be a pair: the payload's position, and its OrderEvent")
    if not all(isinstance(d, DeadLetter) for d in dead):
        raise Mistake("each item of the dead-letter stream must be the DeadLetter itself (what validate returns)")
    return {"events": _rows((i, *(getattr(e, f) for f in _EVENT_FIELDS)) for i, e in events),
            "dead letters": _rows((d.position, d.source, d.field, d.rule) for d in dead)}


_EVENT_FIELDS = tuple(r.field for r in RULES)


@dataclass(frozen=True)
class _Rows:
    """Rows whose order does not matter, sorted: compared with plain ``==`` (a whole day's events in a few ms)."""

    items: tuple


def _rows(rows: Any) -> _Rows:
    rows = list(rows)
    try:
        return _Rows(tuple(sorted(rows)))
    except TypeError:  # positions of mixed types: any fixed order will do
        return _Rows(tuple(sorted(rows, key=repr)))


def _show_flow(answer: Any) -> str:
    if isinstance(answer, Raised):
        return f"your dataflow stopped with {answer!r}"
    events = [repr(e[0]) for e in answer["events"].items]
    dead = [f"{d[0]!r} ({d[2] or 'the whole payload'}: {d[3]}, source {d[1]!r})" for d in answer["dead letters"].items]
    return (f"{len(events)} event(s), at positions {_show_list(events)}, and {len(dead)} dead letter(s), at "
            f"positions {_show_list(dead)}")


def _show_list(items: list[Any]) -> str:
    return "[" + ", ".join(map(str, items[:12])) + (", …]" if len(items) > 12 else "]")


def _show_payloads(payloads: list[Any]) -> str:
    if not payloads:
        return "no payloads at all"
    head = "this payload" if len(payloads) == 1 else f"these {len(payloads)} payloads"
    lines = "\n".join(f"  {i}: {_show_value(p, limit=120)}" for i, p in enumerate(payloads[:10]))
    return f"{head} (position: payload):\n{lines}" + ("\n  …" if len(payloads) > 10 else "")


def _flow_cases() -> Iterator[Case]:
    """Small generated pipes first (empty, one payload, all bad, all good, duplicates), then the lesson's, fresh days."""
    rng = random.Random(2707)  # fixed seed: the same cases every run
    records = [{f: getattr(e, f) for f in _EVENT_FIELDS} for e in take(order_pipe(seed=5), 40)]
    faults = [f for f in FAULTS if not f.startswith("good")]

    def good() -> Any:
        return FAULTS[rng.choice(["good-wire", "good-record"])](dict(rng.choice(records)), rng)

    def bad() -> Any:
        return FAULTS[rng.choice(faults)](dict(rng.choice(records)), rng)

    yield Case(([],), "no payloads at all")
    yield Case(([good()],), "one good payload")
    yield Case(([bad()],), "one bad payload")
    yield Case(([bad() for _ in range(5)],), "only bad payloads")
    yield Case(([good() for _ in range(5)],), "only good payloads")
    twice = [good(), bad()]
    yield Case((twice + twice,), "the same payloads twice")
    for _ in range(SMALL_PIPES - 6):
        pipe = [good() if rng.random() < 0.5 else bad() for _ in range(rng.randint(2, 8))]
        if rng.random() < 0.3:
            pipe.insert(rng.randrange(len(pipe) + 1), rng.choice(pipe))  # a payload sent twice
        yield Case((pipe,))
    yield Case((list(_payloads(LESSON_SEED)),), "the lesson's payloads")
    for seed in FRESH_SEEDS:
        yield Case((list(_payloads(seed, 500)),), f"a fresh day (seed {seed})")


#: How many small generated pipes exercise 2 tries first (all of them are also run with resumed steps at the end).
SMALL_PIPES = 20


def _counts(answer: Any) -> int:
    return len(answer["events"].items) + len(answer["dead letters"].items)


def _positions(answer: Any, what: str, at: int = 0) -> list[Any]:
    return sorted(item[at] for item in answer[what].items)


def _same_letters(got: Any, want: Any) -> bool:
    """The same events, and dead letters for the same fields and rules: only where the letters came from differs."""
    return got["events"] == want["events"] and _without_position(got, "dead letters") == _without_position(
        want, "dead letters") and got["dead letters"] != want["dead letters"]


def _without_position(answer: Any, what: str) -> list[Any]:
    return sorted(map(repr, (item[1:] if what == "events" else item[2:] for item in answer[what].items)))


FLOW = Exercise(
    solution=_reference_steps,
    cases=_flow_cases,
    # A step that changes a payload in place must not change the cases, kept for the whole session.
    call=lambda fn, case: _run_steps(fn, fresh(list(case.args[0]))),
    meaning=_flow_meaning,
    same=lambda a, b: a == b,  # exact rows (see _rows)
    describe=lambda case: f"with {_show_payloads(case.args[0])}",
    show=_show_flow,
    resume=SMALL_PIPES,  # a stateful step of the learner's, resumed from snapshots: state kept outside it shows then
    rerun=4,
    known=(
        Known("your dataflow stopped on a payload: a step raised. validate never raises for bad data, it returns a "
              "dead letter; a step of yours must not raise either.", when=lambda got, want, case: isinstance(got, Raised)),
        Known("every payload must leave by exactly one of the two streams: count what went in and what came out "
              "of each.", when=lambda got, want, case: _counts(got) != len(case.args[0])),
        Known("the positions of your events are not the positions of the payloads that passed: keep the position "
              "that came with each payload.",
              when=lambda got, want, case: _positions(got, "events") != _positions(want, "events")
              and _without_position(got, "events") == _without_position(want, "events")),
        Known("your dead letters do not say where they came from: give validate the payload's position (and its "
              "source) so that each letter can be found again.",
              when=lambda got, want, case: _same_letters(got, want) and (
                  _positions(got, "dead letters") != _positions(want, "dead letters")
                  or all(not d[1] for d in got["dead letters"].items))),
        Known("each dead letter's source should be orders#POSITION (the topic, then the position).",
              when=lambda got, want, case: _same_letters(got, want)
              and _positions(got, "dead letters") == _positions(want, "dead letters")),
    ),
)


@checker
def validating_flow(fn: Callable[[Any], Any]) -> Feedback:
    """Check exercise 2: run the learner's steps in a dataflow on small generated pipes and whole days; compare."""
    FLOW.compare(fn)
    return correct("every payload leaves by one branch, the events with their positions and the dead letters with "
                   "their reasons: the same answer as the pile's, in a real dataflow.")


# -- 3. Evolve the schema --------------------------------------------------------------------------

@checker
def evolve_schema(fn: Callable[[], Any]) -> Feedback:
    """Check exercise 3: register the learner's schema after orders-v1 under FULL_TRANSITIVE, then read both ways.

    A schema takes no input to vary, and many schemas are right (any default of the field's type, a union): the
    check does not compare with the solution; it asks the registry and fastavro, and names what each refusal means.
    """
    schema = copy.deepcopy(fn())
    again = fn()  # a schema loaded once outside the function and changed at each call gives another one each time
    if _canonical_json(again) != _canonical_json(schema):
        raise Mistake("called twice, your function returned two different schemas: it changes something kept from "
                      "one call to the next (a schema loaded once, outside the function, gets the field again at "
                      "each call). Everything it returns must be made afresh in the call")
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError:
            raise Mistake("return the schema as a dict (or a JSON string of one)") from None
    if not isinstance(schema, Mapping) or not isinstance(schema.get("fields"), list):
        raise Mistake("return an Avro record schema: a dict with a name and a list of fields, like load('orders-v1')")
    v1 = load("orders-v1")
    fields = {f.get("name"): f for f in schema["fields"] if isinstance(f, Mapping)}
    if CHANNEL not in fields:
        raise Mistake(f"the new schema has no field named {CHANNEL!r}")
    registry = Registry("FULL_TRANSITIVE")
    registry.register("orders-value", v1)
    try:
        found = registry.check("orders-value", dict(schema))
    except ValueError as error:
        raise Mistake(f"that is not a valid Avro schema: {error}. A default must have the field's type "
                      "(for a union, the type of its first branch)") from None
    if schema.get("name") != v1["name"] or schema.get("namespace", "") != v1.get("namespace", ""):
        raise Mistake("keep the record's name and namespace: a reader matches records by their full name")
    for f in v1["fields"]:
        if f["name"] not in fields:
            raise Mistake(f"the field {f['name']!r} of version 1 is gone (removed or renamed): an old reader needs it")
    extra = [name for name in fields if name != CHANNEL and name not in {f["name"] for f in v1["fields"]}]
    if extra:
        raise Mistake(f"the new schema adds {extra[0]!r} too: version 2 is version 1 with the one field {CHANNEL} "
                      "added, nothing else")
    if not _holds_text(fields[CHANNEL].get("type")):
        raise Mistake(f"{CHANNEL} holds text ('web', 'store', ...), but its type cannot hold a string")
    if found:
        if "default" not in fields[CHANNEL]:
            raise Mistake(f"{CHANNEL} has no default: a consumer on the new schema could not read the orders "
                          "already written without it (BACKWARD breaks, so FULL does too)")
        raise Mistake("the registry refuses it: " + "; ".join(found))
    record = {**_good(), CHANNEL: fields[CHANNEL]["default"]}
    if read_as(v1, schema, _good()).get(CHANNEL) != fields[CHANNEL]["default"] or CHANNEL in read_as(schema, v1, record):
        raise Mistake("fastavro does not read both ways as the registry said: look at the field's type and default")
    return correct(f"the registry accepts it under FULL_TRANSITIVE: new consumers read old orders (with {CHANNEL} "
                   f"= {fields[CHANNEL]['default']!r}) and old consumers read new ones (skipping it), so either side "
                   "can upgrade first.")


def _canonical_json(schema: Any) -> str:
    return json.dumps(schema, sort_keys=True, default=repr)


def _holds_text(kind: Any) -> bool:
    """Whether an Avro type can hold a channel's name: a string, an enum of names, or a union with one of them."""
    if isinstance(kind, list):
        return any(map(_holds_text, kind))
    if isinstance(kind, Mapping):
        return kind.get("type") in ("string", "enum")
    return kind == "string"


# -- 4. Who upgrades first ------------------------------------------------------------------------

SIDES = ("consumers", "producers", "either", "neither")


def _side(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    backward, forward = can_read(new, old), can_read(old, new)
    return {(True, True): "either", (True, False): "consumers", (False, True): "producers"}.get(
        (backward, forward), "neither")


def _side_meaning(answer: Any, case: Case) -> str:
    if not isinstance(answer, str) or str(answer) not in SIDES:
        raise Mistake(f"answer one of {SIDES}, got {answer!r:.60}")
    return str(answer)


def _type_text(kind: Any) -> str:
    if isinstance(kind, Mapping):
        if kind.get("logicalType"):
            return str(kind["logicalType"])
        if kind.get("type") == "enum":
            return f"enum {kind.get('name')} {list(kind.get('symbols', []))}"
        if kind.get("type") == "array":
            return f"array of {_type_text(kind.get('items'))}"
    if isinstance(kind, list):
        return "[" + ", ".join(map(_type_text, kind)) + "]"
    return str(kind)


def _field_text(f: Mapping[str, Any]) -> str:
    default = f"default {json.dumps(f['default'])}" if "default" in f else "no default"
    aliases = f", aliases {f['aliases']}" if f.get("aliases") else ""
    return f"{f['name']} ({_type_text(f['type'])}, {default}{aliases})"


def _schema_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """What changes from ``old`` to ``new``, field by field, in words (the case a learner is shown)."""
    said = []
    if (old.get("name"), old.get("namespace")) != (new.get("name"), new.get("namespace")):
        said.append(f"renames the record from {old.get('name')} to {new.get('name')}")
    if old.get("doc") != new.get("doc"):
        said.append("changes the record's doc")
    before = {f["name"]: f for f in old["fields"]}
    after = {f["name"]: f for f in new["fields"]}
    # A rename: the new field has the old name as an alias, or (undoing one) the old field has the new name.
    renamed = {name: g for name in before if name not in after
               for g in after.values() if g["name"] not in before
               and (name in g.get("aliases", []) or g["name"] in before[name].get("aliases", []))}
    for name, f in before.items():
        if name in renamed:
            said.append(f"renames {_field_text(f)} to {_field_text(renamed[name])}")
        elif name not in after:
            said.append(f"removes {_field_text(f)}")
        elif any(f.get(what, "(none)") != after[name].get(what, "(none)") for what in ("type", "default", "aliases")):
            said.append(f"changes {_field_text(f)} to {_field_text(after[name])}")
        elif f.get("doc") != after[name].get("doc"):
            said.append(f"changes the doc of {name}")
    for name, g in after.items():
        if name not in before and g not in renamed.values():
            said.append(f"adds {_field_text(g)}")
    if [f["name"] for f in old["fields"]] != [f["name"] for f in new["fields"]] and not any(
            s.startswith(("adds", "removes", "renames ")) and "record" not in s for s in said):
        said.append("puts the fields in another order")
    return "; ".join(said) or "changes nothing"


def _upgrade_cases() -> Iterator[Case]:
    """Every change of the lesson and its undoing, no change, then generated changes of each kind, both ways."""
    for c in CASES:
        yield Case((load(c.old), load(c.new)), f"from {c.old} to {c.new}", items=None)
        yield Case((load(c.new), load(c.old)), f"from {c.new} to {c.old}", items=None)
    yield Case((load("orders-v1"), load("orders-v1")), "from orders-v1 to orders-v1", items=None)
    rng = random.Random(4707)  # fixed seed: the same cases every run
    extras = [{"name": "quantity", "type": "int", "default": 1}, {"name": "note", "type": "string", "default": ""},
              {"name": "channel", "type": {"type": "enum", "name": "Channel", "symbols": ["web", "store"]}},
              {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []},
              {"name": "coupon", "type": ["null", "string"], "default": None},
              {"name": "weight", "type": "float", "default": 0.5}, {"name": "count", "type": "long"},
              {"name": "blob", "type": "bytes"}]
    for n in range(CHANGES):
        old = load("orders-v1")
        old["fields"] += [copy.deepcopy(f) for f in rng.sample(extras, rng.randint(0, 3))]
        new = copy.deepcopy(old)
        for _ in range(1 if n < CHANGES // 2 else rng.randint(2, 3)):
            _change(new, rng, n)
        yield Case((old, new), "a generated change", items=None)
        yield Case((copy.deepcopy(new), copy.deepcopy(old)), "a generated change, undone", items=None)


#: How many generated changes exercise 4 tries (each also undone): the first half one change each, then several.
CHANGES = 36

_PROMOTIONS = {"int": ["long", "float", "double", "string"], "long": ["float", "double", "int"],
               "float": ["double", "long"], "double": ["string", "float"], "string": ["bytes", "double"],
               "bytes": ["string", "int"]}
_NEW_FIELDS = [("currency", "string", "EUR"), ("quantity", "int", 1), ("gift", "boolean", False),
               ("rate", "double", 1.0), ("coupon", ["null", "string"], None), ("ref", "long", 0)]


def _change(schema: dict[str, Any], rng: random.Random, n: int) -> None:
    """Change ``schema`` in one of the ways a schema changes (the kinds in turn, then at random)."""
    fields = schema["fields"]
    kinds = ["add", "remove", "rename", "alias", "promote", "optional", "default", "reorder", "doc", "enum",
             "record"]
    kind = kinds[n % len(kinds)] if n < len(kinds) * 2 else rng.choice(kinds)
    if kind == "add":
        name, kind_of, default = rng.choice([f for f in _NEW_FIELDS if f[0] not in {g["name"] for g in fields}]
                                            or _NEW_FIELDS[:1])
        field = {"name": name if name not in {g["name"] for g in fields} else name + "_2", "type": kind_of}
        if rng.random() < 0.5:
            field["default"] = default
        fields.insert(rng.randrange(len(fields) + 1), field)
    elif kind == "remove" and len(fields) > 1:
        fields.pop(rng.randrange(len(fields)))
    elif kind in ("rename", "alias"):
        f = rng.choice(fields)
        if kind == "rename":
            old_name, f["name"] = f["name"], f["name"] + "_new"
            if rng.random() < 0.6:
                f["aliases"] = [old_name]
        else:
            f["aliases"] = [f["name"] + "_old"]
    elif kind == "promote":
        plain = [f for f in fields if isinstance(f["type"], str) and f["type"] in _PROMOTIONS]
        f = rng.choice(plain)
        f["type"] = rng.choice(_PROMOTIONS[f["type"]])
        f.pop("default", None)
    elif kind == "optional":
        f = rng.choice([f for f in fields if not isinstance(f["type"], list)])
        f["type"] = ["null", f["type"]]
        if rng.random() < 0.7:
            f["default"] = None
        else:
            f.pop("default", None)
    elif kind == "default":
        f = rng.choice(fields)
        if "default" in f:
            del f["default"]
        elif f["type"] == "string":
            f["default"] = "?"
        elif f["type"] in ("int", "long", "float", "double"):
            f["default"] = 0
        else:
            f["doc"] = "no default for this one"
    elif kind == "reorder":
        rng.shuffle(fields)
    elif kind == "doc":
        schema["doc"] = "version 2"
        rng.choice(fields)["doc"] = "what it means"
    elif kind == "enum":
        enums = [f for f in fields if isinstance(f["type"], Mapping) and f["type"].get("type") == "enum"]
        if enums:
            symbols = enums[0]["type"]["symbols"]
            enums[0]["type"]["symbols"] = [*symbols, f"app{len(symbols)}"]
        else:
            fields.append({"name": "channel", "type": {"type": "enum", "name": "Channel", "symbols": ["web"]},
                           "default": "web"})
    elif kind == "record":
        schema["name"] = "Order"


def _both_ways_missed(got: str, want: str, case: Case) -> bool:
    return want == "either" and got in ("consumers", "producers")


UPGRADE = Exercise(
    solution=_side,
    cases=_upgrade_cases,
    meaning=_side_meaning,
    same=lambda a, b: a == b,
    describe=lambda case: (f"with a new schema that {_schema_change(*case.args)}"
                           + ("" if case.label.startswith("a generated") else f" ({case.label})")),
    show=repr,
    known=(
        Known("the other side: picture the switch half done. While only one side runs the new schema, which "
              "schema reads data written with which?",
              when=lambda got, want, case: {got, want} == {"consumers", "producers"}),
        Known("this change reads both ways, so either side can go first.", when=_both_ways_missed),
        Known("neither order is safe here: whichever side switches first meets data its schema cannot read. "
              "Both sides must switch at once, or the change be made another way.",
              when=lambda got, want, case: want == "neither"),
        Known("only one order is safe here: a change that reads one way need not read the other. Check both "
              "directions.", when=lambda got, want, case: got == "either"),
        Known("you answered neither, but some order is safe here: check each direction on its own.",
              when=lambda got, want, case: got == "neither"),
    ),
)


@checker
def upgrade_first(fn: Callable[[Mapping[str, Any], Mapping[str, Any]], Any]) -> Feedback:
    """Check exercise 4: every change of the lesson, each undone, no change, and generated changes of every kind."""
    UPGRADE.compare(fn)
    return correct("you read both directions from the checker: consumers first when the new schema reads the old "
                   "data (BACKWARD), producers first when the old reads the new (FORWARD), either for both, "
                   "neither when no order is safe.")
