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

Each check runs the learner's function on the lesson's data (order pipe seed 7,
3,000 events, 15 % broken) and on fresh data (other seeds, and payloads made to
tell the typical mistakes apart).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from streamlab import batch
from streamlab.exercises import Feedback, Mistake, checker, correct
from streamlab.orders import OrderEvent, order_pipe, take
from streamlab.registry import CASES, Registry, can_read, load, problems, read_as
from streamlab.schemas import DeadLetter, dead_frame, dirty_payloads, replay, validate

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


def _fix_letters() -> list[tuple[str, list[DeadLetter]]]:
    """A fresh copy of :func:`_letter_sets` (a fix that changes payloads in place cannot spoil the next check)."""
    return copy.deepcopy(_letter_sets())


@functools.lru_cache(maxsize=1)
def _letter_sets() -> list[tuple[str, list[DeadLetter]]]:
    """The dead letters of the lesson's day and of fresh days, plus hand-made ones that tell the mistakes apart."""
    sets = []
    for seed in (LESSON_SEED, *FRESH_SEEDS):
        result = batch.validate_orders(list(_payloads(seed)), source="orders")
        sets.append((f"the dead letters of seed {seed}", result.letters))
    naive = datetime(2026, 3, 1, 9, 30)
    made = [
        _good(amount="twenty"), _good(amount="12.5", coupon="SPRING"), _good(amount=True),
        _good(event_time=naive, arrival_time=naive + timedelta(seconds=1)), _good(discount="10%"),
        _good(amount="7", Coupon="X"), _good(arrival_time=naive.replace(tzinfo=timezone(timedelta(hours=2)))),
        _good(amount=" 30.0 "), [1, 2], None,
    ]
    letters = [validate(p, source="hand-made", position=i) for i, p in enumerate(made)]
    sets.append(("hand-made dead letters", [d for d in letters if isinstance(d, DeadLetter)]))
    return sets


def _outcome(replayed: Any) -> tuple[list[tuple[int, Any]], list[tuple[int, str, str]]]:
    recovered = sorted((e.arrival_time, e.order_id, e.amount, e.event_time) for e in replayed.recovered)
    dead = sorted((d.position, d.field, d.rule) for d in replayed.still_dead)
    return recovered, dead  # type: ignore[return-value]


@checker
def replay_fix(fn: Callable[[Any], Any]) -> Feedback:
    """Check exercise 1: replay every set of dead letters with ``fn`` and with the solution; compare what comes back."""
    fn(_good(amount="1.5"))  # the placeholder says "not yet" at once
    for what, letters in _fix_letters():
        originals = [copy.deepcopy(d.payload) for d in letters]
        try:
            mine = replay(letters, fn)
        except NotImplementedError:
            raise
        except Exception as error:  # replay only catches ValueError, TypeError and KeyError from a fix
            raise Mistake(f"your fix raised {type(error).__name__}: {error} (on {what})") from None
        for d, before in zip(letters, originals, strict=True):
            if json.dumps(d.to_json()["payload"], sort_keys=True) != json.dumps(
                    DeadLetter(before, "", 0, "", "", "", "").to_json()["payload"], sort_keys=True):
                raise Mistake("your fix changed the dead letter's own payload: return a new dict and leave the "
                              "letter as it arrived (it is the record of what was sent)")
        failed = [d for d in mine.still_dead if d.rule == "fix"]
        if failed:
            raise Mistake(f"your fix raised on some payloads ({failed[0].reason}); a payload it cannot repair "
                          "(bytes, a list, None, an amount that is not a number) must come back unchanged")
        expected = replay(letters, solution_fix)
        got_events, got_dead = _outcome(mine)
        want_events, want_dead = _outcome(expected)
        if got_events == want_events and got_dead == want_dead:
            continue
        _explain_fix(fn, letters, what)
        raise Mistake(f"on {what}, your fix brought back {len(mine.recovered)} events where "
                      f"{len(expected.recovered)} can be; look at which kinds of letters stay dead")
    return correct("the replay brings back the amounts sent as text, the times without a zone (as UTC) and the "
                   "records with a coupon, and leaves every other letter dead with its reason.")


def _explain_fix(fn: Callable[[Any], Any], letters: list[DeadLetter], what: str) -> None:
    """Raise the hint for the first kind of payload the learner's fix treats differently from the solution."""
    naive = datetime(2026, 3, 1, 9, 30)
    probes = [
        (_good(amount="12.5"), "an amount sent as text that reads as a number (\"12.5\") must become that number"),
        (_good(amount="twenty"), "an amount that does not read as a number must stay as it was: the letter stays "
                                 "dead, with its reason"),
        (_good(amount=True), "only amounts sent as text are repaired: a bool is not an amount, and float(True) "
                             "would invent one"),
        (_good(event_time=naive), "a time without a zone is taken as UTC: give it the UTC zone without moving "
                                  "the clock (astimezone would assume the machine's own zone)"),
        (_good(arrival_time=naive.replace(tzinfo=timezone(timedelta(hours=2)))),
         "a time with another zone is not a time without a zone: leave it, the rule table says why it is dead"),
        (_good(coupon="SPRING"), "the coupon field is to be dropped (the shop decided nobody reads it)"),
        (_good(discount="10%"), "only coupon was decided: a field nobody knows might matter, so it stays, "
                                "and the letter stays dead"),
    ]
    for payload, hint_text in probes:
        try:
            mine = fn(copy.deepcopy(payload))
        except (ValueError, TypeError, KeyError):
            mine = "raised"
        if json.dumps(DeadLetter(mine, "", 0, "", "", "", "").to_json()["payload"], sort_keys=True) != json.dumps(
                DeadLetter(solution_fix(payload), "", 0, "", "", "", "").to_json()["payload"], sort_keys=True):
            raise Mistake(hint_text)


