"""Lesson 08's checks: right answers accepted in any reasonable form, typical mistakes refused with their own hint."""

import bytewax.operators as op
import pytest

from streamlab.exercises import lesson08
from streamlab.recovery import sale_from, step


# -- exercise 1: which rows come twice ----------------------------------------------------------

def replayed_set(snapshot_at, written):
    return {(r.partition, r.offset) for r in written if r.offset >= snapshot_at[r.partition]}


def replayed_list(snapshot_at, written):
    return sorted((r.partition, r.offset) for r in written if not r.offset < snapshot_at[r.partition])


def replayed_generator(snapshot_at, written):
    return ((r.partition, r.offset) for r in written if r.offset - snapshot_at[r.partition] >= 0)


@pytest.mark.parametrize("fn", [replayed_set, replayed_list, replayed_generator])
def test_replayed_accepts_right_answers(fn):
    assert lesson08.replayed(fn).ok


@pytest.mark.parametrize("fn, words", [
    (lambda s, w: {(r.partition, r.offset) for r in w}, "before the snapshot are safe"),
    (lambda s, w: {(r.partition, r.offset) for r in w if r.offset > s[r.partition]}, "*next* offset"),
    (lambda s, w: {(r.partition, r.offset) for r in w if r.offset >= s[0]} | {(9, 9)}, "only rows that were written"),
    (lambda s, w: {(r.partition, r.offset) for r in w if r.offset >= max(s.values()) + 5}, "its own offset"),
    (lambda s, w: len([r for r in w if r.offset >= s[r.partition]]), "not how many"),
    (lambda s, w: [r for r in w if r.offset >= s[r.partition]], "not the row itself"),
    (lambda s, w: None, "return a set"),
    (lambda s, w: [(r.partition, str(r.offset)) for r in w], "pair of ints"),
])
def test_replayed_refuses_mistakes_with_their_hint(fn, words):
    feedback = lesson08.replayed(fn)
    assert feedback.status == "wrong" and words in feedback.message, feedback


def test_replayed_placeholder_says_not_yet():
    def replayed(snapshot_at, written_before):
        raise NotImplementedError()
    assert lesson08.replayed(replayed).status == "not yet"


# -- exercise 2: an idempotent sink -------------------------------------------------------------

def by_position(output, rows):
    for row in rows:
        output[(row.partition, row.offset)] = row


def by_store_and_count(output, rows):
    output.update({(row.store, row.sales): row for row in rows})


def nested(output, rows):
    for row in rows:
        output.setdefault(row.partition, {})[row.offset] = row


@pytest.mark.parametrize("fn", [by_position, by_store_and_count, nested])
def test_idempotent_sink_accepts_right_answers(fn):
    assert lesson08.idempotent_sink(fn).ok


def appending(output, rows):
    output.setdefault("rows", []).extend(rows)


def by_length(output, rows):
    for row in rows:
        output[len(output)] = row


def by_store(output, rows):
    for row in rows:
        output[row.store] = row


def by_offset(output, rows):
    for row in rows:
        output[row.offset] = row


def nothing(output, rows):
    return rows


def raising(output, rows):
    output[rows[0].store].append(rows)


def altered(output, rows):
    for row in rows:
        output[row.position] = row.__class__(row.store, row.partition, row.offset, row.cents, 1, row.cents)


@pytest.mark.parametrize("fn, words", [
    (appending, "wrote some rows again"),
    (by_length, "wrote some rows again"),
    (by_store, "one row per store"),
    (by_offset, "share offsets"),
    (nothing, "holds no rows"),
    (raising, "your code raised KeyError"),
    (altered, "store the rows as they come"),
])
def test_idempotent_sink_refuses_mistakes_with_their_hint(fn, words):
    feedback = lesson08.idempotent_sink(fn)
    assert feedback.status == "wrong" and words in feedback.message, feedback


def test_idempotent_sink_placeholder_says_not_yet():
    def write_rows(output, rows):
        raise NotImplementedError()
    assert lesson08.idempotent_sink(write_rows).status == "not yet"


# -- exercise 3: a dataflow that survives a crash -----------------------------------------------

def steps(records):
    by_store = op.key_on("by_store", op.map("decode", records, sale_from), lambda sale: sale.store)
    return op.map("row", op.stateful_map("running_total", by_store, step), lambda kv: kv[1])


def steps_keyed_pairs(records):
    by_store = op.key_on("key", op.map("dec", records, sale_from), lambda sale: sale.store)
    return op.stateful_map("totals", by_store, step)


@pytest.mark.parametrize("fn", [steps, steps_keyed_pairs])
def test_resumable_flow_accepts_right_answers(fn):
    assert lesson08.resumable_flow(fn).ok


def in_a_dict(records):
    totals = {}

    def add(sale):
        count, total = totals.get(sale.store, (0, 0))
        (count, total), row = step((count, total), sale)
        totals[sale.store] = (count, total)
        return row

    return op.map("add", op.map("decode", records, sale_from), add)


_builds = iter(range(10**6))


def changing_ids(records):
    n = next(_builds)
    by_store = op.key_on(f"by_store_{n}", op.map(f"decode_{n}", records, sale_from), lambda sale: sale.store)
    return op.map(f"row_{n}", op.stateful_map(f"running_total_{n}", by_store, step), lambda kv: kv[1])


def one_key(records):
    by_store = op.key_on("by_store", op.map("decode", records, sale_from), lambda sale: "all")
    return op.map("row", op.stateful_map("running_total", by_store, step), lambda kv: kv[1])


def pairs_not_rows(records):
    sales = op.map("decode", records, sale_from)
    by_store = op.key_on("by_store", sales, lambda sale: sale.store)
    rows = op.map("row", op.stateful_map("running_total", by_store, step), lambda kv: kv[1])
    return op.map("rows", rows, lambda row: (row.store, row.sales))


def not_a_stream(records):
    return [records]


def broken(records):
    return op.map("decode", records, lambda record: record.value["amount"])


@pytest.mark.parametrize("fn, words", [
    (in_a_dict, "a dict of your own"),
    (changing_ids, "step ids change"),
    (one_key, "key the sales by store"),
    (pairs_not_rows, "must be a Row"),
    (not_a_stream, "must return a bytewax stream"),
    (broken, "KeyError"),
])
def test_resumable_flow_refuses_mistakes_with_their_hint(fn, words):
    feedback = lesson08.resumable_flow(fn)
    assert feedback.status == "wrong" and words in feedback.message, feedback


def test_resumable_flow_placeholder_says_not_yet():
    def sales_steps(records):
        raise NotImplementedError()
    assert lesson08.resumable_flow(sales_steps).status == "not yet"
