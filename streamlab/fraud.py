"""The fraud rules, once, for both drivers: what a decision needs, what it decides, and how it is scored.

A purchase alone cannot say whether it is fraud. The decision needs context:

* the card's **profile** (home city, usual spending), looked up in the card
  table: that lookup is *enrichment*;
* the card's **recent history** (its swipes of the last hours), which the
  stream keeps as *state* per card and the batch job finds by sorting the pile.

The rules (:class:`Rules` holds their thresholds):

* **impossible travel**: two swipes of a card farther apart than anyone can
  travel in the time between them (faster than ``max_speed_kmh``). Of the
  pair, the swipe farther from the card's home is blamed.
* **test charges**: ``burst_count`` or more charges of at most ``small_amount``
  within ``burst_window``: someone checking that a stolen card works.
* **big amount**: more than ``amount_factor`` times the card's usual maximum.

:func:`check` decides on one purchase given its profile and its card's history;
:meth:`CardHistory.remember` is the state transition. Both compare a purchase
with the card's history *by event time, whatever order they arrived in*, and
blame a pair by where its swipes are, not by which arrived first, so the alerts
do not depend on arrival order: the stream (arrival order) and the batch job
(event-time order) raise the same alerts. One limit makes that true: the stream
only remembers so much (:attr:`Rules.retention`). So each card has a watermark,
as in lesson 04: its newest event time seen minus ``delay``; a
purchase that arrives behind its card's watermark is routed aside
(:data:`TOO_LATE`) by both drivers, never half-checked.

>>> from streamlab.purchases import adversarial_trace
>>> trace = adversarial_trace()
>>> alerts, rejected = detect_loop(trace.purchases, trace.profiles)
>>> sorted({a.purchase_id for a, _ in alerts}) == sorted(trace.truth)
True
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

import pandas as pd
from haversine import haversine

from streamlab.events import MAX_DURATION, _describe, _finite, check_utc, finite
from streamlab.purchases import CardProfile, Purchase, check_profiles, checked_purchases, purchases_frame
from streamlab.windows import SKEW

__all__ = [
    "ALERT_COLUMNS",
    "AMOUNT",
    "BAD_LOCATION",
    "BURST",
    "INFINITE_AMOUNT",
    "MISSING_AMOUNT",
    "MISSING_LOCATION",
    "NEGATIVE_AMOUNT",
    "REASONS",
    "REJECTED_COLUMNS",
    "RULES",
    "SKEW",
    "TOO_LATE",
    "TRAVEL",
    "UNKNOWN_CARD",
    "Alert",
    "AlertAgreement",
    "CardHistory",
    "Detection",
    "Detector",
    "Rules",
    "Score",
    "agree_alerts",
    "alert_latency",
    "check",
    "decide",
    "detect_loop",
    "distance_km",
    "money_at_stake",
    "nightly_run",
    "reject_reason",
    "score",
    "score_by_pattern",
    "too_late",
]

#: The rules' names, as alerts carry them.
TRAVEL = "impossible travel"
BURST = "test charges"
AMOUNT = "big amount"

#: Why a purchase cannot be checked. Both drivers use these exact words.
UNKNOWN_CARD = "unknown card: no profile to enrich it with"
MISSING_AMOUNT = "missing amount (None or NaN)"
INFINITE_AMOUNT = "infinite amount"
NEGATIVE_AMOUNT = "negative amount"
MISSING_LOCATION = "missing location (latitude or longitude is None or NaN)"
BAD_LOCATION = "location out of range (latitude -90 to 90, longitude -180 to 180)"
TOO_LATE = "arrived too late: more than delay behind its card's newest purchase"
# SKEW, "arrived before it happened (clock skew)", is lesson 04's reason, in the same words.
REASONS: tuple[str, ...] = (
    UNKNOWN_CARD, SKEW, MISSING_AMOUNT, INFINITE_AMOUNT, NEGATIVE_AMOUNT, MISSING_LOCATION, BAD_LOCATION, TOO_LATE,
)

#: Half the Earth's circumference on the haversine package's mean radius: no
#: two places on Earth are farther apart than this, along the surface.
MAX_DISTANCE_KM = math.pi * 6371.0088


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres between two points given in degrees.

    It uses the ``haversine`` package (a mean Earth radius of 6,371.0088 km),
    which is right across the antimeridian, where longitudes jump from 180 to -180.

    >>> round(distance_km(40.7128, -74.0060, 48.8566, 2.3522))   # New York to Paris
    5837
    >>> round(distance_km(0.0, 179.5, 0.0, -179.5), 1)            # one degree, across the antimeridian
    111.2
    """
    # Locations are checked when purchases are routed (reject_reason), so skip the package's own check.
    try:
        return haversine((lat1, lon1), (lat2, lon2), check=False)
    except (TypeError, ValueError, OverflowError) as err:  # a check only on failure: this runs for every pair of swipes
        kind = TypeError if isinstance(err, TypeError) else ValueError
        raise kind(f"lat1, lon1, lat2 and lon2 must be finite numbers, got {(lat1, lon1, lat2, lon2)!r:.80}") from None



