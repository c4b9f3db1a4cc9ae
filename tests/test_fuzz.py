"""Hostile and careless input, seeded: every constructor, every generator parameter, every batch/stream driver pair.

Each case feeds mostly good input with one or two hostile values (wrong types,
NaN and infinities, ints of 400 digits, lone surrogates, naive or far-off
times, NaT, huge durations, infinite iterators) and requires that:

- it either works, or fails with a ``ValueError``, ``TypeError`` or
  ``StreamError`` whose message names the field or parameter that was hostile
  (never an ``AttributeError``, ``OverflowError``, ``KeyError``... from deep inside);
- it finishes within a time limit (no hang);
- a result's counts reconcile (each result checks that itself when made);
- where the batch and the stream driver both return, they agree.

Events that a constructor accepted, odd as they are (numpy numbers, fractions,
pandas timestamps, far-away keys), are kept and thrown at the drivers: an event
accepted when made must never crash a driver later.
"""

from __future__ import annotations

import itertools
import math
import random
import signal
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
import pytest

from streamlab import batch, stream
from streamlab.compare import agree
from streamlab.events import COURSE_START, Event, pipe, take
from streamlab.fraud import Rules, agree_alerts
from streamlab.orders import KINDS, OrderEvent, OutOfOrderError, order_pipe
from streamlab.panes import reconcile as panes_reconcile
from streamlab.purchases import CardProfile, Purchase, purchases
from streamlab.stream import StreamError
from streamlab.windows import Fold, Session, Sliding, Tumbling, reconcile

UTC = timezone.utc
T = COURSE_START
SEED = 2026
#: Cases per part; together more than 5,000.
CONSTRUCTOR_CASES = 2600
GENERATOR_CASES = 1600
DRIVER_CASES = 900
#: No case may take longer (the slowest legitimate ones take a fraction of this).
TIME_LIMIT = 5.0

HOSTILE: list[Any] = [
    None, True, False, 0, -1, 1, 3, 2**63, 10**400, -(10**400), 0.5, -0.5, 1e300, -1e300, 1e-300,
    math.nan, math.inf, -math.inf, "", "x", "\ud800", "placed", "5", b"bytes", [], [1], {}, {"a": 1}, (), object(),
    datetime(2026, 3, 1), datetime(2026, 3, 1, tzinfo=timezone(timedelta(hours=1))),
    datetime(2300, 1, 1, tzinfo=UTC), datetime(1600, 1, 1, tzinfo=UTC), datetime(2262, 4, 11, 23, tzinfo=UTC), pd.NaT,
    pd.Timestamp("2026-03-01", tz="UTC"), timedelta(0), timedelta(seconds=-1), timedelta(days=10**6),
    timedelta(seconds=5), timedelta(days=999_999_999), np.float64(2.5), np.int64(7), np.float32("nan"),
    Fraction(1, 3), Decimal("1.5"), complex(1, 1), lambda *a: 0, T, itertools.count(), iter([1, 2]),
]
#: Odd values that are still good values, for events accepted when made.
# Within ±1e6, like amounts: the drivers add in different orders, and floats only agree to 1e-9
# when no addition cancels a value a million million times larger (see the extreme values' test).
ODD_NUMBERS: list[Any] = [np.float64(2.5), np.int64(-7), Fraction(7, 3), 2**19, -(2**20), 1e6, -1e6, 5e-324, 0]
ODD_KEYS = ["ключ", "a" * 300, "🛒", "key with spaces", "k\n", "0"]


class CaseTimeout(Exception):
    """A case ran past TIME_LIMIT: a hang."""


def _alarm(signum: int, frame: Any) -> None:
    raise CaseTimeout()


class Outcome:
    """What one call did: returned a value, or raised an error."""

    def __init__(self, value: Any = None, error: BaseException | None = None, seconds: float = 0.0) -> None:
        self.value, self.error, self.seconds = value, error, seconds

    @property
    def ok(self) -> bool:
        return self.error is None


