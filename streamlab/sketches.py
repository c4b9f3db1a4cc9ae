"""A median over a pipe: exact (every value kept) or sketched (bounded memory, approximate).

Count, sum, min and max are *mergeable*: a few numbers per key summarise any
number of events, so a stream's state is set by the number of keys. A median is
not: to give the exact median, a stream must keep every value it has seen, and
its state grows with the events. A quantile sketch (here Apache DataSketches'
KLL sketch) keeps a bounded sample instead and answers within a known rank error.

The KLL sketch compacts at random (datasketches seeds its generator from the
clock and offers no seed), so its median varies a little from run to run; the
number of items it retains, its size in bytes and its error bound do not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from datasketches import kll_floats_sketch

from streamlab.events import Event

__all__ = ["K", "kll_sketch", "median_accuracy", "median_memory", "rank_error"]

#: The KLL sketch's size parameter: datasketches' default, about 1.3 % rank error (99 % confidence).
K = 200


def kll_sketch(values: Iterable[float], k: int = K) -> kll_floats_sketch:
    """A KLL sketch of ``values`` (missing and infinite values left out, as the summaries do).

    >>> s = kll_sketch([3.0, 1.0, float("nan"), 2.0])
    >>> s.n, s.get_quantile(0.5)
    (3, 2.0)
    """
    sketch = kll_floats_sketch(k)
    for value in values:
        if value is not None and np.isfinite(value):
            sketch.update(value)
    return sketch


def rank_error(values: Sequence[float], estimate: float, rank: float = 0.5) -> float:
    """How far ``estimate`` is from the ``rank`` quantile of ``values``, in rank (0.01 = one percentile).

    The estimate's rank is the share of values at or below it; the error is its
    distance to ``rank``, less the share of values equal to it (a tie is no error).

    >>> rank_error([1.0, 2.0, 3.0, 4.0, 5.0], 3.0)
    0.0
    >>> rank_error([1.0, 2.0, 3.0, 4.0, 5.0], 4.0)
    0.1
    """
    ordered = np.sort(np.asarray(values, dtype="float64"))
    below = np.searchsorted(ordered, estimate, side="left") / len(ordered)
    at_or_below = np.searchsorted(ordered, estimate, side="right") / len(ordered)
    if below <= rank <= at_or_below:
        return 0.0
    return round(float(min(abs(below - rank), abs(at_or_below - rank))), 12)


def _values_per_key(events: Iterable[Event]) -> dict[str, list[float]]:
    per_key: dict[str, list[float]] = {}
    for e in events:
        if e.value is not None and np.isfinite(e.value):
            per_key.setdefault(e.key, []).append(e.value)
    return dict(sorted(per_key.items()))


def median_accuracy(events: Iterable[Event], k: int = K) -> pd.DataFrame:
    """Per key: the exact median, the KLL sketch's, and the sketch's rank error against its bound.

    The exact median needs every value (``values kept``); the sketch keeps
    ``sketch items``. ``rank error bound`` is the sketch's 99 %-confidence bound
    for its ``k``.
    """
    rows = {}
    for key, values in _values_per_key(events).items():
        sketch = kll_sketch(values, k)
        estimate = sketch.get_quantile(0.5)
        rows[key] = {
            "values kept": len(values),
            "sketch items": sketch.num_retained,
            "exact median": float(np.median(values)),
            "sketch median": estimate,
            "rank error": rank_error(values, estimate),
            "rank error bound": kll_floats_sketch.get_normalized_rank_error(k, False),
        }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "key"
    return frame


def median_memory(events: Sequence[Event], sizes: Iterable[int], k: int = K) -> pd.DataFrame:
    """What each way of knowing the median of all values holds after the first ``n`` events, for each size.

    Exact: every value (8 bytes each as a float64). KLL: the items it retains,
    and its serialized size in bytes. Deterministic: the sketch's size depends
    only on how many values it has seen.

    >>> from streamlab.events import pipe, take
    >>> median_memory(take(pipe(seed=1), 1000), [100, 1000])["sketch items"].tolist()
    [100, 324]
    """
    rows = []
    for n in sizes:
        if n > len(events):
            raise ValueError(f"sizes must be at most the number of events ({len(events)}), got {n}")
        values = [e.value for e in events[:n] if e.value is not None and np.isfinite(e.value)]
        sketch = kll_sketch(values, k)
        rows.append({
            "events": n,
            "exact: values kept": len(values),
            "exact: bytes": 8 * len(values),
            "sketch items": sketch.num_retained,
            "sketch bytes": len(sketch.serialize()),
        })
    return pd.DataFrame(rows).set_index("events")
