"""Joins over two streams, with bytewax: what each must hold, and until when.

Both inputs are merged into one stream in arrival order
(:func:`~streamlab.joins.arrival_order`): that is the clock, ``clock`` = the
newest arrival time read. Each stream promises a bound on its lateness.

**Temporal join** (:func:`temporal_join`). Rule: each purchase gets the version
of its card's profile valid at its event time ``t``: the latest change with
effect time ``<= t``. Changes arrive at most ``lag`` after they take effect,
so once ``clock - lag > t`` (strictly) every change in effect at ``t`` has been
read; until then a purchase *waits*. The dataflow has two stateful steps:

1. ``wait``, under one key (the clock is one for all cards): changes pass
   straight on; purchases are held in a heap by event time and released, in
   that order, as soon as ``clock - lag`` passes their event time; at the end
   of input, all that remain are released. A change that arrived more than
   ``lag`` after it took effect broke the promise: it is routed aside
   (:data:`~streamlab.joins.LATE_CHANGE`), as the batch job does.
2. ``enrich``, keyed by card: the card's profile versions, sorted by effect
   time, as state (starting from the day's table); a released purchase takes
   the last version with effect time ``<= t``; a card with none is routed aside.
   Versions are kept for the run: a purchase may arrive long after it
   happened, and the changelog is small (a stream without end would drop
   versions older than the purchases' own bound on lateness).

The first step needs one key because bytewax 0.21 hands a key's state only
the records of that key: nothing would wake a quiet card's waiting purchases
when the clock moves on. It holds only the waiting purchases: about
``lag x`` the purchase rate. Its answer equals the batch job's
(:func:`streamlab.batch.joins.temporal_join`) whatever the arrival order,
as long as the promise holds; a purchase waits ``lag`` for it.

**Naive join** (:func:`latest_profile_join`): keyed by card, the latest version
seen; a purchase takes it on arrival and never waits.

**Time-bound join** (:func:`time_bound_join`): every purchase with each
confirmation made ``0 <= confirmed - purchased <= within`` after it. A record
arrives at most ``delay`` after it happened (later ones are routed aside,
:data:`~streamlab.joins.LATE_ITEM`), so with the watermark ``clock - delay``:
a purchase is held until the watermark passes ``purchased + within`` (no
confirmation of it can come after), then forgotten, reported
:data:`~streamlab.joins.NO_CONFIRMATION` if it was in no pair; a confirmation
whose purchase has not come yet is held until the watermark passes
``confirmed`` (its purchase happened before it, so would have arrived), then
reported :data:`~streamlab.joins.NO_PURCHASE`. That is the state: bounded by
what arrives in ``within + delay``. One key again, for the same reason.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Stream
from bytewax.operators import StatefulBatchLogic

from streamlab.joins import (
    ALWAYS,
    INITIAL,
    LATE_CHANGE,
    LATE_ITEM,
    NO_CONFIRMATION,
    NO_PROFILE,
    NO_PURCHASE,
    TemporalJoin,
    TimeBoundJoin,
    aside_frame,
    arrival_order,
    check_lag,
    checked_changes,
    checked_confirmations,
    joined_frame,
    matched_frame,
    state_frame,
    unique_purchases,
    unmatched_frame,
)
from streamlab.purchases import CardProfile, Confirmation, ProfileChange, Purchase, check_profiles, checked_purchases
from streamlab.events import finite
from streamlab.stream.runner import DEFAULT_BATCH_SIZE, run

__all__ = ["latest_profile_join", "temporal_join", "time_bound_join"]

_CLOCK = "clock"  # the one key of the steps that follow the shared clock


def _late_change(c: ProfileChange) -> tuple:
    return ("aside", ("change", c.change_id, c.card, c.event_time, c.arrival_time, LATE_CHANGE))


class _Wait(StatefulBatchLogic[tuple, tuple, tuple]):
    """Hold purchases until no change valid at their event time can still arrive; pass changes on."""

    def __init__(self, lag: timedelta, resume: tuple | None) -> None:
        self.lag = lag
        self.waiting: list[tuple[datetime, int, Purchase]] = []
        self.clock: datetime | None = None
        self.read = 0  # purchases read: breaks ties in the heap, so that purchases are never compared
        if resume is not None:
            self.waiting, self.clock, self.read = resume

    def on_batch(self, items: list[tuple[str, Any]]) -> tuple[list[tuple], bool]:
        out: list[tuple] = []
        for kind, x in items:
            self.clock = x.arrival_time if self.clock is None else max(self.clock, x.arrival_time)
            if kind == "change":
                out.append(_late_change(x) if x.arrival_time - x.event_time > self.lag else ("change", x))
            else:
                heapq.heappush(self.waiting, (x.event_time, self.read, x))
                self.read += 1
            watermark = self.clock - self.lag
            while self.waiting and self.waiting[0][0] < watermark:
                out.append(("purchase", heapq.heappop(self.waiting)[2], self.clock))
            out.append(("state", (self.clock, len(self.waiting), 0)))
        return out, StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[list[tuple], bool]:
        # The input is over: no change can come any more; every waiting purchase goes, in event-time order.
        out = [("purchase", heapq.heappop(self.waiting)[2], self.clock) for _ in range(len(self.waiting))]
        return out, StatefulBatchLogic.DISCARD

    def snapshot(self) -> tuple:
        return (self.waiting, self.clock, self.read)


def _enricher(profiles: Mapping[str, CardProfile]):
    """The per-card step: the card's profile versions as state; a released purchase takes the one valid at its time."""

    def enrich(versions: tuple[list, list] | None, item: tuple) -> tuple[tuple[list, list], list[tuple]]:
        if versions is None:
            first = item[1]
            initial = profiles.get(first.card)
            # Sorted by (effect time, arrival rank): the last at or before t is the version valid at t.
            keys: list = [(ALWAYS, -1)] if initial is not None else []
            rows: list = [(INITIAL, initial)] if initial is not None else []
            versions = (keys, rows)
        keys, rows = versions
        if item[0] == "change":
            c: ProfileChange = item[1]
            rank = len(keys)  # above every rank so far: after every version of equal effect time
            at = bisect.bisect_right(keys, (c.event_time, rank))
            keys.insert(at, (c.event_time, rank))
            rows.insert(at, (c.change_id, c.profile))
            return versions, []
        _, p, joined_at = item
        at = bisect.bisect_right(keys, (p.event_time, float("inf"))) - 1
        if at < 0:
            # No version yet: keep no state for a card with none, or any number of unknown cards would pile up.
            return (versions if keys else None), [("aside", ("purchase", p.purchase_id, p.card, p.event_time, p.arrival_time, NO_PROFILE))]
        version, profile = rows[at]
        return versions, [("joined", (p, version, profile, joined_at))]

    return enrich


