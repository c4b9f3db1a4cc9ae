"""Lesson 06's checks: right answers written several ways pass; plausible wrong ones get their own hint or a case."""

import builtins
import zlib

import numpy as np
import pytest

from streamlab import ev
from streamlab.exercises import lesson06

CHARGERS = ev.fleet(seed=11, chargers=120, sites=8, broken=0.02, unregistered=3)


def not_implemented(*args):
    raise NotImplementedError()


@pytest.mark.parametrize("check", [lesson06.pile_gb, lesson06.charger_key, lesson06.site_clock])
def test_a_placeholder_is_not_yet(check):
    assert check(not_implemented).status == "not yet"


# -- exercise 1 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [
    lambda rate, size, hours: rate * 3600 * hours * size / 1e9,
    lambda rate, size, hours: np.float64(rate) * size * hours * 60 * 60 / 10**9,
    lambda rate, size, hours: round(rate * size * hours * 3600 / 1_000_000_000, 9),
    lambda rate, size, hours: (rate * hours * 3600) * (size / 1e9),
])
def test_pile_gb_accepts_right_answers(fn):
    assert lesson06.pile_gb(fn).ok


@pytest.mark.parametrize("fn, says", [
    (lambda rate, size, hours: rate * hours * size / 1e9, "3,600 seconds"),
    (lambda rate, size, hours: rate * 60 * hours * size / 1e9, "60 minutes of 60 seconds"),
    (lambda rate, size, hours: rate * 3600 * hours * size / 2**30, "10⁹ bytes"),
    (lambda rate, size, hours: rate * 3600 * hours * size, "not bytes"),
    (lambda rate, size, hours: rate * 86_400 * size / 1e9, "differs"),            # always a day
    (lambda rate, size, hours: rate * 3600 * hours / 1e9, "differs"),             # messages, not bytes
    (lambda rate, size, hours: round(rate * 3600 * hours * size / 1e9), "differs"),  # rounded to whole GB
])
def test_pile_gb_refuses_wrong_answers_with_their_hint(fn, says):
    feedback = lesson06.pile_gb(fn)
    assert feedback.status == "wrong" and says in feedback.message


# -- exercise 2 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [
    lambda m: m.charger,
    lambda m: CHARGERS.site_of.get(m.charger, "unregistered"),
    lambda m: f"p{ev.partition_for(m.charger, 8)}",
    lambda m: str(zlib.crc32(m.charger.encode()) % 3),
])
def test_charger_key_accepts_keys_that_keep_a_charger_together(fn):
    assert lesson06.charger_key(fn).ok


@pytest.mark.parametrize("fn, says", [
    (lambda m: m.kind, "different keys"),
    (lambda m: m.message_id, "different keys"),
    (lambda m: str(m.transaction), "different keys"),
    (lambda m: CHARGERS.site_of[m.charger], "KeyError"),
    (lambda m: ev.partition_for(m.charger, 8), "must be a string"),
    (lambda m: "all", "one key"),
    (lambda m: m.charger + m.kind[:1], "different keys"),
])
def test_charger_key_refuses_keys_that_split_or_break_with_their_hint(fn, says):
    feedback = lesson06.charger_key(fn)
    assert feedback.status == "wrong" and says in feedback.message


_SENT = [0]


def key_round_robin(m):
    # Spreads the load evenly, message by message: a charger's messages land on every key.
    _SENT[0] += 1
    return f"worker-{_SENT[0] % 4}"


@pytest.mark.parametrize("fn", [
    lambda m: m.charger.lower(),
    lambda m: m.message_id.rsplit(":", 1)[0],
    lambda m: m.charger[:-1],                           # ten chargers to a key
    lambda m: CHARGERS.site_of.get(m.charger, m.charger),
])
def test_charger_key_accepts_other_keys_that_depend_only_on_the_charger(fn):
    assert lesson06.charger_key(fn).ok


@pytest.mark.parametrize("fn, says", [
    (lambda m: f"{m.charger}-{m.event_time:%H}", "different keys on this input"),       # state dropped every hour
    (lambda m: f"{m.charger}/{m.arrival_time:%Y-%m-%d}", "different keys on this input"),  # ... every day
    (lambda m: f"{CHARGERS.site_of.get(m.charger, 'new')}@{m.event_time.hour}", "different keys on this input"),
    (lambda m: CHARGERS.site_of.get(m.charger), "must be a string"),                    # None when unregistered
    (lambda m: m.charger.encode(), "must be a string"),
    (key_round_robin, "different keys"),
    (lambda m: f"{m.charger}:{m.event_time.minute // 10}", "different keys"),          # ten-minute buckets
])
def test_charger_key_refuses_new_wrong_keys_with_their_hint_or_a_case(fn, says):
    feedback = lesson06.charger_key(fn)
    assert feedback.status == "wrong" and says in feedback.message, feedback.message


