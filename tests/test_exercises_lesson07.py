"""Lesson 07's checks: right answers in several forms are accepted, typical wrong ones get their own hint.

Checks 1, 2 and 4 compare with the solution on generated cases: beyond the
first tests of each, answers written as a learner would write them (not the
checks' own models of mistakes) must be accepted when right, and refused when
wrong, with the hint of their own mistake or with a concrete counterexample,
never with another mistake's hint.
"""

import copy
import itertools
import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import bytewax.operators as op
import numpy as np
import pytest

from streamlab import registry, schemas
from streamlab.exercises import lesson07 as check
from streamlab.orders import OrderEvent

from test_exercises_hints import solution_lines

DIFFERS = "Here is an input where your answer differs"
STATE = "called twice with the same input"
SOLUTION = solution_lines("lesson07")


def refused(feedback, hint):
    """Refused with this hint (or a counterexample), and the message holds no line of the solution."""
    assert feedback.status == "wrong", feedback
    assert hint in feedback.message, feedback
    assert not any(line in feedback.message for line in SOLUTION), feedback
    return feedback

# -- 1. the replay fix -----------------------------------------------------------------------------


def fix_by_copy(payload):
    if not isinstance(payload, dict):
        return payload
    out = copy.deepcopy(payload)
    out.pop("coupon", None)
    amount = out.get("amount")
    if type(amount) is str:
        try:
            out["amount"] = float(amount)
        except ValueError:
            pass
    for name in ("event_time", "arrival_time"):
        if isinstance(out.get(name), datetime) and out[name].utcoffset() is None:
            out[name] = out[name].replace(tzinfo=timezone.utc)
    return out


def fix_raising_unchanged(payload):
    # Raising ValueError for what it cannot repair is fine: replay keeps the letter dead... but with a new reason.
    return check.solution_fix(payload)


@pytest.mark.parametrize("fn", [check.solution_fix, fix_by_copy, fix_raising_unchanged])
def test_replay_fix_accepts_right_fixes(fn):
    assert check.replay_fix(fn).ok


def _variant(**how):
    def fix(payload):
        if not isinstance(payload, dict):
            if how.get("raise_on_bytes"):
                raise TypeError("not a dict")
            return payload
        out = payload if how.get("in_place") else dict(payload)
        if how.get("drop_all_unknown"):
            out = {k: v for k, v in out.items() if k in {r.field for r in schemas.RULES}}
        elif not how.get("keep_coupon"):
            out.pop("coupon", None)
        amount = out.get("amount")
        if how.get("float_everything") and not isinstance(amount, float) and amount is not None:
            try:
                out["amount"] = float(amount)
            except (ValueError, TypeError):
                pass
        elif isinstance(amount, str) and not how.get("skip_amounts"):
            try:
                out["amount"] = float(amount)
            except ValueError:
                pass
        for name in ("event_time", "arrival_time"):
            value = out.get(name)
            if isinstance(value, datetime) and not how.get("skip_times"):
                if how.get("overwrite_zones"):
                    out[name] = value.replace(tzinfo=timezone.utc)
                elif value.tzinfo is None:
                    out[name] = value.astimezone(timezone.utc) if how.get("astimezone") else value.replace(
                        tzinfo=timezone.utc)
        return out

    return fix


@pytest.mark.parametrize("how, words", [
    ({"raise_on_bytes": True}, "must come back unchanged"),
    ({"in_place": True}, "changed the dead letter's own payload"),
    ({"drop_all_unknown": True}, "only coupon was decided"),
    ({"keep_coupon": True}, "coupon field is to be dropped"),
    ({"float_everything": True}, "a bool is not an amount"),
    ({"skip_amounts": True}, "must become that number"),
    ({"skip_times": True}, "taken as UTC"),
    ({"overwrite_zones": True}, "another zone"),
])
def test_replay_fix_refuses_wrong_fixes_with_their_own_hint(how, words):
    feedback = check.replay_fix(_variant(**how))
    assert feedback.status == "wrong" and words in feedback.message, feedback


