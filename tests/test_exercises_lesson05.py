"""Lesson 05 exercises: each check accepts correct variants and names the typical mistakes."""

import math
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from haversine import Unit, haversine

from streamlab import COURSE_START, batch, stream
from streamlab.exercises import lesson05
from streamlab.fraud import TRAVEL, Alert, Rules, Score, agree_alerts, distance_km
from streamlab.purchases import adversarial_trace, purchases_frame
from test_exercises_hints import solution_lines


DIFFERS = "Here is an input where your answer differs"


SOLUTION = solution_lines("lesson05")


def feedback_says(feedback, hint):
    """Refused with this hint (or a counterexample), and the message holds no line of the solution."""
    return (feedback.status == "wrong" and hint in feedback.message
            and not any(line in feedback.message for line in SOLUTION))


# -- exercise 1: how fast between two swipes? ------------------------------------------------------

def speed_from(km, *, clock="event_time", seconds_of=lambda gap: abs(gap).total_seconds(), same_second=None):
    """A learner's speed_kmh: ``km(first, second)`` over the time between the swipes, in km/h."""

    def speed_kmh(first, second):
        d = km(first, second)
        seconds = seconds_of(getattr(second, clock) - getattr(first, clock))
        if seconds == 0 and same_second is not None:
            return same_second(d)
        if seconds == 0:
            return math.inf if d > 0 else 0.0
        return d / (seconds / 3600)

    return speed_kmh


def great_circle(a, b):
    return distance_km(a.lat, a.lon, b.lat, b.lon)


def by_hand(a, b, radians=True, radius=6371.0):
    """The haversine formula, written out."""
    to = math.radians if radians else (lambda x: x)
    lat1, lon1, lat2, lon2 = to(a.lat), to(a.lon), to(b.lat), to(b.lon)
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * radius * math.asin(math.sqrt(h))


def flat(a, b, wrap=False):
    """A flat map (equirectangular): fine over a few kilometres, wrong far away and, unwrapped, across ±180°."""
    dlon = b.lon - a.lon
    if wrap:
        dlon = (dlon + 180) % 360 - 180
    x = math.radians(dlon) * math.cos(math.radians((a.lat + b.lat) / 2))
    return 6371.0 * math.hypot(x, math.radians(b.lat - a.lat))


def numpy_speed(first, second):
    km = np.float64(great_circle(first, second))
    if km == 0:
        return 0.0
    hours = abs(pd.Timestamp(second.event_time) - pd.Timestamp(first.event_time)) / pd.Timedelta(hours=1)
    return km / np.float64(hours)  # numpy: km / 0.0 is inf (with a warning), not an error


@pytest.mark.parametrize(
    "variant",
    [
        speed_from(great_circle),
        speed_from(lambda a, b: haversine((a.lat, a.lon), (b.lat, b.lon))),
        speed_from(by_hand),
        speed_from(lambda a, b: by_hand(a, b, radius=6378.137)),
        numpy_speed,
        lambda a, b: round(speed_from(great_circle)(a, b), 1),
    ],
)
def test_swipe_speed_accepts_correct_variants(variant):
    assert lesson05.swipe_speed(variant).ok


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (speed_from(lambda a, b: haversine((a.lat, a.lon), (b.lat, b.lon), unit=Unit.MILES)), "miles per hour"),
        (speed_from(lambda a, b: by_hand(a, b, radians=False)), "radians"),
        (speed_from(lambda a, b: 6371 * math.acos(1 + 1e-15 * (a.lat == b.lat))), DIFFERS),  # raises only on one pair: shown the first pair it is wrong on
        (speed_from(great_circle, same_second=lambda d: d / 0), "divided by zero"),
        (speed_from(great_circle, seconds_of=lambda gap: gap.total_seconds()), "negative"),
        (speed_from(great_circle, clock="arrival_time"), "arrival_time"),
        (speed_from(great_circle, seconds_of=lambda gap: gap.seconds), "timedelta.seconds"),
        (lambda a, b: speed_from(great_circle)(a, b) / 3.6, "metres per second"),
        (lambda a, b: great_circle(a, b), "that is the distance between the swipes"),
        (speed_from(great_circle, same_second=lambda d: 0.0), "the most impossible travel of all"),
        (speed_from(great_circle, same_second=lambda d: math.inf), "no travel at all"),
        (speed_from(flat), DIFFERS),
        (speed_from(lambda a, b: flat(a, b, wrap=True)), DIFFERS),
        (lambda a, b: abs(b.event_time - a.event_time), "not a duration"),
        (lambda a, b: (speed_from(great_circle)(a, b), True), "one number"),
        (lambda a, b: speed_from(great_circle)(a, b) * 1.1, DIFFERS),
    ],
)
def test_swipe_speed_rejects_typical_mistakes_with_the_right_hint(wrong, hint):
    feedback = lesson05.swipe_speed(wrong)
    assert feedback_says(feedback, hint), feedback


def test_swipe_speed_pairs_hold_the_hard_cases():
    pairs = lesson05._pairs()
    assert any(p.crosses_antimeridian and great_circle(p.first, p.second) < 50 for p in pairs)
    assert any(p.same_second and p.same_place for p in pairs)
    assert any(p.same_second and not p.same_place for p in pairs)
    assert any(p.first.event_time > p.second.event_time for p in pairs)  # given later swipe first
    # New York to Paris in 20 minutes: 5,837 km in a third of an hour.
    assert lesson05._speed(pairs[0]) == pytest.approx(great_circle(pairs[0].first, pairs[0].second) * 3)