@dataclass(frozen=True)
class Rules:
    """The thresholds of the rules, any extra rules, and how long the stream must remember a card's swipes.

    ``extra`` holds rules of your own, each a function written once that both
    drivers call (through :func:`check`, after the built-in rules)::

        rule(purchase, profile, history, rules) -> list[Alert]

    with the arguments :func:`check` gets. Like the built-in rules, a rule
    must raise the same alerts whatever order the purchases arrive in, or the
    drivers disagree; and it may only look back ``max(travel_horizon,
    burst_window)`` in event time: the history forgets older swipes.

    >>> RULES.travel_horizon
    datetime.timedelta(seconds=72054, microseconds...)
    >>> Rules(max_speed_kmh=0)
    Traceback (most recent call last):
    ...
    ValueError: max_speed_kmh must be a finite number > 0, got 0
    """

    #: Faster than this between two swipes is impossible. Airliners cruise at
    #: 800-900 km/h and a swipe-to-swipe trip adds airports at both ends.
    max_speed_kmh: float = 1000.0
    #: Swipes closer than this are never "travel": GPS and merchant addresses are fuzzy.
    min_distance_km: float = 100.0
    #: A charge of at most this much (in dollars) is small: a test charge looks like this.
    small_amount: float = 2.0
    #: This many small charges ...
    burst_count: int = 3
    #: ... within this long make a burst of test charges.
    burst_window: timedelta = timedelta(minutes=10)
    #: More than this many times the card's usual maximum is a big amount.
    amount_factor: float = 3.0
    #: How long each card's watermark waits behind its newest purchase (lesson 04's delay): a purchase
    #: arriving further behind than this is too late to be checked.
    delay: timedelta = timedelta(hours=1)
    #: Rules of your own, called after the built-in ones (see above); none by default.
    extra: tuple[Callable[[Purchase, CardProfile, CardHistory, Rules], list[Alert]], ...] = ()

    def __post_init__(self) -> None:
        for name in ("max_speed_kmh", "amount_factor"):
            value = getattr(self, name)
            if not _finite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {_describe(value)}")
        if self.max_speed_kmh < 0.001:
            # Slower than a metre an hour, the travel horizon would reach past any datetime.
            raise ValueError(f"max_speed_kmh must be at least 0.001, got {self.max_speed_kmh!r}")
        for name in ("min_distance_km", "small_amount"):
            value = getattr(self, name)
            if not _finite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {_describe(value)}")
        if not isinstance(self.burst_count, int) or isinstance(self.burst_count, bool) or self.burst_count < 2:
            raise ValueError(f"burst_count must be an int >= 2, got {_describe(self.burst_count)}")
        for name in ("burst_window", "delay"):
            value = getattr(self, name)
            if not isinstance(value, timedelta) or value < timedelta(0):
                raise ValueError(f"{name} must be a timedelta >= 0, got {value!r}")
            if value > MAX_DURATION:
                raise ValueError(f"{name} must be at most {MAX_DURATION.days:,} days, got {value!r}")
        if isinstance(self.extra, list):
            object.__setattr__(self, "extra", tuple(self.extra))  # frozen: a list would make Rules unhashable
        if not isinstance(self.extra, tuple) or not all(callable(rule) for rule in self.extra):
            raise ValueError(f"extra must be a tuple of rule functions, got {self.extra!r}")

    @functools.cached_property
    def travel_horizon(self) -> timedelta:
        """Swipes further apart in time than this can never be impossible travel: the far side of the Earth is closer."""
        return timedelta(hours=MAX_DISTANCE_KM / self.max_speed_kmh)

    @functools.cached_property
    def retention(self) -> timedelta:
        """How long (in event time) behind its newest swipe a card's history must reach back."""
        return max(self.travel_horizon, self.burst_window) + self.delay


