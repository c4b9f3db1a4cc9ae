"""An append-only log on disk: partitions of records read by position, and consumers that remember where they are.

A queue forgets what you read; a log remembers. Appending a record gives it the
next *offset* in its *partition* (chosen from the record's key, so one key's
records stay in order). Reading takes an offset and returns what is there;
it changes nothing, so any number of readers can read the same records, again
and again. Each named *consumer* keeps its own *committed offset* per
partition, in a small file of its own, so it carries on where it left off
after a restart, and can rewind to replay.

It is a teaching model of a Kafka topic:

========================  =====================================================
here                      Kafka
========================  =====================================================
:class:`Log`              a topic
partition file            a partition (one ordered, append-only sequence)
:attr:`Record.offset`     the offset of a record in its partition
:meth:`Log.partition_for` the default partitioner (Kafka hashes with murmur2)
:meth:`Log.add_consumer`  a consumer group (with ``auto.offset.reset``)
:meth:`Consumer.commit`   committing offsets (to ``__consumer_offsets``)
``member=, members=``     group members sharing the partitions (an assignor)
:meth:`Consumer.lag`      consumer lag
:meth:`Log.end_offset`    the log end offset, never lower than the high-water mark
checksum, torn tail       record CRCs and log recovery after a crash
:func:`compacted`         log compaction (``cleanup.policy=compact``)
========================  =====================================================

On disk, a log is a directory: ``log.json`` (how many partitions), and per
partition N ``partition-N.log`` (one record per line), ``partition-N.hwm``
(its high-water mark: the offset the next record gets) and
``partition-N.lock`` (the writers' lock); ``consumers/NAME/N.offset`` holds
a consumer's committed offset for partition N. A line is ``CRC32 JSON\\n``:
the checksum of the JSON, a space, the JSON ``{"offset": ..., "key": ...,
"value": ...}`` and a newline.

**What it promises.**

- *One writer per partition at a time.* Appending takes the partition's lock
  (a file lock, so it holds across processes); a second writer *waits* for
  it, and after ``lock_timeout`` seconds gets a :class:`LogBusyError`. Any
  number of readers read without a lock: they only ever see complete lines.
- *Acknowledged means kept.* When :meth:`Log.append` or :meth:`Log.extend`
  returns, the records are in the operating system's hands: they survive the
  Python process (a notebook kernel) crashing, even ``kill -9``. With
  ``fsync=True`` they are also flushed to the disk before the call returns,
  so they survive a power cut (measured here: 7-8× slower one record at a
  time, 2× in batches of 100; see the README); Kafka's default is not to, and
  to rely on replicas.
- *Offsets are never reused.* The log remembers its high-water mark, so if
  records at the end of a partition are ever lost (a file cut short by hand,
  a power cut without ``fsync``), the next record still gets a new offset, and
  the loss is reported (:class:`LostRecords`). A consumer whose committed offset
  is past the end gets a clear :class:`OffsetOutOfRangeError` unless it was
  opened with a ``reset`` policy (Kafka's ``auto.offset.reset``).
- *Damage is reported, never silently cut.* A line whose checksum fails is an
  error naming where (:class:`CorruptLogError`). Bytes after the last newline
  that are not a complete record are a *torn tail* (a write cut off by a
  crash, never acknowledged): readers never return them, :meth:`Log.check`
  reports them, and the next append cuts them off (:attr:`Log.repairs`). A
  *complete* record there, whose newline alone is missing or damaged, is kept:
  the next append restores its newline and reports that.
- :meth:`Log.extend` is all-or-nothing for everything that can be checked
  before writing (keys, values, locks); if the disk fails part-way, a
  :class:`PartialWriteError` says exactly which records were written.
- Adding a consumer is atomic: it exists with all its offsets, or not at all.

>>> import tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as tmp:
...     log = Log.create(pathlib.Path(tmp) / "orders", partitions=2)
...     first = log.append("order-1", {"kind": "placed"})
...     _ = log.append("order-1", {"kind": "paid"})
...     [r.value["kind"] for r in log.read(first.partition, 0)]
['placed', 'paid']
"""

from __future__ import annotations

import bisect
import contextlib
import json
import numbers
import os
import re
import shutil
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

try:
    import fcntl
except ImportError:  # pragma: no cover  (Windows: filelock's lock instead)
    fcntl = None  # type: ignore[assignment]


__all__ = [
    "Consumer",
    "CorruptLogError",
    "Log",
    "LogBusyError",
    "LogError",
    "LogPathError",
    "LostRecords",
    "OffsetOutOfRangeError",
    "PartialWriteError",
    "Record",
    "RestoredNewline",
    "TornTail",
    "UnknownConsumerError",
    "compacted",
]

FORMAT = 1
_CONSUMER_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
#: Every line's JSON starts like this (``extend`` writes the offset first), so the
#: index can learn a line's offset without decoding the whole record.
_PREFIX = b'{"offset":'
#: Width of the high-water mark file: fixed, so it is overwritten in place by one small write.
_HWM_WIDTH = 20
DEFAULT_LOCK_TIMEOUT = 10.0
Reset = Literal["earliest", "latest", "none"]
RESETS: tuple[str, ...] = ("earliest", "latest", "none")