def mixed_clocks(first, second):
    """The first swipe's event time, the second's arrival time."""
    seconds = abs(second.arrival_time - first.event_time).total_seconds()
    d = great_circle(first, second)
    return (math.inf if d > 0 else 0.0) if seconds == 0 else d / (seconds / 3600)


@pytest.mark.parametrize("wrong, hint", [
    (speed_from(great_circle, seconds_of=lambda gap: abs(gap).total_seconds() * 60), "km per minute"),
    (speed_from(great_circle, same_second=lambda d: float("nan")), "the most impossible travel of all"),
    (speed_from(great_circle, seconds_of=lambda gap: round(abs(gap).total_seconds() / 60) * 60), DIFFERS),
    (speed_from(lambda a, b: distance_km(a.lon, a.lat, b.lon, b.lat)), DIFFERS),  # latitude and longitude swapped
    (mixed_clocks, DIFFERS),
])
def test_swipe_speed_refuses_more_wrong_answers(wrong, hint):
    feedback = lesson05.swipe_speed(wrong)
    assert feedback_says(feedback, hint), feedback
    assert "it should be" in feedback.message


# -- exercise 2: precision and recall --------------------------------------------------------------

def precision_recall(alerts, truth):
    flagged, fraud = set(alerts["purchase_id"]), set(truth)
    hits = len(flagged & fraud)
    return (hits / len(flagged) if flagged else math.nan, hits / len(fraud) if fraud else math.nan)


def with_pandas(alerts, truth):
    flagged = alerts["purchase_id"].drop_duplicates()
    hits = flagged.isin(list(truth)).sum()
    return {"precision": hits / len(flagged) if len(flagged) else 0.0, "recall": hits / len(truth) if truth else 0.0}


def as_score(alerts, truth):
    flagged, fraud = set(alerts["purchase_id"]), set(truth)
    return Score(len(flagged & fraud), len(flagged - fraud), len(fraud - flagged))


def counted_in_alerts(alerts, truth, both=True):
    hits = alerts["purchase_id"].isin(list(truth)).sum()
    precision = hits / len(alerts) if len(alerts) else math.nan
    recall = (hits if both else len(set(alerts["purchase_id"]) & set(truth))) / len(truth) if truth else math.nan
    return precision, recall


def with_partners(alerts, truth):
    flagged, fraud = set(alerts["purchase_id"]) | set(alerts["partner_id"].dropna()), set(truth)
    hits = len(flagged & fraud)
    return (hits / len(flagged) if flagged else math.nan, hits / len(fraud) if fraud else math.nan)


def unguarded(alerts, truth, guard_flagged=False):
    flagged, fraud = set(alerts["purchase_id"]), set(truth)
    hits = len(flagged & fraud)
    precision = (hits / len(flagged) if flagged else math.nan) if guard_flagged else hits / len(flagged)
    return precision, hits / len(fraud)


@pytest.mark.parametrize(
    "variant",
    [
        precision_recall,
        with_pandas,
        as_score,
        lambda a, t: pd.Series(precision_recall(a, t), index=["precision", "recall"]),
        lambda a, t: [None if math.isnan(x) else round(x, 3) for x in precision_recall(a, t)],
        lambda a, t: np.array(precision_recall(a, t)),
        lambda a, t: pd.Series(precision_recall(a, t), index=["p", "r"]),
    ],
)
def test_precision_recall_accepts_correct_variants(variant):
    assert lesson05.precision_recall(variant).ok


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda a, t: precision_recall(a, t)[::-1], "swapped"),
        (counted_in_alerts, "you counted alerts"),
        (lambda a, t: counted_in_alerts(a, t, both=False), "your recall is right and your precision is not"),
        (with_partners, "partner_id"),
        (lambda a, t: tuple(100 * x for x in precision_recall(a, t)), "percentages"),
        (unguarded, "no alerts at all"),
        (lambda a, t: unguarded(a, t, guard_flagged=True), "a day without fraud"),
        (lambda a, t: precision_recall(a, dict.fromkeys(t.values())), "compare the alerts' purchase_id values with its keys"),
        (lambda a, t: precision_recall(a, t)[0], "you returned one"),
        (lambda a, t: {"p": 1, "r": 1}, "needs the keys"),
        (lambda a, t: (precision_recall(a, t)[1], precision_recall(a, t)[1]), "your recall is right and your precision is not"),
        (lambda a, t: (precision_recall(a, t)[0], 0.5), "your precision is right and your recall is not"),
        (lambda a, t: (0.5, 0.5), DIFFERS),
        (lambda a, t: ("high", "low"), "should be a number"),
    ],
)
def test_precision_recall_rejects_typical_mistakes_with_the_right_hint(wrong, hint):
    feedback = lesson05.precision_recall(wrong)
    assert feedback_says(feedback, hint), feedback


def test_precision_recall_cases_tell_the_mistakes_apart():
    cases = lesson05._scored_cases()
    assert any(c.score()[0] != c.score()[1] for c in cases)  # a swap shows
    assert any(c.alerts["purchase_id"].duplicated().any() for c in cases)  # so does counting alerts
    assert any(c.alerts.empty for c in cases) and any(not c.truth for c in cases)  # 0 / 0, both ways