#: The rules with their default thresholds.
RULES = Rules()


def reject_reason(
    amount: float | None, lat: float | None, lon: float | None, *, known_card: bool, clock_skew: bool
) -> str | None:
    """Say why a purchase cannot be checked, or ``None`` if it can. The first problem found is the reason.

    ``known_card``: the card is in the profile table. ``clock_skew``: the
    purchase arrived before it happened (``arrival_time < event_time``); some
    clock is wrong and no one can tell which, so, as in lesson 04's windows, it
    is set aside rather than trusted.

    >>> reject_reason(12.5, 48.86, 2.35, known_card=True, clock_skew=False) is None
    True
    >>> reject_reason(-3.0, 48.86, 2.35, known_card=True, clock_skew=False)
    'negative amount'
    >>> reject_reason(12.5, None, 2.35, known_card=True, clock_skew=False)
    'missing location (latitude or longitude is None or NaN)'
    """
    if not known_card:
        return UNKNOWN_CARD
    if clock_skew:
        return SKEW
    if amount is None or math.isnan(amount):
        return MISSING_AMOUNT
    if math.isinf(amount):
        return INFINITE_AMOUNT
    if amount < 0:
        return NEGATIVE_AMOUNT
    if lat is None or lon is None or math.isnan(lat) or math.isnan(lon):
        return MISSING_LOCATION
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return BAD_LOCATION
    return None


def _check_detection(name: str, value: object) -> None:
    if not isinstance(value, Detection):
        raise TypeError(f"{name} must be a Detection (what detect_fraud returns), got {type(value).__name__} {value!r:.60}")


def _check_truth(truth: object) -> None:
    if not isinstance(truth, Mapping):
        raise TypeError(f"truth must be a dict of purchase id to fraud pattern, got {type(truth).__name__} {truth!r:.60}")


def check_inputs(profiles: object, rules: object, job_at: object = None) -> None:
    """Check the fraud drivers' parameters, each error naming the parameter (the purchases are checked as read)."""
    check_profiles(profiles)
    if not isinstance(rules, Rules):
        raise TypeError(f"rules must be a Rules(...), got {type(rules).__name__} {rules!r:.60}")
    if job_at is not None:
        check_utc("job_at", job_at)


def too_late(event_time: datetime, newest: datetime | None, rules: Rules = RULES) -> bool:
    """Whether a purchase arrived too far behind its card's newest purchase to be checked.

    ``newest`` is the latest event time among the card's purchases that arrived
    before this one and were checked (``None`` if there are none); ``newest -
    delay`` is the card's watermark, as in lesson 04, and a purchase
    behind it is late.

    >>> from streamlab.events import COURSE_START as T
    >>> too_late(T, T + timedelta(minutes=59)), too_late(T, T + timedelta(minutes=61))
    (False, True)
    """
    return newest is not None and event_time < newest - rules.delay


@dataclass(frozen=True, slots=True)
class Alert:
    """One reason to suspect one purchase: the rule, the purchase blamed, and the evidence.

    ``partner_id`` is the other swipe of an impossible-travel pair (``None`` for
    the other rules). An alert does not say *when* it was raised: that depends
    on the driver, which stamps it (``alert_time``).
    """

    rule: str
    card: str
    purchase_id: str
    partner_id: str | None
    amount: float
    event_time: datetime
    detail: str


