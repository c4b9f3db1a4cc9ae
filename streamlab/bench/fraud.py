"""Lesson 05's fraud detection: the stream, a plain loop applying the same rules, the nightly pandas job.

The plain loop is :func:`streamlab.fraud.detect_loop`: the shared rules with a
dict of card histories, one purchase at a time in arrival order, which is
what the stream does per purchase. Before anything is timed, each driver's
answer is checked against the loop's: the same alerts (rule, card, purchase,
partner, amount, event time, evidence), the same purchases routed aside with
the same reasons. When an alert is raised depends on the driver: the loop
stamps it with the arrival of the purchase that raised it, the stream with the
arrival of the last purchase of its batch (the same with ``batch_size=1``,
never earlier), the nightly job with the time it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from streamlab import batch, stream
from streamlab.bench import SEED, Benchmark, Contender, Group, frame_difference
from streamlab.fraud import ALERT_IDENTITY, Alert, Detection, agree_alerts, alerts_frame, detect_loop, rejected_frame
from streamlab.purchases import CardProfile, Purchase, purchases

PURCHASES, QUICK_PURCHASES = 50_000, 3_000
ONE_AT_A_TIME, QUICK_ONE_AT_A_TIME = 5_000, 500


def loop_answer(result: tuple[list[tuple[Alert, datetime]], list], purchases_read: int) -> Detection:
    """The plain loop's result as the drivers give theirs: a :class:`~streamlab.fraud.Detection`."""
    alerts, rejected = result
    return Detection(alerts_frame(alerts), rejected_frame(rejected), purchases_read, purchases_read - len(rejected))


def same_detection(result: Detection, expected: Detection, *, stamped_by: str) -> str | None:
    """How a driver's detection differs from the plain loop's, if it does.

    ``stamped_by``: ``"arrival"`` (the stream with one purchase per batch: the
    same alert times), ``"batch"`` (the stream: each alert no earlier than the
    loop's) or ``"job"`` (the nightly job: any time).
    """
    agreement = agree_alerts(expected, result, names=("the plain loop", "the driver"))
    if not agreement.ok:
        return agreement.message()
    if result.purchases_read != expected.purchases_read:
        return f"read {result.purchases_read:,} purchases, the plain loop {expected.purchases_read:,}"
    difference = frame_difference(expected.rejected, result.rejected, "the purchases routed aside")
    if difference or stamped_by == "job":
        return difference
    # Both frames are sorted by the alerts' identity, so their rows match one to one.
    by_identity = ["event_time", "purchase_id", "rule", "partner_id", "detail"]
    mine = result.alerts.sort_values(by_identity, na_position="first", ignore_index=True)
    loop = expected.alerts.sort_values(by_identity, na_position="first", ignore_index=True)
    if not (mine[ALERT_IDENTITY].fillna("").equals(loop[ALERT_IDENTITY].fillna(""))):
        return "the alerts do not line up one to one"
    if stamped_by == "arrival" and not mine["alert_time"].equals(loop["alert_time"]):
        return "alert times differ from the arrival of the purchase that raised them"
    if stamped_by == "batch" and (mine["alert_time"] < loop["alert_time"]).any():
        return "an alert was raised before the purchase that raised it arrived"
    return None


def benchmark(quick: bool = False) -> Benchmark:
    """The fraud benchmark over seeded purchases with a little bad input (a small pile with ``quick``)."""
    n = QUICK_PURCHASES if quick else PURCHASES
    few = QUICK_ONE_AT_A_TIME if quick else ONE_AT_A_TIME
    pipe = purchases(seed=SEED, bad=0.001)
    pile = pipe.take(n)
    profiles: Mapping[str, CardProfile] = pipe.profiles

    def answer(data: list[Purchase]):
        return lambda result: loop_answer(result, len(data))

    def streamed(size: int):
        return lambda data: stream.detect_fraud(data, profiles, batch_size=size)

    def check(stamped_by: str):
        return lambda result, expected: same_detection(result, expected, stamped_by=stamped_by)

    reference = Contender("plain Python loop (`fraud.detect_loop`: the shared rules, a dict of card histories)",
                          lambda data: detect_loop(data, profiles), lambda r, e: None)
    main = Group(
        f"{n:,} purchases", pile, n, reference,
        (
            Contender("**stream** (bytewax, state keyed by card, batch_size=1000)", streamed(1000), check("batch")),
            Contender("stream, batch_size=100", streamed(100), check("batch")),
            Contender("**pandas**, end to end (the nightly job: join and sort, then the same rules)",
                      lambda data: batch.detect_fraud(data, profiles), check("job")),
        ),
        answer=answer(pile),
    )
    first = pile[:few]
    one_at_a_time = Group(
        f"Purchases one at a time, over the first {few:,} purchases", first, few, reference,
        (Contender("stream, batch_size=1", streamed(1), check("arrival")),),
        answer=answer(first),
    )
    days = (pile[-1].arrival_time - pile[0].arrival_time).total_seconds() / 86400
    alerts = len(detect_loop(pile, profiles)[0])
    return Benchmark(
        "fraud", "Lesson 05: fraud rules with enrichment and per-card state", "purchases",
        [main, one_at_a_time],
        notes=[f"{n:,} purchases: {days:.1f} simulated days, {len(profiles):,} cards, {alerts:,} alerts."],
    )