def undefined_as_one(alerts, truth):
    p, r = precision_recall(alerts, truth)
    return (1.0 if p != p or p == 0.0 and alerts.empty else p), (1.0 if not truth else r)


def both_over_flagged(alerts, truth):
    flagged = set(alerts["purchase_id"])
    hits = len(flagged & set(truth))
    return (hits / len(flagged), hits / len(flagged)) if flagged else (math.nan, math.nan)


def f1_twice(alerts, truth):
    p, r = lesson05_score(alerts, truth)
    f1 = 2 * p * r / (p + r) if p == p and r == r and p + r else math.nan
    return f1, f1


def lesson05_score(alerts, truth):
    flagged, fraud = set(alerts["purchase_id"]), set(truth)
    hits = len(flagged & fraud)
    return (hits / len(flagged) if flagged else math.nan, hits / len(fraud) if fraud else math.nan)


@pytest.mark.parametrize("wrong, hint", [
    (undefined_as_one, "your precision is not"),
    (both_over_flagged, "your precision is right and your recall is not"),
    (f1_twice, DIFFERS),
    (lambda a, t: lesson05_score(a.assign(purchase_id=a["card"]), t), "compare the alerts' purchase_id values"),
    (lambda a, t: (lambda p, r: (p, r * len(t) / (len(t) + 1)))(*lesson05_score(a, t)) if t else (math.nan, math.nan),
     "your precision is right and your recall is not"),
])
def test_precision_recall_refuses_more_wrong_answers(wrong, hint):
    feedback = lesson05.precision_recall(wrong)
    assert feedback_says(feedback, hint), feedback


# -- exercise 3: when could the bank have known? ---------------------------------------------------

def evidence_complete(travel, pile):
    arrived = {p.purchase_id: p.arrival_time for p in pile}
    return pd.Series(
        [max(arrived[a], arrived[b]) for a, b in zip(travel["purchase_id"], travel["partner_id"], strict=True)],
        index=travel.index,
    )


def with_merges(travel, pile):
    arrived = purchases_frame(pile).set_index("purchase_id")["arrival_time"]
    blamed = travel["purchase_id"].map(arrived)
    partner = travel["partner_id"].map(arrived)
    return blamed.where(blamed > partner, partner)


def one_of(travel, pile, pick, column="arrival_time"):
    times = {p.purchase_id: getattr(p, column) for p in pile}
    return [pick(times[a], times[b]) for a, b in zip(travel["purchase_id"], travel["partner_id"], strict=True)]


@pytest.mark.parametrize(
    "variant",
    [
        evidence_complete,
        with_merges,
        lambda t, p: one_of(t, p, max),
        lambda t, p: evidence_complete(t, p).reset_index(drop=True),
        lambda t, p: evidence_complete(t, p).to_frame("complete").assign(note="pair"),
        lambda t, p: evidence_complete(t, p).dt.tz_convert("Pacific/Auckland"),
        lambda t, p: evidence_complete(t, p).iloc[::-1],
    ],
)
def test_evidence_complete_accepts_correct_variants(variant):
    assert lesson05.evidence_complete(variant).ok


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda t, p: one_of(t, p, max, column="event_time"), "you used event_time"),
        (lambda t, p: t["event_time"], "you used event_time"),
        (lambda t, p: t["alert_time"], "you returned alert_time"),
        (lambda t, p: one_of(t, p, min), "earlier of the two arrivals"),
        (lambda t, p: one_of(t, p, lambda a, b: a), "arrival of the blamed swipe"),
        (lambda t, p: one_of(t, p, lambda a, b: b), "arrival of the partner swipe"),
        (lambda t, p: evidence_complete(t, p).dt.tz_localize(None), "naive"),
        (lambda t, p: t["alert_time"] - evidence_complete(t, p), "not a wait"),
        (lambda t, p: evidence_complete(t, p).drop_duplicates(), "one time per alert"),
        (lambda t, p: evidence_complete(t, p).max(), "got Timestamp"),
        (lambda t, p: t["partner_id"].map({x.purchase_id: x.arrival_time for x in p[:5]}), "missing (NaT or None)"),
        (lambda t, p: evidence_complete(t, p) + timedelta(seconds=1), DIFFERS),
    ],
)
def test_evidence_complete_rejects_typical_mistakes_with_the_right_hint(wrong, hint):
    feedback = lesson05.evidence_complete(wrong)
    assert feedback_says(feedback, hint), feedback


def test_evidence_complete_cases_hold_pairs_out_of_order_both_ways():
    for case in lesson05._travel_cases():
        answer = case.model("max")
        assert len(answer) > 0
        assert (answer == case.model("blamed")).any() and (answer != case.model("blamed")).any(), case.what


def later_of_alert_and_partner(travel, pile):
    arrived = {p.purchase_id: p.arrival_time for p in pile}
    partner = travel["partner_id"].map(arrived)
    return travel["alert_time"].where(travel["alert_time"] > partner, partner)