def attempt(fn: Callable[[], Any]) -> Outcome:
    """Call ``fn`` under the time limit (a real timer: bytewax checks for signals as it runs)."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT)
    started = time.perf_counter()
    try:
        return Outcome(value=fn(), seconds=time.perf_counter() - started)
    except CaseTimeout as hang:
        return Outcome(error=hang, seconds=time.perf_counter() - started)
    except Exception as error:  # judged by the caller
        root = error
        while isinstance(root, StreamError) and isinstance(root.__cause__, CaseTimeout):
            root = root.__cause__
        return Outcome(error=root, seconds=time.perf_counter() - started)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def unclear(outcome: Outcome, names: set[str]) -> str | None:
    """Why an error is not clear (None if it is): its type, or a message naming none of ``names``."""
    error = outcome.error
    if error is None:
        return None
    if isinstance(error, CaseTimeout):
        return f"hung (over {TIME_LIMIT} s)"
    if not isinstance(error, (ValueError, TypeError, StreamError)):
        return f"{type(error).__name__}: {error}"
    message = str(error)
    if names and not any(name in message for name in names):
        return f"{type(error).__name__} naming none of {sorted(names)}: {message[:200]}"
    return None


class Failures:
    """The cases that went wrong, kept to be shown together (the first few of each kind)."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def add(self, case: str, why: str) -> None:
        self.found.append(f"{case}: {why}")

    def check(self, cases: int) -> None:
        assert not self.found, f"{len(self.found)} of {cases} cases failed:\n" + "\n".join(self.found[:60])


# --------------------------------------------------------------------------- constructors

GOOD_FIELDS: dict[type, dict[str, Any]] = {
    Event: {"key": "store-1", "value": 12.5, "event_time": T, "arrival_time": T + timedelta(seconds=2)},
    OrderEvent: {"order_id": "order-1", "customer": "customer-1", "kind": "placed", "amount": 25.0, "event_time": T,
                 "arrival_time": T + timedelta(seconds=1)},
    Purchase: {"purchase_id": "p1", "card": "card-0", "merchant": "Paris café", "city": "Paris", "lat": 48.86,
               "lon": 2.35, "amount": 4.5, "event_time": T, "arrival_time": T + timedelta(seconds=1)},
    CardProfile: {"card": "card-0", "home_city": "Paris", "home_lat": 48.86, "home_lon": 2.35, "typical_amount": 20.0,
                  "usual_max": 80.0},
    Rules: {"max_speed_kmh": 1000.0, "min_distance_km": 100.0, "small_amount": 2.0, "burst_count": 3,
            "burst_window": timedelta(minutes=10), "amount_factor": 3.0, "delay": timedelta(hours=1),
            "extra": ()},
    Tumbling: {"length": timedelta(seconds=5), "align_to": T},
    Sliding: {"length": timedelta(seconds=10), "slide": timedelta(seconds=5), "align_to": T},
    Session: {"gap": timedelta(seconds=5)},
    Fold: {"name": "biggest", "initial": lambda: -math.inf, "add": lambda acc, e: acc, "merge": max},
}
#: Odd but good values a field may take instead of hostile ones (accepted events go on to the drivers).
ODD_FIELDS: dict[str, list[Any]] = {
    "key": ODD_KEYS, "order_id": ODD_KEYS, "customer": ODD_KEYS, "card": ["card-0"], "purchase_id": ODD_KEYS,
    "value": [*ODD_NUMBERS, None, math.nan, math.inf], "amount": [np.float64(3.5), Fraction(9, 2), 2**40, 0.01],
    "event_time": [pd.Timestamp("2026-03-01 00:00:01", tz="UTC"), datetime(2262, 4, 1, tzinfo=UTC), T],
    "arrival_time": [pd.Timestamp("2026-03-01 00:00:03", tz="UTC"), T + timedelta(seconds=9)],
    "lat": [np.float64(10.5), None, math.nan], "lon": [Fraction(1, 2), None], "merchant": ["", "ünïcode"],
}
accepted: dict[type, list[Any]] = {Event: [], OrderEvent: [], Purchase: []}


def test_constructors_accept_or_refuse_clearly():
    rng = random.Random(SEED)
    failures = Failures()
    kinds = list(GOOD_FIELDS)
    for case in range(CONSTRUCTOR_CASES):
        kind = kinds[case % len(kinds)]
        fields = dict(GOOD_FIELDS[kind])
        hostile: set[str] = set()
        for name in rng.sample(sorted(fields), k=min(len(fields), rng.choice((1, 1, 2)))):
            if name in ODD_FIELDS and rng.random() < 0.3:
                fields[name] = rng.choice(ODD_FIELDS[name])
            else:
                fields[name] = rng.choice(HOSTILE)
                hostile.add(name)
        outcome = attempt(lambda: kind(**fields))
        if why := unclear(outcome, hostile):
            failures.add(f"{kind.__name__}({', '.join(f'{k}={v!r:.40}' for k, v in fields.items() if k in hostile)})",
                         why)
        elif outcome.ok and kind in accepted:
            accepted[kind].append(outcome.value)
    failures.check(CONSTRUCTOR_CASES)
    # Odd but good events were made, and go on to the drivers below.
    assert all(len(made) > 20 for made in accepted.values())


