"""Fraud detection in both drivers: the rules, the adversarial trace, batch equals stream, bad input, scoring."""

import dataclasses
import itertools
import math
from datetime import timedelta

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamlab import batch, stream
from streamlab.events import COURSE_START
from streamlab.fraud import (
    AFTERWARDS,
    AMOUNT,
    BAD_LOCATION,
    BURST,
    INFINITE_AMOUNT,
    MISSED,
    MISSING_AMOUNT,
    MISSING_LOCATION,
    NEGATIVE_AMOUNT,
    RULES,
    SKEW,
    STOPPED,
    TOO_LATE,
    TRAVEL,
    UNKNOWN_CARD,
    Alert,
    Detection,
    Detector,
    Rules,
    Score,
    agree_alerts,
    alert_latency,
    detect_loop,
    distance_km,
    money_at_stake,
    nightly_run,
    score,
    score_by_pattern,
)
from streamlab.purchases import (
    CITIES,
    CardProfile,
    Purchase,
    adversarial_trace,
    merchant_location,
    purchases,
)

T = COURSE_START
DRIVERS = {
    "batch": lambda pile, profiles, **kw: batch.detect_fraud(pile, profiles, **kw),
    "stream, one at a time": lambda pile, profiles, **kw: stream.detect_fraud(pile, profiles, batch_size=1, **kw),
    "stream, batches of 4": lambda pile, profiles, **kw: stream.detect_fraud(pile, profiles, batch_size=4, **kw),
}


def swipe(pid, card, city, amount, minutes, delay=2.0, kind="café"):
    lat, lon = merchant_location(CITIES[city], kind)
    happened = T + timedelta(minutes=minutes)
    return Purchase(pid, card, f"{city} {kind}", city, lat, lon, amount, happened, happened + timedelta(seconds=delay))


def profile(card, home, typical=20.0):
    c = CITIES[home]
    return CardProfile(card, home, c.lat, c.lon, typical, typical * 4)


# --- distance ------------------------------------------------------------------------------


def test_new_york_to_paris_is_about_5837_km():
    ny, paris = CITIES["New York"], CITIES["Paris"]
    assert distance_km(ny.lat, ny.lon, paris.lat, paris.lon) == pytest.approx(5837, rel=0.01)


@pytest.mark.parametrize(
    "a, b, km",
    [
        # Known great-circle distances between city centres, within 1 %.
        ("London", "Paris", 344), ("New York", "London", 5570), ("Tokyo", "Sydney", 7820),
        ("Los Angeles", "Tokyo", 8815), ("Suva", "Apia", 1151),
    ],
)
def test_known_city_pairs(a, b, km):
    x, y = CITIES[a], CITIES[b]
    assert distance_km(x.lat, x.lon, y.lat, y.lon) == pytest.approx(km, rel=0.01)


def test_across_the_antimeridian_one_degree_is_111_km_not_359_degrees():
    assert distance_km(0.0, 179.5, 0.0, -179.5) == pytest.approx(math.pi * 6371.0088 / 180)
    suva, apia = CITIES["Suva"], CITIES["Apia"]
    across = distance_km(suva.lat, suva.lon, apia.lat, apia.lon)
    assert across < 1200  # the naive longitude difference is 350 degrees


@given(
    st.floats(-89, 89), st.floats(-180, 180), st.floats(-89, 89), st.floats(-180, 180), st.floats(-360, 360)
)
def test_distance_is_symmetric_and_does_not_change_when_the_globe_turns(lat1, lon1, lat2, lon2, turn):
    d = distance_km(lat1, lon1, lat2, lon2)
    assert d == pytest.approx(distance_km(lat2, lon2, lat1, lon1), abs=1e-9)
    wrap = lambda lon: (lon + turn + 180) % 360 - 180
    assert d == pytest.approx(distance_km(lat1, wrap(lon1), lat2, wrap(lon2)), abs=1e-6)
    assert 0 <= d <= math.pi * 6371.0088 + 1e-6


# --- the adversarial trace -----------------------------------------------------------------

