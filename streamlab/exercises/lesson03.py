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

Each check builds its logs in a temporary directory (from the lesson's order
pipe and from fresh ones) and never shows where: a message that would name the
directory names it ``<log>`` instead.
"""

from __future__ import annotations

import contextlib
import functools
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from streamlab.consumers import Payments
from streamlab.events import COURSE_START, arrived_before
from streamlab.exercises import Feedback, Mistake, checker, correct
from streamlab.exercises.differ import learner_dataflow
from streamlab.log import Log, Record, compacted
from streamlab.orders import Order, OrderEvent, RejectedEvent, from_record, order_pipe, publish, read_log, replay

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


@contextlib.contextmanager
def _scratch_log(seed: int | None | str) -> Iterator[Log]:
    """A fresh log holding the check's events, in a temporary directory whose path no message shows.

    ``seed``: None for the lesson's hour, an int for a fresh pipe, ``"disordered"`` for :func:`_disordered`.
    """
    with tempfile.TemporaryDirectory(prefix="streamlab-exercise-") as tmp:
        log = Log.create(Path(tmp) / "orders", partitions=PARTITIONS)
        publish(log, _disordered() if seed == "disordered" else _events(seed))
        try:
            yield log
        except (Mistake, NotImplementedError):
            raise
        except Exception as error:
            cause = error.__cause__ or error
            if isinstance(cause, NotImplementedError):
                raise
            message = str(cause).replace(str(Path(tmp).resolve()), "<log>").replace(tmp, "<log>")
            raise Mistake(f"your code raised {type(cause).__name__}: {message}") from None


def _arrival(record: Record) -> datetime:
    return from_record(record).arrival_time


# -- 1. Lag in time --------------------------------------------------------------------------------

def _lag_in_time(
    log: Log,
    name: str,
    *,
    first_unread: Callable[[int], int] | None = None,
    oldest: Callable[[list[datetime]], datetime] = min,
    clock: Callable[[Record], datetime] = _arrival,
    local: bool = False,
) -> timedelta:
    """The answer (defaults) and the typical mistakes (another first unread offset, max, event time, per partition)."""
    committed, ends = log.committed(name), log.end_offsets()
    start = first_unread or (lambda p: committed[p])
    newest = max(clock(log.read(p, ends[p] - 1, 1)[0]) for p in ends if ends[p])
    behind = {p: clock(log.read(p, start(p), 1)[0]) for p in ends if start(p) < ends[p]}
    if not behind:
        return timedelta(0)
    if local:
        return max(clock(log.read(p, ends[p] - 1, 1)[0]) - t for p, t in behind.items())
    return newest - oldest(list(behind.values()))


def _event_time(record: Record) -> datetime:
    return from_record(record).event_time


def _set_positions(log: Log) -> dict[str, str]:
    """Consumers at telling positions; returns what each one shows."""
    ends = log.end_offsets()
    log.add_consumer("billing", start="latest")  # caught up: no lag
    log.add_consumer("analytics")  # read nothing yet
    log.add_consumer("loyalty")  # behind most in partition 0, caught up in partition 1
    log.commit("loyalty", {0: ends[0] // 3, 1: ends[1], 2: ends[2] * 2 // 3})
    log.add_consumer("search")  # a little behind everywhere
    log.commit("search", {p: max(1, end - 5 - 3 * p) for p, end in ends.items()})
    return {
        "billing": "has committed everything",
        "analytics": "has read nothing yet",
        "loyalty": "is behind in partitions 0 and 2 and has read all of partition 1",
        "search": "is a few records behind in every partition",
    }


@checker
def time_lag(fn: Callable[[Log, str], Any]) -> Feedback:
    """Check ``time_lag(log, name)``: newest arrival in the log minus the arrival of the oldest uncommitted record."""
    for seed in (None, 5):
        with _scratch_log(seed) as log:
            for name, where in _set_positions(log).items():
                # Measured before the learner's code runs, which might move the consumer.
                want = _lag_in_time(log, name)
                records = sum(log.lag(name).values())
                try:
                    answer = fn(log, name)
                except IndexError as error:
                    raise Mistake(
                        f"your code raised IndexError ({error}) for a consumer that {where}. In a partition it has "
                        "read to the end, log.read(partition, committed) returns []: nothing unread there, skip it."
                    ) from None
                except ValueError as error:
                    if "got -1" in str(error):
                        raise Mistake(
                            "your code read offset -1. The committed offset is the *next* record to read, so the "
                            "oldest record not yet handled is the one *at* the committed offset, not before it."
                        ) from None
                    raise
                if answer is None:
                    raise Mistake(
                        f"your function returned None for a consumer that {where}: return a timedelta "
                        "(timedelta(0) if it is caught up)."
                    )
                if isinstance(answer, (int, float)) and not isinstance(answer, bool):
                    if isinstance(answer, int) and answer == records:
                        raise Mistake(
                            "that is the lag in records (log.lag gives it). This exercise asks for the lag in time: "
                            "return a timedelta."
                        )
                    raise Mistake(f"return a timedelta, not a number; got {type(answer).__name__} {answer!r}.")
                if not isinstance(answer, timedelta):
                    raise Mistake(f"return a timedelta; got {type(answer).__name__}.")
                got = pd.Timedelta(answer)
                if got == want:
                    continue
                if abs(got) > pd.Timedelta(days=2):
                    raise Mistake(
                        "your lag is measured from the wall clock. The course's clock is the events' own: measure "
                        "from the newest record in the log (its arrival_time)."
                    )
                if want == timedelta(0):
                    raise Mistake(f"a consumer that {where} is not behind at all: its lag is timedelta(0).")
                ends = log.end_offsets()
                committed = log.committed(name)
                if all(committed[p] > 0 for p in ends if committed[p] < ends[p]):
                    if got == _lag_in_time(log, name, first_unread=lambda p: committed[p] - 1):
                        raise Mistake(
                            "you measured from the last record the consumer committed. The committed offset is the "
                            "*next* record to read: the oldest record not yet handled is the one at that offset."
                        )
                if got == _lag_in_time(log, name, oldest=max):
                    raise Mistake(
                        f"for a consumer that {where} you measured from the newest of its first unread records. It "
                        "is as far behind as its *oldest* unread record, over all partitions."
                    )
                if got == _lag_in_time(log, name, clock=_event_time):
                    raise Mistake(
                        "you used event_time, when an order happened. Lag is about the log: use arrival_time, when "
                        "the record reached it (in the check, events arrive up to two minutes late)."
                    )
                if got == _lag_in_time(log, name, local=True):
                    raise Mistake(
                        "you measured each partition from its own newest record. 'Now' is the newest record in the "
                        "whole log, whichever partition it is in."
                    )
                more = "more" if got > want else "less"
                raise Mistake(
                    f"for a consumer that {where}, your lag is {more} than the time from its oldest record not yet "
                    "committed to the newest record in the log."
                )
    return correct("your lag says how old the oldest unhandled record is, for every consumer, caught up or not.")


# -- 2. Commit after handling: at least once -------------------------------------------------------

class _Service:
    """The ``handle`` a check passes: it notes every record handled and can crash at its ``crash_at``-th call."""

    def __init__(self, crash_at: int | None = None) -> None:
        self.crash_at = crash_at
        self.calls = 0
        self.handled: list[tuple[int, int]] = []
        self.crashed_on: tuple[int, int] | None = None
        self.not_a_record: Any = None

    def __call__(self, record: Any) -> None:
        if not isinstance(record, Record):
            self.not_a_record = record
            raise TypeError(f"handle takes a log record, got {type(record).__name__}")
        self.calls += 1
        if self.calls == self.crash_at:
            self.crashed_on = (record.partition, record.offset)
            raise Crash(f"the service crashed while handling partition {record.partition}, offset {record.offset}")
        self.handled.append((record.partition, record.offset))


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


@checker
def at_least_once(fn: Callable[[Log, str, Callable[[Record], None], int], Any]) -> Feedback:
    """Check ``consume_at_least_once(log, name, handle, batch)``: crash, restart, and nothing is lost."""
    replays = []
    for seed, batch, crash_at in ((None, 50, 237), (5, 40, 301)):
        with _scratch_log(seed) as log:
            log.add_consumer("loyalty")
            everything = {(r.partition, r.offset) for r in log.records()}
            first = _Service(crash_at)
            try:
                fn(log, "loyalty", first, batch)
            except Crash:
                pass
            except TypeError:
                _not_a_record(first)
                raise
            else:
                _not_a_record(first)
                if first.crashed_on is None:
                    raise Mistake(
                        f"your function returned after handling {first.calls} of the {len(everything)} records not "
                        "yet committed: keep polling until a poll returns nothing."
                    )
                raise Mistake(
                    "your function carried on after handle crashed, so the record it was handling was never handled, "
                    "yet your consumer moved past it. Don't catch the crash: let it stop your function, and the "
                    "restart will handle that record again."
                )
            restart = _Service()
            try:
                returned = fn(log, "loyalty", restart, batch)
            except TypeError:
                _not_a_record(restart)
                raise
            _not_a_record(restart)
            handled_twice = [k for k, n in Counter(restart.handled).items() if n > 1]
            if handled_twice:
                raise Mistake(f"after the restart your function handled {len(handled_twice)} records twice in one run.")
            missing = everything - set(first.handled) - set(restart.handled)
            if missing:
                if first.crashed_on in missing:
                    raise Mistake(
                        "you committed records that handle had not finished: the one it crashed on, and the rest "
                        f"of its batch ({len(missing)} records). After the restart nobody handled them: that is "
                        "*at most* once. Commit only after handle has returned for every record of the batch."
                    )
                raise Mistake(
                    f"{len(missing)} records were never handled: a commit moved past records handle had not seen."
                )
            replayed = set(first.handled) & set(restart.handled)
            if first.handled and replayed == set(first.handled):
                raise Mistake(
                    f"you did not commit before the crash, so the restart handled all {len(replayed)} records again. "
                    "Commit after each batch you have handled."
                )
            if len(replayed) >= batch:
                raise Mistake(
                    f"after the crash the restart replayed {len(replayed)} records; committing after each batch of "
                    f"{batch} replays fewer than {batch}. Poll at most `batch` records at a time and commit after each."
                )
            left = sum(log.lag("loyalty").values())
            if left:
                raise Mistake(
                    f"after the restart, {left} handled records were left uncommitted: commit after the last batch too."
                )
            if not (_in_offset_order(first.handled) and _in_offset_order(restart.handled)):
                raise Mistake("handle each partition's records in offset order, as poll returns them.")
            if returned != len(restart.handled):
                raise Mistake(f"return how many records this call handled; yours returned {returned!r}.")
            replays.append(len(replayed))
    return correct(
        f"after each crash the restart replayed only what had been handled but not yet committed "
        f"({' and '.join(map(str, replays))} records) and lost nothing: at least once."
    )


# -- 3. Replays, handled once ----------------------------------------------------------------------

def _deliver_at_least_once(
    log: Log, name: str, handler: Callable[[Record], Any], batch: int, crashes_at: dict[int, int]
) -> tuple[int, int]:
    """Feed ``handler`` as an at-least-once consumer would, crashing before some commits; return (crashes, replayed).

    ``crashes_at`` maps a poll (counted from 0) to how many of its records are
    handled before the service dies, before it could commit that poll.
    """
    consumer = log.consumer(name)
    crashes = replayed = polls = 0
    seen: set[tuple[int, int]] = set()
    while records := consumer.poll(batch):
        crash_after = crashes_at.get(polls)
        polls += 1
        for i, record in enumerate(records):
            if (record.partition, record.offset) in seen:
                replayed += 1
            seen.add((record.partition, record.offset))
            handler(record)
            if i + 1 == crash_after:
                break
        else:
            consumer.commit()
            continue
        # The process died before committing: a restart opens the consumer at its committed offsets.
        crashes += 1
        consumer = log.consumer(name)
    return crashes, replayed


def _global_offset_skips(records: list[Record]) -> set[tuple[int, int]]:
    """What a handler that keeps one offset for the whole log (not one per partition) would skip."""
    skipped, last = set(), -1
    for record in records:
        if record.offset <= last:
            skipped.add((record.partition, record.offset))
        else:
            last = record.offset
    return skipped


@checker
def once_per_record(fn: Callable[[Callable[[Record], Any]], Callable[[Record], Any]]) -> Feedback:
    """Check ``once_per_record(handle)``: delivered at least once, with crashes, ``handle`` sees each record once."""
    summary = []
    # The lesson's log, the same again (a wrapper that shares what it remembers with the wrappers made before, in
    # a variable outside the function, fails it the second time), a fresh one, and a long replay (a crash after
    # 480 records of a poll of 500: a wrapper that remembers only the last few records lets the replay through).
    lesson = (None, 60, {1: 17, 4: 33, 5: 2})
    cases = (lesson, lesson, (5, 45, {0: 44, 3: 9, 9: 30, 10: 1}), (6, 500, {0: 480}))
    for round_, (seed, batch, crashes_at) in enumerate(cases):
        try:
            summary.append(_once_case(fn, seed, batch, crashes_at))
        except Mistake as mistake:
            if round_ == 1:
                raise Mistake(
                    "your function passed the lesson's log the first time and fails it the second time: a wrapper "
                    "made by one call shares what it remembers with the wrappers made before (a variable outside "
                    "the function). Keep the offsets in the wrapper's own state, made afresh on each call."
                ) from None
            raise mistake from None
    (n1, r1, c1), _, (n2, r2, c2), (_, long_replay, _) = summary
    return correct(
        f"{n1} and {n2} deliveries, of which {r1} and {r2} were replays after {c1} and {c2} crashes, and a replay of "
        f"{long_replay} records in a row: handle saw every record exactly once, so payments counted each amount once."
    )


def _once_case(
    fn: Callable[[Callable[[Record], Any]], Callable[[Record], Any]], seed: int | None, batch: int,
    crashes_at: dict[int, int],
) -> tuple[int, int, int]:
    """One delivery of a log, at least once with crashes, through the learner's wrapper: (deliveries, replays, crashes)."""
    with _scratch_log(seed) as log:
        log.add_consumer("payments")
        payments, received = Payments(), []

        def handle(record: Any) -> None:
            received.append(record)
            if isinstance(record, Record):
                payments.handle(from_record(record))

        wrapped = fn(handle)
        if not callable(wrapped):
            raise Mistake(
                f"return a function that takes a record (a wrapper around handle); got {type(wrapped).__name__}."
            )
        delivered: list[Record] = []
        crashes, replayed = _deliver_at_least_once(
            log, "payments", lambda r: (delivered.append(r), wrapped(r)), batch, crashes_at
        )
        everything = list(log.records())
        if received and not all(isinstance(r, Record) for r in received):
            odd = next(r for r in received if not isinstance(r, Record))
            raise Mistake(f"pass handle the record itself, as you got it; you passed a {type(odd).__name__}.")
        positions = [(r.partition, r.offset) for r in received]
        twice = [k for k, n in Counter(positions).items() if n > 1]
        if twice:
            raise Mistake(
                f"{len(twice)} records replayed after a crash reached handle a second time: payments counted their "
                "money twice. Remember, per partition, the next offset you expect, and skip records before it."
            )
        missing = {(r.partition, r.offset) for r in everything} - set(positions)
        if missing:
            if all(offset == 0 for _, offset in missing):
                raise Mistake(
                    "the first record of each partition never reached handle: offsets count from 0, so before "
                    "anything is handled the next offset expected is 0."
                )
            if missing <= _global_offset_skips(delivered):
                raise Mistake(
                    "you kept one offset for the whole log. Offsets count per partition (partition 1 has an "
                    "offset 5 as partition 0 does): keep the next offset expected for each partition."
                )
            first_seen: dict[str, int] = {}
            for i, r in enumerate(delivered):
                first_seen.setdefault(r.key, i)
            by_key = {(r.partition, r.offset) for i, r in enumerate(delivered) if first_seen[r.key] < i}
            if missing <= by_key:
                raise Mistake(
                    "you skipped records whose key you had seen before. One order has several records (placed, "
                    "paid, shipped): a replay is the same *position* (partition, offset), not the same key."
                )
            raise Mistake(
                f"{len(missing)} records never reached handle: skip only records you have handled before."
            )
        if not _in_offset_order(positions):
            raise Mistake("handle should see each partition's records in offset order, as they were delivered.")
        return len(delivered), replayed, crashes


