"""Lesson 07's validation: what checking every event against the rule table costs, per event, in each driver.

The input is a day of order events on the wire (magic byte, schema id, Avro
body), all valid, so that every contender processes every one and their
answers can be compared: the events, with their positions. Decoding is part of
every contender (without it there is no record to process); what differs is
whether each record is then validated (the pydantic model built from the rule
table, a dead-letter branch in the dataflow) or turned into an event as it is.

- The first group times the drivers against the plain loop that does what the
  validated stream does per event: :func:`streamlab.schemas.validate`.
- The second group is the lesson's claim: the validated stream against the
  same dataflow without validation (decode, build the event, output), so the
  ratio is what validating costs per event in the stream.
- The third group is the same question without bytewax: the plain loop with
  and without validation.
"""

from __future__ import annotations

from typing import Any

import bytewax.operators as op
import pandas as pd
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource

from streamlab import batch, stream
from streamlab.bench import SEED, Benchmark, Contender, Group, frame_difference
from streamlab.orders import OrderEvent, order_pipe, take
from streamlab.schemas import DeadLetter, Validated, decode, encode, events_frame, validate
from streamlab.stream.runner import DEFAULT_BATCH_SIZE, run_flow

EVENTS, QUICK_EVENTS = 100_000, 3_000


def wire_messages(n: int) -> list[bytes]:
    """``n`` valid order events of the seeded pipe, as wire messages (schema id 1)."""
    return [encode(e) for e in take(order_pipe(seed=SEED, rate=2.0), n)]


def loop_validated(payloads: list[bytes]) -> list[Any]:
    """The plain loop with validation: :func:`~streamlab.schemas.validate` on every message, in order."""
    return [validate(p, source=f"orders#{i}", position=i) for i, p in enumerate(payloads)]


def _event(payload: bytes) -> OrderEvent:
    r = decode(payload)
    return OrderEvent(r["order_id"], r["customer"], r["kind"], r["amount"], r["event_time"], r["arrival_time"])


def loop_unvalidated(payloads: list[bytes]) -> list[OrderEvent]:
    """The plain loop without validation: decode, build the event (a bad message would raise and stop it)."""
    return [_event(p) for p in payloads]


def stream_unvalidated(payloads: list[bytes]) -> Validated:
    """The lesson's dataflow without the rule table: decode and build each event, one output, no dead-letter branch.

    Its answer is packaged as :func:`streamlab.stream.validate_orders` packages its own (a frame of the
    events with their positions), so that the two differ by the validation only.
    """
    out: list[tuple[int, OrderEvent]] = []
    flow = Dataflow("unvalidated")
    numbered = op.input("payloads", flow, TestingSource(list(enumerate(payloads)), DEFAULT_BATCH_SIZE))
    op.output("events", op.map("decode", numbered, lambda item: (item[0], _event(item[1]))), TestingSink(out))
    run_flow(flow)
    return Validated(events_frame(out), [], len(payloads))


def _answer(result: Any) -> tuple[pd.DataFrame, int]:
    """Any contender's result as (the events frame, how many dead letters)."""
    if isinstance(result, Validated):
        return result.events, len(result.letters)
    pairs, dead = [], 0
    for i, item in enumerate(result):
        if isinstance(item, tuple):
            pairs.append(item)
        elif isinstance(item, DeadLetter):
            dead += 1
        else:
            pairs.append((i, item))
    return events_frame(pairs), dead


def _check(result: Any, expected: tuple[pd.DataFrame, int]) -> str | None:
    events, dead = _answer(result)
    if dead != expected[1]:
        return f"{dead} dead letters, the reference {expected[1]}"
    return frame_difference(expected[0], events, "the events")


def benchmark(quick: bool = False) -> Benchmark:
    """The validation benchmark over a day of valid wire messages (a small one with ``quick``)."""
    n = QUICK_EVENTS if quick else EVENTS
    payloads = wire_messages(n)
    validated = Contender("plain Python loop (`schemas.validate`: decode, the pydantic model, the event)",
                          loop_validated, _check)
    stream_validated = Contender("**stream**, validated (bytewax: `validate`, a dead-letter branch, batch_size=1000)",
                                 lambda data: stream.validate_orders(data), _check)
    unvalidated_stream = Contender("stream without validation (bytewax: decode, build the event, batch_size=1000)",
                                   stream_unvalidated, _check)
    unvalidated_loop = Contender("plain Python loop without validation (decode, build the event)",
                                 loop_unvalidated, _check)
    drivers = Group(
        f"{n:,} valid wire messages", payloads, n, validated,
        (stream_validated,
         Contender("**pandas + pandera**, end to end (decode each, one frame, lazy validation)",
                   lambda data: batch.validate_orders(data), _check)),
        answer=_answer,
    )
    cost = Group(
        "What validating costs in the stream (the lesson's claim: at most 2×)", payloads, n, unvalidated_stream,
        (stream_validated,), answer=_answer, baseline="the stream without validation",
    )
    plain = Group(
        "What validating costs in a plain loop", payloads, n, unvalidated_loop,
        (validated,), answer=_answer, baseline="the loop without validation",
    )
    size = sum(len(p) for p in payloads) / n
    return Benchmark(
        "schemas", "Lesson 07: validating every event against the rule table", "events",
        [drivers, cost, plain],
        notes=[f"{n:,} order events, {size:.0f} bytes each on the wire on average; every one valid, so every "
               "contender processes all of them and the answers (events and positions) are compared first."],
    )
