"""Checks for the exercises of lesson 05, fraud detection.

1. ``swipe_speed``: a function ``speed_kmh(first, second)`` returning how fast
   a cardholder would have to travel, in km/h, to make both swipes.
2. ``precision_recall``: a function ``precision_recall(alerts, truth)``
   returning the precision and the recall of a set of alerts against the
   ground truth, counted in purchases.
3. ``evidence_complete``: a function ``evidence_complete(travel, pile)``
   returning, for each impossible-travel alert, when the bank had both swipes
   of the pair: the earliest moment any detector could have raised it.
4. ``many_cities``: a new rule, ``many_cities(purchase, profile, history,
   rules, count, window)``, written once and plugged into both drivers
   (``Rules(extra=...)``); they must raise identical alerts, and flag exactly
   the swipes :func:`many_cities_batch` flags.
5. ``engine_mapper``: ``decide_card(history, purchase, card_table)``, the
   ``stateful_flat_map`` mapper of the lesson's plain dataflow: the card's
   history as state, the library's rules called, the alerts emitted. The check
   runs it in a bytewax dataflow keyed by card.

The checks run the learner's function on the lesson's data (its bank, seed 8,
and its adversarial trace) and on fresh data: hand-made pairs of swipes across
the antimeridian and at the same second, other seeds whose purchases take up to
half an hour to arrive, cards built to tell the typical mistakes apart. Each
check computes those mistakes' answers on the same data, to say which one it
sees.
"""

from __future__ import annotations

import functools
import inspect
import math
import random
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import bytewax.operators as op
import numpy as np
import pandas as pd

from streamlab import batch, stream
from streamlab.events import COURSE_START, _is_number
from streamlab.exercises import Feedback, Mistake, checker, correct
from streamlab.exercises.differ import (
    Case,
    Exercise,
    Known,
    Raised,
    dataflow_cause,
    fresh,
    resuming,
    run_flow,
    show_time,
)
from streamlab.fraud import (
    AMOUNT,
    BURST,
    TRAVEL,
    Alert,
    CardHistory,
    Detection,
    Rules,
    decide,
    detect_loop,
    distance_km,
)
from streamlab.purchases import (
    CITIES,
    P99,
    PATTERNS,
    SPEND_SIGMA,
    CardProfile,
    Purchase,
    PurchasePipe,
    Trace,
    adversarial_trace,
    merchant_location,
    purchases,
    purchases_frame,
)

__all__ = [
    "CITY_COUNT",
    "CITY_WINDOW",
    "MANY_CITIES",
    "engine_mapper",
    "evidence_complete",
    "many_cities",
    "many_cities_batch",
    "precision_recall",
    "swipe_speed",
]

#: The lesson's bank: ``purchases(seed=8)``.
LESSON_SEED = 8
BUILT_IN = (TRAVEL, BURST, AMOUNT)


