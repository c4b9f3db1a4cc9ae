"""The log on disk: append, read by position without consuming, consumers with committed offsets, torn writes."""

import json
import subprocess
import sys
import threading
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamlab.log import (
    CorruptLogError,
    Log,
    LogError,
    LostRecords,
    OffsetOutOfRangeError,
    Record,
    RestoredNewline,
    TornTail,
    UnknownConsumerError,
)


@pytest.fixture
def log(tmp_path):
    return Log.create(tmp_path / "log", partitions=3)


def key_in(log, partition):
    """A key whose records go to ``partition``."""
    return next(f"k{i}" for i in range(1000) if log.partition_for(f"k{i}") == partition)


def fill(log, n, prefix="k"):
    return log.extend((f"{prefix}{i % 7}", {"i": i}) for i in range(n))


# --------------------------------------------------------------------------- creating and writing


def test_create_then_open_and_refuse_the_wrong_way_round(tmp_path):
    with pytest.raises(LogError, match="no log at 'missing'"):
        Log.open(tmp_path / "missing")
    Log.create(tmp_path / "a", partitions=2)
    assert Log.open(tmp_path / "a").partitions == 2
    with pytest.raises(LogError, match="cannot create a log at 'a': something is already there"):
        Log.create(tmp_path / "a")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=f"partitions must be an int >= 1, got {bad!r}"):
            Log.create(tmp_path / "b", partitions=bad)


def test_append_gives_the_next_offset_of_the_key_partition(log):
    records = fill(log, 30)
    for p in range(3):
        offsets = [r.offset for r in records if r.partition == p]
        assert offsets == list(range(len(offsets)))
    assert all(r.partition == log.partition_for(r.key) for r in records)
    assert log.end_offsets() == {p: sum(r.partition == p for r in records) for p in range(3)}
    assert log.append("k1", "x") == Record(log.partition_for("k1"), log.end_offset(log.partition_for("k1")) - 1, "k1", "x")


def test_the_partition_of_a_key_is_the_same_in_every_process(log):
    # crc32, hand-checked: the partition is stable, unlike hash() which Python salts per process.
    assert log.partition_for("order-00001") == zlib.crc32(b"order-00001") % 3
    code = "from streamlab.log import Log; import sys; print(Log.open(sys.argv[1]).partition_for('order-00001'))"
    child = subprocess.run([sys.executable, "-c", code, str(log.path)], capture_output=True, text=True, check=True)
    assert int(child.stdout) == log.partition_for("order-00001")


def test_bad_keys_and_values_are_refused_before_anything_is_written(log):
    with pytest.raises(ValueError, match="key must be a non-empty string, got ''"):
        log.append("", 1)
    with pytest.raises(TypeError, match="not JSON serializable"):
        log.append("k", {1, 2})
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        log.append("k", float("nan"))
    assert log.end_offsets() == {0: 0, 1: 0, 2: 0}
    assert log.check() == []


# --------------------------------------------------------------------------- reading


def test_reading_does_not_consume(log):
    fill(log, 40)
    assert log.read(1, 2, 5) == log.read(1, 2, 5)
    assert [r.offset for r in log.read(1, 2, 5)] == [2, 3, 4, 5, 6]
    assert log.read(1) == list(log.records(1))
    assert sum(1 for _ in log.records()) == 40


def test_reading_at_the_end_is_empty_past_it_or_before_zero_is_an_error(log):
    fill(log, 10)
    end = log.end_offset(0)
    assert log.read(0, end) == []
    with pytest.raises(OffsetOutOfRangeError, match=(
        f"offset {end + 5} is past the end of partition 0: it holds offsets 0 to {end - 1}, "
        f"and the next record appended will get offset {end}"
    )):
        log.read(0, end + 5)
    with pytest.raises(ValueError, match=r"offset must be >= 0, got -1 \(offsets count records from 0\)"):
        log.read(0, -1)
    with pytest.raises(ValueError, match="offset must be an int >= 0, got '3'"):
        log.read(0, "3")
    with pytest.raises(ValueError, match="partition must be an int from 0 to 2, got 3"):
        log.read(3, 0)
    with pytest.raises(ValueError, match="max_records must be an int >= 1, got 0"):
        log.read(0, 0, 0)
    empty = Log.create(log.path.parent / "empty")
    with pytest.raises(OffsetOutOfRangeError, match="it holds no records yet, and the next record appended will get offset 0"):
        empty.read(0, 1)