def test_a_fix_that_does_nothing_gets_a_hint_and_a_placeholder_says_not_yet():
    assert check.replay_fix(lambda p: p).status == "wrong"

    def placeholder(payload):
        raise NotImplementedError()

    assert check.replay_fix(placeholder).status == "not yet"


def fix_with_zoneinfo(payload):
    if type(payload) is not dict:
        return payload
    out = payload.copy()
    if "coupon" in out:
        del out["coupon"]
    if type(out.get("amount")) is str:
        try:
            amount = float(out.pop("amount"))  # the amount goes last: the order of the keys does not matter
        except ValueError:
            amount = payload["amount"]
        out["amount"] = amount
    for name in ("arrival_time", "event_time"):
        t = out.get(name)
        if isinstance(t, datetime) and t.tzinfo is None:
            out[name] = t.replace(tzinfo=ZoneInfo("UTC"))
    return out


def fix_integers_as_int(payload):
    if not isinstance(payload, dict):
        return payload
    out = {}
    for key, value in sorted(payload.items(), key=lambda kv: str(kv[0])):
        if key == "coupon":
            continue
        if key == "amount" and isinstance(value, str):
            text = value.strip()
            try:
                value = int(text)  # "7" as 7: the same amount as 7.0
            except ValueError:
                try:
                    value = np.float64(text)
                except ValueError:
                    pass
        elif key in ("event_time", "arrival_time") and isinstance(value, datetime) and value.utcoffset() is None:
            value = value.replace(tzinfo=timezone(timedelta(0)))
        out[key] = value
    return out


def fix_as_in_the_notebook(payload):
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
        if value is not None and getattr(value, "tzinfo", "no time") is None:
            fixed[name] = value.replace(tzinfo=timezone.utc)
    return fixed


@pytest.mark.parametrize("fn", [fix_with_zoneinfo, fix_integers_as_int, fix_as_in_the_notebook])
def test_replay_fix_accepts_fixes_written_another_way(fn):
    assert check.replay_fix(fn).ok


def _fix(payload, amount=None, times=None, keep=lambda key: key != "coupon"):
    """A learner's fix with one decision done another way (``amount``, ``times``, which keys to ``keep``)."""
    if not isinstance(payload, dict):
        return payload
    out = {k: v for k, v in payload.items() if keep(k)}
    if isinstance(out.get("amount"), str):
        out["amount"] = (amount or _float_or_same)(out["amount"])
    for name in ("event_time", "arrival_time"):
        if isinstance(out.get(name), datetime):
            out[name] = (times or _utc_if_naive)(out[name], name)
    return out


def _float_or_same(text):
    try:
        return float(text)
    except ValueError:
        return text


def _int_or_same(text):
    try:
        return int(text)
    except ValueError:
        return text


def _float_or_none(text):
    try:
        return float(text)
    except ValueError:
        return None


def _utc_if_naive(t, name):
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t


def fix_parsing_text_times(payload):
    out = _fix(payload)
    for name in ("event_time", "arrival_time"):
        if isinstance(out, dict) and isinstance(out.get(name), str):
            try:
                t = datetime.fromisoformat(out[name])
                out[name] = t if t.tzinfo else t.replace(tzinfo=timezone.utc)
            except ValueError:
                pass
    return out


def fix_dropping_only_a_coupon_with_a_value(payload):
    out = _fix(payload, keep=lambda key: True)
    if isinstance(out, dict) and out.get("coupon"):
        del out["coupon"]
    return out


_REPAIRED = set()


def fix_repairing_each_order_once(payload):
    # "an order already repaired needs no second repair": remembered between calls
    if isinstance(payload, dict) and isinstance(payload.get("order_id"), str):
        if payload["order_id"] in _REPAIRED:
            return dict(payload)
        _REPAIRED.add(payload["order_id"])
    return _fix(payload)


def fix_dropping_nested_coupons_too(payload):
    def strip(value):
        return {k: strip(v) for k, v in value.items() if k != "coupon"} if isinstance(value, dict) else value

    out = _fix(payload)
    return {k: strip(v) for k, v in out.items()} if isinstance(out, dict) else out