@pytest.mark.parametrize("wrong, hint", [
    (lambda t, p: one_of(t, p, lambda a, b: a + (b - a) / 2), DIFFERS),
    (lambda t, p: one_of(t, p, max, column="event_time"), "you used event_time"),
    (later_of_alert_and_partner, "you returned alert_time"),  # an alert never comes before its partner arrived
    (lambda t, p: evidence_complete(t, p).dt.floor("min"), DIFFERS),
    (lambda t, p: sorted(one_of(t, p, max)), DIFFERS),
])
def test_evidence_complete_refuses_more_wrong_answers(wrong, hint):
    feedback = lesson05.evidence_complete(wrong)
    assert feedback_says(feedback, hint), feedback


# -- exercise 4: a new rule, in both drivers -------------------------------------------------------

def alert(swipe, count, window, rule=lesson05.MANY_CITIES, partner=None):
    return Alert(rule, swipe.card, swipe.purchase_id, partner, swipe.amount, swipe.event_time,
                 f"one of {count} or more cities within {window}")


def many_cities(purchase, profile, history, rules, count=lesson05.CITY_COUNT, window=lesson05.CITY_WINDOW):
    """The reference: flag every swipe near the new one that qualifies now and did not before."""
    swipes = [*history.swipes, purchase]

    def cities(swipe, among):
        return {s.city for s in among if abs(s.event_time - swipe.event_time) <= window}

    return [
        alert(s, count, window)
        for s in swipes
        if abs(s.event_time - purchase.event_time) <= window
        and len(cities(s, swipes)) >= count
        and (s is purchase or len(cities(s, history.swipes)) < count)
    ]


def yields_alerts(purchase, profile, history, rules, count=3, window=timedelta(hours=1)):
    """Correct too: another name and detail, every swipe of the history looked at, alerts yielded one by one."""
    def qualifies(swipe, among):
        return len({s.city for s in among if abs(s.event_time - swipe.event_time) <= window}) >= count

    everything = sorted([*history.swipes, purchase], key=lambda s: (s.event_time, s.purchase_id))
    for s in everything:
        if qualifies(s, everything) and (s is purchase or not qualifies(s, history.swipes)):
            yield Alert("roaming", s.card, s.purchase_id, None, s.amount, s.event_time, f"{count}+ cities")


def rule_with(*, retro=True, dedupe=True, both_sides=True, clock="event_time", distinct=True, strict=False,
              more_than=False, rule=lesson05.MANY_CITIES, partner=False):
    """A learner's rule, with one of the typical mistakes."""

    def fn(purchase, profile, history, rules, count=3, window=timedelta(hours=1)):
        swipes = [*history.swipes, purchase]

        def near(a, b):
            gap = getattr(b, clock) - getattr(a, clock)
            inside = abs(gap) < window if strict else abs(gap) <= window
            return inside and (both_sides or gap <= timedelta(0))

        def qualifies(swipe, among):
            close = [s for s in among if near(swipe, s)]
            n = len({s.city for s in close}) if distinct else len(close)
            return n > count if more_than else n >= count

        out = []
        for s in (swipes if retro else [purchase]):
            if not near(s, purchase) and not near(purchase, s):
                continue
            if qualifies(s, swipes) and (not dedupe or s is purchase or not qualifies(s, history.swipes)):
                out.append(alert(s, count, window, rule, purchase.purchase_id if partner else None))
        return out

    return fn


#: What a learner might have in the notebook: the lesson's ground truth.
truth = adversarial_trace().truth


def reads_truth(purchase, profile, history, rules, count=3, window=timedelta(hours=1)):
    return [alert(purchase, count, window)] if purchase.purchase_id in truth else []


def changes_history(purchase, profile, history, rules, count=3, window=timedelta(hours=1)):
    found = many_cities(purchase, profile, history, rules, count, window)
    history.swipes.clear()
    return found


@pytest.mark.parametrize("variant", [many_cities, rule_with(), yields_alerts])
def test_many_cities_accepts_correct_variants(variant):
    assert lesson05.many_cities(variant).ok


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (reads_truth, "reads the ground truth"),
        (rule_with(retro=False, both_sides=False), "differ"),
        (rule_with(retro=False), "flags only the purchase that arrives"),
        (rule_with(dedupe=False), "more than once"),
        (rule_with(distinct=False), "you counted swipes"),
        (rule_with(clock="arrival_time"), "your window is in arrival_time"),
        (rule_with(both_sides=False), "only looked back"),
        (rule_with(strict=True), "exactly `window` apart are within the window"),
        (rule_with(more_than=True), "includes exactly `count`"),
        (rule_with(partner=True), "must describe the swipe flagged"),
        (rule_with(rule=TRAVEL), "their own name"),
        (changes_history, "must not change the card's history"),
        (lambda purchase, profile, history, rules, count=3, window=None: None, "returned None"),
        (lambda purchase, profile, history, rules, count=3, window=None: [(purchase.purchase_id, "roaming")],
         "list of Alert"),
        (lambda purchase, profile, history, rules: [], "keep the parameters count and window"),
        (lambda purchase, profile, history, rules, count=3, window=None: [] if window is None else window - "1 h",
         "an error: TypeError: unsupported operand"),
        (lambda purchase, profile, history, rules, count=3, window=None: [], "raised no alert"),
        (lambda purchase, profile, history, rules, count=3, window=None: 1 / 0, "ZeroDivisionError"),
    ],
)
def test_many_cities_rejects_typical_mistakes_with_the_right_hint(wrong, hint):
    feedback = lesson05.many_cities(wrong)
    assert feedback_says(feedback, hint), feedback