def _order(p: Purchase) -> tuple[datetime, str]:
    # Event time, then id: a total order, so swipes at the same second are ordered the same way everywhere.
    return (p.event_time, p.purchase_id)


class CardHistory:
    """A card's recent swipes, in event-time order: all the state the stream keeps per card.

    ``newest`` is the latest event time seen; ``in_burst`` the swipes already
    flagged as test charges (so that each is flagged once). Swipes older than
    ``newest - rules.retention`` are forgotten: no later purchase can need them.
    """

    __slots__ = ("in_burst", "newest", "rules", "swipes")

    def __init__(self, rules: Rules = RULES) -> None:
        self.rules = rules
        self.swipes: list[Purchase] = []
        self.newest: datetime | None = None
        self.in_burst: set[str] = set()

    def remember(self, purchase: Purchase, alerts: Iterable[Alert] = ()) -> None:
        """The state transition: add a checked purchase and its alerts, forget what no later purchase can need."""
        swipes = self.swipes
        if not swipes or _order(swipes[-1]) <= _order(purchase):
            swipes.append(purchase)  # the usual case: it arrived in event-time order
        else:
            bisect.insort(swipes, purchase, key=_order)
        for alert in alerts:
            if alert.rule == BURST:
                self.in_burst.add(alert.purchase_id)
        if self.newest is None or purchase.event_time > self.newest:
            self.newest = purchase.event_time
            horizon = self.newest - self.rules.retention
            if swipes[0].event_time < horizon:
                keep = bisect.bisect_left(swipes, horizon, key=lambda p: p.event_time)
                for gone in swipes[:keep]:
                    self.in_burst.discard(gone.purchase_id)
                del swipes[:keep]

    def __len__(self) -> int:
        return len(self.swipes)

    def __repr__(self) -> str:
        return f"CardHistory({len(self.swipes)} swipes, newest {self.newest})"


def check(purchase: Purchase, profile: CardProfile, history: CardHistory, rules: Rules = RULES) -> list[Alert]:
    """Decide on one purchase, with its context: the card's profile and its recent history.

    Returns the alerts this purchase raises; they may blame an earlier swipe
    (the other side of an impossible pair, or an earlier test charge). The
    purchase must be valid (:func:`reject_reason` is ``None``) and not yet in
    ``history``; call ``history.remember(purchase, alerts)`` afterwards, as
    :func:`decide` does.

    >>> from streamlab.purchases import adversarial_trace
    >>> trace = adversarial_trace()
    >>> ny, paris = [p for p in trace.purchases if p.card == "card-travel"]
    >>> history = CardHistory()
    >>> check(ny, trace.profiles["card-travel"], history), history.remember(ny, [])
    ([], None)
    >>> [(a.rule, a.purchase_id, a.detail) for a in check(paris, trace.profiles["card-travel"], history)]
    [('impossible travel', 't01', '5,830 km from New York in 20 min (17,489 km/h)')]
    """
    alerts: list[Alert] = []
    amount = purchase.amount
    if amount > rules.amount_factor * profile.usual_max:
        alerts.append(Alert(
            AMOUNT, purchase.card, purchase.purchase_id, None, amount, purchase.event_time,
            f"${amount:,.2f} is {amount / profile.usual_max:.1f}× the card's usual maximum ${profile.usual_max:,.2f}",
        ))
    t, pid = purchase.event_time, purchase.purchase_id
    horizon = rules.travel_horizon
    lat, lon = purchase.lat, purchase.lon
    for other in history.swipes:
        when = other.event_time
        gap = t - when if t >= when else when - t
        if gap > horizon or (other.lat == lat and other.lon == lon):
            continue
        # The pair in event-time order (by id at the same second), however it arrived.
        if when < t or (when == t and other.purchase_id < pid):
            first, second = other, purchase
        else:
            first, second = purchase, other
        km = distance_km(first.lat, first.lon, second.lat, second.lon)
        seconds = gap.total_seconds()
        # km / hours > max speed, written without dividing: swipes can share a second.
        if km > rules.min_distance_km and km * 3600.0 > rules.max_speed_kmh * seconds:
            alerts.append(_travel_alert(first, second, km, seconds, profile))
    if amount <= rules.small_amount:
        alerts.extend(_burst_alerts(purchase, history, rules))
    for rule in rules.extra:
        found = list(rule(purchase, profile, history, rules))
        wrong = next((a for a in found if not isinstance(a, Alert)), None)
        if wrong is not None:
            name = getattr(rule, "__name__", repr(rule))
            raise TypeError(f"extra rule {name} must return a list of Alert, got {type(wrong).__name__} {wrong!r}")
        alerts.extend(found)
    return alerts


