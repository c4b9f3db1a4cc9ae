"""The purchase records, the seeded pipe of purchases, its ground truth, and the adversarial trace."""

import itertools
import math
from datetime import datetime, timedelta, timezone

import pytest

from streamlab.events import COURSE_START, bounded
from streamlab.purchases import (
    CITIES,
    PATTERNS,
    CardProfile,
    Purchase,
    adversarial_trace,
    profiles_frame,
    purchases,
    purchases_frame,
)

T = COURSE_START


def test_same_seed_same_purchases_and_profiles_other_seed_other_ones():
    a, b, c = purchases(seed=5), purchases(seed=5), purchases(seed=6)
    assert a.take(500) == b.take(500)
    assert a.profiles == b.profiles
    assert a.take(500) != c.take(500)
    assert a.profiles != c.profiles


def test_the_pipe_is_unbounded_and_arrives_in_order_with_utc_times():
    p = purchases(seed=2, disorder=60)
    pile = p.take(3000)
    assert len(pile) == 3000
    assert all(x.arrival_time <= y.arrival_time for x, y in itertools.pairwise(pile))
    assert all(x.event_time.utcoffset() == timedelta(0) and x.arrival_time.utcoffset() == timedelta(0) for x in pile)
    assert all(timedelta(0) <= x.delay <= timedelta(seconds=60) for x in pile)
    # With a minute of disorder, some purchases arrive after ones that happened later.
    assert any(x.event_time > y.event_time for x, y in itertools.pairwise(pile))
    with pytest.raises(TypeError, match="a pipe has no length"):
        len(p)
    with pytest.raises(TypeError, match="needs a finite pile"):
        purchases_frame(p)
    with pytest.raises(ValueError, match="a pipe never ends"):
        list(bounded(p))  # so no driver can read it without a bound


def test_purchase_ids_are_unique_and_cards_are_in_the_profile_table():
    p = purchases(seed=3)
    pile = p.take(5000)
    assert len({x.purchase_id for x in pile}) == 5000
    assert {x.card for x in pile} <= set(p.profiles)


def test_ground_truth_is_kept_apart_and_covers_exactly_the_cut():
    p = purchases(seed=4, fraud=0.01)
    horizon = T + timedelta(hours=6)
    pile = p.arrived_before(horizon)
    truth = p.truth(until=horizon)
    ids = {x.purchase_id for x in pile}
    assert truth and set(truth) <= ids
    assert set(truth.values()) == set(PATTERNS)
    assert set(p.truth(limit=len(pile))) == set(truth)
    # A purchase carries no label: a detector cannot read the truth by accident.
    assert not {"label", "fraud", "pattern"} & set(Purchase.__slots__)
    with pytest.raises(ValueError, match="a pipe never ends"):
        p.truth()


def test_no_fraud_means_no_ground_truth():
    assert purchases(seed=1, fraud=0.0).truth(limit=5000) == {}


def test_bad_records_are_spoiled_legitimate_purchases():
    p = purchases(seed=9, bad=0.05)
    pile = p.take(4000)
    unknown = [x for x in pile if x.card not in p.profiles]
    no_location = [x for x in pile if x.lat is None]
    nan_amount = [x for x in pile if x.amount is not None and math.isnan(x.amount)]
    negative = [x for x in pile if x.amount is not None and x.amount < 0]
    assert unknown and no_location and nan_amount and negative
    spoiled = {x.purchase_id for x in unknown + no_location + nan_amount + negative}
    assert not spoiled & set(p.truth(limit=4000))


def test_the_rate_sets_how_many_purchases_a_day_brings():
    p = purchases(seed=1, rate=0.1)
    day = p.arrived_before(T + timedelta(days=1))
    assert 8640 * 0.95 < len(day) < 8640 * 1.05