# --------------------------------------------------------------------------- generators and their parameters

GOOD_PARAMETERS: dict[Callable[..., Any], dict[str, Any]] = {
    pipe: {"seed": 1, "rate": 10.0, "keys": 5, "distribution": "normal", "mean": 20.0, "spread": 5.0,
           "disorder": 2.0, "missing": 0.1, "start": T, "delays": "uniform"},
    order_pipe: {"seed": 1, "rate": 0.05, "customers": 20, "mean_step": 600.0, "cancel": 0.1, "min_amount": 5.0,
                 "max_amount": 200.0, "disorder": 30.0, "start": T},
    purchases: {"seed": 1, "cards": 50, "rate": 0.1, "fraud": 0.01, "travel": 0.01, "bad": 0.05, "disorder": 5.0,
                "start": T},
}


#: Other good values of each parameter, at its edges: a generator must accept them and make events.
OTHER_GOOD: dict[str, list[Any]] = {
    "seed": [0, -5, 2**70], "rate": [1e-6, 0.001, 2.0, 1000.0], "keys": [1, 50], "customers": [1, 300],
    "cards": [1, 300], "distribution": ["uniform", "exponential"], "mean": [0.5, 1e6], "spread": [0, 0.01],
    "disorder": [0, 0.5, timedelta(seconds=30)], "missing": [0, 1], "delays": ["long_tail"],
    "mean_step": [1e-6, 60, timedelta(days=3)], "cancel": [0, 1], "min_amount": [0.01], "max_amount": [200.0, 1e6],
    "fraud": [0, 1], "travel": [0, 1], "bad": [0, 1], "start": [datetime(1700, 1, 1, tzinfo=UTC), T],
}


def test_every_generator_parameter_is_checked_and_nothing_hangs():
    rng = random.Random(SEED + 1)
    failures = Failures()
    makers = list(GOOD_PARAMETERS)
    for case in range(GENERATOR_CASES):
        make = makers[case % len(makers)]
        params = dict(GOOD_PARAMETERS[make])
        hostile = set(rng.sample(sorted(params), k=rng.choice((1, 1, 1, 2))))
        for name in sorted(hostile):
            if rng.random() < 0.3:  # another good value: no error may come of it
                params[name] = rng.choice(OTHER_GOOD[name])
                hostile.discard(name)
            else:
                params[name] = rng.choice(HOSTILE)
        n = rng.randrange(0, 40)
        # Make it, then read some events from it: a parameter accepted must not fail or hang later.
        outcome = attempt(lambda: take(make(**params), n))
        # An event the generator makes may fall outside pandas' range (a start near 2262): that names a field.
        if why := unclear(outcome, hostile | {"event_time", "arrival_time"}):
            failures.add(f"{make.__name__}({', '.join(f'{k}={params[k]!r:.40}' for k in sorted(hostile))})", why)
    failures.check(GENERATOR_CASES)


# --------------------------------------------------------------------------- every driver pair


def _sales(rng: random.Random) -> list[Any]:
    pile = take(pipe(seed=rng.randrange(100), rate=rng.choice((1.0, 10.0)), keys=rng.randrange(1, 6),
                     disorder=rng.choice((0, 2, 10)), missing=rng.choice((0, 0.2))), rng.randrange(0, 50))
    pile += rng.sample(accepted[Event], k=min(len(accepted[Event]), rng.randrange(0, 4)))
    if rng.random() < 0.7:
        pile.sort(key=lambda e: e.arrival_time)
    return pile


def _orders(rng: random.Random) -> list[Any]:
    pile = take(order_pipe(seed=rng.randrange(100), rate=rng.choice((0.05, 1.0)), customers=rng.randrange(1, 5),
                           disorder=rng.choice((0, 30))), rng.randrange(0, 50))
    pile += rng.sample(accepted[OrderEvent], k=min(len(accepted[OrderEvent]), rng.randrange(0, 3)))
    if rng.random() < 0.7:
        pile.sort(key=lambda e: e.arrival_time)
    return pile