def test_a_key_from_pythons_salted_hash_is_refused_as_another_process_would_key_it():
    def by_hash(m):
        return f"group-{hash(m.charger) % 8}"

    def by_crc(m):  # the same in every process
        return f"group-{zlib.crc32(m.charger.encode()) % 8}"

    feedback = lesson06.charger_key(by_hash)
    assert feedback.status == "wrong" and "changes from one process to the next" in feedback.message, feedback
    assert lesson06.charger_key(lambda m: f"group-{hash(m.charger) % 8}").status == "wrong"  # in a lambda too
    assert lesson06.charger_key(by_crc).ok



def test_charger_key_shows_the_messages_where_a_key_splits_a_session():
    message = lesson06.charger_key(lambda m: f"{m.charger}-{m.event_time:%H}").message
    assert "StartTransaction" in message and "your answer is" in message and "it should be" in message
    assert "went under the keys" in message


def test_charger_key_reference_gives_the_batch_jobs_answer_on_the_lessons_fleet():
    from datetime import timedelta

    from streamlab.batch.charging import charging

    chargers, pile = lesson06._keying_case()
    until = chargers.start + timedelta(minutes=lesson06.LESSON_MINUTES)
    batch = charging(chargers, until=until, pile=pile)
    for partitions, workers in ((1, 1), (8, 2)):
        found = lesson06._run(lesson06._lesson_key, chargers.site_of, pile, partitions, workers)
        assert {c: wh for c, _, wh in found.sessions} == batch.chargers.set_index("charger")["energy_wh"].to_dict()
        assert dict(found.aside) == batch.reasons.to_dict()


def test_charger_key_cases_hold_their_edges():
    cases = [case for case, _ in lesson06.KEY.solved()]
    starts = {case.args[0][0].event_time.hour for case in cases if case.args[0]}
    assert {0, 9, 23} <= starts                                     # pipes that start at other times
    assert any(any(m.charger not in case.args[1] for m in case.args[0]) for case in cases)  # unregistered
    assert {case.args[2] for case in cases} >= {1, 2, 3, 8} and {case.args[3] for case in cases} == {1, 2}
    assert any(answer.sessions for _, answer in lesson06.KEY.solved())


# -- exercise 3 ------------------------------------------------------------------------------------


def clock_sorted(marks, n):
    return sorted(marks.values())[0] if len(marks) == n and marks else None


def clock_loop(marks, n):
    if len(marks) != n:
        return None
    slowest = None
    for t in marks.values():
        slowest = t if slowest is None or t < slowest else slowest
    return slowest


@pytest.mark.parametrize("fn", [
    lambda marks, n: min(marks.values()) if len(marks) >= n else None,
    clock_sorted,
    clock_loop,
])
def test_site_clock_accepts_right_answers(fn):
    assert lesson06.site_clock(fn).ok


@pytest.mark.parametrize("fn, says", [
    (lambda marks, n: max(marks.values()) if len(marks) == n and marks else None, "fastest partition"),
    (lambda marks, n: min(marks.values()) if marks else None, "not heard from yet"),
    (lambda marks, n: min(marks.values()) if len(marks) == n and marks else min(marks.values(), default=None),
     "not heard from yet"),
    (lambda marks, n: min(marks.values()) if len(marks) > 1 else None, "differs"),
    (lambda marks, n: sorted(marks.values())[len(marks) // 2] if len(marks) == n and marks else None, "differs"),
    (lambda marks, n: marks.get(0) if len(marks) == n else None, "differs"),  # the first partition's
])
def test_site_clock_refuses_wrong_answers_with_their_hint(fn, says):
    feedback = lesson06.site_clock(fn)
    assert feedback.status == "wrong" and says in feedback.message


def test_a_salted_hash_is_caught_in_a_helper_too_and_a_hash_of_a_number_is_the_same_everywhere():
    def bucket(text):
        return hash(text) % 16

    assert "changes from one process" in lesson06.charger_key(lambda m: f"k{bucket(m.charger)}").message
    assert lesson06.charger_key(lambda m: f"k{hash(int(m.charger.rsplit('-', 1)[-1])) % 16}").ok
    assert builtins.hash is lesson06._ORIGINAL_HASH  # the builtin is back
