"""Card purchases: the records, real cities, a seeded pipe of purchases with labelled fraud, and an adversarial trace.

A :class:`Purchase` is one swipe of a card at a merchant: where (the merchant's
city, latitude and longitude), how much, when it happened (``event_time``) and
when it reached us (``arrival_time``). A :class:`CardProfile` is what the bank
already knows about a card before the day starts: its home city and its usual
spending. Detectors see purchases and profiles, nothing else.

:func:`purchases` describes an unbounded, seeded pipe of purchases in arrival
order, with fraud injected into it. What is fraud is *ground truth*: it is kept
aside, in :meth:`PurchasePipe.truth`, for scoring a detector afterwards, and is
never part of a purchase.

>>> p = purchases(seed=1)
>>> first = p.take(3)
>>> [x.purchase_id for x in first]
['p00000000', 'p00000001', 'p00000002']
>>> p.take(3) == first      # same seed, same purchases: iterating starts afresh
True
>>> truth = p.truth(limit=20_000)   # kept apart from the purchases
>>> sorted(set(truth.values()))
['big amount', 'impossible travel', 'test charges']
"""

from __future__ import annotations

import functools
import heapq
import itertools
import math
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

import pandas as pd
from haversine import haversine

from streamlab.events import (
    COURSE_START,
    Pipe,
    _describe,
    _finite,
    _in_float_range,
    _is_number,
    _require,
    bounded,
    check_count,
    check_disorder,
    check_key,
    check_rate,
    check_utc,
    duration,
    finite,
)

#: Most cards a purchases pipe may have: each gets a profile when the pipe starts (100,000 take under a second).
MAX_CARDS = 100_000

__all__ = [
    "BIG_AMOUNT",
    "CITIES",
    "IMPOSSIBLE_TRAVEL",
    "PATTERNS",
    "TEST_CHARGES",
    "LIMIT_RAISED",
    "MOVED",
    "CardProfile",
    "City",
    "Confirmation",
    "ProfileChange",
    "Purchase",
    "PurchasePipe",
    "Trace",
    "adversarial_trace",
    "confirmations",
    "profile_changes",
    "profiles_frame",
    "purchases",
    "purchases_frame",
]

#: The fraud patterns the pipe injects: the labels of the ground truth.
IMPOSSIBLE_TRAVEL = "impossible travel"
TEST_CHARGES = "test charges"
BIG_AMOUNT = "big amount"
PATTERNS: tuple[str, ...] = (IMPOSSIBLE_TRAVEL, TEST_CHARGES, BIG_AMOUNT)


class City(NamedTuple):
    """A real city: its name and the latitude and longitude of its centre, in degrees."""

    name: str
    lat: float
    lon: float


#: Real cities, with the coordinates of their centres. Suva and Apia lie on either
#: side of the antimeridian (longitude ±180°), which a careless distance gets wrong.
CITIES: dict[str, City] = {
    c.name: c
    for c in (
        City("New York", 40.7128, -74.0060),
        City("Boston", 42.3601, -71.0589),
        City("Chicago", 41.8781, -87.6298),
        City("Los Angeles", 34.0522, -118.2437),
        City("San Francisco", 37.7749, -122.4194),
        City("Toronto", 43.6532, -79.3832),
        City("Mexico City", 19.4326, -99.1332),
        City("São Paulo", -23.5505, -46.6333),
        City("London", 51.5074, -0.1278),
        City("Paris", 48.8566, 2.3522),
        City("Brussels", 50.8503, 4.3517),
        City("Amsterdam", 52.3676, 4.9041),
        City("Berlin", 52.5200, 13.4050),
        City("Madrid", 40.4168, -3.7038),
        City("Rome", 41.9028, 12.4964),
        City("Lagos", 6.5244, 3.3792),
        City("Nairobi", -1.2921, 36.8219),
        City("Dubai", 25.2048, 55.2708),
        City("Mumbai", 19.0760, 72.8777),
        City("Singapore", 1.3521, 103.8198),
        City("Tokyo", 35.6762, 139.6503),
        City("Sydney", -33.8688, 151.2093),
        City("Auckland", -36.8485, 174.7633),
        City("Suva", -18.1416, 178.4419),
        City("Apia", -13.8507, -171.7514),
        City("Honolulu", 21.3069, -157.8583),
    )
}

#: Where the pipe's cardholders live.
HOME_CITIES: tuple[str, ...] = (
    "New York", "Boston", "Chicago", "Los Angeles", "Toronto", "London",
    "Paris", "Berlin", "Madrid", "Amsterdam", "Tokyo", "Sydney", "Singapore",
)

#: Kinds of merchant; each city has one of each, placed around its centre.
MERCHANT_KINDS: tuple[str, ...] = (
    "grocer", "café", "pharmacy", "fuel station", "restaurant", "bookshop", "electronics", "online shop",
)


