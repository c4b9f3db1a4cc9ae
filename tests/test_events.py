"""The event record, the seeded pipe, and cutting piles from it."""

import itertools
import math
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from streamlab.events import COURSE_START, Event, Pipe, arrived_before, bounded, pipe, sort_by_arrival, take, to_frame

T = COURSE_START


def test_same_seed_same_events_and_other_seed_other_events():
    assert take(pipe(seed=5), 200) == take(pipe(seed=5), 200)
    assert take(pipe(seed=5), 200) != take(pipe(seed=6), 200)


def test_pipe_is_a_real_unbounded_iterator_not_a_list():
    p = pipe(seed=1, rate=1000.0)
    it = iter(p)
    assert iter(it) is it and not isinstance(it, (list, tuple))
    # Far beyond anything a list in disguise would hold for a test.
    last = next(itertools.islice(it, 300_000, None))
    assert last.arrival_time > T
    with pytest.raises(TypeError, match="no length"):
        len(p)


@pytest.mark.parametrize("disorder", [0.0, 3.0])
def test_pipe_arrives_in_arrival_order_and_never_before_it_happened(disorder):
    events = take(pipe(seed=3, rate=50.0, disorder=disorder), 5000)
    arrivals = [e.arrival_time for e in events]
    assert arrivals == sorted(arrivals)
    delays = [e.delay for e in events]
    assert min(delays) >= timedelta(0)
    assert max(delays) <= timedelta(seconds=disorder)


def test_disorder_makes_event_time_order_differ_from_arrival_order():
    events = take(pipe(seed=3, rate=50.0, disorder=3.0), 2000)
    happened = [e.event_time for e in events]
    assert happened != sorted(happened)
    assert [e.event_time for e in take(pipe(seed=3, rate=50.0), 2000)] == sorted(
        e.event_time for e in take(pipe(seed=3, rate=50.0), 2000)
    )


def test_rate_keys_and_values_follow_the_parameters():
    events = take(pipe(seed=9, rate=20.0, keys=4, mean=100.0, spread=10.0), 20_000)
    span = (events[-1].event_time - events[0].event_time).total_seconds()
    assert len(events) / span == pytest.approx(20.0, rel=0.05)
    assert {e.key for e in events} == {"store-0", "store-1", "store-2", "store-3"}
    values = [e.value for e in events]
    assert sum(values) / len(values) == pytest.approx(100.0, rel=0.01)
    uniform = [e.value for e in take(pipe(seed=9, distribution="uniform", mean=10, spread=2), 2000)]
    assert 8.0 <= min(uniform) and max(uniform) <= 12.0


def test_missing_fraction_injects_none_values():
    events = take(pipe(seed=4, missing=0.1), 10_000)
    share = sum(e.value is None for e in events) / len(events)
    assert share == pytest.approx(0.1, abs=0.01)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rate": -1}, "rate must be a finite number > 0"),
        ({"rate": 0}, "rate must be a finite number > 0"),
        ({"rate": math.inf}, "rate must be a finite number > 0"),
        ({"keys": 0}, "keys must be an int >= 1, got 0"),
        ({"keys": 2.5}, "keys must be an int >= 1, got 2.5"),
        ({"disorder": -1}, "disorder must be >= 0, got -1"),
        ({"disorder": timedelta(seconds=-2)}, "disorder must be >= 0"),
        ({"spread": -0.5}, "spread must be a finite number >= 0, got -0.5"),
        ({"missing": 1.5}, "missing must be a fraction from 0 to 1, got 1.5"),
        ({"distribution": "poisson"}, "distribution must be one of"),
        ({"distribution": "exponential", "mean": 0}, "mean must be > 0 for the exponential"),
        ({"seed": "abc"}, "seed must be an int, got 'abc'"),
    ],
)
def test_invalid_parameters_name_the_parameter_and_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pipe(**kwargs)


