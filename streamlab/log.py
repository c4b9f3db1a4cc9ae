"""An append-only log on disk: partitions of records read by position, and consumers that remember where they are.

A queue forgets what you read; a log remembers. Appending a record gives it the
next *offset* in its *partition* (chosen from the record's key, so one key's
records stay in order). Reading takes an offset and returns what is there;
it changes nothing, so any number of readers can read the same records, again
and again. Each named *consumer* keeps its own *committed offset* per
partition, in a small file of its own, so it carries on where it left off
after a restart, and can rewind to replay.

It is a teaching model of a Kafka topic, in the standard library only:

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
checksum, torn tail       record CRCs and log recovery after a crash
========================  =====================================================

On disk, a log is a directory: ``log.json`` (how many partitions), one
``partition-N.log`` per partition holding one record per line, and
``consumers/NAME/N.offset`` holding a consumer's committed offset for
partition N. A line is ``CRC32 JSON\\n``: the checksum of the JSON, a space,
the JSON ``{"offset": ..., "key": ..., "value": ...}`` and a newline. A record
exists once its newline is on disk; bytes after the last newline are a *torn
tail* (a write cut off by a crash): readers never return them, :meth:`Log.check`
reports them, and the next append cuts them off first (:attr:`Log.repairs`).
One process writes a log at a time; any number may read it.

What survives what: everything written is in the operating system's hands
before a call returns, so it survives the Python process (a notebook kernel)
crashing or restarting. It does not call ``fsync``, so a power cut may lose the
last writes; Kafka makes the same choice by default and relies on replicas.

>>> import tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as tmp:
...     log = Log.create(pathlib.Path(tmp) / "orders", partitions=2)
...     first = log.append("order-1", {"kind": "placed"})
...     _ = log.append("order-1", {"kind": "paid"})
...     [r.value["kind"] for r in log.read(first.partition, 0)]
['placed', 'paid']
"""

from __future__ import annotations

import json
import os
import re
import threading
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "Consumer",
    "CorruptLogError",
    "Log",
    "LogError",
    "OffsetOutOfRangeError",
    "Record",
    "TornTail",
    "UnknownConsumerError",
]

FORMAT = 1
_CONSUMER_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class LogError(Exception):
    """Something about the log itself is wrong; the message says what and where."""


class UnknownConsumerError(LogError, LookupError):
    """No consumer of that name has been added to this log."""


class OffsetOutOfRangeError(LogError, IndexError):
    """An offset past the end of a partition: no record is there (yet)."""


class CorruptLogError(LogError):
    """A complete line of the log does not hold the record it should (bad checksum, wrong offset)."""


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


