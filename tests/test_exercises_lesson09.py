"""Lesson 09 exercises: each check accepts correct variants and names the typical mistakes."""

from datetime import timedelta

import bytewax.operators as op
import pandas as pd
import pytest

from streamlab import lakehouse as lh
from streamlab.exercises import lesson09


def feedback_says(feedback, hint):
    return feedback.status == "wrong" and hint in feedback.message, feedback


def not_yet(*args):
    raise NotImplementedError()


# -- exercise 1: a micro-batch size for a freshness target -----------------------------------------

def worst_wait(arrivals, every):
    return max((lh.batch_end(t, every) - t for t in arrivals), default=timedelta(0))


def choose(arrivals, target, sizes, *, fits=lambda wait, target: wait <= target, pick=max, wait=worst_wait):
    good = [every for every in sizes if fits(wait(arrivals, every), target)]
    return pick(good) if good else None


def choose_with_pandas(arrivals, target, sizes):
    times = pd.Series(pd.DatetimeIndex(arrivals, tz="UTC")) if arrivals else pd.Series([], dtype="datetime64[us, UTC]")
    best = None
    for every in sorted(sizes, reverse=True):
        ends = times.dt.floor(pd.Timedelta(every)) + pd.Timedelta(every)
        if (ends - times).max() <= pd.Timedelta(target) or times.empty:
            return every
    return best


@pytest.mark.parametrize("variant", [choose, choose_with_pandas, lambda a, t, s: lesson09._choose_every(list(a), t, tuple(s))])
def test_choose_every_accepts_correct_variants(variant):
    assert lesson09.choose_every(variant).ok


@pytest.mark.parametrize(("variant", "hint"), [
    (lambda a, t, s: choose(a, t, s, wait=lambda arrivals, every: every), "depends on when it arrives"),
    (lambda a, t, s: choose(a, t, s, fits=lambda wait, target: wait < target), "allows equal"),
    (lambda a, t, s: choose(a, t, s, pick=min), "fewest commits"),
    (lambda a, t, s: choose(a, t, s, wait=lambda arrivals, every: max(
        (t - (lh.batch_end(t, every) - every) for t in arrivals), default=timedelta(0))), "not at its start"),
    (lambda a, t, s: max(s), "differs"),
    (lambda a, t, s: 15, "return one of the sizes given"),
    (lambda a, t, s: timedelta(minutes=7), "not among them"),
])
def test_choose_every_names_the_mistake(variant, hint):
    ok, feedback = feedback_says(lesson09.choose_every(variant), hint)
    assert ok, feedback


def test_choose_every_says_not_yet():
    assert lesson09.choose_every(not_yet).status == "not yet"


# -- exercise 2: time travel ----------------------------------------------------------------------

def paid_pandas(table, when):
    try:
        then = lh.as_of(table, when)
    except lh.NothingCommittedError:
        return {}
    paid = then[then["kind"] == "paid"]
    return paid.groupby(paid["event_time"].dt.floor("h"))["amount"].sum()


def paid_sql(table, when):
    try:
        then = lh.as_of(table, when)
    except lh.NothingCommittedError:
        return pd.Series(dtype="float64")
    return lh.query("SELECT strftime(date_trunc('hour', event_time), '%H:00') AS hour, sum(amount) AS paid "
                    "FROM t WHERE kind = 'paid' GROUP BY 1 ORDER BY 1", t=then).set_index("hour")


def paid_of(frame):
    paid = frame[frame["kind"] == "paid"]
    return paid.groupby(paid["event_time"].dt.strftime("%H:00"))["amount"].sum()


def paid_now(table, when):
    return paid_of(lh.read(table))


def paid_arrived(table, when):
    rows = lh.read(table)
    return paid_of(rows[rows["arrival_time"] < pd.Timestamp(when)])


def paid_raises(table, when):
    return paid_of(lh.as_of(table, when))


def paid_every_kind(table, when):
    try:
        then = lh.as_of(table, when)
    except lh.NothingCommittedError:
        return {}
    return then.groupby(then["event_time"].dt.strftime("%H:00"))["amount"].sum()


@pytest.mark.parametrize("variant", [paid_pandas, paid_sql])
def test_paid_at_accepts_correct_variants(variant):
    assert lesson09.paid_at(variant).ok


@pytest.mark.parametrize(("variant", "hint"), [
    (paid_now, "as it is now"),
    (paid_arrived, "*arrived* by then"),
    (paid_raises, "NothingCommittedError"),
    (paid_every_kind, "count only the 'paid' ones"),
    (lambda table, when: 3.0, "return a Series or a dict"),
    (lambda table, when: lh.as_of(table, when), "not a table of"),
])
def test_paid_at_names_the_mistake(variant, hint):
    ok, feedback = feedback_says(lesson09.paid_at(variant), hint)
    assert ok, feedback


def test_paid_at_says_not_yet():
    assert lesson09.paid_at(not_yet).status == "not yet"


# -- exercise 3: the sink's dataflow --------------------------------------------------------------

def rows(records):
    valid = op.filter("valid", records, lambda r: r[2].event is not None)
    return op.map("row", valid, lambda r: (r[0], r[1], r[2].arrival_time, lh.order_row(r[2].event, r[0], r[1])))


def rows_flat_map(records):
    def item(r):
        partition, offset, checked = r
        if checked.event is None:
            return []
        return [(partition, offset, checked.arrival_time, lh.order_row(checked.event, partition, offset))]
    return op.flat_map("rows", records, item)


def rows_unfiltered(records):
    return op.map("row", records, lambda r: (r[0], r[1], r[2].arrival_time, lh.order_row(r[2].event, r[0], r[1])))


def rows_swapped(records):
    valid = op.filter("valid", records, lambda r: r[2].event is not None)
    return op.map("row", valid, lambda r: (r[0], r[1], r[2].arrival_time, lh.order_row(r[2].event, r[1], r[0])))


def rows_event_time(records):
    valid = op.filter("valid", records, lambda r: r[2].event is not None)
    return op.map("row", valid, lambda r: (r[0], r[1], r[2].event.event_time, lh.order_row(r[2].event, r[0], r[1])))


def rows_only(records):
    valid = op.filter("valid", records, lambda r: r[2].event is not None)
    return op.map("row", valid, lambda r: lh.order_row(r[2].event, r[0], r[1]))


def rows_none(records):
    op.filter("valid", records, lambda r: r[2].event is not None)


def rows_some(records):
    valid = op.filter("valid", records, lambda r: r[2].event is not None and r[2].event.kind != "shipped")
    return op.map("row", valid, lambda r: (r[0], r[1], r[2].arrival_time, lh.order_row(r[2].event, r[0], r[1])))


@pytest.mark.parametrize("variant", [rows, rows_flat_map])
def test_sink_rows_accepts_correct_variants(variant):
    assert lesson09.sink_rows(variant).ok


@pytest.mark.parametrize(("variant", "hint"), [
    (rows_unfiltered, "route it aside"),
    (rows_swapped, "partition and offset"),
    (rows_event_time, "not its event time"),
    (rows_only, "emit 4-tuples"),
    (rows_none, "return the bytewax stream"),
    (rows_some, "emit every record that passed validation"),
])
def test_sink_rows_names_the_mistake(variant, hint):
    ok, feedback = feedback_says(lesson09.sink_rows(variant), hint)
    assert ok, feedback


def test_sink_rows_says_not_yet():
    assert lesson09.sink_rows(not_yet).status == "not yet"
