"""Batch equals stream for the running totals, with and without a crash; bad records are routed aside, never fatal when lenient."""

import random
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from streamlab.batch.recovery import sales_totals as batch_totals
from streamlab.log import Log
from streamlab.recovery import Crash, Ledger, answer_from, publish_sales, sale_from
from streamlab.stream.recovery import crash_and_resume, fresh_store, run_once
from streamlab.stream.recovery import sales_totals as stream_totals
from strategies import event_lists


@settings(max_examples=25)
@given(event_lists, st.integers(min_value=1, max_value=4), st.integers(min_value=1, max_value=40))
def test_the_stream_gives_the_batch_answer(events, partitions, batch_size):
    with tempfile.TemporaryDirectory() as tmp:
        log = Log.create(Path(tmp) / "sales", partitions=partitions)
        publish_sales(log, events)
        assert stream_totals(log, batch_size=batch_size).equals(batch_totals(log))
        assert batch_totals(log)["sales"].sum() == len(events)


@settings(max_examples=10)
@given(event_lists.filter(lambda e: len(e) >= 2), st.integers(min_value=1, max_value=3),
       st.integers(min_value=1, max_value=20), st.data())
def test_a_crash_anywhere_resumed_at_least_once_gives_the_batch_answer(events, partitions, batch_size, data):
    at = data.draw(st.integers(min_value=0, max_value=len(events) - 1))
    where = data.draw(st.sampled_from(["step", "sink"]))
    with tempfile.TemporaryDirectory() as tmp:
        log = Log.create(Path(tmp) / "sales", partitions=partitions)
        publish_sales(log, events)
        trial = crash_and_resume(log, "at least once", Crash(at, where), Path(tmp), batch_size=batch_size)
        assert trial.correct and trial.lost == 0
        assert trial.duplicates == len(trial.replayed)


BAD_VALUES = ["USD 12.50", 12.5, None, True, [1], {"cents": 3}, "", -0.5, "1e3", 10**3 + 0.0]


def test_seeded_bad_records_are_refused_naming_the_field_and_routed_aside_when_lenient(tmp_path):
    rng = random.Random(8)
    log = Log.create(tmp_path / "sales", partitions=3)
    bad = []
    for i in range(200):
        if rng.random() < 0.1:
            value = rng.choice(BAD_VALUES)
            payload = rng.choice([{"cents": value}, {"amount": 5}, value, {}])
            bad.append(log.append(f"store-{rng.randrange(5)}", payload))
        else:
            log.append(f"store-{rng.randrange(5)}", {"cents": rng.randrange(-500, 5000)})
    for record in bad:
        try:
            sale_from(record)
        except ValueError as why:
            assert f"partition {record.partition}, offset {record.offset}: cents must be a whole number" in str(why)
        else:
            raise AssertionError(f"{record} was accepted")
    strict = run_once(log, Ledger(tmp_path / "strict"), fresh_store(tmp_path / "r1"), batch_size=7)
    assert strict.error is not None and "step 'decode' raised ValueError" in str(strict.error)
    rows = Ledger(tmp_path / "lenient")
    lenient = run_once(log, rows, fresh_store(tmp_path / "r2"), batch_size=7, lenient=True)
    assert lenient.error is None
    assert sorted((r.partition, r.offset) for r in lenient.aside) == sorted((r.partition, r.offset) for r in bad)
    assert len(rows.rows()) + len(lenient.aside) == 200  # every record a row or routed aside
    assert answer_from(rows.rows()).equals(batch_totals(log))