@functools.cache
def merchant_location(city: City, kind: str) -> tuple[float, float]:
    """Where a merchant of ``kind`` sits in ``city``: on a ring about 4 km around the centre.

    Fixed, not drawn at random, so every pipe has the same merchants.

    >>> merchant_location(CITIES["Paris"], "café")
    (48.8821, 2.3909)
    """
    angle = 2 * math.pi * MERCHANT_KINDS.index(kind) / len(MERCHANT_KINDS)
    lat = city.lat + 0.036 * math.cos(angle)
    # A degree of longitude shrinks with the cosine of the latitude.
    lon = city.lon + 0.036 * math.sin(angle) / math.cos(math.radians(city.lat))
    return round(lat, 4), round(lon, 4)



@dataclass(frozen=True, slots=True)
class Purchase:
    """One swipe of a card: which card, where, how much, when it happened and when it arrived.

    ``amount``, ``lat`` and ``lon`` may be ``None`` or NaN, and ``amount`` may
    be negative: real pipes carry broken records, and the detectors route such
    purchases aside with a reason instead of dropping them. A field of the
    wrong type, an empty id or card, or a naive datetime is refused here.

    >>> t = COURSE_START
    >>> Purchase("p1", "card-1", "Paris café", "Paris", 48.86, 2.41, 4.5, t, t + timedelta(seconds=2)).delay
    datetime.timedelta(seconds=2)
    >>> Purchase("p1", "card-1", "Paris café", "Paris", 48.86, 2.41, "4.5", t, t)
    Traceback (most recent call last):
    ...
    TypeError: amount must be a number or None, got str '4.5'
    """

    purchase_id: str
    card: str
    merchant: str
    city: str
    lat: float | None
    lon: float | None
    amount: float | None
    event_time: datetime
    arrival_time: datetime

    def __post_init__(self) -> None:
        for name in ("purchase_id", "card"):
            check_key(name, getattr(self, name))
        for name in ("merchant", "city"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a string, got {type(value).__name__} {value!r:.80}")
            if value:
                check_key(name, value)  # encodable, like every text the course writes out
        for name in ("lat", "lon", "amount"):
            value = getattr(self, name)
            if value is not None and not _is_number(value):
                raise TypeError(f"{name} must be a number or None, got {type(value).__name__} {value!r:.80}")
            if value is not None and not _in_float_range(value):
                raise ValueError(f"{name} must be within the range of a float (about ±1.8e308), got {_describe(value)}")
        check_utc("event_time", self.event_time)
        check_utc("arrival_time", self.arrival_time)

    @property
    def key(self) -> str:
        """The card: what the stream keeps its state by."""
        return self.card

    @property
    def delay(self) -> timedelta:
        """How long after it happened the purchase arrived."""
        return self.arrival_time - self.event_time


@dataclass(frozen=True, slots=True)
class CardProfile:
    """What the bank knows about a card before the day starts: where it lives and how it spends.

    ``typical_amount`` is the card's median purchase; ``usual_max`` the amount
    only one purchase in a hundred exceeds (its 99th percentile), both in dollars.
    """

    card: str
    home_city: str
    home_lat: float
    home_lon: float
    typical_amount: float
    usual_max: float

    def __post_init__(self) -> None:
        check_key("card", self.card)
        if not isinstance(self.home_city, str):
            raise TypeError(f"home_city must be a string, got {type(self.home_city).__name__} {self.home_city!r:.80}")
        for name in ("home_lat", "home_lon", "typical_amount", "usual_max"):
            value = getattr(self, name)
            if not _finite(value):
                raise ValueError(f"{name} must be a finite number, got {_describe(value)}")
        if not -90 <= self.home_lat <= 90:
            raise ValueError(f"home_lat must be from -90 to 90, got {self.home_lat!r}")
        if not -180 <= self.home_lon <= 180:
            raise ValueError(f"home_lon must be from -180 to 180, got {self.home_lon!r}")
        if not 0 < self.typical_amount <= self.usual_max:
            raise ValueError(
                f"typical_amount must be > 0 and <= usual_max, got {self.typical_amount!r} "
                f"(usual_max {self.usual_max!r})"
            )


PURCHASE_COLUMNS = ["purchase_id", "card", "merchant", "city", "lat", "lon", "amount", "event_time", "arrival_time"]
PROFILE_COLUMNS = ["card", "home_city", "home_lat", "home_lon", "typical_amount", "usual_max"]


def purchases_frame(pile: Iterable[Purchase]) -> pd.DataFrame:
    """Turn a pile of purchases into a DataFrame, one row per purchase, in pile order.

    Missing amounts and locations become NaN; times are ``datetime64[ns, UTC]``.

    >>> purchases_frame(purchases(seed=1).take(2)).columns.tolist()
    ['purchase_id', 'card', 'merchant', 'city', 'lat', 'lon', 'amount', 'event_time', 'arrival_time']
    """
    if isinstance(pile, PurchasePipe):
        raise TypeError("purchases_frame needs a finite pile: cut one from the pipe with take() or arrived_before()")
    rows = [
        (p.purchase_id, p.card, p.merchant, p.city, p.lat, p.lon, p.amount, p.event_time, p.arrival_time)
        for p in checked_purchases(finite(pile))
    ]
    frame = pd.DataFrame(rows, columns=PURCHASE_COLUMNS)
    return frame.astype(
        {
            "purchase_id": "str", "card": "str", "merchant": "str", "city": "str",
            "lat": "float64", "lon": "float64", "amount": "float64",
            "event_time": "datetime64[ns, UTC]", "arrival_time": "datetime64[ns, UTC]",
        }
    )


def checked_purchases(pile: Iterable[object]) -> Iterator[Purchase]:
    """The purchases of ``pile``, refusing by position anything that is not a :class:`Purchase`."""
    for position, p in enumerate(pile):
        if not isinstance(p, Purchase):
            raise TypeError(f"purchase {position} must be a Purchase, got {type(p).__name__} {p!r:.60}")
        yield p


def check_profiles(profiles: object) -> Mapping[str, CardProfile]:
    """Return ``profiles`` if it is a table ``{card: CardProfile}`` (each under its own card), else raise naming it.

    >>> check_profiles(["card-1"])
    Traceback (most recent call last):
    ...
    TypeError: profiles must be a dict of card to CardProfile, got list ['card-1']
    """
    if not isinstance(profiles, Mapping):
        raise TypeError(f"profiles must be a dict of card to CardProfile, got {type(profiles).__name__} {profiles!r:.60}")
    for card, profile in profiles.items():
        if not isinstance(profile, CardProfile):
            raise TypeError(f"profiles[{card!r:.40}] must be a CardProfile, got {type(profile).__name__} {profile!r:.60}")
        if card != profile.card:
            raise ValueError(f"profiles[{card!r:.40}] must be the profile of that card, got card {profile.card!r:.40}")
    return profiles


def profiles_frame(profiles: Mapping[str, CardProfile]) -> pd.DataFrame:
    """Turn the card profile table into a DataFrame, one row per card, sorted by card.

    >>> profiles_frame(purchases(seed=1, cards=3).profiles)["card"].tolist()
    ['card-0', 'card-1', 'card-2']
    """
    check_profiles(profiles)
    rows = [
        (p.card, p.home_city, p.home_lat, p.home_lon, p.typical_amount, p.usual_max)
        for _, p in sorted(profiles.items())
    ]
    return pd.DataFrame(rows, columns=PROFILE_COLUMNS).astype(
        {"card": "str", "home_city": "str", "home_lat": "float64", "home_lon": "float64",
         "typical_amount": "float64", "usual_max": "float64"}
    )


# --- the seeded pipe -------------------------------------------------------------------------

#: A card's amounts are log-normal around its typical amount with this spread
#: (of the logarithm); its usual maximum is the 99th percentile, about 4x typical.
SPEND_SIGMA = 0.6
P99 = 2.326  # the standard normal's 99th percentile



def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    return haversine(a, b)


class _Card:
    """What the generator tracks about one card; detectors never see this."""

    __slots__ = ("busy_until", "home", "legs", "location", "name", "typical", "usual_max")

    def __init__(self, name: str, home: City, typical: float, usual_max: float) -> None:
        self.name = name
        self.home = home
        self.location = home
        # Trips under way: (departure, landing, destination), in time order.
        self.legs: list[tuple[datetime, datetime, City]] = []
        # No new fraud episode on a card until its current one is over.
        self.busy_until: datetime | None = None
        self.typical = typical
        self.usual_max = usual_max

    def where(self, t: datetime) -> City | None:
        """Where the cardholder is at ``t``; ``None`` while on a plane."""
        while self.legs and self.legs[0][1] <= t:
            self.location = self.legs.pop(0)[2]
        if self.legs and self.legs[0][0] <= t:
            return None
        return self.location


class PurchasePipe(Pipe):
    """An unbounded, seeded stream of card purchases in arrival order, with labelled fraud.

    Iterating yields :class:`Purchase` records only; :meth:`truth` gives the
    ground truth for the same purchases, kept apart so that no detector reads
    it. ``profiles`` is the card profile table (the context for enrichment).
    Build one with :func:`purchases`; parameters are checked there.

    It is a :class:`~streamlab.events.Pipe` (of purchases rather than events),
    so everything that refuses to read a pipe without a bound refuses this one.
    """

    def __init__(  # a Pipe of its own kind: Pipe.__init__ describes sales events, so it is not called
        self, seed: int, cards: int, rate: float, fraud: float, travel: float,
        bad: float, disorder: timedelta, start: datetime,
    ) -> None:
        self.seed, self.cards, self.rate = seed, cards, rate
        self.fraud, self.travel, self.bad = fraud, travel, bad
        self.disorder, self.start = disorder, start
        self.profiles: dict[str, CardProfile] = {}
        rng = random.Random(f"cards:{seed}")
        width = len(str(cards - 1))
        for i in range(cards):
            home = CITIES[rng.choice(HOME_CITIES)]
            typical = round(math.exp(rng.uniform(math.log(12.0), math.log(120.0))), 2)
            usual_max = round(typical * math.exp(P99 * SPEND_SIGMA), 2)
            name = f"card-{i:0{width}d}"
            self.profiles[name] = CardProfile(name, home.name, home.lat, home.lon, typical, usual_max)

    def __repr__(self) -> str:
        return (
            f"purchases(seed={self.seed}, cards={self.cards}, rate={self.rate:g}/s, fraud={self.fraud:g}, "
            f"travel={self.travel:g}, bad={self.bad:g}, disorder={self.disorder.total_seconds():g}s)"
        )

    def __len__(self) -> int:
        raise TypeError("a pipe has no length: there is no last purchase (cut a pile with take())")

    def __iter__(self) -> Iterator[Purchase]:
        return (p for p, _ in self.labelled())

    def take(self, limit: int) -> list[Purchase]:
        """Cut a pile of the first ``limit`` purchases to arrive."""
        return list(bounded(self, limit=limit))

    def arrived_before(self, until: datetime) -> list[Purchase]:
        """Cut a pile of every purchase that arrived strictly before ``until``."""
        return list(bounded(self, until=until))

    def truth(self, *, limit: int | None = None, until: datetime | None = None) -> dict[str, str]:
        """The ground truth for a cut of the pipe: ``{purchase_id: pattern}`` for each fraudulent purchase.

        The cut is the one :meth:`take` (``limit``) or :meth:`arrived_before`
        (``until``) makes; purchases that are not fraud are not listed.
        """
        bounded(self, limit=limit, until=until)  # the same checks of the bounds as the cut itself
        labelled: Iterator[tuple[Purchase, str | None]] = self.labelled()
        if until is not None:
            labelled = itertools.takewhile(lambda pl: pl[0].arrival_time < until, labelled)
        if limit is not None:
            labelled = itertools.islice(labelled, limit)
        return {p.purchase_id: label for p, label in labelled if label is not None}

    def labelled(self) -> Iterator[tuple[Purchase, str | None]]:
        """Every purchase with its label (a pattern from :data:`PATTERNS`, or ``None``), in arrival order."""
        max_delay = self.disorder.total_seconds()
        rng = random.Random(f"arrivals:{self.seed}")
        pending: list[tuple[datetime, int, Purchase, str | None]] = []
        for seq, (purchase, label) in enumerate(self._happen()):
            # A purchase can leave once the clock (the newest event time) has
            # passed its arrival: every later purchase arrives after it happens.
            while pending and pending[0][0] <= purchase.event_time:
                _, _, done, done_label = heapq.heappop(pending)
                yield done, done_label
            arrival = purchase.event_time + timedelta(seconds=rng.uniform(0.0, max_delay))
            heapq.heappush(pending, (arrival, seq, _arrive(purchase, arrival), label))

    def _happen(self) -> Iterator[tuple[Purchase, str | None]]:
        """Purchases in event-time order, each with its label; arrival times are set later."""
        rng = random.Random(f"purchases:{self.seed}")
        cards = [
            _Card(p.card, CITIES[p.home_city], p.typical_amount, p.usual_max) for p in self.profiles.values()
        ]
        scheduled: list[tuple[datetime, int, _Card, City, str, float, str]] = []
        ticket = itertools.count()
        ids = (f"p{n:08d}" for n in itertools.count())
        clock = self.start
        while True:
            clock += timedelta(seconds=rng.expovariate(self.rate))
            # Fraud scheduled earlier happens in its turn.
            while scheduled and scheduled[0][0] <= clock:
                t, _, card, city, kind, amount, label = heapq.heappop(scheduled)
                yield self._make(next(ids), card.name, city, kind, amount, t), label
            card = cards[rng.randrange(len(cards))]
            city = card.where(clock)
            if city is None:
                continue  # no shopping on a plane
            amount = rng.lognormvariate(math.log(card.typical), SPEND_SIGMA)
            if rng.random() < 0.0003:
                amount = card.usual_max * rng.uniform(2.0, 5.0)  # a legitimate splurge
            purchase = self._make(next(ids), card.name, city, rng.choice(MERCHANT_KINDS), max(amount, 0.5), clock)
            if self.bad and rng.random() < self.bad:
                purchase = _break(purchase, rng)
            yield purchase, None
            if self.fraud and rng.random() < self.fraud and (card.busy_until is None or card.busy_until < clock):
                for item in _fraud_episode(card, city, clock, rng):
                    heapq.heappush(scheduled, (item[0], next(ticket), card, *item[1:]))
                    card.busy_until = max(card.busy_until or clock, item[0])
            if self.travel and city == card.home and not card.legs and rng.random() < self.travel:
                card.legs = _trip(card.home, clock, rng)

    @staticmethod
    def _make(pid: str, card: str, city: City, kind: str, amount: float, t: datetime) -> Purchase:
        lat, lon = merchant_location(city, kind)
        return Purchase(pid, card, f"{city.name} {kind}", city.name, lat, lon, round(amount, 2), t, t)


def _arrive(p: Purchase, arrival: datetime) -> Purchase:
    return Purchase(p.purchase_id, p.card, p.merchant, p.city, p.lat, p.lon, p.amount, p.event_time, arrival)


def _break(p: Purchase, rng: random.Random) -> Purchase:
    """Spoil one field of a legitimate purchase, as real pipes do."""
    kind = rng.randrange(4)
    card, lat, lon, amount = p.card, p.lat, p.lon, p.amount
    if kind == 0:
        card = f"card-unknown-{p.purchase_id[1:]}"
    elif kind == 1:
        lat = lon = None
    elif kind == 2:
        amount = math.nan
    else:
        amount = -p.amount
    return Purchase(p.purchase_id, card, p.merchant, p.city, lat, lon, amount, p.event_time, p.arrival_time)


def _fraud_episode(card: _Card, here: City, t: datetime, rng: random.Random) -> list[tuple]:
    """A fraud episode on ``card`` starting minutes after ``t``: ``(time, city, kind, amount, label)`` items.

    Some episodes are built to slip past the rules (too few test charges, a big
    amount that is not quite big enough), as real fraud does.
    """
    start = t + timedelta(minutes=rng.uniform(2.0, 30.0))
    pattern = rng.choice(PATTERNS)
    if pattern == IMPOSSIBLE_TRAVEL:
        # A copy of the card, used far away while the cardholder shops at home.
        far = [c for c in CITIES.values() if _km((c.lat, c.lon), (here.lat, here.lon)) > 3000]
        city = rng.choice(far)
        items, at = [], start
        for _ in range(rng.randint(1, 3)):
            amount = rng.lognormvariate(math.log(card.typical * 2.0), SPEND_SIGMA)
            items.append((at, city, rng.choice(MERCHANT_KINDS), amount, IMPOSSIBLE_TRAVEL))
            at += timedelta(minutes=rng.uniform(3.0, 20.0))
        return items
    if pattern == TEST_CHARGES:
        # Small charges to see whether a stolen card number works, then the real one.
        city = here if rng.random() < 0.5 else CITIES[rng.choice(list(CITIES))]
        items, at = [], start
        for _ in range(rng.randint(2, 6)):
            items.append((at, city, "online shop", rng.uniform(0.5, 1.99), TEST_CHARGES))
            at += timedelta(seconds=rng.uniform(15.0, 120.0))
        if rng.random() < 0.6:
            at += timedelta(minutes=rng.uniform(1.0, 10.0))
            items.append((at, city, "electronics", card.usual_max * rng.uniform(2.0, 8.0), TEST_CHARGES))
        return items
    return [(start, here, "electronics", card.usual_max * rng.uniform(1.5, 8.0), BIG_AMOUNT)]


def _trip(home: City, t: datetime, rng: random.Random) -> list[tuple[datetime, datetime, City]]:
    """A legitimate trip by plane, there and back, at a speed airliners fly."""
    destination = rng.choice([c for c in CITIES.values() if c != home])
    km = _km((home.lat, home.lon), (destination.lat, destination.lon))
    # Cruise at 650-850 km/h, plus 45 minutes of taxiing, climbing and landing.
    flight = lambda: timedelta(hours=km / rng.uniform(650.0, 850.0) + 0.75)
    depart = t + timedelta(hours=rng.uniform(1.0, 8.0))
    land = depart + flight()
    back = land + timedelta(days=rng.uniform(1.0, 4.0))
    return [(depart, land, destination), (back, back + flight(), home)]


def purchases(
    seed: int = 0,
    *,
    cards: int = 1000,
    rate: float = 0.1,
    fraud: float = 0.002,
    travel: float = 0.002,
    bad: float = 0.0,
    disorder: timedelta | float = 5.0,
    start: datetime = COURSE_START,
) -> PurchasePipe:
    """Describe an unbounded, seeded pipe of card purchases, with fraud injected and labelled.

    :param seed: the same seed gives the same cards and purchases, every time.
    :param cards: how many cards (cardholders) there are; >= 1.
    :param rate: mean purchases per second over all cards (a Poisson process); > 0.
        The default, 0.1, is 8,640 purchases a day.
    :param fraud: the chance that a legitimate purchase is followed, minutes
        later, by a fraud episode on its card (impossible travel, test charges,
        or a big amount); 0 to 1.
    :param travel: the chance that a purchase at home is followed by a trip by
        plane (legitimate: at a speed airliners fly); 0 to 1.
    :param bad: the fraction of legitimate purchases with one field spoiled
        (an unknown card, no location, a NaN or a negative amount); 0 to 1.
    :param disorder: the longest a purchase may take to arrive after it
        happened, as a timedelta or in seconds; >= 0.
    :param start: timezone-aware UTC time the clock starts at.

    >>> purchases(cards=0)
    Traceback (most recent call last):
    ...
    ValueError: cards must be an int >= 1, got 0
    """
    _require(isinstance(seed, int) and not isinstance(seed, bool), "seed", "an int", seed)
    check_count("cards", cards, 1, MAX_CARDS)
    check_rate("rate", rate, "purchases per second")
    for name, value in (("fraud", fraud), ("travel", travel), ("bad", bad)):
        _require(_finite(value) and 0.0 <= value <= 1.0, name, "a fraction from 0 to 1", value)
    disorder_td = check_disorder(disorder, rate)
    check_utc("start", start)
    return PurchasePipe(seed, cards, float(rate), float(fraud), float(travel), float(bad), disorder_td, start)


# --- the adversarial trace ---------------------------------------------------------------------


@dataclass(frozen=True)
class Trace:
    """A small hand-made day: each pathology once, on its own card, plus the hard cases.

    ``purchases`` in arrival order; ``profiles`` the card table; ``truth`` the
    ground truth ``{purchase_id: pattern}``; ``cases`` one row per card saying
    what it tests and what a correct detector does with it.
    """

    purchases: list[Purchase]
    profiles: dict[str, CardProfile]
    truth: dict[str, str]
    cases: pd.DataFrame = field(repr=False)


def adversarial_trace() -> Trace:
    """Build the adversarial trace: a day on which every rule, and every hard case, happens exactly once.

    >>> trace = adversarial_trace()
    >>> len(trace.purchases), len(trace.cases), sorted(set(trace.truth.values()))
    (31, 13, ['big amount', 'impossible travel', 'test charges'])
    """
    day = COURSE_START
    at = lambda h, m, s=0: day + timedelta(hours=h, minutes=m, seconds=s)
    profiles: dict[str, CardProfile] = {}
    rows: list[tuple[Purchase, str | None]] = []
    cases: list[tuple[str, str, str]] = []

    def card(name: str, home: str, typical: float, case: str, expect: str) -> str:
        if home:
            c = CITIES[home]
            profiles[name] = CardProfile(name, home, c.lat, c.lon, typical, round(typical * math.exp(P99 * SPEND_SIGMA), 2))
        cases.append((name, case, expect))
        return name

    def swipe(name: str, city: str, kind: str, amount: float | None, happened: datetime,
              delay: timedelta = timedelta(seconds=2), label: str | None = None,
              location: bool = True) -> None:
        c = CITIES[city]
        lat, lon = merchant_location(c, kind) if location else (None, None)
        pid = f"t{len(rows):02d}"
        rows.append((Purchase(pid, name, f"{city} {kind}", city, lat, lon, amount, happened, happened + delay), label))

    c = card("card-travel", "New York", 40.0, "impossible travel: New York, then Paris 20 minutes later",
             "the Paris swipe is flagged (impossible travel)")
    swipe(c, "New York", "café", 6.5, at(9, 0))
    swipe(c, "Paris", "electronics", 310.0, at(9, 20), label=IMPOSSIBLE_TRAVEL)

    c = card("card-burst", "Chicago", 35.0, "test charges: three charges under $2 in four minutes",
             "all three small charges are flagged (test charges)")
    swipe(c, "Chicago", "grocer", 41.2, at(8, 10))
    for i, amount in enumerate((1.00, 0.50, 1.99)):
        swipe(c, "Chicago", "online shop", amount, at(11, 2 * i), label=TEST_CHARGES)

    c = card("card-amount", "Berlin", 30.0, "an amount far beyond the card's history",
             "the $2,900 purchase is flagged (big amount)")
    swipe(c, "Berlin", "café", 28.0, at(10, 0))
    swipe(c, "Berlin", "electronics", 2900.0, at(13, 30), label=BIG_AMOUNT)

    c = card("card-late-pair", "London", 25.0,
             "an impossible pair arriving out of order: the earlier London swipe arrives 45 minutes late",
             "the Tokyo swipe is flagged, by both drivers")
    swipe(c, "London", "pharmacy", 12.0, at(10, 0), delay=timedelta(minutes=45))
    swipe(c, "Tokyo", "restaurant", 95.0, at(10, 30), label=IMPOSSIBLE_TRAVEL)

    c = card("card-same-second", "Madrid", 30.0, "two swipes at the same second, in Madrid and in Rome",
             "the Rome swipe (farther from home) is flagged")
    swipe(c, "Madrid", "grocer", 22.0, at(15, 0))
    swipe(c, "Rome", "restaurant", 64.0, at(15, 0), label=IMPOSSIBLE_TRAVEL)

    c = card("card-double-swipe", "Paris", 20.0, "the same purchase swiped twice at the same second",
             "nothing is flagged: no distance, no travel")
    swipe(c, "Paris", "café", 4.2, at(8, 30))
    swipe(c, "Paris", "café", 4.2, at(8, 30))

    c = card("card-dateline", "Suva", 30.0, "Suva, then Apia 10 minutes later, across the antimeridian",
             "the Apia swipe is flagged (impossible travel)")
    swipe(c, "Suva", "café", 9.0, at(12, 0))
    swipe(c, "Apia", "electronics", 150.0, at(12, 10), label=IMPOSSIBLE_TRAVEL)

    c = card("card-dateline-hop", "Suva", 30.0, "Suva, then Apia 3 hours later: a short flight across the antimeridian",
             "nothing is flagged (naively subtracting longitudes, 350° apart, would flag it)")
    swipe(c, "Suva", "café", 7.0, at(6, 0))
    swipe(c, "Apia", "restaurant", 48.0, at(9, 0))

    c = card("card-flight", "New York", 60.0, "a real flight: New York, then London 7 h 15 min later",
             "nothing is flagged: an airliner flies that fast")
    swipe(c, "New York", "fuel station", 55.0, at(7, 45))
    swipe(c, "London", "restaurant", 70.0, at(15, 0))

    c = card("card-unprofiled", "", 0.0, "a card with no profile (not in the card table)",
             "both swipes are routed aside: unknown card")
    swipe(c, "Toronto", "grocer", 30.0, at(9, 5))
    swipe(c, "Toronto", "café", 5.0, at(9, 40))

    c = card("card-broken", "Amsterdam", 25.0, "broken records: no location, a NaN amount, a negative amount",
             "three swipes routed aside, each with its reason; the good one is checked")
    swipe(c, "Amsterdam", "café", 3.5, at(9, 0))
    swipe(c, "Amsterdam", "grocer", 18.0, at(10, 0), location=False)
    swipe(c, "Amsterdam", "bookshop", math.nan, at(11, 0))
    swipe(c, "Amsterdam", "pharmacy", -12.0, at(12, 0))

    c = card("card-too-late", "Sydney", 40.0, "a swipe that arrives 3 hours after a later swipe of its card",
             "routed aside: too late to be checked against a history the stream no longer holds")
    swipe(c, "Sydney", "café", 5.0, at(16, 0))
    swipe(c, "Sydney", "grocer", 33.0, at(14, 0), delay=timedelta(hours=5))

    c = card("card-quiet", "Tokyo", 50.0, "an ordinary day: three purchases at home",
             "nothing is flagged")
    for h, kind, amount in ((8, "café", 4.0), (12, "restaurant", 38.0), (19, "grocer", 61.0)):
        swipe(c, "Tokyo", kind, amount, at(h, 0))

    ordered = sorted(rows, key=lambda r: r[0].arrival_time)  # stable: ties keep their order
    return Trace(
        purchases=[p for p, _ in ordered],
        profiles=profiles,
        truth={p.purchase_id: label for p, label in ordered if label is not None},
        cases=pd.DataFrame(cases, columns=["card", "case", "expected"]),
    )


# --- the card table as it changes, and authorisation confirmations --------------------------


@dataclass(frozen=True, slots=True)
class ProfileChange:
    """A new version of a card's profile: what it says, when it took effect, and when it reached the stream.

    The card table is not frozen: a cardholder moves, a limit is raised. Each
    change is a row of the table's changelog, as in lesson 02: ``profile`` is
    the card's whole profile from ``event_time`` (when the change took effect)
    on, until the card's next change; ``arrival_time`` is when the stream heard
    of it. ``what`` says what changed, for people.

    >>> t = COURSE_START
    >>> p = CardProfile("card-1", "Paris", 48.86, 2.35, 30.0, 120.0)
    >>> ProfileChange("c1", p, "limit raised", t, t + timedelta(minutes=3)).card
    'card-1'
    >>> ProfileChange("c1", "card-1", "moved", t, t)
    Traceback (most recent call last):
    ...
    TypeError: profile must be a CardProfile, got str 'card-1'
    """

    change_id: str
    profile: CardProfile
    what: str
    event_time: datetime
    arrival_time: datetime

    def __post_init__(self) -> None:
        check_key("change_id", self.change_id)
        if not isinstance(self.profile, CardProfile):
            raise TypeError(f"profile must be a CardProfile, got {type(self.profile).__name__} {self.profile!r:.60}")
        if not isinstance(self.what, str):
            raise TypeError(f"what must be a string, got {type(self.what).__name__} {self.what!r:.60}")
        check_utc("event_time", self.event_time)
        check_utc("arrival_time", self.arrival_time)

    @property
    def card(self) -> str:
        """The card whose profile changed."""
        return self.profile.card


@dataclass(frozen=True, slots=True)
class Confirmation:
    """The card network's answer to a purchase: which purchase, when it was authorised, when that reached us.

    >>> t = COURSE_START
    >>> Confirmation("p1", "card-1", t, t + timedelta(seconds=1)).arrival_time - t
    datetime.timedelta(seconds=1)
    """

    purchase_id: str
    card: str
    event_time: datetime
    arrival_time: datetime

    def __post_init__(self) -> None:
        check_key("purchase_id", self.purchase_id)
        check_key("card", self.card)
        check_utc("event_time", self.event_time)
        check_utc("arrival_time", self.arrival_time)


#: What a profile change does to the card table.
MOVED = "moved"
LIMIT_RAISED = "limit raised"


def profile_changes(
    bank: PurchasePipe, until: datetime, *, share: float = 0.01, lag: timedelta | float = 600.0
) -> list[ProfileChange]:
    """The card table's changelog for the purchases that arrived before ``until``, in arrival order.

    Seeded by the pipe's seed, next to its purchases (which it leaves as they
    are). Changes happen where they matter: a ``share`` of the purchases is
    preceded, by up to ``lag``, by a change to its card's profile (a limit
    raised for a purchase, or a new home city keyed in as the cardholder starts
    shopping there). Each change reaches the stream up to ``lag`` after it took
    effect, and before ``until`` (later ones belong to the next cut).

    >>> bank = purchases(seed=1)
    >>> changes = profile_changes(bank, COURSE_START + timedelta(hours=6))
    >>> len(changes), changes[0].what, changes[0].change_id
    (28, 'limit raised', 'c0000')
    >>> max(c.arrival_time - c.event_time for c in changes) <= timedelta(minutes=10)
    True
    """
    if not isinstance(bank, PurchasePipe):
        raise TypeError(f"bank must be a pipe from purchases(), got {type(bank).__name__} {bank!r:.60}")
    check_utc("until", until)
    _require(_finite(share) and 0.0 <= share <= 1.0, "share", "a fraction from 0 to 1", share)
    lag_td = duration("lag", lag)
    _require(lag_td >= timedelta(0), "lag", ">= 0", lag)
    rng = random.Random(f"profile-changes:{bank.seed}")
    current = dict(bank.profiles)
    made: list[ProfileChange] = []
    pile = sorted(bank.arrived_before(until), key=lambda p: (p.event_time, p.purchase_id))
    for purchase in pile:
        if rng.random() >= share or purchase.card not in current:
            continue
        took_effect = max(bank.start, purchase.event_time - timedelta(seconds=rng.uniform(0.0, lag_td.total_seconds())))
        arrived = took_effect + timedelta(seconds=rng.uniform(0.0, lag_td.total_seconds()))
        old = current[purchase.card]
        if rng.random() < 0.5:
            what = LIMIT_RAISED
            new = CardProfile(old.card, old.home_city, old.home_lat, old.home_lon, old.typical_amount,
                              round(old.usual_max * rng.uniform(1.5, 3.0), 2))
        else:
            what = MOVED
            home = CITIES[rng.choice([c for c in HOME_CITIES if c != old.home_city])]
            new = CardProfile(old.card, home.name, home.lat, home.lon, old.typical_amount, old.usual_max)
        current[purchase.card] = new
        if arrived < until:
            made.append(ProfileChange(f"c{len(made):04d}", new, what, took_effect, arrived))
    return sorted(made, key=lambda c: (c.arrival_time, c.change_id))


def confirmations(
    bank: PurchasePipe, pile: Iterable[Purchase], *, within: timedelta | float = 4.0,
    late: float = 0.02, missing: float = 0.005,
) -> list[Confirmation]:
    """The card network's authorisation confirmations of a pile's purchases, in arrival order.

    Seeded by the pipe's seed. Most purchases are confirmed up to ``within``
    after they happened; a ``late`` share is confirmed 10 seconds to 2 minutes
    after; a ``missing`` share never is. A confirmation reaches us up to the
    pipe's ``disorder`` after it was made, like a purchase.

    >>> bank = purchases(seed=1)
    >>> pile = bank.take(1000)
    >>> confirmed = confirmations(bank, pile)
    >>> happened = {p.purchase_id: p.event_time for p in pile}
    >>> len(confirmed), sum(c.event_time - happened[c.purchase_id] > timedelta(seconds=4) for c in confirmed)
    (996, 18)
    """
    if not isinstance(bank, PurchasePipe):
        raise TypeError(f"bank must be a pipe from purchases(), got {type(bank).__name__} {bank!r:.60}")
    within_td = duration("within", within)
    _require(within_td >= timedelta(0), "within", ">= 0", within)
    for name, value in (("late", late), ("missing", missing)):
        _require(_finite(value) and 0.0 <= value <= 1.0, name, "a fraction from 0 to 1", value)
    rng = random.Random(f"confirmations:{bank.seed}")
    made: list[Confirmation] = []
    for p in checked_purchases(finite(pile)):
        draw = rng.random()
        if draw < missing:
            continue
        if draw < missing + late:
            after = rng.uniform(10.0, 120.0)
        else:
            after = rng.uniform(0.2, within_td.total_seconds())
        at = p.event_time + timedelta(seconds=after)
        made.append(Confirmation(p.purchase_id, p.card, at, at + timedelta(seconds=rng.uniform(0.0, bank.disorder.total_seconds()))))
    return sorted(made, key=lambda c: (c.arrival_time, c.purchase_id))
