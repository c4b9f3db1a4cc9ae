"""One rule table, two validators, dead letters: every bad payload gets a reason, and nothing is lost."""

import math
import random
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamlab import batch, stream
from streamlab.orders import COURSE_START, OrderEvent, order_pipe, take
from streamlab.registry import Registry, load
from streamlab.schemas import (
    FAULTS,
    MISSING,
    RULES,
    DeadLetter,
    OrderModel,
    Problem,
    WireError,
    dead_letter_log,
    decode,
    default_registry,
    dirty_payloads,
    encode,
    first_failure,
    pandera_schema,
    problems_pandera,
    problems_pydantic,
    publish_dead_letters,
    read_dead_letters,
    records_frame,
    replay,
    rollout,
    rules_frame,
    validate,
)

T = COURSE_START
GOOD = {"order_id": "order-1", "customer": "customer-3", "kind": "placed", "amount": 25.0,
        "event_time": T, "arrival_time": T + timedelta(seconds=2)}


def test_a_good_event_passes_as_a_record_and_on_the_wire():
    expected = OrderEvent(**GOOD)
    assert validate(GOOD) == expected
    assert validate(encode(GOOD)) == expected
    assert validate(encode(expected)) == expected


# What each fault of the dirty data must be dead-lettered for: (field, rule); None: any field.
EXPECTED = {
    "not-avro": ("", None), "truncated": ("", "avro"), "wrong-magic": ("", "framing"),
    "unknown-schema-id": ("", "schema_id"), "unreadable-schema": ("", "resolution"),
    "trailing-bytes": ("", "trailing_bytes"), "nan-amount": ("amount", "finite"),
    "infinite-amount": ("amount", "finite"), "negative-amount": ("amount", "range"),
    "unknown-kind": ("kind", "allowed"), "empty-order-id": ("order_id", "length"),
    "string-amount": ("amount", "type"), "bool-amount": ("amount", "type"),
    "naive-time": ("event_time", "utc"), "other-offset": ("arrival_time", "utc"),
    "string-time": ("event_time", "type"), "missing-field": (None, "required"),
    "none-field": (None, "required"), "unknown-field": ("coupon", "known_fields"),
    "not-a-record": ("", "payload_type"),
}


@pytest.mark.parametrize("fault", [f for f in FAULTS if not f.startswith("good")])
def test_every_fault_is_dead_lettered_with_its_own_reason(fault):
    assert set(EXPECTED) == {f for f in FAULTS if not f.startswith("good")}
    rng = random.Random(7)
    field, rule = EXPECTED[fault]
    for event in take(order_pipe(seed=3), 30):
        payload = FAULTS[fault](dict(GOOD, **{k: getattr(event, k) for k in GOOD}), rng)
        letter = validate(payload, source="orders#5", position=5)
        assert isinstance(letter, DeadLetter), (fault, payload)
        assert letter.payload is payload and letter.source == "orders#5" and letter.position == 5
        if field is not None:
            assert letter.field == field, letter
        if rule is not None:
            assert letter.rule == rule, letter
        assert letter.reason and letter.value
        if letter.field:
            assert letter.reason.startswith(letter.field)


def test_reasons_name_the_field_the_value_and_the_rule():
    letter = validate(dict(GOOD, amount=float("nan")))
    assert (letter.field, letter.value, letter.rule) == ("amount", "nan", "finite")
    assert letter.reason == "amount must be a finite number (not NaN or infinite), got nan"
    letter = validate(dict(GOOD, event_time=datetime(2026, 3, 1)))
    assert letter.reason == "event_time must be timezone-aware UTC, got datetime.datetime(2026, 3, 1, 0, 0)"
    letter = validate({k: v for k, v in GOOD.items() if k != "kind"})
    assert letter.reason == "kind must be present (required, not None), got nothing (the field is missing)"
    letter = validate(dict(GOOD, coupon="X"))
    assert letter.reason.startswith("coupon is not a field of an order event")


def test_a_record_with_several_problems_lists_them_all_in_rule_order():
    letter = validate(dict(GOOD, amount="1", order_id="", zeta=1, alpha=2))
    assert [(p.field, p.rule) for p in letter.problems] == [
        ("order_id", "length"), ("amount", "type"), ("alpha", "known_fields"), ("zeta", "known_fields")]
    assert (letter.field, letter.rule) == ("order_id", "length")


def test_wire_errors_are_value_errors_with_a_rule():
    with pytest.raises(WireError, match="too short") as err:
        decode(b"\x00\x00")
    assert isinstance(err.value, ValueError) and err.value.rule == "framing"
    with pytest.raises(WireError, match="schema id 77 is not in the registry"):
        decode(b"\x00\x00\x00\x00\x4d" + encode(GOOD)[5:])
    # A record read with a newer reader that adds a field with a default: resolution fills it in.
    record = decode(encode(GOOD), reader=load("orders-add-currency-default"))
    assert record["currency"] == "EUR"
    with pytest.raises(WireError, match="cannot be read with the reader's schema") as err:
        decode(encode(GOOD), reader=load("orders-add-currency"))
    assert err.value.rule == "resolution"


