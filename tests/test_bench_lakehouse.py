"""Lesson 09's benchmark: its quick run checks the answers and prints both tables; no timing is asserted."""

from __future__ import annotations

import dataclasses

import pytest

from streamlab.bench import ON_REQUEST, AnswerMismatch, Contender, check_answers, main
from streamlab.bench import lakehouse as lakehouse_bench


def test_quick_run_prints_both_tables(capsys):
    main(["lakehouse", "--quick"])
    out = capsys.readouterr().out
    assert "### Lesson 09: Iceberg commit time" in out and "### Lesson 09: loading a day" in out
    assert "| **recommended**" in out and "| **stream**" in out and "| **nightly job**" in out
    assert "lakehouse" in ON_REQUEST


def test_a_loop_that_misses_a_record_is_caught():
    bench = lakehouse_bench.load_benchmark(quick=True)
    group = bench.groups[0]
    reference = group.reference

    def fewer(log):
        table = reference.run(log)
        rows = lakehouse_bench.lh.read(table)
        return rows.iloc[:-1]

    broken = dataclasses.replace(group, reference=Contender(reference.label, fewer, reference.check),
                                 answer=lambda rows: rows)
    bench.groups[0] = broken
    try:
        with pytest.raises(AnswerMismatch, match="the tables' rows differ"):
            check_answers(bench)
    finally:
        bench.close()
