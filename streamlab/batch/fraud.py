"""Fraud detection as the nightly batch job: pandas over the day's pile, the shared rules per card.

The job runs once the pile is complete (by default at 02:00 UTC the next day).
pandas does what it is good at: it joins each purchase with its card's profile
(enrichment), routes bad records aside, sorts each card's purchases by event
time. The decisions are the shared rules of :mod:`streamlab.fraud`, applied to
each card's purchases in event-time order, so the history of every purchase is
simply the card's earlier rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

import pandas as pd

from streamlab.events import bounded
from streamlab.fraud import (
    REJECTED_COLUMNS,
    RULES,
    TOO_LATE,
    Alert,
    CardHistory,
    Detection,
    Rules,
    alerts_frame,
    check,
    check_inputs,
    nightly_run,
    reject_reason,
    too_late,
)
from streamlab.purchases import CardProfile, Purchase, profiles_frame, purchases_frame


def detect_fraud(
    purchases: Iterable[Purchase] | pd.DataFrame,
    profiles: Mapping[str, CardProfile],
    *,
    limit: int | None = None,
    until: datetime | None = None,
    rules: Rules = RULES,
    job_at: datetime | None = None,
) -> Detection:
    """Find fraud in a pile of purchases all at once, as a nightly job does.

    :param purchases: a pile (a list of purchases in arrival order, or a frame
        from :func:`~streamlab.purchases.purchases_frame`), or a pipe cut by
        ``limit`` and/or ``until``.
    :param profiles: the card profile table, ``{card: CardProfile}``.
    :param rules: the rules' thresholds.
    :param job_at: when the job runs, which stamps every alert; by default
        :func:`~streamlab.fraud.nightly_run` of the time the pile closed
        (``until``, or else the last arrival): 02:00 UTC the next day.

    >>> from streamlab.purchases import adversarial_trace
    >>> trace = adversarial_trace()
    >>> found = detect_fraud(trace.purchases, trace.profiles)
    >>> found
    Detection(31 purchases read: 25 checked, 6 routed aside; 8 alerts on 8 purchases)
    >>> str(found.alerts["alert_time"].unique()[0])
    '2026-03-02 02:00:00+00:00'
    """
    check_inputs(profiles, rules, job_at)
    if isinstance(purchases, pd.DataFrame):
        if limit is not None or until is not None:
            raise ValueError("limit= and until= cut a pipe; a DataFrame is already a finite pile")
        frame = purchases.reset_index(drop=True)
        pile = None
    else:
        pile = list(bounded(purchases, limit=limit, until=until))
        frame = purchases_frame(pile)

    closed = until if until is not None else (frame["arrival_time"].max().to_pydatetime() if len(frame) else None)
    if job_at is None:
        job_at = nightly_run(closed) if closed is not None else None
    elif len(frame) and job_at < frame["arrival_time"].max():
        raise ValueError(
            f"job_at must be at or after the pile's last arrival {frame['arrival_time'].max()}, got {job_at}"
        )

    # Enrichment: each purchase joined with its card's profile. A left join keeps
    # purchases of unknown cards, so that they are routed aside, not lost.
    enriched = frame.merge(
        profiles_frame(profiles), on="card", how="left", validate="many_to_one", indicator="profile"
    )
    known = enriched.pop("profile").eq("both")
    skewed = enriched["arrival_time"] < enriched["event_time"]
    reason = pd.Series(
        [
            reject_reason(a, la, lo, known_card=k, clock_skew=sk)
            for a, la, lo, k, sk in zip(enriched["amount"], enriched["lat"], enriched["lon"], known, skewed)
        ],
        index=enriched.index, dtype="object",
    )

    # Lateness is about arrival order, which is the pile's row order: the newest
    # event time among the card's earlier rows that were not routed aside.
    good = enriched[reason.isna()]
    newest = good.groupby("card", sort=False)["event_time"].cummax()
    newest_before = newest.groupby(good["card"], sort=False).shift()
    # Only a purchase older than the card's newest so far can be too late; the shared rule decides.
    behind = good["event_time"] < newest_before
    for i in behind.index[behind.to_numpy()]:
        if too_late(good.at[i, "event_time"], newest_before.at[i], rules):
            reason.loc[i] = TOO_LATE

    checked = enriched[reason.isna()].sort_values(["card", "event_time", "purchase_id"], kind="stable")
    records = _purchases(checked, pile)
    raised: list[tuple[Alert, datetime | None]] = []
    for card, rows in checked.groupby("card", sort=False).indices.items():
        profile = profiles[card]
        history = CardHistory(rules)
        for row in rows:  # the card's purchases in event-time order
            p = records[row]
            alerts = check(p, profile, history, rules)
            history.remember(p, alerts)
            raised.extend((a, job_at) for a in alerts)

    rejected = enriched[reason.notna()].assign(reason=reason[reason.notna()].astype("str"))[REJECTED_COLUMNS]
    rejected = rejected.sort_values(["arrival_time", "purchase_id"], kind="stable").reset_index(drop=True)
    return Detection(alerts=alerts_frame(raised), rejected=rejected, purchases_read=len(frame), checked=len(checked))


def _purchases(rows: pd.DataFrame, pile: list[Purchase] | None) -> list[Purchase]:
    """The purchases of these rows, in row order: the pile's own records, or rebuilt from a frame's rows."""
    if pile is not None:
        return [pile[i] for i in rows.index]
    return [
        Purchase(r.purchase_id, r.card, r.merchant, r.city, r.lat, r.lon, r.amount,
                 r.event_time.to_pydatetime(), r.arrival_time.to_pydatetime())
        for r in rows.itertuples(index=False)
    ]