def _quietly(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the learner's function with numpy's warnings off: 1.0 / 0 in numpy is inf, as in the notebook."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


# -- 1. How fast between two swipes? -------------------------------------------------------------

@dataclass(frozen=True)
class _Pair:
    first: Purchase
    second: Purchase
    label: str

    @property
    def same_second(self) -> bool:
        return self.first.event_time == self.second.event_time

    @property
    def same_place(self) -> bool:
        return (self.first.lat, self.first.lon) == (self.second.lat, self.second.lon)

    @property
    def crosses_antimeridian(self) -> bool:
        return abs(self.first.lon - self.second.lon) > 180.0


def _swipe(pid: str, city: str, where: tuple[float, float], happened: datetime, delay: timedelta) -> Purchase:
    return Purchase(pid, "card-speed", f"{city} shop", city, where[0], where[1], 20.0, happened, happened + delay)


@functools.lru_cache(maxsize=1)
def _pairs() -> tuple[_Pair, ...]:
    """Pairs of swipes: the lesson's hard cases (antimeridian, same second, both orders), then fresh random ones."""
    t = COURSE_START + timedelta(hours=9)
    s, m, h = (lambda n: timedelta(seconds=n)), (lambda n: timedelta(minutes=n)), (lambda n: timedelta(hours=n))
    at = lambda city, kind: merchant_location(CITIES[city], kind)  # noqa: E731
    # Taveuni (Fiji) lies across the 180th meridian: two shops ten kilometres apart, 359.9° apart in longitude.
    taveuni_west, taveuni_east = (-16.80, 179.95), (-16.84, -179.95)
    ny = _swipe("s01", "New York", at("New York", "café"), t, s(3))
    paris = _swipe("s02", "Paris", at("Paris", "electronics"), t + m(20), m(40))
    suva = _swipe("s03", "Suva", at("Suva", "café"), t, s(2))
    apia = _swipe("s04", "Apia", at("Apia", "electronics"), t + m(10), m(25))
    pairs = [
        _Pair(ny, paris, "New York, then Paris 20 minutes later"),
        _Pair(paris, ny, "the same pair, given Paris first"),
        _Pair(suva, apia, "Suva, then Apia 10 minutes later"),
        _Pair(
            _swipe("s05", "Apia", at("Apia", "grocer"), t, m(30)),
            _swipe("s06", "Suva", at("Suva", "pharmacy"), t + h(3), s(4)),
            "Apia, then Suva 3 hours later",
        ),
        _Pair(
            _swipe("s07", "Taveuni", taveuni_west, t, s(5)),
            _swipe("s08", "Taveuni", taveuni_east, t + m(25), m(9)),
            "two shops in Taveuni, on either side of the 180th meridian, 25 minutes apart",
        ),
        _Pair(
            _swipe("s09", "Madrid", at("Madrid", "grocer"), t + h(6), s(1)),
            _swipe("s10", "Rome", at("Rome", "restaurant"), t + h(6), m(5)),
            "Madrid and Rome at the same second",
        ),
        _Pair(
            _swipe("s11", "Paris", at("Paris", "café"), t + h(1), s(2)),
            _swipe("s12", "Paris", at("Paris", "café"), t + h(1), s(7)),
            "the same café at the same second (a double swipe)",
        ),
        _Pair(
            _swipe("s13", "Paris", at("Paris", "café"), t + h(2), s(2)),
            _swipe("s14", "Paris", at("Paris", "café"), t + h(2) + m(10), m(12)),
            "the same café, 10 minutes apart",
        ),
        _Pair(
            _swipe("s15", "Paris", at("Paris", "café"), t + h(3), s(2)),
            _swipe("s16", "Paris", at("Paris", "grocer"), t + h(3) + m(7), s(3)),
            "two shops in Paris, 7 minutes apart",
        ),
        _Pair(
            _swipe("s17", "New York", at("New York", "fuel station"), t - m(75), s(2)),
            _swipe("s18", "London", at("London", "restaurant"), t + h(6), m(2)),
            "New York, then London 7 h 15 min later (a real flight)",
        ),
    ]
    rng = random.Random("lesson05: fresh pairs of swipes")
    names = sorted(CITIES)
    kinds = ("café", "grocer", "restaurant", "electronics")
    for i in range(14):
        a, b = rng.sample(names, 2)
        start = t + timedelta(seconds=rng.uniform(0, 12 * 3600))
        gap = timedelta(seconds=round(math.exp(rng.uniform(math.log(60), math.log(20 * 3600)))))
        one = _swipe(f"f{i:02d}a", a, at(a, rng.choice(kinds)), start, timedelta(seconds=rng.uniform(0, 2700)))
        two = _swipe(f"f{i:02d}b", b, at(b, rng.choice(kinds)), start + gap, timedelta(seconds=rng.uniform(0, 2700)))
        # Every other pair is given later swipe first: a check passes swipes in the order they arrived.
        pairs.append(_Pair(two, one, f"{b}, then {a}") if i % 2 else _Pair(one, two, f"{a}, then {b}"))
    return tuple(pairs)


def _km_degrees(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The haversine formula fed degrees where it needs radians (NaN where it breaks down)."""
    a = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a)) if 0 <= a <= 1 else math.nan


def _speed(
    pair: _Pair, *, clock: str = "event_time", km: Callable[..., float] = distance_km, seconds_of: str = "abs"
) -> float:
    """The speed of a pair (the answer with the defaults; a typical mistake with others)."""
    a, b = pair.first, pair.second
    gap = getattr(b, clock) - getattr(a, clock)
    seconds = {"abs": abs(gap).total_seconds(), "signed": gap.total_seconds(), "dot": float(gap.seconds)}[seconds_of]
    d = km(a.lat, a.lon, b.lat, b.lon)
    if seconds == 0:
        return math.inf if d > 0 else 0.0
    return d * 3600.0 / seconds


def _close(got: float, want: float) -> bool:
    """Equal within 1%: other Earth radii (6,371 or 6,378 km) and the ellipsoid are right too."""
    if math.isnan(want) or math.isnan(got):
        return False
    if math.isinf(want) or math.isinf(got):
        return got == want
    return abs(got - want) <= 0.01 * abs(want) + 1e-6


def _matches(got: list[float], model: list[float]) -> bool:
    """Whether the answers are a model's, on every pair where that model gives a number."""
    defined = [(g, w) for g, w in zip(got, model, strict=True) if not math.isnan(w)]
    return len(defined) >= len(got) // 2 and all(_close(g, w) for g, w in defined)


def _pair_of(case: Case) -> _Pair:
    return _Pair(case.args[0], case.args[1], case.label)


def _speed_meaning(answer: Any, case: Case) -> Any:
    if isinstance(answer, Raised):
        return answer
    if isinstance(answer, timedelta):
        raise Mistake("return a speed in km/h (a number), not a duration.")
    if not _is_number(answer):
        raise Mistake(f"return the speed in km/h as one number; got {type(answer).__name__} {answer!r:.60}.")
    return float(answer)


def _same_speed(got: Any, want: Any) -> bool:
    if isinstance(got, Raised) or isinstance(want, Raised):
        return got == want
    return (math.isnan(got) and math.isnan(want)) or _close(got, want)


def _show_swipe(p: Purchase) -> str:
    return (f"{p.purchase_id} in {p.city} ({p.lat:.4f}, {p.lon:.4f}), happened {show_time(p.event_time)}, "
            f"arrived {show_time(p.arrival_time)}")


def _speed_model(**how: Any) -> Callable[[Purchase, Purchase], float]:
    return lambda first, second: _speed(_Pair(first, second, ""), **how)


def _raised(kind: type, text: str = "") -> Callable[[Any, Any, Case], bool]:
    return lambda got, want, case: isinstance(got, Raised) and issubclass(got.error, kind) and text in got.message


_SAME_SECOND = (
    "two swipes at the same second: two different places are the most impossible travel of all (its speed is "
    "math.inf), the same place is no travel at all (0)."
)

SPEED = Exercise(
    solution=_speed_model(),
    cases=lambda: [Case((p.first, p.second), p.label, items=None) for p in _pairs()],
    call=lambda fn, case: _quietly(fn, *case.args),
    meaning=_speed_meaning,
    same=_same_speed,
    describe=lambda case: f"with {case.label}: {_show_swipe(case.args[0])}; then {_show_swipe(case.args[1])}",
    show=lambda x: repr(x) if isinstance(x, Raised) else f"{x:,.1f} km/h",
    known=(
        Known("your code divided by zero: no time passed between the swipes. Decide that case before dividing: "
              + _SAME_SECOND, when=_raised(ZeroDivisionError)),
        Known("your code raised 'math domain error': a function got a value outside its range. Typical causes: "
              "degrees where radians are needed (math.sin and math.cos take radians: convert with math.radians), or "
              "math.acos of a number a rounding error above 1, as the law of cosines gives for two swipes at the same "
              "place. distance_km avoids both.", when=_raised(ValueError, "math domain error")),
        Known("your speed is negative: the check passes the two swipes in the order they arrived, which is not always "
              "the order they happened. The time between them is a positive duration.",
              when=lambda got, want, case: isinstance(got, float) and got < 0),
        Known("your speeds are in miles per hour: the rule's threshold is in km/h. Use kilometres (distance_km, or "
              "haversine's default unit).", model=_speed_model(km=lambda *ll: distance_km(*ll) / 1.609344)),
        Known("your distances are wrong in a way typical of degrees fed to math.sin and math.cos, which take "
              "radians: convert with math.radians, or use distance_km.", model=_speed_model(km=_km_degrees)),
        Known("you timed the swipes by arrival_time, when each reached the bank. How fast someone travelled depends "
              "on when the swipes *happened*: use event_time.", model=_speed_model(clock="arrival_time")),
        Known("timedelta.seconds is only the seconds part of a duration: a negative one (swipes given later one "
              "first) wraps around a day.", model=_speed_model(seconds_of="dot")),
        *(Known(f"your speeds are in {unit}: give them in km per hour.",
                model=lambda a, b, f=factor: _speed(_Pair(a, b, "")) * f)
          for factor, unit in ((1 / 3.6, "metres per second"), (1 / 60, "km per minute"), (1 / 3600, "km per second"))),
        Known("that is the distance between the swipes: divide by the time between them, in hours.",
              model=lambda a, b: distance_km(a.lat, a.lon, b.lat, b.lon)),
        Known(_SAME_SECOND[0].upper() + _SAME_SECOND[1:],
              when=lambda got, want, case: _pair_of(case).same_second and not isinstance(got, Raised)),
        Known("your speed is far too high for swipes on either side of the antimeridian (longitude ±180°), where "
              "longitudes jump from 180 to -180: subtracting them gives nearly 360°, the long way round the globe. "
              "Use the great-circle distance (distance_km), which gets that right.",
              when=lambda got, want, case: _pair_of(case).crosses_antimeridian and isinstance(got, float)
              and got > 5 * want),
    ),
)


@checker
def swipe_speed(fn: Callable[[Purchase, Purchase], Any]) -> Feedback:
    """Check ``speed_kmh(first, second)``: great-circle distance over the time between the swipes, in km/h."""
    SPEED.compare(fn)
    return correct(
        f"your speeds are right on all {len(_pairs())} pairs: in both orders, across the antimeridian, and at the "
        "same second."
    )


# -- the detections the later checks use -----------------------------------------------------------

@dataclass(frozen=True, eq=False)  # hashed by identity: a cache key for its detections
class _Day:
    """A pile with what the checks need about it, computed once."""

    pile: tuple[Purchase, ...]
    profiles: Mapping[str, CardProfile]
    truth: Mapping[str, str]

    def copy_pile(self) -> list[Purchase]:
        return list(self.pile)  # purchases are frozen: a new list is all the learner needs


@functools.lru_cache(maxsize=16)
def _day(seed: int, hours: float, **kwargs: Any) -> _Day:
    bank = purchases(seed=seed, **kwargs)
    until = COURSE_START + timedelta(hours=hours)
    return _Day(tuple(bank.arrived_before(until)), bank.profiles, bank.truth(until=until))


def _small_day(seed: int, hours: float, **kwargs: Any) -> _Day:
    """A few hours with more fraud, trips and broken records than a real day, purchases up to 30 min in transit."""
    base = {"cards": 60, "rate": 0.06, "fraud": 0.03, "travel": 0.03, "bad": 0.01, "disorder": 1800.0}
    return _day(seed, hours, **{**base, **kwargs})


@functools.lru_cache(maxsize=16)
def _detect(day: _Day, driver: str, rules: Rules = Rules(), batch_size: int = 1000) -> Detection:
    if driver == "batch":
        return batch.detect_fraud(list(day.pile), day.profiles, rules=rules)
    return stream.detect_fraud(list(day.pile), day.profiles, rules=rules, batch_size=batch_size)


# -- 2. Precision and recall -----------------------------------------------------------------------

@dataclass(frozen=True)
class _Scored:
    alerts: pd.DataFrame
    truth: Mapping[str, str]
    what: str

    @property
    def flagged(self) -> set[str]:
        return set(self.alerts["purchase_id"])

    def score(self, flagged: set[str] | None = None) -> tuple[float, float]:
        """(precision, recall) in purchases; NaN where undefined (nothing flagged; no fraud)."""
        flagged = self.flagged if flagged is None else flagged
        fraud = set(self.truth)
        hits = len(flagged & fraud)
        return (hits / len(flagged) if flagged else math.nan, hits / len(fraud) if fraud else math.nan)

    def per_alert(self) -> tuple[float, float]:
        """Counted in alerts: an impossible-travel fraud pairs with several swipes, so it counts several times."""
        hits = int(self.alerts["purchase_id"].isin(list(self.truth)).sum())
        return (hits / len(self.alerts) if len(self.alerts) else math.nan, hits / len(self.truth) if self.truth else math.nan)

    def with_partners(self) -> tuple[float, float]:
        partners = set(self.alerts["partner_id"].dropna())
        return self.score(self.flagged | partners)


@functools.lru_cache(maxsize=1)
def _scored_cases() -> tuple[_Scored, ...]:
    lesson = _day(LESSON_SEED, 8)
    fresh = _small_day(41, 3)
    quiet = _day(61, 6, cards=50, rate=0.05, fraud=0.0, travel=0.02)  # no fraud at all
    lesson_alerts = _detect(lesson, "stream").alerts
    fresh_alerts = _detect(fresh, "batch").alerts
    return (
        _Scored(lesson_alerts, lesson.truth, "the stream's alerts on the lesson's first eight hours"),
        _Scored(_detect(lesson, "batch", Rules(amount_factor=1.5)).alerts, lesson.truth,
                "the alerts of a lower big-amount threshold (1.5×)"),
        _Scored(fresh_alerts[fresh_alerts["rule"] == TRAVEL], fresh.truth, "a fresh day's impossible-travel alerts"),
        _Scored(lesson_alerts.iloc[0:0], lesson.truth, "no alerts at all"),
        _Scored(_detect(quiet, "batch", Rules(amount_factor=1.0)).alerts, quiet.truth,
                "a day without fraud, with a low big-amount threshold"),
    )


def _two_numbers(answer: Any) -> tuple[Any, Any]:
    """Accept (precision, recall) as a pair, a dict or a Series with those keys, or an object with those attributes."""
    if isinstance(answer, (Mapping, pd.Series)):
        keys = {str(k).lower(): k for k in answer.keys()}
        if "precision" in keys and "recall" in keys:
            return answer[keys["precision"]], answer[keys["recall"]]
        if isinstance(answer, Mapping):
            raise Mistake("your dict needs the keys 'precision' and 'recall'.")
    if hasattr(answer, "precision") and hasattr(answer, "recall") and not isinstance(answer, (tuple, list)):
        return answer.precision, answer.recall
    if isinstance(answer, pd.Series) and len(answer) == 2:
        return answer.iloc[0], answer.iloc[1]
    if isinstance(answer, (tuple, list, np.ndarray)) and len(answer) == 2:
        return answer[0], answer[1]
    if _is_number(answer):
        raise Mistake("return two numbers, (precision, recall); you returned one.")
    raise Mistake(f"return (precision, recall), two numbers; got {type(answer).__name__}.")


def _as_fraction(x: Any, name: str) -> float:
    if x is None:
        return math.nan
    if not _is_number(x):
        raise Mistake(f"your {name} should be a number; got {type(x).__name__} {x!r}.")
    return float(x)


def _same_fraction(got: float, want: float) -> bool:
    """Equal to within rounding to three decimals; where undefined (NaN), NaN, None or 0 are all fine."""
    if math.isnan(want):
        return math.isnan(got) or got == 0
    return not math.isnan(got) and abs(got - want) <= 0.0006


def _scored_of(case: Case) -> _Scored:
    alerts, rows, truth = case.args
    return _Scored(alerts.iloc[list(rows)].reset_index(drop=True), truth, case.label)


@functools.lru_cache(maxsize=1)
def _generated_scores() -> tuple[Case, ...]:
    """Small sets of alerts cut from the lesson's and a fresh day's, with a truth made to tell the mistakes apart:
    purchases blamed by several alerts, partners that are fraud themselves or not, no alert, no fraud."""
    rng = random.Random("lesson05: generated scores")
    pool = [s.alerts.reset_index(drop=True) for s in _scored_cases()[:3]]
    cases = []
    for i in range(24):
        alerts = pool[i % len(pool)]
        # Alerts of a few purchases, all of each purchase's alerts (so that one purchase is blamed several times).
        ids = list(dict.fromkeys(alerts["purchase_id"]))
        chosen = set(rng.sample(ids, min(len(ids), rng.randint(0, 4))))
        rows = [j for j, pid in enumerate(alerts["purchase_id"]) if pid in chosen]
        partners = [x for x in alerts.iloc[rows]["partner_id"].dropna()]
        candidates = sorted(chosen | set(partners) | {f"p-missed-{k}" for k in range(3)})
        truth = {pid: "fraud" for pid in rng.sample(candidates, rng.randint(0, len(candidates)))}
        cases.append(Case((alerts, rows, truth), items=1))
    return tuple(cases)


def _score_cases() -> list[Case]:
    lessons = [Case((c.alerts.reset_index(drop=True), list(range(len(c.alerts))), dict(c.truth)), c.what, items=1)
               for c in _scored_cases()]
    return [*_generated_scores(), *lessons]


def _score_meaning(answer: Any, case: Case) -> Any:
    if isinstance(answer, Raised):
        return answer
    raw = _two_numbers(answer)
    return (_as_fraction(raw[0], "precision"), _as_fraction(raw[1], "recall"))


def _same_score(got: Any, want: Any) -> bool:
    if isinstance(got, Raised) or isinstance(want, Raised):
        return got == want
    return all(_same_fraction(g, w) or (math.isnan(g) and math.isnan(w)) for g, w in zip(got, want, strict=True))


def _describe_score(case: Case) -> str:
    scored = _scored_of(case)
    lines = [f"  {pid}, partner {partner if isinstance(partner, str) else 'none'}"
             for pid, partner in zip(scored.alerts["purchase_id"], scored.alerts["partner_id"])]
    alerts = (f"these {len(lines)} alerts (purchase_id, partner_id):\n" + "\n".join(lines)) if lines else "no alerts"
    return f"with {alerts}\nand truth's keys {sorted(scored.truth) or 'none (no fraud)'}"


def _show_score(x: Any) -> str:
    if isinstance(x, Raised):
        return repr(x)
    return "precision {}, recall {}".format(*("undefined" if math.isnan(v) else f"{v:.3g}" for v in x))


def _scored_model(how: Callable[[_Scored], tuple[float, float]]) -> Callable[..., Any]:
    """A mistake's answer as a function of the case (its model cannot be a function of alerts and truth alone)."""
    return how


def _score_call(fn: Callable[..., Any], case: Case) -> Any:
    if getattr(fn, "_scored", False):
        return fn(_scored_of(case))
    scored = _scored_of(case)
    return _quietly(fn, scored.alerts.copy(), dict(scored.truth))


def _on_scored(how: Callable[[_Scored], Any]) -> Callable[..., Any]:
    how._scored = True  # type: ignore[attr-defined]
    return how


def _right_one(index: int) -> Callable[[Any, Any, Case], bool]:
    def test(got: Any, want: Any, case: Case) -> bool:
        return (isinstance(got, tuple) and _same_fraction(got[index], want[index])
                and not _same_fraction(got[1 - index], want[1 - index]))

    return test


def _zero_division(empty: bool) -> Callable[[Any, Any, Case], bool]:
    def test(got: Any, want: Any, case: Case) -> bool:
        scored = _scored_of(case)
        return (isinstance(got, Raised) and issubclass(got.error, ZeroDivisionError)
                and (scored.alerts.empty if empty else not scored.truth))

    return test


SCORE = Exercise(
    solution=_on_scored(lambda scored: scored.score()),
    cases=_score_cases,
    call=_score_call,
    meaning=_score_meaning,
    same=_same_score,
    describe=_describe_score,
    show=_show_score,
    known=(
        Known("your code divided by zero when there were no alerts at all: with nothing flagged, precision (a share "
              "of the flagged purchases) is undefined, and an undefined number has its own value in Python.",
              when=_zero_division(empty=True)),
        Known("your code divided by zero on a day without fraud: recall (a share of the fraudulent purchases) is "
              "then undefined, and an undefined number has its own value in Python.",
              when=_zero_division(empty=False)),
        Known("those are percentages: give precision and recall as fractions from 0 to 1.",
              model=_on_scored(lambda scored: tuple(100 * x for x in scored.score()))),
        Known("precision and recall are swapped. Precision: of the purchases flagged, the share that were fraud. "
              "Recall: of the fraudulent purchases, the share that were flagged.",
              model=_on_scored(lambda scored: scored.score()[::-1])),
        Known("you counted alerts. A purchase can be blamed by several alerts (an impossible travel fraud pairs with "
              "several of the cardholder's swipes): count purchases, the distinct purchase_id values.",
              model=_on_scored(lambda scored: scored.per_alert())),
        Known("you counted the partner_id of impossible-travel alerts as flagged. The partner is the other swipe of "
              "the pair, usually the cardholder's own; only purchase_id is blamed.",
              model=_on_scored(lambda scored: scored.with_partners())),
        Known("one of your numbers is above 1. A share cannot be: you counted some purchases more than once. A "
              "purchase blamed by several alerts is one flagged purchase.",
              when=lambda got, want, case: isinstance(got, tuple) and any(g > 1 for g in got if not math.isnan(g))),
        Known("you found no fraud among the flagged purchases, yet there is some. truth maps purchase_id to its "
              "pattern: compare the alerts' purchase_id values with its keys.",
              when=lambda got, want, case: isinstance(got, tuple) and got == (0.0, 0.0)
              and bool(_scored_of(case).flagged & set(case.args[2]))),
        Known("your precision is right and your recall is not. Recall: of the fraudulent purchases (the keys of "
              "truth), the share that were flagged.", when=_right_one(0)),
        Known("your recall is right and your precision is not. Precision: of the purchases flagged (the distinct "
              "purchase_id values of the alerts), the share that were fraud.", when=_right_one(1)),
    ),
)


@checker
def precision_recall(fn: Callable[[pd.DataFrame, dict[str, str]], Any]) -> Feedback:
    """Check ``precision_recall(alerts, truth)``: precision and recall, counted in purchases."""
    SCORE.compare(fn)
    return correct("your precision and recall are right, counted in purchases, including when they are undefined.")


# -- 3. When could the bank have known? ------------------------------------------------------------

@dataclass(frozen=True)
class _TravelCase:
    travel: pd.DataFrame
    day: _Day
    what: str

    def times(self, column: str) -> dict[str, pd.Timestamp]:
        return {p.purchase_id: pd.Timestamp(getattr(p, column)) for p in self.day.pile}

    def model(self, how: str, column: str = "arrival_time") -> pd.Series:
        """The answer (``max`` of arrivals) or a typical mistake, one time per alert."""
        t = self.times(column)
        blamed = self.travel["purchase_id"].map(t)
        partner = self.travel["partner_id"].map(t)
        both = pd.concat([blamed, partner], axis=1)
        out = {"max": both.max(axis=1), "min": both.min(axis=1), "blamed": blamed, "partner": partner}[how]
        return out.astype("datetime64[ns, UTC]")


@functools.lru_cache(maxsize=1)
def _travel_cases() -> tuple[_TravelCase, ...]:
    trace = adversarial_trace()
    trace_day = _Day(tuple(trace.purchases), trace.profiles, trace.truth)
    fresh_a, fresh_b = _small_day(54, 2.5), _small_day(58, 2.5)
    travel = lambda d: d.alerts[d.alerts["rule"] == TRAVEL]  # noqa: E731
    return (
        _TravelCase(travel(_detect(trace_day, "stream", batch_size=1)), trace_day,
                    "the adversarial trace, as the stream found it"),
        _TravelCase(travel(_detect(trace_day, "batch")), trace_day, "the adversarial trace, as the nightly job found it"),
        _TravelCase(travel(_detect(fresh_a, "stream", batch_size=50)), fresh_a, "a fresh day, as a stream found it"),
        _TravelCase(travel(_detect(fresh_b, "batch")), fresh_b, "another fresh day, as the nightly job found it"),
    )


def _moments(answer: Any, travel: pd.DataFrame) -> pd.Series:
    """Accept a Series aligned with the alerts, or one time per alert in row order; give UTC timestamps."""
    if isinstance(answer, pd.DataFrame):
        columns = [c for c in answer.columns if pd.api.types.is_datetime64_any_dtype(answer[c])]
        if len(columns) != 1:
            raise Mistake("return one time per alert: a Series (or a DataFrame with a single datetime column).")
        answer = answer[columns[0]]
    if isinstance(answer, pd.Series):
        if len(answer) == len(travel) and set(answer.index) == set(travel.index):
            answer = answer.reindex(travel.index)
        values = list(answer)
    elif isinstance(answer, (list, tuple, np.ndarray, pd.Index)):
        values = list(answer)
    else:
        raise Mistake(f"return one time per alert, as a Series or a list; got {type(answer).__name__}.")
    if len(values) != len(travel):
        raise Mistake(
            f"return one time per alert: there were {len(travel)} alerts and you returned {len(values)} times."
        )
    if values and all(isinstance(v, (timedelta, pd.Timedelta, np.timedelta64)) for v in values):
        raise Mistake("return the moment the evidence was complete (a datetime), not a wait.")
    if any(pd.isna(v) for v in values):
        raise Mistake(
            f"{sum(bool(pd.isna(v)) for v in values)} of your times are missing (NaT or None): both swipes of every "
            "alert are in the pile, look each one up by its id."
        )
    if not all(isinstance(v, (datetime, np.datetime64)) for v in values):
        odd = next(v for v in values if not isinstance(v, (datetime, np.datetime64)))
        raise Mistake(f"return datetimes; one of your values is {type(odd).__name__} {odd!r}.")
    if any(pd.Timestamp(v).tzinfo is None for v in values):
        raise Mistake("your times are naive: keep them timezone-aware UTC, as arrival_time is.")
    return pd.Series([pd.Timestamp(v).tz_convert("UTC") for v in values], index=travel.index, dtype="datetime64[ns, UTC]")


def _travel_view(case: Case) -> _TravelCase:
    whole, rows = case.args
    return _TravelCase(whole.travel.iloc[list(rows)], whole.day, whole.what)


def _evidence_cases() -> list[Case]:
    """A few alerts at a time (pairs out of order, the same swipe blamed twice, one alert), then every case."""
    rng = random.Random("lesson05: generated evidence")
    cases = []
    for i in range(16):
        whole = _travel_cases()[i % len(_travel_cases())]
        rows = sorted(rng.sample(range(len(whole.travel)), min(len(whole.travel), rng.randint(1, 4))))
        cases.append(Case((whole, rows), whole.what, items=1))
    return [*cases, *(Case((c, list(range(len(c.travel)))), c.what, items=1) for c in _travel_cases())]


def _evidence_call(fn: Callable[..., Any], case: Case) -> Any:
    view = _travel_view(case)
    if getattr(fn, "_travel_model", None):
        return fn(view)
    return _quietly(fn, view.travel.copy(), view.day.copy_pile())


def _travel_model(how: Callable[[_TravelCase], pd.Series]) -> Callable[..., Any]:
    how._travel_model = True  # type: ignore[attr-defined]
    return how


def _evidence_meaning(answer: Any, case: Case) -> Any:
    if isinstance(answer, Raised):
        return answer
    return tuple(_moments(answer, _travel_view(case).travel))


def _describe_evidence(case: Case) -> str:
    view = _travel_view(case)
    arrived = view.times("arrival_time")
    lines = [f"  {pid} (arrived {show_time(arrived[pid].to_pydatetime())}) with partner {partner} (arrived "
             f"{show_time(arrived[partner].to_pydatetime())})"
             for pid, partner in zip(view.travel["purchase_id"], view.travel["partner_id"])]
    return f"with these {len(lines)} alerts of {view.what}:\n" + "\n".join(lines) if lines else "with no alerts"


EVIDENCE = Exercise(
    solution=_travel_model(lambda view: view.model("max")),
    cases=_evidence_cases,
    call=_evidence_call,
    meaning=_evidence_meaning,
    describe=_describe_evidence,
    show=lambda x: repr(x) if isinstance(x, Raised) else (
        ", ".join(show_time(t.to_pydatetime()) for t in x) if x else "no times"),
    evidence=100,
    fewest=1,
    known=(
        Known("you used event_time, when the swipes *happened*. The bank knows about a swipe when it arrives: use "
              "arrival_time (purchases arrive up to half an hour late here).",
              model=_travel_model(lambda view: view.model("max", "event_time"))),
        Known("you used event_time, when the swipes *happened*. The bank knows about a swipe when it arrives: use "
              "arrival_time (purchases arrive up to half an hour late here).",
              model=_travel_model(lambda view: view.model("blamed", "event_time"))),
        Known("you returned alert_time, when that driver raised each alert. The question is when the evidence was "
              "there to raise it, whoever raises it: when both swipes had arrived.",
              model=_travel_model(lambda view: pd.Series(view.travel["alert_time"]))),
        Known("you took the earlier of the two arrivals. The pair is only evidence once *both* swipes have arrived.",
              model=_travel_model(lambda view: view.model("min"))),
        Known("you took the arrival of the blamed swipe. The evidence is both swipes, and the other one (partner_id) "
              "sometimes arrives after it, out of order.", model=_travel_model(lambda view: view.model("blamed"))),
        Known("you took the arrival of the partner swipe. The blamed swipe often arrives after it.",
              model=_travel_model(lambda view: view.model("partner"))),
    ),
)


@checker
def evidence_complete(fn: Callable[[pd.DataFrame, list[Purchase]], Any]) -> Feedback:
    """Check ``evidence_complete(travel, pile)``: for each pair, the later arrival of its two swipes."""
    EVIDENCE.compare(fn)
    return correct(
        "for every alert you found the moment its evidence was complete, even when its two swipes arrived out of order."
    )


# -- 4. A new rule, in both drivers ----------------------------------------------------------------

#: The new rule: a card swiped in at least this many different cities ...
CITY_COUNT = 3
#: ... within this long, either side of a swipe (event time), flags that swipe.
CITY_WINDOW = timedelta(hours=1)
#: The name the new rule's alerts carry.
MANY_CITIES = "many cities"


def _flag(
    swipes: Iterable[Purchase],
    count: int,
    window: timedelta,
    *,
    clock: str = "event_time",
    strict: bool = False,
    distinct: bool = True,
    before_only: bool = False,
) -> list[str]:
    """The ids of the swipes the rule flags (with the defaults, as :func:`many_cities_batch`), or a mistake flags.

    The same rule as :func:`many_cities_batch`, in plain Python: a check calls
    it on hundreds of small piles, where a frame costs more than the rule.

    >>> from streamlab.purchases import adversarial_trace
    >>> _flag(adversarial_trace().purchases, 2, CITY_WINDOW)
    ['t00', 't01', 't08', 't09', 't10', 't11', 't14', 't15']
    """
    cards: dict[str, list[Purchase]] = {}
    for p in swipes:
        cards.setdefault(p.card, []).append(p)
    flagged = []
    for card in cards.values():
        for p in card:
            t = getattr(p, clock)
            near = [s for s in card
                    if (abs(getattr(s, clock) - t) < window if strict else abs(getattr(s, clock) - t) <= window)
                    and not (before_only and getattr(s, clock) > t)]
            if (len({s.city for s in near}) if distinct else len(near)) >= count:
                flagged.append(p.purchase_id)
    return sorted(flagged)


def many_cities_batch(
    pile: Iterable[Purchase] | pd.DataFrame, count: int = CITY_COUNT, window: timedelta = CITY_WINDOW
) -> pd.DataFrame:
    """The new rule of exercise 4, over a whole pile: the swipes it flags, in event-time order.

    A swipe is flagged when its card was swiped in at least ``count``
    different cities within ``window`` either side of it, by event time (the
    swipe's own city counts). Give it the purchases the drivers checked (not
    those routed aside), as the rule only ever sees those.

    >>> from streamlab.purchases import adversarial_trace
    >>> many_cities_batch(adversarial_trace().purchases, count=2)["city"].tolist()
    ['New York', 'Paris', 'London', 'Tokyo', 'Suva', 'Apia', 'Madrid', 'Rome']
    """
    frame = pile if isinstance(pile, pd.DataFrame) else purchases_frame(pile)
    flagged = []
    for _, swipes in frame.groupby("card", sort=False):
        for swipe in swipes.itertuples():
            near = swipes[(swipes["event_time"] - swipe.event_time).abs() <= window]
            if near["city"].nunique() >= count:
                flagged.append(swipe.Index)
    columns = ["purchase_id", "card", "city", "event_time", "arrival_time"]
    return frame.loc[flagged, columns].sort_values(["event_time", "purchase_id"], ignore_index=True)


def _roaming_episodes(day: int, window: timedelta) -> tuple[list[Purchase], dict[str, CardProfile]]:
    """Cards swiped in several cities within a window, each episode built to tell one mistake apart.

    Times are in units of ``window``; ``delay`` is how long after it happened a swipe arrives.
    """
    start = COURSE_START + timedelta(minutes=10)
    episodes = {
        # The swipe that happened first arrives last: only a rule that looks both ways and flags
        # earlier-arrived swipes again raises the same alerts in both drivers.
        "late-first": [("Paris", 0.0, 0.95), ("Brussels", 0.3, 0.0), ("Amsterdam", 0.6, 0.0), ("London", 0.9, 0.0)],
        # Only the middle swipe has three cities within a window either side of it.
        "either-side": [("Berlin", 0.0, 0.0), ("Paris", 0.8, 0.0), ("Madrid", 1.6, 0.0)],
        # Exactly one window apart: "within" includes the boundary.
        "boundary": [("Rome", 0.0, 0.0), ("Madrid", 0.5, 0.0), ("Lagos", 1.0, 0.0)],
        # Many swipes, two cities: shopping, not roaming.
        "one-city": [("Berlin", 0.0, 0.0), ("Berlin", 0.2, 0.0), ("Berlin", 0.4, 0.0), ("Amsterdam", 0.6, 0.0)],
        # Close in event time, spread out in arrival time (a terminal offline): by event time, it is roaming.
        "slow-terminals": [("London", 0.0, 0.0), ("Dubai", 0.2, 1.2), ("Mumbai", 0.4, 2.4)],
    }
    pile: list[Purchase] = []
    profiles: dict[str, CardProfile] = {}
    for e, (name, swipes) in enumerate(episodes.items()):
        card = f"card-roam-{day}-{name}"
        home = CITIES[swipes[0][0]]
        profiles[card] = CardProfile(card, home.name, home.lat, home.lon, 30.0, round(30.0 * math.exp(P99 * SPEND_SIGMA), 2))
        begin = start + e * window / 10  # cards are independent: episodes may overlap in time
        for i, (city, at, delay) in enumerate(swipes):
            lat, lon = merchant_location(CITIES[city], "restaurant")
            happened = begin + at * window
            arrived = happened + delay * window + timedelta(seconds=2)
            pile.append(Purchase(f"r{day}{e}{i}", card, f"{city} restaurant", city, lat, lon, 25.0 + i, happened, arrived))
    return pile, profiles


def _checked(pile: Iterable[Purchase], profiles: Mapping[str, CardProfile]) -> list[Purchase]:
    """The purchases the drivers check, in the pile's order: those not routed aside (broken, unknown card, too late).

    What is routed aside does not depend on the rules, so the library's plain loop with the default ones decides it.
    """
    pile = list(pile)
    aside = {p.purchase_id for p, _reason in detect_loop(pile, profiles)[1]}
    return [p for p in pile if p.purchase_id not in aside]


@dataclass(frozen=True)
class _RoamingCase:
    day: _Day
    count: int
    window: timedelta
    checked: tuple[Purchase, ...]  # the purchases the drivers check (not routed aside)

    def flags(self, **mistake: Any) -> set[str]:
        return set(_flag(self.checked, self.count, self.window, **mistake))


@functools.lru_cache(maxsize=1)
def _roaming_cases() -> tuple[_RoamingCase, ...]:
    """The lesson's data for this exercise: two fresh days (seeds 71, 72) with the roaming episodes mixed in.

    Twenty cards, a purchase every 100 s: a check calls the rule once per purchase and driver, and a rule written
    with a DataFrame takes milliseconds a call.
    """
    cases = []
    for n, (seed, count, window) in enumerate(((71, 3, CITY_WINDOW), (72, 2, timedelta(minutes=20)))):
        extra, profiles = _roaming_episodes(n, window)
        hours = max(p.arrival_time for p in extra) - COURSE_START
        base = _small_day(seed, max(2.0, hours / timedelta(hours=1) + 0.25), rate=0.01, cards=20)
        pile = sorted([*base.pile, *extra], key=lambda p: p.arrival_time)
        day = _Day(tuple(pile), {**base.profiles, **profiles}, base.truth)
        cases.append(_RoamingCase(day, count, window, tuple(_checked(day.pile, day.profiles))))
    return tuple(cases)


def _reads_truth(fn: Callable[..., Any]) -> bool:
    """Whether a rule reaches for the ground truth: a pipe, a trace, a dict of fraud labels, or ``.truth(...)``."""
    try:
        found = inspect.getclosurevars(fn)
    except (TypeError, ValueError):
        return False

    def is_truth(value: Any) -> bool:
        if isinstance(value, (PurchasePipe, Trace)):
            return True
        return isinstance(value, Mapping) and bool(value) and all(v in PATTERNS for v in list(value.values())[:50])

    names = {**found.nonlocals, **found.globals}
    return any(is_truth(v) for v in names.values()) or "truth" in found.unbound


def _plugged(fn: Callable[..., Any], count: int, window: timedelta) -> Callable[..., list[Alert]]:
    """The learner's rule as the drivers call it, with the case's count and window; its malformed answers named."""

    def rule(purchase: Purchase, profile: CardProfile, history: Any, rules: Rules) -> list[Alert]:
        try:
            found = fn(purchase, profile, history, rules, count=count, window=window)
        except TypeError as error:
            if "unexpected keyword argument" in str(error):
                raise Mistake(
                    "keep the parameters count and window (with their defaults): the check calls your rule with "
                    "other values too."
                ) from None
            raise
        if found is None:
            raise Mistake("your rule returned None: return a list of alerts (an empty list when there are none).")
        found = list(found)
        odd = next((a for a in found if not isinstance(a, Alert)), None)
        if odd is not None:
            raise Mistake(f"return a list of Alert (from streamlab.fraud); one item was {type(odd).__name__}.")
        return found

    rule.__name__ = getattr(fn, "__name__", "rule")
    return rule


def _identity(rule: Any, card: Any, pid: Any, partner: Any, amount: Any, when: Any, detail: Any) -> tuple:
    """An alert's identity (what two drivers must agree on) in one form, whether from an Alert or a frame's row."""
    return (rule, card, pid, partner if isinstance(partner, str) else "", float(amount) if _is_number(amount) else amount,
            pd.Timestamp(when) if isinstance(when, (datetime, np.datetime64)) else when, detail)


def _of_alert(alert: Alert) -> tuple:
    return _identity(alert.rule, alert.card, alert.purchase_id, alert.partner_id, alert.amount, alert.event_time,
                     alert.detail)


def _minus(items: list[tuple], gone: list[tuple]) -> list[tuple]:
    """The items left when each of ``gone`` is taken away once (lists as multisets; an alert may be raised twice)."""
    left = list(items)
    for item in gone:
        if item in left:
            left.remove(item)
    return left


def _in_drivers(rule: Callable[..., list[Alert]], pile: list[Purchase], profiles: Mapping[str, CardProfile],
                real: bool) -> tuple[list[tuple], list[tuple]]:
    """The alerts (identities) of the nightly job and of the stream with this rule plugged in.

    ``real``: run :func:`streamlab.batch.detect_fraud` and :func:`streamlab.stream.detect_fraud` (bytewax). Else
    the same work in plain loops, a hundred times faster: the stream's is the library's own
    :func:`~streamlab.fraud.detect_loop` (each purchase decided in arrival order); the nightly job's checks each
    card's purchases in event-time order, with the calls the batch driver makes. A test holds them equal.
    """
    rules = Rules(extra=(rule,))
    if real:
        from streamlab.fraud import ALERT_IDENTITY

        nightly = batch.detect_fraud(list(pile), profiles, rules=rules)
        try:
            live = stream.detect_fraud(list(pile), profiles, rules=rules, batch_size=1)
        except stream.StreamError as error:
            raise dataflow_cause(error) from None
        return tuple(  # type: ignore[return-value]
            [_identity(*row) for row in d.alerts[ALERT_IDENTITY].itertuples(index=False)] for d in (nightly, live))
    raised, aside = detect_loop(pile, profiles, rules)
    skip = {p.purchase_id for p, _reason in aside}
    histories: dict[str, CardHistory] = {}
    nightly_alerts: list[Alert] = []
    for p in sorted((p for p in pile if p.purchase_id not in skip), key=lambda p: (p.card, p.event_time, p.purchase_id)):
        # In event-time order a checked purchase is never too late: decide checks it and remembers it, as the batch does.
        nightly_alerts += decide(p, profiles[p.card], histories.setdefault(p.card, CardHistory(rules)), rules)[0]
    return [_of_alert(a) for a in nightly_alerts], [_of_alert(a) for a, _at in raised]


@dataclass(frozen=True)
class _Flags:
    """A rule's answer: what it flags in the nightly job and in the stream (one entry per alert, sorted), and
    whether the two drivers' alerts are identical in every field."""

    nightly: tuple[str, ...]
    stream: tuple[str, ...]
    alike: bool = True


#: How an alert shows when it does not describe the swipe it flags.
_ANOTHERS, _NO_SUCH = " (with the card, amount or time of another purchase)", " (no purchase has that id)"
#: The hint when the learner's alerts carry the name of a built-in rule.
_NAME_CLASH = (
    f"give your rule's alerts their own name (check.MANY_CITIES, {MANY_CITIES!r}), not the name of a built-in rule."
)


def _rule_flags(fn: Callable[..., Any], case: Case, real: bool) -> _Flags:
    """Plug the learner's rule into both drivers on the case; what each flags, or a hint if it broke the built-in rules."""
    pile, profiles, count, window, _ = case.args
    nightly, live = _in_drivers(_plugged(fn, count, window), list(pile), profiles, real)
    built_in = sorted((_of_alert(a) for a, _at in detect_loop(list(pile), profiles)[0]), key=repr)
    for found in (nightly, live):
        mine = sorted((a for a in found if a[0] in BUILT_IN), key=repr)
        if mine != built_in:
            if not _minus(built_in, mine):  # every built-in alert is there, and more under their names: the learner's
                raise Mistake(_NAME_CLASH)
            raise Mistake(
                "with your rule plugged in, the built-in rules raise other alerts: your rule must not change the "
                "card's history. Read history.swipes; the drivers remember each purchase after the rules. For "
                f"example, {_describe_roaming(case)}\nthe built-in rules raised {len(mine)} alerts instead of "
                f"{len(built_in)}."
            )
    by_id = {p.purchase_id: p for p in pile}

    def entry(alert: tuple) -> str:
        swipe = by_id.get(alert[2])
        if swipe is None:
            return f"{alert[2]!s}{_NO_SUCH}"
        if (alert[1], alert[4], alert[5]) != (swipe.card, swipe.amount, pd.Timestamp(swipe.event_time)):
            return f"{alert[2]}{_ANOTHERS}"
        return alert[2]

    new = [[a for a in found if a[0] not in BUILT_IN] for found in (nightly, live)]
    return _Flags(tuple(sorted(map(entry, new[0]))), tuple(sorted(map(entry, new[1]))),
                  sorted(new[0], key=repr) == sorted(new[1], key=repr))


def _flags_as(how: Callable[[list[Purchase], int, timedelta], list[str]]) -> Callable[..., Any]:
    """A rule's answer computed from the checked purchases alone, both drivers agreeing (the solution's, a mistake's)."""

    def rule(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("computed by _roaming_call")

    rule._flags_as = how  # type: ignore[attr-defined]
    return rule


def _roaming_call(fn: Callable[..., Any], case: Case) -> Any:
    pile, profiles, count, window, real = case.args
    how = getattr(fn, "_flags_as", None)
    if how is not None:
        flags = tuple(how(_checked(pile, profiles), count, window))
        return _Flags(flags, flags)
    # A mistake's rule runs in the plain loops only; the learner's in the real drivers where the case says so.
    return _rule_flags(fn, case, real=real and not getattr(fn, "_simulated", False))


def _arrival_only(purchase: Purchase, profile: CardProfile, history: Any, rules: Rules, count: int = CITY_COUNT,
                  window: timedelta = CITY_WINDOW) -> list[Alert]:
    """A typical mistake: the arriving purchase flagged when it qualifies, the swipes that arrived before it never."""
    near = {s.city for s in [*history.swipes, purchase] if abs(s.event_time - purchase.event_time) <= window}
    if len(near) < count:
        return []
    return [Alert(MANY_CITIES, purchase.card, purchase.purchase_id, None, purchase.amount, purchase.event_time, "")]


_arrival_only._simulated = True  # type: ignore[attr-defined]


# Every case is in units of the window: (city, when it happened, how long after it arrived[, the kind of shop]).
_Swipes = list[tuple]
_ROAM_START = COURSE_START + timedelta(hours=9)


def _roaming_pile(window: timedelta, cards: Mapping[str, _Swipes], *, unknown: Iterable[str] = ()
                  ) -> tuple[list[Purchase], dict[str, CardProfile]]:
    """Small piles by hand: each card's swipes, ids by card letter and rank (a1, a2, b1), in arrival order.

    Each card gets a profile at its first city, except the ``unknown`` ones (routed aside by the drivers). A card's
    shops take turns (café, grocer, restaurant) unless a swipe names its own; amounts differ between all swipes, so
    that an alert names its swipe.
    """
    pile: list[Purchase] = []
    profiles: dict[str, CardProfile] = {}
    for card, swipes in cards.items():
        if swipes and card not in unknown:
            home = CITIES[swipes[0][0]]
            profiles[card] = CardProfile(card, home.name, home.lat, home.lon, 30.0,
                                         round(30.0 * math.exp(P99 * SPEND_SIGMA), 2))
        for i, (city, at, delay, *shop) in enumerate(swipes):
            kind = shop[0] if shop else ("café", "grocer", "restaurant")[i % 3]
            lat, lon = merchant_location(CITIES[city], kind)
            happened = _ROAM_START + at * window
            pile.append(Purchase(f"{card[-1]}{i + 1}", card, f"{city} {kind}", city, lat, lon,
                                 round(20.0 + 1.5 * len(pile), 2), happened, happened + delay * window))
    pile.sort(key=lambda p: (p.arrival_time, p.purchase_id))
    return pile, profiles


#: Hand-made edges: (count, window in minutes, cards and their swipes, cards without a profile, what it holds).
_ROAMING_EDGES: tuple[tuple[int, int, dict[str, _Swipes], tuple[str, ...], str], ...] = (
    (3, 60, {"card-a": [("Paris", 0, 0), ("Madrid", 0.25, 0), ("Rome", 0.5, 0)]}, (), "exactly count cities"),
    (3, 60, {}, (), "no purchases"),
    (2, 60, {"card-a": [("Paris", 0, 0)]}, (), "a single purchase"),
    (3, 60, {"card-a": [("Paris", 0, 0), ("Madrid", 0.25, 0), ("Paris", 0.5, 0)]}, (), "one city fewer than count"),
    (3, 60, {"card-a": [("Paris", 0, 0), ("Madrid", 0.5, 0), ("Rome", 1, 0)]}, (), "swipes exactly a window apart"),
    (3, 60, {"card-a": [("Berlin", 0, 0), ("Paris", 1, 0), ("Madrid", 2, 0)]}, (),
     "a window either side, each exactly on its edge"),
    (3, 60, {"card-a": [("Berlin", 0, 0), ("Berlin", 0.25, 0), ("Berlin", 0.5, 0), ("Amsterdam", 0.75, 0)]}, (),
     "one city, three shops"),
    (3, 60, {"card-a": [("Paris", 0, 0, "café"), ("Paris", 0.25, 0, "café"), ("Madrid", 0.5, 0)]}, (),
     "the same shop twice"),
    (2, 20, {"card-a": [("Berlin", 0, 0), ("Berlin", 0.25, 0), ("Amsterdam", 0.5, 0)]}, (), "a city repeated"),
    (3, 60, {"card-a": [("Paris", 0, 0.95), ("Brussels", 0.3, 0), ("Amsterdam", 0.6, 0), ("London", 0.9, 0)]}, (),
     "the first to happen arrives last"),
    (3, 60, {"card-a": [("Paris", 0, 0), ("Rome", 1, 0), ("Madrid", 0.5, 1.25)]}, (),
     "the middle swipe arrives last"),
    (3, 60, {"card-a": [("London", 0, 0), ("Dubai", 0.2, 1.2), ("Mumbai", 0.4, 2.4)]}, (),
     "close in event time, hours apart in arrival time"),
    (2, 20, {"card-a": [("Madrid", 0, 0), ("Rome", 0, 0)]}, (), "two cities at the same second"),
    (3, 60, {"card-a": [("Paris", 0, 0), ("Madrid", 0.25, 0)], "card-b": [("Rome", 0.1, 0), ("London", 0.3, 0)]}, (),
     "two cards, two cities each"),
    (3, 60, {"card-a": [("Paris", 0, 0), ("London", 0.25, 0), ("Rome", 2.5, 0), ("Madrid", 0.5, 2.1)]}, (),
     "a swipe too late to be checked"),
    (3, 60, {"card-a": [("Berlin", 0, 0)], "card-x": [("Paris", 0, 0), ("Madrid", 0.1, 0), ("Rome", 0.2, 0)]},
     ("card-x",), "a card the bank never issued"),
    (4, 20, {"card-a": [("Paris", 0, 0), ("Madrid", 0.25, 0.5), ("Rome", 0.5, 0), ("Berlin", 0.75, 0)]}, (),
     "exactly four cities"),
    (3, 60, {"card-a": [("Paris", 0, 0), *((("Berlin", 0.05 * k, 0) for k in range(1, 9))), ("Rome", 0.5, 0),
                        ("Madrid", 1.5, 0), ("London", 0.45, 1.1)]}, (), "a long run in one city"),
)


def _roaming_exercise_cases() -> list[Case]:
    """Hand-made edges; small generated piles; the lesson's data in plain loops; then some of it in both drivers.

    A case's args: (pile, profiles, count, window, whether the real drivers run it). Generated piles hold one to
    three cards of a few cities each, times on a grid of a quarter window (ties on the window's edges and at the
    same second), purchases up to five quarters late (out of order, some too late to be checked), count 2 to 4.
    """
    cases = []
    for count, minutes, cards, unknown, label in _ROAMING_EDGES:
        pile, profiles = _roaming_pile(timedelta(minutes=minutes), cards, unknown=unknown)
        cases.append(Case((pile, profiles, count, timedelta(minutes=minutes), False), label))
    rng = random.Random("lesson05: generated roaming")
    towns = ("Paris", "Brussels", "Amsterdam", "London", "Madrid", "Rome", "Berlin")
    for _ in range(28):
        window = rng.choice((CITY_WINDOW, timedelta(minutes=20)))
        cards: dict[str, list[tuple[str, float, float]]] = {}
        for card in ("card-a", "card-b", "card-c")[: rng.randint(1, 3)]:
            visited = rng.sample(towns, rng.randint(1, 4))
            clock = 0
            cards[card] = []
            for _ in range(rng.choice((1, 2, 3, 4, 5, 5, 14))):  # now and then a long run
                clock += rng.choice((0, 1, 1, 2, 4))
                cards[card].append((rng.choice(visited), clock / 4, rng.choice((0, 0, 0, 1, 2, 5)) / 4))
        pile, profiles = _roaming_pile(window, cards)
        cases.append(Case((pile, profiles, rng.choice((2, 3, 3, 4)), window, False), "a generated case"))
    trace = adversarial_trace()
    lessons = [
        Case((list(trace.purchases), trace.profiles, 2, CITY_WINDOW, False), "the lesson's adversarial trace"),
        *(Case((list(r.day.pile), r.day.profiles, r.count, r.window, False), "a day with roaming cards")
          for r in _roaming_cases()),
    ]
    # The first to happen arrives last: the drivers see the swipes in other orders.
    edge = next(c for c in cases if c.label == "the first to happen arrives last")
    real = [Case((*c.args[:4], True), c.label, items=None) for c in (edge, lessons[0], lessons[1])]
    return [*cases, *lessons, *real]


def _show_amount(x: Any) -> str:
    return f"{x:g}" if _is_number(x) else repr(x)


def _describe_roaming(case: Case, limit: int = 14) -> str:
    """The case as the learner reads it: count, window, and the purchases in arrival order (the first ``limit``)."""
    pile, profiles, count, window, real = case.args
    aside = {p.purchase_id: reason for p, reason in detect_loop(list(pile), profiles)[1]}
    head = (f"with count={count} and window={window / timedelta(minutes=1):g} min"
            f"{', run in the nightly job and in the stream' if real else ''}, ")
    if not pile:
        return head + "no purchases at all"
    # The shop alone when it names its city (the generated ones do), else both.
    lines = [f"  {p.purchase_id}, {p.card}, {p.merchant if p.merchant.startswith(p.city) else f'{p.city} ({p.merchant})'}, "
             f"{_show_amount(p.amount)}, "
             f"{show_time(p.event_time)}, {show_time(p.arrival_time)}"
             + (f" (routed aside: {aside[p.purchase_id]})" if p.purchase_id in aside else "")
             for p in pile[:limit]]
    if len(pile) > limit:
        lines.append(f"  … and {len(pile) - limit} more")
    what = "this 1 purchase" if len(pile) == 1 else f"these {len(pile)} purchases"
    return f"{head}{what} (id, card, shop, amount, happened, arrived), in arrival order:\n" + "\n".join(lines)


def _by_number(entry: str) -> tuple:
    """Ids in the order a reader counts them: a2 before a10."""
    parts: list[tuple[bool, Any]] = []
    for ch in entry:
        if parts and parts[-1][0] == ch.isdigit():
            parts[-1] = (ch.isdigit(), parts[-1][1] + ch)
        else:
            parts.append((ch.isdigit(), ch))
    return tuple((digits, int(part) if digits else part) for digits, part in parts)


def _show_flags(x: Any) -> str:
    if isinstance(x, Raised):
        return repr(x)

    def ids(entries: tuple[str, ...]) -> str:
        seen = sorted(set(entries), key=_by_number)
        times = {1: "", 2: " twice"}
        return ", ".join(e + times.get(entries.count(e), f" {entries.count(e)} times") for e in seen)

    if x.nightly == x.stream:
        text = f"{ids(x.nightly)} flagged in both drivers" if x.nightly else "no swipe flagged, in either driver"
        return text if x.alike else text + ", by alerts that differ between the drivers (in partner_id or detail)"
    return f"{ids(x.nightly) or 'nothing'} flagged by the nightly job; {ids(x.stream) or 'nothing'} by the stream"


def _flagged_twice(got: Any, want: Any, case: Case) -> bool:
    return isinstance(got, _Flags) and any(len(set(f)) < len(f) for f in (got.nightly, got.stream))


def _misdescribed(got: Any, want: Any, case: Case) -> bool:
    return isinstance(got, _Flags) and any(e.endswith((_ANOTHERS, _NO_SUCH)) for e in (*got.nightly, *got.stream))


ROAMING = Exercise(
    solution=_flags_as(lambda swipes, count, window: _flag(swipes, count, window)),
    cases=_roaming_exercise_cases,
    call=_roaming_call,
    describe=_describe_roaming,
    show=_show_flags,
    known=(
        Known("your rule flags some swipes more than once. When a purchase arrives, flag the swipes that qualify "
              "*now* and did not before it arrived: each swipe once.", when=_flagged_twice),
        Known("your rule raised no alert at all: return an Alert for each swipe it flags.",
              model=_flags_as(lambda swipes, count, window: [])),
        Known("some of your alerts carry the card, amount or time of another purchase than the swipe they flag: an "
              "alert's fields must describe the swipe flagged, not the purchase that happened to arrive.",
              when=_misdescribed),
        Known("your rule flags only the purchase that arrives. A purchase can complete the evidence for swipes that "
              "arrived before it (a city visited just after them, or a swipe that arrived late): flag those too, "
              "when it completes them.", model=_arrival_only),
        Known("you counted swipes. The rule counts different *cities*: three swipes in one city are shopping.",
              model=_flags_as(lambda swipes, count, window: _flag(swipes, count, window, distinct=False))),
        Known("your window is in arrival_time. Where the card was depends on when the swipes *happened*: use "
              "event_time (in the check, some terminals send their swipes hours late).",
              model=_flags_as(lambda swipes, count, window: _flag(swipes, count, window, clock="arrival_time"))),
        Known("you only looked back in time from each swipe. The window reaches both sides of a swipe: a city "
              "visited just after it counts too.",
              model=_flags_as(lambda swipes, count, window: _flag(swipes, count, window, before_only=True))),
        Known("swipes exactly `window` apart are within the window, and your rule leaves them out.",
              model=_flags_as(lambda swipes, count, window: _flag(swipes, count, window, strict=True))),
        Known("'at least `count` cities' includes exactly `count`, and your rule asks for more.",
              model=_flags_as(lambda swipes, count, window: _flag(swipes, count + 1, window))),
        Known("your rule's alerts differ between the nightly job and the stream. Purchases arrive late here, so the "
              "swipe that completes a card's cities can arrive before or after the others. When a purchase arrives, "
              "look at the card's swipes on both sides of it in event time (history.swipes holds them all), and flag "
              "every swipe that qualifies now and did not before: an earlier-arrived one too.",
              when=lambda got, want, case: isinstance(got, _Flags) and got.nightly != got.stream),
        Known("both drivers flag the same swipes, but their alerts differ: an alert's fields (partner_id, amount, "
              "event_time, detail) must describe the swipe flagged, not the purchase that happened to arrive last.",
              when=lambda got, want, case: isinstance(got, _Flags) and got.nightly == got.stream and not got.alike),
    ),
)


@checker
def many_cities(fn: Callable[..., Any]) -> Feedback:
    """Check the rule ``many_cities(purchase, profile, history, rules, count, window)`` in both drivers.

    Compared with the rule over the whole pile (:func:`many_cities_batch`), in the nightly job and in the stream:
    on small piles made to hit the edges, on the lesson's data, and on some of it in the real drivers (bytewax).
    """
    if _reads_truth(fn):
        raise Mistake(
            "your rule reads the ground truth (the fraud labels). A detector never sees them: the bank does not "
            "know which purchases are fraud, that is what the rule is for. Decide from the purchase, its card's "
            "profile and its history only."
        )
    ROAMING.compare(fn)
    return correct(
        "written once, your rule runs in both drivers and they raise identical alerts, even when purchases arrive "
        "out of order, and it flags exactly the swipes the rule describes."
    )


# -- 5. The engine: the mapper of the plain dataflow -------------------------------------------------

#: What the learner's mapper gets and returns: ``(history, purchase, card_table) -> (history, alerts)``.
Mapper = Callable[[Any, Purchase, Mapping[str, CardProfile]], Any]


class _NotAPair(Exception):
    """The mapper returned something other than ``(state, alerts)``."""


class _NotAlerts(Exception):
    """The mapper emitted something other than alerts."""


class _Shared(Exception):
    """The mapper returned one state object for two cards."""


def _edge_purchases() -> tuple[list[Purchase], dict[str, CardProfile]]:
    """Hand-made: two swipes of a card out of arrival order, a card with no profile, a card swiped in three cities.

    ``card-ooo``: Sydney at 10:00 arrives at 10:50, after its Singapore swipe of 10:30 (impossible);
    then a Sydney swipe at 11:00. Only event time pairs them right. ``card-ghost`` has no profile.
    ``card-trip``: home, then far away twice, each swipe arriving in order.
    """
    t = COURSE_START + timedelta(days=3, hours=10)
    m = lambda n: timedelta(minutes=n)  # noqa: E731
    s = lambda n: timedelta(seconds=n)  # noqa: E731
    at = lambda city: merchant_location(CITIES[city], "café")  # noqa: E731

    def swipe(pid: str, card: str, city: str, happened: datetime, delay: timedelta, amount: float = 25.0) -> Purchase:
        lat, lon = at(city)
        return Purchase(pid, card, f"{city} café", city, lat, lon, amount, happened, happened + delay)

    home = lambda card, city: CardProfile(card, city, *at(city), 30.0, 120.0)  # noqa: E731
    profiles = {card: home(card, city) for card, city in
                (("card-ooo", "Sydney"), ("card-trip", "London"), ("card-quiet", "Paris"))}
    swipes = [
        swipe("e0", "card-trip", "London", t, s(2)),
        swipe("e1", "card-ooo", "Singapore", t + m(30), s(3)),
        swipe("e2", "card-ooo", "Sydney", t, m(50)),                 # arrives after e1: out of order
        swipe("e3", "card-ghost", "Tokyo", t + m(31), s(2)),         # no profile: routed aside, never crashes
        swipe("e4", "card-quiet", "Paris", t + m(32), s(2), 1.5),
        swipe("e5", "card-trip", "New York", t + m(40), s(2)),
        swipe("e6", "card-ghost", "Madrid", t + m(45), s(2)),
        swipe("e7", "card-quiet", "Paris", t + m(46), s(2), 1.0),
        swipe("e8", "card-ooo", "Sydney", t + m(60), s(2)),
        swipe("e9", "card-trip", "Tokyo", t + m(70), s(2)),
        swipe("e10", "card-quiet", "Paris", t + m(47), s(2), 0.5),
        swipe("e11", "card-quiet", "Paris", t + m(48), s(2), 900.0),
    ]
    swipes.sort(key=lambda p: (p.arrival_time, p.purchase_id))
    return swipes, profiles


@functools.lru_cache(maxsize=1)
def _engine_cases() -> tuple[tuple[str, tuple[Purchase, ...], Mapping[str, CardProfile]], ...]:
    """The lesson's adversarial trace, hand-made edge cases, and a fresh day whose purchases arrive out of order."""
    trace = adversarial_trace()
    edge, profiles = _edge_purchases()
    fresh = _small_day(58, 6)
    return (
        ("the lesson's adversarial trace", tuple(trace.purchases), trace.profiles),
        ("two swipes of a card out of arrival order and a card with no profile", tuple(edge), profiles),
        ("a fresh day, purchases up to 30 min in transit", fresh.pile, fresh.profiles),
    )


def _alert_key(alert: Alert) -> tuple:
    return (alert.rule, alert.card, alert.purchase_id, alert.partner_id or "", alert.detail)


def _run_engine(fn: Mapper, purchases: Iterable[Purchase], table: Mapping[str, CardProfile]) -> list[tuple]:
    """Run the learner's mapper in a real bytewax dataflow: key by card, one ``op.stateful_flat_map`` step."""

    # Which card each state object was returned for; the object is kept too, so that its id is not reused.
    owners: dict[int, tuple[Any, str]] = {}

    def checked(history: Any, purchase: Purchase) -> Any:
        out = fn(history, purchase, table)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise _NotAPair(out)
        state, alerts = out
        if state is not None and owners.setdefault(id(state), (state, purchase.card))[1] != purchase.card:
            raise _Shared()
        alerts = [] if alerts is None else alerts
        if isinstance(alerts, Alert) or not isinstance(alerts, Iterable):
            raise _NotAlerts(alerts)
        alerts = list(alerts)
        odd = next((a for a in alerts if not isinstance(a, Alert)), None)
        if odd is not None:
            raise _NotAlerts(odd)
        return state, alerts

    # Resumed from snapshots of the card's history once every answer is right (see ENGINE): a history kept outside shows.
    mapper = resuming(checked, show_items=_show_purchases)

    def body(purchases: Any) -> Any:
        per_card = op.key_on("per_card", purchases, lambda p: p.card)
        return op.stateful_flat_map("decide", per_card, mapper)

    def explain(cause: BaseException) -> str | None:
        if isinstance(cause, _Shared):
            return _SHARED_HISTORY
        if isinstance(cause, _NotAPair):
            return (f"your function must return a pair: (the card's history, to keep as its state; the list of alerts "
                    f"to emit). It returned {cause.args[0]!r:.80}.")
        if isinstance(cause, _NotAlerts):
            return (f"emit the alerts: the second item of the pair must be the list of Alert that decide returns, not "
                    f"(alerts, reason); one item was {type(cause.args[0]).__name__} {cause.args[0]!r:.60}.")
        if isinstance(cause, AttributeError) and "NoneType" in str(cause):
            return (f"your function crashed on a card with no profile ({cause}). The card table has no entry for a "
                    "card the bank never issued: call decide, which routes such a purchase aside, instead of check.")
        if isinstance(cause, (TypeError, ValueError)) and "must be finite numbers" in str(cause):
            return (f"your function crashed on a broken purchase ({cause}). Some records arrive without a place: "
                    "call decide, which routes such a purchase aside, instead of check.")
        return None

    found = run_flow(body, purchases, explain=explain, batch_size=1, name="engine")
    return sorted(_alert_key(alert) for _card, alert in found)


def _simulate_engine(mapper: Callable[[Any, Purchase, Mapping[str, CardProfile]], tuple[Any, list[Alert]]],
                     purchases: Iterable[Purchase], table: Mapping[str, CardProfile]) -> list[tuple]:
    """What a dataflow keyed by card would emit with this mapper, in plain Python (for the mistakes' answers)."""
    states: dict[str, Any] = {}
    out: list[tuple] = []
    for p in purchases:
        state, alerts = mapper(states.get(p.card), p, table)
        states[p.card] = state
        out.extend(_alert_key(a) for a in alerts)
    return sorted(out)


def _right(history: Any, purchase: Purchase, table: Mapping[str, CardProfile]) -> tuple[Any, list[Alert]]:
    history = history if history is not None else CardHistory()
    alerts, _reason = decide(purchase, table.get(purchase.card), history)
    return history, alerts


def _shared_history() -> Callable[..., tuple[Any, list[Alert]]]:
    shared = CardHistory()

    def mapper(history: Any, purchase: Purchase, table: Mapping[str, CardProfile]) -> tuple[Any, list[Alert]]:
        return shared, decide(purchase, table.get(purchase.card), shared)[0]

    return mapper


def _forgets(history: Any, purchase: Purchase, table: Mapping[str, CardProfile]) -> tuple[Any, list[Alert]]:
    # A fresh history every time: check, but nothing remembered.
    return None, decide(purchase, table.get(purchase.card), CardHistory())[0]


def _last_arrival_only(history: Any, purchase: Purchase, table: Mapping[str, CardProfile]) -> tuple[Any, list[Alert]]:
    # Compared with the swipe that arrived just before, not with the card's history by event time.
    fresh = CardHistory()
    if history is not None:
        fresh.remember(history)
    alerts, reason = decide(purchase, table.get(purchase.card), fresh)
    return (purchase if reason is None else history), alerts


def _drops_out_of_order(history: Any, purchase: Purchase, table: Mapping[str, CardProfile]) -> tuple[Any, list[Alert]]:
    # A purchase older than the card's newest is skipped: arrival order taken for event order.
    history = history if history is not None else CardHistory()
    if history.newest is not None and purchase.event_time < history.newest:
        return history, []
    return history, decide(purchase, table.get(purchase.card), history)[0]


def _no_table(history: Any, purchase: Purchase, table: Mapping[str, CardProfile]) -> tuple[Any, list[Alert]]:
    history = history if history is not None else CardHistory()
    return history, decide(purchase, None, history)[0]


_SHARED_HISTORY = (
    "every card shares one history: swipes of different cards are compared with each other. The dataflow keys "
    "purchases by card and hands your function that card's state as history (None the first time): use it, and "
    "return it, instead of a history of your own outside the function."
)
_ENGINE_MISTAKES: tuple[tuple[Callable[[], Callable[..., Any]], str], ...] = (
    (lambda: _forgets, (
        "the history is not remembered after the check: only big amounts are found. decide checks the purchase and "
        "then remembers it in the history; return that same history as the state, so that the card's next purchase "
        "is compared with it."
    )),
    (lambda: _last_arrival_only, (
        "each purchase is compared only with the one that arrived before it, by arrival order. A pair whose swipes "
        "arrive out of order, or with a swipe between them, is missed: keep the card's whole recent history "
        "(a CardHistory) as the state, which compares by event time."
    )),
    (lambda: _drops_out_of_order, (
        "purchases that arrive after a later purchase of their card are skipped: arrival order taken for event "
        "order. The rules compare by event time whatever order purchases arrive in; only one more than delay "
        "behind is too late, and decide already routes that aside."
    )),
    (lambda: _no_table, (
        "the card table is not used: without a profile every purchase is routed aside as an unknown card, so no "
        "alert is raised. The card table your function gets holds each card's profile (and none for an unknown "
        "card)."
    )),
)


def _engine_solution(*args: Any) -> Any:
    """The reference of exercise 5: the library's own loop (:func:`_engine_call` knows it)."""
    raise AssertionError("the library's alerts are computed by _engine_call")


def _engine_call(fn: Callable[..., Any], case: Case) -> Any:
    pile, table = case.args
    if fn is _engine_solution:
        return sorted(_alert_key(a) for a, _ in detect_loop(pile, table)[0])
    if getattr(fn, "_simulated", False):
        return _simulate_engine(fn, pile, table)
    return _run_engine(fn, pile, fresh(table))  # a mapper that writes into its table must not change the cases


def _engine_exercise_cases() -> list[Case]:
    """A few cards at a time (their purchases in arrival order, out of order too), then the whole cases."""
    rng = random.Random("lesson05: generated engine cases")
    whole = _engine_cases()
    cases = []
    for i in range(14):
        label, pile, table = whole[i % len(whole)]
        cards = sorted({p.card for p in pile})
        chosen = set(rng.sample(cards, min(len(cards), rng.randint(1, 3))))
        cases.append(Case(([p for p in pile if p.card in chosen], table), f"some cards of {label}"))
    return [*cases, *(Case((list(pile), table), label) for label, pile, table in whole)]


def _show_purchases(pile: list[Purchase]) -> str:
    if not pile:
        return "no purchases"
    lines = [f"  {p.purchase_id}, {p.card}, {p.city}, {p.amount}, {show_time(p.event_time)}, {show_time(p.arrival_time)}"
             for p in pile]
    return (f"these {len(lines)} purchases (id, card, city, amount, happened, arrived):\n" + "\n".join(lines))


def _show_alerts(alerts: Any) -> str:
    if isinstance(alerts, Raised):
        return repr(alerts)
    return ", ".join(f"{rule} on {pid}" for rule, _, pid, *_ in alerts) if alerts else "no alert"


def _simulated(factory: Callable[[], Callable[..., Any]]) -> Callable[..., Any]:
    """A mistake's mapper, run in a plain loop keyed by card (its answers, cheaply)."""
    def model(*args: Any) -> Any:
        return factory()(*args)

    model._simulated = True  # type: ignore[attr-defined]
    return model


ENGINE = Exercise(
    solution=_engine_solution,
    cases=_engine_exercise_cases,
    call=_engine_call,
    meaning=lambda answer, case: answer if isinstance(answer, Raised) else tuple(answer),
    describe=lambda case: f"with {_show_purchases(case.args[0])}",
    show=_show_alerts,
    budget=40,
    evidence=100,
    resume=100,  # every case, resumed from snapshots at the end: a history kept outside shows then
    state_hint=(
        "run twice over the same purchases, your mapper raised different alerts: it keeps something outside the "
        "state bytewax hands it (a history outside the function), which every card shares and which lives on from "
        "one run to the next. " + _SHARED_HISTORY
    ),
    known=tuple(Known(message, model=_simulated(factory)) for factory, message in _ENGINE_MISTAKES),
)


@checker
def engine_mapper(fn: Mapper) -> Feedback:
    """Check ``decide_card(history, purchase, card_table)``, the mapper of the plain fraud dataflow, run in bytewax.

    It must return ``(history, alerts)``: the card's history to keep as state,
    and the alerts the library's rules raise for this purchase. Its alerts must
    be the library's (:func:`streamlab.fraud.detect_loop`) on every case.
    """
    ENGINE.compare(fn)
    cases = _engine_cases()
    alerts = sum(len(detect_loop(pile, table)[0]) for _, pile, table in cases)
    return correct(
        f"your mapper, run in a bytewax dataflow keyed by card, raises exactly the library's alerts on "
        f"{len(cases)} cases ({alerts} alerts) and on some cards of each at a time: the lesson's trace, swipes out of "
        "arrival order and a card with no profile, and a fresh day."
    )