def _check_int(name: str, value: object, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _write_atomic(path: Path, text: str) -> None:
    """Replace ``path``'s content all at once: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w", encoding="ascii") as f:
        f.write(text)
    # rename() replaces the file in one step, even if we crash half-way through writing tmp.
    os.replace(tmp, path)


class _Index:
    """Where each complete record of one partition starts, in bytes."""

    __slots__ = ("end", "starts")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.end = 0  # the byte just after the last complete record


class Log:
    """An append-only, partitioned log in a directory. Make one with :meth:`create`, reopen it with :meth:`open`."""

    def __init__(self, path: Path, partitions: int) -> None:
        self.path = path
        self.partitions = partitions
        self._index = [_Index() for _ in range(partitions)]
        #: Torn tails cut off before appending, in the order they were found.
        self.repairs: list[TornTail] = []

    # ------------------------------------------------------------------ opening

    @classmethod
    def create(cls, path: str | os.PathLike[str], *, partitions: int = 1) -> Log:
        """Create a new, empty log in directory ``path`` (which must not exist, or be empty)."""
        _check_int("partitions", partitions, 1)
        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise LogError(f"cannot create a log at {path.name!r}: something is already there (open it with Log.open)")
        path.mkdir(parents=True, exist_ok=True)
        (path / "consumers").mkdir()
        for p in range(partitions):
            (path / f"partition-{p}.log").touch()
        _write_atomic(path / "log.json", json.dumps({"format": FORMAT, "partitions": partitions}) + "\n")
        return cls(path, partitions)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Log:
        """Open an existing log, for instance from a new process after a restart."""
        path = Path(path)
        try:
            meta = json.loads((path / "log.json").read_text(encoding="ascii"))
        except FileNotFoundError:
            raise LogError(f"no log at {path.name!r} (make one with Log.create)") from None
        if meta.get("format") != FORMAT:
            raise LogError(f"log format {meta.get('format')!r} is not {FORMAT}")
        return cls(path, _check_int("partitions", meta.get("partitions"), 1))

    def __repr__(self) -> str:
        ends = self.end_offsets()
        consumers = ", ".join(self.consumers) or "none"
        return f"Log({self.partitions} partitions, {sum(ends.values()):,} records; consumers: {consumers})"

    def partition_path(self, partition: int) -> Path:
        """The file that holds one partition."""
        self._check_partition(partition)
        return self.path / f"partition-{partition}.log"

    def _check_partition(self, partition: object) -> int:
        if not isinstance(partition, int) or isinstance(partition, bool) or not 0 <= partition < self.partitions:
            raise ValueError(f"partition must be an int from 0 to {self.partitions - 1}, got {partition!r}")
        return partition

    # ------------------------------------------------------------------ writing

    def partition_for(self, key: str) -> int:
        """The partition every record with this key goes to: a stable hash of the key, modulo the partitions.

        >>> log = Log(Path("unused"), 3)
        >>> log.partition_for("order-1") == log.partition_for("order-1")
        True
        """
        if not isinstance(key, str) or not key:
            raise ValueError(f"key must be a non-empty string, got {key!r}")
        # crc32, not hash(): Python salts str hashes per process, and a key must
        # map to the same partition in every process, every run.
        return zlib.crc32(key.encode("utf-8")) % self.partitions

    def append(self, key: str, value: Any) -> Record:
        """Append one record (``value`` must be JSON-serializable) and return it with its partition and offset."""
        return self.extend([(key, value)])[0]

    def extend(self, items: Iterable[tuple[str, Any]]) -> list[Record]:
        """Append many ``(key, value)`` records, each partition's in one write; return them in the order given."""
        by_partition: dict[int, list[tuple[int, str, Any]]] = {}
        n = 0
        for n, (key, value) in enumerate(items, start=1):
            by_partition.setdefault(self.partition_for(key), []).append((n - 1, key, value))
        written: list[Record | None] = [None] * n
        for partition, batch in sorted(by_partition.items()):
            index = self._prepare_append(partition)
            offset = len(index.starts)
            lines = []
            for position, key, value in batch:
                payload = json.dumps({"offset": offset, "key": key, "value": value}, separators=(",", ":"),
                                     allow_nan=False).encode("ascii")
                lines.append(b"%08x %s\n" % (zlib.crc32(payload), payload))
                written[position] = Record(partition, offset, key, value)
                offset += 1
            with open(self.partition_path(partition), "ab") as f:
                start = f.tell()
                f.write(b"".join(lines))
                f.flush()
            for line in lines:
                index.starts.append(start)
                start += len(line)
            index.end = start
        return written  # type: ignore[return-value]  # every position was filled

    def _prepare_append(self, partition: int) -> _Index:
        """Bring the index up to date and cut off a torn tail, so the next record starts on a line of its own."""
        index = self._refresh(partition)
        size = self.partition_path(partition).stat().st_size
        if size > index.end:
            self.repairs.append(TornTail(partition, len(index.starts), size - index.end))
            # Without this cut the new record would be glued to the torn bytes and both lost.
            os.truncate(self.partition_path(partition), index.end)
        return index

    # ------------------------------------------------------------------ reading

    def _refresh(self, partition: int) -> _Index:
        """Index the complete records appended since we last looked (by us or by another process)."""
        index = self._index[partition]
        path = self.partition_path(partition)
        size = path.stat().st_size
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
        while (newline := data.find(b"\n", position)) != -1:
            index.starts.append(base + position)
            position = newline + 1
        index.end = base + position
        return index

    def end_offset(self, partition: int) -> int:
        """The offset the next record appended to ``partition`` will get: how many records it holds."""
        return len(self._refresh(self._check_partition(partition)).starts)

    def end_offsets(self) -> dict[int, int]:
        """:meth:`end_offset` of every partition."""
        return {p: self.end_offset(p) for p in range(self.partitions)}

    def _check_offset(self, partition: int, offset: object, what: str = "offset") -> int:
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise ValueError(f"{what} must be an int >= 0, got {offset!r}")
        if offset < 0:
            raise ValueError(f"{what} must be >= 0, got {offset} (offsets count records from 0)")
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
        """
        self._check_partition(partition)
        self._check_offset(partition, offset)
        if max_records is not None:
            _check_int("max_records", max_records, 1)
        index = self._index[partition]
        end = len(index.starts)
        stop = end if max_records is None else min(end, offset + max_records)
        if stop == offset:
            return []
        first = index.starts[offset]
        last = index.starts[stop] if stop < end else index.end
        with open(self.partition_path(partition), "rb") as f:
            f.seek(first)
            data = f.read(last - first)
        lines = data.split(b"\n")[:-1]  # every line read ends with a newline
        return [self._parse(partition, offset + i, line) for i, line in enumerate(lines)]

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

    def check(self) -> list[TornTail]:
        """Read every record (checksums and offsets), and report each partition's torn tail, if any.

        It raises :class:`CorruptLogError` for a damaged complete record, and
        changes nothing on disk.
        """
        torn = []
        for p in range(self.partitions):
            for _ in self.records(p):
                pass
            index = self._index[p]
            size = self.partition_path(p).stat().st_size
            if size > index.end:
                torn.append(TornTail(p, len(index.starts), size - index.end))
        return torn

    # ------------------------------------------------------------------ consumers

    def _consumer_dir(self, name: str) -> Path:
        if not isinstance(name, str) or not _CONSUMER_NAME.fullmatch(name):
            raise ValueError(
                f"consumer name must be lowercase letters, digits, '-' or '_' (at most 64), got {name!r}"
            )
        return self.path / "consumers" / name

    @property
    def consumers(self) -> list[str]:
        """The names of the consumers added to this log, sorted."""
        return sorted(p.name for p in (self.path / "consumers").iterdir() if p.is_dir())

    def add_consumer(
        self, name: str, *, start: Literal["earliest", "latest"] = "earliest"
    ) -> Consumer:
        """Add a consumer that starts at the beginning of the log (``"earliest"``) or at its current end (``"latest"``)."""
        directory = self._consumer_dir(name)
        if start not in ("earliest", "latest"):
            raise ValueError(f"start must be 'earliest' or 'latest', got {start!r}")
        if directory.exists():
            raise LogError(f"a consumer named {name!r} already exists; open it with log.consumer({name!r})")
        directory.mkdir()
        ends = self.end_offsets()
        self.commit(name, {p: 0 if start == "earliest" else ends[p] for p in range(self.partitions)})
        return self.consumer(name)

    def consumer(self, name: str, *, member: int = 0, members: int = 1) -> Consumer:
        """Open the consumer ``name`` at its committed offsets.

        With ``members > 1`` this is one member of a group sharing the consumer's
        offsets: member ``i`` reads partitions ``i, i + members, ...``, so the
        members split the partitions and never read the same one.
        """
        self._require_consumer(name)
        _check_int("members", members, 1)
        if not isinstance(member, int) or isinstance(member, bool) or not 0 <= member < members:
            raise ValueError(f"member must be an int from 0 to {members - 1}, got {member!r}")
        return Consumer(self, name, tuple(range(member, self.partitions, members)))

    def _require_consumer(self, name: str) -> Path:
        directory = self._consumer_dir(name)
        if not directory.is_dir():
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
            offsets[p] = int(text)
        return offsets

    def commit(self, name: str, offsets: Mapping[int, int]) -> None:
        """Save consumer ``name``'s offsets for the partitions given (each file replaced atomically)."""
        directory = self._require_consumer(name)
        checked = {}
        for partition, offset in offsets.items():
            self._check_partition(partition)
            checked[partition] = self._check_offset(partition, offset, "committed offset")
        for partition, offset in checked.items():
            # One file per partition: group members own different partitions and
            # never overwrite each other's commits.
            _write_atomic(directory / f"{partition}.offset", f"{offset}\n")

    def lag(self, name: str) -> dict[int, int]:
        """Per partition, how many records consumer ``name`` has not yet committed."""
        committed = self.committed(name)
        return {p: end - committed[p] for p, end in self.end_offsets().items()}


class Consumer:
    """One reader of a log, with its own position in each of its partitions.

    :meth:`poll` reads from the positions and moves them on; :meth:`commit`
    saves them, so that a consumer opened later (in any process) starts there.
    Positions move only forward by reading, or anywhere by :meth:`seek`.
    """

    def __init__(self, log: Log, name: str, partitions: tuple[int, ...]) -> None:
        self.log = log
        self.name = name
        self.partitions = partitions
        committed = log.committed(name)
        self._positions = {p: committed[p] for p in partitions}

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