def test_start_must_be_utc():
    with pytest.raises(ValueError, match="start must be timezone-aware UTC"):
        pipe(start=datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "fields, error, message",
    [
        (("", 1.0, T, T), ValueError, "key must be a non-empty string"),
        (("a", "1", T, T), TypeError, "value must be a number or None, got str '1'"),
        (("a", True, T, T), TypeError, "value must be a number or None, got bool"),
        (("a", 1.0, datetime(2026, 1, 1), T), ValueError, "event_time must be timezone-aware UTC"),
        (("a", 1.0, T, "2026-01-01"), TypeError, "arrival_time must be a datetime, got str"),
        (
            ("a", 1.0, T, datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=1)))),
            ValueError,
            "arrival_time must be in UTC, got offset 1:00:00",
        ),
    ],
)
def test_bad_event_fields_are_refused_naming_the_field(fields, error, message):
    with pytest.raises(error, match=message):
        Event(*fields)


def test_event_accepts_missing_and_nan_values_so_they_can_be_routed_aside():
    assert Event("a", None, T, T).value is None
    assert math.isnan(Event("a", math.nan, T, T).value)


def test_take_and_arrived_before_cut_piles():
    p = pipe(seed=2, rate=10.0)
    assert len(take(p, 25)) == 25
    horizon = T + timedelta(seconds=30)
    pile = arrived_before(p, horizon)
    assert pile and all(e.arrival_time < horizon for e in pile)
    assert next(e for e in p if e.arrival_time >= horizon) not in pile
    assert pile == take(p, len(pile))


def test_bounded_refuses_an_unbounded_pipe_but_passes_finite_iterables():
    with pytest.raises(ValueError, match="a pipe never ends"):
        bounded(pipe())
    pile = take(pipe(), 3)
    assert bounded(pile) is pile
    with pytest.raises(ValueError, match="limit must be an int >= 0, got -1"):
        bounded(pipe(), limit=-1)
    with pytest.raises(ValueError, match="until must be timezone-aware UTC"):
        bounded(pipe(), until=datetime(2026, 3, 1))


def test_bounded_pipe_can_be_iterated_afresh():
    cut = bounded(pipe(seed=1), limit=10)
    assert list(cut) == list(cut) == take(pipe(seed=1), 10)


def test_to_frame_keeps_every_event_in_order_with_utc_times():
    pile = take(pipe(seed=1, missing=0.2), 50)
    frame = to_frame(pile)
    assert len(frame) == 50
    assert frame["key"].tolist() == [e.key for e in pile]
    assert frame["value"].isna().sum() == sum(e.value is None for e in pile)
    assert str(frame["event_time"].dt.tz) == "UTC"
    assert frame["arrival_time"].iloc[3] == pd.Timestamp(pile[3].arrival_time)
    with pytest.raises(TypeError, match="finite pile"):
        to_frame(pipe())


def test_sort_by_arrival_is_stable():
    a = Event("a", 1.0, T, T + timedelta(seconds=2))
    b = Event("b", 2.0, T, T + timedelta(seconds=1))
    c = Event("c", 3.0, T, T + timedelta(seconds=2))
    assert sort_by_arrival([a, b, c]) == [b, a, c]


def test_pipe_repr_says_what_it_is():
    assert repr(pipe(seed=3, disorder=2)) == (
        "pipe(seed=3, rate=10/s, keys=5, normal(mean=20, spread=5), disorder=2s, missing=0)"
    )
    assert isinstance(pipe(), Pipe)


# --------------------------------------------------------------------------- what an event may hold, checked when made


@pytest.mark.parametrize(
    "fields, error, message",
    [
        # Regressions: each was accepted when made and crashed a driver later.
        (("\ud800", 1.0, T, T), ValueError, r"key must be valid Unicode text \(encodable as UTF-8\), got '\\ud800'"),
        (("a", 1.0, datetime(2300, 1, 1, tzinfo=timezone.utc), T), ValueError,
         r"event_time must be between 1677-09-21 and 2262-04-11 \(what pandas can hold\), got 2300-01-01T00:00:00\+00:00"),
        (("a", 10**400, T, T), ValueError,
         r"value must be within the range of a float \(about ±1.8e308\), got an int of about 400 digits"),
        (("a", 1.0, T, pd.NaT), ValueError, r"arrival_time must be a time, got NaT \(not a time\)"),
        (("a", 1.0, datetime(1600, 1, 1, tzinfo=timezone.utc), T), ValueError, "event_time must be between 1677-09-21"),
        (("a", -1e308, T, T), ValueError, r"value must be at most 1e\+300 in size, so that sums stay finite, got -1e\+308"),
    ],
)
def test_what_would_crash_a_driver_later_is_refused_when_the_event_is_made(fields, error, message):
    with pytest.raises(error, match=message):
        Event(*fields)