# -- 4. The table as a dataflow over the log -------------------------------------------------------

_NOT_A_STREAM = (
    "return the stream your last step makes (op.stateful_map returns it), a stream of (order id, order) pairs; "
    "you returned {what}."
)


def _run_table_flow(fn: Callable[[Any], Any], log: Log) -> list[Any]:
    """Run ``fn`` as the exercise does: the log's records in (``LogSource``), whatever it returns collected."""
    # Imported here: the other checks of this lesson need no bytewax.
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow, Stream
    from bytewax.testing import TestingSink, run_main

    from streamlab.stream import LogSource
    from streamlab.stream.runner import quiet_rust_errors

    flow = Dataflow("orders_table_check")
    out = fn(op.input("log", flow, LogSource(log)))
    if not isinstance(out, Stream):
        raise Mistake(_NOT_A_STREAM.format(what="None" if out is None else f"a {type(out).__name__}"))
    items: list[Any] = []
    op.output("collect", out, TestingSink(items))

    def explain(cause: BaseException) -> str | None:
        if isinstance(cause, RejectedEvent):
            return (f"orders.apply refused an event ({cause.reason}) and your dataflow stopped. Some events do not "
                    "fit their order (here one came before its order was placed, or twice): catch "
                    "orders.RejectedEvent and keep the order as it was.")
        if isinstance(cause, ValueError) and "applied to order" in str(cause):
            return _KEY_BY_ORDER
        if isinstance(cause, AttributeError) and "Record" in str(cause):
            return f"your step got a log record, not an order event ({cause}): orders.from_record(record) decodes it."
        return None

    # A step of theirs that raises must not print bytewax's panic notice in the cell.
    with learner_dataflow(explain), quiet_rust_errors():
        run_main(flow)
    return items