# -- 2. The validating dataflow --------------------------------------------------------------------

def _run_steps(fn: Callable[[Any], Any], payloads: list[Any]) -> tuple[list[Any], list[Any]]:
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.testing import TestingSink, TestingSource

    from streamlab.exercises.differ import learner_dataflow
    from streamlab.stream.runner import run_flow

    events: list[Any] = []
    dead: list[Any] = []
    flow = Dataflow("exercise_07_validation")
    numbered = op.input("payloads", flow, TestingSource(list(enumerate(payloads)), batch_size=200))
    with learner_dataflow(what="your dataflow"):
        out = fn(numbered)
    if not isinstance(out, tuple) or len(out) != 2:
        raise Mistake("return two streams, as a tuple: the events first, then the dead letters")
    op.output("check_events_out", out[0], TestingSink(events))
    op.output("check_dead_letters_out", out[1], TestingSink(dead))
    with learner_dataflow(what="your dataflow"):
        run_flow(flow)
    return events, dead


@checker
def validating_flow(fn: Callable[[Any], Any]) -> Feedback:
    """Check exercise 2: run the learner's steps in a dataflow on several days of payloads; compare with the pile."""
    days = [("the lesson's payloads", list(_payloads(LESSON_SEED)))]
    days += [(f"payloads of seed {seed}", list(_payloads(seed, 800))) for seed in FRESH_SEEDS]
    days.append(("an empty pipe", []))
    for what, payloads in days:
        events, dead = _run_steps(fn, payloads)
        if len(events) + len(dead) != len(payloads):
            raise Mistake(f"on {what}: {len(payloads)} payloads went in, {len(events)} events and {len(dead)} dead "
                          "letters came out: every payload must leave by exactly one of the two streams")
        if any(isinstance(e, DeadLetter) for e in events) or any(
                isinstance(d, tuple) and len(d) == 2 and isinstance(d[1], OrderEvent) for d in dead):
            raise Mistake("your two streams are the wrong way round, or mixed: the events first, then the dead letters")
        if not all(isinstance(e, tuple) and len(e) == 2 and isinstance(e[1], OrderEvent) for e in events):
            raise Mistake("each item of the events stream must be a pair: the payload's position, and its OrderEvent")
        if not all(isinstance(d, DeadLetter) for d in dead):
            raise Mistake("each item of the dead-letter stream must be the DeadLetter itself (what validate returns)")
        expected = batch.validate_orders(payloads, source="orders")
        if sorted(i for i, _ in events) != expected.events["position"].tolist():
            raise Mistake(f"on {what}, the positions of your events are not the positions of the payloads that "
                          "passed: keep the position that came with each payload")
        got = dead_frame(dead)
        if not got[["position", "field", "rule"]].equals(expected.dead[["position", "field", "rule"]]):
            raise Mistake(f"on {what}, your dead letters do not say where they came from: give validate the "
                          "payload's position (and its source) so that each letter can be found again")
        if got["source"].tolist() != expected.dead["source"].tolist():
            raise Mistake("each dead letter's source should be orders#POSITION (the topic, then the position)")
    return correct("every payload leaves by one branch, the events with their positions and the dead letters with "
                   "their reasons: the same answer as the pile's, in a real dataflow.")


# -- 3. Evolve the schema --------------------------------------------------------------------------

@checker
def evolve_schema(fn: Callable[[], Any]) -> Feedback:
    """Check exercise 3: register the learner's schema after orders-v1 under FULL_TRANSITIVE, then read both ways."""
    schema = fn()
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


# -- 4. Who upgrades first ------------------------------------------------------------------------

SIDES = ("consumers", "producers", "either", "neither")


def _side(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    backward, forward = can_read(new, old), can_read(old, new)
    return {(True, True): "either", (True, False): "consumers", (False, True): "producers"}.get(
        (backward, forward), "neither")


@checker
def upgrade_first(fn: Callable[[Mapping[str, Any], Mapping[str, Any]], Any]) -> Feedback:
    """Check exercise 4: every change of the lesson, each also undone, and no change at all."""
    pairs = [(c.old, c.new) for c in CASES] + [(c.new, c.old) for c in CASES] + [("orders-v1", "orders-v1")]
    for old_name, new_name in pairs:
        old, new = load(old_name), load(new_name)
        answer = fn(copy.deepcopy(old), copy.deepcopy(new))
        expected = _side(old, new)
        if answer not in SIDES:
            raise Mistake(f"answer one of {SIDES}, got {answer!r:.60}")
        if answer == expected:
            continue
        change = f"from {old_name} to {new_name}"
        if {answer, expected} == {"consumers", "producers"}:
            raise Mistake(f"{change}: the other side. Consumers can go first when the new schema reads the old data; "
                          "producers when the old schema reads the new data")
        if expected == "neither":
            raise Mistake(f"{change}: neither order is safe ({problems(new, old)[0]}; and the other way round): "
                          "both sides must switch at once, or the change be made another way")
        if expected == "either":
            raise Mistake(f"{change}: this change reads both ways, so either side can go first")
        raise Mistake(f"{change}: check both directions, the new schema reading old data and the old schema "
                      "reading new data")
    return correct("you read both directions from the checker: consumers first when the new schema reads the old "
                   "data (BACKWARD), producers first when the old reads the new (FORWARD), either for both, "
                   "neither when no order is safe.")