def test_a_new_log_object_sees_what_another_appended(log):
    other = Log.open(log.path)
    fill(log, 12)
    assert other.end_offsets() == log.end_offsets()
    assert list(other.records()) == list(log.records())


def test_a_reader_never_sees_a_half_written_record_while_a_writer_appends(log):
    reader = Log.open(log.path)
    seen, errors = [], []
    done = threading.Event()

    def read():
        position = 0
        try:
            while not done.is_set() or position < reader.end_offset(0):
                records = reader.read(0, position, 50)
                seen.extend(records)
                position += len(records)
        except Exception as err:  # surfaced below
            errors.append(err)

    thread = threading.Thread(target=read)
    thread.start()
    single = Log.open(log.path)
    key = next(f"k{i}" for i in range(100) if single.partition_for(f"k{i}") == 0)
    for i in range(300):
        single.extend([(key, {"i": i, "pad": "x" * (i % 50)})] * 5)
    done.set()
    thread.join()
    assert errors == []
    assert [r.offset for r in seen] == list(range(1500))
    assert [r.value["i"] for r in seen] == [i for i in range(300) for _ in range(5)]


# --------------------------------------------------------------------------- consumers


def test_each_consumer_keeps_its_own_position(log):
    fill(log, 60)
    payments, fraud = log.add_consumer("payments"), log.add_consumer("fraud")
    first = payments.poll(20)
    assert len(first) == 20 and fraud.positions == {0: 0, 1: 0, 2: 0}
    assert sorted(r.offset for r in fraud.poll(20)) == sorted(r.offset for r in first)
    assert payments.committed() == {0: 0, 1: 0, 2: 0}  # polled, not committed
    payments.commit()
    assert log.committed("payments") == payments.positions
    assert log.committed("fraud") == {0: 0, 1: 0, 2: 0}
    assert payments.lag() == 40 and fraud.lag() == 60
    assert log.lag("payments") == {p: log.end_offset(p) - payments.positions[p] for p in range(3)}


@settings(max_examples=40)
@given(
    keys=st.lists(st.sampled_from("abcdefgh"), max_size=80),
    polls=st.lists(st.integers(1, 9), min_size=1, max_size=20),
)
def test_every_consumer_sees_every_record_in_order_within_each_partition(tmp_path_factory, keys, polls):
    log = Log.create(tmp_path_factory.mktemp("log") / "log", partitions=3)
    appended = log.extend((k, {"n": n}) for n, k in enumerate(keys))
    consumers = [log.add_consumer(name) for name in ("payments", "fraud", "loyalty")]
    seen = {c.name: [] for c in consumers}
    # Interleave the consumers' polls of different sizes; then let each catch up.
    for i, size in enumerate(polls):
        c = consumers[i % 3]
        seen[c.name].extend(c.poll(size))
    for c in consumers:
        while batch := c.poll(7):
            seen[c.name].extend(batch)
    for records in seen.values():
        assert sorted(records, key=lambda r: r.value["n"]) == appended  # every record, once
        for p in range(3):
            mine = [r for r in records if r.partition == p]
            assert mine == [r for r in appended if r.partition == p]  # in order within the partition
            assert all(r.partition == log.partition_for(r.key) for r in mine)


def test_committed_offsets_survive_reopening_the_log_in_a_new_process(log):
    fill(log, 50)
    payments = log.add_consumer("payments")
    payments.poll(17)
    payments.commit()
    code = (
        "import json, sys\n"
        "from streamlab.log import Log\n"
        "log = Log.open(sys.argv[1])\n"
        "c = log.consumer('payments')\n"
        "before = c.positions\n"
        "c.poll(10)\n"
        "c.commit()\n"
        "print(json.dumps({'before': before, 'after': c.positions}))\n"
    )
    child = subprocess.run([sys.executable, "-c", code, str(log.path)], capture_output=True, text=True, check=True)
    result = json.loads(child.stdout)
    assert {int(p): o for p, o in result["before"].items()} == payments.positions
    after = {int(p): o for p, o in result["after"].items()}
    assert sum(after.values()) == 27
    # Back in this process, a freshly opened log sees what the other process committed.
    assert Log.open(log.path).committed("payments") == after
    assert Log.open(log.path).consumer("payments").positions == after


