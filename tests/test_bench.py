"""The benchmarks: every reference gives the stream's answer, and a wrong one is caught. No timing is tested."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest

from streamlab import stream
from streamlab.bench import TIMED, AnswerMismatch, Benchmark, Contender, check_answers, main, measure, table
from streamlab.bench import charging as charging_bench
from streamlab.bench import fraud as fraud_bench
from streamlab.bench import log as log_bench
from streamlab.bench import panes as panes_bench
from streamlab.bench import recovery as recovery_bench
from streamlab.bench import schemas as schemas_bench
from streamlab.bench import summary as summary_bench
from streamlab.bench import windows as windows_bench
from streamlab.bench.windows import window_loop
from streamlab.events import pipe, take
from streamlab.panes import Delay, loop
from streamlab.windows import CLOSED_AT_END, Session, Sliding, Tumbling

MODULES = {"charging": charging_bench, "summary": summary_bench, "windows": windows_bench, "panes": panes_bench, "fraud": fraud_bench,
           "log": log_bench, "recovery": recovery_bench, "schemas": schemas_bench}


def test_quick_runs_every_benchmark_and_prints_each_table(tmp_path, capsys):
    # The references are checked against the stream inside; the timings are printed, never asserted.
    main(["--quick", "--json", str(tmp_path / "timings.json")])
    out = capsys.readouterr().out
    assert out.count("\n### Lesson 0") == len(TIMED)
    assert out.count("| **stream**") >= len(TIMED)
    assert "| plain Python loop (`summary.fold`" in out and "median of 2 interleaved rounds (min–max)" in out
    dump = json.loads((tmp_path / "timings.json").read_text())
    assert sorted(dump["benchmarks"]) == sorted(TIMED)
    for rows in dump["benchmarks"].values():
        for row in rows:
            assert len(row["cpu_seconds"]) == 2 and row["cpu_ratio"]["min"] <= row["cpu_ratio"]["median"]
            if row["reference"]:
                assert row["cpu_ratio"]["median"] == 1.0


def test_every_timed_benchmark_has_a_module():
    assert set(TIMED) == set(MODULES)


def test_an_unknown_benchmark_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["sumary"])
    assert "no benchmark named sumary" in capsys.readouterr().err


def _broken(bench: Benchmark, wrong) -> Benchmark:
    """The benchmark with its first group's reference run on a wrong input."""
    group = bench.groups[0]
    reference = group.reference
    broken = Contender(reference.label, lambda data: reference.run(wrong(data)), reference.check)
    bench.groups[0] = dataclasses.replace(group, reference=broken)
    return bench


def _without_first_bad_purchase(pile):
    # Dropping a purchase that raises nothing and is not routed aside changes no answer:
    # drop one that the rules route aside.
    first_bad = next(i for i, p in enumerate(pile) if p.amount is None or p.lat is None or p.card not in PROFILES)
    return pile[:first_bad] + pile[first_bad + 1:]


PROFILES = fraud_bench.purchases(seed=fraud_bench.SEED).profiles


@pytest.mark.parametrize(("name", "wrong"), [
    ("summary", lambda events: events[:-1]),
    ("windows", lambda events: events[:-1]),
    ("panes", lambda events: events[:-1]),
    ("fraud", _without_first_bad_purchase),
    ("schemas", lambda messages: messages[:-1]),
])
def test_a_reference_that_misses_one_event_is_caught(name, wrong):
    bench = _broken(MODULES[name].benchmark(quick=True), wrong)
    try:
        with pytest.raises(AnswerMismatch, match="give different answers"):
            check_answers(bench)
    finally:
        bench.close()


def test_a_wrong_table_of_orders_is_caught():
    bench = _broken(log_bench.benchmark(quick=True), lambda events: events[:-1])
    try:
        with pytest.raises(AnswerMismatch, match="the tables of orders differ"):
            measure(bench, rounds=1, progress=False)
    finally:
        bench.close()


def _late_against_the_watermark_after_them(events, window, delay):
    # A late event's watermark is the one it arrived behind, not the one after it: shifted by a second here.
    answer = window_loop(events, window, delay)
    return answer._replace(late_events=[(*row[:4], row[4] + timedelta(seconds=1)) for row in answer.late_events])


def _every_window_answered_at_the_end(events, window, delay):
    # A loop that never closes a window on the watermark: right counts, wrong emission times.
    answer = window_loop(events, window, delay)
    return answer._replace(windows=[(*row[:6], answer.ended_at, CLOSED_AT_END) for row in answer.windows])


