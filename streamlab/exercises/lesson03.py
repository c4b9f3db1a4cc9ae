"""Checks for the exercises of lesson 03, log versus queue.

1. ``time_lag``: a function ``time_lag(log, name)`` returning how far behind
   consumer ``name`` is *in time*: from the oldest record it has not committed
   to the newest record in the log.
2. ``at_least_once``: a function ``consume_at_least_once(log, name, handle, batch)``
   that handles every record not yet committed and commits only what it has
   handled, so that a crash replays a few records and loses none.
3. ``once_per_record``: a function ``once_per_record(handle)`` wrapping a
   service's handler so that records replayed after a crash reach it only once.
4. ``table_flow``: a function ``orders_flow(records)`` that takes the bytewax
   stream of a log's records and returns the stream of ``(order id, Order)``
   versions that builds the table of orders; run in a real dataflow reading the log.

Every check compares the learner's function with the solution
(:mod:`streamlab.exercises.differ`) on real logs: the lesson's, fresh ones,
and small generated ones holding each exercise's edges (a consumer caught up
on some partitions and never having read others, a committed offset at the
end, empty partitions, one record, several partitions whose newest records are
in any of them, arrivals that tie, events that happened long before they
arrived; crashes on the first record, right after it, on the last, several
batches in, none at all, and a replay of 480 records in a row; an empty log,
orders updated many times, events appended twice, before their order was
placed, for an order nobody placed). The smallest log found where the answers
differ is shown, with the hint of a known mistake when that mistake gives the
learner's answer on it.

A check builds each log it needs once, in a temporary directory, and never
shows where: a message that would name the directory names it ``<log>``. The
logs of the exercises' own cases are kept while the process runs (a check run
again builds none) and removed when it exits; the smaller ones tried while
shrinking are removed when the check ends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import numbers
import random
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from streamlab.events import COURSE_START, arrived_before
from streamlab.exercises import Feedback, Mistake, checker, correct
from streamlab.exercises.differ import (
    Case,
    Exercise,
    Known,
    Raised,
    dataflow_cause,
    kept_dir,
    resumed_steps,
    show_time,
)
from streamlab.log import Consumer, Log, Record
from streamlab.orders import Order, OrderEvent, RejectedEvent, apply, from_record, order_pipe

__all__ = ["Crash", "at_least_once", "once_per_record", "table_flow", "time_lag"]

#: The lesson's log: the first hour of order pipe seed 7, in three partitions.
LESSON_SEED = 7
PARTITIONS = 3


class Crash(Exception):
    """The service died while handling a record (a crash the checks simulate)."""


@functools.lru_cache(maxsize=4)
def _events(seed: int | None) -> tuple[OrderEvent, ...]:
    """The lesson's first hour (seed None), or 45 minutes of a fresh pipe whose events arrive up to two minutes late."""
    if seed is None:
        return tuple(arrived_before(order_pipe(seed=LESSON_SEED), COURSE_START + timedelta(hours=1)))
    shop = order_pipe(seed=seed, rate=0.15, disorder=120.0)
    return tuple(arrived_before(shop, COURSE_START + timedelta(minutes=45)))


