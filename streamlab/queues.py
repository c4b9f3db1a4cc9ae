"""A queue: competing consumers, each item delivered to exactly one of them, and gone once taken.

The standard library's :class:`queue.Queue` is a real, thread-safe queue:
:func:`compete` starts a producer thread that puts items in and several
consumer threads that take them out, concurrently. Whoever calls ``get()``
first gets the item; nobody else ever sees it, and once the queue is empty a
consumer that arrives late finds nothing of the past (:func:`drain`). That is
the contract of a work queue (RabbitMQ, SQS, a Celery broker) and the opposite
of a log (:mod:`streamlab.log`).

>>> deliveries = compete(range(100), consumers=3)
>>> deliveries.total, deliveries.duplicates, deliveries.missing(range(100))
(100, [], [])
>>> drain(deliveries.queue)    # a new consumer, now
[]
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from streamlab.events import _describe

#: Most consumers (threads) a queue demonstration may start.
MAX_CONSUMERS = 64
#: Most items put on the queue: a demonstration, not a workload.
MAX_ITEMS = 100_000

__all__ = ["Deliveries", "compete", "drain"]

# Put once per consumer after the last item: "no more items, stop".
_STOP = object()


@dataclass(frozen=True)
class Deliveries:
    """What each competing consumer took, in the order it took it, and the queue they took it from."""

    taken: dict[str, list[Any]]
    queue: queue.Queue

    @property
    def counts(self) -> dict[str, int]:
        """How many items each consumer took."""
        return {name: len(items) for name, items in self.taken.items()}

    @property
    def total(self) -> int:
        """Items delivered, over all consumers."""
        return sum(self.counts.values())

    @property
    def duplicates(self) -> list[Any]:
        """Items delivered more than once (to one consumer or to several): always empty for a queue."""
        seen = Counter(item for items in self.taken.values() for item in items)
        return sorted(item for item, n in seen.items() if n > 1)

    def missing(self, items: Iterable[Hashable]) -> list[Any]:
        """Items that were put in but delivered to nobody."""
        delivered = {item for items in self.taken.values() for item in items}
        return [item for item in items if item not in delivered]


def compete(
    items: Iterable[Any],
    consumers: int | Sequence[str] = 3,
    *,
    work: float = 0.0,
    maxsize: int = 0,
) -> Deliveries:
    """Put ``items`` on a queue from one thread while ``consumers`` threads take them, and return who took what.

    :param items: what to put on the queue, in order.
    :param consumers: how many consumers, or their names.
    :param work: seconds each consumer spends on each item (``time.sleep``), so
        that the threads really interleave; 0 for as fast as possible.
    :param maxsize: the queue's capacity (0: unbounded); a full queue makes the
        producer wait for the consumers (back-pressure).

    Who gets which item is up to the thread scheduler and differs from run to
    run; that every item is delivered exactly once does not.
    """
    if isinstance(consumers, int) and not isinstance(consumers, bool):
        if consumers < 1:
            raise ValueError(f"consumers must be >= 1, got {consumers}")
        if consumers > MAX_CONSUMERS:
            raise ValueError(f"consumers must be at most {MAX_CONSUMERS} (each is a thread), got {_describe(consumers)}")
        names = [f"consumer-{i}" for i in range(consumers)]
    else:
        if isinstance(consumers, (str, bytes)) or not isinstance(consumers, Sequence):
            raise TypeError(f"consumers must be a count or a list of names, got {type(consumers).__name__} "
                            f"{consumers!r:.60}")
        if len(consumers) > MAX_CONSUMERS:
            raise ValueError(f"consumers must be at most {MAX_CONSUMERS} names (each is a thread), got {len(consumers)}")
        names = list(consumers)
        if not names or len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"consumers must be a count >= 1 or distinct non-empty names, got {consumers!r}")
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise TypeError(f"items must be an iterable of items (a list), got {type(items).__name__} {items!r:.60}")
    if not isinstance(work, (int, float)) or isinstance(work, bool) or not 0 <= work < 1:
        raise ValueError(f"work must be seconds from 0 to 1, got {work!r}")
    if not isinstance(maxsize, int) or isinstance(maxsize, bool) or maxsize < 0:
        raise ValueError(f"maxsize must be an int >= 0, got {_describe(maxsize)}")

    q: queue.Queue = queue.Queue(maxsize=maxsize)
    taken: dict[str, list[Any]] = {name: [] for name in names}
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            for n, item in enumerate(items):
                if n == MAX_ITEMS:
                    # An endless iterator would keep every thread busy forever: stop it, and say why.
                    raise ValueError(f"items must be at most {MAX_ITEMS:,} (a finite pile), but more kept coming")
                q.put(item)
        except BaseException as err:  # reported below, not lost in a thread
            errors.append(err)
        finally:
            for _ in names:
                q.put(_STOP)

    def consume(name: str) -> None:
        mine = taken[name]  # each thread appends to its own list only
        while True:
            item = q.get()
            if item is _STOP:
                return
            mine.append(item)
            if work:
                time.sleep(work)

    threads = [threading.Thread(target=consume, args=(name,), name=name) for name in names]
    threads.append(threading.Thread(target=produce, name="producer"))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return Deliveries(taken, q)


def drain(q: queue.Queue) -> list[Any]:
    """Take everything a queue holds right now, as a consumer that starts now would get it."""
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except queue.Empty:
            return out