def test_replay_from_zero_reproduces_the_same_records(log):
    fill(log, 45)
    c = log.add_consumer("loyalty")
    first = []
    while batch := c.poll(8):
        first.extend(batch)
    c.commit()
    assert c.lag() == 0
    c.seek_to_beginning()
    again = []
    while batch := c.poll(8):
        again.extend(batch)
    assert again == first
    c.seek(1, 2)
    assert c.poll(1)[0].offset == 2


def test_a_commit_lands_even_when_another_consumer_object_moved_the_offsets_since(log):
    fill(log, 30)
    first = log.add_consumer("loyalty")
    first.seek_to_beginning()
    first.commit()
    second = log.consumer("loyalty")
    while second.poll(10):
        pass
    second.commit()
    assert log.lag("loyalty") == {0: 0, 1: 0, 2: 0}
    first.seek_to_beginning()  # first still believes 0 is committed; the disk says otherwise
    first.commit()
    assert log.committed("loyalty") == {0: 0, 1: 0, 2: 0}


def test_a_consumer_added_at_latest_sees_only_what_comes_next(log):
    fill(log, 20)
    late = log.add_consumer("late", start="latest")
    assert late.poll(100) == []
    new = log.append("k3", "new")
    assert late.poll(100) == [new]


def test_bad_consumer_input_gives_clear_errors(log):
    log.add_consumer("payments")
    with pytest.raises(UnknownConsumerError, match=(
        r"no consumer named 'paymnts' in this log; consumers are \['payments'\] "
        r"\(add one with log.add_consumer\('paymnts'\)\)"
    )):
        log.consumer("paymnts")
    with pytest.raises(UnknownConsumerError):
        log.committed("fraud")
    with pytest.raises(LogError, match="a consumer named 'payments' already exists"):
        log.add_consumer("payments")
    with pytest.raises(ValueError, match="consumer name must be lowercase letters"):
        log.add_consumer("../etc")
    with pytest.raises(ValueError, match="start must be 'earliest' or 'latest', got 'now'"):
        log.add_consumer("fraud", start="now")
    c = log.consumer("payments")
    with pytest.raises(OffsetOutOfRangeError, match="offset 1 is past the end of partition 0"):
        c.seek(0, 1)
    with pytest.raises(ValueError, match="offset must be >= 0, got -2"):
        c.seek(0, -2)
    with pytest.raises(OffsetOutOfRangeError, match="committed offset 9 is past the end of partition 2"):
        log.commit("payments", {2: 9})
    with pytest.raises(ValueError, match="max_records must be an int >= 1, got 0"):
        c.poll(0)
    assert log.consumers == ["payments"]


def test_two_members_of_a_group_split_the_partitions(log):
    records = fill(log, 90)
    log.add_consumer("shipping")
    a = log.consumer("shipping", member=0, members=2)
    b = log.consumer("shipping", member=1, members=2)
    assert (a.partitions, b.partitions) == ((0, 2), (1,))
    got_a, got_b = a.poll(1000), b.poll(1000)
    assert {r.partition for r in got_a} == {0, 2} and {r.partition for r in got_b} == {1}
    assert sorted(got_a + got_b, key=lambda r: r.value["i"]) == records  # together: all, once
    a.commit()
    b.commit()
    assert log.lag("shipping") == {0: 0, 1: 0, 2: 0}  # each member committed its own partitions
    idle = log.consumer("shipping", member=3, members=4)
    assert idle.partitions == () and idle.poll(10) == []
    with pytest.raises(ValueError, match="member must be an int from 0 to 1, got 2"):
        log.consumer("shipping", member=2, members=2)
    with pytest.raises(ValueError, match="members must be an int >= 1, got 0"):
        log.consumer("shipping", members=0)
    with pytest.raises(ValueError, match=r"partition 1 is not one of this consumer's partitions \[0, 2\]"):
        a.seek(1, 0)


def test_poll_shares_its_budget_across_partitions(log):
    fill(log, 300)
    c = log.add_consumer("fair")
    counts = {p: 0 for p in range(3)}
    for r in c.poll(30):
        counts[r.partition] += 1
    assert counts == {0: 10, 1: 10, 2: 10}


# --------------------------------------------------------------------------- torn writes and damage


def tear(log, partition, text=b'1a2b3c4d {"offset":'):
    with open(log.partition_path(partition), "ab") as f:
        f.write(text)