@pytest.mark.parametrize(("wrong", "what"), [
    (_late_against_the_watermark_after_them, "the late events differ"),
    (_every_window_answered_at_the_end, "the windows differ"),
])
def test_a_windows_reference_with_other_semantics_is_caught(monkeypatch, wrong, what):
    monkeypatch.setattr(windows_bench, "window_loop", wrong)
    with pytest.raises(AnswerMismatch, match=what):
        check_answers(windows_bench.benchmark(quick=True))


@pytest.mark.parametrize("window", [Tumbling(10), Sliding(10, slide=5), Tumbling(7, align_to=pipe().start)])
@pytest.mark.parametrize("delay", [0, 2, 30])
def test_the_windows_loop_gives_the_streams_answer(window, delay):
    events = take(pipe(seed=3, keys=3, disorder=20, delays="long_tail", missing=0.02), 1500)
    expected = window_loop(events, window, delay).as_windowed()
    assert windows_bench.same_windows(stream.windowed(events, window, delay=delay), expected) is None


def test_the_windows_loop_refuses_sessions():
    with pytest.raises(TypeError, match="tumbling and sliding"):
        window_loop([], Session(5), 0)


def test_the_report_gives_median_and_spread_of_each_ratio():
    bench = Benchmark("toy", "A toy", "items", [])
    from streamlab.bench import Group

    bench.groups.append(Group(
        "3 items", [1, 2, 3], 3, Contender("loop", sum, lambda r, e: None),
        (Contender("**fancy**", lambda data: sum(sorted(data)), lambda r, e: None if r == e else "differs"),),
    ))
    measured = measure(bench, rounds=5, progress=False)
    assert [len(m.timings) for m in measured] == [5, 5]
    text = table(bench, measured, 5)
    assert "| loop | " in text and "| 1.00× | 1.00× |" in text
    assert "median of 5 interleaved rounds (min–max)" in text
    fancy = next(line for line in text.splitlines() if line.startswith("| **fancy**"))
    assert fancy.count("×") == 2 and "–" in fancy


def _windows_close_when_the_next_event_arrives(events, length=panes_bench.LENGTH, delay=panes_bench.DELAY):
    # A loop that closes a window only when an event comes, not when the clock brings the watermark there.
    answer = panes_bench.idiomatic_loop(events, length, delay)
    later = {row[:3]: next((e.arrival_time for e in events if e.arrival_time >= row[5]), row[5]) for row in answer.panes}
    return answer._replace(panes=[(*row[:5], later[row[:3]], row[6]) for row in answer.panes])


def test_a_panes_reference_that_closes_windows_at_arrivals_only_is_caught(monkeypatch):
    bench = panes_bench.benchmark(quick=True)
    group = bench.groups[0]
    bench.groups[0] = dataclasses.replace(group, reference=Contender(
        group.reference.label, _windows_close_when_the_next_event_arrives, group.reference.check))
    with pytest.raises(AnswerMismatch, match="pane"):
        check_answers(bench)


@pytest.mark.parametrize("delay", [0, 3, 30])
def test_the_idiomatic_panes_loop_gives_the_engines_answer(delay):
    events = take(pipe(seed=5, keys=4, disorder=20, delays="long_tail", missing=0.02), 2000)
    engine = loop(events, panes_bench.WINDOW, watermark=Delay(delay))
    assert panes_bench.same_panes(engine, panes_bench.idiomatic_loop(events, delay=timedelta(seconds=delay))) is None


def test_a_recovery_reference_that_misses_one_sale_is_caught_and_every_store_is_removed(monkeypatch):
    bench = recovery_bench.benchmark(quick=True)
    root = bench.groups[0].input.path.parent
    try:
        check_answers(bench)
        assert len(list(root.glob("recovery-*"))) == 6  # a fresh recovery store for each run with recovery
    finally:
        bench.close()
    assert not root.exists()
    loop = recovery_bench.loop
    monkeypatch.setattr(recovery_bench, "loop", lambda log: loop(log)[:-1])
    bench = recovery_bench.benchmark(quick=True)
    try:
        with pytest.raises(AnswerMismatch, match="the totals per store differ"):
            check_answers(bench)
    finally:
        bench.close()


def test_a_charging_reference_that_loses_a_message_is_caught():
    bench = _broken(charging_bench.benchmark(quick=True), lambda data: data._replace(merged=data.merged[1:]))
    with pytest.raises(AnswerMismatch, match="differs from the plain loop"):
        check_answers(bench)


def test_scale_runs_every_configuration_to_the_same_answer_and_measures_memory():
    from streamlab.bench import scale

    n, times = scale.wall_times(scale.QUICK_MESSAGES, rounds=1)
    assert n > 10_000 and set(times) == set(scale.CONFIGURATIONS) and all(len(t) == 1 for t in times.values())
    assert scale.peak_rss_mib(2_000) > 0