def test_profiles_are_consistent():
    for profile in purchases(seed=1, cards=50).profiles.values():
        home = CITIES[profile.home_city]
        assert (profile.home_lat, profile.home_lon) == (home.lat, home.lon)
        assert 0 < profile.typical_amount < profile.usual_max
    frame = profiles_frame(purchases(seed=1, cards=50).profiles)
    assert len(frame) == 50 and frame["card"].is_unique


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"seed": 1.5}, "seed must be an int, got 1.5"),
        ({"cards": 0}, "cards must be an int >= 1, got 0"),
        ({"rate": 0}, r"rate must be a finite number > 0 \(purchases per second\), got 0"),
        ({"rate": math.inf}, "rate must be a finite number > 0"),
        ({"fraud": 1.5}, "fraud must be a fraction from 0 to 1, got 1.5"),
        ({"travel": -0.1}, "travel must be a fraction from 0 to 1, got -0.1"),
        ({"bad": "some"}, "bad must be a fraction from 0 to 1, got 'some'"),
        ({"disorder": -1}, "disorder must be >= 0, got -1"),
        ({"disorder": math.nan}, "disorder must be a timedelta or seconds, got nan"),
        ({"start": datetime(2026, 3, 1)}, "start must be timezone-aware UTC"),
    ],
)
def test_parameters_are_checked_with_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        purchases(**kwargs)


def test_a_purchase_refuses_wrong_types_and_naive_times_but_carries_broken_values():
    ok = {"purchase_id": "p1", "card": "c", "merchant": "m", "city": "Paris", "lat": 48.9, "lon": 2.4,
          "amount": 5.0, "event_time": T, "arrival_time": T}
    for broken in ({"amount": None}, {"amount": math.nan}, {"amount": -3.0}, {"lat": None, "lon": None}):
        Purchase(**{**ok, **broken})  # carried, to be routed aside by the detectors
    with pytest.raises(TypeError, match="amount must be a number or None, got str '5'"):
        Purchase(**{**ok, "amount": "5"})
    with pytest.raises(TypeError, match="lat must be a number or None, got bool True"):
        Purchase(**{**ok, "lat": True})
    with pytest.raises(ValueError, match="card must be a non-empty string, got ''"):
        Purchase(**{**ok, "card": ""})
    with pytest.raises(ValueError, match="event_time must be timezone-aware UTC"):
        Purchase(**{**ok, "event_time": datetime(2026, 3, 1)})
    with pytest.raises(ValueError, match="arrival_time must be in UTC"):
        Purchase(**{**ok, "arrival_time": datetime(2026, 3, 1, tzinfo=timezone(timedelta(hours=1)))})


def test_a_profile_refuses_nonsense():
    with pytest.raises(ValueError, match="home_lat must be from -90 to 90, got 91"):
        CardProfile("c", "X", 91, 0, 10.0, 40.0)
    with pytest.raises(ValueError, match="typical_amount must be > 0 and <= usual_max"):
        CardProfile("c", "X", 0, 0, 50.0, 40.0)
    with pytest.raises(ValueError, match="usual_max must be a finite number, got nan"):
        CardProfile("c", "X", 0, 0, 50.0, math.nan)


def test_purchases_frame_keeps_missing_values_as_nan_and_times_as_utc():
    t = adversarial_trace()
    frame = purchases_frame(t.purchases)
    assert len(frame) == len(t.purchases)
    assert str(frame["event_time"].dtype) == "datetime64[ns, UTC]"
    assert frame["lat"].isna().sum() == 1 and frame["amount"].isna().sum() == 1


def test_the_adversarial_trace_has_each_case_on_its_own_card():
    t = adversarial_trace()
    assert t.cases["card"].is_unique
    assert set(t.cases["card"]) == {p.card for p in t.purchases}
    assert all(x.arrival_time <= y.arrival_time for x, y in itertools.pairwise(t.purchases))
    frauds_per_card = {}
    for p in t.purchases:
        if p.purchase_id in t.truth:
            frauds_per_card.setdefault(p.card, set()).add(t.truth[p.purchase_id])
    # Each pathology happens on its own card(s), one pattern per card.
    assert all(len(patterns) == 1 for patterns in frauds_per_card.values())
    assert "card-unprofiled" not in t.profiles