def test_many_cities_not_implemented_is_not_yet():
    def rule(purchase, profile, history, rules, count=3, window=timedelta(hours=1)):
        raise NotImplementedError()

    assert lesson05.many_cities(rule).status == "not yet"


def test_many_cities_batch_by_hand():
    trace = adversarial_trace()
    # Two cities within an hour either side, in event-time order: New York and Paris 20 min apart
    # (t00, t01), London and Tokyo 30 min apart (t08, t09), Suva and Apia 10 min apart (t14, t15),
    # Madrid and Rome at the same second (t10, t11). Suva and Apia 3 hours apart, New York and London
    # 7 hours apart, and the double swipe in one Paris café are not.
    assert lesson05.many_cities_batch(trace.purchases, count=2)["purchase_id"].tolist() == [
        "t00", "t01", "t08", "t09", "t14", "t15", "t10", "t11",
    ]
    assert lesson05.many_cities_batch(trace.purchases).empty  # nobody visits three cities in an hour


def test_the_checks_rule_is_the_batch_rule():
    for case in lesson05._roaming_cases():
        assert case.flags() == set(lesson05.many_cities_batch(case.checked, case.count, case.window)["purchase_id"])


def test_the_roaming_episodes_tell_the_mistakes_apart():
    for case in lesson05._roaming_cases():
        want = case.flags()
        assert any(pid.startswith("r") for pid in want)
        for mistake in ({"distinct": False}, {"clock": "arrival_time"}, {"before_only": True}):
            assert case.flags(**mistake) != want, mistake
    first = lesson05._roaming_cases()[0]
    assert first.flags(strict=True) != first.flags()
    # Nothing in the episodes is too late for the drivers: every crafted swipe is checked.
    assert {p.purchase_id for p in first.day.pile if p.purchase_id.startswith("r")} <= {p.purchase_id for p in first.checked}


def test_the_reference_rule_agrees_in_both_drivers_on_the_lesson_day_with_the_hook():
    bank_day = lesson05._day(lesson05.LESSON_SEED, 8)
    rules = Rules(extra=(many_cities,))
    nightly = batch.detect_fraud(list(bank_day.pile), bank_day.profiles, rules=rules)
    live = stream.detect_fraud(list(bank_day.pile), bank_day.profiles, rules=rules, batch_size=1)
    assert agree_alerts(nightly, live).ok
    checked = purchases_frame(bank_day.pile)
    checked = checked[~checked["purchase_id"].isin(nightly.rejected["purchase_id"])]
    flagged = set(nightly.alerts.loc[nightly.alerts["rule"] == lesson05.MANY_CITIES, "purchase_id"])
    assert flagged == set(lesson05.many_cities_batch(checked)["purchase_id"])


# -- exercise 4: answers written for the check that compares with the solution -----------------------

def completes_a_city(purchase, profile, history, rules, count=3, window=timedelta(hours=1)):
    """Right, said another way: the new purchase brings the last missing city into a swipe's window."""
    out = []
    mine = {s.city for s in history.swipes if abs(s.event_time - purchase.event_time) <= window} | {purchase.city}
    if len(mine) >= count:
        out.append(alert(purchase, count, window))
    for s in history.swipes:
        if abs(s.event_time - purchase.event_time) > window:
            continue
        theirs = {o.city for o in history.swipes if abs(o.event_time - s.event_time) <= window}
        if purchase.city not in theirs and len(theirs) == count - 1:
            out.append(alert(s, count, window))
    return out


def with_numpy(purchase, profile, history, rules, count=3, window=timedelta(hours=1)):
    """Right: numpy arrays of times and cities; alerts of another name, with an empty partner, yielded."""
    swipes = [*history.swipes, purchase]
    t = np.array([s.event_time.timestamp() for s in swipes])
    cities = np.array([s.city for s in swipes])
    old = np.arange(len(swipes)) < len(swipes) - 1
    for i, s in enumerate(swipes):
        near = np.abs(t - t[i]) <= window.total_seconds()
        now = len(np.unique(cities[near])) >= np.int64(count)
        before = i < len(swipes) - 1 and len(np.unique(cities[near & old])) >= count
        if now and not before:
            yield Alert("roaming", s.card, s.purchase_id, "", s.amount, s.event_time, "roaming")


def with_bisect(purchase, profile, history, rules, count=3, window=timedelta(hours=1)):
    """Right: the swipes sorted by time, each window's ends found by bisection, the alerts in reverse order."""
    from bisect import bisect_left, bisect_right

    def cities(swipes, i):
        times = [s.event_time for s in swipes]
        lo = bisect_left(times, swipes[i].event_time - window)
        return {s.city for s in swipes[lo:bisect_right(times, swipes[i].event_time + window)]}

    old = sorted(history.swipes, key=lambda s: s.event_time)
    new = sorted([*old, purchase], key=lambda s: s.event_time)
    flagged = [alert(s, count, window) for i, s in enumerate(new)
               if len(cities(new, i)) >= count and (s is purchase or len(cities(old, old.index(s))) < count)]
    return flagged[::-1]


