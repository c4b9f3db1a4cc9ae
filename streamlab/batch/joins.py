"""Joins as the nightly job does them: pandas over the whole pile, with every change already in hand.

The temporal join is ``pandas.merge_asof``: for each purchase, by card, the last
version whose effect time is at or before the purchase's event time. The job
needs no waiting: by the time it runs, every change has arrived. The rules are
in :mod:`streamlab.joins`; :mod:`streamlab.stream.joins` has the twins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

import pandas as pd

from streamlab.events import check_utc, finite
from streamlab.fraud import nightly_run
from streamlab.joins import (
    ALWAYS,
    INITIAL,
    JOINED_COLUMNS,
    LATE_CHANGE,
    LATE_ITEM,
    NO_CONFIRMATION,
    NO_PROFILE,
    NO_PURCHASE,
    TemporalJoin,
    TimeBoundJoin,
    aside_frame,
    check_lag,
    checked_changes,
    checked_confirmations,
    state_frame,
    tidy_joined,
    tidy_matched,
    tidy_unmatched,
    unique_purchases,
)
from streamlab.purchases import (
    CardProfile, Confirmation, ProfileChange, Purchase, check_profiles, checked_purchases, purchases_frame,
)

__all__ = ["latest_profile_join", "temporal_join", "time_bound_join"]

_VERSION_COLUMNS = ["card", "effective", "arrived", "order", "version", "home_city", "typical_amount", "usual_max"]


def _versions(profiles: Mapping[str, CardProfile], changes: list[ProfileChange]) -> pd.DataFrame:
    """Every version of every card's profile: the day's table (in effect from :data:`ALWAYS`), then each change."""
    rows = [(card, ALWAYS, ALWAYS, -1, INITIAL, p.home_city, p.typical_amount, p.usual_max)
            for card, p in profiles.items()]
    rows += [(c.card, c.event_time, c.arrival_time, n, c.change_id, c.profile.home_city, c.profile.typical_amount,
              c.profile.usual_max) for n, c in enumerate(changes)]
    return pd.DataFrame(rows, columns=_VERSION_COLUMNS).astype(
        {"card": "str", "effective": "datetime64[ns, UTC]", "arrived": "datetime64[ns, UTC]", "version": "str"}
    )


def _job_time(frame: pd.DataFrame, job_at: datetime | None) -> datetime | None:
    if job_at is not None:
        return check_utc("job_at", job_at)
    return nightly_run(frame["arrival_time"].max().to_pydatetime()) if len(frame) else None


def _split_late(changes: list[ProfileChange], lag: timedelta) -> tuple[list[ProfileChange], list[tuple]]:
    ok, aside = [], []
    for c in changes:
        if c.arrival_time - c.event_time > lag:
            aside.append(("change", c.change_id, c.card, c.event_time, c.arrival_time, LATE_CHANGE))
        else:
            ok.append(c)
    return ok, aside


def _join(purchases, profiles, changes, lag, job_at, on: str) -> TemporalJoin:
    check_profiles(profiles)
    lag_td = check_lag("lag", lag)
    pile = list(checked_purchases(finite(purchases, "pass a list of purchases")))
    all_changes = list(checked_changes(changes))
    ok, aside = _split_late(all_changes, lag_td)
    frame = purchases_frame(pile)
    frame["position"] = range(len(frame))
    versions = _versions(profiles, ok)
    if on == "event_time":
        # Ties in effect time: the version that arrived last wins, as it does in the stream.
        versions = versions.sort_values(["effective", "arrived", "order"], kind="stable")
        right_on = "effective"
    else:
        # Latest seen: by arrival; a change that arrives with the purchase is seen first.
        versions = versions.sort_values(["arrived", "order"], kind="stable")
        right_on = "arrived"
    left = frame.sort_values([on, "position"], kind="stable")
    joined = pd.merge_asof(left, versions, left_on=on, right_on=right_on, by="card", direction="backward",
                           allow_exact_matches=True)
    missing = joined["version"].isna()
    aside += [("purchase", r.purchase_id, r.card, r.event_time, r.arrival_time, NO_PROFILE)
              for r in joined[missing].itertuples()]
    done = joined[~missing].copy()
    done["joined_at"] = _job_time(frame, job_at)
    return TemporalJoin(
        joined=tidy_joined(done[JOINED_COLUMNS]),
        aside=aside_frame(aside),
        purchases_read=len(pile),
        changes_read=len(all_changes),
        state=state_frame([]),
    )


def temporal_join(
    purchases: Iterable[Purchase],
    profiles: Mapping[str, CardProfile],
    changes: Iterable[ProfileChange],
    *,
    lag: timedelta | float = 600.0,
    job_at: datetime | None = None,
) -> TemporalJoin:
    """Each purchase with the version of its card's profile valid at its event time, all at once.

    The version valid at ``t`` is the card's latest change with effect time
    ``<= t`` (ties: the one that arrived last), or its profile in ``profiles``
    (the day's table, :data:`~streamlab.joins.INITIAL`) if none. A change that
    arrived more than ``lag`` after it took effect is routed aside
    (:data:`~streamlab.joins.LATE_CHANGE`) and not used, as the stream must;
    a purchase with no valid version is routed aside
    (:data:`~streamlab.joins.NO_PROFILE`). Rows are stamped ``joined_at``
    ``job_at`` (by default 02:00 UTC after the last arrival).

    >>> from streamlab.purchases import adversarial_trace
    >>> trace = adversarial_trace()
    >>> temporal_join(trace.purchases, trace.profiles, [])
    TemporalJoin(31 purchases and 0 changes read: 29 joined, 2 routed aside)
    """
    return _join(purchases, profiles, changes, lag, job_at, "event_time")


def latest_profile_join(
    purchases: Iterable[Purchase],
    profiles: Mapping[str, CardProfile],
    changes: Iterable[ProfileChange],
    *,
    lag: timedelta | float = 600.0,
    job_at: datetime | None = None,
) -> TemporalJoin:
    """The naive join: each purchase with the latest version of its card's profile *seen* when it arrived.

    What a stream that keeps "the current profile" and looks it up on arrival
    gives, computed from the pile (``merge_asof`` on arrival time). At the
    same arrival time a change is seen before the purchase. Late changes are
    routed aside as in :func:`temporal_join`, so that the two differ only by
    the rule.
    """
    return _join(purchases, profiles, changes, lag, job_at, "arrival_time")


def time_bound_join(
    purchases: Iterable[Purchase],
    confirmations: Iterable[Confirmation],
    *,
    within: timedelta | float = 10.0,
    delay: timedelta | float = 5.0,
    job_at: datetime | None = None,
) -> TimeBoundJoin:
    """Every purchase with its confirmations made ``0 <= confirmed - purchased <= within`` after it, all at once.

    A record that arrived more than ``delay`` after it happened is routed aside
    (:data:`~streamlab.joins.LATE_ITEM`), as the stream must. A purchase in
    no pair is unmatched with :data:`~streamlab.joins.NO_CONFIRMATION`, a
    confirmation in no pair with :data:`~streamlab.joins.NO_PURCHASE`.

    >>> from streamlab.purchases import purchases, confirmations
    >>> bank = purchases(seed=1)
    >>> pile = bank.take(500)
    >>> time_bound_join(pile, confirmations(bank, pile))
    TimeBoundJoin(500 purchases and 498 confirmations read: 489 pairs, 20 unmatched)
    """
    within_td = check_lag("within", within)
    delay_td = check_lag("delay", delay)
    pile = unique_purchases(purchases)
    confirmed = list(checked_confirmations(confirmations))
    unmatched: list[tuple] = []
    p_ok = [p for p in pile if p.arrival_time - p.event_time <= delay_td]
    c_ok = [c for c in confirmed if c.arrival_time - c.event_time <= delay_td]
    unmatched += [("purchase", p, LATE_ITEM) for p in pile if p.arrival_time - p.event_time > delay_td]
    unmatched += [("confirmation", c, LATE_ITEM) for c in confirmed if c.arrival_time - c.event_time > delay_td]
    pf = pd.DataFrame({"purchase_id": [p.purchase_id for p in p_ok], "card": [p.card for p in p_ok],
                       "purchased": [p.event_time for p in p_ok], "pos_p": range(len(p_ok))})
    cf = pd.DataFrame({"purchase_id": [c.purchase_id for c in c_ok], "confirmed": [c.event_time for c in c_ok],
                       "pos_c": range(len(c_ok))})
    pf = pf.astype({"purchase_id": "str", "purchased": "datetime64[ns, UTC]"})
    cf = cf.astype({"purchase_id": "str", "confirmed": "datetime64[ns, UTC]"})
    pairs = pf.merge(cf, on="purchase_id")
    pairs["waited"] = pairs["confirmed"] - pairs["purchased"]
    pairs = pairs[(pairs["waited"] >= pd.Timedelta(0)) & (pairs["waited"] <= pd.Timedelta(within_td))]
    paired_p, paired_c = set(pairs["pos_p"]), set(pairs["pos_c"])
    unmatched += [("purchase", p, NO_CONFIRMATION) for n, p in enumerate(p_ok) if n not in paired_p]
    unmatched += [("confirmation", c, NO_PURCHASE) for n, c in enumerate(c_ok) if n not in paired_c]
    arrivals = [p.arrival_time for p in pile] + [c.arrival_time for c in confirmed]
    at = check_utc("job_at", job_at) if job_at is not None else (nightly_run(max(arrivals)) if arrivals else None)
    pairs = pairs.assign(joined_at=at)
    unmatched_rows = pd.DataFrame(
        [(kind, r.purchase_id, r.card, r.event_time, r.arrival_time, reason, at) for kind, r, reason in unmatched],
        columns=["kind", "purchase_id", "card", "event_time", "arrival_time", "reason", "reported_at"],
    )
    return TimeBoundJoin(
        matched=tidy_matched(pairs[["purchase_id", "card", "purchased", "confirmed", "waited", "joined_at"]]),
        unmatched=tidy_unmatched(unmatched_rows),
        purchases_read=len(pile),
        confirmations_read=len(confirmed),
        state=state_frame([]),
    )