def _travel_alert(first: Purchase, second: Purchase, km: float, seconds: float, profile: CardProfile) -> Alert:
    """Blame the swipe of an impossible pair that is farther from the card's home (the later one on a tie)."""
    home = (profile.home_lat, profile.home_lon)
    far_first = distance_km(*home, first.lat, first.lon)
    far_second = distance_km(*home, second.lat, second.lon)
    blamed, other = (first, second) if far_first > far_second else (second, first)
    if seconds == 0:
        took = "at the same second"
    else:
        took = f"in {_duration(seconds)} ({km * 3600.0 / seconds:,.0f} km/h)"
    return Alert(
        TRAVEL, blamed.card, blamed.purchase_id, other.purchase_id, blamed.amount, blamed.event_time,
        f"{km:,.0f} km from {other.city} {took}",
    )


def _duration(seconds: float) -> str:
    minutes = seconds / 60.0
    if minutes < 90:
        return f"{minutes:.0f} min"
    return f"{minutes / 60.0:.1f} h"


def _burst_alerts(purchase: Purchase, history: CardHistory, rules: Rules) -> list[Alert]:
    """Flag every small charge that, with this one, makes ``burst_count`` within ``burst_window``.

    A charge is in a burst when some window of ``burst_window`` holds it and at
    least ``burst_count`` small charges. Adding this charge can only create
    bursts that contain it: runs of ``burst_count`` consecutive small charges
    (in event-time order) through it, spanning at most the window.
    """
    window = rules.burst_window
    t = purchase.event_time
    small = [
        p for p in history.swipes
        if p.amount <= rules.small_amount and abs(p.event_time - t) <= window
    ]
    bisect.insort(small, purchase, key=_order)
    n = rules.burst_count
    if len(small) < n:
        return []
    at = small.index(purchase)
    members: set[int] = set()
    for start in range(max(0, at - n + 1), min(at, len(small) - n) + 1):
        if small[start + n - 1].event_time - small[start].event_time <= window:
            members.update(range(start, start + n))
    detail = f"one of {n} or more charges of at most ${rules.small_amount:,.2f} within {_duration(window.total_seconds())}"
    alerts = []
    for i in sorted(members):
        p = small[i]
        if p.purchase_id not in history.in_burst:
            alerts.append(Alert(BURST, p.card, p.purchase_id, None, p.amount, p.event_time, detail))
    return alerts


def decide(
    purchase: Purchase, profile: CardProfile | None, history: CardHistory, rules: Rules = RULES
) -> tuple[list[Alert], str | None]:
    """Everything done with one purchase: route it aside, or check it and remember it.

    Returns ``(alerts, None)``, or ``([], reason)`` when the purchase is routed
    aside: bad input (:func:`reject_reason`) or arrived too late (:func:`too_late`).
    The stream and the plain loop call this, one purchase at a time; the batch
    job calls the same four parts, :func:`reject_reason` and :func:`too_late`
    over the pile, then :func:`check` and :meth:`CardHistory.remember` per card.
    """
    reason = reject_reason(
        purchase.amount, purchase.lat, purchase.lon,
        known_card=profile is not None, clock_skew=purchase.arrival_time < purchase.event_time,
    )
    if reason is not None:
        return [], reason
    if too_late(purchase.event_time, history.newest, rules):
        return [], TOO_LATE
    alerts = check(purchase, profile, history, rules)
    history.remember(purchase, alerts)
    return alerts, None