def _route(outcomes: Stream[tuple], names: tuple[str, ...]) -> dict[str, Stream[Any]]:
    out = {}
    for name in names:
        out[name] = op.map(f"{name}_only", op.filter(f"is_{name}", outcomes, lambda o, n=name: o[0] == n),
                           lambda o: o[1])
    return out


def temporal_join_flow(profiles: Mapping[str, CardProfile], lag: timedelta):
    """Build the temporal join's steps for :func:`~streamlab.stream.runner.run` (outputs joined, aside, state)."""

    def temporal_join(items: Stream[tuple]) -> dict[str, Stream[Any]]:
        clocked = op.key_on("one_clock", items, lambda _item: _CLOCK)
        held = op.map("unkey_clock", op.stateful_batch("wait", clocked, lambda resume: _Wait(lag, resume)),
                      lambda kv: kv[1])
        to_cards = op.filter("to_cards", held, lambda o: o[0] in ("change", "purchase"))
        per_card = op.key_on("per_card", to_cards, lambda o: o[1].card)
        enriched = op.map("unkey_card", op.stateful_flat_map("enrich", per_card, _enricher(profiles)),
                          lambda kv: kv[1])
        outcomes = op.merge("outcomes", enriched, op.filter("not_to_cards", held, lambda o: o[0] not in ("change", "purchase")))
        return _route(outcomes, ("joined", "aside", "state"))

    return temporal_join


def _inputs(purchases: Iterable[Purchase], profiles: Mapping[str, CardProfile], changes: Iterable[ProfileChange],
            lag: timedelta | float) -> tuple[list[Purchase], list[ProfileChange], timedelta]:
    check_profiles(profiles)
    lag_td = check_lag("lag", lag)
    pile = list(checked_purchases(finite(purchases, "pass a list of purchases")))
    return pile, list(checked_changes(changes)), lag_td


