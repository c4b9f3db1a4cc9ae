"""The EV fleet's messages: seeded, partitioned, ordered per charger, disorder bounded; the rules account for each."""

import json
import random
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from streamlab import ev
from streamlab.events import COURSE_START

HOUR = timedelta(hours=1)


def small(**kw):
    return ev.fleet(**{"seed": 4, "chargers": 60, "sites": 5, "broken": 0.02, "outages": 0.05,
                       "unregistered": 2, **kw})


def test_same_seed_same_messages_other_seed_others():
    a, b = small().pile(until=COURSE_START + HOUR), small().pile(until=COURSE_START + HOUR)
    assert a == b
    assert small(seed=5).pile(until=COURSE_START + HOUR) != a


def test_a_pile_holds_what_arrived_before_the_cut_in_arrival_order():
    pile = small().pile(until=COURSE_START + HOUR)
    arrivals = [m.arrival_time for m in pile]
    assert arrivals == sorted(arrivals) and arrivals[-1] < COURSE_START + HOUR


@pytest.mark.parametrize("disorder", [0.0, 2.0, 30.0])
def test_each_charger_in_order_disorder_bounded_and_between_chargers_only(disorder):
    pile = small(disorder=disorder).pile(until=COURSE_START + HOUR)
    last = {}
    for m in pile:
        assert timedelta(0) <= m.arrival_time - m.event_time <= timedelta(seconds=disorder)
        assert m.event_time >= last.get(m.charger, m.event_time)
        last[m.charger] = m.event_time
    overall = [m.event_time for m in pile]
    assert (overall == sorted(overall)) == (disorder == 0.0)


@pytest.mark.parametrize("partitions", [1, 3, 8])
def test_partitions_split_the_pipe_by_charger_and_together_are_the_whole(partitions):
    f = small()
    until = COURSE_START + HOUR / 2
    parts = [f.pile(until=until, partition=p, partitions=partitions) for p in range(partitions)]
    for p, part in enumerate(parts):
        assert {ev.partition_for(m.charger, partitions) for m in part} <= {p}
    merged = sorted((m for part in parts for m in part), key=lambda m: (m.arrival_time, m.message_id))
    whole = sorted(f.pile(until=until), key=lambda m: (m.arrival_time, m.message_id))
    assert merged == whole


def test_the_hot_site_has_its_share_and_every_site_a_charger():
    f = ev.fleet(seed=1, chargers=3000, sites=100, hot_share=0.2)
    per_site = Counter(f.site_of.values())
    assert per_site["site-000"] == 600 and len(per_site) == 100
    assert max(n for site, n in per_site.items() if site != "site-000") <= 25


def test_broken_messages_come_in_every_kind_the_lesson_names():
    f = ev.fleet(seed=2, chargers=200, sites=10, broken=0.02, unregistered=3)
    rules = ev.Chargers(f.site_of)
    for m in f.pile(until=COURSE_START + HOUR):
        rules.feed(m)
    reasons = Counter(a.reason for a in rules.aside)
    assert {"duplicate", "missing field", "meter went backwards", "unknown charger"} <= set(reasons)
    assert set(reasons) <= set(ev.REASONS)


def test_ocpp_frames_are_json_call_frames():
    for m in small().pile(until=COURSE_START + HOUR / 4)[:300]:
        frame = json.loads(ev.to_ocpp(m))
        assert frame[:3] == [2, m.message_id, m.kind] and frame[3]["timestamp"] == m.event_time.isoformat()


@pytest.mark.parametrize("kwargs, field", [
    ({"chargers": 0}, "chargers"), ({"sites": 0}, "sites"), ({"hot_share": 1.5}, "hot_share"),
    ({"broken": -0.1}, "broken"), ({"meter_interval": 0.5}, "meter_interval"), ({"disorder": -1}, "disorder"),
    ({"start": datetime(2026, 3, 1)}, "start"), ({"seed": "x"}, "seed"), ({"sites": 5, "chargers": 3}, "sites"),
])
def test_bad_parameters_are_named(kwargs, field):
    with pytest.raises((ValueError, TypeError), match=field):
        ev.fleet(**kwargs)


def test_a_fleet_has_no_length_and_a_partition_number_is_checked():
    with pytest.raises(TypeError, match="no length"):
        len(small())
    with pytest.raises(ValueError, match="partition must be"):
        small().partition(3, 3)


def _garbage(rng: random.Random, m: ev.Message):
    field = rng.choice(ev.Message._fields)
    value = rng.choice([None, "", "x", -1, 1.5, True, float("nan"), datetime(2026, 3, 1), b"\x00", [], {},
                        datetime(2026, 3, 1, tzinfo=timezone(timedelta(hours=2)))])
    return m._replace(**{field: value})


def test_rules_never_raise_and_account_for_every_message_on_seeded_garbage():
    # Seeded fuzzing: one field of a message replaced by a value of any type; every message is used or set aside.
    rng = random.Random(0)
    f = small()
    pile = f.pile(until=COURSE_START + HOUR)
    messy = [(_garbage(rng, m) if rng.random() < 0.3 else m) for m in pile]
    messy += [object(), None, "a string"]  # not messages at all
    rules = ev.Chargers(f.site_of)
    for m in messy:
        rules.feed(m)
    assert rules.used + len(rules.aside) == len(messy)
    assert {a.reason for a in rules.aside} <= set(ev.REASONS)


def test_a_retry_is_a_duplicate_and_a_start_without_stop_closes_its_session_as_incomplete():
    t = COURSE_START
    site_of = {"CP-1": "site-000"}

    def msg(n, kind, seconds, **kw):
        return ev.Message(f"CP-1:{n}", "CP-1", kind, t + timedelta(seconds=seconds), t + timedelta(seconds=seconds), **kw)

    rules = ev.Chargers(site_of)
    for m in [msg(1, "StartTransaction", 0, transaction=1, meter_wh=100),
              msg(2, "MeterValues", 15, transaction=1, meter_wh=150, power_w=11000),
              msg(2, "MeterValues", 15, transaction=1, meter_wh=150, power_w=11000),
              msg(3, "MeterValues", 30, transaction=1, meter_wh=120, power_w=11000),
              msg(4, "StartTransaction", 400, transaction=2, meter_wh=150),
              msg(5, "StopTransaction", 460, transaction=2, meter_wh=250)]:
        rules.feed(m)
    assert [a.reason for a in rules.aside] == ["duplicate", "meter went backwards"]
    assert [(s.transaction, s.energy_wh, s.complete) for s in rules.sessions] == [(1, 50, False), (2, 100, True)]
    # The reading set aside still shows the charger was alive at 30 s.
    assert [(s.since, s.until) for s in rules.silences] == [(t + timedelta(seconds=30), t + timedelta(seconds=400))]
    assert rules.load == {("site-000", t): 50, ("site-000", t + timedelta(minutes=7)): 100}