class Detector:
    """The rules with the state of every card, one purchase at a time: the per-event work of the stream.

    :meth:`step` is :func:`decide` with the card's profile looked up
    (enrichment) and its history found (state). On its own, in
    :func:`detect_loop`, it is the plain-Python baseline of the benchmark.
    """

    def __init__(self, profiles: Mapping[str, CardProfile], rules: Rules = RULES) -> None:
        self.profiles = profiles
        self.rules = rules
        self.histories: dict[str, CardHistory] = {}

    def step(self, purchase: Purchase) -> tuple[list[Alert], str | None]:
        """Decide on one purchase: ``(alerts, None)``, or ``([], reason)`` if it is routed aside."""
        profile = self.profiles.get(purchase.card)
        history = self.histories.get(purchase.card)
        if history is None:
            history = CardHistory(self.rules)
            if profile is not None:  # unknown cards get no state: there can be any number of them
                self.histories[purchase.card] = history
        return decide(purchase, profile, history, self.rules)


def detect_loop(
    purchases: Iterable[Purchase], profiles: Mapping[str, CardProfile], rules: Rules = RULES
) -> tuple[list[tuple[Alert, datetime]], list[tuple[Purchase, str]]]:
    """Apply the rules to purchases in the order given, in one plain Python loop.

    Returns each alert with the arrival time of the purchase that raised it,
    and the purchases routed aside with their reasons. This is what the stream
    does per event, without the stream: the benchmark's baseline.
    """
    check_inputs(profiles, rules)
    purchases = checked_purchases(finite(purchases))
    detector = Detector(profiles, rules)
    step = detector.step
    alerts: list[tuple[Alert, datetime]] = []
    rejected: list[tuple[Purchase, str]] = []
    for p in purchases:
        raised, reason = step(p)
        if reason is not None:
            rejected.append((p, reason))
        elif raised:
            alerts.extend((a, p.arrival_time) for a in raised)
    return alerts, rejected


# --- what a driver returns ------------------------------------------------------------------

ALERT_COLUMNS = ["alert_time", "rule", "card", "purchase_id", "partner_id", "amount", "event_time", "detail"]
REJECTED_COLUMNS = ["purchase_id", "card", "amount", "lat", "lon", "event_time", "arrival_time", "reason"]
#: An alert's identity: what two drivers must agree on. ``alert_time`` is left out on purpose.
ALERT_IDENTITY = ["rule", "card", "purchase_id", "partner_id", "amount", "event_time", "detail"]


def alerts_frame(alerts: Iterable[tuple[Alert, Any]]) -> pd.DataFrame:
    """Alerts with their alert times as a frame, in a fixed order (by the blamed purchase)."""
    rows = [
        (known_at, a.rule, a.card, a.purchase_id, a.partner_id, a.amount, a.event_time, a.detail)
        for a, known_at in alerts
    ]
    frame = pd.DataFrame(rows, columns=ALERT_COLUMNS).astype(
        {"alert_time": "datetime64[ns, UTC]", "event_time": "datetime64[ns, UTC]", "amount": "float64",
         "rule": "str", "card": "str", "purchase_id": "str", "partner_id": "object", "detail": "str"}
    )
    frame = frame.sort_values(["event_time", "purchase_id", "rule", "partner_id"], kind="stable", na_position="first")
    return frame.reset_index(drop=True)


