"""Failure and recovery: seeded crashes (in a step, in the sink, a poison record, kill -9), each resumed to the end."""

import random
import re
from collections import Counter
from pathlib import Path

import psutil
import pytest

from streamlab.batch.recovery import batch_job, job_answer, sales_totals
from streamlab.events import pipe, take
from streamlab.log import Log
from streamlab.recovery import (
    Crash,
    CrashPoint,
    InjectedCrash,
    Ledger,
    Row,
    Table,
    add_poison,
    answer_from,
    publish_sales,
    sale_from,
)
from streamlab.stream import recovery as stream_recovery
from streamlab.stream.recovery import crash_and_resume, fresh_store, kill_at, run_once
from streamlab.stream.runner import StreamError

RECORDS, BATCH = 360, 20
SEED = 8


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    log = Log.create(tmp_path_factory.mktemp("recovery") / "sales", partitions=3)
    publish_sales(log, take(pipe(seed=SEED, keys=7), RECORDS))
    return log


def _points(n, seed):
    rng = random.Random(seed)
    return [(rng.randrange(RECORDS), rng.choice(["step", "sink"])) for _ in range(n)]


def _children():
    return {p.pid for p in psutil.Process().children(recursive=True)}


def _check_at_least_once(trial, ends):
    assert trial.correct, trial.summary()
    # No input record lost: every record has a row, and the answer counts every sale once.
    assert {r.position for r in trial.rows} == {(p, o) for p, end in ends.items() for o in range(end)}
    assert trial.lost == 0
    # The duplicates are exactly the replayed range: rows written before the crash, after the snapshot.
    twice = sorted(pos for pos, n in Counter(r.position for r in trial.rows).items() if n > 1)
    assert twice == trial.replayed
    assert trial.duplicates == len(trial.replayed)
    assert all(n <= 2 for n in Counter(r.position for r in trial.rows).values())


def _check_effectively_once(trial):
    assert trial.correct, trial.summary()
    assert trial.duplicates == 0
    assert len(trial.rows) == trial.records
    assert trial.lost == 0


def _trial(log, guarantee, crash, tmp_path, *, kill=False):
    return crash_and_resume(log, guarantee, crash, tmp_path, batch_size=BATCH, kill=kill)


@pytest.mark.parametrize("at, where", _points(16, SEED), ids=lambda x: str(x))
def test_a_crash_in_process_resumed_gives_the_batch_answer(log, tmp_path, at, where):
    crash = Crash(at, where)
    _check_at_least_once(_trial(log, "at least once", crash, tmp_path), log.end_offsets())
    _check_effectively_once(_trial(log, "effectively once", crash, tmp_path))


@pytest.mark.parametrize("at, where, guarantee", [
    (*point, guarantee) for point, guarantee in zip(_points(5, SEED + 1), ["at least once", "effectively once"] * 3)
], ids=lambda x: str(x))
def test_kill_9_of_a_subprocess_resumed_gives_the_batch_answer_and_leaves_no_process(log, tmp_path, at, where, guarantee):
    before = _children()
    trial = _trial(log, guarantee, Crash(at, where), tmp_path, kill=True)
    assert trial.error == "killed with SIGKILL"
    if guarantee == "at least once":
        _check_at_least_once(trial, log.end_offsets())
    else:
        _check_effectively_once(trial)
    assert _children() <= before


def test_a_sink_crash_after_the_first_snapshot_duplicates_what_it_wrote_since(log, tmp_path):
    # Each epoch reads a batch from each of the 3 partitions: 60 records; row 150 is 30 rows into the third epoch.
    trial = _trial(log, "at least once", Crash(150, "sink"), tmp_path)
    assert len(trial.written_before) == 150
    assert trial.duplicates == 30 == len(trial.replayed)
    assert trial.ledger_sum > sales_totals(log)["total_cents"].sum()


@pytest.mark.parametrize("at, where", [(150, "sink"), (200, "step"), (59, "step")])
def test_at_most_once_loses_exactly_what_lay_between_the_snapshot_and_the_commits(log, tmp_path, at, where):
    trial = _trial(log, "at most once", Crash(at, where), tmp_path)
    assert trial.duplicates == 0
    assert trial.lost == len(trial.skipped)
    assert trial.replayed == []
    lost_cents = sum(sale_from(r).cents for p, o in trial.skipped for r in log.read(p, o, 1))
    assert trial.batch["total_cents"].sum() - trial.answer["total_cents"].sum() == lost_cents
    assert 0 < trial.lost <= 3 * BATCH  # the epoch in progress: its batches were committed as they were read


def test_at_most_once_in_a_killed_subprocess_loses_the_same(log, tmp_path):
    killed = _trial(log, "at most once", Crash(150, "sink"), tmp_path, kill=True)
    raised = _trial(log, "at most once", Crash(150, "sink"), tmp_path / "again")
    assert killed.lost == raised.lost == 60
    assert killed.answer.equals(raised.answer)


def test_a_step_that_raises_gives_a_short_stream_error_and_no_rust_panic(log, tmp_path, capfd):
    attempt = run_once(log, Ledger(tmp_path / "rows"), None, batch_size=BATCH, crash=Crash(5))
    assert isinstance(attempt.error, StreamError)
    assert str(attempt.error) == "step 'decode' raised InjectedCrash: the process died before its record 5"
    assert isinstance(attempt.error.__cause__, InjectedCrash)
    attempt = run_once(log, Ledger(tmp_path / "rows2"), None, batch_size=BATCH, crash=Crash(5, "sink"))
    assert str(attempt.error).startswith("step 'write' raised InjectedCrash")
    captured = capfd.readouterr()
    assert "panicked" not in captured.err + captured.out
    assert "RUST_BACKTRACE" not in captured.err + captured.out
    # The process goes on: the next run works.
    assert run_once(log, Ledger(tmp_path / "rows3"), None, batch_size=BATCH).error is None


