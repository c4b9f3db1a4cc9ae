"""Fraud detection over the pipe, with bytewax: each purchase decided as it arrives.

The dataflow keys purchases by card. Each card's state is built on its first
purchase: its profile, looked up once in the card table (enrichment), and its
recent history (:class:`~streamlab.fraud.CardHistory`). Every purchase then goes
through the shared :func:`~streamlab.fraud.decide`, in the order it arrived.

An alert is stamped with the arrival time of the last purchase of the batch
the deciding purchase rode in: that is when, in simulated time, the stream had
read it. With ``batch_size=1`` that is the arrival of the purchase itself;
bigger batches buy throughput with that wait (see the benchmark).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

import bytewax.operators as op
import pandas as pd
from bytewax.dataflow import Stream
from bytewax.operators import StatefulBatchLogic

from streamlab.fraud import (
    RULES,
    CardHistory,
    Detection,
    Rules,
    alerts_frame,
    check_inputs,
    decide,
    rejected_frame,
)
from streamlab.events import Finite, bounded
from streamlab.purchases import CardProfile, Purchase, checked_purchases
from streamlab.stream.runner import DEFAULT_BATCH_SIZE, run

_ALERT = "alert"
_REJECTED = "rejected"


def _stamp(batch: list[Purchase]) -> list[tuple[str, tuple[Purchase, datetime]]]:
    """Key each purchase by card and stamp it with the arrival of its batch's last purchase."""
    known_at = batch[-1].arrival_time
    return [(p.card, (p, known_at)) for p in batch]


class _Card(StatefulBatchLogic[tuple, tuple, CardHistory]):
    """One card's state: its profile (enrichment, looked up once) and its recent history."""

    def __init__(self, profiles: Mapping[str, CardProfile], rules: Rules, resume: CardHistory | None) -> None:
        self.profiles = profiles
        self.profile: CardProfile | None = None
        self.rules = rules
        self.history = resume if resume is not None else CardHistory(rules)

    def on_batch(self, items: list[tuple[Purchase, datetime]]) -> tuple[list[tuple], bool]:
        if self.profile is None:
            # bytewax builds the state without telling it the key: look the card up on its first purchase.
            self.profile = self.profiles.get(items[0][0].card)
        out: list[tuple] = []
        profile, history, rules = self.profile, self.history, self.rules
        for purchase, known_at in items:
            alerts, reason = decide(purchase, profile, history, rules)
            if reason is not None:
                out.append((_REJECTED, purchase, reason))
            elif alerts:
                out.extend((_ALERT, a, known_at) for a in alerts)
        # An unknown card has nothing to remember: drop its state, or any number of them would pile up.
        return out, (StatefulBatchLogic.DISCARD if profile is None else StatefulBatchLogic.RETAIN)

    def snapshot(self) -> CardHistory:
        return self.history


def fraud_flow(profiles: Mapping[str, CardProfile], rules: Rules = RULES):
    """Build the dataflow's steps: key by card, decide each purchase with the card's state, split the outcomes.

    Returns a function for :func:`~streamlab.stream.runner.run`, with outputs
    ``"alerts"`` ``(alert, known_at)`` and ``"rejected"`` ``(purchase, reason)``.
    """

    def detect_fraud(purchases: Stream[Purchase]) -> dict[str, Stream[Any]]:
        keyed = op.flat_map_batch("key_by_card", purchases, _stamp)
        decided = op.stateful_batch(
            "decide", keyed, lambda resume: _Card(profiles, rules, resume)
        )
        outcomes = op.map("drop_key", decided, lambda kv: kv[1])
        split = op.branch("route_rejected", outcomes, lambda o: o[0] == _ALERT)
        return {
            "alerts": op.map("alerts", split.trues, lambda o: (o[1], o[2])),
            "rejected": op.map("rejected", split.falses, lambda o: (o[1], o[2])),
        }

    return detect_fraud


def detect_fraud(
    purchases: Iterable[Purchase],
    profiles: Mapping[str, CardProfile],
    *,
    limit: int | None = None,
    until: datetime | None = None,
    rules: Rules = RULES,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Detection:
    """Find fraud as purchases arrive: each one decided with its card's profile and recent history.

    :param purchases: a pipe or any iterable of purchases, read in the order
        given (a pipe's order is arrival order); a pipe must be cut by
        ``limit`` and/or ``until``.
    :param profiles: the card profile table, ``{card: CardProfile}``.
    :param rules: the rules' thresholds.
    :param batch_size: purchases handed to the dataflow at a time. Alerts are
        stamped with the arrival of their batch's last purchase.

    >>> from streamlab.purchases import adversarial_trace
    >>> trace = adversarial_trace()
    >>> detect_fraud(trace.purchases, trace.profiles, batch_size=1)
    Detection(31 purchases read: 25 checked, 6 routed aside; 8 alerts on 8 purchases)
    """
    check_inputs(profiles, rules)
    if isinstance(purchases, pd.DataFrame):
        raise TypeError("the stream driver reads purchases one by one, not a DataFrame: pass the purchases (a pile or a pipe)")
    result = run(
        # Checked as read: anything that is not a Purchase is refused by position, as the batch driver does.
        fraud_flow(profiles, rules), _Checked(bounded(purchases, limit=limit, until=until)), batch_size=batch_size,
        name="detect_fraud",
    )
    rejected = rejected_frame(result["rejected"])
    return Detection(
        alerts=alerts_frame(result["alerts"]),
        rejected=rejected,
        purchases_read=result.events_read,
        checked=result.events_read - len(rejected),
    )


class _Checked(Finite):
    """The purchases, each checked to be one as the stream reads it; iterable afresh."""

    def __init__(self, purchases: Iterable[Any]) -> None:
        self.purchases = purchases

    def __iter__(self) -> Iterator[Purchase]:
        return checked_purchases(self.purchases)