def rejected_frame(rejected: Iterable[tuple[Purchase, str]]) -> pd.DataFrame:
    """Purchases routed aside, with their reasons, in arrival order."""
    pairs = list(rejected)
    frame = purchases_frame([p for p, _ in pairs]).assign(reason=[r for _, r in pairs])[REJECTED_COLUMNS]
    return frame.sort_values(["arrival_time", "purchase_id"], kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class Detection:
    """What one driver found: its alerts, the purchases it routed aside, and how many it read.

    ``alerts``: one row per alert (:data:`ALERT_COLUMNS`), stamped with
    ``alert_time``, when the driver raised it. ``rejected``: one row per
    purchase routed aside, with its ``reason``. ``checked`` purchases went
    through the rules; ``checked + len(rejected) == purchases_read``, always.
    """

    alerts: pd.DataFrame
    rejected: pd.DataFrame
    purchases_read: int
    checked: int

    def __post_init__(self) -> None:
        if self.checked + len(self.rejected) != self.purchases_read:
            raise AssertionError(
                f"counts do not reconcile: read {self.purchases_read} purchases, checked {self.checked}, "
                f"routed aside {len(self.rejected)}"
            )

    @property
    def flagged(self) -> set[str]:
        """The ids of the purchases at least one alert blames."""
        return set(self.alerts["purchase_id"])

    def __repr__(self) -> str:
        return (
            f"Detection({self.purchases_read:,} purchases read: {self.checked:,} checked, "
            f"{len(self.rejected):,} routed aside; {len(self.alerts):,} alerts on {len(self.flagged):,} purchases)"
        )


def nightly_run(last_arrival: datetime, at: time = time(2, 0)) -> datetime:
    """When the nightly batch job runs: at ``at`` (UTC) on the day after the pile closed.

    >>> from streamlab.events import COURSE_START as T
    >>> nightly_run(T + timedelta(hours=23, minutes=59))
    datetime.datetime(2026, 3, 2, 2, 0, tzinfo=datetime.timezone.utc)
    >>> nightly_run(T + timedelta(days=1))     # a pile closed at midnight is the day before's
    datetime.datetime(2026, 3, 2, 2, 0, tzinfo=datetime.timezone.utc)
    """
    check_utc("last_arrival", last_arrival)
    if not isinstance(at, time):
        raise TypeError(f"at must be a datetime.time, got {type(at).__name__} {at!r:.60}")
    midnight = last_arrival.replace(hour=0, minute=0, second=0, microsecond=0)
    if midnight < last_arrival:
        midnight += timedelta(days=1)
    return midnight + timedelta(hours=at.hour, minutes=at.minute, seconds=at.second)


# --- comparing and scoring -------------------------------------------------------------------


@dataclass(frozen=True)
class AlertAgreement:
    """The outcome of :func:`agree_alerts`: the alerts only one side raised (none, when they agree)."""

    names: tuple[str, str]
    common: int
    only_left: pd.DataFrame
    only_right: pd.DataFrame

    @property
    def ok(self) -> bool:
        return self.only_left.empty and self.only_right.empty

    def __bool__(self) -> bool:
        return self.ok

    def message(self) -> str:
        left, right = self.names
        if self.ok:
            return f"{left} and {right} raise the same {self.common:,} alerts."
        return (
            f"{left} and {right} differ: {len(self.only_left):,} alerts only from {left}, "
            f"{len(self.only_right):,} only from {right} ({self.common:,} in common)."
        )

    def __repr__(self) -> str:
        return f"AlertAgreement: {self.message()}"


def agree_alerts(left: Detection, right: Detection, *, names: tuple[str, str] = ("batch", "stream")) -> AlertAgreement:
    """Compare two drivers' alerts on everything but when they were raised.

    Two alerts are the same when rule, card, blamed purchase, partner, amount,
    event time and evidence are all equal.
    """
    _check_detection("left", left)
    _check_detection("right", right)
    def keys(d: Detection) -> set[tuple]:
        # An alert without a partner has NaN there, and NaN equals nothing, not even NaN: compare "" instead.
        identity = d.alerts[ALERT_IDENTITY].astype({"partner_id": "object"}).fillna({"partner_id": ""})
        return {tuple(r) for r in identity.itertuples(index=False)}

    a, b = keys(left), keys(right)
    frame = lambda rows: pd.DataFrame(sorted(rows, key=str), columns=ALERT_IDENTITY)
    return AlertAgreement(names, len(a & b), frame(a - b), frame(b - a))


@dataclass(frozen=True)
class Score:
    """Precision and recall of a detection against the ground truth, counted in purchases."""

    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        """Of the purchases flagged, the fraction that were fraud."""
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else math.nan

    @property
    def recall(self) -> float:
        """Of the fraudulent purchases, the fraction flagged."""
        fraud = self.true_positives + self.false_negatives
        return self.true_positives / fraud if fraud else math.nan

    def __repr__(self) -> str:
        return (
            f"Score(precision={self.precision:.3f}, recall={self.recall:.3f}: {self.true_positives} frauds found, "
            f"{self.false_positives} false alarms, {self.false_negatives} frauds missed)"
        )


def score(detection: Detection, truth: Mapping[str, str]) -> Score:
    """Score the purchases a detection flagged against the ground truth ``{purchase_id: pattern}``.

    >>> from streamlab.purchases import adversarial_trace
    >>> from streamlab import batch
    >>> trace = adversarial_trace()
    >>> score(batch.detect_fraud(trace.purchases, trace.profiles), trace.truth)
    Score(precision=1.000, recall=1.000: 8 frauds found, 0 false alarms, 0 frauds missed)
    """
    _check_detection("detection", detection)
    _check_truth(truth)
    flagged, fraud = detection.flagged, set(truth)
    return Score(len(flagged & fraud), len(flagged - fraud), len(fraud - flagged))


def score_by_pattern(detection: Detection, truth: Mapping[str, str]) -> pd.DataFrame:
    """Recall per fraud pattern: how many purchases of each pattern there were, and how many were flagged."""
    _check_detection("detection", detection)
    _check_truth(truth)
    flagged = detection.flagged
    rows: dict[str, list[int]] = {}
    for pid, pattern in truth.items():
        row = rows.setdefault(pattern, [0, 0])
        row[0] += 1
        row[1] += pid in flagged
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=["frauds", "flagged"]).sort_index()
    frame.index.name = "pattern"
    frame["recall"] = (frame["flagged"] / frame["frauds"]).round(3)
    return frame