def test_a_poison_record_crashes_every_resume_until_it_is_routed_aside(tmp_path):
    log = Log.create(tmp_path / "sales", partitions=3)
    publish_sales(log, take(pipe(seed=3, keys=5), 100))
    poison = add_poison(log, "store-2")
    publish_sales(log, take(pipe(seed=4, keys=5), 100))
    recovery = fresh_store(tmp_path / "recovery")
    rows = Ledger(tmp_path / "rows")
    for _ in range(2):  # the same record, the same crash, every time
        attempt = run_once(log, rows, recovery, batch_size=10)
        assert re.fullmatch(r"step 'decode' raised ValueError: record at partition \d, offset \d+: cents must be a "
                            r"whole number of cents, got 'USD 12.50'", str(attempt.error))
    fixed = run_once(log, rows, recovery, batch_size=10, lenient=True)
    assert fixed.error is None
    assert [(r.partition, r.offset) for r in fixed.aside] == [(poison.partition, poison.offset)]
    assert answer_from(rows.rows()).equals(sales_totals(log))
    assert sales_totals(log)["sales"].sum() == 200


def test_a_finished_flow_run_again_on_its_store_outputs_nothing(log, tmp_path):
    recovery = fresh_store(tmp_path / "recovery")
    rows = Ledger(tmp_path / "rows")
    assert run_once(log, rows, recovery, batch_size=BATCH).error is None
    assert len(rows.rows()) == RECORDS
    again = run_once(log, rows, recovery, batch_size=BATCH)
    assert again.resumed_from == log.end_offsets()
    assert len(rows.rows()) == RECORDS


def test_the_stream_answer_without_recovery_equals_the_batch_answer(log):
    assert stream_recovery.sales_totals(log, batch_size=7).equals(sales_totals(log))
    assert sales_totals(log)["sales"].sum() == RECORDS


def test_a_table_replays_into_the_same_rows(tmp_path):
    table = Table(tmp_path / "t.sqlite")
    rows = [Row("store-1", 0, i, 100, i + 1, 100 * (i + 1)) for i in range(5)]
    table.write(rows)
    table.write(rows[2:])
    assert table.rows() == rows
    more = [Row("store-1", 0, 5, 1, 6, 501), Row("store-1", 0, 6, 1, 7, 502)]
    with pytest.raises(InjectedCrash):
        table.write(more, CrashPoint(Crash(1, "sink"), "sink"))
    assert table.rows() == rows + more[:1]  # the row before the crash is kept
    table.write(more)
    assert table.rows() == rows + more


def test_the_batch_job_rerun_from_the_start_or_from_finished_partitions_gives_the_same_files(log, tmp_path):
    failed = batch_job(log, tmp_path / "a", crash=Crash(200))
    assert failed.failed and failed.processed == 200
    assert len(failed.written) >= 1
    done = {p: (tmp_path / "a" / f"partition-{p}.json").read_text() for p in failed.written}
    again = batch_job(log, tmp_path / "a", skip_done=True)
    assert again.skipped == failed.written
    assert again.processed == RECORDS - sum(log.end_offsets()[p] for p in failed.written)
    assert {p: (tmp_path / "a" / f"partition-{p}.json").read_text() for p in failed.written} == done
    from_start = batch_job(log, tmp_path / "b")
    assert from_start.processed == RECORDS and not from_start.failed
    assert job_answer(log, tmp_path / "a").equals(sales_totals(log))
    assert job_answer(log, tmp_path / "b").equals(sales_totals(log))
    with pytest.raises(FileNotFoundError, match="partition"):
        job_answer(log, tmp_path / "nothing")


def test_bad_parameters_are_refused_with_the_name_and_value(log, tmp_path):
    with pytest.raises(ValueError, match="at must be an int >= 0"):
        Crash(-1)
    with pytest.raises(ValueError, match="where must be 'step' or 'sink'"):
        Crash(1, "source")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs signal="):
        Crash(1, how="wait")
    with pytest.raises(ValueError, match="guarantee must be one of"):
        crash_and_resume(log, "exactly once", Crash(3), tmp_path)
    with pytest.raises(ValueError, match="kill_at needs"):
        kill_at(log, "ledger", tmp_path / "x", tmp_path / "r", Crash(3))
    with pytest.raises(TypeError, match="event 0 must be an Event"):
        publish_sales(log, [1])
    with pytest.raises(RuntimeError, match="did not crash"):
        crash_and_resume(log, "at least once", Crash(RECORDS + 5), tmp_path)
    assert Crash.decode(Crash(4, "sink", "wait", "/x/y").encode()) == Crash(4, "sink", "wait", "/x/y")


def test_every_store_lives_in_the_trial_directory(log, tmp_path):
    crash_and_resume(log, "at least once", Crash(70), tmp_path, batch_size=BATCH, name="t")
    made = sorted(p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*"))
    assert set(made) == {"t"}
    assert not list(Path(log.path).glob("*.sqlite"))


def test_records_appended_after_a_finished_run_are_read_on_top_of_the_restored_totals(tmp_path):
    log = Log.create(tmp_path / "sales", partitions=2)
    publish_sales(log, take(pipe(seed=5, keys=4), 100))
    recovery = fresh_store(tmp_path / "recovery")
    rows = Ledger(tmp_path / "rows")
    assert run_once(log, rows, recovery, batch_size=10).error is None
    publish_sales(log, take(pipe(seed=6, keys=4), 30))
    again = run_once(log, rows, recovery, batch_size=10)
    assert again.error is None
    assert len(rows.rows()) == 130  # only the new records were read
    assert answer_from(rows.rows()).equals(sales_totals(log))