def _purchases(rng: random.Random) -> tuple[list[Any], dict[str, CardProfile]]:
    source = purchases(seed=rng.randrange(100), cards=rng.randrange(1, 30), rate=rng.choice((0.1, 1.0)),
                       bad=rng.choice((0, 0.1)))
    pile = source.take(rng.randrange(0, 50))
    pile += rng.sample(accepted[Purchase], k=min(len(accepted[Purchase]), rng.randrange(0, 3)))
    if rng.random() < 0.7:
        pile.sort(key=lambda e: e.arrival_time)
    return pile, dict(source.profiles)


def _window(rng: random.Random) -> Any:
    return rng.choice([Tumbling(timedelta(seconds=5), align_to=T), Sliding(timedelta(seconds=10), timedelta(seconds=5)),
                       Session(timedelta(seconds=3))])


def _summaries_agree(b: Any, s: Any) -> str | None:
    verdict = agree(b, s)
    return None if verdict.ok else verdict.message()


def _windows_agree(b: Any, s: Any) -> str | None:
    verdict = reconcile(b, s)
    return None if verdict.ok else verdict.message()


def _panes_agree(b: Any, s: Any) -> str | None:
    accounts = panes_reconcile(b, s)
    wrong = accounts[~accounts["agree"]]
    return None if wrong.empty else f"batch = stream + dropped fails in {len(wrong)} windows:\n{wrong.head(3)}"


def _changelogs_agree(b: Any, s: Any) -> str | None:
    try:
        pd.testing.assert_frame_equal(b.changes, s.changes)
        pd.testing.assert_frame_equal(b.rejected, s.rejected)
    except AssertionError as diff:
        return str(diff)[:300]
    return None if b.events_read == s.events_read else f"read {b.events_read} and {s.events_read}"


def _tables_agree(b: Any, s: Any) -> str | None:
    try:
        pd.testing.assert_frame_equal(b, s)
    except AssertionError as diff:
        return str(diff)[:300]
    return None


def _detections_agree(b: Any, s: Any) -> str | None:
    verdict = agree_alerts(b, s)
    if not verdict.ok:
        return verdict.message()
    return None if b.purchases_read == s.purchases_read else f"read {b.purchases_read} and {s.purchases_read}"


#: Hostile values for the events argument itself.
HOSTILE_EVENTS: list[Any] = [None, 42, "events", b"x", {"a": 1}, object(), [1, 2], ["x"], [None]]


