"""Lesson 07's checks: right answers in several forms are accepted, typical wrong ones get their own hint."""

import copy
import json
from datetime import datetime, timezone

import bytewax.operators as op
import pytest

from streamlab import registry, schemas
from streamlab.exercises import lesson07 as check
from streamlab.orders import OrderEvent

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
def test_right_fixes_are_accepted(fn):
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
def test_wrong_fixes_get_their_own_hint(how, words):
    feedback = check.replay_fix(_variant(**how))
    assert feedback.status == "wrong" and words in feedback.message, feedback


def test_a_fix_that_does_nothing_gets_a_hint_and_a_placeholder_says_not_yet():
    assert check.replay_fix(lambda p: p).status == "wrong"

    def placeholder(payload):
        raise NotImplementedError()

    assert check.replay_fix(placeholder).status == "not yet"


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
def test_right_dataflows_are_accepted(fn):
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
def test_wrong_dataflows_get_their_own_hint(fn, words):
    feedback = check.validating_flow(fn)
    assert feedback.status == "wrong" and words in feedback.message, feedback


def test_the_dataflow_placeholder_says_not_yet():
    def placeholder(numbered):
        raise NotImplementedError()

    assert check.validating_flow(placeholder).status == "not yet"


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
def test_compatible_schemas_are_accepted(schema):
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
def test_incompatible_schemas_get_their_own_hint(schema, words):
    feedback = check.evolve_schema(lambda: copy.deepcopy(schema))
    assert feedback.status == "wrong" and words in feedback.message, feedback


# -- 4. who upgrades first -------------------------------------------------------------------------


def first_by_problems(old, new):
    backward = not registry.problems(new, old)
    forward = not registry.problems(old, new)
    return ["neither", "producers", "consumers", "either"][2 * backward + forward]


@pytest.mark.parametrize("fn", [check._side, first_by_problems])
def test_right_upgrade_orders_are_accepted(fn):
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
def test_wrong_upgrade_orders_get_their_own_hint(fn, words):
    feedback = check.upgrade_first(fn)
    assert feedback.status == "wrong" and words in feedback.message, feedback