_KEY_BY_ORDER = (
    "key the records by order id (op.key_on with record.key): the state of a step is kept per key, and each "
    "order's state is that order. Keyed by anything else, one state mixes several orders."
)


def _table_of(items: list[Any]) -> dict[Any, Any]:
    """The learner's table: the latest version emitted per key (``None``: no order yet)."""
    table: dict[Any, Any] = {}
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise Mistake(
                f"your stream must carry (order id, order) pairs, as op.key_on and op.stateful_map make them; "
                f"one item was {item!r:.80}."
            )
        key, value = item
        if value is not None:
            table[key] = value
    return table


@checker
def table_flow(fn: Callable[[Any], Any]) -> Feedback:
    """Check ``orders_flow(records)``: run in a dataflow reading a log, its last version per order is the table."""
    sizes = []
    for seed in (None, 5, "disordered"):
        with _scratch_log(seed) as log:
            items = _run_table_flow(fn, log)
            want = replay(read_log(log)).table
            got = _table_of(items)
            if not got:
                raise Mistake("your dataflow emitted no order: emit each order's new version (the state you return).")
            odd = next((v for v in got.values() if not isinstance(v, Order)), None)
            if odd is not None:
                what = "log record" if isinstance(odd, Record) else "order event" if isinstance(odd, OrderEvent) \
                    else type(odd).__name__
                raise Mistake(
                    f"emit the order (an orders.Order, what orders.apply returns), not the {what}: the table holds "
                    "what each order is now, not what happened to it."
                )
            if set(got) != set(want):
                if set(got) <= {o.customer for o in want.values()} or set(got) <= {str(p) for p in range(PARTITIONS)}:
                    raise Mistake(_KEY_BY_ORDER)
                extra = set(got) - set(want)
                if extra:
                    raise Mistake(
                        f"your table has {len(extra)} keys that are no order of the log: {_KEY_BY_ORDER}"
                    )
                raise Mistake(
                    f"your table misses {len(set(want) - set(got))} of the log's {len(want)} orders: emit every "
                    "order's version, including the first (placed)."
                )
            if any(v.order_id != k for k, v in got.items()):
                raise Mistake(_KEY_BY_ORDER)
            wrong = [k for k in want if got[k] != want[k]]
            if wrong:
                latest = {k: from_record(r) for k, r in compacted(log).items()}
                blind = all(
                    (got[k].status, got[k].updated_at) == (latest[k].kind, latest[k].event_time) for k in wrong
                )
                if blind:
                    raise Mistake(
                        f"{len(wrong)} orders took the status of an event that does not fit them (one that came "
                        "before its order was placed, or came twice). Don't build the order from the event alone: "
                        "orders.apply(order, event) checks it against the order as it is, and raises "
                        "orders.RejectedEvent for such an event; then keep the order as it was."
                    )
                raise Mistake(
                    f"{len(wrong)} of {len(want)} orders differ from the batch table: fold each order's events with "
                    "orders.apply(order, event), starting from None."
                )
            sizes.append(len(want))
    return correct(
        f"your dataflow read each log through LogSource and its latest version of every order is the batch table: "
        f"{sizes[0]} orders in the lesson's hour, {sizes[1]} in a fresh log, and {sizes[2]} in a log with events out "
        "of order and one appended twice, which you left out as the rule says."
    )