def _driver_case(rng: random.Random) -> tuple[str, Callable[[], Any], Callable[[], Any], Callable, set[str]]:
    """One driver pair with mostly good arguments and maybe one hostile: (name, batch call, stream call, agree, hostile)."""
    pair = rng.choice(("summarize", "windowed", "tumbling", "sliding", "session", "panes", "orders_changelog",
                       "orders_table", "detect_fraud"))
    hostile: set[str] = set()
    common: dict[str, Any] = {}
    if pair in ("summarize", "windowed", "tumbling", "sliding", "session", "panes"):
        events: Any = _sales(rng)
    elif pair.startswith("orders"):
        events = _orders(rng)
    else:
        events, profiles = _purchases(rng)
    # Sometimes the pile as a generator, infinite or not (it must then be cut), or the first few as a frame.
    fresh = None
    if rng.random() < 0.1:
        pile = list(events)
        fresh = lambda: itertools.cycle(pile) if pile else iter(())  # noqa: E731  (each driver its own iterator)
        if rng.random() < 0.7:
            common["limit"] = rng.randrange(0, 60)
    arrivals = [e.arrival_time for e in events] if isinstance(events, list) else []
    if arrivals and rng.random() < 0.2:
        common["until"] = rng.choice(arrivals) + timedelta(microseconds=rng.choice((0, 1)))
    if isinstance(events, list) and rng.random() < 0.2:
        common["limit"] = rng.randrange(0, 60)
    stream_only: dict[str, Any] = {"batch_size": rng.choice((1, 2, 7, 1000))}
    batch_only: dict[str, Any] = {}
    if pair == "summarize":
        stream_only["keep_updates"] = rng.choice((True, False))
    if pair in ("windowed", "tumbling", "sliding", "session"):
        common["delay"] = rng.choice((0, 1, 2.5, timedelta(seconds=30)))
        if rng.random() < 0.2:
            common["fold"] = Fold("biggest", lambda: -math.inf,
                                  lambda acc, e: max(acc, e.value if e.value == e.value else -math.inf), max)
    if pair == "panes":
        common["window"] = _window(rng)
        common["watermark"] = rng.choice((0, 1, 2.5, timedelta(seconds=30)))
        common["mode"] = rng.choice(("discarding", "accumulating", "retracting"))
        if rng.random() < 0.5:
            common["allowed_lateness"] = rng.choice((0, 2, timedelta(seconds=10)))
        elif rng.random() < 0.3 and not isinstance(common["window"], Session):
            common["lateness"] = "bytewax"  # bytewax's rule: no allowed lateness, no sessions
        if rng.random() < 0.2:
            common["fold"] = Fold("biggest", lambda: -math.inf,
                                  lambda acc, e: max(acc, e.value if e.value == e.value else -math.inf), max)
    if pair == "windowed":
        common["window"] = _window(rng)
    elif pair == "tumbling":
        common["length"] = rng.choice((5, 1.5, timedelta(seconds=10)))
    elif pair == "sliding":
        common["length"], common["slide"] = rng.choice(((10, 5), (6, 2), (timedelta(seconds=4), 4)))
    elif pair == "session":
        common["gap"] = rng.choice((3, timedelta(seconds=1)))
    if pair == "orders_table":
        common.pop("until", None)
        if arrivals and rng.random() < 0.5:
            common["as_of"] = rng.choice(arrivals)
    if pair == "detect_fraud":
        common["profiles"] = profiles
        if rng.random() < 0.2:
            common["rules"] = Rules(burst_count=2, max_speed_kmh=500.0)
        if rng.random() < 0.1:
            batch_only["job_at"] = datetime(2026, 4, 1, tzinfo=UTC)
    # One hostile argument in most cases.
    if rng.random() < 0.6:
        choices = [*common, *stream_only, *batch_only, "events"]
        name = rng.choice(choices)
        value = rng.choice(HOSTILE_EVENTS if name == "events" else HOSTILE)
        if name == "events":
            events = value
        else:
            target = common if name in common else stream_only if name in stream_only else batch_only
            target[name] = value
        hostile.add(name)
        if name == "watermark":
            hostile.add("delay")  # a number for watermark means Delay(delay=that number)
        if name == "events":
            hostile |= {"event", "events", "purchase", "purchases", "order"}
    positional = {"windowed": ["window"], "panes": ["window"], "tumbling": ["length"], "sliding": ["length", "slide"],
                  "session": ["gap"], "detect_fraud": ["profiles"]}.get(pair, [])
    args = [common.pop(name) for name in positional if name in common]
    b_fn, s_fn = getattr(batch, pair), getattr(stream, pair)
    if fresh is not None and "events" not in hostile:
        b_call = (lambda: b_fn(fresh(), *args, **common, **batch_only))
        s_call = (lambda: s_fn(fresh(), *args, **common, **stream_only))
        events = fresh()
    else:
        b_call = (lambda: b_fn(events, *args, **common, **batch_only))
        s_call = (lambda: s_fn(events, *args, **common, **stream_only))
    check = {"summarize": _summaries_agree, "orders_changelog": _changelogs_agree, "orders_table": _tables_agree,
             "detect_fraud": _detections_agree, "panes": _panes_agree}.get(pair, _windows_agree)
    described = f"{pair}({type(events).__name__}, {args!r:.60}, {common!r:.120}, stream {stream_only}, batch {batch_only})"
    return described, b_call, s_call, check, hostile


#: Refusals that are the design, not a failure, with what their message must name.
EXPECTED_REFUSALS = {
    OutOfOrderError: {"arrival"},   # a stream cannot sort one order's events; the batch does
}