# Written out by hand from the trace's cases: which purchase each rule blames, and its partner.
EXPECTED_ALERTS = {
    (TRAVEL, "t01", "t00"),   # New York, then Paris 20 minutes later
    (BURST, "t03", ""), (BURST, "t04", ""), (BURST, "t05", ""),  # three charges under $2 in four minutes
    (AMOUNT, "t07", ""),      # $2,900 on a card whose usual maximum is about $121
    (TRAVEL, "t09", "t08"),   # London then Tokyo; the London swipe arrives 15 minutes after Tokyo's
    (TRAVEL, "t11", "t10"),   # Madrid and Rome at the same second: Rome is farther from home
    (TRAVEL, "t15", "t14"),   # Suva, then Apia 10 minutes later, across the antimeridian
}
EXPECTED_ASIDE = {
    "t20": UNKNOWN_CARD, "t21": UNKNOWN_CARD, "t23": MISSING_LOCATION, "t24": MISSING_AMOUNT,
    "t25": NEGATIVE_AMOUNT, "t27": TOO_LATE,
}


def alert_keys(detection):
    return {
        (r.rule, r.purchase_id, "" if pd.isna(r.partner_id) else r.partner_id)
        for r in detection.alerts.itertuples()
    }


@pytest.mark.parametrize("driver", DRIVERS)
def test_every_pathology_of_the_trace_is_flagged_and_nothing_else(driver):
    trace = adversarial_trace()
    found = DRIVERS[driver](trace.purchases, trace.profiles)
    assert alert_keys(found) == EXPECTED_ALERTS
    assert found.flagged == set(trace.truth)
    assert dict(zip(found.rejected["purchase_id"], found.rejected["reason"])) == EXPECTED_ASIDE
    assert found.purchases_read == len(trace.purchases) == found.checked + len(EXPECTED_ASIDE)


@pytest.mark.parametrize("driver", DRIVERS)
def test_the_legitimate_fast_trips_and_the_double_swipe_are_not_flagged(driver):
    trace = adversarial_trace()
    found = DRIVERS[driver](trace.purchases, trace.profiles)
    quiet = {"card-flight", "card-dateline-hop", "card-double-swipe", "card-quiet"}
    assert not quiet & set(found.alerts["card"])
    checked = {p.purchase_id for p in trace.purchases if p.card in quiet}
    assert not checked & set(found.rejected["purchase_id"])


def test_the_out_of_order_pair_is_flagged_when_its_late_half_arrives():
    trace = adversarial_trace()
    found = stream.detect_fraud(trace.purchases, trace.profiles, batch_size=1)
    tokyo = found.alerts[found.alerts["purchase_id"] == "t09"].iloc[0]
    london = next(p for p in trace.purchases if p.purchase_id == "t08")
    # Tokyo arrived first with nothing to compare with; the alert comes when London arrives.
    assert tokyo["alert_time"] == london.arrival_time
    assert tokyo["detail"].startswith("9,560 km from London in 30 min")


def test_batch_alerts_are_stamped_when_the_nightly_job_runs():
    trace = adversarial_trace()
    found = batch.detect_fraud(trace.purchases, trace.profiles)
    assert set(found.alerts["alert_time"]) == {pd.Timestamp("2026-03-02 02:00", tz="UTC")}
    later = T + timedelta(days=1, hours=6)
    assert set(batch.detect_fraud(trace.purchases, trace.profiles, job_at=later).alerts["alert_time"]) == {
        pd.Timestamp(later)
    }
    with pytest.raises(ValueError, match="job_at must be at or after the pile's last arrival"):
        batch.detect_fraud(trace.purchases, trace.profiles, job_at=T)


def test_the_plain_loop_finds_what_the_drivers_find():
    trace = adversarial_trace()
    alerts, rejected = detect_loop(trace.purchases, trace.profiles)
    assert {(a.rule, a.purchase_id, a.partner_id or "") for a, _ in alerts} == EXPECTED_ALERTS
    assert {p.purchase_id: reason for p, reason in rejected} == EXPECTED_ASIDE


# --- batch equals stream ---------------------------------------------------------------------


def small_day(seed, disorder):
    # More fraud, trips and broken records than a real day, so that a few hours exercise every path.
    return purchases(seed=seed, cards=80, rate=0.08, fraud=0.03, travel=0.02, bad=0.02, disorder=disorder)


@settings(max_examples=15)
@given(st.integers(0, 10_000), st.sampled_from([0.0, 5.0, 900.0]), st.sampled_from([1, 7, 1000]))
def test_batch_and_stream_raise_identical_alerts_on_random_seeded_days(seed, disorder, batch_size):
    p = small_day(seed, disorder)
    pile = p.take(1200)
    b = batch.detect_fraud(pile, p.profiles)
    s = stream.detect_fraud(pile, p.profiles, batch_size=batch_size)
    agreement = agree_alerts(b, s)
    assert agreement.ok, agreement.message()
    pd.testing.assert_frame_equal(b.alerts.drop(columns="alert_time"), s.alerts.drop(columns="alert_time"))
    pd.testing.assert_frame_equal(b.rejected, s.rejected)
    assert b.purchases_read == s.purchases_read == 1200
    assert len(b.rejected) > 0


