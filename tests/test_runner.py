"""Running dataflows over events: bounded, repeatable, quiet, with short clear errors."""

import itertools
from datetime import timedelta

import bytewax.operators as op
import pytest

from streamlab import stream
from streamlab.events import COURSE_START, pipe, take
from streamlab.stream import EventSource, StreamError, run


def values(events):
    return op.map("value", events, lambda e: e.value)


def test_run_collects_a_single_output_as_out():
    result = run(values, pipe(seed=1), limit=5)
    assert result["out"] == [e.value for e in take(pipe(seed=1), 5)]
    assert result.events_read == 5
    assert repr(result) == "Run(events_read=5, out: 5 items)"


def test_run_collects_named_outputs():
    def split(events):
        b = op.branch("big", events, lambda e: e.value > 20)
        return {"big": b.trues, "small": b.falses}

    result = run(split, pipe(seed=1), limit=100)
    assert len(result["big"]) + len(result["small"]) == 100
    with pytest.raises(KeyError, match="no output named 'medium'"):
        result["medium"]


def test_an_unbounded_pipe_must_be_bounded():
    with pytest.raises(ValueError, match="a pipe never ends"):
        run(values, pipe())


def test_until_bounds_by_arrival_time():
    horizon = COURSE_START + timedelta(seconds=10)
    result = run(values, pipe(seed=1), until=horizon)
    assert result.events_read == sum(1 for e in take(pipe(seed=1), 500) if e.arrival_time < horizon)


def test_running_twice_gives_the_same_answer_even_from_a_one_shot_generator_builder():
    first = run(values, pipe(seed=4), limit=50)["out"]
    assert run(values, pipe(seed=4), limit=50)["out"] == first


def test_a_failing_step_raises_a_short_error_naming_the_step_with_the_cause():
    def explode(e):
        raise ValueError(f"cannot handle {e.key}")

    def flow(events):
        return op.map("explode", events, explode)

    with pytest.raises(StreamError, match="step 'explode' raised ValueError: cannot handle store-") as info:
        run(flow, pipe(seed=1), limit=3)
    assert isinstance(info.value.__cause__, ValueError)


def test_build_must_return_streams():
    with pytest.raises(TypeError, match="build must return a bytewax Stream"):
        run(lambda events: 42, pipe(), limit=1)


@pytest.mark.parametrize("batch_size", [0, -3, 1.5])
def test_batch_size_is_checked(batch_size):
    with pytest.raises(ValueError, match=f"batch_size must be an int >= 1, got {batch_size}"):
        EventSource([], batch_size)


def test_keep_must_be_all_or_latest():
    with pytest.raises(ValueError, match="keep for output 'out' must be 'all' or 'latest', got 'some'"):
        run(values, pipe(), limit=1, keep="some")


def test_keep_latest_keeps_one_item_per_key():
    def keyed(events):
        return op.map("kv", events, lambda e: (e.key, e.value))

    latest = dict(run(keyed, pipe(seed=2, keys=3), limit=300, keep="latest")["out"])
    pile = take(pipe(seed=2, keys=3), 300)
    assert latest == {k: [e.value for e in pile if e.key == k][-1] for k in latest}
    assert len(latest) == 3


def test_source_resumes_where_its_snapshot_says():
    source = EventSource(take(pipe(seed=1), 10), batch_size=4)
    part = source.build_part("events", "events", 6)
    assert part.next_batch() == take(pipe(seed=1), 10)[6:]
    assert part.snapshot() == 10
    with pytest.raises(StopIteration):
        part.next_batch()


def test_stream_summary_is_quiet_on_success(capfd):
    stream.summarize(pipe(), limit=100)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_a_failing_step_prints_no_rust_panic_and_other_output_is_passed_on(capfd):
    # Regression: every step error printed "thread '<unnamed>' panicked at src/operators.rs" into the cell.
    def flow(events):
        return op.map("boom", events, lambda e: 1 / 0)

    with pytest.raises(StreamError, match="step 'boom' raised ZeroDivisionError: division by zero"):
        run(flow, pipe(seed=1), limit=3)
    out, err = capfd.readouterr()
    assert out == "" and err == ""

    def noisy(events):
        import os

        return op.map("noisy", events, lambda e: os.write(2, b"said on stderr\n") and e.key)

    run(noisy, pipe(seed=1), limit=2)
    assert capfd.readouterr().err == "said on stderr\nsaid on stderr\n"


def test_bad_input_is_raised_as_it_is_not_as_a_step_error():
    def not_events():
        yield from take(pipe(seed=1), 2)
        raise ValueError("the sensor feed broke")

    with pytest.raises(ValueError, match="the sensor feed broke"):
        run(values, not_events(), limit=10)


def test_an_iterator_must_be_bounded_like_a_pipe():
    # Regression: a plain infinite iterator hung run() while memory grew.
    with pytest.raises(ValueError, match=r"events is an iterator \(repeat\) that may never end: pass limit="):
        run(values, itertools.repeat(take(pipe(), 1)[0]))
    assert len(run(values, itertools.repeat(take(pipe(), 1)[0]), limit=5)["out"]) == 5


@pytest.mark.parametrize("batch_size, message", [
    (0, "batch_size must be an int >= 1, got 0"),
    (2**63, "batch_size must be at most 1,000,000, got 9223372036854775808"),
    (10**400, "batch_size must be at most 1,000,000, got an int of about 400 digits"),
    (10**7, "batch_size must be at most 1,000,000, got 10000000"),
])
def test_batch_size_has_bounds(batch_size, message):
    with pytest.raises(ValueError, match=message):
        run(values, pipe(), limit=1, batch_size=batch_size)


def test_items_that_are_not_events_are_named_even_none():
    with pytest.raises(TypeError, match="events must be Events, got NoneType None"):
        stream.summarize([*take(pipe(seed=1), 3), None])


def test_after_several_workers_ran_in_this_process_a_failing_step_still_prints_nothing(capfd):
    # Regression: once cluster_main has run, bytewax prints a failing step's Python traceback through
    # sys.stderr (a notebook's cell) instead of a Rust panic notice on descriptor 2.
    from datetime import timedelta

    from streamlab import ev

    f = ev.fleet(seed=1, chargers=5, sites=2)
    stream.charging(f, until=f.start + timedelta(minutes=2), workers=2)
    with pytest.raises(StreamError, match="step 'boom' raised ZeroDivisionError"):
        run(lambda events: op.map("boom", events, lambda e: 1 / 0), pipe(seed=1), limit=3)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