@pytest.mark.parametrize("variant", [completes_a_city, with_numpy, with_bisect])
def test_many_cities_accepts_correct_variants_written_other_ways(variant):
    feedback = lesson05.many_cities(variant)
    assert feedback.ok, feedback.message


def rule_from(near, cities=lambda among: {s.city for s in among}):
    """A rule of the right shape (both sides, each swipe once) with its own idea of 'near' and of 'cities'."""

    def fn(purchase, profile, history, rules, count=3, window=timedelta(hours=1)):
        swipes = [*history.swipes, purchase]

        def qualifies(s, among):
            return len(cities([o for o in among if near(s, o, window)])) >= count

        return [alert(s, count, window) for s in swipes
                if (near(s, purchase, window) or near(purchase, s, window))
                and qualifies(s, swipes) and (s is purchase or not qualifies(s, history.swipes))]

    return fn


def fixed_count_and_window(purchase, profile, history, rules, count=3, window=timedelta(hours=1)):
    """The notebook's count and window, whatever the arguments say."""
    return many_cities(purchase, profile, history, rules)


def flags_kept_outside():
    """Each swipe flagged once, remembered in a set outside the rule: it lives on from one run to the next."""
    flagged = set()

    def fn(purchase, profile, history, rules, count=3, window=timedelta(hours=1)):
        swipes = [*history.swipes, purchase]
        out = []
        for s in swipes:
            near = {o.city for o in swipes if abs(o.event_time - s.event_time) <= window}
            if len(near) >= count and s.purchase_id not in flagged:
                flagged.add(s.purchase_id)
                out.append(alert(s, count, window))
        return out

    return fn


def around_the_purchase(purchase, profile, history, rules, count=3, window=timedelta(hours=1)):
    """Cities counted around the new purchase only, and every swipe near it flagged with it."""
    near = [s for s in [*history.swipes, purchase] if abs(s.event_time - purchase.event_time) <= window]
    before = [s for s in history.swipes if abs(s.event_time - purchase.event_time) <= window]
    if len({s.city for s in near}) >= count > len({s.city for s in before}):
        return [alert(s, count, window) for s in near]
    return []


def latest_swipes(purchase, profile, history, rules, count=3, window=timedelta(hours=1)):
    """The purchase with the card's last count - 1 swipes, as if they always came in order."""
    recent = [*history.swipes[-(count - 1):], purchase]
    span = max(s.event_time for s in recent) - min(s.event_time for s in recent)
    return [alert(purchase, count, window)] if len({s.city for s in recent}) >= count and span <= window else []


@pytest.mark.parametrize("wrong, hint", [
    # "within": one edge in, the other out.
    (rule_from(lambda s, o, w: -w <= o.event_time - s.event_time < w), DIFFERS),
    # shops counted for cities: two shops in one city are two "cities".
    (rule_from(lambda s, o, w: abs(o.event_time - s.event_time) <= w, lambda among: {o.merchant for o in among}),
     DIFFERS),
    # timedelta.seconds: a swipe before wraps around to nearly a day later.
    (rule_from(lambda s, o, w: (o.event_time - s.event_time).seconds <= w.total_seconds()), DIFFERS),
    # its own city left out of the count.
    (rule_from(lambda s, o, w: abs(o.event_time - s.event_time) <= w and o.city != s.city), DIFFERS),
    (fixed_count_and_window, DIFFERS),
    (flags_kept_outside(), "it keeps something from one call to the next"),
    (around_the_purchase, DIFFERS),
    (latest_swipes, "flags only the purchase that arrives"),
])
def test_many_cities_refuses_more_wrong_answers(wrong, hint):
    feedback = lesson05.many_cities(wrong)
    assert feedback_says(feedback, hint), feedback


def test_many_cities_shows_a_small_case_and_what_each_driver_flags():
    feedback = lesson05.many_cities(rule_with(retro=False, both_sides=False))
    assert "it should be" in feedback.message and "purchases (id, card, shop, amount, happened, arrived)" in feedback.message
    lines = [line for line in feedback.message.splitlines() if line.startswith("  ")]
    assert 1 <= len(lines) <= 5, feedback.message
    assert "flagged by the nightly job" in feedback.message or "flagged in both drivers" in feedback.message
    # A rule that disagrees between the drivers is shown with what each of them flagged.
    feedback = lesson05.many_cities(rule_with(dedupe=False))
    assert "twice" in feedback.message, feedback.message


def roaming_cases(real=None):
    return [case for case, _ in lesson05.ROAMING.solved() if real is None or case.args[4] == real]