@functools.lru_cache(maxsize=1)
def _disordered() -> tuple[OrderEvent, ...]:
    """A fresh pipe's events as a log may hold them after trouble upstream.

    For three orders, the *paid* event was appended before the *placed* one
    (out of order); one *placed* event was appended twice (a producer that
    retried after a timeout). The rule rejects all of those.
    """
    events = list(_events(11))
    moved = 0
    for order_id in dict.fromkeys(e.order_id for e in events if e.kind == "paid"):
        if moved == 3:
            break
        placed = next(i for i, e in enumerate(events) if e.order_id == order_id and e.kind == "placed")
        paid = next(i for i, e in enumerate(events) if e.order_id == order_id and e.kind == "paid")
        events.insert(placed, events.pop(paid))
        moved += 1
    retried = next(i for i, e in enumerate(events) if e.kind == "placed" and i > len(events) // 2)
    events.insert(retried + 5, events[retried])
    return tuple(events)


def _arrival(record: Record) -> datetime:
    return from_record(record).arrival_time


def _event_time(record: Record) -> datetime:
    return from_record(record).event_time


# -- the checks' logs: the lesson's, and small ones made to hit the edges; each built once ------------

@dataclass(frozen=True)
class _Rec:
    """One record of a check's log: its partition, the order event it holds, whether the consumer has committed it.

    A case lists its records in offset order within each partition, the committed
    ones first: dropping records (shrinking a case) keeps both true.
    """

    partition: int
    event: OrderEvent
    committed: bool = False


def _ends(records: Sequence[_Rec], partitions: int) -> dict[int, int]:
    ends = dict.fromkeys(range(partitions), 0)
    for r in records:
        ends[r.partition] += 1
    return ends


def _committed(records: Sequence[_Rec], partitions: int) -> dict[int, int]:
    done = dict.fromkeys(range(partitions), 0)
    for r in records:
        done[r.partition] += r.committed
    return done


#: Another consumer some logs hold, with nothing or everything committed: the check's consumer is the one named.
_OTHER = "audit"


def _consumers(records: Sequence[_Rec], partitions: int, name: str, other: str) -> dict[str, dict[int, int]]:
    """The consumers of a case's log and their committed offsets: ``name``'s from the records, and maybe ``audit``."""
    out = {name: _committed(records, partitions)}
    if other:
        out[_OTHER] = _ends(records, partitions) if other == "end" else dict.fromkeys(range(partitions), 0)
    return out


def _log_key(events: Sequence[OrderEvent], partitions: int, consumers: Mapping[str, Mapping[int, int]]) -> tuple:
    return tuple(events), partitions, tuple((name, tuple(offsets.items())) for name, offsets in consumers.items())


class _Logs:
    """Logs in one directory, each built once and put back as it was before each use.

    A check calls the learner's code, the solution and the known mistakes on the
    same case many times (looking for hidden state, shrinking), and building a
    log costs milliseconds: each is built once and reused. A call may move a
    consumer (a commit): its offsets are put back before the next call. A log
    whose records changed (or that cannot be read any more) is built again.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.built: dict[tuple, Log] = {}
        self.made = itertools.count()

    def get(self, key: tuple, events: Sequence[OrderEvent], partitions: int,
            consumers: Mapping[str, Mapping[int, int]]) -> Log:
        log = self.built.get(key)
        if log is not None and self._as_it_was(log, len(events), consumers):
            return log
        log = Log.create(self.root / f"log-{next(self.made)}", partitions=partitions)
        log.extend((e.order_id, e.to_json()) for e in events)
        for name, offsets in consumers.items():
            log.add_consumer(name)
            moved = {p: o for p, o in offsets.items() if o}
            if moved:
                log.commit(name, moved)
        self.built[key] = log
        return log

    @staticmethod
    def _as_it_was(log: Log, size: int, consumers: Mapping[str, Mapping[int, int]]) -> bool:
        """Put back the offsets a call moved; False when the log itself changed (or cannot be read)."""
        try:
            if sum(log.end_offsets().values()) != size:
                return False
            for name, offsets in consumers.items():
                now = log.committed(name)
                moved = {p: o for p, o in offsets.items() if now[p] != o}
                if moved:
                    log.commit(name, moved)
        except Exception:  # the learner's code damaged it: build it again
            return False
        return True


#: The logs of the exercises' own cases, marked when the cases are made: built at their first check and kept
#: while the process runs (removed when it exits), so that a check run again builds none.
_KEPT: set[tuple] = set()
_kept_logs: _Logs | None = None
#: The kept logs' directory is named for the process: ``<prefix><pid>-<random>``.
_KEPT_PREFIX = "streamlab-lesson03-checks-"


class _Run:
    """One check run's other logs (the smaller inputs shrinking tries): in a temporary directory made when first
    needed, removed when the check ends, however it ends."""

    def __init__(self) -> None:
        self.tmp: tempfile.TemporaryDirectory[str] | None = None
        self.logs: _Logs | None = None

    def scratch(self) -> _Logs:
        if self.logs is None:
            self.tmp = tempfile.TemporaryDirectory(prefix="streamlab-exercise-")
            self.logs = _Logs(Path(self.tmp.name))
        return self.logs

    def close(self) -> None:
        if self.tmp is not None:
            self.tmp.cleanup()


_RUNS: list[_Run] = []


@contextlib.contextmanager
def _check_run() -> Iterator[None]:
    """Around a check that builds logs: its scratch logs are removed when it ends."""
    run = _Run()
    _RUNS.append(run)
    try:
        yield
    finally:
        _RUNS.pop()
        run.close()


def _log(events: Sequence[OrderEvent], partitions: int,
         consumers: Mapping[str, Mapping[int, int]] | None = None) -> Log:
    """The log holding ``events``, its consumers at these offsets, as it was built (a kept one, or a scratch one)."""
    global _kept_logs
    consumers = consumers or {}
    key = _log_key(events, partitions, consumers)
    if key in _KEPT:
        if _kept_logs is None:
            _kept_logs = _Logs(kept_dir(_KEPT_PREFIX))
        return _kept_logs.get(key, events, partitions, consumers)
    if not _RUNS:
        raise RuntimeError("a check's scratch logs are made inside _check_run()")
    return _RUNS[-1].scratch().get(key, events, partitions, consumers)


def _keeping(cases: Iterable[Case], spec: Callable[[Case], tuple]) -> list[Case]:
    """An exercise's own cases, their logs marked to be kept (``spec(case)``: its events, partitions, consumers)."""
    out = list(cases)
    _KEPT.update(_log_key(*spec(case)) for case in out)
    return out


def _raised(error: BaseException, log: Log) -> Raised:
    """The learner's error as an outcome, its message naming the log ``<log>``, never its temporary directory."""
    cause = dataflow_cause(error)
    if isinstance(cause, (NotImplementedError, Mistake)):
        raise cause.with_traceback(None) from None
    text = str(cause)
    for place in (log.path.resolve(), log.path, log.path.parent.resolve(), log.path.parent):
        text = text.replace(str(place), "<log>")
    return Raised(type(cause), text[:200])


@functools.lru_cache(maxsize=8)
def _keys(partitions: int, per_partition: int = 80) -> tuple[tuple[str, ...], ...]:
    """Order ids landing in each partition of a log with ``partitions``: a generated record goes where its case wants."""
    layout = Log(Path("unused"), partitions)  # only its partitioner: nothing is read or written
    keys: list[list[str]] = [[] for _ in range(partitions)]
    for i in itertools.count():
        key = f"order-{i:05d}"
        keys[layout.partition_for(key)].append(key)
        if min(map(len, keys)) >= per_partition:
            return tuple(map(tuple, keys))
    raise AssertionError("unreachable")


#: Where generated logs start: the course's clock, and a morning of another day.
_STARTS = (COURSE_START, COURSE_START + timedelta(days=1, hours=9, minutes=17, seconds=31))


def _records(rng: random.Random, n: int, partitions: int, *, start: datetime = COURSE_START,
             empty: bool = True) -> list[_Rec]:
    """``n`` records over the partitions, made to hit the edges of a consumer's position.

    Some partitions may stay empty; each starts at its own time (the newest
    record may be in any partition); arrivals fall on a 5-second grid, so
    records of different partitions tie; an event happened up to 40 s before it
    arrived (so event times are out of order). The consumer has committed, per
    partition, nothing, everything or a part.
    """
    keys = _keys(partitions)
    live = rng.sample(range(partitions), rng.randint(1, partitions)) if empty else list(range(partitions))
    clock = {p: rng.choice((0, 0, 5, 20, 60)) for p in live}
    made: list[tuple[int, OrderEvent]] = []
    taken = dict.fromkeys(range(partitions), 0)
    for _ in range(n):
        p = rng.choice(live)
        clock[p] += rng.choice((0, 0, 5, 5, 10, 30))
        arrived = start + timedelta(seconds=clock[p])
        happened = arrived - timedelta(seconds=rng.choice((0, 0, 5, 15, 40)))
        made.append((p, OrderEvent(keys[p][taken[p]], "customer-0", "placed", 10.0, happened, arrived)))
        taken[p] += 1
    cut = {p: rng.choice((0, 0, taken[p], taken[p], rng.randint(0, taken[p]))) for p in range(partitions)}
    seen = dict.fromkeys(range(partitions), 0)
    out = []
    for p, event in made:
        out.append(_Rec(p, event, seen[p] < cut[p]))
        seen[p] += 1
    return out


def _lesson_records(seed: int | None, committed: Callable[[dict[int, int]], dict[int, int]]) -> list[_Rec]:
    """The lesson's log (or a fresh one) as a case's records, the consumer's committed offsets ``committed(ends)``."""
    layout = Log(Path("unused"), PARTITIONS)
    placed = [(layout.partition_for(e.order_id), e) for e in _events(seed)]
    ends = dict.fromkeys(range(PARTITIONS), 0)
    offsets = []
    for p, _ in placed:
        offsets.append(ends[p])
        ends[p] += 1
    cut = committed(ends)
    return [_Rec(p, e, offset < cut[p]) for (p, e), offset in zip(placed, offsets)]


def _show_log(records: Sequence[_Rec], partitions: int, name: str, other: str) -> str:
    """A case's log as the learner reads it: per partition, each record's arrival (and event time), committed or not."""
    committed, ends = _committed(records, partitions), _ends(records, partitions)
    also = ""
    if other:
        also = f" (another consumer, {_OTHER!r}, has committed {'everything' if other == 'end' else 'nothing'})"
    head = (f"a log of {partitions} partition{'s' * (partitions != 1)} and the consumer {name!r}{also}; "
            f"its committed offsets {committed}, the end offsets {ends}")
    by_partition: dict[int, list[_Rec]] = {p: [] for p in range(partitions)}
    for r in records:
        by_partition[r.partition].append(r)
    lines = []
    for p, mine in by_partition.items():
        if not mine:
            lines.append(f"  partition {p}: no records")
        elif len(records) > 12:
            lines.append(f"  partition {p}: {len(mine)} records, arrived from {show_time(mine[0].event.arrival_time)} "
                         f"to {show_time(mine[-1].event.arrival_time)}")
        else:
            lines.append(f"  partition {p}: " + ", ".join(
                f"offset {i} arrived {show_time(r.event.arrival_time)} (happened {show_time(r.event.event_time)})"
                f"{', committed' if r.committed else ''}" for i, r in enumerate(mine)))
    return f"{head}:\n" + "\n".join(lines)


# -- 1. Lag in time --------------------------------------------------------------------------------

def _lag_model(
    *,
    unread_at: Callable[[dict[int, int], int], int] = lambda committed, p: committed[p],
    oldest: Callable[[Iterable[datetime]], datetime] = min,
    clock: Callable[[Record], datetime] = _arrival,
    local: bool = False,
    skip_caught_up: bool = True,
    skip_empty: bool = True,
) -> Callable[[Log, str], timedelta]:
    """``time_lag`` (the defaults: the solution's answer) or a typical mistake.

    Another first unread offset, ``max`` for ``min``, event time, each partition
    against its own newest record, caught-up or empty partitions read anyway.
    """
    def time_lag(log: Log, name: str) -> timedelta:
        committed, ends = log.committed(name), log.end_offsets()
        newest = {p: clock(log.read(p, ends[p] - 1, 1)[0]) for p in ends if ends[p] or not skip_empty}
        unread = {p: clock(log.read(p, unread_at(committed, p), 1)[0])
                  for p in ends if committed[p] < ends[p] or not skip_caught_up}
        if not unread:
            return timedelta(0)
        if local:
            return max(newest[p] - t for p, t in unread.items())
        return max(newest.values()) - oldest(unread.values())

    return time_lag


def _lag_cases() -> Iterator[Case]:
    rng = random.Random(301)
    t = COURSE_START
    keys = _keys(3)

    def rec(p: int, i: int, seconds: float, committed: bool = False, before: float = 5) -> _Rec:
        arrived = t + timedelta(seconds=seconds)
        happened = arrived - timedelta(seconds=before)
        return _Rec(p, OrderEvent(keys[p][i], "customer-0", "placed", 10.0, happened, arrived), committed)

    # By hand, the edges first: one record, read or not; a consumer caught up on one partition and never
    # having read another; an empty partition; the oldest unread record in a partition whose newest is not the log's.
    yield Case(([rec(0, 0, 10)], 3, "loyalty", ""), "one record, not yet committed")
    yield Case(([rec(1, 0, 10, True)], 3, "loyalty", "start"), "one record, committed")
    yield Case(([rec(0, 0, 0, True), rec(0, 1, 20, True), rec(1, 0, 5), rec(1, 1, 30)], 3, "billing", "end"),
               "caught up on partition 0, nothing read in partition 1, partition 2 empty")
    yield Case(([rec(0, 0, 0, True), rec(0, 1, 15), rec(0, 2, 15), rec(2, 0, 15), rec(2, 1, 40, before=60)], 3,
                "search", ""), "ties on the oldest unread record")
    for _ in range(30):
        partitions = rng.randint(1, 4)
        records = _records(rng, rng.randint(1, 10), partitions, start=rng.choice(_STARTS))
        name, other = rng.choice(("loyalty", "billing", "search")), rng.choice(("", "", "start", "end"))
        yield Case((records, partitions, name, other))
    # The lesson's log and a fresh one, with consumers at telling positions; a long way behind, for some.
    positions = {
        "billing": lambda ends: ends,  # has committed everything
        "analytics": lambda ends: dict.fromkeys(ends, 0),  # has read nothing yet
        "loyalty": lambda ends: {0: ends[0] // 3, 1: ends[1], 2: ends[2] * 2 // 3},
        "search": lambda ends: {p: max(1, end - 5 - 3 * p) for p, end in ends.items()},
    }
    for seed, label in ((None, "the lesson's log"), (5, "a fresh log (seed 5)")):
        for name, committed in positions.items():
            yield Case((_lesson_records(seed, committed), PARTITIONS, name, ""), label)


def _log_spec(case: Case) -> tuple:
    """A case of exercise 1 or 2: its log's events, partitions and consumers (the records come first in its args)."""
    records, partitions, name, other = case.args[:4]
    return [r.event for r in records], partitions, _consumers(records, partitions, name, other)


def _lag_call(fn: Callable[[Log, str], Any], case: Case) -> Any:
    name = case.args[2]
    log = _log(*_log_spec(case))
    try:
        return fn(log, name)
    except (NotImplementedError, Mistake):
        raise
    except Exception as error:
        return _raised(error, log)


def _lag_meaning(answer: Any, case: Case) -> Any:
    """A lag is a timedelta (Python's, pandas' or numpy's); a number or a string gets its hint at once."""
    if answer is None or isinstance(answer, Raised):
        return answer
    if answer is pd.NaT or (isinstance(answer, np.timedelta64) and np.isnat(answer)):
        return _NOT_A_TIME  # pandas' "no time" (a max or min of nothing): shown with its case
    if isinstance(answer, (timedelta, np.timedelta64)):
        lag = pd.Timedelta(answer)
        # The checks' logs span hours at most: days come from another clock (the wall clock moves between calls).
        return _DAYS if abs(lag) > pd.Timedelta(days=3) else lag
    if isinstance(answer, (numbers.Real, np.number)) and not isinstance(answer, (bool, np.bool_)):
        records, partitions, *_ = case.args
        behind = sum(not r.committed for r in records)
        if isinstance(answer, (numbers.Integral, np.integer)) and answer == behind:
            raise Mistake(
                "that is the lag in records (log.lag gives it). This exercise asks for the lag in time: return a "
                "timedelta."
            )
        raise Mistake(f"return a timedelta, not a number; got {type(answer).__name__} {answer!r}.")
    raise Mistake(f"return a timedelta; got {type(answer).__name__}.")


#: A lag of days, on logs that span hours at most: the answer measured from another clock.
_DAYS = "a lag of days"
#: pandas' missing time (NaT), as an answer.
_NOT_A_TIME = "NaT (no time at all)"


def _show_lag(answer: Any) -> str:
    if answer in (_DAYS, _NOT_A_TIME):
        return str(answer)
    if not isinstance(answer, pd.Timedelta):
        return repr(answer)
    if answer == pd.Timedelta(0):
        return "timedelta(0)"
    sign, size = ("-", -answer) if answer < pd.Timedelta(0) else ("", answer)
    return f"{sign}{size.to_pytimedelta()}"


def _caught_up(got: Any, want: Any, case: Case) -> bool:
    return all(r.committed for r in case.args[0]) and got != pd.Timedelta(0)


LAG = Exercise(
    solution=_lag_model(),
    cases=lambda: _keeping(_lag_cases(), _log_spec),
    call=_lag_call,
    meaning=_lag_meaning,
    describe=lambda case: f"with {_show_log(*case.args)}",
    show=_show_lag,
    fewest=1,  # a log with no record at all has no newest record: outside the exercise
    known=(
        Known("your function returned None: return a timedelta (timedelta(0) when the consumer has committed "
              "everything).", when=lambda got, want, case: got is None),
        Known("your lag is measured from the wall clock. The course's clock is the events' own: measure from the "
              "newest record in the log (its arrival_time).",
              when=lambda got, want, case: got == _DAYS),
        Known("your code read offset -1. The committed offset is the *next* record to read, so the oldest record "
              "not yet handled is the one *at* the committed offset, not before it.",
              model=_lag_model(unread_at=lambda committed, p: committed[p] - 1)),
        Known("you measured from the last record the consumer committed. The committed offset is the *next* record "
              "to read: the oldest record not yet handled is the one at that offset.",
              model=_lag_model(unread_at=lambda committed, p: max(committed[p] - 1, 0))),
        Known("your code raised IndexError in a partition the consumer has read to the end: there, "
              "nothing is unread, so there is no oldest unread record to read. Such a partition is not behind.",
              model=_lag_model(skip_caught_up=False)),
        Known("a partition with no records has no newest record (its end offset is 0): leave empty partitions out "
              "when you look for the newest record of the log.", model=_lag_model(skip_empty=False)),
        Known("you measured from the newest of its first unread records. The consumer is as far behind as its "
              "*oldest* unread record, over all partitions.", model=_lag_model(oldest=max)),
        Known("you used event_time, when an order happened. Lag is about the log: use arrival_time, when the record "
              "reached it (here events arrive up to 40 s after they happened).", model=_lag_model(clock=_event_time)),
        Known("you measured each partition from its own newest record. 'Now' is the newest record in the whole log, "
              "whichever partition it is in.", model=_lag_model(local=True)),
        Known("a consumer that has committed every record is not behind at all: its lag is timedelta(0).",
              when=_caught_up),
    ),
)


@checker
def time_lag(fn: Callable[[Log, str], Any]) -> Feedback:
    """Check ``time_lag(log, name)``: newest arrival in the log minus the arrival of the oldest uncommitted record."""
    with _check_run():
        LAG.compare(fn)
    return correct("your lag says how old the oldest unhandled record is, for every consumer, caught up or not.")


# -- 2. Commit after handling: at least once -------------------------------------------------------

#: The most calls a consumer may make in one run (of the log's methods, or of handle), per record of the log and
#: beyond: reading a log to its end with batches of one takes about two per record, so a consumer past this is in a
#: loop that never ends.
_RUNAWAY = (20, 200)


def _runaway(records: int) -> int:
    per_record, beyond = _RUNAWAY
    return per_record * records + beyond


class _Service:
    """The ``handle`` a check passes: it notes every record handled and can crash at its ``crash_at``-th call."""

    def __init__(self, crash_at: int | None = None, limit: int = _runaway(0)) -> None:
        self.crash_at, self.limit = crash_at, limit
        self.calls = 0
        self.handled: list[tuple[int, int]] = []
        self.crashed_on: tuple[int, int] | None = None
        self.not_a_record: Any = None

    def __call__(self, record: Any) -> None:
        if not isinstance(record, Record):
            self.not_a_record = record
            raise TypeError(f"handle takes a log record, got {type(record).__name__}")
        self.calls += 1
        if self.calls > self.limit:
            raise NeverStops("your consumer went on handling records long after reading the log to its end: it never "
                             "stops")
        if self.calls == self.crash_at:
            self.crashed_on = (record.partition, record.offset)
            raise Crash(f"the service crashed while handling partition {record.partition}, offset {record.offset}")
        self.handled.append((record.partition, record.offset))


class NeverStops(Exception):
    """A learner's consumer that went on calling the log (or handle) far past the end of what there was to read."""


class _Bounded:
    """The log, or a consumer of it, as a learner's consumer gets it: itself, but a loop that never ends is stopped.

    Every call of one of its methods spends one of a shared budget, far more than
    reading the log to its end takes; past it, the call raises :class:`NeverStops`,
    an outcome shown with its case, instead of a check that never answers.
    """

    def __init__(self, target: Any, budget: list[int]) -> None:
        self._target, self._budget = target, budget

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            self._budget[0] -= 1
            if self._budget[0] < 0:
                raise NeverStops("your consumer went on calling the log long after reading it to its end: stop when "
                                 "there is nothing left to read")
            out = value(*args, **kwargs)
            return _Bounded(out, self._budget) if isinstance(out, Consumer) else out

        return call

    def __repr__(self) -> str:
        return repr(self._target)


def _not_a_record(service: _Service) -> None:
    if service.not_a_record is not None:
        raise Mistake(
            f"call handle with the record itself (it reads its partition and offset); you passed a "
            f"{type(service.not_a_record).__name__}."
        )


def _in_offset_order(handled: list[tuple[int, int]]) -> bool:
    last: dict[int, int] = {}
    for partition, offset in handled:
        if offset < last.get(partition, -1):
            return False
        last[partition] = offset
    return True


@dataclass(frozen=True)
class _Delivery:
    """What a consumer did over a crash and a restart: what the exercise asks about it, in words a hint can test.

    The fields after ``returned`` are facts that differ between right answers
    (which record the crash hit, how many were replayed) or that only a hint
    needs: never compared.
    """

    first: str  # how the first call ended: "stopped at the crash", "went on after the crash", "returned"
    lost: tuple[tuple[int, int], ...]  # records not committed before, that neither call handled
    again: tuple[tuple[int, int], ...]  # records one call handled twice
    old: tuple[tuple[int, int], ...]  # records a call handled although committed when it began
    replay: str  # "fewer than a batch", or how many the restart handled again
    uncommitted: int  # records left uncommitted after the restart
    in_order: bool  # each partition's records handled in offset order, in each call
    returned: str  # "the number of records it handled", or what a call returned instead
    crashed_on: tuple[int, int] | None = field(default=None, compare=False)
    replayed: int = field(default=0, compare=False)
    #: Records never handled that the consumer's committed offsets had not passed either: never reached.
    unreached: bool = field(default=False, compare=False)


def _count_ok(value: Any, handled: int) -> bool:
    return (isinstance(value, (numbers.Real, np.number)) and not isinstance(value, (bool, np.bool_))
            and value == handled)


def _deliver(fn: Callable[..., Any], case: Case) -> Any:
    """The first call, with a handle crashing at its ``crash_at``-th record; then the restart, with one that does not."""
    records, partitions, name, other, batch, crash_at = case.args
    log = _log(*_log_spec(case))
    waiting = {(p, offset) for p, offset, r in _positions(records, partitions) if not r.committed}
    limit = _runaway(len(records))
    first = _Service(crash_at, limit)
    start = log.committed(name)
    how, value = "returned", None
    try:
        value = fn(_Bounded(log, [limit]), name, first, batch)
    except Crash:
        how = "stopped at the crash"
    except (NotImplementedError, Mistake):
        raise
    except Exception as error:
        _not_a_record(first)
        return _raised(error, log)
    _not_a_record(first)
    if how == "returned" and first.crashed_on is not None:
        how = "went on after the crash"
    restart = _Service(limit=limit)
    restart_at = log.committed(name)
    try:
        again_value = fn(_Bounded(log, [limit]), name, restart, batch)
    except (NotImplementedError, Mistake):
        raise
    except Exception as error:
        _not_a_record(restart)
        return _raised(error, log)
    _not_a_record(restart)
    handled = set(first.handled) | set(restart.handled)
    lost = waiting - handled
    at = log.committed(name)
    twice = {k for run in (first, restart) for k, n in Counter(run.handled).items() if n > 1}
    replayed = set(first.handled) & set(restart.handled)
    if len(replayed) < batch:
        replay = "fewer than a batch"
    elif replayed == set(first.handled):
        replay = f"{len(replayed)} records, every one the first call had handled"
    else:
        replay = f"{len(replayed)} records"
    wrong = []
    if how == "returned" and not _count_ok(value, len(first.handled)):
        wrong.append(f"{value!r:.40} (the first call, after handling {len(first.handled)})")
    if not _count_ok(again_value, len(restart.handled)):
        wrong.append(f"{again_value!r:.40} (the restart, after handling {len(restart.handled)})")
    return _Delivery(
        first=how,
        lost=tuple(sorted(lost)),
        again=tuple(sorted(twice)),
        old=tuple(sorted({(p, o) for p, o in first.handled if o < start[p]}
                         | {(p, o) for p, o in restart.handled if o < restart_at[p]})),
        replay=replay,
        uncommitted=sum(log.lag(name).values()),
        in_order=_in_offset_order(first.handled) and _in_offset_order(restart.handled),
        returned=" and ".join(wrong) or "the number of records it handled",
        crashed_on=first.crashed_on,
        replayed=len(replayed),
        unreached=any(offset >= at[p] for p, offset in lost),
    )


def _positions(records: Sequence[_Rec], partitions: int) -> Iterator[tuple[int, int, _Rec]]:
    """Each record with its partition and offset."""
    offsets = dict.fromkeys(range(partitions), 0)
    for r in records:
        yield r.partition, offsets[r.partition], r
        offsets[r.partition] += 1


def _consume_model(*, commit: str = "each batch") -> Callable[..., int]:
    """The solution's consumer (``commit="each batch"``), or one committing only full batches, at the end, or never."""
    def consume_at_least_once(log: Log, name: str, handle: Callable[[Record], Any], batch: int) -> int:
        consumer = log.consumer(name)
        handled = 0
        while records := consumer.poll(batch):
            for record in records:
                handle(record)
            if commit == "each batch" or (commit == "full batches" and len(records) == batch):
                consumer.commit()
            handled += len(records)
        if commit == "at the end":
            consumer.commit()
        return handled

    return consume_at_least_once


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _describe_delivery(case: Case) -> str:
    records, partitions, name, other, batch, crash_at = case.args
    waiting = sum(not r.committed for r in records)
    crash = (f"a handle that crashes on its {_ordinal(crash_at)} call" if crash_at is not None
             else "a handle that never crashes")
    if crash_at is not None and crash_at > waiting:  # a shrunk case may have fewer records than the crash needs
        crash += f" (never reached: {waiting} record{'s' * (waiting != 1)} to handle)"
    return f"with batch={batch}, {crash}, and {_show_log(records, partitions, name, other)}"


def _show_positions(positions: Sequence[tuple[int, int]]) -> str:
    by: dict[int, list[int]] = {}
    for p, o in positions:
        by.setdefault(p, []).append(o)
    shown = "; ".join(f"partition {p} offset{'s' * (len(o) > 1)} {', '.join(map(str, o[:8]))}{', …' * (len(o) > 8)}"
                      for p, o in sorted(by.items()))
    return f"{len(positions)} record{'s' * (len(positions) != 1)} ({shown})"


def _show_delivery(d: Any) -> str:
    if not isinstance(d, _Delivery):
        return repr(d)
    parts = [{"stopped at the crash": "the first call stopped at the crash",
              "went on after the crash": "the first call went on after handle crashed",
              "returned": "the first call returned"}[d.first]]
    parts.append(f"{_show_positions(d.lost)} never handled" if d.lost else "no record lost")
    if d.again:
        parts.append(f"{_show_positions(d.again)} handled twice in one run")
    if d.old:
        parts.append(f"{_show_positions(d.old)} handled although committed when the call began")
    parts.append(f"the restart handled again {d.replay}")
    parts.append(f"{d.uncommitted} records left uncommitted" if d.uncommitted else "everything committed at the end")
    if not d.in_order:
        parts.append("records of a partition handled out of offset order")
    parts.append(f"returned {d.returned}")
    return "[" + "; ".join(parts) + "]"


def _delivery_cases() -> Iterator[Case]:
    rng = random.Random(302)
    keys = _keys(2)
    t = COURSE_START

    def rec(p: int, i: int, committed: bool = False) -> _Rec:
        at = t + timedelta(seconds=5 * i)
        return _Rec(p, OrderEvent(keys[p][i], "customer-0", "placed", 10.0, at, at), committed)

    four = [rec(0, 0), rec(1, 0), rec(0, 1), rec(1, 1)]
    # By hand, the edges first: an empty log; one record; crashes on the first record, right after it, on the
    # last, several batches in; no crash at all (a second call then finds nothing to do); a consumer that had
    # committed a partition.
    yield Case(([rec(0, 0)], 2, "loyalty", "", 3, 1), "one record, crashing on it")
    yield Case(([], 2, "loyalty", "", 3, None), "an empty log")
    yield Case(([rec(0, 0)], 2, "loyalty", "end", 3, None), "one record, no crash")
    yield Case((four, 2, "loyalty", "", 2, 2), "crashing right after the first record")
    yield Case((four, 2, "loyalty", "", 3, 4), "crashing on the last record")
    yield Case(([rec(i % 2, i // 2) for i in range(10)], 2, "loyalty", "", 2, 9), "crashing in the fifth batch")
    yield Case((four, 2, "loyalty", "start", 2, None), "no crash")
    yield Case(([rec(0, 0, True), rec(0, 1, True), rec(1, 0), rec(1, 1), rec(1, 2)], 2, "billing", "", 2, 3),
               "partition 0 committed before")
    for _ in range(20):
        partitions = rng.randint(1, 3)
        records = _records(rng, rng.randint(0, 10), partitions, start=rng.choice(_STARTS))
        waiting = sum(not r.committed for r in records)
        crash_at = rng.choice((None, 1, 2, waiting - 1, waiting, waiting + 1, rng.randint(1, waiting + 1)))
        yield Case((records, partitions, rng.choice(("loyalty", "billing")), rng.choice(("", "", "start", "end")),
                    rng.randint(1, 5), crash_at if crash_at and crash_at > 0 else None))
    # Long replays: a crash deep in a big batch.
    records = _records(random.Random(3021), 24, 3, empty=False)
    yield Case(([dataclasses.replace(r, committed=False) for r in records], 3, "loyalty", "", 10, 19),
               "a crash deep in a batch")
    # The lesson's log and a fresh one, read from the start, crashing deep in a big batch: their first hundred
    # records or so (a consumer that commits after every record commits each of them: a check stays quick).
    for seed, size, batch, crash_at, label in ((None, 90, 40, 77, "the lesson's log"),
                                               (5, 55, 25, 46, "a fresh log (seed 5)")):
        records = _lesson_records(seed, lambda ends: dict.fromkeys(ends, 0))[:size]
        yield Case((records, PARTITIONS, "loyalty", "", batch, crash_at), label)


def _lost_the_crashed(got: Any, want: Any, case: Case) -> bool:
    return isinstance(got, _Delivery) and got.crashed_on is not None and got.crashed_on in got.lost


def _stopped_early(got: Any, want: Any, case: Case) -> bool:
    return isinstance(got, _Delivery) and got.unreached and not _lost_the_crashed(got, want, case)


def _field(name: str, test: Callable[[Any], bool]) -> Callable[[Any, Any, Case], bool]:
    return lambda got, want, case: isinstance(got, _Delivery) and test(getattr(got, name))


DELIVERY = Exercise(
    solution=_consume_model(),
    cases=lambda: _keeping(_delivery_cases(), _log_spec),
    call=_deliver,
    meaning=lambda answer, case: answer,
    describe=_describe_delivery,
    show=_show_delivery,
    budget=60,
    known=(
        Known("your function carried on after handle crashed, so the record it was handling was never handled, yet "
              "your consumer moved past it. Don't catch the crash: let it stop your function, and the restart will "
              "handle that record again.",
              when=lambda got, want, case: _field("first", lambda first: first == "went on after the crash")(
                  got, want, case) and _lost_the_crashed(got, want, case)),
        Known("your function caught the crash and went on. A crash is the service dying: nothing after it runs in "
              "that process. Don't catch it: let it stop your function; the restart picks up from the last commit.",
              when=_field("first", lambda first: first == "went on after the crash")),
        Known("you committed records that handle had not finished: the one it crashed on, and the rest of its batch. "
              "After the restart nobody handled them: that is *at most* once. Commit only after handle has returned "
              "for every record of the batch.", when=_lost_the_crashed),
        Known("your function returned before handling every record not yet committed: keep polling until a poll "
              "returns nothing.", when=_stopped_early),
        Known("you did not commit before the crash, so the restart handled again every record the first call had "
              "handled. Commit after each batch you have handled.", model=_consume_model(commit="at the end")),
        Known("you did not commit before the crash, so the restart handled again every record the first call had "
              "handled. Commit after each batch you have handled.", model=_consume_model(commit="never")),
        Known("after the crash the restart handled a batch or more again; committing after each batch replays "
              "fewer than `batch` records. Poll at most `batch` records at a time and commit after each.",
              when=lambda got, want, case: isinstance(got, _Delivery) and got.first == "stopped at the crash"
              and got.replay != "fewer than a batch" and not got.old),
        Known("handled records were left uncommitted at the end: commit after the last batch too.",
              model=_consume_model(commit="full batches")),
        Known("your function handled some records twice in one run: handle each record a poll returns once.",
              when=_field("again", bool)),
        Known("handle each partition's records in offset order, as poll returns them.",
              when=_field("in_order", lambda in_order: not in_order)),
        Known("return how many records this call handled.",
              when=_field("returned", lambda returned: returned != "the number of records it handled")),
    ),
)


@checker
def at_least_once(fn: Callable[[Log, str, Callable[[Record], None], int], Any]) -> Feedback:
    """Check ``consume_at_least_once(log, name, handle, batch)``: crash, restart, and nothing is lost."""
    with _check_run():
        answers = DELIVERY.compare(fn)
    replays = [answer.replayed for case, answer in answers if case.label.startswith(("the lesson's", "a fresh"))]
    return correct(
        f"after each crash the restart replayed only what had been handled but not yet committed "
        f"({' and '.join(map(str, replays))} records) and lost nothing: at least once."
    )


# -- 3. Replays, handled once ----------------------------------------------------------------------

def _deliver_at_least_once(
    log: Log, name: str, handler: Callable[[Record], Any], batch: int, crashes_at: dict[int, int]
) -> tuple[int, int, int]:
    """Feed ``handler`` as an at-least-once consumer would, crashing before some commits.

    Returns how many crashes, replays and deliveries there were.

    ``crashes_at`` maps a poll (counted from 0) to how many of its records are
    handled before the service dies, before it could commit that poll.
    """
    consumer = log.consumer(name)
    crashes = replayed = polls = deliveries = 0
    seen: set[tuple[int, int]] = set()
    while records := consumer.poll(batch):
        crash_after = crashes_at.get(polls)
        polls += 1
        for i, record in enumerate(records):
            if (record.partition, record.offset) in seen:
                replayed += 1
            seen.add((record.partition, record.offset))
            deliveries += 1
            handler(record)
            if i + 1 == crash_after:
                break
        else:
            consumer.commit()
            continue
        # The process died before committing: a restart opens the consumer at its committed offsets.
        crashes += 1
        consumer = log.consumer(name)
    return crashes, replayed, deliveries


@dataclass(frozen=True)
class _Heard:
    """What reached ``handle`` through the learner's wrapper: per partition, the offsets in the order they came.

    The fields after ``offsets`` describe the delivery (the same for every
    answer): kept for the final message, never compared.
    """

    offsets: tuple[tuple[int, tuple[int, ...]], ...]
    deliveries: int = field(default=0, compare=False)
    replays: int = field(default=0, compare=False)
    crashes: int = field(default=0, compare=False)


def _heard(fn: Callable[[Callable[[Record], Any]], Callable[[Record], Any]], case: Case) -> Any:
    """Deliver the case's log through ``fn(handle)`` at least once, crashing as the case says; what reached handle."""
    records, partitions, batch, crashes_at = case.args
    # The consumer starts at its committed offsets: part-way through a partition, when the case says so.
    log = _log([r.event for r in records], partitions, {"payments": _committed(records, partitions)})
    received: list[Any] = []
    try:
        wrapped = fn(received.append)
    except (NotImplementedError, Mistake):
        raise
    except Exception as error:
        return _raised(error, log)
    if not callable(wrapped):
        raise Mistake(f"return a function that takes a record (a wrapper around handle); got {type(wrapped).__name__}.")
    try:
        crashes, replays, deliveries = _deliver_at_least_once(log, "payments", wrapped, batch, dict(crashes_at))
    except (NotImplementedError, Mistake):
        raise
    except Exception as error:
        return _raised(error, log)
    odd = next((r for r in received if not isinstance(r, Record)), None)
    if odd is not None:
        raise Mistake(f"pass handle the record itself, as you got it; you passed a {type(odd).__name__}.")
    heard: dict[int, list[int]] = {}
    for r in received:
        heard.setdefault(r.partition, []).append(r.offset)
    return _Heard(tuple((p, tuple(o)) for p, o in sorted(heard.items())), deliveries, replays, crashes)


def _once_model(skip: Callable[[dict[Any, Any], Record], bool]) -> Callable[..., Callable[[Record], Any]]:
    """A wrapper that skips a record when ``skip(state, record)``; the state notes each partition's last offset handled,
    the last offset handled in any partition (``"any"``) and the keys handled (``"keys"``)."""
    def once_per_record(handle: Callable[[Record], Any]) -> Callable[[Record], Any]:
        state: dict[Any, Any] = {"keys": set()}

        def handle_once(record: Record) -> None:
            if skip(state, record):
                return
            handle(record)
            state[record.partition] = record.offset
            state["any"] = record.offset
            state["keys"].add(record.key)

        return handle_once

    return once_per_record


def _once_cases() -> Iterator[Case]:
    rng = random.Random(303)
    keys = _keys(3)
    t = COURSE_START

    def order_records(partitions: int, orders: int) -> list[_Rec]:
        """Orders of one to three events each (placed, paid, shipped), their records interleaved in the log."""
        taken = dict.fromkeys(range(partitions), 0)
        lives = []
        for _ in range(orders):
            p = rng.randrange(partitions)
            key = _keys(partitions)[p][taken[p]]
            taken[p] += 1
            lives.append([(p, key, kind) for kind in ("placed", "paid", "shipped")[: rng.randint(1, 3)]])
        out = []
        while any(lives):
            life = rng.choice([life for life in lives if life])
            p, key, kind = life.pop(0)
            at = t + timedelta(seconds=5 * (len(out) // 2))  # two records a time: ties
            out.append(_Rec(p, OrderEvent(key, "customer-0", kind, 10.0, at, at)))
        return out

    # By hand, the edges first: one record delivered twice; the first record of every partition replayed (offset
    # 0 everywhere); the same offsets in two partitions; a crash before anything was committed.
    one = [_Rec(0, OrderEvent(keys[0][0], "customer-0", "placed", 10.0, t, t))]
    yield Case((one, 3, 2, ((0, 1),)), "one record, delivered twice")
    two = [_Rec(p, OrderEvent(keys[p][i], "customer-0", "placed", 10.0, t, t)) for i in range(2) for p in range(2)]
    yield Case((two, 3, 2, ((0, 2), (2, 1))), "two partitions, crashes in two polls")
    for i in range(22):
        partitions = rng.randint(1, 3)
        records = order_records(partitions, rng.randint(1, 6))
        if i % 2:  # the wrapper made when the consumer had committed part of each partition: offsets start later
            done = {p: rng.randint(0, 3) for p in range(partitions)}
            records = [dataclasses.replace(r, committed=True) if sum(
                x.partition == r.partition for x in records[:j]) < done[r.partition] else r
                for j, r in enumerate(records)]
        batch = rng.randint(1, 5)
        polls = len(records) // batch + 3
        crashes = {rng.randrange(polls): rng.randint(1, batch) for _ in range(rng.randint(0, 3))}
        yield Case((records, partitions, batch, tuple(sorted(crashes.items()))))
    # The lesson's log, a fresh one, and a long replay (a crash after 480 records of a poll of 500: a wrapper that
    # remembers only the last few records lets the replay through).
    for seed, batch, crashes_at, label in ((None, 60, ((1, 17), (4, 33), (5, 2)), "the lesson's log"),
                                          (5, 45, ((0, 44), (3, 9), (9, 30), (10, 1)), "a fresh log"),
                                          (6, 500, ((0, 480),), "a long replay")):
        # Not shrunk (items=None): a log of hundreds of records, delivered again for each smaller one, costs seconds.
        records = _lesson_records(seed, lambda ends: dict.fromkeys(ends, 0))
        yield Case((records, PARTITIONS, batch, crashes_at), label, items=None)


def _describe_once(case: Case) -> str:
    records, partitions, batch, crashes_at = case.args
    by: dict[int, list[str]] = {p: [] for p in range(partitions)}
    for p, offset, r in _positions(records, partitions):
        by[p].append(f"{offset} ({r.event.order_id} {r.event.kind}, arrived {show_time(r.event.arrival_time)})")
    if len(records) > 12:
        log = "\n".join(f"  partition {p}: {len(mine)} records" for p, mine in by.items())
    else:
        log = "\n".join(f"  partition {p}: {', '.join(mine) or 'no records'}" for p, mine in by.items())
    crashes = "; ".join(f"after {n} record{'s' * (n != 1)} of poll {poll + 1}" for poll, n in crashes_at)
    done = _committed(records, partitions)
    start = ("" if not any(done.values()) else
             "the consumer (and your wrapper) starting at the committed offsets "
             + ", ".join(f"{o} in partition {p}" for p, o in done.items()) + ", ")
    return (f"a log of {partitions} partition{'s' * (partitions != 1)} (offset, order, kind, arrival):\n{log}\n{start}"
            f"delivered in polls of {batch}, each committed once handled, "
            + (f"the service crashing {crashes} (a restart then polls again from the committed offsets)" if crashes
               else "the service never crashing"))


def _show_heard(heard: Any) -> str:
    if not isinstance(heard, _Heard):
        return repr(heard)
    if not heard.offsets:
        return "nothing reached handle"

    def offsets(o: tuple[int, ...]) -> str:
        if o == tuple(range(len(o))) and len(o) > 3:
            return f"offsets 0 to {len(o) - 1}, once each"
        twice = len(o) - len(set(o))
        listed = f"offset{'s' * (len(o) > 1)} {', '.join(map(str, o[:12]))}{', …' * (len(o) > 12)}"
        return listed + (f" ({len(o)} in all, {twice} of them again)" if len(o) > 12 and twice else "")

    return "handle got " + "; ".join(f"partition {p} {offsets(o)}" for p, o in heard.offsets)


def _twice(got: Any, want: Any, case: Case) -> bool:
    return isinstance(got, _Heard) and any(len(set(o)) < len(o) for _, o in got.offsets)


ONCE = Exercise(
    solution=_once_model(lambda state, record: record.offset <= state.get(record.partition, -1)),
    cases=lambda: _keeping(_once_cases(), lambda case: (
        [r.event for r in case.args[0]], case.args[1], {"payments": dict.fromkeys(range(case.args[1]), 0)})),
    call=_heard,
    meaning=lambda answer, case: answer,
    describe=lambda case: f"with {_describe_once(case)}",
    show=_show_heard,
    budget=40,
    state_hint=(
        "a wrapper made by one call shares what it remembers with the wrappers made before (a variable outside the "
        "function, or a default argument's value): called twice with the same deliveries, it let other records through. Keep the offsets in the "
        "wrapper's own state, made afresh on each call"
    ),
    known=(
        Known("records replayed after a crash reached handle a second time: payments counted their money twice. "
              "What does a record's partition and offset tell you about a record you have already handled?",
              when=_twice),
        Known("the first record of each partition never reached handle: offsets count from 0, so before anything "
              "is handled the next offset expected is 0.",
              model=_once_model(lambda state, record: record.offset <= state.get(record.partition, 0))),
        Known("you kept one offset for the whole log. Offsets count per partition (partition 1 has an offset 5 as "
              "partition 0 does): keep the next offset expected for each partition.",
              model=_once_model(lambda state, record: record.offset <= state.get("any", -1))),
        Known("you skipped records whose key you had seen before. One order has several records (placed, paid, "
              "shipped): a replay is the same *position* (partition, offset), not the same key.",
              model=_once_model(lambda state, record: record.key in state["keys"])),
    ),
)


@checker
def once_per_record(fn: Callable[[Callable[[Record], Any]], Callable[[Record], Any]]) -> Feedback:
    """Check ``once_per_record(handle)``: delivered at least once, with crashes, ``handle`` sees each record once."""
    with _check_run():
        answers = {case.label: answer for case, answer in ONCE.compare(fn)}
    lesson, fresh, long = answers["the lesson's log"], answers["a fresh log"], answers["a long replay"]
    return correct(
        f"{lesson.deliveries} and {fresh.deliveries} deliveries, of which {lesson.replays} and {fresh.replays} were "
        f"replays after {lesson.crashes} and {fresh.crashes} crashes, and a replay of {long.replays} records in a "
        "row: handle saw every record exactly once, so payments counted each amount once."
    )


# -- 4. The table as a dataflow over the log -------------------------------------------------------

_NOT_A_STREAM = (
    "return the stream your last step makes (op.stateful_map returns it), a stream of (order id, order) pairs; "
    "you returned {what}."
)

_KEY_BY_ORDER = (
    "the state of a step is kept per key, and here one state mixes several orders: each order's state must be "
    "that order alone. What in a record names its order?"
)


def _table_call(fn: Callable[[Any], Any], case: Case) -> Any:
    """Run ``fn`` as the exercise does: the log's records in (``LogSource``), whatever it returns collected."""
    # Imported here: the other checks of this lesson need no bytewax.
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow, Stream
    from bytewax.testing import TestingSink, run_main

    from streamlab.stream import LogSource
    from streamlab.stream.runner import quiet_rust_errors

    events, partitions = case.args
    log = _log(events, partitions)
    flow = Dataflow("orders_table_check")
    try:
        # Its stateful steps resumed from snapshots once every answer is right (see TABLE): orders kept outside show.
        with resumed_steps(show_items=_show_records):
            out = fn(op.input("log", flow, LogSource(log)))
    except (NotImplementedError, Mistake):
        raise
    except Exception as error:
        return _raised(error, log)
    if not isinstance(out, Stream):
        raise Mistake(_NOT_A_STREAM.format(what="None" if out is None else f"a {type(out).__name__}"))
    items: list[Any] = []
    op.output("collect", out, TestingSink(items))
    try:
        # A step of theirs that raises must not print bytewax's panic notice in the cell.
        with quiet_rust_errors():
            run_main(flow)
    except Exception as error:  # the learner's step raised: an outcome, shown with its case
        if isinstance(dataflow_cause(error), Mistake):  # a resumed step answered differently
            raise dataflow_cause(error) from None
        return _raised(error, log)
    return items


def _show_records(records: list[Any]) -> str:
    """Log records as a resumed step got them again: where each is, and its order."""
    shown = ", ".join(f"{r.partition}:{r.offset} {r.key}" if isinstance(r, Record) else repr(r)[:60]
                      for r in records[:12])
    more = f" and {len(records) - 12} more" if len(records) > 12 else ""
    head = "this 1 record" if len(records) == 1 else f"these {len(records)} records"
    return f"{head} (partition:offset, order): {shown}{more}"


def _table_solution(records: Any) -> Any:
    """The solution notebook's dataflow: keyed by order id, each order folded with ``orders.apply``."""
    import bytewax.operators as op

    def step(order: Order | None, record: Record) -> tuple[Order | None, Order | None]:
        try:
            order = apply(order, from_record(record))
        except RejectedEvent:
            pass  # an event that does not fit: the order stays as it was
        return order, order

    return op.stateful_map("apply", op.key_on("by_order", records, lambda record: record.key), step)


def _blindly(records: Any) -> Any:
    """A model of a mistake: each order built from its latest event alone, the rule never asked."""
    import bytewax.operators as op

    def step(order: Order | None, record: Record) -> tuple[Order, Order]:
        e = from_record(record)
        order = Order(e.order_id, e.customer, e.kind, e.amount, e.event_time)
        return order, order

    return op.stateful_map("apply", op.key_on("by_order", records, lambda record: record.key), step)


def _table_meaning(items: Any, case: Case) -> Any:
    """The learner's changelog: per key, each new version of its order in the order emitted, as plain fields.

    A version emitted again unchanged (after an event the rule refuses) and
    ``None`` (no order yet) are left out: what must match is every change, as it
    came, and so the latest version, which is the table. A dataflow that waits
    for the end of the log to emit each order once has no history to match: a
    log has no end.
    """
    if isinstance(items, Raised):
        return items
    table: dict[str, list[tuple[Any, ...]]] = {}
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise Mistake(
                f"your stream must carry (order id, order) pairs, as op.key_on and op.stateful_map make them; "
                f"one item was {item!r:.80}."
            )
        key, value = item
        if value is None:
            continue
        if not isinstance(value, Order):
            what = "log record" if isinstance(value, Record) else "order event" if isinstance(value, OrderEvent) \
                else type(value).__name__
            raise Mistake(
                f"emit the order (an orders.Order, what orders.apply returns), not the {what}: the table holds "
                "what each order is now, not what happened to it."
            )
        version = (value.order_id, value.customer, value.status, float(value.amount), pd.Timestamp(value.updated_at))
        versions = table.setdefault(str(key), [])
        if not versions or versions[-1] != version:
            versions.append(version)
    return {key: tuple(versions) for key, versions in sorted(table.items())}


def _show_table(table: Any) -> str:
    """Each order's latest version, and the statuses it went through on the way."""
    if not isinstance(table, dict):
        return repr(table)
    if not table:
        return "an empty table"
    rows = []
    for key, versions in list(table.items())[:12]:
        order_id, customer, status, amount, updated = versions[-1]
        path = " → ".join(v[2] for v in versions)
        rows.append(f"{key}: {'' if order_id == key else f'the order {order_id}, '}{status}, {customer}, {amount:g}, "
                    f"updated {show_time(updated.to_pydatetime())} (emitted as {path})")
    more = f"; and {len(table) - 12} more orders" if len(table) > 12 else ""
    return "{" + "; ".join(rows) + more + "}"


def _only_at_the_end(got: Any, want: Any, case: Case) -> bool:
    """Each order emitted once, as it is at the end of the log: the batch table, waited for."""
    return (isinstance(got, dict) and isinstance(want, dict) and got.keys() == want.keys()
            and any(len(v) > 1 for v in want.values())
            and all(len(got[k]) == 1 and got[k][-1] == want[k][-1] for k in want))


def _show_order_log(events: Sequence[OrderEvent], partitions: int) -> str:
    plural = "s" * (partitions != 1)
    if not events:
        return f"an empty log of {partitions} partition{plural}"
    layout = Log(Path("unused"), partitions)  # only its partitioner
    if len(events) > 14:
        return (f"a log of {partitions} partition{plural} holding {len(events)} records of "
                f"{len({e.order_id for e in events})} orders")
    offsets = dict.fromkeys(range(partitions), 0)
    lines = []
    for e in events:
        p = layout.partition_for(e.order_id)
        lines.append(f"  {p}:{offsets[p]}  {e.order_id}, {e.customer}, {e.kind}, {e.amount:g}, happened "
                     f"{show_time(e.event_time)}")
        offsets[p] += 1
    head = "this 1 record" if len(events) == 1 else f"these {len(events)} records"
    return (f"a log of {partitions} partition{plural} holding {head}, as appended (partition:offset, order, "
            f"customer, kind, amount, happened):\n" + "\n".join(lines))


#: The paths an order's life can take.
_PATHS = (("placed",), ("placed", "paid"), ("placed", "paid", "shipped"), ("placed", "cancelled"),
          ("placed", "paid", "cancelled"))


def _order_events(rng: random.Random, orders: int) -> list[OrderEvent]:
    """A small log's events, made to hit the fold's edges.

    Orders updated up to three times, times on a 30-second grid, and trouble
    upstream as a log may hold it: an event appended twice (a producer that
    retried), an event appended before its order's *placed*, an event for an
    order nobody placed, a payment of another amount, an event after the order
    was shipped or cancelled.
    """
    step = timedelta(seconds=30)
    events: list[OrderEvent] = []
    for i in range(orders):
        customer, amount = f"customer-{rng.randrange(3)}", rng.choice((10.0, 25.5, 40.0))
        at = COURSE_START + step * rng.randint(0, 2 * orders)
        arrival = at
        for kind in rng.choice(_PATHS):
            arrival = max(arrival, at + step * rng.choice((0, 0, 1, 2)))
            events.append(OrderEvent(f"order-{i}", customer, kind, amount, at, arrival))
            at += step * rng.randint(0, 2)
    events.sort(key=lambda e: e.arrival_time)  # stable: each order's events keep their order
    for _ in range(rng.choice((0, 1, 1, 2, 3)) if events else 0):
        i = rng.randrange(len(events))
        e = events[i]
        trouble = rng.choice(("twice", "early", "nobody's", "other amount", "after the end"))
        if trouble == "twice":
            events.insert(min(len(events), i + rng.randint(1, 3)), e)
        elif trouble == "early" and e.kind != "placed":
            first = next(j for j, x in enumerate(events) if x.order_id == e.order_id)
            events.insert(first, events.pop(i))
        elif trouble == "nobody's":
            events.insert(i, dataclasses.replace(e, order_id="order-9", kind=rng.choice(("paid", "shipped"))))
        elif trouble == "other amount":
            events.insert(i + 1, dataclasses.replace(e, kind="paid", amount=e.amount + 5.0))
        else:
            events.append(dataclasses.replace(e, kind=rng.choice(("paid", "cancelled")), event_time=e.event_time + step,
                                              arrival_time=e.arrival_time + step))
    return events


def _table_cases() -> Iterator[Case]:
    rng = random.Random(304)
    t = COURSE_START
    one = OrderEvent("order-0", "customer-0", "placed", 10.0, t, t)
    life = [one, *(dataclasses.replace(one, kind=k, event_time=t + timedelta(minutes=i), arrival_time=t + timedelta(
        minutes=i)) for i, k in enumerate(("paid", "paid", "shipped", "cancelled", "placed"), 1))]
    # By hand, the edges first: one record, an empty log, one order updated many times (with repeats the rule
    # refuses), one order's events before it was placed.
    yield Case(([one], 3), "one record")
    yield Case(([], 2), "an empty log")
    yield Case((life, 2), "one order updated many times")
    yield Case(([life[1], one, life[3]], 1), "an order paid before it was placed")
    for _ in range(26):
        yield Case((_order_events(rng, rng.randint(1, 5)), rng.randint(1, 4)))
    # The lesson's log, a fresh one, and one with events out of order and one appended twice: long replays.
    yield Case((list(_events(None)), PARTITIONS), "the lesson's hour")
    yield Case((list(_events(5)), PARTITIONS), "a fresh log")
    yield Case((list(_disordered()), PARTITIONS), "a log with events out of order")


def _raised_error(kind: type, text: str = "") -> Callable[[Any, Any, Case], bool]:
    return lambda got, want, case: isinstance(got, Raised) and issubclass(got.error, kind) and text in got.message


def _skips_placed(records: Any) -> Any:
    """A model of a mistake: an order's version emitted only when it changes, never its first (placed)."""
    import bytewax.operators as op

    def step(order: Order | None, record: Record) -> tuple[Order | None, list[Order]]:
        try:
            new = apply(order, from_record(record))
        except RejectedEvent:
            return order, []
        return new, [new] if order is not None else []

    return op.stateful_flat_map("apply", op.key_on("by_order", records, lambda record: record.key), step)


TABLE = Exercise(
    solution=_table_solution,
    cases=lambda: _keeping(_table_cases(), lambda case: (*case.args, {})),
    call=_table_call,
    meaning=_table_meaning,
    describe=lambda case: f"with {_show_order_log(*case.args)}",
    show=_show_table,
    budget=50,
    resume=100,  # every case, its stateful steps resumed from snapshots at the end: orders kept outside show then
    known=(
        Known("orders.apply refused an event and your dataflow stopped. Some events do not fit their order (one "
              "that came before its order was placed, or came twice): catch orders.RejectedEvent and keep the order "
              "as it was.", when=_raised_error(RejectedEvent)),
        Known(_KEY_BY_ORDER, when=_raised_error(ValueError, "applied to order")),
        Known("your step got a log record, not an order event: orders.from_record(record) decodes it.",
              when=_raised_error(AttributeError, "Record")),
        Known(_KEY_BY_ORDER, when=lambda got, want, case: isinstance(got, dict) and any(
            version[0] != key for key, versions in got.items() for version in versions)),
        Known("your dataflow emits each order once, when the log has been read to its end: that is the batch "
              "table, and a log that never ends would never get it. Emit each order's new version as its event "
              "comes.", when=_only_at_the_end),
        Known("your table misses some of the log's orders: emit every order's version, including the first "
              "(placed).", model=_skips_placed),
        Known("some orders took the status of an event that does not fit them (one that came before its order was "
              "placed, or came twice). Don't build the order from the event alone: orders.apply(order, event) "
              "checks it against the order as it is, and raises orders.RejectedEvent for such an event; then keep "
              "the order as it was.", model=_blindly),
    ),
)


@checker
def table_flow(fn: Callable[[Any], Any]) -> Feedback:
    """Check ``orders_flow(records)``: run in a dataflow reading a log, its last version per order is the table."""
    with _check_run():
        answers = TABLE.compare(fn)
    sizes = {case.label: len(answer) for case, answer in answers}
    lesson, fresh, disordered = (sizes[label] for label in ("the lesson's hour", "a fresh log",
                                                             "a log with events out of order"))
    return correct(
        f"your dataflow read each log through LogSource and emitted every order's new version as it came; the "
        f"latest version of every order is the batch table: "
        f"{lesson} orders in the lesson's hour, {fresh} in a fresh log, and {disordered} in a log with events out of "
        "order and one appended twice, which you left out as the rule says."
    )