def test_every_driver_pair_agrees_or_refuses_clearly_and_nothing_hangs():
    if not all(accepted.values()):
        test_constructors_accept_or_refuse_clearly()  # run alone: make the odd events first
    rng = random.Random(SEED + 2)
    failures = Failures()
    both = 0
    for _ in range(DRIVER_CASES):
        described, b_call, s_call, check, hostile = _driver_case(rng)
        b, s = attempt(b_call), attempt(s_call)
        for driver, outcome in (("batch", b), ("stream", s)):
            names = hostile | EXPECTED_REFUSALS.get(type(outcome.error), set())
            # An infinite iterator without a cut must be refused by both, naming the cut to give.
            names |= {"limit="} if "may never end" in str(outcome.error) or "was not reached" in str(outcome.error) else set()
            expected = ("may never end", "not a DataFrame", "was not reached")  # refusals by design, named
            if not hostile and outcome.error is not None and type(outcome.error) not in EXPECTED_REFUSALS \
                    and not any(text in str(outcome.error) for text in expected):
                failures.add(f"{driver} {described}", f"refused good input: {type(outcome.error).__name__}: "
                                                      f"{outcome.error}"[:300])
            elif why := unclear(outcome, names):
                failures.add(f"{driver} {described}", why)
        if b.ok and s.ok:
            both += 1
            if why := check(b.value, s.value):
                failures.add(described, f"batch and stream differ: {why}")
    failures.check(DRIVER_CASES)
    assert both > DRIVER_CASES // 4  # most cases get as far as comparing answers


# --------------------------------------------------------------------------- the other public functions' parameters

API_CASES = 1200


def _api(tmp: Any) -> list[tuple[str, Callable[..., Any], dict[str, Any]]]:
    """Public functions with good arguments: (name, function taking those arguments by keyword, arguments)."""
    from streamlab import events as ev, orders, queues
    from streamlab import fraud
    from streamlab.log import Log
    from streamlab.stream.logs import LogSource

    sales = take(pipe(seed=3, disorder=2), 40)
    shop = take(order_pipe(seed=3), 40)
    source = purchases(seed=3, cards=10, rate=1.0)
    spent = source.take(40)
    found = batch.detect_fraud(spent, source.profiles)
    summary = batch.summarize(sales)
    changelog = batch.orders_changelog(shop)
    counter = itertools.count()

    def fresh_log(**kwargs: Any) -> Any:
        log = Log.create(tmp / f"log{next(counter)}", partitions=3)
        orders.publish(log, shop[:10])
        log.add_consumer("reader")
        return log

    def log_call(method: str) -> Callable[..., Any]:
        return lambda **kw: getattr(fresh_log(), method)(**kw)

    return [
        ("take", take, {"events": sales, "limit": 5}),
        ("arrived_before", ev.arrived_before, {"events": sales, "until": T + timedelta(seconds=1)}),
        ("bounded", lambda **kw: list(ev.bounded(**kw)), {"events": sales, "limit": 3, "until": None}),
        ("sort_by_arrival", ev.sort_by_arrival, {"events": sales}),
        ("to_frame", ev.to_frame, {"pile": sales}),
        ("orders.to_frame", orders.to_frame, {"pile": shop}),
        ("publish", lambda **kw: orders.publish(fresh_log(), **kw), {"events": shop}),
        ("read_log", lambda **kw: list(orders.read_log(fresh_log(), **kw)), {"until": T + timedelta(hours=1)}),
        ("Log.create", lambda **kw: Log.create(tmp / f"new{next(counter)}", **kw),
         {"partitions": 2, "fsync": False, "lock_timeout": 1.0}),
        ("Log.create path", lambda **kw: Log.create(**kw), {"path": tmp / "made-by-path"}),
        ("Log.open", lambda **kw: Log.open(**kw), {"path": fresh_log().path}),
        ("append", log_call("append"), {"key": "order-1", "value": {"kind": "placed"}}),
        ("extend", log_call("extend"), {"items": [("order-1", 1), ("order-2", 2)]}),
        ("read", log_call("read"), {"partition": 0, "offset": 0, "max_records": 5}),
        ("commit", log_call("commit"), {"name": "reader", "offsets": {0: 1}}),
        ("consumer", log_call("consumer"), {"name": "reader", "member": 0, "members": 1, "reset": "none"}),
        ("add_consumer", log_call("add_consumer"), {"name": "other", "start": "earliest"}),
        ("poll", lambda **kw: fresh_log().consumer("reader").poll(**kw), {"max_records": 5}),
        ("seek", lambda **kw: fresh_log().consumer("reader").seek(**kw), {"partition": 0, "offset": 1}),
        ("lag", log_call("lag"), {"name": "reader"}),
        ("partition_for", log_call("partition_for"), {"key": "order-1"}),
        ("LogSource", lambda **kw: LogSource(fresh_log(), **kw), {"decode": orders.from_record, "start": 0,
                                                                     "batch_size": 10}),
        ("run", lambda **kw: stream.run(lambda e: e, **kw),
         {"events": sales, "limit": 5, "until": None, "batch_size": 10, "name": "flow", "keep": "all"}),
        ("delay_tradeoff", stream.delay_tradeoff,
         {"events": sales, "window": Tumbling(timedelta(seconds=5)), "delays": [0, 1], "limit": 30, "until": None}),
        ("Changelog.table", changelog.table, {"as_of": T + timedelta(hours=1)}),
        ("Changelog.history", changelog.history, {"order_id": shop[0].order_id}),
        ("Summary.as_of", summary.as_of, {"time": T + timedelta(seconds=2)}),
        ("agree", agree, {"left": summary, "right": summary, "rel_tol": 1e-9, "abs_tol": 1e-9}),
        ("reconcile", reconcile, {"batch": batch.windowed(sales, Tumbling(timedelta(seconds=5))),
                                  "stream": stream.windowed(sales, Tumbling(timedelta(seconds=5)))}),
        ("agree_alerts", agree_alerts, {"left": found, "right": found}),
        ("score", fraud.score, {"detection": found, "truth": source.truth(limit=40)}),
        ("score_by_pattern", fraud.score_by_pattern, {"detection": found, "truth": source.truth(limit=40)}),
        ("money_at_stake", fraud.money_at_stake, {"detection": found, "pile": spent, "truth": source.truth(limit=40)}),
        ("alert_latency", fraud.alert_latency, {"detection": found}),
        ("nightly_run", fraud.nightly_run, {"last_arrival": T}),
        ("detect_loop", fraud.detect_loop, {"purchases": spent, "profiles": dict(source.profiles)}),
        ("distance_km", fraud.distance_km, {"lat1": 48.8, "lon1": 2.3, "lat2": 52.5, "lon2": 13.4}),
        ("purchases.take", source.take, {"limit": 5}),
        ("purchases.arrived_before", source.arrived_before, {"until": T + timedelta(minutes=1)}),
        ("compete", queues.compete, {"items": shop[:10], "consumers": 2, "work": 0.0, "maxsize": 0}),
    ]


