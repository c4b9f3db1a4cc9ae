"""The checks' benchmark runs the checks' own answer tests in rounds and reports per lesson (timings not asserted)."""

from streamlab.bench import ON_REQUEST, checks


def test_the_checks_benchmark_times_the_answer_tests_of_a_lesson_in_rounds_and_runs_only_when_named():
    assert "checks" in ON_REQUEST
    timer = checks.measure_checks(2, lessons=("lesson01",), keyword="cut_the_pile")
    assert len(timer.times) >= 10 and not timer.failed
    assert all(len(runs) == 2 for runs in timer.times.values())
    assert all("accepts" in nodeid or "refuses" in nodeid for nodeid in timer.times)
    rows = checks.summarise(timer.times)
    assert [row["lesson"] for row in rows] == ["lesson01"] and rows[0]["answers"] == len(timer.times)
    text = checks.render(rows, 2)
    assert f"| 01 | {len(timer.times)} | " in text and "took a second or more" in text