@settings(max_examples=10)
@given(st.integers(0, 10_000), st.randoms(use_true_random=False))
def test_alerts_do_not_depend_on_arrival_order(seed, rnd):
    p = small_day(seed, 0.0)
    pile = p.take(800)
    shuffled = pile[:]
    rnd.shuffle(shuffled)
    patient = Rules(delay=timedelta(days=2))  # nothing is too late: every order must agree
    in_order = batch.detect_fraud(pile, p.profiles, rules=patient)
    assert agree_alerts(in_order, stream.detect_fraud(shuffled, p.profiles, rules=patient, batch_size=5)).ok
    assert agree_alerts(in_order, batch.detect_fraud(shuffled, p.profiles, rules=patient)).ok


@settings(max_examples=10)
@given(st.integers(0, 10_000), st.randoms(use_true_random=False))
def test_both_drivers_route_the_same_purchases_aside_as_too_late(seed, rnd):
    p = small_day(seed, 0.0)
    pile = p.take(600)
    # Swap neighbours at random: some purchases now arrive after later ones of their card.
    for i in range(0, len(pile) - 40, 40):
        j = i + rnd.randrange(1, 40)
        pile[i], pile[j] = pile[j], pile[i]
    strict = Rules(delay=timedelta(minutes=1))
    b = batch.detect_fraud(pile, p.profiles, rules=strict)
    s = stream.detect_fraud(pile, p.profiles, rules=strict, batch_size=3)
    assert agree_alerts(b, s).ok
    pd.testing.assert_frame_equal(b.rejected, s.rejected)


def test_a_whole_day_agrees_and_is_scored():
    p = purchases(seed=3, bad=0.002)
    day = T + timedelta(days=1)
    pile = p.arrived_before(day)
    b, s = batch.detect_fraud(pile, p.profiles), stream.detect_fraud(pile, p.profiles)
    assert agree_alerts(b, s).ok
    truth = p.truth(until=day)
    assert score(b, truth) == score(s, truth)
    sb = score(b, truth)
    assert sb.precision > 0.8 and sb.recall > 0.8
    assert b.purchases_read == len(pile) == b.checked + len(b.rejected)


# --- the rules, by hand ---------------------------------------------------------------------


def test_a_plausible_flight_is_never_flagged_on_random_days():
    p = purchases(seed=11, fraud=0.0, travel=0.05)
    pile = p.take(20_000)
    loop_alerts, _ = detect_loop(pile, p.profiles)
    assert not [a for a, _ in loop_alerts if a.rule == TRAVEL]
    assert any(x.city != p.profiles[x.card].home_city for x in pile)  # there were trips


def test_burst_needs_burst_count_small_charges_within_the_window():
    profiles = {"c": profile("c", "Paris")}
    two = [swipe("a", "c", "Paris", 1.0, 0), swipe("b", "c", "Paris", 1.0, 1)]
    spread = two + [swipe("x", "c", "Paris", 1.0, 12)]          # 12 minutes after the first: no burst
    assert detect_loop(two, profiles)[0] == []
    assert detect_loop(spread, profiles)[0] == []
    dense = spread + [swipe("d", "c", "Paris", 0.5, 5)]          # a, b, d within 5 minutes; b, d, x within 11
    found = sorted(a.purchase_id for a, _ in detect_loop(dense, profiles)[0])
    assert found == ["a", "b", "d"]
    big = dense + [swipe("e", "c", "Paris", 2.01, 6)]            # over the small amount: not a test charge
    assert sorted(a.purchase_id for a, _ in detect_loop(big, profiles)[0]) == ["a", "b", "d"]


def test_burst_membership_is_the_same_in_every_arrival_order():
    profiles = {"c": profile("c", "Paris")}
    charges = [swipe(f"s{i}", "c", "Paris", 1.0, m) for i, m in enumerate((0, 3, 7, 18, 19, 30))]
    patient = Rules(delay=timedelta(hours=2))
    orders = list(itertools.permutations(charges))
    assert len(orders) == 720
    for order in orders:
        found = sorted(a.purchase_id for a, _ in detect_loop(order, profiles, patient)[0])
        assert found == ["s0", "s1", "s2"]  # 18 and 19 are only two within ten minutes; 30 is alone


