"""Lesson 09: the stream's Iceberg table equals the nightly job's, every row lands exactly once across crashes,
time travel returns what was committed by then, and a refused schema change changes nothing."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyiceberg.types import IntegerType, LongType, StringType

from streamlab import lakehouse as lh
from streamlab.batch import lakehouse as nightly
from streamlab.events import COURSE_START, arrived_before
from streamlab.log import Log
from streamlab.orders import order_pipe, to_frame
from streamlab.stream import lakehouse as streaming

HOUR = timedelta(hours=1)


def make_log(path: Path, *, seed: int = 3, hours: float = 3, partitions: int = 1, damaged: float = 0.05,
             rate: float = 0.02) -> tuple[Log, list[dict]]:
    events = list(arrived_before(order_pipe(seed=seed, rate=rate), COURSE_START + hours * HOUR))
    raw = lh.raw_orders(events, seed=seed, damaged=damaged)
    log = Log.create(path / "log", partitions=partitions)
    lh.publish_raw(log, raw)
    return log, raw


def valid_positions(log: Log) -> set[tuple[int, int]]:
    return {(r.partition, r.offset) for p in range(log.partitions) for r in log.records(p)
            if lh.validate(r).event is not None}


def positions(table) -> list[tuple[int, int]]:
    frame = lh.read(table)
    return list(zip(frame["log_partition"], frame["log_offset"], strict=True))


@pytest.fixture
def warehouse(tmp_path):
    (tmp_path / "warehouse").mkdir()
    return lh.open_warehouse(tmp_path / "warehouse")


# -- stream = batch -------------------------------------------------------------------------------

@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), minutes=st.sampled_from([10, 30, 60]), partitions=st.integers(1, 3))
def test_the_stream_table_equals_the_nightly_table(tmp_path_factory, seed, minutes, partitions):
    tmp = tmp_path_factory.mktemp("lake")
    log, raw = make_log(tmp, seed=seed, hours=2, partitions=partitions)
    warehouse = lh.open_warehouse(tmp)
    stream_table, batch_table = lh.create_table(warehouse, "shop.stream"), lh.create_table(warehouse, "shop.batch")
    load = streaming.load_orders(log, stream_table, every=timedelta(minutes=minutes))
    nightly.load_orders(log, batch_table)
    pd.testing.assert_frame_equal(lh.read(stream_table), lh.read(batch_table))
    assert len(lh.read(stream_table)) == load.rows == len(valid_positions(log))
    assert len(batch_table.snapshots()) == 1 and lh.committed_offsets(stream_table) == lh.committed_offsets(batch_table)


def test_good_and_bad_records_reconcile_with_the_dead_letters(tmp_path, warehouse):
    log, raw = make_log(tmp_path, damaged=0.2)
    table = lh.create_table(warehouse, "shop.orders")
    dead = lh.create_table(warehouse, "shop.dead_letters", lh.DEAD_LETTER_SCHEMA)
    streaming.load_orders(log, table, every=timedelta(minutes=30), dead_letters=dead)
    rows, letters = lh.read(table), lh.read(dead)
    assert len(rows) + len(letters) == len(raw) and len(letters) > 10
    assert set(rows["log_offset"]).isdisjoint(letters["log_offset"])
    # each reason names the field that was wrong
    assert all(any(f in reason for f in ("amount", "customer", "event_time", "kind")) for reason in letters["reason"])
    assert json.loads(letters["raw"].iloc[0])["order_id"].startswith("order-")


# -- exactly once across crashes ------------------------------------------------------------------

def test_every_row_exactly_once_after_a_dozen_seeded_crashes(tmp_path, warehouse):
    log, _ = make_log(tmp_path, hours=4, partitions=2, rate=0.01)
    table = lh.create_table(warehouse, "shop.orders")
    dead = lh.create_table(warehouse, "shop.dead_letters", lh.DEAD_LETTER_SCHEMA)
    rng = random.Random(9)
    crashes = 0
    while True:
        crash = streaming.Crash(rng.randint(1, 3)) if crashes < 12 else None
        load = streaming.load_orders(log, table, every=timedelta(minutes=10), dead_letters=dead, crash=crash,
                                     batch_size=7)
        crashes += load.crashed
        if not load.crashed:
            break
    assert crashes == 12
    rows = positions(table)
    assert len(rows) == len(set(rows)) and set(rows) == valid_positions(log)
    assert len(lh.read(dead)) + len(rows) == sum(log.end_offsets().values())
    reference = lh.create_table(warehouse, "shop.reference")
    nightly.load_orders(log, reference)
    pd.testing.assert_frame_equal(lh.read(table), lh.read(reference))


def test_a_crash_leaves_the_table_as_it_was_and_the_rerun_skips_what_is_in(tmp_path, warehouse):
    log, _ = make_log(tmp_path)
    table = lh.create_table(warehouse, "shop.orders")
    first = streaming.load_orders(log, table, every=timedelta(minutes=30), crash=streaming.Crash(3))
    assert first.crashed and len(first.commits) == 2
    assert len(table.snapshots()) == 2 and len(lh.read(table)) == first.rows
    second = streaming.load_orders(log, table, every=timedelta(minutes=30))
    assert not second.crashed and second.skipped == 0  # it started where the table stood
    assert len(lh.read(table)) == first.rows + second.rows == len(valid_positions(log))


def test_a_replay_from_the_start_skips_every_committed_row(tmp_path, warehouse):
    log, _ = make_log(tmp_path)
    table = lh.create_table(warehouse, "shop.orders")
    streaming.load_orders(log, table, every=timedelta(minutes=30))
    again = streaming.IcebergSink(table, every=timedelta(minutes=30))
    part = again.build("s", 0, 1)
    items = [(r.partition, r.offset, lh.validate(r).arrival_time, lh.order_row(lh.validate(r).event, 0, r.offset))
             for r in log.records(0) if lh.validate(r).event is not None]
    part.write_batch(items)
    part.close()
    assert again.load.skipped == len(items) and again.load.commits == []


def test_sigkill_between_writing_files_and_committing_loses_and_duplicates_nothing(tmp_path, warehouse):
    log, _ = make_log(tmp_path)
    run = [sys.executable, "-m", "streamlab.stream.lakehouse", str(tmp_path / "warehouse"), str(log.path), "1800"]
    killed = subprocess.run([*run, "2"], capture_output=True, timeout=120)
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    table = lh.create_table(warehouse, "shop.orders")
    assert len(table.snapshots()) == 1
    # The killed commit's Parquet file is on disk, listed by no snapshot.
    assert lh.files_on_disk(table) == lh.data_files(table) + 1
    finished = subprocess.run(run, capture_output=True, timeout=120)
    assert finished.returncode == 0, finished.stderr.decode()[-2000:]
    table = lh.create_table(warehouse, "shop.orders")
    rows = positions(table)
    assert len(rows) == len(set(rows)) and set(rows) == valid_positions(log)


# -- time travel ----------------------------------------------------------------------------------

def test_time_travel_returns_exactly_the_rows_committed_by_then(tmp_path, warehouse):
    log, _ = make_log(tmp_path)
    table = lh.create_table(warehouse, "shop.orders")
    streaming.load_orders(log, table, every=timedelta(minutes=20))
    everything = lh.read(table)
    for minutes in (20, 25, 59, 60, 61, 150):
        when = COURSE_START + timedelta(minutes=minutes)
        committed_by_then = COURSE_START + timedelta(minutes=minutes // 20 * 20)
        expected = everything[everything["arrival_time"] < committed_by_then].reset_index(drop=True)
        pd.testing.assert_frame_equal(lh.as_of(table, when), expected)
    with pytest.raises(lh.NothingCommittedError, match="nothing was committed at or before 2026-03-01T00:19"):
        lh.as_of(table, COURSE_START + timedelta(minutes=19))


def test_time_travel_ends_where_snapshots_were_expired(tmp_path, warehouse):
    log, _ = make_log(tmp_path)
    table = lh.create_table(warehouse, "shop.orders")
    streaming.load_orders(log, table, every=timedelta(minutes=20))
    assert lh.expire(table, keep=3) == 6
    assert len(lh.as_of(table, COURSE_START + 3 * HOUR)) == len(lh.read(table))
    with pytest.raises(lh.NothingCommittedError):
        lh.as_of(table, COURSE_START + HOUR)
    with pytest.raises(ValueError, match="keep must be an int >= 1"):
        lh.expire(table, keep=0)


def test_freshness_stream_within_its_micro_batch_nightly_a_day_later(tmp_path, warehouse):
    log, _ = make_log(tmp_path)
    stream_table, batch_table = lh.create_table(warehouse, "shop.stream"), lh.create_table(warehouse, "shop.batch")
    streaming.load_orders(log, stream_table, every=timedelta(minutes=15))
    nightly.load_orders(log, batch_table)
    fast, slow = lh.freshness(stream_table), lh.freshness(batch_table)
    assert (fast["waited"] == timedelta(0)).all()  # 15 min batches end on every hour
    assert slow["waited"].tolist() == [timedelta(hours=h) for h in (25, 24, 23)]


# -- upkeep ---------------------------------------------------------------------------------------

def test_compaction_keeps_rows_and_offsets_in_fewer_files(tmp_path, warehouse):
    log, _ = make_log(tmp_path)
    table = lh.create_table(warehouse, "shop.orders")
    streaming.load_orders(log, table, every=timedelta(minutes=10))
    before_rows, offsets = lh.read(table), lh.committed_offsets(table)
    assert lh.compact(table) == (18, 1)
    pd.testing.assert_frame_equal(lh.read(table), before_rows)
    assert lh.committed_offsets(table) == offsets
    assert streaming.load_orders(log, table, every=timedelta(minutes=10)).rows == 0


def test_recommended_properties_merge_manifests(tmp_path, warehouse):
    events = list(arrived_before(order_pipe(seed=1), COURSE_START + HOUR))
    rows = [lh.order_row(e, 0, i) for i, e in enumerate(events)]
    batches = [rows[i:i + 5] for i in range(0, 125, 5)]
    plain = lh.create_table(warehouse, "shop.plain", properties={})
    tuned = lh.create_table(warehouse, "shop.tuned")
    lh.commit_latencies(plain, batches)
    lh.commit_latencies(tuned, batches, expire_every=10, keep=5)
    assert len(plain.current_snapshot().manifests(plain.io)) == 25
    assert len(tuned.current_snapshot().manifests(tuned.io)) < 10
    assert len(tuned.snapshots()) <= 10 and len(plain.snapshots()) == 25
    pd.testing.assert_frame_equal(lh.read(plain), lh.read(tuned))


# -- schema evolution -----------------------------------------------------------------------------

def test_schema_evolution_adds_and_renames_and_refuses_a_type_change_cleanly(tmp_path, warehouse):
    log, _ = make_log(tmp_path, hours=1)
    table = lh.create_table(warehouse, "shop.orders")
    streaming.load_orders(log, table, every=timedelta(minutes=30))
    before = lh.read(table)
    lh.evolve(table, lh.AddColumn("channel", StringType()))
    assert lh.read(table)["channel"].isna().all()
    lh.evolve(table, lh.Rename("customer", "customer_id"))
    assert lh.read(table)["customer_id"].tolist() == before["customer"].tolist()
    schema, snapshots = table.schema(), len(table.snapshots())
    with pytest.raises(lh.SchemaChangeRefused, match=r"'amount'.*double.*int.*unchanged"):
        lh.evolve(table, lh.ChangeType("amount", IntegerType()))
    assert table.schema() == schema and table.refresh().schema() == schema and len(table.snapshots()) == snapshots
    lh.evolve(table, lh.ChangeType("log_partition", LongType()))  # a widening old data can take
    assert table.schema().find_field("log_partition").field_type == LongType()


# -- shift left -----------------------------------------------------------------------------------

def test_two_hand_cleanings_disagree_while_validated_rows_reconcile():
    events = list(arrived_before(order_pipe(seed=5, rate=0.02), COURSE_START + 3 * HOUR))
    raw = lh.raw_orders(events, seed=5, damaged=0.1)
    checked = [lh.validate_raw(r) for r in raw]
    table = to_frame([c.event for c in checked if c.event is not None])
    numbers = lh.shift_left(raw, table)
    finance, marketing = (lh.paid_by_hour(lh.hand_clean(raw, c)) for c in lh.CONSUMERS)
    assert not finance.equals(marketing)
    assert numbers["raw rows touched"].tolist() == [0, len(raw), len(raw)]
    truth, validated = lh.paid_by_hour(to_frame(events)).sum(), lh.paid_by_hour(table).sum()
    lost = sum(e.amount for e, c in zip(events, checked, strict=True) if c.event is None and e.kind == "paid")
    assert truth - validated == pytest.approx(lost)  # what is missing is exactly what the dead letters hold


# -- bad input ------------------------------------------------------------------------------------

def test_bad_input_is_named(tmp_path, warehouse):
    with pytest.raises(ValueError, match="path must be an existing directory"):
        lh.open_warehouse(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="name must be 'shop.<table>'"):
        lh.create_table(warehouse, "orders")
    with pytest.raises(ValueError, match="every must be a timedelta > 0 that divides a day"):
        lh.batch_end(COURSE_START, timedelta(minutes=7))
    with pytest.raises(ValueError, match="at_commit must be an int >= 1"):
        streaming.Crash(0)
    with pytest.raises(ValueError, match="how must be 'raise' or 'kill'"):
        streaming.Crash(1, "explode")
    with pytest.raises(ValueError, match="damaged must be a share from 0 to 1"):
        lh.raw_orders([], damaged=2)
    with pytest.raises(ValueError, match="consumer must be one of"):
        lh.hand_clean([], "sales")
    with pytest.raises(ValueError, match="arrival_time must be the log's UTC stamp"):
        lh.validate_raw({"order_id": "o"})
    with pytest.raises(TypeError, match="change must be AddColumn, Rename or ChangeType"):
        lh.evolve(lh.create_table(warehouse, "shop.orders"), "drop amount")
    table = lh.create_table(warehouse, "shop.orders")
    with pytest.raises(ValueError, match="clock must be"):
        lh.commit(table, [{}], offsets={0: 1}, clock=COURSE_START.replace(tzinfo=None))


def test_the_table_evolves_in_step_with_the_registry_and_a_refusal_changes_neither(warehouse):
    from streamlab.registry import Registry, load

    registry = Registry()
    registry.register("orders-value", load("orders-v1"))
    table = lh.create_table(warehouse, "shop.orders")
    lh.evolve_with(table, registry, "orders-value", load("orders-add-currency-default"))
    assert table.schema().find_field("currency").field_type == StringType() and registry.versions("orders-value") == [1, 2]
    schema = table.schema()
    for refused, reason in [("orders-amount-float", "registry refused.*amount"),
                            ("orders-amount-string", "registry refused.*amount"),
                            ("orders-drop-customer", r"drops \['currency', 'customer'\]")]:
        with pytest.raises(lh.SchemaChangeRefused, match=reason):
            lh.evolve_with(table, registry, "orders-value", load(refused))
        assert table.schema() == schema and registry.versions("orders-value") == [1, 2]
    renamed = load("orders-add-currency-default")
    renamed["fields"] = [{"name": "customer_id", "type": "string", "aliases": ["customer"]} if f["name"] == "customer"
                         else f for f in renamed["fields"]]
    assert lh.changes_between(load("orders-add-currency-default"), renamed) == [lh.Rename("customer", "customer_id")]
    lh.evolve_with(table, registry, "orders-value", renamed)
    assert "customer_id" in table.schema().column_names and registry.versions("orders-value") == [1, 2, 3]


def test_validation_upstream_decides_as_the_order_event_does():
    # Lesson 07's rule table and lesson 02's OrderEvent accept and refuse the same raw records, the same way.
    from streamlab.orders import OrderEvent

    events = list(arrived_before(order_pipe(seed=4, rate=0.05), COURSE_START + HOUR))
    for raw in lh.raw_orders(events, seed=4, damaged=0.3):
        try:
            expected = OrderEvent.from_json(raw)
        except (ValueError, TypeError):
            expected = None
        assert lh.validate_raw(raw).event == expected


def test_a_step_that_crashes_mid_batch_loses_and_duplicates_nothing(tmp_path, warehouse):
    # The other kind of crash: a step dies while reading (here the validation, at a seeded record).
    from streamlab.stream import StreamError

    log, _ = make_log(tmp_path, hours=3, partitions=2)
    table = lh.create_table(warehouse, "shop.orders")
    rng = random.Random(4)
    for _ in range(4):
        # A record among those this run will read: it starts where the table's offsets stand.
        doomed = rng.randrange(sum(log.end_offsets().values()) - sum(lh.committed_offsets(table).values()))
        seen = []

        def validator(record, doomed=doomed, seen=seen):
            seen.append(record)
            if len(seen) > doomed:
                raise RuntimeError(f"the validation step died at record {doomed}")
            return lh.validate(record)

        with pytest.raises(StreamError, match="died at record"):
            streaming.load_orders(log, table, every=timedelta(minutes=10), validator=validator, batch_size=5)
    streaming.load_orders(log, table, every=timedelta(minutes=10))
    rows = positions(table)
    assert len(rows) == len(set(rows)) and set(rows) == valid_positions(log)
