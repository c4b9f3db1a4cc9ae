"""Lesson 08's checks: right answers accepted in any reasonable form, wrong ones refused with their own hint or a case.

The answers after the first block of each exercise are written as a learner
would write them, not taken from the checks' own models of mistakes. A wrong
answer must be refused either with the hint of its mistake or with a concrete
counterexample ("Here is an input where your answer differs"), never with
another mistake's hint.
"""

import bisect
from collections import defaultdict

import bytewax.operators as op
import numpy as np
import pandas as pd
import pytest

from streamlab.exercises import lesson08
from streamlab.recovery import Row, sale_from, step

from test_exercises_hints import solution_lines

DIFFERS = "Here is an input where your answer differs"
STATE = "keeps something from one call to the next"
SOLUTION = solution_lines("lesson08")


def refused(feedback, hint):
    """Refused with this hint (or a counterexample), and the message holds no line of the solution."""
    assert feedback.status == "wrong", feedback
    assert hint in feedback.message, feedback
    assert not any(line in feedback.message for line in SOLUTION), feedback
    return feedback


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
    (lambda s, w: {(r.partition, r.offset) for r in w if r.offset >= max(s.values()) + 5}, DIFFERS),
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


def replayed_with_pandas(snapshot_at, written):
    frame = pd.DataFrame({"partition": [r.partition for r in written], "offset": [r.offset for r in written]},
                         dtype="int64")
    from_ = frame["partition"].map(snapshot_at)
    return frame.loc[frame["offset"] >= from_, ["partition", "offset"]]  # a table of numpy ints


def replayed_lists_of_lists(snapshot_at, written):
    out = []
    for row in written:
        if row.offset >= snapshot_at[row.partition] and [row.partition, row.offset] not in out:
            out.append([row.partition, row.offset])
    return out


def replayed_per_partition_with_bisect(snapshot_at, written):
    offsets = defaultdict(set)
    for row in written:
        offsets[row.partition].add(row.offset)
    found = set()
    for partition, seen in offsets.items():
        ordered = sorted(seen)
        for offset in ordered[bisect.bisect_left(ordered, snapshot_at[partition]):]:
            found.add((np.int64(partition), np.int64(offset)))
    return found


@pytest.mark.parametrize("fn", [replayed_with_pandas, replayed_lists_of_lists, replayed_per_partition_with_bisect,
                                lambda s, w: frozenset(r.position for r in w if not r.offset < s[r.partition])])
def test_replayed_accepts_answers_written_another_way(fn):
    assert lesson08.replayed(fn).ok


def replayed_with_seen_positions():
    seen = set()

    def replayed(snapshot_at, written):
        new = {r.position for r in written if r.offset >= snapshot_at[r.partition]} - seen
        seen.update(new)
        return new

    return replayed


@pytest.mark.parametrize("fn, words", [
    (lambda s, w: {r.position for r in w if r.offset >= s[r.partition] - 1}, DIFFERS),  # one record too early
    (lambda s, w: {r.position for i, r in enumerate(w) if i >= s[r.partition]}, DIFFERS),  # place in the list
    (lambda s, w: {r.position for r in w if r.sales > s[r.partition]}, DIFFERS),  # the store's count, not the offset
    (lambda s, w: {r.position for r in w if r.offset < s[r.partition]}, DIFFERS),  # the rows before the snapshot
    (lambda s, w: {max((x for x in w if x.partition == r.partition), key=lambda x: x.offset).position
                   for r in w if r.offset >= s[r.partition]}, DIFFERS),  # only each partition's last row
    (lambda s, w: {r.position for r in w if r.offset >= s.get(0, 0)}, DIFFERS),  # partition 0's offset for all
    (replayed_with_seen_positions(), STATE),
])
def test_replayed_refuses_other_wrong_answers_with_their_hint_or_a_case(fn, words):
    refused(lesson08.replayed(fn), words)


def test_replayed_shows_a_small_case():
    feedback = lesson08.replayed(lambda s, w: {r.position for r in w if r.offset >= s[r.partition] - 1})
    assert "this 1 row written before the crash" in feedback.message, feedback


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
    (raising, "an error: IndexError"),  # on an empty batch, before any KeyError
    (altered, "store the rows as they come"),
])
def test_idempotent_sink_refuses_mistakes_with_their_hint(fn, words):
    feedback = lesson08.idempotent_sink(fn)
    assert feedback.status == "wrong" and words in feedback.message, feedback


def test_idempotent_sink_placeholder_says_not_yet():
    def write_rows(output, rows):
        raise NotImplementedError()
    assert lesson08.idempotent_sink(write_rows).status == "not yet"


def by_store_and_offset(output, rows):
    for row in rows:
        output[(row.store, row.offset)] = row  # a store lives in one partition: this names the sale too


def by_the_row_itself(output, rows):
    output.update({row: row for row in rows})