def test_odd_payloads_are_dead_lettered_not_raised():
    odd = [None, 3, "text", b"", bytearray(b"\x00"), [GOOD], {1: "x"}, {("a",): 1}, object(), GOOD.keys()]
    for payload in odd:
        assert isinstance(validate(payload), DeadLetter), payload


def test_dead_letters_keep_the_payload_exactly_through_the_topic(tmp_path):
    naive = datetime(2026, 3, 1, 12, 30)
    payloads = [b"\x00\xff\x10", dict(GOOD, amount=float("nan")), dict(GOOD, event_time=naive),
                dict(GOOD, amount=-math.inf, extra=[1, {"a": None}]), {k: v for k, v in GOOD.items() if k != "kind"},
                dict(GOOD, arrival_time=T.astimezone(timezone(timedelta(hours=-5)))), 42, None]
    letters = [validate(p, source=f"shop#{i}", position=i) for i, p in enumerate(payloads)]
    log = dead_letter_log(tmp_path / "dead-letters")
    assert publish_dead_letters(log, letters) == len(letters)
    back = read_dead_letters(log)
    assert [d.position for d in back] == list(range(len(payloads)))
    for original, restored in zip(letters, back):
        assert restored.to_json() == original.to_json()
        again = validate(restored.payload, source=original.source, position=original.position)
        assert again.to_json() == original.to_json()  # the same reason, from the same payload
    assert back[2].payload["event_time"] == naive and back[2].payload["event_time"].tzinfo is None
    assert math.isnan(back[1].payload["amount"])


def test_replay_after_a_fix_recovers_what_the_fix_repairs_and_reconciles():
    payloads = [dict(GOOD, order_id=f"order-{i}", amount=str(10.0 + i)) for i in range(5)]
    payloads += [dict(GOOD, order_id="order-9", kind="refunded")]
    letters = [validate(p, position=i) for i, p in enumerate(payloads)]

    def fix(payload):
        return dict(payload, amount=float(payload["amount"]))

    replayed = replay(letters, fix)
    assert replayed.replayed == 6
    assert [e.amount for e in replayed.recovered] == [10.0, 11.0, 12.0, 13.0, 14.0]
    assert [d.rule for d in replayed.still_dead] == ["allowed"]

    def broken_fix(payload):
        return dict(payload, amount=float("x" + payload["amount"]))

    again = replay(letters, broken_fix)
    assert len(again.recovered) == 0 and {d.rule for d in again.still_dead} == {"fix"}


def test_replay_with_a_registry_that_knows_the_new_schema_recovers_the_messages():
    producer = Registry()
    producer.register("orders-value", load("orders-v1"))
    stale = Registry()  # what the consumer knew before the producer registered version 2
    stale.register("orders-value", load("orders-v1"))
    new_id = producer.register("orders-value", load("orders-add-currency-default"))
    wire = [encode(dict(GOOD, currency="USD"), new_id, producer), encode(GOOD, 1, producer)]
    results = [validate(w, registry=stale, position=i) for i, w in enumerate(wire)]
    assert isinstance(results[0], DeadLetter) and results[0].rule == "schema_id"
    assert isinstance(results[1], OrderEvent)
    replayed = replay([results[0]], registry=producer)
    assert replayed.still_dead == [] and replayed.recovered == [OrderEvent(**GOOD)]


# --------------------------------------------------------------------------- one rule table, two forms

GOOD_VALUES = {
    "str": st.sampled_from(["order-1", "customer-7", "placed", "paid", "shipped", "cancelled"]),
    "float": st.one_of(st.floats(0.01, 1e6), st.integers(1, 1_000_000)),
    "datetime": st.datetimes(timezones=st.just(timezone.utc)),
}
BAD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10), st.integers(10**6 - 1, 10**6 + 2),
    st.sampled_from([0.0, -0.0, 1e6, 1e6 + 0.5, 1e300, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=70), st.sampled_from(["", "x" * 64, "x" * 65]),
    st.sampled_from(["a\ud800", "placed ", "PAID", "25.0", "2026-03-01T00:00:00+00:00"]),
    st.datetimes(), st.datetimes(timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=2)),
                                                             timezone(timedelta(0))])),
    st.binary(max_size=4), st.lists(st.integers(), max_size=2),
)


@st.composite
def records(draw):
    record = {}
    for rule in RULES:
        choice = draw(st.sampled_from(["good", "good", "bad", "missing"]))
        if choice == "missing":
            continue
        record[rule.field] = draw(GOOD_VALUES[rule.type] if choice == "good" else BAD_VALUES)
    for name in draw(st.lists(st.sampled_from(["coupon", "currency", "Amount"]), max_size=2, unique=True)):
        record[name] = draw(BAD_VALUES)
    return record


