"""The log under real processes: two writers at once, kill -9 mid-append, a disk that fails mid-write, a busy lock."""

import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from filelock import FileLock

import log_workers
from streamlab.log import Log, LogBusyError, TornTail

# Forked from a small server process that has imported the library once: starting a
# writer then costs milliseconds, not the third of a second a fresh interpreter needs.
# (Plain fork from pytest would copy its threads.) Python 3.11's server imports the
# preload before it sets sys.path, so it preloads the installed library, not log_workers.
CONTEXT = multiprocessing.get_context("forkserver")
CONTEXT.set_forkserver_preload(["streamlab.log"])


def collect(connections):
    """Every batch of acknowledgements each child sent before it ended (or was killed)."""
    acked = []
    for conn in connections:
        while True:
            try:
                acked.extend(conn.recv())
            except (EOFError, OSError):
                break
    return acked


def assert_every_acknowledged_record_is_there(log, acked):
    on_disk = {(r.partition, r.offset): (r.key, r.value) for r in log.records()}
    missing = [(p, o) for p, o, key, value in acked if on_disk.get((p, o)) != (key, value)]
    assert missing == [], f"{len(missing)} acknowledged records lost or changed, e.g. {missing[:3]}"
    for p in range(log.partitions):
        offsets = [r.offset for r in log.records(p)]
        assert offsets == list(range(len(offsets)))  # no offset given twice, none skipped


@pytest.mark.parametrize("run", range(5))
def test_two_writers_at_once_lose_nothing_and_leave_a_clean_log(tmp_path, run):
    # Regression: without a lock, two processes appending at once lost 44-170 acknowledged
    # records in each run, and left the log unreadable in 5 of 6.
    log = Log.create(tmp_path / "log", partitions=1 + 2 * (run % 2))
    start = CONTEXT.Barrier(2)
    children, ends = [], []
    for writer in ("a", "b"):
        receive, send = CONTEXT.Pipe(duplex=False)
        child = CONTEXT.Process(target=log_workers.write, args=(str(log.path), writer, 1000, run, start, send))
        child.start()
        send.close()  # the child holds the only sending end: recv ends when the child does
        children.append(child)
        ends.append(receive)
    acked = collect(ends)
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    assert len(acked) == 2000
    reopened = Log.open(log.path)
    assert reopened.check() == []
    assert_every_acknowledged_record_is_there(reopened, acked)
    assert sum(1 for _ in reopened.records()) == 2000
    # Both really wrote at the same time: their records interleave.
    writers = [r.value["writer"] for r in reopened.records(0)]
    assert sum(a != b for a, b in zip(writers, writers[1:])) > 10


def test_kill_9_during_appends_loses_no_acknowledged_record(tmp_path):
    rng = random.Random(13)
    torn = 0
    for trial in range(20):
        log = Log.create(tmp_path / f"log{trial}", partitions=3)
        receive, send = CONTEXT.Pipe(duplex=False)
        child = CONTEXT.Process(target=log_workers.write_until_killed, args=(str(log.path), trial, send))
        child.start()
        send.close()
        acked = receive.recv()  # the first batch acknowledged: it is writing
        time.sleep(rng.uniform(0.002, 0.04))
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        acked += collect([receive])
        reopened = Log.open(log.path)
        problems = reopened.check()
        # A torn tail (a write cut off, never acknowledged) is all a kill may leave.
        assert all(isinstance(p, TornTail) for p in problems), problems
        torn += bool(problems)
        assert_every_acknowledged_record_is_there(reopened, acked)
        reopened.extend((f"key-{i}", "after") for i in range(5))  # cuts any torn tail, continues the offsets
        assert reopened.check() == []
        assert_every_acknowledged_record_is_there(Log.open(log.path), acked)
    print(f"{torn} of 20 kills left a torn tail")


def test_a_second_writer_waits_for_the_lock_then_gets_a_clear_error(tmp_path):
    log = Log.create(tmp_path / "log", partitions=2, lock_timeout=0.2)
    key = next(f"k{i}" for i in range(100) if log.partition_for(f"k{i}") == 1)
    other = next(f"k{i}" for i in range(100) if log.partition_for(f"k{i}") == 0)
    held = FileLock(log.path / "partition-1.lock")  # another writer, busy with partition 1
    with held:
        started = time.perf_counter()
        with pytest.raises(LogBusyError, match=(
            r"partition 1 is being written by another writer: waited 0.2 s for its lock "
            r"\(open the log with a longer lock_timeout to wait longer\)"
        )):
            log.extend([(other, 1), (key, 2)])
        assert time.perf_counter() - started >= 0.2
        assert log.end_offsets() == {0: 0, 1: 0}  # all or nothing: partition 0 was not written either
        assert log.append(other, 3).offset == 0  # partition 0 is free
    assert log.append(key, 4).offset == 0
    with pytest.raises(ValueError, match="lock_timeout must be a number of seconds from 0 to 1e9, got -1"):
        Log.open(log.path, lock_timeout=-1)


FAILING_DISK = """
import json, resource, signal, sys
from streamlab.log import Log, PartialWriteError
log = Log.open(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG from write() instead of being killed
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # no file may grow past 4 kB: a full disk, for this process
items = [(key, {"n": n, "pad": "z" * 100}) for n, key in enumerate(json.loads(sys.argv[2]))]
try:
    log.extend(items)
except PartialWriteError as error:
    print(json.dumps({"message": str(error), "written": [[r.partition, r.offset, r.value["n"]] for r in error.written],
                      "unwritten": [value["n"] for _, value in error.unwritten]}))
"""


def test_a_disk_that_fails_mid_extend_says_exactly_what_was_written(tmp_path):
    log = Log.create(tmp_path / "log", partitions=3)
    keys = {p: next(f"k{i}" for i in range(100) if log.partition_for(f"k{i}") == p) for p in range(3)}
    # Partition 0 gets 5 records (fits), partition 1 gets 100 (about 15 kB, does not), partition 2 gets 5.
    order = [keys[0]] * 5 + [keys[1]] * 100 + [keys[2]] * 5
    random.Random(1).shuffle(order)
    child = subprocess.run([sys.executable, "-c", FAILING_DISK, str(log.path), json.dumps(order)],
                           capture_output=True, text=True, check=True)
    report = json.loads(child.stdout)
    written = report["written"]
    assert "extend wrote" in report["message"] and "retry with error.unwritten only" in report["message"]
    assert {p for p, _, _ in written} == {0, 1}  # partition 0 whole, partition 1 its complete lines
    assert sum(p == 0 for p, _, _ in written) == 5 and 0 < sum(p == 1 for p, _, _ in written) < 100
    assert sorted(n for _, _, n in written) + sorted(report["unwritten"]) != []
    assert sorted([n for _, _, n in written] + report["unwritten"]) == list(range(110))
    reopened = Log.open(log.path)
    assert reopened.check() == []  # the failed write's unfinished line was cut
    assert sorted((r.partition, r.offset, r.value["n"]) for r in reopened.records()) == sorted(map(tuple, written))
    # Retrying only what was not written leaves every record in the log exactly once.
    reopened.extend((order[n], {"n": n, "pad": "z" * 100}) for n in report["unwritten"])
    assert sorted(r.value["n"] for r in reopened.records()) == list(range(110))
