"""Lesson 09 exercises: each check accepts correct variants and names the typical mistakes."""

from datetime import timedelta

import bytewax.operators as op
import numpy as np
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
def test_choose_every_refuses_wrong_answers_with_their_hint(variant, hint):
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


# Right answers written other ways: time travel by hand, hour numbers, a loop with numpy numbers, a frame.

def paid_by_hand(table, when):
    history = lh.history(table)
    committed = history[history["clock"] <= pd.Timestamp(when)]
    if committed.empty:
        return {}
    snapshot = table.snapshots()[committed["clock"].idxmax() - 1]  # history numbers snapshots from 1
    return paid_of(lh.read(table, snapshot))


def paid_hour_numbers(table, when):
    try:
        then = lh.as_of(table, when)
    except lh.NothingCommittedError:
        return {}
    paid = then.query("kind == 'paid'")
    return paid.groupby(paid["event_time"].dt.hour)["amount"].sum().to_dict()


def paid_loop(table, when):
    try:
        then = lh.as_of(table, when)
    except lh.NothingCommittedError:
        return pd.Series(dtype="float64")
    out = {}
    for row in then.itertuples():
        if row.kind == "paid":
            hour = f"{row.event_time.hour:02d}:00"
            out[hour] = out.get(hour, np.float64(0)) + np.float64(row.amount)
    return out


def paid_frame(table, when):
    try:
        then = lh.as_of(table, when)
    except lh.NothingCommittedError:
        return pd.DataFrame({"paid": []})
    paid = then[then["kind"] == "paid"]
    return paid.groupby(paid["event_time"].dt.floor("h"))["amount"].sum().to_frame("paid")


def paid_unpadded(table, when):
    return {f"{int(hour[:2])}:00": money for hour, money in lesson09._paid_at(table, when).items()}


@pytest.mark.parametrize("variant", [paid_by_hand, paid_hour_numbers, paid_loop, paid_frame, paid_unpadded])
def test_paid_at_accepts_right_answers_written_other_ways(variant):
    feedback = lesson09.paid_at(variant)
    assert feedback.ok, feedback


# Wrong answers beyond the check's own models: each refused with a case it gets wrong.

def snapshot_at(table, when, *, before=lambda clock, when: clock <= when, step_back=0):
    history = lh.history(table)
    committed = history[before(history["clock"], pd.Timestamp(when))]
    if len(committed) <= step_back:
        return None
    return lh.read(table, table.snapshots()[committed.index[-1 - step_back] - 1])


def paid_strictly_before(table, when):  # a commit made exactly at `when` left out
    then = snapshot_at(table, when, before=lambda clock, when: clock < when)
    return {} if then is None else paid_of(then)


def paid_previous_snapshot(table, when):  # one snapshot too far back
    then = snapshot_at(table, when, step_back=1)
    return {} if then is None else paid_of(then)


def paid_net_of_refunds(table, when):  # a cancelled order's money taken back
    try:
        then = lh.as_of(table, when)
    except lh.NothingCommittedError:
        return {}
    sign = then["kind"].map({"paid": 1.0, "cancelled": -1.0}).fillna(0.0)
    money = (then["amount"] * sign).groupby(then["event_time"].dt.strftime("%H:00")).sum()
    return money[then.assign(s=sign).groupby(then["event_time"].dt.strftime("%H:00"))["s"].apply(
        lambda s: (s != 0).any())]


def paid_latest_status(table, when):  # each order's latest event only: paid then cancelled counts nothing
    try:
        then = lh.as_of(table, when)
    except lh.NothingCommittedError:
        return {}
    return paid_of(then.drop_duplicates("order_id", keep="last"))


def paid_by_arrival_hour(table, when):  # the hour it arrived, not the hour it happened
    try:
        then = lh.as_of(table, when)
    except lh.NothingCommittedError:
        return {}
    paid = then[then["kind"] == "paid"]
    return paid.groupby(paid["arrival_time"].dt.strftime("%H:00"))["amount"].sum()


def paid_whole_euros(table, when):  # rounded for the dashboard
    return {hour: round(money) for hour, money in lesson09._paid_at(table, when).items()}


def paid_first_snapshot(table, when):  # the table's first commit, whatever the time
    snapshots = table.snapshots()
    return paid_of(lh.read(table, snapshots[0])) if snapshots else {}


_DASHBOARDS: dict = {}


def paid_cached(table, when):  # a cache kept between calls, by the moment only: another table's answer comes back
    if when not in _DASHBOARDS:
        _DASHBOARDS[when] = lesson09._paid_at(table, when)
    return _DASHBOARDS[when]