def test_the_edges_that_are_allowed_go_through_both_drivers():
    from streamlab import batch, stream
    from streamlab.compare import agree

    edge = [
        Event("ключ-ü", 1e300, T, T),
        Event("ключ-ü", 1e300, T, T + timedelta(seconds=1)),
        Event("b", 2**60, datetime(2262, 4, 11, tzinfo=timezone.utc), datetime(2262, 4, 11, tzinfo=timezone.utc)),
        Event("b", math.inf, T, T),
        Event("c", math.nan, T, T),
        Event("c", None, T, T),
    ]
    b, s = batch.summarize(edge), stream.summarize(edge)
    assert agree(b, s).ok
    assert b.events_read == s.events_read == 6 and len(b.rejected) == len(s.rejected) == 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        # Regressions: these hung for minutes, or overflowed deep inside.
        ({"keys": 2**63}, "keys must be at most 1,000,000, got 9223372036854775808"),
        ({"rate": 1e300}, r"rate must be at most 1,000,000 \(events per second; times are kept to the microsecond\)"),
        ({"rate": 10**400}, "rate must be a finite number > 0"),
        ({"disorder": timedelta(days=10**6)}, "disorder must be at most 36,525 days"),
        ({"disorder": 10**400}, "disorder must be a timedelta or seconds"),
        ({"disorder": 86_400.0}, r"disorder must be short enough for the rate: 86400 s at 10 per second holds back"),
        ({"mean": 1e308}, r"mean must be at most 1e200 in size"),
        ({"distribution": ["normal"]}, r"distribution must be one of"),
    ],
)
def test_sizes_have_upper_bounds_so_nothing_hangs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pipe(**kwargs)


def test_any_iterator_must_be_bounded_like_a_pipe_in_every_driver():
    # Regression: a plain infinite iterator hung the drivers while memory grew.
    from streamlab import batch, stream
    from streamlab.windows import Tumbling

    forever = lambda: itertools.cycle(take(pipe(seed=1), 10))  # noqa: E731
    for driver in (batch.summarize, stream.summarize, lambda e, **kw: stream.windowed(e, Tumbling(5), **kw),
                   lambda e, **kw: batch.windowed(e, Tumbling(5), **kw)):
        with pytest.raises(ValueError, match=r"events is an iterator \(cycle\) that may never end: pass limit="):
            driver(forever())
        assert driver(forever(), limit=25).events_read == 25
    pile = take(pipe(seed=1), 30)
    assert take(iter(pile), 20) == pile[:20]  # the cuts bound an iterator
    assert arrived_before(iter(pile), pile[10].arrival_time) == pile[:10]
    with pytest.raises(ValueError, match=r"events is an iterator \(generator\) that may never end"):
        sort_by_arrival(e for e in pipe())
    with pytest.raises(ValueError, match="limit must be at most 1,000,000,000, got 9223372036854775808"):
        take(pipe(), 2**63)
    with pytest.raises(TypeError, match="events must be a pipe or an iterable of events"):
        bounded(42, limit=3)


def test_an_until_that_is_never_reached_cannot_hang():
    # Found by the fuzz suite: a horizon centuries away, or an iterator that repeats, never ended.
    far = datetime(2262, 4, 11, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match=r"until is too far for this pipe: about [\d,]+ events would arrive before it"):
        arrived_before(pipe(), far)
    assert len(take(bounded(pipe(), until=far, limit=5), 10)) == 5  # with a limit too, it is the user's call
    repeating = itertools.cycle(take(pipe(seed=1), 10))
    with pytest.raises(ValueError, match="until= was not reached after 1,000,000 events"):
        arrived_before(repeating, far)