def fix_reading_the_amount_first(payload):
    if isinstance(payload, dict) and isinstance(payload["amount"], str):  # KeyError when it is missing
        pass
    return _fix(payload)


@pytest.mark.parametrize("fn, hint", [
    (lambda p: _fix(p, amount=lambda t: float(t) if t.replace(".", "", 1).isdigit() else t), "must become that number"),
    (lambda p: _fix(p, amount=_int_or_same), "must become that number"),
    (lambda p: _fix(p, amount=_float_or_none), "must stay as it was"),
    (lambda p: _fix(p, keep=lambda key: str(key).lower() != "coupon"), "only coupon was decided"),
    (lambda p: _fix(p, times=lambda t, name: t.replace(tzinfo=timezone.utc) if t.tzinfo is None
                    else t.astimezone(timezone.utc)), "another zone"),
    (lambda p: _fix(p, times=lambda t, name: _utc_if_naive(t, name) if name == "event_time" else t), "taken as UTC"),
    (lambda p: _fix(p, times=lambda t, name: t.replace(tzinfo=ZoneInfo("Europe/London")) if t.tzinfo is None else t),
     "taken as UTC"),
    (fix_parsing_text_times, "a time sent as text"),
    (fix_dropping_only_a_coupon_with_a_value, "coupon field is to be dropped"),
    (fix_repairing_each_order_once, STATE),
    (fix_dropping_nested_coupons_too, "none of the three decisions"),
    (fix_reading_the_amount_first, "must come back unchanged"),
], ids=["isdigit", "int", "bad-text-to-None", "any-case-coupon", "all-zones-to-utc", "event-time-only",
        "london-time", "text-times", "coupon-with-a-value", "state", "nested-coupons", "missing-amount"])
def test_replay_fix_refuses_more_wrong_fixes_with_their_hint_or_a_case(fn, hint):
    _REPAIRED.clear()  # the state a learner's fix keeps, as in a fresh kernel (the test may run several times)
    refused(check.replay_fix(fn), hint)


def test_a_fix_s_counterexample_is_cut_down_to_the_fields_that_differ():
    message = check.replay_fix(_variant(keep_coupon=True)).message
    assert "with the payload {'coupon': 'SPRING'}" in message and "it should be {}" in message, message


# -- 2. the validating dataflow --------------------------------------------------------------------


def steps_branch(numbered):
    checked = op.map("v", numbered, lambda item: (
        item[0], schemas.validate(item[1], source=f"orders#{item[0]}", position=item[0])))
    split = op.branch("b", checked, lambda item: isinstance(item[1], OrderEvent))
    return split.trues, op.map("l", split.falses, lambda item: item[1])


def steps_two_filters(numbered):
    checked = op.map("v", numbered, lambda item: (
        item[0], schemas.validate(item[1], source=f"orders#{item[0]}", position=item[0])))
    events = op.filter("events", checked, lambda item: not isinstance(item[1], schemas.DeadLetter))
    dead = op.filter_map("dead", checked, lambda item: item[1] if isinstance(item[1], schemas.DeadLetter) else None)
    return events, dead


@pytest.mark.parametrize("fn", [steps_branch, steps_two_filters])
def test_validating_flow_accepts_right_dataflows(fn):
    assert check.validating_flow(fn).ok


def steps_dropping_dead(numbered):
    events, _ = steps_branch(numbered)
    return events, op.filter("none", numbered, lambda item: False)


def steps_swapped(numbered):
    events, dead = steps_branch(numbered)
    return dead, events


def steps_no_position(numbered):
    events, dead = steps_branch(numbered)
    return op.map("e", events, lambda item: item[1]), dead


def steps_no_source(numbered):
    checked = op.map("v", numbered, lambda item: (item[0], schemas.validate(item[1])))
    split = op.branch("b", checked, lambda item: isinstance(item[1], OrderEvent))
    return split.trues, op.map("l", split.falses, lambda item: item[1])


def steps_raising(numbered):
    events = op.map("e", numbered, lambda item: (item[0], OrderEvent(**item[1])))
    return events, op.filter("none", numbered, lambda item: False)