def test_a_torn_last_line_is_reported_never_read_and_cut_before_the_next_append(log):
    records = fill(log, 30)
    before = list(log.records())
    key = records[0].key
    p = log.partition_for(key)
    end = log.end_offset(p)
    tear(log, p)
    reopened = Log.open(log.path)  # as after a crash and restart
    assert reopened.check() == [TornTail(p, end, 19)]
    assert str(reopened.check()[0]) == (
        f"partition {p}: 19 bytes of an unfinished record where offset {end} would start "
        "(a write cut off mid-record; not a record)"
    )
    assert list(reopened.records()) == before  # never mis-read
    assert reopened.end_offset(p) == end
    new = reopened.append(key, {"after": "crash"})
    assert new.offset == end
    assert reopened.repairs == [TornTail(p, end, 19)]
    assert reopened.check() == []
    assert list(Log.open(log.path).records(p)) == [r for r in before if r.partition == p] + [new]


@pytest.mark.parametrize("damage", [b"", b"X", b"\r", b"\x00"], ids=["missing", "X", "CR", "NUL"])
def test_a_complete_record_whose_final_newline_is_damaged_is_kept_and_reported_never_cut(log, damage):
    # Regression: such a record used to be taken for a torn tail and deleted by the next append.
    first = log.append("k", {"a": 1})
    second = log.append("k", {"a": 2})
    path = log.partition_path(first.partition)
    path.write_bytes(path.read_bytes()[:-1] + damage)  # the last newline lost, or turned into another byte
    reopened = Log.open(log.path)
    assert reopened.read(first.partition) == [first]  # not a line yet: readers wait for its newline
    assert reopened.check() == [RestoredNewline(first.partition, 1)]
    assert "offset 1 is complete" in str(reopened.check()[0])
    third = reopened.append("k", {"a": 3})
    assert reopened.repairs == [RestoredNewline(first.partition, 1)]
    assert third.offset == 2
    assert Log.open(log.path).read(first.partition) == [first, second, third]
    assert Log.open(log.path).check() == []


def test_a_torn_tail_that_is_not_a_whole_record_is_still_cut(log):
    line = log.append("k", {"a": 1})
    payload = json.dumps({"offset": 1, "key": "k", "value": {"a": 2}}, separators=(",", ":")).encode()
    whole = b"%08x %s" % (zlib.crc32(payload), payload)
    tear(log, line.partition, whole[:-2])  # the write stopped two bytes short of the record's end
    assert log.check() == [TornTail(line.partition, 1, len(whole) - 2)]
    again = log.append("k", {"a": 3})
    assert log.read(line.partition) == [line, again] and again.offset == 1


def test_a_torn_tail_is_cut_even_by_the_log_object_that_wrote_before_the_crash(log):
    first = log.append("k", 1)
    tear(log, first.partition)
    second = log.append("k", 2)
    assert log.read(first.partition) == [first, second]
    assert len(log.repairs) == 1


def test_a_damaged_complete_record_is_an_error_naming_where(log):
    fill(log, 21)
    path = log.partition_path(0)
    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b'"i":', b'"j":')
    path.write_bytes(b"\n".join(lines))
    damaged = Log.open(log.path)
    with pytest.raises(CorruptLogError, match="partition 0, offset 1: checksum mismatch"):
        damaged.read(0)
    with pytest.raises(CorruptLogError, match="partition 0, offset 1"):
        damaged.check()
    assert [r.offset for r in damaged.read(0, 2)] == list(range(2, damaged.end_offset(0)))


def line(offset, key="k", value=1):
    payload = json.dumps({"offset": offset, "key": key, "value": value}, separators=(",", ":")).encode()
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def test_a_record_in_the_wrong_place_is_an_error_and_a_gap_is_lost_records(log):
    path = log.partition_path(0)
    path.write_bytes(line(0) + line(0))  # an offset that an earlier record already holds
    with pytest.raises(CorruptLogError, match="partition 0, offset 1: the line holds offset 0"):
        Log.open(log.path).read(0)
    path.write_bytes(line(0) + line(7))  # offsets 1 to 6 were given out, their records are gone
    gap = Log.open(log.path)
    assert [r.offset for r in gap.read(0)] == [0, 7]
    assert [r.offset for r in gap.read(0, 3)] == [7]  # an offset in the gap reads on from the next record
    assert gap.check() == [LostRecords(0, 1, 6)]
    assert str(gap.check()[0]) == (
        "partition 0: the records at offsets 1 to 6 were written but are no longer in the file "
        "(lost, e.g. the file was cut short); their offsets are never given to other records"
    )
    assert gap.append(key_in(gap, 0), 2).offset == 8
    path.write_bytes(b"garbage\n")
    with pytest.raises(CorruptLogError, match="partition 0, offset 0: the line does not start with a checksum"):
        Log.open(log.path).read(0)


