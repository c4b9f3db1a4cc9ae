"""The table is a fold over the log: replay up to any moment equals the batch table then; bytewax reads the log too."""

import pathlib
import tempfile
from datetime import timedelta

import bytewax.operators as op
import pandas as pd
import pytest
from bytewax.dataflow import Dataflow
from bytewax.errors import BytewaxRuntimeError
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, TestingSource, run_main
from hypothesis import given, settings
from hypothesis import strategies as st

from streamlab import batch, stream
from streamlab.events import COURSE_START, take
from streamlab.log import Log, OffsetOutOfRangeError
from streamlab.orders import from_record, order_pipe, publish, read_log, replay
from streamlab.stream import LogSource, run


@pytest.fixture
def log(tmp_path):
    return Log.create(tmp_path / "orders", partitions=3)


@settings(max_examples=30)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(0, 400),
    partitions=st.integers(1, 4),
    disorder=st.sampled_from([0, 30, 600]),
    where=st.floats(0, 1),
    on_an_arrival=st.booleans(),
)
def test_replaying_the_log_up_to_any_moment_equals_the_batch_table_then(
    seed, n, partitions, disorder, where, on_an_arrival
):
    pile = take(order_pipe(seed=seed, rate=0.2, disorder=disorder), n)
    with tempfile.TemporaryDirectory() as tmp:
        log = Log.create(pathlib.Path(tmp) / "log", partitions=partitions)
        publish(log, pile)
        first = pile[0].arrival_time if pile else COURSE_START
        last = pile[-1].arrival_time if pile else COURSE_START
        moment = first - timedelta(seconds=1) + (last - first + timedelta(seconds=2)) * where
        if on_an_arrival and pile:
            moment = pile[int(where * (len(pile) - 1))].arrival_time  # the boundary: known just after
        replayed = replay(read_log(log, until=moment))
        expected = batch.orders_table(pile, as_of=moment)
        pd.testing.assert_frame_equal(replayed.frame(), expected)
        assert replayed.events_read == sum(e.arrival_time < moment for e in pile)


def test_the_stream_driver_runs_on_the_same_log(log):
    pile = take(order_pipe(seed=5, disorder=60), 2000)
    publish(log, pile)
    source = LogSource(log, decode=from_record, batch_size=64)
    from_log = stream.orders_changelog(source)
    from_pile = batch.orders_changelog(pile)
    pd.testing.assert_frame_equal(from_log.changes, from_pile.changes)
    assert from_log.events_read == 2000
    assert source.positions == log.end_offsets()
    pd.testing.assert_frame_equal(stream.orders_table(LogSource(log, decode=from_record)), batch.orders_table(pile))


def test_the_source_starts_at_given_offsets_and_the_next_run_carries_on(log):
    pile = take(order_pipe(seed=6), 900)
    publish(log, pile[:500])
    first = LogSource(log, decode=from_record)
    seen = run(lambda s: op.map("id", s, lambda e: e), first)["out"]
    assert len(seen) == 500
    publish(log, pile[500:])
    second = LogSource(log, decode=from_record, start=first.positions)  # resume where the first run stopped
    rest = run(lambda s: op.map("id", s, lambda e: e), second)
    assert rest.events_read == 400
    assert sorted(seen + rest["out"], key=lambda e: e.arrival_time) == pile
    everything_again = LogSource(log, decode=from_record, start=0)
    assert run(lambda s: op.map("id", s, lambda e: e), everything_again).events_read == 900


def test_a_partition_resumes_from_its_snapshot_the_next_offset(log):
    publish(log, take(order_pipe(seed=7), 300))
    source = LogSource(log, batch_size=10)
    part = source.build_part("log", "1", 4)
    batch_ = part.next_batch()
    assert [r.offset for r in batch_] == list(range(4, 14)) and part.snapshot() == 14
    part = source.build_part("log", "1", None)  # no resume state: the start offset
    assert part.next_batch()[0].offset == 0
    end = log.end_offset(2)
    part = source.build_part("log", "2", end)
    with pytest.raises(StopIteration):
        part.next_batch()


def test_bytewax_recovery_resumes_from_the_log_offsets(tmp_path, log):
    pile = take(order_pipe(seed=8), 1000)
    publish(log, pile)
    (tmp_path / "recovery").mkdir()
    init_db_dir(tmp_path / "recovery", 1)
    out = []
    crash = {"after": 500, "seen": 0}

    def maybe_crash(e):
        crash["seen"] += 1
        if crash["after"] and crash["seen"] > crash["after"]:
            raise RuntimeError("the machine went down")
        return e

    def flow(source):
        f = Dataflow("resume_from_log")
        s = op.map("maybe_crash", op.input("log", f, source), maybe_crash)
        op.output("out", op.map("id", s, lambda e: (e.order_id, e.kind)), TestingSink(out))
        return f

    recovery = RecoveryConfig(str(tmp_path / "recovery"))
    with pytest.raises(BytewaxRuntimeError):
        run_main(flow(LogSource(log, decode=from_record, batch_size=20)), epoch_interval=timedelta(0),
                 recovery_config=recovery)
    before = len(out)
    assert 0 < before <= 500
    crash["after"] = 0
    resumed = LogSource(log, decode=from_record, batch_size=20)
    run_main(flow(resumed), epoch_interval=timedelta(0), recovery_config=recovery)
    assert resumed.events_read < 1000  # it did not start again from offset 0
    assert set(out) == {(e.order_id, e.kind) for e in pile}  # nothing lost


@pytest.mark.parametrize(
    "start, error, message",
    [
        (-1, ValueError, "start offset must be >= 0, got -1"),
        ({0: 0, 1: 0}, ValueError, r"start must be an offset or a dict with an offset for each partition \[0, 1, 2\]"),
        ({0: 0, 1: 0, 2: 10**6}, OffsetOutOfRangeError, "start offset 1000000 is past the end of partition 2"),
        ("latest", ValueError, "start must be an offset or a dict"),
    ],
)
def test_bad_start_offsets_are_refused(log, start, error, message):
    publish(log, take(order_pipe(seed=1), 30))
    with pytest.raises(error, match=message):
        LogSource(log, start=start)


def test_bad_source_arguments_are_refused(log):
    with pytest.raises(TypeError, match="log must be a streamlab.log.Log, got str"):
        LogSource("orders")
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        LogSource(log, batch_size=0)
    with pytest.raises(ValueError, match="a source reads the log to its end"):
        stream.orders_table(LogSource(log), as_of=COURSE_START)
    with pytest.raises(ValueError, match="a source reads the log to its end"):
        stream.orders_changelog(LogSource(log), limit=3)
    with pytest.raises(ValueError, match="limit= and until= cut an iterable of events; a bytewax Source bounds itself"):
        run(lambda s: s, LogSource(log), limit=3)


def test_run_takes_any_bytewax_source_and_says_when_it_cannot_count():
    result = run(lambda s: op.map("double", s, lambda x: 2 * x), TestingSource([1, 2, 3]))
    assert result["out"] == [2, 4, 6]
    assert result.events_read is None