def test_travel_blames_the_swipe_farther_from_home_whichever_came_first():
    profiles = {"c": profile("c", "New York")}
    home, away = swipe("h", "c", "New York", 10.0, 30), swipe("f", "c", "Paris", 10.0, 0)
    for order in ([home, away], [away, home]):
        (alert, _), = detect_loop(order, profiles)[0]
        assert (alert.purchase_id, alert.partner_id) == ("f", "h")


def test_travel_threshold_is_the_speed():
    profiles = {"c": profile("c", "New York")}
    km = distance_km(*merchant_location(CITIES["New York"], "café"), *merchant_location(CITIES["London"], "café"))
    hours = km / RULES.max_speed_kmh
    just_possible = [swipe("a", "c", "New York", 5.0, 0), swipe("b", "c", "London", 5.0, hours * 60 + 1)]
    just_impossible = [swipe("a", "c", "New York", 5.0, 0), swipe("b", "c", "London", 5.0, hours * 60 - 1)]
    assert detect_loop(just_possible, profiles)[0] == []
    assert [a.purchase_id for a, _ in detect_loop(just_impossible, profiles)[0]] == ["b"]


def test_nearby_swipes_are_never_travel_even_at_the_same_second():
    profiles = {"c": profile("c", "Brussels")}
    # Two shops of one city, 8 km apart, at the same second: closer than min_distance_km, not travel.
    same_city = [swipe("a", "c", "Brussels", 5.0, 0, kind="café"), swipe("b", "c", "Brussels", 5.0, 0, kind="bookshop")]
    assert detect_loop(same_city, profiles)[0] == []
    # Brussels and Amsterdam, 175 km apart, at the same second: travel, at infinite speed.
    two_cities = [swipe("a", "c", "Brussels", 5.0, 0), swipe("b", "c", "Amsterdam", 5.0, 0)]
    assert [a.purchase_id for a, _ in detect_loop(two_cities, profiles)[0]] == ["b"]


def test_big_amount_is_relative_to_the_card_usual_maximum():
    profiles = {"c": profile("c", "Paris", typical=20.0)}  # usual maximum $80, threshold $240
    assert detect_loop([swipe("a", "c", "Paris", 240.0, 0)], profiles)[0] == []
    (alert, _), = detect_loop([swipe("a", "c", "Paris", 240.01, 0)], profiles)[0]
    assert alert.rule == AMOUNT and alert.detail == "$240.01 is 3.0× the card's usual maximum $80.00"


def test_history_forgets_what_no_later_purchase_can_need():
    rules = RULES
    detector = Detector({"c": profile("c", "Paris")}, rules)
    for hour in range(24 * 7):
        detector.step(swipe(f"p{hour}", "c", "Paris", 10.0, hour * 60))
    history = detector.histories["c"]
    span = history.swipes[-1].event_time - history.swipes[0].event_time
    assert span <= rules.retention
    assert len(history) <= rules.retention / timedelta(hours=1) + 1
    assert rules.retention == rules.travel_horizon + rules.delay


def test_unknown_cards_get_no_state():
    detector = Detector({"c": profile("c", "Paris")})
    for i in range(100):
        assert detector.step(swipe(f"u{i}", f"stranger-{i}", "Paris", 5.0, i)) == ([], UNKNOWN_CARD)
    assert list(detector.histories) == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_speed_kmh": 0}, "max_speed_kmh must be a finite number > 0, got 0"),
        ({"min_distance_km": -1}, "min_distance_km must be a finite number >= 0, got -1"),
        ({"burst_count": 1}, "burst_count must be an int >= 2, got 1"),
        ({"burst_window": 10}, "burst_window must be a timedelta >= 0, got 10"),
        ({"delay": timedelta(-1)}, "delay must be a timedelta >= 0"),
        ({"amount_factor": math.nan}, "amount_factor must be a finite number > 0, got nan"),
    ],
)
def test_rules_are_checked_with_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Rules(**kwargs)


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"card": "nobody"}, UNKNOWN_CARD),
        ({"amount": None}, MISSING_AMOUNT),
        ({"amount": math.nan}, MISSING_AMOUNT),
        ({"amount": -0.01}, NEGATIVE_AMOUNT),
        ({"amount": math.inf}, INFINITE_AMOUNT),
        ({"lat": None}, MISSING_LOCATION),
        ({"lon": math.nan}, MISSING_LOCATION),
        ({"lat": 95.0}, BAD_LOCATION),
        ({"lon": -181.0}, BAD_LOCATION),
        ({"arrival_time": T - timedelta(seconds=1)}, SKEW),
    ],
)
@pytest.mark.parametrize("driver", DRIVERS)
def test_bad_input_is_routed_aside_with_a_reason_and_counted(driver, change, reason):
    profiles = {"c": profile("c", "Paris")}
    good = swipe("ok", "c", "Paris", 5.0, 0)
    fields = {s: getattr(good, s) for s in Purchase.__slots__}
    bad = Purchase(**{**fields, "purchase_id": "bad", **change})
    after = swipe("after", "c", "Paris", 2900.0, 5)
    found = DRIVERS[driver]([good, bad, after], profiles)
    assert found.rejected["purchase_id"].tolist() == ["bad"]
    assert found.rejected["reason"].tolist() == [reason]
    assert found.purchases_read == 3 and found.checked == 2
    assert found.flagged == {"after"}  # the stream carried on past the bad record