def test_a_partition_that_lost_committed_records_is_an_error(log):
    fill(log, 20)
    log.read(0)
    log.partition_path(0).write_bytes(b"")
    with pytest.raises(CorruptLogError, match="partition 0 shrank from"):
        log.read(0)


def test_repr_names_no_path(log):
    fill(log, 1234)
    log.add_consumer("payments")
    assert repr(log) == "Log(3 partitions, 1,234 records; consumers: payments)"
    assert repr(log.consumer("payments")).startswith("Consumer('payments', partitions [0, 1, 2], positions {0: 0")


# --------------------------------------------------------------------------- offsets are never reused


def lose_last_line(log, partition):
    path = log.partition_path(partition)
    data = path.read_bytes()
    path.write_bytes(data[: data.rstrip(b"\n").rfind(b"\n") + 1])


def test_after_the_last_record_is_lost_its_offset_is_never_given_again(log):
    # Regression: the next append used to take the lost record's offset, and a consumer
    # that had committed past it skipped the new record.
    key = key_in(log, 0)
    log.extend((key, {"i": i}) for i in range(10))
    reader = log.add_consumer("payments")
    assert len(reader.poll(100)) == 10
    reader.commit()
    lose_last_line(log, 0)
    reopened = Log.open(log.path)
    assert [r.offset for r in reopened.read(0)] == list(range(9))
    assert reopened.end_offset(0) == 10  # the high-water mark remembers
    assert reopened.check() == [LostRecords(0, 9, 9)]
    new = reopened.append(key, {"i": "new"})
    assert new.offset == 10
    assert reopened.repairs == [LostRecords(0, 9, 9)]
    assert reopened.consumer("payments").poll(100) == [new]  # not skipped
    assert reopened.check() == [LostRecords(0, 9, 9)]  # the loss stays on record


def test_a_consumer_past_the_end_gets_a_clear_error_or_its_reset_policy(log):
    key = key_in(log, 0)
    log.extend((key, {"i": i}) for i in range(10))
    c = log.add_consumer("payments")
    c.poll(100)
    c.commit()
    lose_last_line(log, 0)
    (log.path / "partition-0.hwm").unlink()  # the high-water mark lost too: the log cannot know
    reopened = Log.open(log.path)
    assert reopened.end_offset(0) == 9
    with pytest.raises(OffsetOutOfRangeError, match=(
        r"consumer 'payments' is at offset 10 of partition 0, past its end 9: the log lost records it had read, "
        r"or was replaced. Open it with reset='earliest' to re-read the partition from its start, or "
        r"reset='latest' to skip to its end \(Kafka's auto.offset.reset\)"
    )):
        reopened.consumer("payments")
    earliest = reopened.consumer("payments", reset="earliest")
    assert earliest.positions == {0: 0, 1: 10 * 0, 2: 0} and earliest.resets == [(0, 10, 0)]
    assert len(earliest.poll(100)) == 9
    latest = reopened.consumer("payments", reset="latest")
    assert latest.positions[0] == 9 and latest.poll(100) == []
    with pytest.raises(ValueError, match=r"reset must be one of \('earliest', 'latest', 'none'\), got 'smallest'"):
        reopened.consumer("payments", reset="smallest")


# --------------------------------------------------------------------------- all or nothing


def test_extend_writes_nothing_if_any_item_is_bad(log):
    keys = [key_in(log, p) for p in range(3)]
    fill(log, 9)
    before = log.end_offsets()
    bad_batches = [
        ([(keys[0], 1), (keys[1], 2), (keys[2], {3})], TypeError,
         r"value of record 2 \(key 'k\d+'\) must be JSON: Object of type set is not JSON serializable"),
        ([(keys[0], 1), (keys[2], float("nan")), (keys[1], 2)], ValueError,
         r"value of record 1 \(key 'k\d+'\) must be JSON: Out of range float values are not JSON compliant"),
        ([(keys[0], 1), ("\ud800", 2)], ValueError, r"key must be valid Unicode text \(encodable as UTF-8\), got '\\ud800'"),
        ([(keys[0], 1), (None, 2)], ValueError, "key must be a non-empty string, got None"),
        ([(keys[0], 1), (keys[1],)], TypeError, r"item 1 must be a \(key, value\) pair, got \('k\d+',\)"),
    ]
    for items, error, message in bad_batches:
        with pytest.raises(error, match=message):
            log.extend(items)
        assert log.end_offsets() == before
    with pytest.raises(TypeError, match="items must be an iterable of .key, value. pairs, got str"):
        log.extend("k1")
    assert log.check() == []