class LogError(Exception):
    """Something about the log itself is wrong; the message says what and where."""


class LogPathError(LogError, ValueError):
    """A path where :meth:`Log.create` finds something already, or :meth:`Log.open` finds no log."""


class UnknownConsumerError(LogError, LookupError, ValueError):
    """No consumer of that name has been added to this log (a bad value for a consumer's name)."""


class OffsetOutOfRangeError(LogError, IndexError, ValueError):
    """An offset past the end of a partition: no record is there (yet)."""


class CorruptLogError(LogError):
    """A complete line of the log does not hold the record it should (bad checksum, wrong offset)."""


class LogBusyError(LogError, TimeoutError):
    """Another writer held a partition's lock for longer than ``lock_timeout``."""


class PartialWriteError(LogError):
    """:meth:`Log.extend` failed part-way through writing: ``written`` records are in the log, ``unwritten`` are not.

    Retry with ``unwritten`` only, so that no record is written twice.
    """

    def __init__(self, message: str, written: list[Record], unwritten: list[tuple[str, Any]]) -> None:
        super().__init__(message)
        self.written = written
        self.unwritten = unwritten


@dataclass(frozen=True, slots=True)
class Record:
    """One record of the log: where it is (partition, offset), its key and its value."""

    partition: int
    offset: int
    key: str
    value: Any


@dataclass(frozen=True, slots=True)
class TornTail:
    """Bytes after the last complete record of a partition: a write cut off mid-record."""

    partition: int
    offset: int
    size: int

    def __str__(self) -> str:
        return (
            f"partition {self.partition}: {self.size} bytes of an unfinished record where offset "
            f"{self.offset} would start (a write cut off mid-record; not a record)"
        )


@dataclass(frozen=True, slots=True)
class RestoredNewline:
    """A complete record at the end of a partition whose newline was missing or damaged: kept, newline restored."""

    partition: int
    offset: int

    def __str__(self) -> str:
        return (
            f"partition {self.partition}: the record at offset {self.offset} is complete (its checksum "
            f"holds) but its newline is missing or damaged; it is kept, and the next append restores the newline"
        )


@dataclass(frozen=True, slots=True)
class LostRecords:
    """Offsets ``first`` to ``last`` of a partition were given to records that are no longer in its file."""

    partition: int
    first: int
    last: int

    def __str__(self) -> str:
        which = f"offset {self.first}" if self.first == self.last else f"offsets {self.first} to {self.last}"
        return (
            f"partition {self.partition}: the records at {which} were written but are no longer in the file "
            f"(lost, e.g. the file was cut short); their offsets are never given to other records"
        )


Problem = TornTail | RestoredNewline | LostRecords


#: Most partitions a log may have.
MAX_PARTITIONS = 1024
#: Most records one extend() may append: they are all held in memory, and checked, before any is written.
MAX_EXTEND = 1_000_000


def _check_path(path: object) -> Path:
    if not isinstance(path, (str, os.PathLike)) or (isinstance(path, str) and not path):
        raise TypeError(f"path must be a directory path (a str or a pathlib.Path), got {type(path).__name__} {path!r:.60}")
    try:
        os.fsencode(path)
    except UnicodeEncodeError:
        raise ValueError(f"path must be text the file system can hold, got {path!r:.60}") from None
    return Path(path)


