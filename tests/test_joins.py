"""Joins: the temporal join and the time-bound join give the same answer in both drivers, and the right one."""

from datetime import timedelta

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamlab import batch, stream
from streamlab.events import COURSE_START as T
from streamlab.joins import (
    INITIAL,
    LATE_CHANGE,
    LATE_ITEM,
    NO_CONFIRMATION,
    NO_PROFILE,
    NO_PURCHASE,
    arrival_order,
    joins_differ,
    wrong_versions,
)
from streamlab.purchases import (
    CITIES,
    CardProfile,
    Confirmation,
    ProfileChange,
    Purchase,
    confirmations,
    profile_changes,
    purchases,
)

LAG = timedelta(minutes=10)
DRIVERS = {
    "batch": batch.temporal_join,
    "stream, one at a time": lambda *a, **k: stream.temporal_join(*a, batch_size=1, **k),
    "stream, batched": stream.temporal_join,
}
NAIVE = {
    "batch": batch.latest_profile_join,
    "stream, one at a time": lambda *a, **k: stream.latest_profile_join(*a, batch_size=1, **k),
    "stream, batched": stream.latest_profile_join,
}


def at(minutes: float) -> object:
    return T + timedelta(hours=10, minutes=minutes)


def profile(card: str, usual_max: float = 100.0, home: str = "Paris") -> CardProfile:
    c = CITIES[home]
    return CardProfile(card, home, c.lat, c.lon, 25.0, usual_max)


def swipe(pid: str, card: str, happened: float, arrived: float, amount: float = 50.0) -> Purchase:
    c = CITIES["Paris"]
    return Purchase(pid, card, "Paris café", "Paris", c.lat, c.lon, amount, at(happened), at(arrived))


def versions(join) -> dict[str, str]:
    return dict(zip(join.joined["purchase_id"], join.joined["version"]))


# --- the acceptance case: a change between two purchases of one card ----------------------------

TABLE = {"card-1": profile("card-1")}
RAISED = profile("card-1", usual_max=300.0)