def test_a_detection_whose_counts_do_not_reconcile_is_refused():
    trace = adversarial_trace()
    good = batch.detect_fraud(trace.purchases, trace.profiles)
    with pytest.raises(AssertionError, match="counts do not reconcile"):
        Detection(good.alerts, good.rejected, good.purchases_read + 1, good.checked)


@pytest.mark.parametrize("driver", DRIVERS)
def test_an_empty_pile_gives_no_alerts(driver):
    found = DRIVERS[driver]([], {})
    assert found.alerts.empty and found.rejected.empty and found.purchases_read == 0


def test_both_drivers_cut_a_pipe_the_same_way():
    p = purchases(seed=2)
    horizon = T + timedelta(hours=3)
    b = batch.detect_fraud(p, p.profiles, until=horizon)
    s = stream.detect_fraud(p, p.profiles, until=horizon)
    assert b.purchases_read == s.purchases_read == len(p.arrived_before(horizon))
    assert agree_alerts(b, s).ok
    with pytest.raises(ValueError, match="a pipe never ends"):
        batch.detect_fraud(p, p.profiles)
    with pytest.raises(ValueError, match="a pipe never ends"):
        stream.detect_fraud(p, p.profiles)


# --- scoring, latency, money ------------------------------------------------------------------


def test_score_by_hand():
    s = Score(true_positives=3, false_positives=1, false_negatives=2)
    assert (s.precision, s.recall) == (0.75, 0.6)
    assert math.isnan(Score(0, 0, 0).precision) and math.isnan(Score(0, 0, 0).recall)


def test_score_and_recall_per_pattern_on_the_trace():
    trace = adversarial_trace()
    found = batch.detect_fraud(trace.purchases, trace.profiles)
    assert score(found, trace.truth) == Score(8, 0, 0)
    table = score_by_pattern(found, {**trace.truth, "t28": "big amount"})  # pretend one more fraud, missed
    assert table.loc["big amount"].tolist() == [2, 1, 0.5]
    assert table.loc["impossible travel"].tolist() == [4, 4, 1.0]


def test_latency_stream_is_seconds_batch_is_hours():
    trace = adversarial_trace()
    s = alert_latency(stream.detect_fraud(trace.purchases, trace.profiles, batch_size=1))
    b = alert_latency(batch.detect_fraud(trace.purchases, trace.profiles))
    assert s["t01"] == timedelta(seconds=2)           # Paris: alerted when it arrived
    assert s["t09"] == timedelta(minutes=15)          # Tokyo: alerted when late London arrived
    assert s["t03"] == timedelta(minutes=4, seconds=2)  # the first test charge: when the third arrived
    assert b["t01"] == timedelta(hours=16, minutes=40)  # 09:20 to 02:00 the next day


def test_money_at_stake_by_hand():
    profiles = {"c": profile("c", "Paris")}
    pile = [swipe(f"s{i}", "c", "Paris", 1.0, i) for i in range(4)] + [swipe("big", "c", "Paris", 500.0, 10)]
    truth = {p.purchase_id: "test charges" for p in pile}
    s = money_at_stake(stream.detect_fraud(pile, profiles, batch_size=1), pile, truth)
    # The third charge (minute 2) raises the first alert, as it arrives: the card is blocked from then on.
    assert dict(zip(s["purchase_id"], s["outcome"])) == {
        "s0": AFTERWARDS, "s1": AFTERWARDS, "s2": AFTERWARDS, "s3": STOPPED, "big": STOPPED,
    }
    b = money_at_stake(batch.detect_fraud(pile, profiles), pile, truth)
    assert set(b["outcome"]) == {AFTERWARDS}
    assert money_at_stake(batch.detect_fraud(pile, {}), pile, truth)["outcome"].eq(MISSED).all()