@pytest.mark.parametrize("variant", [paid_strictly_before, paid_previous_snapshot, paid_net_of_refunds,
                                     paid_latest_status, paid_by_arrival_hour, paid_whole_euros,
                                     paid_first_snapshot, paid_cached])
def test_paid_at_refuses_new_wrong_answers_with_a_case(variant):
    _DASHBOARDS.clear()
    feedback = lesson09.paid_at(variant)
    assert feedback.status == "wrong", feedback
    assert "Here is an input where your answer differs" in feedback.message, feedback.message
    assert "commit at" in feedback.message or "no commit yet" in feedback.message or "lesson's table" in feedback.message


def test_paid_at_catches_a_function_that_changes_the_table_and_builds_it_afresh():
    def expire_then_ask(table, when):
        lh.expire(table, 1)
        return lesson09._paid_at(table, when)

    feedback = lesson09.paid_at(expire_then_ask)
    assert feedback.status == "wrong" and "changed the table" in feedback.message, feedback
    assert lesson09.paid_at(paid_pandas).ok  # the tables it changed are built again


def test_paid_at_builds_its_tables_once_and_reads_them_again():
    assert lesson09.paid_at(paid_pandas).ok
    built = {lake: table for lake, (table, _) in lesson09._TABLES.items()}
    assert lesson09.paid_at(paid_sql).ok
    assert {lake: table for lake, (table, _) in lesson09._TABLES.items()} == built
    assert len(built) == len({case.args[0] for case, _ in lesson09.PAID.solved()})


def test_paid_at_cases_hold_their_edges():
    solved = lesson09.PAID.solved()
    moments = [(case.args[0], case.args[1]) for case, _ in solved]
    clocks = {lake: [clock for clock, _ in lake.commits] for lake, _ in moments}
    assert any(not lake.commits and not lake.lesson_hours for lake, _ in moments)               # no commit
    assert any(clocks[lake] and when == clocks[lake][0] for lake, when in moments)              # on a clock
    assert any(clocks[lake] and when < clocks[lake][0] for lake, when in moments)               # before the first
    assert any(clocks[lake] and when > clocks[lake][-1] for lake, when in moments)              # after the last
    kinds = [row[2] for lake in clocks for _, rows in lake.commits for row in rows]
    assert {"placed", "paid", "shipped", "cancelled"} <= set(kinds)
    assert any(len({row[0] for _, rows in lake.commits for row in rows}) < sum(len(rows) for _, rows in lake.commits)
               and len(lake.commits) > 1 for lake in clocks)                                      # an order over commits
    assert any(row[4].hour != row[5].hour for lake in clocks for _, rows in lake.commits for row in rows)


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


def rows_by_reason(records):
    def item(r):
        partition, offset, checked = r
        return partition, offset, checked.arrival_time, lh.order_row(checked.event, partition, offset)
    return op.map("row", op.filter("passed", records, lambda r: r[2].reason is None), item)


def rows_filter_map(records):
    return op.filter_map("rows", records, lambda r: None if r[2].event is None else (
        r[0], r[1], r[2].arrival_time, lh.order_row(r[2].event, r[0], r[1])))


def rows_branch(records):
    split = op.branch("valid", records, lambda r: r[2].event is not None)
    return op.map("row", split.trues, lambda r: (r[0], r[1], r[2].event.arrival_time,
                                                 lh.order_row(r[2].event, r[0], r[1])))


@pytest.mark.parametrize("variant", [rows_by_reason, rows_filter_map, rows_branch])
def test_sink_rows_accepts_right_answers_written_other_ways(variant):
    feedback = lesson09.sink_rows(variant)
    assert feedback.ok, feedback


def valid_rows(records, item):
    return op.map("row", op.filter("valid", records, lambda r: r[2].event is not None), item)


def rows_next_offset(records):  # the next offset to read, as the sink records it: one too far
    return valid_rows(records, lambda r: (r[0], r[1] + 1, r[2].arrival_time, lh.order_row(r[2].event, r[0], r[1])))


def rows_item_swapped(records):  # the row right, the item's partition and offset swapped
    return valid_rows(records, lambda r: (r[1], r[0], r[2].arrival_time, lh.order_row(r[2].event, r[0], r[1])))


def rows_batch_end(records):  # the batch's end instead of the arrival: each row one batch late
    return valid_rows(records, lambda r: (r[0], r[1], lh.batch_end(r[2].arrival_time, timedelta(minutes=15)),
                                          lh.order_row(r[2].event, r[0], r[1])))


def rows_raw_arrival(records):  # the arrival as the JSON text holds it
    return valid_rows(records, lambda r: (r[0], r[1], r[2].raw["arrival_time"], lh.order_row(r[2].event, r[0], r[1])))