def _check_int(name: str, value: object, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _fsync_dir(path: Path) -> None:
    # A rename is durable only once the directory holding it is flushed (POSIX; Windows cannot open directories).
    if os.name != "nt":
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_atomic(path: Path, text: str, fsync: bool = False) -> None:
    """Replace ``path``'s content all at once: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w", encoding="ascii") as f:
        f.write(text)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    # rename() replaces the file in one step, even if we crash half-way through writing tmp.
    os.replace(tmp, path)
    if fsync:
        _fsync_dir(path.parent)


def _write_all(fd: int, data: bytes) -> int:
    """Write every byte (os.write may write fewer); return how many were written before an error, re-raising it."""
    view, done = memoryview(data), 0
    while done < len(data):
        try:
            done += os.write(fd, view[done:])
        except OSError as err:
            err.written = done  # type: ignore[attr-defined]  # read by extend's error report
            raise
    return done


class _PartitionLock:
    """An exclusive lock on a file, held across processes, waiting at most ``timeout`` seconds.

    On POSIX it is the operating system's ``flock``: about 5 µs to take and give
    back, where filelock 4 took 75-200 µs here (it pays for fork-safety checks the
    log does not need). Elsewhere (Windows) it is filelock's lock.
    """

    def __init__(self, path: Path, timeout: float) -> None:
        self.path, self.timeout = path, timeout
        self._fd: int | None = None
        self._filelock: Any = None
        if fcntl is None:  # pragma: no cover  (Windows)
            from filelock import FileLock

            self._filelock = FileLock(path, timeout=timeout, thread_local=False, poll_interval=0.001)

    def acquire(self) -> None:
        if self._filelock is not None:  # pragma: no cover  (Windows)
            from filelock import Timeout

            try:
                self._filelock.acquire()
            except Timeout:
                raise TimeoutError(str(self.path)) from None
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout
        pause = 0.0001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise TimeoutError(str(self.path)) from None
                # Poll rather than block: a blocking flock cannot time out.
                time.sleep(pause)
                pause = min(pause * 2, 0.001)
            except BaseException:
                os.close(fd)
                raise
        self._fd = fd

    def release(self) -> None:
        if self._filelock is not None:  # pragma: no cover  (Windows)
            self._filelock.release()
            return
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor releases the flock


class _Index:
    """Where each complete record of one partition starts, in bytes, and which offset it holds."""

    __slots__ = ("end", "offsets", "size", "starts")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.offsets: list[int] = []  # increasing; a gap means records were lost
        self.end = 0  # the byte just after the last complete line
        self.size = 0  # the file's size when last looked at

    @property
    def next_offset(self) -> int:
        return self.offsets[-1] + 1 if self.offsets else 0


def _line_offset(line: bytes) -> int | None:
    """The offset a line holds, if its checksum holds and it starts as every record does; else None."""
    if len(line) < 20 or line[8:9] != b" " or line[9:19] != _PREFIX:
        return None
    try:
        if int(line[:8], 16) != zlib.crc32(line[9:]):
            return None
    except ValueError:
        return None
    comma = line.find(b",", 19)
    digits = line[19:comma] if comma != -1 else b""
    return int(digits) if digits.isdigit() else None


def _check_value(value: Any, position: int, key: str) -> bytes:
    """The JSON of one value, or a ValueError/TypeError naming which record is wrong and why."""
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    except TypeError as err:  # "Object of type set is not JSON serializable"
        raise TypeError(f"value of record {position} (key {key!r}) must be JSON: {err}") from None
    except ValueError as err:  # NaN or infinity, a circular reference, an int too long to print
        raise ValueError(f"value of record {position} (key {key!r}) must be JSON: {err}") from None
    except RecursionError:
        raise ValueError(f"value of record {position} (key {key!r}) is nested too deeply to be JSON") from None
    return text.encode("ascii")  # ensure_ascii: a lone surrogate is written as an escape, and read back the same


class Log:
    """An append-only, partitioned log in a directory. Make one with :meth:`create`, reopen it with :meth:`open`.

    :param fsync: flush every append and commit to the disk before returning
        (survives a power cut; much slower).
    :param lock_timeout: seconds a writer waits for another writer of the same
        partition before :class:`LogBusyError`.
    """

    def __init__(
        self, path: Path, partitions: int, *, fsync: bool = False, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    ) -> None:
        if _check_int("partitions", partitions, 1) > MAX_PARTITIONS:
            raise ValueError(f"partitions must be at most {MAX_PARTITIONS:,} (each is three files), got {partitions}")
        if not isinstance(fsync, bool):
            raise TypeError(f"fsync must be True or False, got {fsync!r}")
        if not (isinstance(lock_timeout, numbers.Real) and not isinstance(lock_timeout, bool)
                and 0 <= lock_timeout <= 10**9):  # NaN fails every comparison; no float conversion to overflow
            raise ValueError(f"lock_timeout must be a number of seconds from 0 to 1e9, got {lock_timeout!r:.60}")
        self.path = path
        self.partitions = partitions
        self.fsync = fsync
        self.lock_timeout = float(lock_timeout)
        self._index = [_Index() for _ in range(partitions)]
        # Paths as strings, made once: appending one record at a time is dominated by small costs.
        self._files = [str(path / f"partition-{p}.log") for p in range(partitions)]
        self._hwm_files = [str(path / f"partition-{p}.hwm") for p in range(partitions)]
        # One lock per partition, across processes; the mutex keeps threads sharing this object in step.
        self._locks = [_PartitionLock(path / f"partition-{p}.lock", self.lock_timeout) for p in range(partitions)]
        self._mutex = threading.RLock()
        #: Repairs made before appending (torn tails cut, newlines restored, lost records skipped), in order.
        self.repairs: list[Problem] = []

    # ------------------------------------------------------------------ opening

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        partitions: int = 1,
        fsync: bool = False,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> Log:
        """Create a new, empty log in directory ``path`` (which must not exist, or be empty)."""
        _check_int("partitions", partitions, 1)
        path = _check_path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise LogPathError(f"cannot create a log at {path.name!r}: something is already there (open it with "
                                 f"Log.open); path must be a new or empty directory")
        log = cls(path, partitions, fsync=fsync, lock_timeout=lock_timeout)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Built aside and renamed into place: a crash half-way leaves no half-made log at `path`.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.mkdir()
        (tmp / "consumers").mkdir()
        for p in range(partitions):
            (tmp / f"partition-{p}.log").touch()
        _write_atomic(tmp / "log.json", json.dumps({"format": FORMAT, "partitions": partitions}) + "\n", fsync)
        if path.exists():
            path.rmdir()  # empty (checked above); Windows cannot rename onto a directory
        try:
            os.rename(tmp, path)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise LogError(f"cannot create a log at {path.name!r}: another process created one there first") from None
        if fsync:
            _fsync_dir(path.parent)
        return log

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, fsync: bool = False, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    ) -> Log:
        """Open an existing log, for instance from a new process after a restart."""
        path = _check_path(path)
        try:
            meta = json.loads((path / "log.json").read_text(encoding="ascii"))
        except FileNotFoundError:
            raise LogPathError(f"no log at {path.name!r} (make one with Log.create); path must be a log's directory") \
                from None
        except ValueError:
            raise CorruptLogError(f"the log at {path.name!r} has a damaged log.json") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise LogError(f"log format {meta.get('format') if isinstance(meta, dict) else meta!r} is not {FORMAT}")
        return cls(path, _check_int("partitions", meta.get("partitions"), 1), fsync=fsync, lock_timeout=lock_timeout)

    def __repr__(self) -> str:
        with self._mutex:
            records = sum(len(self._refresh(p).offsets) for p in range(self.partitions))
        consumers = ", ".join(self.consumers) or "none"
        return f"Log({self.partitions} partitions, {records:,} records; consumers: {consumers})"

    def partition_path(self, partition: int) -> Path:
        """The file that holds one partition."""
        self._check_partition(partition)
        return self.path / f"partition-{partition}.log"

    def _check_partition(self, partition: object) -> int:
        if not isinstance(partition, int) or isinstance(partition, bool) or not 0 <= partition < self.partitions:
            raise ValueError(f"partition must be an int from 0 to {self.partitions - 1}, got {partition!r}")
        return partition

    # ------------------------------------------------------------------ the high-water mark

    def _hwm(self, partition: int) -> int:
        """The high-water mark on disk: the offset the next record gets, as last written (0 if never)."""
        try:
            with open(self._hwm_files[partition], "rb") as f:
                text = f.read()
        except FileNotFoundError:
            return 0
        if not text:
            return 0  # created, then the writer was killed before writing it: the records' own offsets tell
        if not text.strip().isdigit():
            raise CorruptLogError(f"partition {partition}: its high-water mark file is damaged: {text[:40]!r}")
        return int(text)

    def _write_hwm(self, partition: int, offset: int) -> None:
        # Written after the records: a crash in between leaves it behind the file, and the
        # file's own last offset wins. One fixed-width write in place, no rename: cheap.
        fd = os.open(self._hwm_files[partition], os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            _write_all(fd, b"%0*d\n" % (_HWM_WIDTH, offset))
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ writing

    def partition_for(self, key: str) -> int:
        """The partition every record with this key goes to: a stable hash of the key, modulo the partitions.

        >>> log = Log(Path("unused"), 3)
        >>> log.partition_for("order-1") == log.partition_for("order-1")
        True
        """
        return zlib.crc32(_key_bytes(key)) % self.partitions

    def append(self, key: str, value: Any) -> Record:
        """Append one record (``value`` must be JSON-serializable) and return it with its partition and offset."""
        return self.extend([(key, value)])[0]

    def extend(self, items: Iterable[tuple[str, Any]]) -> list[Record]:
        """Append many ``(key, value)`` records, each partition's in one write; return them in the order given.

        Every key and value is checked, and every partition's lock taken, before
        anything is written: a bad item means nothing is written. If the disk
        fails part-way, :class:`PartialWriteError` lists what was written.
        """
        prepared: dict[int, list[tuple[int, str, bytes, Any]]] = {}
        given: list[tuple[str, Any]] = []
        if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
            raise TypeError(f"items must be an iterable of (key, value) pairs, got {type(items).__name__}")
        for position, item in enumerate(items):
            if position >= MAX_EXTEND:
                # An endless iterator would fill the memory before anything is written: refuse it.
                raise ValueError(f"items must hold at most {MAX_EXTEND:,} records per extend(); split them")
            if not isinstance(item, tuple) or len(item) != 2:
                raise TypeError(f"item {position} must be a (key, value) pair, got {item!r:.80}")
            key, value = item
            partition = self.partition_for(key)
            line_start = json.dumps(key).encode("ascii")
            prepared.setdefault(partition, []).append((position, key, line_start, value))
            given.append(item)
        body = {p: [_check_value(v, pos, k) for pos, k, _, v in batch] for p, batch in prepared.items()}
        written: list[Record | None] = [None] * len(given)
        with self._mutex, contextlib.ExitStack() as held:
            # Locks in partition order: two writers of several partitions never wait for each other in a circle.
            for partition in sorted(prepared):
                held.enter_context(self._locked(partition))
            for partition in sorted(prepared):
                try:
                    self._write(partition, prepared[partition], body[partition], written)
                except OSError as err:
                    raise self._partial(err, partition, written, given) from err
        return written  # type: ignore[return-value]  # every position was filled

    @contextlib.contextmanager
    def _locked(self, partition: int) -> Iterator[None]:
        try:
            self._locks[partition].acquire()
        except TimeoutError:
            raise LogBusyError(
                f"partition {partition} is being written by another writer: waited {self.lock_timeout:g} s for "
                f"its lock (open the log with a longer lock_timeout to wait longer)"
            ) from None
        try:
            yield
        finally:
            self._locks[partition].release()

    def _write(
        self, partition: int, batch: list[tuple[int, str, bytes, Any]], bodies: list[bytes],
        written: list[Record | None],
    ) -> None:
        """Write one partition's records; the caller holds its lock."""
        index = self._prepare_append(partition)
        offset = max(index.next_offset, self._hwm(partition))
        if offset > index.next_offset:
            # Records were lost from the end; their offsets stay theirs.
            self.repairs.append(LostRecords(partition, index.next_offset, offset - 1))
        lines = []
        for (position, key, key_json, value), body in zip(batch, bodies, strict=True):
            payload = b'{"offset":%d,"key":%s,"value":%s}' % (offset, key_json, body)
            lines.append(b"%08x %s\n" % (zlib.crc32(payload), payload))
            written[position] = Record(partition, offset, key, value)
            offset += 1
        fd = os.open(self._files[partition], os.O_WRONLY | os.O_APPEND)
        try:
            _write_all(fd, b"".join(lines))
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        # We hold the lock, so the file ended at index.end and holds exactly our lines after it.
        start = index.end
        for line, (position, *_) in zip(lines, batch, strict=True):
            index.starts.append(start)
            index.offsets.append(written[position].offset)  # type: ignore[union-attr]  # just filled
            start += len(line)
        index.end = start
        self._write_hwm(partition, offset)

    def _partial(
        self, err: OSError, partition: int, written: list[Record | None], given: list[tuple[str, Any]]
    ) -> PartialWriteError:
        """After a failed write: cut the failed partition back to its last complete line, and say exactly what is in."""
        with contextlib.suppress(OSError):
            index = self._refresh(partition)
            os.truncate(self.partition_path(partition), index.end)
            self._write_hwm(partition, max(index.next_offset, self._hwm(partition)))
        in_log = set()
        for p in {r.partition for r in written if r is not None}:
            # Only offsets the file now holds count as written (the failed partition's complete lines, the others').
            in_log.update((p, o) for o in self._refresh(p).offsets)
        done = [r for r in written if r is not None and (r.partition, r.offset) in in_log]
        left = [item for item, r in zip(given, written, strict=True) if r is None or (r.partition, r.offset) not in in_log]
        where = ", ".join(
            f"partition {p} offsets {min(r.offset for r in done if r.partition == p)}"
            f"-{max(r.offset for r in done if r.partition == p)}"
            for p in sorted({r.partition for r in done})
        ) or "none"
        return PartialWriteError(
            f"extend wrote {len(done)} of {len(given)} records ({where}) before writing partition {partition} "
            f"failed: {err.strerror or err}; the other {len(left)} were not written: retry with error.unwritten only",
            done, left,
        )

    def _prepare_append(self, partition: int) -> _Index:
        """Bring the index up to date and deal with what follows the last newline, so the next record starts on a line of its own."""
        index = self._refresh(partition)
        path = self._files[partition]
        size = index.size
        if size > index.end:
            complete = self._complete_tail(partition, index)
            if complete is None:
                self.repairs.append(TornTail(partition, index.next_offset, size - index.end))
                # Without this cut the new record would be glued to the torn bytes and both lost.
                os.truncate(path, index.end)
            else:
                # A record that was whole; only its newline is missing or damaged: keep it, restore the newline.
                length, offset = complete
                os.truncate(path, index.end + length)
                fd = os.open(path, os.O_WRONLY | os.O_APPEND)
                try:
                    _write_all(fd, b"\n")
                finally:
                    os.close(fd)
                self.repairs.append(RestoredNewline(partition, offset))
                index = self._refresh(partition)
        return index

    def _complete_tail(self, partition: int, index: _Index) -> tuple[int, int] | None:
        """If the bytes after the last newline hold a complete record (maybe with one damaged byte for its newline): its length and offset."""
        with open(self.partition_path(partition), "rb") as f:
            f.seek(index.end)
            tail = f.read()
        for line in (tail, tail[:-1]):
            offset = _line_offset(line)
            if offset is not None:
                if offset < index.next_offset:
                    raise CorruptLogError(
                        f"partition {partition}: the complete record after the last newline holds offset {offset}, "
                        f"which an earlier record already has"
                    )
                return len(line), offset
        return None

    # ------------------------------------------------------------------ reading

    def _refresh(self, partition: int) -> _Index:
        """Index the complete records appended since we last looked (by us or by another process)."""
        with self._mutex:
            index = self._index[partition]
            path = self._files[partition]
            size = index.size = os.stat(path).st_size
            if size < index.end:
                raise CorruptLogError(
                    f"partition {partition} shrank from {index.end} to {size} bytes: committed records were removed"
                )
            if size == index.end:
                return index
            with open(path, "rb") as f:
                f.seek(index.end)
                data = f.read(size - index.end)
            position, base = 0, index.end
            starts, offsets = index.starts, index.offsets
            while (newline := data.find(b"\n", position)) != -1:
                expected = offsets[-1] + 1 if offsets else 0
                held = _line_offset(data[position:newline])
                # A damaged line keeps its place (reading it raises CorruptLogError); a gap is lost records.
                starts.append(base + position)
                offsets.append(held if held is not None and held >= expected else expected)
                position = newline + 1
            index.end = base + position
            return index

    def end_offset(self, partition: int) -> int:
        """The offset the next record appended to ``partition`` will get (its high-water mark).

        Without lost records, that is how many records it holds.
        """
        index = self._refresh(self._check_partition(partition))
        return max(index.next_offset, self._hwm(partition))

    def end_offsets(self) -> dict[int, int]:
        """:meth:`end_offset` of every partition."""
        return {p: self.end_offset(p) for p in range(self.partitions)}

    def _check_offset(self, partition: int, offset: object, what: str = "offset") -> int:
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise ValueError(f"{what} must be an int >= 0, got {offset!r}")
        if offset < 0:
            raise ValueError(f"{what} must be >= 0, got {offset} (offsets count records from 0)")
        index = self._refresh(partition)
        if offset <= index.next_offset:
            return offset  # the common case, without reading the high-water mark
        end = self.end_offset(partition)
        if offset > end:
            holds = f"offsets 0 to {end - 1}" if end else "no records yet"
            raise OffsetOutOfRangeError(
                f"{what} {offset} is past the end of partition {partition}: it holds {holds}, "
                f"and the next record appended will get offset {end}"
            )
        return offset

    def read(self, partition: int, offset: int = 0, max_records: int | None = None) -> list[Record]:
        """Read the records of ``partition`` from ``offset`` on (at most ``max_records``).

        Reading changes nothing: the same call returns the same records. Reading
        at the end offset returns ``[]`` (nothing new yet); past it is an error.
        Offsets of lost records (see :class:`LostRecords`) are skipped.
        """
        self._check_partition(partition)
        self._check_offset(partition, offset)
        if max_records is not None:
            _check_int("max_records", max_records, 1)
        with self._mutex:
            index = self._index[partition]
            first_line = bisect.bisect_left(index.offsets, offset)
            end = len(index.offsets)
            stop = end if max_records is None else min(end, first_line + max_records)
            if stop == first_line:
                return []
            first = index.starts[first_line]
            last = index.starts[stop] if stop < end else index.end
            offsets = index.offsets[first_line:stop]
        with open(self.partition_path(partition), "rb") as f:
            f.seek(first)
            data = f.read(last - first)
        lines = data.split(b"\n")[:-1]  # every line read ends with a newline
        return [self._parse(partition, o, line) for o, line in zip(offsets, lines, strict=True)]

    def _parse(self, partition: int, offset: int, line: bytes) -> Record:
        where = f"partition {partition}, offset {offset}"
        crc, _, payload = line.partition(b" ")
        try:
            expected = int(crc, 16)
        except ValueError:
            raise CorruptLogError(f"{where}: the line does not start with a checksum: {line[:40]!r}") from None
        if len(crc) != 8 or zlib.crc32(payload) != expected:
            raise CorruptLogError(f"{where}: checksum mismatch, the record is damaged: {line[:40]!r}")
        data = json.loads(payload)
        if data.get("offset") != offset:
            raise CorruptLogError(f"{where}: the line holds offset {data.get('offset')!r}")
        return Record(partition, offset, data["key"], data["value"])

    def records(self, partition: int | None = None) -> Iterator[Record]:
        """Every record of one partition, or of all partitions one after the other, in offset order."""
        partitions = range(self.partitions) if partition is None else [self._check_partition(partition)]
        for p in partitions:
            yield from self.read(p, 0)

    def check(self) -> list[Problem]:
        """Read every record (checksums and offsets), and report what is wrong in each partition, if anything.

        It reports torn tails (:class:`TornTail`), complete records whose newline
        is missing (:class:`RestoredNewline`: the next append restores it) and
        offsets whose records are gone (:class:`LostRecords`); it raises
        :class:`CorruptLogError` for a damaged complete record. It changes
        nothing on disk, and waits for a writer busy with a partition to finish.
        """
        problems: list[Problem] = []
        for p in range(self.partitions):
            with self._mutex, self._locked(p):
                for _ in self.records(p):
                    pass
                index = self._index[p]
                previous = -1
                for offset in index.offsets:
                    if offset > previous + 1:
                        problems.append(LostRecords(p, previous + 1, offset - 1))
                    previous = offset
                size = self.partition_path(p).stat().st_size
                complete = self._complete_tail(p, index) if size > index.end else None
                next_offset = complete[1] + 1 if complete else index.next_offset
                hwm = self._hwm(p)
                if hwm > next_offset:
                    problems.append(LostRecords(p, next_offset, hwm - 1))
                if complete:
                    problems.append(RestoredNewline(p, complete[1]))
                elif size > index.end:
                    problems.append(TornTail(p, index.next_offset, size - index.end))
        return problems

    # ------------------------------------------------------------------ consumers

    def _consumer_dir(self, name: str) -> Path:
        if not isinstance(name, str) or not _CONSUMER_NAME.fullmatch(name):
            raise ValueError(
                f"consumer name must be lowercase letters, digits, '-' or '_' (at most 64), got {name!r}"
            )
        return self.path / "consumers" / name

    def _complete_consumer(self, directory: Path) -> bool:
        return directory.is_dir() and all((directory / f"{p}.offset").exists() for p in range(self.partitions))

    @property
    def consumers(self) -> list[str]:
        """The names of the consumers added to this log, sorted."""
        return sorted(
            p.name for p in (self.path / "consumers").iterdir()
            if _CONSUMER_NAME.fullmatch(p.name) and self._complete_consumer(p)
        )

    def add_consumer(
        self, name: str, *, start: Literal["earliest", "latest"] = "earliest"
    ) -> Consumer:
        """Add a consumer that starts at the beginning of the log (``"earliest"``) or at its current end (``"latest"``).

        Atomic: the consumer appears with an offset for every partition, or not at all.
        """
        directory = self._consumer_dir(name)
        if start not in ("earliest", "latest"):
            raise ValueError(f"start must be 'earliest' or 'latest', got {start!r}")
        if self._complete_consumer(directory):
            raise LogError(f"a consumer named {name!r} already exists; open it with log.consumer({name!r})")
        ends = self.end_offsets()
        tmp = directory.with_name(f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for p in range(self.partitions):
            _write_atomic(tmp / f"{p}.offset", f"{0 if start == 'earliest' else ends[p]}\n", self.fsync)
        if directory.is_dir():
            # Left half-made by an older version or by hand, never by this code: it never was a consumer.
            shutil.rmtree(directory)
        try:
            os.rename(tmp, directory)  # one step: the consumer exists whole, or not at all
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise LogError(f"a consumer named {name!r} already exists; open it with log.consumer({name!r})") from None
        if self.fsync:
            _fsync_dir(directory.parent)
        return self.consumer(name)

    def consumer(self, name: str, *, member: int = 0, members: int = 1, reset: Reset = "none") -> Consumer:
        """Open the consumer ``name`` at its committed offsets.

        With ``members > 1`` this is one member of a group sharing the consumer's
        offsets: member ``i`` reads partitions ``i, i + members, ...``, so the
        members split the partitions and never read the same one.

        ``reset`` says what to do if a committed offset is past the end of its
        partition (records were lost, or the log was replaced): ``"none"``
        raises :class:`OffsetOutOfRangeError`, ``"earliest"`` moves to the start
        of the partition, ``"latest"`` to its end (Kafka's ``auto.offset.reset``).
        """
        self._require_consumer(name)
        _check_int("members", members, 1)
        if not isinstance(member, int) or isinstance(member, bool) or not 0 <= member < members:
            raise ValueError(f"member must be an int from 0 to {members - 1}, got {member!r}")
        if reset not in RESETS:
            raise ValueError(f"reset must be one of {RESETS}, got {reset!r}")
        return Consumer(self, name, tuple(range(member, self.partitions, members)), reset)

    def _require_consumer(self, name: str) -> Path:
        directory = self._consumer_dir(name)
        if not self._complete_consumer(directory):
            known = self.consumers
            raise UnknownConsumerError(
                f"no consumer named {name!r} in this log; consumers are {known} "
                f"(add one with log.add_consumer({name!r}))"
            )
        return directory

    def committed(self, name: str) -> dict[int, int]:
        """The committed offset of consumer ``name`` in each partition: the next record it will read."""
        directory = self._require_consumer(name)
        offsets = {}
        for p in range(self.partitions):
            text = (directory / f"{p}.offset").read_text(encoding="ascii")
            if not text.strip().isdigit():
                raise CorruptLogError(f"consumer {name!r}: the committed offset of partition {p} is damaged: {text[:40]!r}")
            offsets[p] = int(text)
        return offsets

    def commit(self, name: str, offsets: Mapping[int, int]) -> None:
        """Save consumer ``name``'s offsets for the partitions given (each file replaced atomically)."""
        directory = self._require_consumer(name)
        if not isinstance(offsets, Mapping):
            raise TypeError(f"offsets must be a dict of partition to offset, got {type(offsets).__name__}")
        checked = {}
        for partition, offset in offsets.items():
            if not isinstance(partition, int) or isinstance(partition, bool) or not 0 <= partition < self.partitions:
                raise ValueError(f"offsets must map partitions (0 to {self.partitions - 1}) to offsets, "
                                 f"got the key {partition!r:.40}")
            checked[partition] = self._check_offset(partition, offset, "committed offset")
        for partition, offset in checked.items():
            # One file per partition: group members own different partitions and
            # never overwrite each other's commits.
            _write_atomic(directory / f"{partition}.offset", f"{offset}\n", self.fsync)

    def lag(self, name: str) -> dict[int, int]:
        """Per partition, how many offsets consumer ``name`` has not yet committed."""
        committed = self.committed(name)
        return {p: end - committed[p] for p, end in self.end_offsets().items()}

    def _out_of_range(self, name: str, partition: int, offset: int, end: int) -> OffsetOutOfRangeError:
        return OffsetOutOfRangeError(
            f"consumer {name!r} is at offset {offset} of partition {partition}, past its end {end}: the log lost "
            f"records it had read, or was replaced. Open it with reset='earliest' to re-read the partition from "
            f"its start, or reset='latest' to skip to its end (Kafka's auto.offset.reset)"
        )


def _key_bytes(key: object) -> bytes:
    """A key as UTF-8, or a ValueError naming it (a lone surrogate cannot be encoded)."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"key must be a non-empty string, got {key!r:.80}")
    try:
        return key.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"key must be valid Unicode text (encodable as UTF-8), got {key!r:.80}") from None


class Consumer:
    """One reader of a log, with its own position in each of its partitions.

    :meth:`poll` reads from the positions and moves them on; :meth:`commit`
    saves them, so that a consumer opened later (in any process) starts there.
    Positions move only forward by reading, or anywhere by :meth:`seek`.
    """

    def __init__(self, log: Log, name: str, partitions: tuple[int, ...], reset: Reset = "none") -> None:
        self.log = log
        self.name = name
        self.partitions = partitions
        self.reset = reset
        #: Positions moved by the ``reset`` policy: ``(partition, from_offset, to_offset)``.
        self.resets: list[tuple[int, int, int]] = []
        committed = log.committed(name)
        self._positions = {p: self._in_range(p, committed[p]) for p in partitions}

    def _in_range(self, partition: int, offset: int) -> int:
        if offset <= self.log._refresh(partition).next_offset:
            return offset  # the common case, without reading the high-water mark
        end = self.log.end_offset(partition)
        if offset <= end:
            return offset
        if self.reset == "none":
            raise self.log._out_of_range(self.name, partition, offset, end)
        moved = 0 if self.reset == "earliest" else end
        self.resets.append((partition, offset, moved))
        return moved

    def __repr__(self) -> str:
        return f"Consumer({self.name!r}, partitions {list(self.partitions)}, positions {self.positions}, lag {self.lag()})"

    @property
    def positions(self) -> dict[int, int]:
        """The next offset this consumer will read, per partition."""
        return dict(self._positions)

    def poll(self, max_records: int = 500) -> list[Record]:
        """Read up to ``max_records`` new records, shared fairly across this consumer's partitions."""
        _check_int("max_records", max_records, 1)
        out: list[Record] = []
        active = list(self.partitions)
        for p in active:
            self._positions[p] = self._in_range(p, self._positions[p])
        while active and len(out) < max_records:
            share = max(1, (max_records - len(out)) // len(active))
            for p in list(active):
                room = min(share, max_records - len(out))
                if room <= 0:
                    break
                records = self.log.read(p, self._positions[p], room)
                if len(records) < room:
                    active.remove(p)  # caught up with this partition
                if records:
                    self._positions[p] = records[-1].offset + 1
                    out.extend(records)
        return out

    def commit(self) -> dict[int, int]:
        """Save this consumer's positions as its committed offsets, and return them."""
        # Writing an offset file costs milliseconds, reading one microseconds: write only
        # those that differ from what is on disk (which another process may have moved).
        on_disk = self.log.committed(self.name)
        self.log.commit(self.name, {p: o for p, o in self._positions.items() if on_disk[p] != o})
        return self.positions

    def committed(self) -> dict[int, int]:
        """The offsets saved by the last commit, for this consumer's partitions."""
        committed = self.log.committed(self.name)
        return {p: committed[p] for p in self.partitions}

    def seek(self, partition: int, offset: int) -> None:
        """Move this consumer's position in one of its partitions (to replay, or to skip)."""
        self.log._check_partition(partition)
        if partition not in self._positions:
            raise ValueError(f"partition {partition} is not one of this consumer's partitions {list(self.partitions)}")
        self._positions[partition] = self.log._check_offset(partition, offset)

    def seek_to_beginning(self) -> None:
        """Move to offset 0 in every partition: the next polls replay the whole log."""
        for p in self.partitions:
            self._positions[p] = 0

    def lag(self) -> int:
        """Records in this consumer's partitions that it has not committed yet."""
        lag = self.log.lag(self.name)
        return sum(lag[p] for p in self.partitions)


def compacted(log: Log) -> dict[str, Record]:
    """The latest record of each key: what a compacted copy of ``log`` would keep (Kafka's ``cleanup.policy=compact``).

    Compaction forgets every record that a later record with the same key
    replaces, so what is left is a table: one row per key, its latest value.
    All of a key's records are in one partition, in the order they were
    appended, so "latest" is the one with the highest offset there. The log
    itself is left as it is: this reads it and keeps every record's replacement.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     log = Log.create(pathlib.Path(tmp) / "orders", partitions=2)
    ...     for key, kind in [("order-1", "placed"), ("order-2", "placed"), ("order-1", "paid")]:
    ...         _ = log.append(key, {"kind": kind})
    ...     {key: record.value["kind"] for key, record in sorted(compacted(log).items())}
    {'order-1': 'paid', 'order-2': 'placed'}
    """
    if not isinstance(log, Log):
        raise TypeError(f"log must be a streamlab.log.Log, got {type(log).__name__}")
    latest: dict[str, Record] = {}
    for record in log.records():
        # Within a partition records come in offset order: a later one replaces an earlier one.
        latest[record.key] = record
    return latest