def test_every_public_function_refuses_bad_parameters_clearly(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a hostile path such as "x" is made relative to here, never in the repository
    rng = random.Random(SEED + 3)
    failures = Failures()
    api = _api(tmp_path)
    for case in range(API_CASES):
        name, fn, good = api[case % len(api)]
        kwargs = dict(good)
        hostile = set(rng.sample(sorted(kwargs), k=min(len(kwargs), rng.choice((1, 1, 2)))))
        for param in hostile:
            kwargs[param] = rng.choice(HOSTILE)
        outcome = attempt(lambda: fn(**kwargs))
        # Bad items of a hostile events argument are named by position ("event 3", "purchase 0").
        names = hostile | ({"event", "purchase", "item"} if hostile & {"events", "pile", "items", "purchases"} else set())
        if why := unclear(outcome, names):
            failures.add(f"{name}({', '.join(f'{k}={kwargs[k]!r:.40}' for k in sorted(hostile))})", why)
    failures.check(API_CASES)


def test_extreme_values_go_through_both_drivers_and_reconcile():
    """Values up to 1e300 in size pass both drivers, counts reconcile; sums may differ where additions cancel.

    Floating-point addition is not associative: 1e300 + 8.58 - 1e300 is 0 in one
    order and 8.58 in another. The drivers add in different orders, so their sums
    agree to 1e-9 only where no value dwarfs the others (as with any amounts).
    """
    huge = [1e300, -1e300, 5e-324, -(2**62), np.float64(1e299), Fraction(10**20, 3)]
    pile = [Event(f"k{i % 2}", v, T + timedelta(seconds=i), T + timedelta(seconds=i)) for i, v in enumerate(huge * 3)]
    for pair in ("summarize", "windowed"):
        args = (Tumbling(timedelta(seconds=5), align_to=T),) if pair == "windowed" else ()
        b, s = getattr(batch, pair)(pile, *args), getattr(stream, pair)(pile, *args)
        assert b.events_read == s.events_read == len(pile)

