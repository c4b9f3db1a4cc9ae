"""Seeded fuzzing: 12,000 malformed payloads through both drivers; each processed or dead-lettered with a reason."""

import math
import random
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from streamlab import batch, stream
from streamlab.orders import order_pipe, take
from streamlab.schemas import RULES, DeadLetter, OrderEvent, dirty_payloads, encode, validate

SEED = 2026
ODD_VALUES = [None, True, 0, -1, 10**400, 1e308, math.nan, -math.inf, "", "x" * 200, "a\ud800", b"\x00", [], {},
              {"nested": [1]}, datetime(2026, 1, 1), datetime(1, 1, 1, tzinfo=timezone.utc),
              datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-3))), "2026-01-01", "25", object()]


def mutated_wire(rng, event):
    """A good message, damaged the way wires damage them: flipped bits, lost, extra or replaced bytes."""
    data = bytearray(encode(event))
    for _ in range(rng.randrange(1, 4)):
        how = rng.randrange(5)
        at = rng.randrange(len(data)) if data else 0
        if how == 0 and data:
            data[at] ^= 1 << rng.randrange(8)
        elif how == 1:
            del data[at:at + rng.randrange(1, 8)]
        elif how == 2:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
        elif how == 3 and data:
            data[at] = rng.randrange(256)
        else:
            data[1:5] = rng.choice([1, 2, 3, 2**32 - 1]).to_bytes(4, "big")
    return bytes(data)


def odd_record(rng, event):
    record = {r.field: getattr(event, r.field) for r in RULES}
    for _ in range(rng.randrange(1, 4)):
        name = rng.choice([*record, "coupon", "Kind", 7])
        if rng.random() < 0.2:
            record.pop(name, None)
        else:
            record[name] = rng.choice(ODD_VALUES)
    return record


def payloads(n=12_000):
    rng = random.Random(SEED)
    events = take(order_pipe(seed=SEED), n // 3)
    out = [p for _, p in dirty_payloads(events, seed=SEED, bad=1.0)]
    out += [mutated_wire(rng, e) for e in events]
    out += [odd_record(rng, e) for e in events]
    rng.shuffle(out)
    return out


@pytest.fixture(scope="module")
def fuzz():
    return payloads()


def test_every_payload_is_an_event_or_a_dead_letter_with_a_reason(fuzz):
    assert len(fuzz) >= 10_000
    dead = 0
    for i, payload in enumerate(fuzz):
        result = validate(payload, source="fuzz", position=i)  # raises nothing for bad data
        if isinstance(result, DeadLetter):
            dead += 1
            assert result.rule and result.reason and result.value, result
            assert result.payload is payload
        else:
            assert isinstance(result, OrderEvent)
    assert dead > 0.9 * len(fuzz)


def test_both_drivers_reconcile_and_agree_on_the_fuzz(fuzz):
    b = batch.validate_orders(fuzz, source="fuzz")
    s = stream.validate_orders(fuzz, source="fuzz")
    for result in (b, s):
        assert result.count_in == len(fuzz) == len(result.events) + len(result.letters)
        assert set(result.events["position"]).isdisjoint(d.position for d in result.letters)
        assert all(d.rule and d.reason for d in result.letters)
    pd.testing.assert_frame_equal(b.events, s.events)
    pd.testing.assert_frame_equal(b.dead, s.dead)
    # Every reason a dead letter can have, met at least once.
    assert set(b.dead["rule"]) >= {"framing", "schema_id", "avro", "resolution", "trailing_bytes", "payload_type",
                                   "known_fields", "required", "type", "utf8", "length", "allowed", "finite",
                                   "range", "utc"}