def temporal_join(
    purchases: Iterable[Purchase],
    profiles: Mapping[str, CardProfile],
    changes: Iterable[ProfileChange],
    *,
    lag: timedelta | float = 600.0,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> TemporalJoin:
    """Each purchase with the version of its card's profile valid at its event time, as the records arrive.

    The two inputs are read as one stream in arrival order; the rule and the
    wait are in this module's docstring. ``joined_at`` is the arrival time
    that released the purchase (at the end of input, the last one); ``state``
    the purchases waiting after each record read.

    >>> from streamlab.purchases import adversarial_trace
    >>> trace = adversarial_trace()
    >>> temporal_join(trace.purchases, trace.profiles, [], lag=60)
    TemporalJoin(31 purchases and 0 changes read: 29 joined, 2 routed aside; peak state 3 purchases)
    """
    pile, changes, lag_td = _inputs(purchases, profiles, changes, lag)
    result = run(temporal_join_flow(profiles, lag_td), arrival_order(pile, changes), batch_size=batch_size,
                 name="temporal_join")
    return TemporalJoin(
        joined=joined_frame(result["joined"]),
        aside=aside_frame(result["aside"]),
        purchases_read=len(pile),
        changes_read=len(changes),
        state=state_frame(result["state"]),
    )


def latest_profile_join(
    purchases: Iterable[Purchase],
    profiles: Mapping[str, CardProfile],
    changes: Iterable[ProfileChange],
    *,
    lag: timedelta | float = 600.0,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> TemporalJoin:
    """The naive join: each purchase, on arrival, with the latest version of its card's profile seen so far.

    Keyed by card, the state is one profile: the day's table's, replaced by
    each change as it arrives. Nothing waits, so a purchase gets a change that
    took effect after it happened, or misses one still in transit. Late
    changes are routed aside as in :func:`temporal_join`.

    >>> from streamlab.purchases import adversarial_trace
    >>> trace = adversarial_trace()
    >>> latest_profile_join(trace.purchases, trace.profiles, [])
    TemporalJoin(31 purchases and 0 changes read: 29 joined, 2 routed aside)
    """
    pile, changes, lag_td = _inputs(purchases, profiles, changes, lag)

    def latest(current: tuple | None, item: tuple) -> tuple[tuple | None, list[tuple]]:
        kind, x = item
        if current is None and x.card in profiles:
            current = (INITIAL, profiles[x.card])
        if kind == "change":
            if x.arrival_time - x.event_time > lag_td:
                return current, [_late_change(x)]
            return (x.change_id, x.profile), []
        if current is None:
            return None, [("aside", ("purchase", x.purchase_id, x.card, x.event_time, x.arrival_time, NO_PROFILE))]
        return current, [("joined", (x, current[0], current[1], x.arrival_time))]

    def naive(items: Stream[tuple]) -> dict[str, Stream[Any]]:
        per_card = op.key_on("per_card", items, lambda item: item[1].card)
        outcomes = op.map("unkey", op.stateful_flat_map("latest", per_card, latest), lambda kv: kv[1])
        return _route(outcomes, ("joined", "aside"))

    result = run(naive, arrival_order(pile, changes), batch_size=batch_size, name="latest_profile_join")
    return TemporalJoin(
        joined=joined_frame(result["joined"]),
        aside=aside_frame(result["aside"]),
        purchases_read=len(pile),
        changes_read=len(changes),
        state=state_frame([]),
    )


class _Pairs(StatefulBatchLogic[tuple, tuple, tuple]):
    """The time-bound join's state: purchases within their bound, confirmations whose purchase has not come."""

    def __init__(self, within: timedelta, delay: timedelta, resume: tuple | None = None) -> None:
        self.within, self.delay = within, delay
        self.purchases: dict[str, list] = {}  # purchase_id -> [purchase, paired?]
        self.confirmations: dict[str, list[Confirmation]] = {}  # purchase_id -> confirmations waiting for it
        self.held_confirmations = 0
        self.p_expiry: list[tuple[datetime, int, str]] = []
        self.c_expiry: list[tuple[datetime, int, str, Confirmation]] = []
        self.read = 0  # records read: breaks ties in the heaps, so that records are never compared
        self.clock: datetime | None = None
        if resume is not None:
            (self.purchases, self.confirmations, self.held_confirmations, self.p_expiry, self.c_expiry,
             self.clock, self.read) = resume

    def _pairs(self, p: Purchase, c: Confirmation) -> bool:
        return timedelta(0) <= c.event_time - p.event_time <= self.within

    def on_batch(self, items: list[tuple[str, Any]]) -> tuple[list[tuple], bool]:
        out: list[tuple] = []
        for kind, x in items:
            self.clock = x.arrival_time if self.clock is None else max(self.clock, x.arrival_time)
            self.read += 1
            if x.arrival_time - x.event_time > self.delay:
                out.append(("unmatched", (kind, x, LATE_ITEM, self.clock)))
            elif kind == "purchase":
                entry = [x, False]
                self.purchases[x.purchase_id] = entry
                heapq.heappush(self.p_expiry, (x.event_time + self.within, self.read, x.purchase_id))
                # Purchase ids are unique: the confirmations waiting for this one are decided now.
                for c in self.confirmations.pop(x.purchase_id, []):
                    self.held_confirmations -= 1
                    if self._pairs(x, c):
                        entry[1] = True
                        out.append(("matched", (x, c, self.clock)))
                    else:
                        out.append(("unmatched", ("confirmation", c, NO_PURCHASE, self.clock)))
            else:
                entry = self.purchases.get(x.purchase_id)
                if entry is None:
                    self.confirmations.setdefault(x.purchase_id, []).append(x)
                    self.held_confirmations += 1
                    heapq.heappush(self.c_expiry, (x.event_time, self.read, x.purchase_id, x))
                elif self._pairs(entry[0], x):
                    entry[1] = True
                    out.append(("matched", (entry[0], x, self.clock)))
                else:
                    out.append(("unmatched", ("confirmation", x, NO_PURCHASE, self.clock)))
            out.extend(self._expire(self.clock - self.delay))
            out.append(("state", (self.clock, len(self.purchases), self.held_confirmations)))
        return out, StatefulBatchLogic.RETAIN

    def _expire(self, watermark: datetime | None) -> list[tuple]:
        """Forget what the watermark has passed (everything, if ``None``: the input is over)."""
        out = []
        while self.p_expiry and (watermark is None or self.p_expiry[0][0] < watermark):
            _, _, pid = heapq.heappop(self.p_expiry)
            p, paired = self.purchases.pop(pid)
            if not paired:
                out.append(("unmatched", ("purchase", p, NO_CONFIRMATION, self.clock)))
        while self.c_expiry and (watermark is None or self.c_expiry[0][0] < watermark):
            _, _, pid, c = heapq.heappop(self.c_expiry)
            waiting = self.confirmations.get(pid, [])
            if any(w is c for w in waiting):  # else decided already, when its purchase came
                waiting.remove(c)
                self.held_confirmations -= 1
                if not waiting:
                    del self.confirmations[pid]
                out.append(("unmatched", ("confirmation", c, NO_PURCHASE, self.clock)))
        return out

    def on_eof(self) -> tuple[list[tuple], bool]:
        return self._expire(None), StatefulBatchLogic.DISCARD

    def snapshot(self) -> tuple:
        return (self.purchases, self.confirmations, self.held_confirmations, self.p_expiry, self.c_expiry,
                self.clock, self.read)


def time_bound_join(
    purchases: Iterable[Purchase],
    confirmations: Iterable[Confirmation],
    *,
    within: timedelta | float = 10.0,
    delay: timedelta | float = 5.0,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> TimeBoundJoin:
    """Every purchase with its confirmations made within ``within`` after it, as the records arrive.

    The rule, and what the stream holds until when, are in this module's
    docstring. ``state`` says, after each record read, how many purchases and
    confirmations the stream held; unmatched records are reported when the
    watermark passes their bound (``reported_at``), or at the end of input.

    >>> from streamlab.purchases import purchases, confirmations
    >>> bank = purchases(seed=1)
    >>> pile = bank.take(500)
    >>> time_bound_join(pile, confirmations(bank, pile))
    TimeBoundJoin(500 purchases and 498 confirmations read: 489 pairs, 20 unmatched; peak state 6 records)
    """
    within_td = check_lag("within", within)
    delay_td = check_lag("delay", delay)
    pile = unique_purchases(purchases)
    items = arrival_order(pile, list(checked_confirmations(confirmations)))
    read_confirmations = sum(kind == "confirmation" for kind, _ in items)

    def time_bound_join(stream: Stream[tuple]) -> dict[str, Stream[Any]]:
        clocked = op.key_on("one_clock", stream, lambda _item: _CLOCK)
        outcomes = op.map("unkey", op.stateful_batch("pairs", clocked, lambda resume: _Pairs(within_td, delay_td, resume)),
                          lambda kv: kv[1])
        return _route(outcomes, ("matched", "unmatched", "state"))

    result = run(time_bound_join, items, batch_size=batch_size, name="time_bound_join")
    return TimeBoundJoin(
        matched=matched_frame(result["matched"]),
        unmatched=unmatched_frame(result["unmatched"]),
        purchases_read=len(pile),
        confirmations_read=read_confirmations,
        state=state_frame(result["state"]),
    )