def a_list_without_copies(output, rows):
    kept = output.setdefault("rows", [])
    for row in rows:
        if row not in kept:
            kept.append(row)


def first_write_wins(output, rows):
    for row in rows:
        output.setdefault(f"{row.partition}/{row.offset}", row)


@pytest.mark.parametrize("fn", [by_store_and_offset, by_the_row_itself, a_list_without_copies, first_write_wins])
def test_idempotent_sink_accepts_answers_written_another_way(fn):
    assert lesson08.idempotent_sink(fn).ok


def by_count(output, rows):
    for row in rows:
        output[row.sales] = row  # stores share counts


def by_partition_and_count(output, rows):
    for row in rows:
        output[(row.partition, row.sales)] = row  # stores of one partition share counts


def by_store_and_total(output, rows):
    for row in rows:
        output[(row.store, row.total_cents)] = row  # a sale of 0 cents leaves the total as it was


def by_store_and_amount(output, rows):
    for row in rows:
        output[(row.store, row.cents)] = row  # two sales of the same amount


def only_the_latest_batch(output, rows):
    output.clear()
    for row in rows:
        output[row.position] = row


def each_batch_last_row(output, rows):
    if rows:
        output[rows[-1].position] = rows[-1]


def skipping_positions_seen_before():
    seen = set()

    def write_rows(output, rows):
        for row in rows:
            if row.position not in seen:
                seen.add(row.position)
                output[row.position] = row

    return write_rows


def first_row_of_a_batch_decides(output, rows):
    partition = rows[0].partition  # an empty batch has no first row
    for row in rows:
        output[(partition, row.offset)] = row


@pytest.mark.parametrize("fn, words", [
    (by_count, DIFFERS),
    (by_partition_and_count, DIFFERS),
    (by_store_and_total, DIFFERS),
    (by_store_and_amount, DIFFERS),
    (only_the_latest_batch, DIFFERS),
    (each_batch_last_row, DIFFERS),
    (skipping_positions_seen_before(), STATE),
    (first_row_of_a_batch_decides, "an error: IndexError"),
])
def test_idempotent_sink_refuses_other_wrong_answers_with_their_hint_or_a_case(fn, words):
    refused(lesson08.idempotent_sink(fn), words)


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
def steps_flat_map(records):
    by_store = op.key_on("by_store", op.map("decode", records, sale_from), lambda sale: sale.store)

    def add(state, sale):
        state, row = step(state, sale)
        return state, [row]

    return op.map("row", op.stateful_flat_map("running_total", by_store, add), lambda kv: kv[1])


def steps_own_state_with_numpy(records):
    keyed = op.key_on("by_store", records, lambda record: record.key)  # the record's key is its store
    sales = op.map_value("decode", keyed, sale_from)

    def add(state, sale):
        state = state or {"sales": np.int64(0), "cents": np.int64(0)}
        state = {"sales": state["sales"] + 1, "cents": state["cents"] + sale.cents}
        return state, Row(sale.store, sale.partition, sale.offset, sale.cents, state["sales"], state["cents"])

    return op.map("row", op.stateful_map("running_total", sales, add), lambda kv: kv[1])


def steps_emitting_everything_then_filtering(records):
    decoded = op.map("decode", records, lambda record: (record.key, sale_from(record)))
    rows = op.stateful_map("running_total", decoded, lambda state, sale: step(state, sale))
    return op.filter_map("rows", rows, lambda kv: kv[1] if isinstance(kv[1], Row) else None)


@pytest.mark.parametrize("fn", [steps_flat_map, steps_own_state_with_numpy, steps_emitting_everything_then_filtering])
def test_resumable_flow_accepts_answers_written_another_way(fn):
    assert lesson08.resumable_flow(fn).ok


def steps_with(add=step, key=lambda sale: sale.store, keep=lambda sale: True):
    def sales_steps(records):
        sales = op.filter("keep", op.map("decode", records, sale_from), keep)
        return op.map("row", op.stateful_map("running_total", op.key_on("by_store", sales, key), add),
                      lambda kv: kv[1])
    return sales_steps


def counting_from_one(state, sale):
    sales, total = state or (1, 0)  # the first sale counted twice
    sales, total = sales + 1, total + sale.cents
    return (sales, total), Row(sale.store, sale.partition, sale.offset, sale.cents, sales, total)


def total_in_euros(state, sale):
    sales, total = state or (0, 0.0)
    sales, total = sales + 1, total + sale.cents / 100
    return (sales, total), Row(sale.store, sale.partition, sale.offset, sale.cents, sales, total)


def final_totals(records):
    by_store = op.key_on("by_store", op.map("decode", records, sale_from), lambda sale: sale.store)
    totals = op.fold_final("totals", by_store, lambda: None,
                           lambda state, sale: step(state[:2] if state else None, sale)[0] + (sale,))
    return op.map("row", totals, lambda kv: Row(kv[0], kv[1][2].partition, kv[1][2].offset, kv[1][2].cents,
                                                kv[1][0], kv[1][1]))


