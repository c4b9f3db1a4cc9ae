"""Validating a pipe of order payloads with bytewax: each event checked as it arrives, the bad ones routed aside.

The twin of :func:`streamlab.batch.validate_orders` (same name, same
signature, same answer). The dataflow: payloads in, one ``map`` that checks
each with :func:`~streamlab.schemas.validate` (decode, then the pydantic
model built from the rule table), one ``branch`` that splits events from dead
letters, and two outputs: the events go on, the dead letters go to the
dead-letter topic (a :class:`~streamlab.log.Log`) when one is given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.testing import TestingSink, TestingSource

from streamlab.registry import Registry
from streamlab.schemas import DeadLetter, Validated, events_frame, finite_payloads, publish_dead_letters, validate
from streamlab.stream.runner import DEFAULT_BATCH_SIZE, run_flow

__all__ = ["DeadLetterSink", "validate_orders"]


class _DeadLetterPartition(StatelessSinkPartition[DeadLetter]):
    def __init__(self, log: Any) -> None:
        self.log = log

    def write_batch(self, items: list[DeadLetter]) -> None:
        publish_dead_letters(self.log, items)


class DeadLetterSink(DynamicSink[DeadLetter]):
    """A bytewax sink that appends dead letters to a dead-letter topic (:func:`~streamlab.schemas.dead_letter_log`)."""

    def __init__(self, log: Any) -> None:
        self.log = log

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _DeadLetterPartition:
        return _DeadLetterPartition(self.log)


def validate_orders(
    payloads: Iterable[Any], *, reader: Any = None, registry: Registry | None = None, source: str = "pile",
    dead_letters: Any = None,
) -> Validated:
    """Validate payloads (Avro bytes or records) one at a time in a bytewax dataflow: events and dead letters.

    See :func:`streamlab.batch.validate_orders` for the arguments; the answer is the same.

    >>> from streamlab.orders import order_pipe, take
    >>> from streamlab.schemas import dirty_payloads
    >>> payloads = [p for _, p in dirty_payloads(take(order_pipe(seed=1), 100), seed=2)]
    >>> validate_orders(payloads).counts().tolist()
    [100, 85, 15]
    """
    payloads = finite_payloads(payloads)
    passed: list[Any] = []
    dead: list[DeadLetter] = []

    def check(item: tuple[int, Any]) -> tuple[int, Any]:
        i, payload = item
        result = validate(payload, position=i, reader=reader, registry=registry)
        if isinstance(result, DeadLetter):
            # Where it came from, written only for the letters: the good path builds no string per event.
            result = replace(result, source=f"{source}#{i}")
        return i, result

    flow = Dataflow("validate_orders")
    checked = op.map("validate", op.input("payloads", flow, TestingSource(list(enumerate(payloads)),
                                                                           DEFAULT_BATCH_SIZE)), check)
    split = op.branch("event or dead letter", checked, lambda item: not isinstance(item[1], DeadLetter))
    op.output("events", split.trues, TestingSink(passed))
    letters = op.map("letter", split.falses, lambda item: item[1])
    op.output("dead letters", letters, TestingSink(dead))
    if dead_letters is not None:
        op.output("dead-letter topic", letters, DeadLetterSink(dead_letters))
    run_flow(flow)
    return Validated(events_frame(passed), sorted(dead, key=lambda d: d.position), len(payloads))