def _pydantic_problems(record):
    result = problems_pydantic(record)
    return () if isinstance(result, OrderEvent) else result


@settings(max_examples=25)
@given(st.lists(records(), min_size=1, max_size=30))
def test_pydantic_and_pandera_flag_the_same_rows_and_fields(recs):
    by_pandera = problems_pandera(records_frame(recs))
    for row, record in enumerate(recs):
        assert by_pandera.get(row, ()) == _pydantic_problems(record), record


@settings(max_examples=150)
@given(records())
def test_each_field_fails_the_check_the_rule_table_names_first(record):
    problems = {p.field: p.rule for p in _pydantic_problems(record)}
    for rule in RULES:
        assert problems.get(rule.field) == first_failure(rule, record.get(rule.field, MISSING))


def test_both_forms_come_from_the_rule_table():
    assert list(OrderModel.model_fields) == [r.field for r in RULES]
    schema = pandera_schema()
    for rule in RULES:
        assert [c.name for c in schema.columns[rule.field].checks] == list(rule.checks)
    assert [f["name"] for f in load("orders-v1")["fields"]] == [r.field for r in RULES]


def test_a_column_level_failure_is_refused_loudly_not_passed():
    frame = records_frame([GOOD]).drop(columns=["amount"])
    with pytest.raises(ValueError, match="failed as a whole"):
        problems_pandera(frame)


def test_problem_reasons_read_well():
    assert Problem("amount", "'x'", "type").reason == "amount must be a number (int or float), got 'x'"


# --------------------------------------------------------------------------- the two drivers


def _dirty(n, seed, bad=0.3):
    return [p for _, p in dirty_payloads(take(order_pipe(seed=seed), n), seed=seed, bad=bad)]


@settings(max_examples=8)
@given(st.integers(0, 10_000), st.sampled_from([0.0, 0.3, 1.0]), st.integers(0, 120))
def test_batch_equals_stream_on_dirty_data(seed, bad, n):
    payloads = _dirty(n, seed, bad)
    b = batch.validate_orders(payloads, source="orders")
    s = stream.validate_orders(payloads, source="orders")
    pd.testing.assert_frame_equal(b.events, s.events)
    pd.testing.assert_frame_equal(b.dead, s.dead)
    assert [d.problems for d in b.letters] == [d.problems for d in s.letters]
    assert b.count_in == s.count_in == n
    assert len(b.events) + len(b.letters) == n


def test_the_drivers_write_the_dead_letters_to_the_topic(tmp_path):
    payloads = _dirty(200, 4)
    for name, driver in (("batch", batch), ("stream", stream)):
        log = dead_letter_log(tmp_path / name)
        result = driver.validate_orders(payloads, dead_letters=log)
        back = read_dead_letters(log)
        assert [d.to_json() for d in back] == [d.to_json() for d in result.letters]
        assert len(back) > 20


def test_the_events_that_pass_are_the_events_made():
    events = take(order_pipe(seed=5), 300)
    payloads = dirty_payloads(events, seed=5, bad=0.4)
    result = stream.validate_orders([p for _, p in payloads])
    good = [i for i, (fault, _) in enumerate(payloads) if fault.startswith("good")]
    assert result.events["position"].tolist() == good
    assert result.events["order_id"].tolist() == [events[i].order_id for i in good]


def test_the_drivers_refuse_an_unbounded_pipe_and_non_iterables():
    for driver in (batch, stream):
        with pytest.raises(TypeError, match="finite"):
            driver.validate_orders(order_pipe())
        with pytest.raises(TypeError, match="iterable"):
            driver.validate_orders(42)


def test_the_default_registry_has_the_orders_subject():
    registry = default_registry()
    assert registry.latest("orders-value") == load("orders-v1")


@pytest.mark.parametrize("case", ["add a field without a default", "rename a field, old name as alias",
                                  "add a field with a default", "change a type"])
def test_a_rollout_loses_messages_exactly_when_the_wrong_side_upgrades_first(case):
    from streamlab.registry import CASES, compatibility_table

    (c,) = [c for c in CASES if c.name == case]
    table = compatibility_table().loc[case]
    events = take(order_pipe(seed=2), 60)
    for first in ("producers", "consumers"):
        result = rollout(events, c.old, c.new, first)
        assert result["messages"].sum() == 60
        assert result.loc["before", "dead-lettered"] == 0
        halfway = result.loc["halfway", "dead-lettered"]
        # Consumers first: the new reader meets old data (BACKWARD); producers first: old readers, new data (FORWARD).
        safe = table["BACKWARD"] if first == "consumers" else table["FORWARD"]
        assert (halfway == 0) == safe, (first, result)
        assert result.loc["after", "dead-lettered"] == 0  # everyone on one schema again


def test_the_rule_table_as_a_frame():
    frame = rules_frame()
    assert list(frame.index) == [r.field for r in RULES]
    assert frame.loc["amount", "checks, in order"] == "required, type, finite, range"