_totals_outside = {}


def in_a_module_dict(records):
    def add(sale):
        count, total = _totals_outside.get(sale.store, (0, 0))
        (count, total), row = step((count, total), sale)
        _totals_outside[sale.store] = (count, total)
        return row

    return op.map("add", op.map("decode", records, sale_from), add)


def not_decoded(records):
    by_store = op.key_on("by_store", records, lambda record: record.key)
    return op.map("row", op.stateful_map("running_total", by_store, step), lambda kv: kv[1])


@pytest.mark.parametrize("fn, words", [
    (steps_with(add=counting_from_one), DIFFERS),
    (steps_with(add=total_in_euros), DIFFERS),
    (steps_with(keep=lambda sale: sale.cents > 0), DIFFERS),  # refunds and free sales are sales too
    (steps_with(key=lambda sale: str(sale.partition)), "key the sales by store"),  # stores share a partition
    (final_totals, "as a batch job does"),
    (in_a_module_dict, STATE),
    (not_decoded, "an error: AttributeError"),
])
def test_resumable_flow_refuses_other_wrong_answers_with_their_hint_or_a_case(fn, words):
    refused(lesson08.resumable_flow(fn), words)


def test_the_expected_outcome_is_the_solution_run_for_real():
    for case in lesson08.FLOW.cases():
        assert lesson08._crash_and_resume(lesson08._sales_steps, case) == lesson08._expected(case), case.label


# -- the cases hold the edges, the same every run -------------------------------------------------

def test_the_replay_cases_hold_the_edges():
    cases = [case.args for case in lesson08.REPLAYED.cases()]
    assert cases == [case.args for case in lesson08.REPLAYED.cases()]
    replayed = [lesson08._replayed(s, w) for s, w in cases]
    assert any(not w for s, w in cases)  # a crash at the very first record
    assert any(w and not any(s.values()) for s, w in cases)  # nothing committed: everything written comes twice
    assert any(w and not r for (s, w), r in zip(cases, replayed))  # everything committed: nothing comes twice
    assert any(len(s) >= 3 and len(set(s.values())) >= 3 for s, w in cases)  # partitions resuming at their own offsets
    assert max(map(len, replayed)) >= 100  # a long replay
    assert any(len(w) > len({r.position for r in w}) for s, w in cases)  # a ledger resumed before: copies
    assert any(any((p, o) not in {r.position for r in w} for p, o in s.items() if o < max(
        (r.offset for r in w if r.partition == p), default=-1)) for s, w in cases)  # a snapshot on a row routed aside


def test_the_sink_cases_hold_the_edges():
    cases = [case.args[0] for case in lesson08.SINK.cases()]
    batches = [lesson08._batches(c) for c in cases if not isinstance(c, lesson08._RealCrash)]
    assert any(b and not any(b) for b in batches)  # only empty batches
    assert any([] in b and any(b) for b in batches)  # an empty batch among others
    assert any(any(len(x) > len(set(x)) for x in b) for b in batches)  # a row twice in its batch
    assert any(len({r for x in b for r in x}) < sum(map(len, b)) and all(len(x) == len(set(x)) for x in b)
               for b in batches)  # a replay: rows written again in later batches
    assert any(len({r.partition for x in b for r in x}) > 1 and len({r.offset for x in b for r in x}) < len(
        {r.position for x in b for r in x}) for b in batches)  # partitions sharing offsets
    assert any(max([r.sales for x in b for r in x], default=0) >= 10 for b in batches)  # a store updated many times
    assert any(sum(map(len, b)) >= 100 for b in batches)  # a long replay
    assert sum(isinstance(c, lesson08._RealCrash) for c in cases) == 2  # and the dataflow itself, last
    assert isinstance(cases[-1], lesson08._RealCrash)


def test_the_flow_cases_hold_the_edges():
    cases = [case.args for case in lesson08.FLOW.cases() if not isinstance(case.args[0], lesson08._RealCrash)]
    assert any(not sales for sales, *_ in cases)  # an empty log
    assert any(sales and at == 0 for sales, _, _, at in cases)  # a crash at the first record
    assert any(sales and at == len(sales) - 1 for sales, _, _, at in cases)  # a crash at the last record
    assert any(p >= 3 for _, p, _, _ in cases)  # several partitions
    assert any(len(sales) - at >= 2 and b > 1 and at % b for sales, _, b, at in cases)  # part-way through a batch
    assert any(len({e.key for e in sales}) > p for sales, p, _, _ in cases)  # stores sharing a partition


def rows_as_keys(output, rows):
    """A dict used as a set: each row a key, written again on a replay without making a copy."""
    for row in rows:
        output[row] = True


def test_a_sink_keeping_its_rows_as_keys_is_right():
    assert lesson08.idempotent_sink(rows_as_keys).ok