def alert_latency(detection: Detection) -> pd.Series:
    """For each flagged purchase, how long after it happened its first alert came.

    Returns a Series of timedeltas indexed by ``purchase_id``.
    """
    _check_detection("detection", detection)
    first = detection.alerts.groupby("purchase_id", sort=True).agg(
        event_time=("event_time", "first"), alert_time=("alert_time", "min")
    )
    return (first["alert_time"] - first["event_time"]).rename("latency")


#: What happened to a fraudulent purchase, had the card been blocked at its first alert.
STOPPED = "stopped in time"
AFTERWARDS = "found afterwards"
MISSED = "missed"
OUTCOMES: tuple[str, ...] = (STOPPED, AFTERWARDS, MISSED)


def money_at_stake(
    detection: Detection, pile: Iterable[Purchase] | pd.DataFrame, truth: Mapping[str, str]
) -> pd.DataFrame:
    """What each fraudulent purchase cost, had each card been blocked at its first alert.

    One row per fraudulent purchase of the pile: ``outcome`` is
    :data:`STOPPED` if it happened after its card's first alert (the card
    would have been blocked: the purchase declined), :data:`AFTERWARDS` if the
    card was alerted only after it happened (the money is gone; the bank can
    only chase it), :data:`MISSED` if its card was never alerted.
    """
    _check_detection("detection", detection)
    _check_truth(truth)
    frame = pile if isinstance(pile, pd.DataFrame) else purchases_frame(pile)
    fraud = frame[frame["purchase_id"].isin(list(truth))][["purchase_id", "card", "amount", "event_time"]].copy()
    fraud["pattern"] = fraud["purchase_id"].map(truth)
    blocked = detection.alerts.groupby("card")["alert_time"].min().rename("blocked_at")
    fraud = fraud.join(blocked, on="card")
    fraud["outcome"] = MISSED
    fraud.loc[fraud["blocked_at"].notna(), "outcome"] = AFTERWARDS
    fraud.loc[fraud["blocked_at"] <= fraud["event_time"], "outcome"] = STOPPED
    fraud["outcome"] = pd.Categorical(fraud["outcome"], categories=list(OUTCOMES))
    return fraud.sort_values(["event_time", "purchase_id"]).reset_index(drop=True)