# Purchase a at 10:00, the limit raised at 10:05, purchase b at 10:10. When each arrives (minutes past 10):
SCENARIOS = {
    "in order": (0.05, 5.5, 10.05),
    "the change arrives after both purchases": (0.05, 14.0, 10.05),
    "b arrives before a, the change after both": (12.0, 14.0, 10.05),
    "the change arrives before a": (12.0, 6.0, 10.05),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("driver", DRIVERS)
def test_a_change_between_two_purchases_each_gets_the_profile_valid_when_it_happened(scenario, driver):
    a_arrives, change_arrives, b_arrives = SCENARIOS[scenario]
    pile = sorted([swipe("a", "card-1", 0, a_arrives), swipe("b", "card-1", 10, b_arrives)], key=lambda p: p.arrival_time)
    changes = [ProfileChange("raised", RAISED, "limit raised", at(5), at(change_arrives))]
    join = DRIVERS[driver](pile, TABLE, changes, lag=LAG)
    assert versions(join) == {"a": INITIAL, "b": "raised"}
    assert dict(zip(join.joined["purchase_id"], join.joined["usual_max"])) == {"a": 100.0, "b": 300.0}
    assert join.aside.empty


@pytest.mark.parametrize("scenario, wrong", [
    ("in order", set()),
    ("the change arrives after both purchases", {"b"}),  # b used the old limit: the change was in transit
    ("b arrives before a, the change after both", {"b"}),
    ("the change arrives before a", {"a"}),  # a, older than the change, used the new limit
])
@pytest.mark.parametrize("driver", NAIVE)
def test_the_naive_join_takes_the_latest_profile_seen_and_is_wrong_exactly_there(scenario, wrong, driver):
    a_arrives, change_arrives, b_arrives = SCENARIOS[scenario]
    pile = sorted([swipe("a", "card-1", 0, a_arrives), swipe("b", "card-1", 10, b_arrives)], key=lambda p: p.arrival_time)
    changes = [ProfileChange("raised", RAISED, "limit raised", at(5), at(change_arrives))]
    correct = batch.temporal_join(pile, TABLE, changes, lag=LAG)
    naive = NAIVE[driver](pile, TABLE, changes, lag=LAG)
    assert set(wrong_versions(correct, naive)["purchase_id"]) == wrong


def test_the_stream_holds_a_purchase_until_no_change_valid_at_its_time_can_still_arrive():
    pile = [swipe("a", "card-1", 0, 0.05), swipe("b", "card-1", 10, 10.05), swipe("c", "card-1", 30, 30.05)]
    changes = [ProfileChange("raised", RAISED, "limit raised", at(5), at(14))]
    join = stream.temporal_join(pile, TABLE, changes, lag=LAG, batch_size=1)
    released = dict(zip(join.joined["purchase_id"], join.joined["joined_at"]))
    # a (10:00) waits for the first record after 10:10: b's arrival at 10:10:03. b (10:10) waits for c's
    # arrival (past 10:20); c for the end of input, stamped with the last arrival.
    assert released == {"a": pd.Timestamp(at(10.05)), "b": pd.Timestamp(at(30.05)), "c": pd.Timestamp(at(30.05))}
    assert join.state["purchases"].tolist() == [1, 1, 1, 1]
    assert join.peak_state == 1


def test_a_change_later_than_lag_is_routed_aside_by_both_drivers_and_not_used():
    pile = [swipe("a", "card-1", 0, 0.05), swipe("b", "card-1", 10, 10.05)]
    changes = [ProfileChange("raised", RAISED, "limit raised", at(5), at(16))]  # 11 minutes in transit
    for driver in DRIVERS.values():
        join = driver(pile, TABLE, changes, lag=LAG)
        assert versions(join) == {"a": INITIAL, "b": INITIAL}
        assert join.aside[["kind", "id", "reason"]].values.tolist() == [["change", "raised", LATE_CHANGE]]


def test_a_purchase_with_no_profile_valid_at_its_time_is_routed_aside_with_the_reason():
    new_card = profile("card-new")
    pile = [swipe("x", "card-new", 0, 0.05), swipe("y", "card-new", 10, 10.05), swipe("z", "card-9", 1, 1.05)]
    changes = [ProfileChange("issued", new_card, "card issued", at(5), at(6))]
    answers = [driver(pile, TABLE, changes, lag=LAG) for driver in DRIVERS.values()]
    for join in answers:
        assert versions(join) == {"y": "issued"}
        assert sorted(join.aside["id"]) == ["x", "z"] and set(join.aside["reason"]) == {NO_PROFILE}
        assert join.purchases_read == len(join.joined) + len(join.aside)
    assert not joins_differ(answers[0], answers[1]) and not joins_differ(answers[0], answers[2])


def test_joins_refuse_bad_input_naming_it():
    pile = [swipe("a", "card-1", 0, 0.05)]
    for join in (batch.temporal_join, stream.temporal_join, batch.latest_profile_join, stream.latest_profile_join):
        with pytest.raises(TypeError, match="purchase 1 must be a Purchase"):
            join(pile + ["a"], TABLE, [])
        with pytest.raises(TypeError, match="change 0 must be a ProfileChange"):
            join(pile, TABLE, [RAISED])
        with pytest.raises(ValueError, match="lag must be >= 0"):
            join(pile, TABLE, [], lag=-1)
        with pytest.raises(TypeError, match="profiles must be a dict"):
            join(pile, list(TABLE), [])
        with pytest.raises(ValueError, match="a pipe never ends"):
            join(purchases(seed=1), TABLE, [])
    for join in (batch.time_bound_join, stream.time_bound_join):
        with pytest.raises(ValueError, match="purchase_id must be unique: 'a' appears twice"):
            join(pile + pile, [])
        with pytest.raises(TypeError, match="confirmation 0 must be a Confirmation"):
            join(pile, [pile[0]])
        with pytest.raises(ValueError, match="within must be >= 0"):
            join(pile, [], within=-5)


# --- batch equals stream, on generated cards and arrival orders -------------------------------

CARDS = ["card-1", "card-2", "card-3"]


@st.composite
def days(draw):
    """A few cards, purchases and changes at any minutes, each arriving up to its stream's bound after it happened."""
    table = {c: profile(c, usual_max=100.0) for c in CARDS[: draw(st.integers(1, 3))]}
    cards = st.sampled_from(CARDS)  # card-3 may have no profile
    pile = []
    for n in range(draw(st.integers(0, 25))):
        happened = draw(st.integers(0, 120))
        pile.append(swipe(f"p{n}", draw(cards), happened, happened + draw(st.integers(0, 40)) / 2))
    changes = []
    for n in range(draw(st.integers(0, 8))):
        happened = draw(st.integers(0, 120))
        new = profile(draw(cards), usual_max=float(draw(st.integers(101, 999))), home=draw(st.sampled_from(["Paris", "Berlin"])))
        changes.append(ProfileChange(f"c{n}", new, "changed", at(happened), at(happened + draw(st.integers(0, 10)))))
    # Both streams come in arrival order; ties keep the order drawn.
    return (sorted(pile, key=lambda p: p.arrival_time), table, sorted(changes, key=lambda c: c.arrival_time))


def brute_force(pile, table, changes):
    """The version valid at each purchase's event time, and the latest seen at its arrival, by looking at everything."""
    valid, seen = {}, {}
    for p in pile:
        mine = [(n, c) for n, c in enumerate(changes) if c.card == p.card]
        before = [(c.event_time, c.arrival_time, n, c.change_id) for n, c in mine if c.event_time <= p.event_time]
        valid[p.purchase_id] = max(before)[3] if before else (INITIAL if p.card in table else None)
        arrived = [(c.arrival_time, n, c.change_id) for n, c in mine if c.arrival_time <= p.arrival_time]
        seen[p.purchase_id] = max(arrived)[2] if arrived else (INITIAL if p.card in table else None)
    return valid, seen


@settings(max_examples=40)
@given(days(), st.sampled_from([1, 3, 1000]))
def test_stream_equals_batch_equals_the_version_valid_at_each_purchase(day, batch_size):
    pile, table, changes = day
    b = batch.temporal_join(pile, table, changes, lag=LAG)
    s = stream.temporal_join(pile, table, changes, lag=LAG, batch_size=batch_size)
    assert joins_differ(b, s) == []
    valid, seen = brute_force(pile, table, changes)
    assert versions(b) == {pid: v for pid, v in valid.items() if v is not None}
    # What the stream held after each record: every purchase read whose event time the watermark has not passed.
    items = arrival_order(pile, changes)
    held = [sum(kind == "purchase" and x.event_time >= item[1].arrival_time - LAG for kind, x in items[: n + 1])
            for n, item in enumerate(items)]
    assert s.state["purchases"].tolist() == held


@settings(max_examples=40)
@given(days(), st.sampled_from([1, 1000]))
def test_the_naive_join_differs_exactly_where_the_latest_seen_version_is_not_the_valid_one(day, batch_size):
    pile, table, changes = day
    correct = batch.temporal_join(pile, table, changes, lag=LAG)
    naive_b = batch.latest_profile_join(pile, table, changes, lag=LAG)
    naive_s = stream.latest_profile_join(pile, table, changes, lag=LAG, batch_size=batch_size)
    assert joins_differ(naive_b, naive_s) == []
    valid, seen = brute_force(pile, table, changes)
    assert versions(naive_s) == {pid: v for pid, v in seen.items() if v is not None}
    expected = {pid for pid in valid if valid[pid] != seen[pid]}  # None: routed aside, no profile yet
    assert set(wrong_versions(correct, naive_s)["purchase_id"]) == expected


@settings(max_examples=6)
@given(st.integers(0, 10_000), st.sampled_from([5.0, 600.0]))
def test_on_seeded_days_the_stream_gives_the_batch_answer(seed, disorder):
    bank = purchases(seed=seed, cards=40, rate=0.05, disorder=disorder)
    until = T + timedelta(hours=4)
    pile = bank.arrived_before(until)
    changes = profile_changes(bank, until, share=0.05, lag=LAG)
    b = batch.temporal_join(pile, bank.profiles, changes, lag=LAG)
    s = stream.temporal_join(pile, bank.profiles, changes, lag=LAG)
    assert joins_differ(b, s) == []
    assert len(b.joined) == len(pile) and b.aside.empty


# --- the generators ----------------------------------------------------------------------------


def test_the_changelog_is_seeded_and_keeps_its_promise():
    bank = purchases(seed=3)
    until = T + timedelta(hours=12)
    changes = profile_changes(bank, until, lag=LAG)
    assert changes == profile_changes(purchases(seed=3), until, lag=LAG)
    assert changes != profile_changes(purchases(seed=4), until, lag=LAG)
    assert changes and all(timedelta(0) <= c.arrival_time - c.event_time <= LAG and c.arrival_time < until for c in changes)
    assert [c.arrival_time for c in changes] == sorted(c.arrival_time for c in changes)
    assert {c.what for c in changes} == {"moved", "limit raised"}
    assert all(c.card in bank.profiles for c in changes)
    # The pipe's purchases are not touched by reading its changelog.
    assert bank.take(50) == purchases(seed=3).take(50)


def test_the_changelog_refuses_bad_parameters_naming_them():
    bank = purchases(seed=3)
    with pytest.raises(ValueError, match="share must be a fraction"):
        profile_changes(bank, T, share=2)
    with pytest.raises(ValueError, match="lag must be >= 0"):
        profile_changes(bank, T, lag=-1)
    with pytest.raises(TypeError, match="bank must be a pipe"):
        profile_changes([], T)
    with pytest.raises(ValueError, match="until must be timezone-aware"):
        profile_changes(bank, T.replace(tzinfo=None))


def test_confirmations_are_seeded_mostly_quick_some_late_some_missing():
    bank = purchases(seed=5)
    pile = bank.take(5000)
    made = confirmations(bank, pile)
    assert made == confirmations(purchases(seed=5), pile)
    happened = {p.purchase_id: p.event_time for p in pile}
    after = pd.Series([(c.event_time - happened[c.purchase_id]).total_seconds() for c in made])
    assert 0.003 < 1 - len(made) / len(pile) < 0.008  # missing, 0.5 %
    assert 0.015 < (after > 4).mean() < 0.03  # late, 2 %
    assert after.min() >= 0.2 and after.max() <= 120
    assert all(timedelta(0) <= c.arrival_time - c.event_time <= bank.disorder for c in made)
    with pytest.raises(ValueError, match="late must be a fraction"):
        confirmations(bank, pile, late=-0.1)


# --- the time-bound join -----------------------------------------------------------------------


def confirm(pid: str, card: str, happened: float, arrived: float) -> Confirmation:
    return Confirmation(pid, card, at(happened), at(arrived))


S = 1 / 60  # a second, in minutes


def test_the_time_bound_join_pairs_within_the_bound_and_says_why_for_the_rest():
    pile = [
        swipe("quick", "card-1", 0, 2 * S),
        swipe("slow", "card-1", 1, 1 + 2 * S),
        swipe("never", "card-2", 2, 2 + 2 * S),
        swipe("overtaken", "card-2", 3, 3 + 4 * S),  # its confirmation arrives first
        swipe("twice", "card-3", 4, 4 + 1 * S),
        swipe("stale", "card-3", 5, 5 + 30 * S),  # 30 s in transit: more than delay
    ]
    confirmed = [
        confirm("quick", "card-1", 1 * S, 3 * S),
        confirm("slow", "card-1", 1 + 30 * S, 1 + 31 * S),
        confirm("overtaken", "card-2", 3 + 1 * S, 3 + 2 * S),
        confirm("twice", "card-3", 4 + 1 * S, 4 + 2 * S),
        confirm("twice", "card-3", 4 + 3 * S, 4 + 4 * S),
        confirm("orphan", "card-9", 6, 6 + 1 * S),
    ]
    pile.sort(key=lambda p: p.arrival_time)
    confirmed.sort(key=lambda c: c.arrival_time)
    answers = [batch.time_bound_join(pile, confirmed, within=10, delay=5),
               stream.time_bound_join(pile, confirmed, within=10, delay=5, batch_size=1),
               stream.time_bound_join(pile, confirmed, within=10, delay=5)]
    for join in answers:
        assert sorted(join.matched["purchase_id"]) == ["overtaken", "quick", "twice", "twice"]
        reasons = {(r.kind, r.purchase_id): r.reason for r in join.unmatched.itertuples()}
        assert reasons == {
            ("purchase", "slow"): NO_CONFIRMATION, ("confirmation", "slow"): NO_PURCHASE,
            ("purchase", "never"): NO_CONFIRMATION, ("purchase", "stale"): LATE_ITEM,
            ("confirmation", "orphan"): NO_PURCHASE,
        }
    assert joins_differ(answers[0], answers[1]) == [] and joins_differ(answers[0], answers[2]) == []
    # "never" is reported once the watermark (clock - 5 s) passes 10:02:10, at the first arrival after 10:02:15.
    live = answers[1].unmatched.set_index(["kind", "purchase_id"])
    assert live.loc[("purchase", "never"), "reported_at"] == pd.Timestamp(at(3 + 2 * S))


@st.composite
def confirmed_days(draw):
    pile, confirmed = [], []
    for n in range(draw(st.integers(0, 30))):
        happened = draw(st.integers(0, 600)) / 60
        pile.append(swipe(f"p{n}", "card-1", happened, happened + draw(st.integers(0, 7)) * S))
        for _ in range(draw(st.integers(0, 2))):
            made = happened + draw(st.integers(-2, 20)) * S
            confirmed.append(confirm(f"p{draw(st.integers(0, n + 1))}", "card-1", made, made + draw(st.integers(0, 7)) * S))
    return sorted(pile, key=lambda p: p.arrival_time), sorted(confirmed, key=lambda c: c.arrival_time)


@settings(max_examples=40)
@given(confirmed_days(), st.sampled_from([1, 4, 1000]))
def test_time_bound_join_stream_equals_batch_and_holds_only_what_can_still_pair(day, batch_size):
    pile, confirmed = day
    b = batch.time_bound_join(pile, confirmed, within=10, delay=5)
    s = stream.time_bound_join(pile, confirmed, within=10, delay=5, batch_size=batch_size)
    assert joins_differ(b, s) == []
    # After each record, the stream holds exactly the purchases read, on time, whose bound the watermark has not passed.
    items = arrival_order(pile, confirmed)
    delay, within = timedelta(seconds=5), timedelta(seconds=10)
    expected = []
    for n, (_, last) in enumerate(items):
        clock = max(x.arrival_time for _, x in items[: n + 1])
        expected.append(sum(kind == "purchase" and x.arrival_time - x.event_time <= delay
                            and x.event_time + within >= clock - delay for kind, x in items[: n + 1]))
    assert s.state["purchases"].tolist() == expected
    # Nothing is lost: every record is in a pair or unmatched with a reason.
    assert s.unmatched["reason"].isin([NO_CONFIRMATION, NO_PURCHASE, LATE_ITEM]).all()


def test_time_bound_join_on_a_seeded_day_and_its_state_is_deterministic():
    bank = purchases(seed=8)
    pile = bank.arrived_before(T + timedelta(hours=6))
    confirmed = confirmations(bank, pile)
    b = batch.time_bound_join(pile, confirmed, within=10, delay=bank.disorder)
    s1 = stream.time_bound_join(pile, confirmed, within=10, delay=bank.disorder, batch_size=1)
    s2 = stream.time_bound_join(pile, confirmed, within=10, delay=bank.disorder)
    assert joins_differ(b, s1) == [] and joins_differ(b, s2) == []
    pd.testing.assert_frame_equal(s1.state, s2.state)
    assert 0 < s1.peak_state <= 20
    late = b.unmatched[b.unmatched["kind"] == "purchase"]
    assert set(late["reason"]) == {NO_CONFIRMATION}


def test_the_state_plot_draws_each_stream_join_and_refuses_the_batch_answer():
    import matplotlib.pyplot as plt

    from streamlab.plots.joins import join_state

    bank = purchases(seed=8)
    pile = bank.arrived_before(T + timedelta(hours=1))
    confirmed = confirmations(bank, pile)
    joins = {f"within {w} s": stream.time_bound_join(pile, confirmed, within=w) for w in (10, 60)}
    fig, ax = plt.subplots()
    try:
        assert join_state(joins, ax=ax) is ax
        assert len(ax.get_lines()) == 4  # a step line and a peak line each
        peaks = sorted(line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == "--")
        assert peaks == sorted(j.peak_state for j in joins.values()) and peaks[0] < peaks[1]
        with pytest.raises(ValueError, match="holds no state"):
            join_state({"nightly": batch.time_bound_join(pile, confirmed)}, ax=ax)
    finally:
        plt.close(fig)


def test_empty_inputs_give_empty_answers_in_both_drivers():
    for driver in (*DRIVERS.values(), *NAIVE.values()):
        join = driver([], TABLE, [], lag=LAG)
        assert join.joined.empty and join.aside.empty and join.purchases_read == 0
    for join in (batch.time_bound_join([], []), stream.time_bound_join([], [], batch_size=1)):
        assert join.matched.empty and join.unmatched.empty and join.peak_state == 0


@pytest.mark.parametrize("seed", range(12))
def test_seeded_junk_in_either_input_is_refused_naming_its_position(seed):
    import random

    rng = random.Random(seed)
    pile = [swipe(f"p{n}", "card-1", n, n + 0.05) for n in range(6)]
    changes = [ProfileChange(f"c{n}", RAISED, "limit raised", at(n), at(n + 1)) for n in range(4)]
    junk = rng.choice([None, 3.5, "p9", {"card": "card-1"}, ("purchase", pile[0]), RAISED])
    where = rng.randrange(7)
    drivers = [batch.temporal_join, stream.temporal_join, batch.latest_profile_join, stream.latest_profile_join]
    if rng.random() < 0.5:
        bad = pile[:where] + [junk] + pile[where:]
        for driver in drivers:
            with pytest.raises(TypeError, match=f"purchase {where} must be a Purchase"):
                driver(bad, TABLE, changes, lag=LAG)
        for driver in (batch.time_bound_join, stream.time_bound_join):
            with pytest.raises(TypeError, match=f"purchase {where} must be a Purchase"):
                driver(bad, [])
    else:
        where = min(where, len(changes))
        bad = changes[:where] + [junk] + changes[where:]
        for driver in drivers:
            with pytest.raises(TypeError, match=f"change {where} must be a ProfileChange"):
                driver(pile, TABLE, bad, lag=LAG)