def steps_one_stream(numbered):
    return op.map("v", numbered, lambda item: schemas.validate(item[1]))


@pytest.mark.parametrize("fn, words", [
    (steps_dropping_dead, "exactly one of the two streams"),
    (steps_swapped, "wrong way round"),
    (steps_no_position, "must be a pair"),
    (steps_no_source, "where they came from"),
    (steps_raising, "your dataflow stopped"),
    (steps_one_stream, "return two streams"),
])
def test_validating_flow_refuses_wrong_dataflows_with_their_own_hint(fn, words):
    feedback = check.validating_flow(fn)
    assert feedback.status == "wrong" and words in feedback.message, feedback


def test_the_dataflow_placeholder_says_not_yet():
    def placeholder(numbered):
        raise NotImplementedError()

    assert check.validating_flow(placeholder).status == "not yet"


def _validated(numbered, step="validate"):
    return op.map(step, numbered, lambda item: (
        item[0], schemas.validate(item[1], source=f"orders#{item[0]}", position=item[0])))


def _split(checked):
    split = op.branch("split", checked, lambda item: isinstance(item[1], OrderEvent))
    return split.trues, op.map("letter", split.falses, lambda item: item[1])


def steps_two_filter_maps(numbered):
    checked = _validated(numbered)
    events = op.filter_map("events", checked, lambda item: item if isinstance(item[1], OrderEvent) else None)
    dead = op.filter_map("dead", checked, lambda item: None if isinstance(item[1], OrderEvent) else item[1])
    return events, dead


def steps_tagged_flat_map(numbered):
    def tag(item):
        position, payload = item
        result = schemas.validate(payload, source="orders#" + str(position), position=position)
        return [("letter", result)] if isinstance(result, schemas.DeadLetter) else [("event", (position, result))]

    split = op.branch("split", op.flat_map("tag", numbered, tag), lambda t: t[0] == "event")
    return op.map("event", split.trues, lambda t: t[1]), op.map("letter", split.falses, lambda t: t[1])


def steps_counting_in_the_state(numbered):
    # a running count of what went through, kept in the step's own state: resumed from snapshots, it is the same
    keyed = op.key_on("one key", numbered, lambda item: "all")
    counted = op.stateful_map("count", keyed, lambda seen, item: ((seen or 0) + 1, item))
    return _split(_validated(op.map("unkey", counted, lambda kv: kv[1])))


def steps_validating_twice(numbered):
    split = op.branch("split", numbered, lambda item: isinstance(schemas.validate(item[1]), OrderEvent))
    events = op.map("event", split.trues, lambda item: (item[0], schemas.validate(item[1])))
    dead = op.map("letter", split.falses, lambda item: schemas.validate(
        item[1], source=f"orders#{item[0]}", position=item[0]))
    return events, dead


@pytest.mark.parametrize("fn", [steps_two_filter_maps, steps_tagged_flat_map, steps_counting_in_the_state,
                                steps_validating_twice])
def test_validating_flow_accepts_dataflows_written_another_way(fn):
    assert check.validating_flow(fn).ok


def steps_dropping_repeats(numbered):
    # "a payload sent twice is a duplicate": kept out of both streams
    def first_time(seen, item):
        seen = seen or set()
        if repr(item[1]) in seen:
            return seen, None
        return seen | {repr(item[1])}, item

    keyed = op.key_on("one key", numbered, lambda item: "all")
    once = op.filter_map("once", op.stateful_map("dedupe", keyed, first_time), lambda kv: kv[1])
    return _split(_validated(once))


def steps_counting_from_one(numbered):
    return _split(op.map("validate", numbered, lambda item: (
        item[0] + 1, schemas.validate(item[1], source=f"orders#{item[0] + 1}", position=item[0] + 1))))


def steps_topic_as_source(numbered):
    return _split(op.map("validate", numbered, lambda item: (
        item[0], schemas.validate(item[1], source="orders", position=item[0]))))