def test_nightly_run_is_two_in_the_morning_after_the_pile_closed():
    assert nightly_run(T + timedelta(hours=5)) == T + timedelta(days=1, hours=2)
    assert nightly_run(T) == T + timedelta(hours=2)


def test_batch_accepts_a_frame_of_purchases_but_not_a_cut_of_one():
    from streamlab.purchases import purchases_frame

    trace = adversarial_trace()
    frame = purchases_frame(trace.purchases)
    from_frame = batch.detect_fraud(frame, trace.profiles)
    assert agree_alerts(from_frame, batch.detect_fraud(trace.purchases, trace.profiles)).ok
    assert dict(zip(from_frame.rejected["purchase_id"], from_frame.rejected["reason"])) == EXPECTED_ASIDE
    with pytest.raises(ValueError, match="already a finite pile"):
        batch.detect_fraud(frame, trace.profiles, limit=3)


# --- extra rules: one function, both drivers ------------------------------------------------


def round_hundreds(purchase, profile, history, rules):
    """An extra rule for the tests: a whole number of hundreds, at least $100 (no history needed)."""
    if purchase.amount >= 100 and purchase.amount % 100 == 0:
        return [Alert("round hundreds", purchase.card, purchase.purchase_id, None, purchase.amount,
                      purchase.event_time, "a whole number of hundreds")]
    return []


def test_extra_rules_are_none_by_default_and_a_list_becomes_a_tuple():
    assert RULES.extra == ()
    rules = Rules(extra=[round_hundreds])
    assert rules.extra == (round_hundreds,)
    assert hash(rules) == hash(Rules(extra=(round_hundreds,)))  # still usable as a cache key
    with pytest.raises(ValueError, match="extra must be a tuple of rule functions, got 'rule'"):
        Rules(extra="rule")
    with pytest.raises(ValueError, match="extra must be a tuple of rule functions"):
        Rules(extra=(round_hundreds, 3))


@pytest.mark.parametrize("driver", DRIVERS)
def test_an_extra_rule_runs_in_every_driver_after_the_built_in_ones(driver):
    profiles = {"c": profile("c", "Paris")}
    pile = [swipe("a", "c", "Paris", 300.0, 0), swipe("b", "c", "Paris", 12.0, 5), swipe("c", "c", "Tokyo", 200.0, 9)]
    found = DRIVERS[driver](pile, profiles, rules=Rules(extra=(round_hundreds,)))
    # Tokyo is blamed twice for impossible travel (paired with each Paris swipe), and both round amounts once.
    assert sorted(zip(found.alerts["rule"], found.alerts["purchase_id"])) == [
        ("big amount", "a"), ("impossible travel", "c"), ("impossible travel", "c"),
        ("round hundreds", "a"), ("round hundreds", "c"),
    ]
    without = DRIVERS[driver](pile, profiles)
    assert set(without.alerts["rule"]) == {"big amount", "impossible travel"}  # the default: no extra rule
    alerts, _ = detect_loop(pile, profiles, Rules(extra=(round_hundreds,)))
    assert sorted(a.purchase_id for a, _ in alerts if a.rule == "round hundreds") == ["a", "c"]


@settings(max_examples=5)
@given(st.integers(0, 10_000))
def test_an_extra_rule_keeps_batch_and_stream_identical(seed):
    p = small_day(seed, 900.0)
    pile = [dataclasses.replace(x, amount=round(x.amount, -2)) if x.amount and x.amount > 60 else x for x in p.take(800)]
    rules = Rules(extra=(round_hundreds,))
    b = batch.detect_fraud(pile, p.profiles, rules=rules)
    s = stream.detect_fraud(pile, p.profiles, rules=rules, batch_size=7)
    assert agree_alerts(b, s).ok
    assert (b.alerts["rule"] == "round hundreds").sum() > 0


def test_an_extra_rule_that_returns_something_else_is_named():
    def sloppy(purchase, profile, history, rules):
        return ["suspicious"]

    trace = adversarial_trace()
    with pytest.raises(TypeError, match="extra rule sloppy must return a list of Alert, got str 'suspicious'"):
        batch.detect_fraud(trace.purchases, trace.profiles, rules=Rules(extra=(sloppy,)))
