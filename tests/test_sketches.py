"""The median over a pipe: exact needs every value, the KLL sketch stays small and within its bound."""

import math
from datetime import timedelta

import numpy as np
import pytest

from streamlab import COURSE_START, arrived_before, pipe, take
from streamlab.events import Event
from streamlab.sketches import K, kll_sketch, median_accuracy, median_memory, rank_error


def lesson_pile():
    return arrived_before(pipe(seed=1, rate=2.0, keys=5), COURSE_START + timedelta(hours=1))


def test_rank_error_is_zero_for_the_exact_median_and_counts_percentiles_otherwise():
    values = [float(v) for v in range(1, 101)]
    assert rank_error(values, float(np.median(values))) == 0.0
    assert rank_error(values, 61.0) == pytest.approx(0.10)
    assert rank_error(values, 41.0) == pytest.approx(0.09)


def test_a_tie_at_the_median_is_no_error():
    assert rank_error([1.0, 2.0, 2.0, 2.0, 9.0], 2.0) == 0.0


def test_the_sketch_leaves_out_bad_values_as_the_summaries_do():
    sketch = kll_sketch([1.0, None, math.nan, math.inf, 3.0])
    assert sketch.n == 2


@pytest.mark.parametrize("repeat", range(5))
def test_on_the_lessons_pile_the_sketch_median_is_within_its_rank_error_bound(repeat):
    # The sketch compacts at random (no seed): run it several times; the bound holds at 99 % confidence
    # for each, and the lesson's first hour has five stores, so 25 draws here.
    accuracy = median_accuracy(lesson_pile())
    assert list(accuracy.index) == [f"store-{i}" for i in range(5)]
    assert (accuracy["rank error"] <= accuracy["rank error bound"]).all()
    assert (accuracy["rank error bound"] < 0.014).all()
    assert (accuracy["sketch items"] < accuracy["values kept"] / 4).all()


def test_the_exact_median_is_numpys_and_is_kept_from_every_value():
    pile = lesson_pile()
    accuracy = median_accuracy(pile)
    store = [e.value for e in pile if e.key == "store-0"]
    assert accuracy.loc["store-0", "exact median"] == float(np.median(store))
    assert accuracy.loc["store-0", "values kept"] == len(store)


def test_exact_state_grows_with_the_events_and_the_sketch_stays_bounded():
    events = take(pipe(seed=1, rate=2.0, keys=5), 100_000)
    memory = median_memory(events, [1_000, 10_000, 100_000])
    assert memory["exact: values kept"].tolist() == [1_000, 10_000, 100_000]
    assert memory["sketch items"].is_monotonic_increasing
    # 100 times the events: the exact state 100 times larger, the sketch less than twice.
    assert memory["sketch items"].iloc[-1] < 2 * memory["sketch items"].iloc[0]
    assert memory["sketch bytes"].iloc[-1] < 3_000


def test_the_sketch_size_is_the_same_on_every_run():
    events = take(pipe(seed=2, keys=3), 20_000)
    assert median_memory(events, [20_000]).equals(median_memory(events, [20_000]))


def test_memory_refuses_a_size_beyond_the_events():
    with pytest.raises(ValueError, match="at most the number of events"):
        median_memory(take(pipe(seed=1), 10), [11])


def test_a_single_value_is_its_own_median():
    event = Event("solo", -4.5, COURSE_START, COURSE_START)
    accuracy = median_accuracy([event], k=K)
    assert accuracy.loc["solo", ["exact median", "sketch median", "rank error"]].tolist() == [-4.5, -4.5, 0.0]