def steps_numbering_outside_the_state(numbered):
    # numbers the payloads itself, its counter outside the step's state (set up at the first payload)
    counter = {}

    def number(state, item):
        if state is None:
            counter["next"] = 0
        counter["next"] += 1
        return True, (counter["next"] - 1, item[1])

    keyed = op.key_on("one key", numbered, lambda item: "all")
    return _split(_validated(op.map("unkey", op.stateful_map("number", keyed, number), lambda kv: kv[1])))


_POSITIONS = itertools.count()


def steps_numbering_with_a_counter_outside(numbered):
    def number(item):
        position = next(_POSITIONS)
        return position, schemas.validate(item[1], source=f"orders#{position}", position=position)

    return _split(op.map("validate", numbered, number))


def steps_validating_records_only(numbered):
    # bytes are "not ours": dropped
    return _split(_validated(op.filter("records", numbered, lambda item: not isinstance(item[1], bytes))))


def steps_dropping_letters_without_a_field(numbered):
    events, dead = _split(_validated(numbered))
    return events, op.filter("with a field", dead, lambda d: d.field != "")


def steps_letting_zone_letters_through(numbered):
    # a payload that fails only on its time zone is "nearly right": let through as an event
    split = op.branch("split", _validated(numbered),
                      lambda item: isinstance(item[1], OrderEvent) or item[1].rule == "utc")
    return split.trues, op.map("letter", split.falses, lambda item: item[1])


@pytest.mark.parametrize("fn, hint", [
    (steps_dropping_repeats, "exactly one of the two streams"),
    (steps_counting_from_one, "positions of your events"),
    (steps_topic_as_source, "orders#POSITION"),
    (steps_numbering_outside_the_state, "resumed from a snapshot of its state"),
    (steps_numbering_with_a_counter_outside, STATE),
    (steps_validating_records_only, "exactly one of the two streams"),
    (steps_dropping_letters_without_a_field, "exactly one of the two streams"),
    (steps_letting_zone_letters_through, "holds dead letters"),
])
def test_validating_flow_refuses_more_wrong_dataflows_with_their_hint_or_a_case(fn, hint):
    refused(check.validating_flow(fn), hint)


def test_a_dataflow_s_counterexample_shows_the_few_payloads_where_it_differs():
    message = check.validating_flow(steps_dropping_repeats).message
    assert "with these 2 payloads (position: payload)" in message and "1 dead letter(s)" in message, message


# -- 3. the evolved schema -------------------------------------------------------------------------


def v2_with(field, **changes):
    schema = registry.load("orders-v1")
    schema["fields"].append(field)
    schema.update(changes)
    return schema


@pytest.mark.parametrize("schema", [
    v2_with({"name": "channel", "type": "string", "default": "web"}),
    v2_with({"name": "channel", "type": ["null", "string"], "default": None}),
    json.dumps(v2_with({"name": "channel", "type": "string", "default": "store"})),
])
def test_evolve_schema_accepts_compatible_schemas(schema):
    assert check.evolve_schema(lambda: copy.deepcopy(schema)).ok


def _without(name):
    schema = v2_with({"name": "channel", "type": "string", "default": "web"})
    schema["fields"] = [f for f in schema["fields"] if f["name"] != name]
    return schema


@pytest.mark.parametrize("schema, words", [
    (v2_with({"name": "channel", "type": "string"}), "has no default"),
    (v2_with({"name": "channel", "type": "string", "default": None}), "valid Avro schema"),
    (_without("customer"), "'customer' of version 1 is gone"),
    (v2_with({"name": "channel", "type": "string", "default": "web"}, name="Order"), "record's name"),
    (registry.load("orders-v1"), "no field named 'channel'"),
    ("not json", "as a dict"),
    ([1, 2], "Avro record schema"),
])
def test_evolve_schema_refuses_incompatible_schemas_with_their_own_hint(schema, words):
    feedback = check.evolve_schema(lambda: copy.deepcopy(schema))
    assert feedback.status == "wrong" and words in feedback.message, feedback


_V1 = registry.load("orders-v1")


def orders_v2_changing_a_schema_kept_outside():
    _V1["fields"].append({"name": "channel", "type": "string", "default": "web"})
    return _V1