def test_the_roaming_cases_hold_the_edges():
    cases = roaming_cases()
    piles = [case.args[0] for case in cases]
    assert [] in piles and any(len(p) == 1 for p in piles)
    assert {case.args[2] for case in cases} == {2, 3, 4}
    assert {case.args[3] for case in cases} >= {timedelta(hours=1), timedelta(minutes=20)}

    def gaps(pile):
        return {abs(a.event_time - b.event_time) for a in pile for b in pile if a.card == b.card and a is not b}

    assert sum(case.args[3] in gaps(case.args[0]) for case in cases) >= 10  # swipes exactly a window apart
    assert sum(timedelta(0) in gaps(case.args[0]) for case in cases) >= 5  # at the same second
    assert sum(any(a.event_time > b.event_time for a, b in zip(p, p[1:]) if a.card == b.card) for p in piles) >= 10
    assert sum(len({p.card for p in pile}) >= 2 for pile in piles) >= 10
    flagged = [lesson05._flag(lesson05._checked(c.args[0], c.args[1]), c.args[2], c.args[3]) for c in cases]
    assert sum(bool(f) for f in flagged) >= 15 and sum(not f for f in flagged) >= 15
    # Exactly count cities within the window flags; one fewer does not.
    by_label = {case.label: f for case, f in zip(cases, flagged)}
    assert by_label["exactly count cities"] and not by_label["one city fewer than count"]
    # Some purchases are routed aside (too late, an unknown card): the rule never sees them.
    from streamlab.fraud import detect_loop

    reasons = {reason for case in cases for _, reason in detect_loop(case.args[0], case.args[1])[1]}
    assert any("too late" in r for r in reasons) and any("unknown card" in r for r in reasons), reasons
    assert len(roaming_cases(real=True)) >= 2


def test_the_checks_answer_is_many_cities_batch_on_every_case():
    for case in roaming_cases():
        pile, profiles, count, window, _ = case.args
        checked = lesson05._checked(pile, profiles)
        found = batch.detect_fraud(list(pile), profiles)
        assert {p.purchase_id for p in checked} == {p.purchase_id for p in pile} - set(found.rejected["purchase_id"])
        want = lesson05.many_cities_batch(checked, count, window)["purchase_id"].tolist() if checked else []
        assert lesson05._flag(checked, count, window) == sorted(want), case.label


@pytest.mark.parametrize("rule", [many_cities, rule_with(retro=False), rule_with(partner=True)])
def test_the_plain_loops_raise_what_the_drivers_raise(rule):
    """The check runs most cases in plain loops: the same alerts as the nightly job and the stream, case by case."""
    for case in roaming_cases(real=False):
        pile, profiles, count, window, _ = case.args
        plugged = lesson05._plugged(rule, count, window)
        loops = lesson05._in_drivers(plugged, pile, profiles, real=False)
        drivers = lesson05._in_drivers(plugged, pile, profiles, real=True)
        assert [sorted(found, key=repr) for found in loops] == [sorted(found, key=repr) for found in drivers], case.label


def test_checks_leave_the_cached_data_alone():
    before = lesson05._scored_cases()[0].alerts.copy()

    def vandal(alerts, truth):
        alerts.drop(alerts.index, inplace=True)
        truth.clear()
        return precision_recall(alerts, truth)

    assert not lesson05.precision_recall(vandal).ok
    pd.testing.assert_frame_equal(lesson05._scored_cases()[0].alerts, before)
    assert lesson05.precision_recall(precision_recall).ok
    assert COURSE_START < lesson05._travel_cases()[0].day.pile[0].arrival_time


# -- exercise 5: the engine's mapper ---------------------------------------------------------------

from streamlab.fraud import CardHistory, check, decide, reject_reason, too_late  # noqa: E402


def mapper_with_decide(history, purchase, card_table):
    history = history if history is not None else CardHistory()
    alerts, _reason = decide(purchase, card_table.get(purchase.card), history)
    return history, alerts


def mapper_in_four_parts(history, purchase, card_table):
    """decide written out: route aside, too late, check, remember."""
    profile = card_table.get(purchase.card)
    if profile is None:
        return None, []  # nothing to remember for an unknown card
    history = history or CardHistory()
    skew = purchase.arrival_time < purchase.event_time
    if reject_reason(purchase.amount, purchase.lat, purchase.lon, known_card=True, clock_skew=skew) is not None:
        return history, []
    if too_late(purchase.event_time, history.newest):
        return history, []
    alerts = check(purchase, profile, history)
    history.remember(purchase, alerts)
    return history, alerts


def mapper_yielding(history, purchase, card_table):
    """Alerts as a tuple, the history created with the rules given."""
    if history is None:
        history = CardHistory(Rules())
    return history, tuple(decide(purchase, card_table.get(purchase.card), history)[0])


@pytest.mark.parametrize("variant", [mapper_with_decide, mapper_in_four_parts, mapper_yielding])
def test_engine_mapper_accepts_correct_variants(variant):
    feedback = lesson05.engine_mapper(variant)
    assert feedback.ok, feedback.message


def one_history_for_all():
    shared = CardHistory()

    def decide_card(history, purchase, card_table):
        alerts, _ = decide(purchase, card_table.get(purchase.card), shared)
        return shared, alerts

    return decide_card


def one_history_kept_aside():
    shared = CardHistory()

    def decide_card(history, purchase, card_table):
        return None, decide(purchase, card_table.get(purchase.card), shared)[0]

    return decide_card


def forgets(history, purchase, card_table):
    return CardHistory(), decide(purchase, card_table.get(purchase.card), CardHistory())[0]


def checks_without_remembering(history, purchase, card_table):
    history = history or CardHistory()
    profile = card_table.get(purchase.card)
    skew = purchase.arrival_time < purchase.event_time
    if profile is None or reject_reason(purchase.amount, purchase.lat, purchase.lon, known_card=True, clock_skew=skew):
        return history, []
    return history, check(purchase, profile, history)


