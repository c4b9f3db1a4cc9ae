"""Measure how much memory a computation needs, as the events it reads grow.

:func:`peak_bytes` runs a function under :mod:`tracemalloc` and returns the
most memory Python held at once while it ran. :func:`memory_growth` does that
for the batch and the stream summary at several sizes of input.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pandas as pd

from streamlab import batch, stream
from streamlab.events import Event

__all__ = ["memory_growth", "peak_bytes"]


def peak_bytes(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """The peak of memory allocated by Python while ``fn(*args, **kwargs)`` runs, in bytes.

    What existed before the call is not counted; the result is dropped before
    measuring ends, so only what the computation needed along the way counts.

    >>> peak_bytes(lambda: bytearray(10_000_000)) >= 10_000_000
    True
    """
    gc.collect()
    if tracemalloc.is_tracing():
        raise RuntimeError("tracemalloc is already tracing; peak_bytes needs it to itself")
    tracemalloc.start()
    try:
        fn(*args, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def memory_growth(events: Iterable[Event], sizes: Sequence[int]) -> pd.DataFrame:
    """Peak memory of the batch and the stream summary over the first ``n`` events, for each ``n``.

    Returns one row per size: ``events``, ``batch_bytes``, ``stream_bytes``. The
    batch driver must hold the whole pile; the stream driver holds one
    accumulator per key and the batch of events in flight.
    """
    rows = []
    for n in sizes:
        rows.append(
            {
                "events": n,
                "batch_bytes": peak_bytes(batch.summarize, events, limit=n),
                # A live stream hands its answers to a sink; it does not keep their history.
                "stream_bytes": peak_bytes(stream.summarize, events, limit=n, keep_updates=False),
            }
        )
    return pd.DataFrame(rows)