@pytest.mark.parametrize("schema, words", [
    (v2_with({"name": "channel", "type": "int", "default": 0}), "cannot hold a string"),
    (v2_with({"name": "channel", "type": ["null", "long"], "default": None}), "cannot hold a string"),
    (v2_with({"name": "currency", "type": "string", "default": "EUR"}), "no field named 'channel'"),
    (v2_with({"name": "Channel", "type": "string", "default": "web"}), "no field named 'channel'"),
])
def test_evolve_schema_refuses_more_schemas_with_their_own_hint(schema, words):
    feedback = check.evolve_schema(lambda: copy.deepcopy(schema))
    assert feedback.status == "wrong" and words in feedback.message, feedback


def test_a_second_new_field_and_a_schema_changed_at_each_call_are_refused():
    two = v2_with({"name": "channel", "type": "string", "default": "web"})
    two["fields"].append({"name": "currency", "type": "string", "default": "EUR"})
    assert "adds 'currency' too" in check.evolve_schema(lambda: copy.deepcopy(two)).message
    assert "called twice" in check.evolve_schema(orders_v2_changing_a_schema_kept_outside).message


@pytest.mark.parametrize("schema", [
    v2_with({"name": "channel", "type": {"type": "enum", "name": "Channel", "symbols": ["web", "store"]},
             "default": "web"}),
    v2_with({"name": "channel", "type": ["string", "null"], "default": "web"}),
])
def test_evolve_schema_accepts_more_compatible_schemas(schema):
    assert check.evolve_schema(lambda: copy.deepcopy(schema)).ok


# -- 4. who upgrades first -------------------------------------------------------------------------


def first_by_problems(old, new):
    backward = not registry.problems(new, old)
    forward = not registry.problems(old, new)
    return ["neither", "producers", "consumers", "either"][2 * backward + forward]


@pytest.mark.parametrize("fn", [check._side, first_by_problems])
def test_upgrade_first_accepts_right_orders(fn):
    assert check.upgrade_first(fn).ok


def swapped(old, new):
    return {"consumers": "producers", "producers": "consumers"}.get(check._side(old, new), check._side(old, new))


def never_either(old, new):
    side = check._side(old, new)
    return "consumers" if side == "either" else side


def never_neither(old, new):
    side = check._side(old, new)
    return "consumers" if side == "neither" else side


def one_direction(old, new):
    return "consumers" if registry.can_read(new, old) else "producers"


@pytest.mark.parametrize("fn, words", [
    (swapped, "the other side"),
    (never_either, "either side can go first"),
    (never_neither, "neither order is safe"),
    (one_direction, "either side can go first"),
    (lambda old, new: "BACKWARD", "answer one of"),
])
def test_upgrade_first_refuses_wrong_orders_with_their_own_hint(fn, words):
    feedback = check.upgrade_first(fn)
    assert feedback.status == "wrong" and words in feedback.message, feedback


def first_by_registry(old, new):
    answers = []
    for mode in ("BACKWARD", "FORWARD"):
        r = registry.Registry(mode)
        r.register("orders-value", old)
        answers.append(not r.check("orders-value", new))
    return {(True, True): "either", (True, False): "consumers", (False, True): "producers"}.get(
        tuple(answers), "neither")


def first_by_a_table(old, new):
    table = np.array([["neither", "producers"], ["consumers", "either"]])
    return table[int(registry.can_read(new, old)), int(registry.can_read(old, new))]  # a numpy string


def first_full_first(old, new):
    full = registry.Registry("FULL_TRANSITIVE")
    full.register("s", old)
    if not full.check("s", new):
        return "either"
    if registry.can_read(new, old):
        return "consumers"
    return "producers" if registry.can_read(old, new) else "neither"


@pytest.mark.parametrize("fn", [first_by_registry, first_by_a_table, first_full_first])
def test_upgrade_first_accepts_orders_found_another_way(fn):
    assert check.upgrade_first(fn).ok


def by_field_names(old, new):
    before, after = {f["name"] for f in old["fields"]}, {f["name"] for f in new["fields"]}
    if before == after:
        return "either"
    return "consumers" if before < after else "producers" if after < before else "neither"