def last_arrival_only(history, purchase, card_table):
    fresh = CardHistory()
    if history is not None:
        fresh.remember(history)
    alerts, reason = decide(purchase, card_table.get(purchase.card), fresh)
    return (purchase if reason is None else history), alerts


def skips_out_of_order(history, purchase, card_table):
    history = history if history is not None else CardHistory()
    if history.newest is not None and purchase.event_time < history.newest:
        return history, []
    return history, decide(purchase, card_table.get(purchase.card), history)[0]


def no_card_table(history, purchase, card_table):
    history = history if history is not None else CardHistory()
    return history, decide(purchase, None, history)[0]


def check_on_unknown_cards(history, purchase, card_table):
    history = history or CardHistory()
    alerts = check(purchase, card_table.get(purchase.card), history)
    history.remember(purchase, alerts)
    return history, alerts


def emits_decide_as_is(history, purchase, card_table):
    history = history if history is not None else CardHistory()
    return history, decide(purchase, card_table.get(purchase.card), history)


def alerts_only(history, purchase, card_table):
    return decide(purchase, card_table.get(purchase.card), history or CardHistory())[0]


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (one_history_for_all(), "every card shares one history"),
        (one_history_kept_aside(), "every card shares one history"),
        (forgets, "the history is not remembered after the check"),
        (checks_without_remembering, "the history is not remembered after the check"),
        (last_arrival_only, "compared only with the one that arrived before it"),
        (skips_out_of_order, "arrival order taken for event order"),
        (no_card_table, "the card table is not used"),
        (check_on_unknown_cards, "instead of check"),
        (emits_decide_as_is, "not (alerts, reason)"),
        (alerts_only, "must return a pair"),
    ],
)
def test_engine_mapper_rejects_typical_mistakes_with_the_right_hint(wrong, hint):
    assert feedback_says(lesson05.engine_mapper(wrong), hint)


def test_engine_mapper_not_implemented_is_not_yet():
    def decide_card(history, purchase, card_table):
        raise NotImplementedError()

    assert lesson05.engine_mapper(decide_card).status == "not yet"


def test_engine_cases_hold_the_edge_cases():
    names = [name for name, _, _ in lesson05._engine_cases()]
    _, edge, profiles = lesson05._engine_cases()[1]
    assert "card-ghost" not in profiles and any(p.card == "card-ghost" for p in edge)
    ooo = [p for p in edge if p.card == "card-ooo"]
    assert ooo[0].event_time > ooo[1].event_time  # the first to arrive happened later
    assert len(names) == 3


# -- exercise 5: wrong answers written for the check that compares with the solution ----------------

def fresh_history_every_time(history, purchase, card_table):
    """A new history for every purchase: the state is handed back but never used."""
    fresh = CardHistory()
    return fresh, decide(purchase, card_table.get(purchase.card), fresh)[0]


def first_alert_only(history, purchase, card_table):
    history = history if history is not None else CardHistory()
    alerts = decide(purchase, card_table.get(purchase.card), history)[0]
    return history, alerts[:1]


def profile_of_another_card():
    """Looks the profile up by the first card it ever saw: right while one card is checked."""
    first = []

    def mapper(history, purchase, card_table):
        first.append(first[0] if first else purchase.card)
        history = history if history is not None else CardHistory()
        return history, decide(purchase, card_table.get(first[0]), history)[0]

    return mapper


def unknown_cards_alerted(history, purchase, card_table):
    """Treats a card with no profile as a card with a default one: it raises alerts the rules never would."""
    history = history if history is not None else CardHistory()
    profile = card_table.get(purchase.card) or next(iter(card_table.values()))
    return history, decide(purchase, profile, history)[0]


def drops_the_history_on_quiet_purchases(history, purchase, card_table):
    history = history if history is not None else CardHistory()
    alerts = decide(purchase, card_table.get(purchase.card), history)[0]
    return (history if alerts else None), alerts


def histories_kept_outside():
    """Each card's history in a dict outside, set up afresh at its first purchase: the state is only a marker."""
    histories = {}

    def mapper(history, purchase, card_table):
        if history is None:
            histories[purchase.card] = CardHistory()
        return purchase.card, decide(purchase, card_table.get(purchase.card), histories[purchase.card])[0]

    return mapper


@pytest.mark.parametrize("wrong, hint", [
    (histories_kept_outside(), "resumed from a snapshot of its state"),
    (fresh_history_every_time, "the history is not remembered after the check"),
    (first_alert_only, DIFFERS),
    (profile_of_another_card(), DIFFERS),
    (unknown_cards_alerted, DIFFERS),
    (drops_the_history_on_quiet_purchases, DIFFERS),
])
def test_engine_mapper_refuses_more_wrong_answers(wrong, hint):
    feedback = lesson05.engine_mapper(wrong)
    assert feedback_says(feedback, hint), feedback


def test_a_mapper_that_writes_into_the_card_table_leaves_the_cases_as_they_were():
    def profiles_every_card(history, purchase, card_table):
        card_table.setdefault(purchase.card, next(iter(card_table.values())))  # writes into the table it is given
        return mapper_with_decide(history, purchase, card_table)

    assert lesson05.engine_mapper(mapper_with_decide).ok
    assert lesson05.engine_mapper(profiles_every_card).status == "wrong"
    assert lesson05.engine_mapper(mapper_with_decide).ok
