"""Joins, once, for both drivers: their rules, what they return, and how two answers are compared.

Two joins of lesson 05, each with a batch twin (:mod:`streamlab.batch.joins`)
and a stream twin (:mod:`streamlab.stream.joins`):

* the **temporal join**: each purchase with the version of its card's profile
  *valid at the purchase's event time*: the latest change with ``event_time <=``
  the purchase's event time, or the table the day started with if there is
  none. The changelog is :func:`~streamlab.purchases.profile_changes`.
  Its naive cousin, :func:`~streamlab.stream.joins.latest_profile_join`, takes
  the latest version *seen so far* when the purchase arrives; it is wrong
  whenever a change is still in transit or arrived ahead of an older purchase.
* the **time-bound join** (stream-stream): each purchase with its authorisation
  confirmations made ``0 <= confirmed - purchased <= within`` after it (every
  such pair, as an interval join does). The rest are reported with a reason.

The stream's promise in both is a known ``lag`` (or ``delay``): nothing arrives
more than that after it happened. Whatever breaks the promise is routed aside by
*both* drivers (:data:`LATE_CHANGE`, :data:`LATE_ITEM`), so that their answers
stay equal and nothing is lost without a reason.

>>> from streamlab.events import COURSE_START as T
>>> from streamlab.purchases import CardProfile, ProfileChange
>>> home = CardProfile("card-1", "Paris", 48.86, 2.35, 30.0, 120.0)
>>> raised = ProfileChange("c1", CardProfile("card-1", "Paris", 48.86, 2.35, 30.0, 360.0), "limit raised", T, T)
>>> [kind for kind, _ in arrival_order([], [raised])]
['change']
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from streamlab.events import _require, duration, finite
from streamlab.purchases import (
    CardProfile,
    Confirmation,
    ProfileChange,
    Purchase,
    checked_purchases,
)

__all__ = [
    "ALWAYS",
    "ASIDE_COLUMNS",
    "INITIAL",
    "JOINED_COLUMNS",
    "LATE_CHANGE",
    "LATE_ITEM",
    "MATCHED_COLUMNS",
    "NO_CONFIRMATION",
    "NO_PROFILE",
    "NO_PURCHASE",
    "TemporalJoin",
    "TimeBoundJoin",
    "UNMATCHED_COLUMNS",
    "arrival_order",
    "joins_differ",
    "wrong_versions",
]

#: When the day's card table took effect: before any purchase pandas can hold.
ALWAYS = pd.Timestamp.min.ceil("us").tz_localize("UTC").to_pydatetime()
#: The version id of a card's profile from the day's card table.
INITIAL = "initial"

#: Why a record is routed aside. Both drivers use these exact words.
NO_PROFILE = "no profile of the card valid at its event time"
LATE_CHANGE = "change arrived more than lag after it took effect"
LATE_ITEM = "arrived more than delay after it happened"
NO_CONFIRMATION = "no confirmation within the bound"
NO_PURCHASE = "no purchase within the bound before it"

JOINED_COLUMNS = [
    "purchase_id", "card", "amount", "event_time", "arrival_time",
    "version", "home_city", "typical_amount", "usual_max", "joined_at",
]
#: A joined row's identity: what two drivers must agree on. ``joined_at`` is left out on purpose.
JOINED_IDENTITY = JOINED_COLUMNS[:-1]
ASIDE_COLUMNS = ["kind", "id", "card", "event_time", "arrival_time", "reason"]
MATCHED_COLUMNS = ["purchase_id", "card", "purchased", "confirmed", "waited", "joined_at"]
MATCHED_IDENTITY = MATCHED_COLUMNS[:-1]
UNMATCHED_COLUMNS = ["kind", "purchase_id", "card", "event_time", "arrival_time", "reason", "reported_at"]
UNMATCHED_IDENTITY = UNMATCHED_COLUMNS[:-1]
STATE_COLUMNS = ["clock", "purchases", "confirmations"]


def check_lag(name: str, value: timedelta | float) -> timedelta:
    """A bound on lateness as a timedelta >= 0, from a timedelta or seconds; the error names ``name``."""
    td = duration(name, value)
    _require(td >= timedelta(0), name, ">= 0", value)
    return td


def checked_changes(changes: Iterable[object]) -> Iterator[ProfileChange]:
    """The changes, refusing by position anything that is not a :class:`ProfileChange`."""
    for position, c in enumerate(finite(changes, "pass a list of changes")):
        if not isinstance(c, ProfileChange):
            raise TypeError(f"change {position} must be a ProfileChange, got {type(c).__name__} {c!r:.60}")
        yield c


def unique_purchases(purchases: Iterable[Purchase]) -> list[Purchase]:
    """The purchases as a list, refusing a purchase id seen twice (a confirmation must name one purchase)."""
    pile = list(checked_purchases(finite(purchases, "pass a list of purchases")))
    seen: set[str] = set()
    for p in pile:
        if p.purchase_id in seen:
            raise ValueError(f"purchase_id must be unique: {p.purchase_id!r:.40} appears twice")
        seen.add(p.purchase_id)
    return pile


def checked_confirmations(confirmations: Iterable[object]) -> Iterator[Confirmation]:
    """The confirmations, refusing by position anything that is not a :class:`Confirmation`."""
    for position, c in enumerate(finite(confirmations, "pass a list of confirmations")):
        if not isinstance(c, Confirmation):
            raise TypeError(f"confirmation {position} must be a Confirmation, got {type(c).__name__} {c!r:.60}")
        yield c


def arrival_order(
    purchases: Iterable[Purchase], others: Iterable[ProfileChange | Confirmation]
) -> list[tuple[str, Any]]:
    """Both inputs as one stream in arrival order: ``("purchase", p)`` and ``("change", c)`` or ``("confirmation", c)``.

    The other stream is changes or confirmations, as its first record says.
    This is the one clock both streams share. At the same arrival time, the
    other stream's record comes first, then the purchase; within a stream,
    records keep the order given. Every record is checked for its type.
    """
    tagged: list[tuple[datetime, int, int, str, Any]] = []
    for n, p in enumerate(checked_purchases(finite(purchases, "pass a list of purchases"))):
        tagged.append((p.arrival_time, 1, n, "purchase", p))
    others = list(finite(others, "pass a list"))
    # The first record says which stream this is; every other must be of its kind (refused by position if not).
    if not others or isinstance(others[0], ProfileChange):
        kind, rows = "change", list(checked_changes(others))
    else:
        kind, rows = "confirmation", list(checked_confirmations(others))
    for n, c in enumerate(rows):
        tagged.append((c.arrival_time, 0, n, kind, c))
    tagged.sort(key=lambda t: t[:3])
    return [(t[3], t[4]) for t in tagged]


# --- what a temporal join returns ------------------------------------------------------------


def joined_frame(rows: Iterable[tuple[Purchase, str, CardProfile, datetime | None]]) -> pd.DataFrame:
    """Joined purchases ``(purchase, version, profile, joined_at)`` as a frame, by event time then purchase id."""
    frame = pd.DataFrame(
        [(p.purchase_id, p.card, p.amount, p.event_time, p.arrival_time, version, prof.home_city,
          prof.typical_amount, prof.usual_max, at) for p, version, prof, at in rows],
        columns=JOINED_COLUMNS,
    )
    return tidy_joined(frame)


def tidy_joined(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.astype({
        "purchase_id": "str", "card": "str", "amount": "float64", "event_time": "datetime64[ns, UTC]",
        "arrival_time": "datetime64[ns, UTC]", "version": "str", "home_city": "str",
        "typical_amount": "float64", "usual_max": "float64", "joined_at": "datetime64[ns, UTC]",
    })[JOINED_COLUMNS]
    return frame.sort_values(["event_time", "purchase_id"], kind="stable").reset_index(drop=True)


def aside_frame(rows: Iterable[tuple[str, str, str, datetime, datetime, str]]) -> pd.DataFrame:
    """Records routed aside ``(kind, id, card, event_time, arrival_time, reason)``, in arrival order."""
    frame = pd.DataFrame(list(rows), columns=ASIDE_COLUMNS).astype({
        "kind": "str", "id": "str", "card": "str", "event_time": "datetime64[ns, UTC]",
        "arrival_time": "datetime64[ns, UTC]", "reason": "str",
    })
    return frame.sort_values(["arrival_time", "kind", "id"], kind="stable").reset_index(drop=True)


def state_frame(rows: Iterable[tuple[datetime, int, int]]) -> pd.DataFrame:
    """What a stream held after each record it read: ``clock`` (the arrival time), purchases, other records."""
    return pd.DataFrame(list(rows), columns=STATE_COLUMNS).astype(
        {"clock": "datetime64[ns, UTC]", "purchases": "int64", "confirmations": "int64"}
    )


@dataclass(frozen=True)
class TemporalJoin:
    """What a temporal join found: each purchase with a version of its card's profile, and what went aside.

    ``joined``: one row per purchase (:data:`JOINED_COLUMNS`); ``version`` is
    the change id of the profile used (:data:`INITIAL` for the day's table);
    ``joined_at`` is when the driver joined it (the stream: the arrival time
    that released it; the batch job: when it ran). ``aside``: purchases and
    changes routed aside with their reasons. ``state``: for the stream, the
    purchases it held after each record read (empty for the batch job).
    Purchases reconcile: ``len(joined) + purchases aside == purchases_read``.
    """

    joined: pd.DataFrame
    aside: pd.DataFrame
    purchases_read: int
    changes_read: int
    state: pd.DataFrame

    def __post_init__(self) -> None:
        aside = self.aside["kind"].value_counts()
        if len(self.joined) + aside.get("purchase", 0) != self.purchases_read:
            raise AssertionError(f"counts do not reconcile: read {self.purchases_read} purchases, joined "
                                 f"{len(self.joined)}, routed aside {aside.get('purchase', 0)}")
        if aside.get("change", 0) > self.changes_read:
            raise AssertionError(f"more changes routed aside ({aside.get('change', 0)}) than read ({self.changes_read})")

    @property
    def peak_state(self) -> int:
        """The most purchases the stream held at once (0 for the batch job)."""
        return int(self.state["purchases"].max()) if len(self.state) else 0

    def __repr__(self) -> str:
        held = f"; peak state {self.peak_state:,} purchases" if len(self.state) else ""
        return (f"TemporalJoin({self.purchases_read:,} purchases and {self.changes_read:,} changes read: "
                f"{len(self.joined):,} joined, {len(self.aside):,} routed aside{held})")


@dataclass(frozen=True)
class TimeBoundJoin:
    """What a time-bound join found: purchase-confirmation pairs, and every record left unmatched, with why.

    ``matched``: one row per pair (:data:`MATCHED_COLUMNS`), ``waited`` the
    time from purchase to confirmation. ``unmatched``: one row per purchase or
    confirmation in no pair, or routed aside as late, with ``reason`` and
    ``reported_at`` (when the driver gave up on it). ``state``: for the stream,
    what it held after each record read (empty for the batch job).
    """

    matched: pd.DataFrame
    unmatched: pd.DataFrame
    purchases_read: int
    confirmations_read: int
    state: pd.DataFrame

    def __post_init__(self) -> None:
        # Purchase ids are unique (the drivers check), so a confirmation is in one pair at most.
        left = self.unmatched["kind"].value_counts()
        paired = self.matched["purchase_id"].nunique()
        if paired + left.get("purchase", 0) != self.purchases_read:
            raise AssertionError(f"counts do not reconcile: read {self.purchases_read} purchases, {paired} in pairs, "
                                 f"{left.get('purchase', 0)} unmatched")
        if len(self.matched) + left.get("confirmation", 0) != self.confirmations_read:
            raise AssertionError(f"counts do not reconcile: read {self.confirmations_read} confirmations, "
                                 f"{len(self.matched)} in pairs, {left.get('confirmation', 0)} unmatched")

    @property
    def peak_state(self) -> int:
        """The most records (purchases and confirmations) the stream held at once (0 for the batch job)."""
        return int((self.state["purchases"] + self.state["confirmations"]).max()) if len(self.state) else 0

    def __repr__(self) -> str:
        held = f"; peak state {self.peak_state:,} records" if len(self.state) else ""
        return (f"TimeBoundJoin({self.purchases_read:,} purchases and {self.confirmations_read:,} confirmations read: "
                f"{len(self.matched):,} pairs, {len(self.unmatched):,} unmatched{held})")


def matched_frame(rows: Iterable[tuple[Purchase, Confirmation, datetime | None]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [(p.purchase_id, p.card, p.event_time, c.event_time, c.event_time - p.event_time, at) for p, c, at in rows],
        columns=MATCHED_COLUMNS,
    )
    return tidy_matched(frame)


def tidy_matched(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.astype({"purchase_id": "str", "card": "str", "purchased": "datetime64[ns, UTC]",
                          "confirmed": "datetime64[ns, UTC]", "waited": "timedelta64[ns]",
                          "joined_at": "datetime64[ns, UTC]"})[MATCHED_COLUMNS]
    return frame.sort_values(["purchased", "purchase_id", "confirmed"], kind="stable").reset_index(drop=True)


def unmatched_frame(rows: Iterable[tuple[str, Purchase | Confirmation, str, datetime | None]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [(kind, r.purchase_id, r.card, r.event_time, r.arrival_time, reason, at) for kind, r, reason, at in rows],
        columns=UNMATCHED_COLUMNS,
    )
    return tidy_unmatched(frame)


def tidy_unmatched(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.astype({"kind": "str", "purchase_id": "str", "card": "str", "event_time": "datetime64[ns, UTC]",
                          "arrival_time": "datetime64[ns, UTC]", "reason": "str",
                          "reported_at": "datetime64[ns, UTC]"})[UNMATCHED_COLUMNS]
    return frame.sort_values(["event_time", "kind", "purchase_id"], kind="stable").reset_index(drop=True)


# --- comparing -------------------------------------------------------------------------------


def joins_differ(left: TemporalJoin | TimeBoundJoin, right: TemporalJoin | TimeBoundJoin) -> list[str]:
    """What differs between two drivers' answers, on everything but when they gave them; ``[]`` if nothing.

    >>> from streamlab.batch.joins import temporal_join
    >>> from streamlab.purchases import adversarial_trace
    >>> trace = adversarial_trace()
    >>> a = temporal_join(trace.purchases, trace.profiles, [])
    >>> joins_differ(a, a)
    []
    """
    if type(left) is not type(right) or not isinstance(left, (TemporalJoin, TimeBoundJoin)):
        raise TypeError(f"compare two TemporalJoin or two TimeBoundJoin, got {type(left).__name__} and {type(right).__name__}")
    if isinstance(left, TemporalJoin):
        parts = [("joined", JOINED_IDENTITY), ("aside", ASIDE_COLUMNS)]
    else:
        parts = [("matched", MATCHED_IDENTITY), ("unmatched", UNMATCHED_IDENTITY)]
    out = []
    for name, identity in parts:
        a, b = getattr(left, name)[identity], getattr(right, name)[identity]
        rows_a = {tuple(r) for r in a.astype(str).itertuples(index=False)}
        rows_b = {tuple(r) for r in b.astype(str).itertuples(index=False)}
        if len(a) != len(b) or rows_a != rows_b:
            out.append(f"{name}: {len(rows_a - rows_b)} rows only on the left, {len(rows_b - rows_a)} only on the right")
    return out


def wrong_versions(correct: TemporalJoin, naive: TemporalJoin) -> pd.DataFrame:
    """The purchases a naive join enriched with another version than the one valid at their event time.

    One row per such purchase: the version valid and the one used, and what
    each says (home city, usual maximum). A purchase one side routed aside
    (no profile yet) has version ``"none"`` on that side.
    """
    if not isinstance(correct, TemporalJoin) or not isinstance(naive, TemporalJoin):
        raise TypeError("wrong_versions compares two TemporalJoin results: the temporal join's, then the naive join's")
    keep = ["purchase_id", "card", "amount", "event_time", "arrival_time", "version", "home_city", "usual_max"]
    aside = lambda j: j.aside[j.aside["kind"] == "purchase"].rename(columns={"id": "purchase_id"}).assign(version="none")
    sides = [pd.concat([j.joined, aside(j)], ignore_index=True)[keep] for j in (correct, naive)]
    both = sides[0].merge(sides[1][["purchase_id", "version", "home_city", "usual_max"]], on="purchase_id",
                          suffixes=("_valid", "_used"), validate="one_to_one")
    wrong = both[both["version_valid"] != both["version_used"]]
    return wrong.sort_values(["event_time", "purchase_id"]).reset_index(drop=True)