def same_or_neither(old, new):
    return "either" if json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True) else "neither"


def defaults_decide(old, new):
    # "a new field with a default is safe both ways; without one, producers go first"
    added = [f for f in new["fields"] if f["name"] not in {g["name"] for g in old["fields"]}]
    if not added:
        return "either" if registry.can_read(new, old) and registry.can_read(old, new) else "neither"
    return "either" if all("default" in f for f in added) else "producers"


def forward_registry_means_consumers(old, new):
    r = registry.Registry("FORWARD")
    r.register("s", old)
    forward, backward = not r.check("s", new), registry.can_read(new, old)
    if forward and backward:
        return "either"
    return "consumers" if forward else "producers" if backward else "neither"


_ANSWERS = {}


def cached_by_field_names(old, new):
    key = (tuple(f["name"] for f in old["fields"]), tuple(f["name"] for f in new["fields"]))
    if key not in _ANSWERS:
        _ANSWERS[key] = check._side(old, new)
    return _ANSWERS[key]


def a_type_change_breaks_both(old, new):
    types = {f["name"]: f["type"] for f in old["fields"]}
    if any(f["name"] in types and f["type"] != types[f["name"]] for f in new["fields"]):
        return "neither"
    return check._side(old, new)


@pytest.mark.parametrize("fn, hint", [
    (by_field_names, "either side can go first"),
    (same_or_neither, "some order is safe here"),
    (defaults_decide, "some order is safe here"),
    (forward_registry_means_consumers, "the other side"),
    (cached_by_field_names, "only one order is safe here"),
    (a_type_change_breaks_both, "some order is safe here"),
])
def test_upgrade_first_refuses_more_wrong_orders_with_their_hint_or_a_case(fn, hint):
    _ANSWERS.clear()  # as in a fresh kernel (the test may run several times)
    refused(check.upgrade_first(fn), hint)


def test_generated_changes_hold_every_answer_and_every_kind_of_change():
    solved = check.UPGRADE.solved()
    answers = [answer for _, answer in solved]
    assert {a: answers.count(a) >= 10 for a in check.SIDES} == dict.fromkeys(check.SIDES, True)
    said = " ".join(check._schema_change(*case.args) for case, _ in solved)
    for change in ("adds", "removes", "renames", "changes", "renames the record", "another order", "doc",
                   "enum", "default"):
        assert change in said, change


@pytest.mark.parametrize("check_fn, args", [
    (check.replay_fix, 1), (check.validating_flow, 1), (check.evolve_schema, 0), (check.upgrade_first, 2),
])
def test_every_placeholder_says_not_yet(check_fn, args):
    def placeholder(*given):
        raise NotImplementedError()

    assert check_fn(placeholder).status == "not yet"


@pytest.mark.parametrize("check_fn, fn, hint", [
    (check.validating_flow, lambda numbered: (numbered, None), "return two streams"),
    (check.validating_flow, lambda numbered: [numbered, numbered], "return two streams"),
    (check.validating_flow, lambda numbered: (op.map("a", numbered, str), op.map("a", numbered, str)),
     "building your steps raised ValueError"),
    (check.replay_fix, lambda payload: set(), "for a record, a dict"),
    (check.replay_fix, lambda payload: 1 / 0, "must come back unchanged"),
    (check.upgrade_first, lambda old, new: None, "answer one of"),
    (check.upgrade_first, lambda old, new: old["no such key"], DIFFERS),
])
def test_every_check_refuses_odd_answers_with_a_hint_never_a_crash(check_fn, fn, hint):
    refused(check_fn(fn), hint)


def test_a_step_that_changes_its_payloads_leaves_the_cases_as_they_were():
    def pops_the_coupon(numbered):
        def fix(item):
            position, payload = item
            if isinstance(payload, dict):
                payload.pop("coupon", None)  # in place: the check's own payloads must not change
            return item

        return check._reference_steps(op.map("fix", numbered, fix))

    assert check.validating_flow(check._reference_steps).ok
    check.validating_flow(pops_the_coupon)
    assert check.validating_flow(check._reference_steps).ok