def test_a_value_with_a_lone_surrogate_or_a_huge_int_is_stored_and_read_back_exactly(log):
    written = log.extend([("k", {"text": "\ud800 alone"}), ("k", 10**400)])
    assert [r.value for r in Log.open(log.path).read(written[0].partition)] == [{"text": "\ud800 alone"}, 10**400]


# --------------------------------------------------------------------------- consumers are made whole or not at all


def test_a_consumer_left_half_made_by_a_crash_can_be_added_again(log):
    # Regression: a crash between mkdir and the commit left a consumer that could neither be opened nor added.
    fill(log, 12)
    half = log.path / "consumers" / "payments"
    half.mkdir()
    (half / "0.offset").write_text("3\n")  # partitions 1 and 2 never got theirs
    (log.path / "consumers" / ".fraud.123.456.tmp").mkdir()  # an add_consumer cut off before its rename
    assert log.consumers == []
    with pytest.raises(UnknownConsumerError, match="no consumer named 'payments'"):
        log.consumer("payments")
    assert log.add_consumer("payments").positions == {0: 0, 1: 0, 2: 0}
    assert log.add_consumer("fraud").positions == {0: 0, 1: 0, 2: 0}
    assert log.consumers == ["fraud", "payments"]


def test_adding_a_consumer_creates_it_whole_in_one_step(log):
    fill(log, 12)
    log.add_consumer("late", start="latest")
    assert sorted(p.name for p in (log.path / "consumers").iterdir()) == ["late"]  # nothing left aside
    assert log.committed("late") == log.end_offsets()


# --------------------------------------------------------------------------- fsync


def test_fsync_mode_writes_the_same_log(tmp_path):
    synced = Log.create(tmp_path / "synced", partitions=2, fsync=True)
    records = fill(synced, 20)
    synced.add_consumer("payments").commit()
    plain = Log.open(synced.path)
    assert list(plain.records()) == sorted(records, key=lambda r: (r.partition, r.offset))
    assert plain.fsync is False and synced.fsync is True
    with pytest.raises(TypeError, match="fsync must be True or False, got 'yes'"):
        Log.open(synced.path, fsync="yes")


def test_a_high_water_mark_file_left_empty_by_a_kill_is_no_damage(log):
    key = key_in(log, 0)
    log.append(key, 1)
    (log.path / "partition-0.hwm").write_bytes(b"")  # created, then the writer killed before writing it
    reopened = Log.open(log.path)
    assert reopened.check() == [] and reopened.end_offset(0) == 1
    assert reopened.append(key, 2).offset == 1
    (log.path / "partition-0.hwm").write_bytes(b"garbage")
    with pytest.raises(CorruptLogError, match="partition 0: its high-water mark file is damaged"):
        Log.open(log.path).check()



def test_compacted_keeps_the_latest_record_of_each_key_and_changes_nothing(log):
    from streamlab.log import compacted

    for key, value in [("a", 1), ("b", 1), ("a", 2), ("c", 1), ("a", 3), ("b", 2)]:
        log.append(key, value)
    before = list(log.records())
    kept = compacted(log)
    assert {k: r.value for k, r in kept.items()} == {"a": 3, "b": 2, "c": 1}
    # The latest record is the one with the highest offset of its key, in its own partition.
    for key, record in kept.items():
        assert record.offset == max(r.offset for r in before if r.key == key)
        assert record.partition == log.partition_for(key)
    assert list(log.records()) == before
    with pytest.raises(TypeError, match="streamlab.log.Log"):
        compacted(str(log.path))


def test_compacting_the_order_log_gives_the_table_of_orders(log):
    from streamlab.log import compacted
    from streamlab.orders import from_record, order_pipe, publish, read_log, replay, take

    publish(log, take(order_pipe(seed=3), 800))
    table = replay(read_log(log)).table
    assert not replay(read_log(log)).rejected  # an order's latest event carries its whole row only if none is rejected
    latest = {key: from_record(r) for key, r in compacted(log).items()}
    assert set(latest) == set(table)
    for key, event in latest.items():
        order = table[key]
        assert (event.customer, event.kind, event.amount, event.event_time) == (
            order.customer, order.status, order.amount, order.updated_at)