_SEEN: set = set()


def rows_deduplicated(records):  # a retried record dropped, by a set kept outside the step
    def fresh(r):
        key = (r[2].event.order_id, r[2].event.kind, r[2].event.event_time)
        if key in _SEEN:
            return False
        _SEEN.add(key)
        return True
    valid = op.filter("valid", records, lambda r: r[2].event is not None)
    return op.map("row", op.filter("new", valid, fresh),
                  lambda r: (r[0], r[1], r[2].arrival_time, lh.order_row(r[2].event, r[0], r[1])))


def rows_retries_dropped(records):  # a retried record dropped, by bytewax state per order (no state outside)
    def first_time(seen, r):
        seen = seen or set()
        key = (r[2].event.kind, r[2].event.event_time)
        return seen | {key}, None if key in seen else r
    valid = op.filter("valid", records, lambda r: r[2].event is not None)
    kept = op.stateful_map("retries", op.key_on("order", valid, lambda r: r[2].event.order_id), first_time)
    fresh = op.filter_map("fresh", kept, lambda kv: kv[1])
    return op.map("row", fresh, lambda r: (r[0], r[1], r[2].arrival_time, lh.order_row(r[2].event, r[0], r[1])))


def rows_checked_by_hand(records):  # only the amount checked again by hand: other damage gets through
    ok = op.filter("amount", records, lambda r: isinstance(r[2].raw.get("amount"), (int, float)))
    return op.map("row", ok, lambda r: (r[0], r[1], r[2].arrival_time, lh.order_row(r[2].event, r[0], r[1])))


def rows_and_dead_letters(records):  # the damaged records sent to the same sink, as dead letters
    return op.map("row", records, lambda r: (r[0], r[1], r[2].arrival_time, (
        lh.order_row(r[2].event, r[0], r[1]) if r[2].event is not None
        else lh.dead_letter_row(r[2].raw, r[2].reason, r[0], r[1]))))


_COUNTED = iter(range(10**9))


def rows_numbered(records):  # numbering the records itself instead of taking their offsets
    def item(r):
        offset = next(_COUNTED)
        return r[0], offset, r[2].arrival_time, lh.order_row(r[2].event, r[0], offset)
    return valid_rows(records, item)


@pytest.mark.parametrize(("variant", "says"), [
    (rows_next_offset, "Here is an input where your answer differs"),
    (rows_item_swapped, "Here is an input where your answer differs"),
    (rows_batch_end, "a time of your own"),
    (rows_raw_arrival, "must be the arrival time (a datetime)"),
    (rows_deduplicated, "keeps something from one call to the next"),
    (rows_retries_dropped, "misses some of the log's valid records"),
    (rows_checked_by_hand, "route it aside"),
    (rows_and_dead_letters, "Here is an input where your answer differs"),
    (rows_numbered, "keeps something from one call to the next"),
])
def test_sink_rows_refuses_new_wrong_answers_with_their_hint_or_a_case(variant, says):
    _SEEN.clear()
    feedback = lesson09.sink_rows(variant)
    assert feedback.status == "wrong" and says in feedback.message, feedback.message


def test_sink_rows_solution_writes_the_nightly_jobs_rows_and_survives_its_crash():
    from streamlab.batch import lakehouse as nightly

    for case, answer in lesson09.SINK.solved():
        pipe = case.args[0]
        scratch = lesson09._scratch()
        reference = scratch.table("nightly")
        try:
            nightly.load_orders(lesson09._log(pipe), reference)
            assert answer.rows == lesson09._sunk(reference).rows, case.label
        finally:
            scratch.drop(reference)
    labels = " ".join(case.label for case, _ in lesson09.SINK.solved())
    assert "crashing" in labels and "empty" in labels and "damaged" in labels
    assert any(case.args[0].partitions == 2 for case, _ in lesson09.SINK.solved())
    assert any(len(set(case.args[0].records)) < len(case.args[0].records) for case, _ in lesson09.SINK.solved())


def test_a_size_as_numpy_or_pandas_timedelta_is_a_size():
    assert lesson09.choose_every(lambda a, t, s: (lambda c: None if c is None else np.timedelta64(c))(choose(a, t, s))).ok
    assert lesson09.choose_every(lambda a, t, s: (lambda c: None if c is None else pd.Timedelta(c))(choose(a, t, s))).ok


def test_steps_that_cannot_be_built_are_told_so_not_shown_a_case():
    feedback = lesson09.sink_rows(lambda records: op.filter(records, lambda r: True))  # no step id
    assert feedback.status == "wrong" and "building your steps raised TypeError" in feedback.message, feedback
