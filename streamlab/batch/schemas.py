"""Validating a pile of order payloads with pandas and pandera: column by column, every failure at once.

The twin of :func:`streamlab.stream.validate_orders` (same name, same
signature, same answer). The wire is row-shaped (an Avro message is one
record), so each payload is decoded on its own, with the same
:func:`~streamlab.schemas.decode`; the records then become one frame, and
:func:`~streamlab.schemas.pandera_schema` (built from the same rule table as
the stream's pydantic model) validates it lazily: every failing row and field
is found in one pass, and one bad row fails that row only, never the job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from streamlab.registry import Registry
from streamlab.schemas import (
    DeadLetter,
    Validated,
    WireError,
    decode,
    events_frame,
    finite_payloads,
    problems_pandera,
    publish_dead_letters,
    records_frame,
    shape_problem,
    to_event,
)

__all__ = ["validate_orders"]


def validate_orders(
    payloads: Iterable[Any], *, reader: Any = None, registry: Registry | None = None, source: str = "pile",
    dead_letters: Any = None,
) -> Validated:
    """Validate a pile of payloads (Avro bytes or records): the events that pass, and a dead letter for each other one.

    ``reader``, ``registry``: how bytes are decoded (:func:`~streamlab.schemas.decode`).
    ``source``: where the payloads come from; a dead letter's source is
    ``SOURCE#POSITION``. ``dead_letters``: a dead-letter topic
    (:func:`~streamlab.schemas.dead_letter_log`) to append the dead letters to.

    >>> from streamlab.orders import order_pipe, take
    >>> from streamlab.schemas import dirty_payloads
    >>> payloads = [p for _, p in dirty_payloads(take(order_pipe(seed=1), 100), seed=2)]
    >>> validate_orders(payloads).counts().tolist()
    [100, 85, 15]
    """
    payloads = finite_payloads(payloads)
    letters: list[DeadLetter] = []
    records: list[Mapping[str, Any]] = []
    positions: list[int] = []
    for i, payload in enumerate(payloads):
        # Decoding is per message in either driver: an Avro body is one record.
        record = payload
        if isinstance(payload, (bytes, bytearray)):
            try:
                record = decode(bytes(payload), reader, registry)
            except WireError as err:
                letters.append(DeadLetter.whole(payload, f"{source}#{i}", i, err.rule, err.reason))
                continue
        shape = shape_problem(record)
        if shape is not None:
            letters.append(DeadLetter.whole(payload, f"{source}#{i}", i, *shape))
            continue
        records.append(record)
        positions.append(i)
    frame = records_frame(records)
    failed = problems_pandera(frame)
    passed = []
    for row, i in enumerate(positions):
        if row in failed:
            letters.append(DeadLetter.of(payloads[i], f"{source}#{i}", i, failed[row]))
        else:
            passed.append((i, to_event(records[row])))
    letters.sort(key=lambda d: d.position)
    if dead_letters is not None:
        publish_dead_letters(dead_letters, letters)
    return Validated(events_frame(passed), letters, len(payloads))
