"""Lesson 06: the stream gives the batch answer on 1 worker, 2 worker threads and 2 processes; nothing is lost."""

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamlab import batch, ev, stream
from streamlab.events import COURSE_START
from streamlab.stream.charging import process_command

PROPERTY = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def fleet(seed=7, **kw):
    return ev.fleet(**{"seed": seed, "chargers": 80, "sites": 6, "broken": 0.02, "outages": 0.05,
                       "unregistered": 2, **kw})


@PROPERTY
@given(seed=st.integers(0, 10_000), partitions=st.integers(1, 6), disorder=st.sampled_from([0.0, 1.0, 5.0, 20.0]),
       minutes=st.integers(1, 40), batch_size=st.sampled_from([1, 7, 1000]), poll=st.sampled_from([None, 0.5, 3.0]))
def test_stream_equals_batch_when_the_watermark_covers_the_disorder(seed, partitions, disorder, minutes, batch_size,
                                                                    poll):
    f = fleet(seed, disorder=disorder)
    until = COURSE_START + timedelta(minutes=minutes)
    pile = batch.charging(f, until=until)
    pipe = stream.charging(f, until=until, partitions=partitions, batch_size=batch_size, poll=poll)
    assert pipe.differences(pile) == {}
    assert pipe.reconciles and pile.reconciles and pile.messages == len(f.pile(until=until))
    assert pipe.late.empty


@pytest.mark.parametrize("workers, processes", [(2, 1), (1, 2), (2, 2)])
def test_every_configuration_gives_the_batch_answer(workers, processes):
    f = fleet(disorder=10.0)
    until = COURSE_START + timedelta(minutes=45)
    answer = stream.charging(f, until=until, partitions=5, workers=workers, processes=processes)
    assert answer.differences(batch.charging(f, until=until)) == {}
    assert answer.reconciles and not answer.aside.empty and not answer.silences.empty


def test_no_process_outlives_a_cluster_run():
    psutil = pytest.importorskip("psutil")  # installed with jupyter; only this check needs it
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    f = fleet()
    stream.charging(f, until=COURSE_START + timedelta(minutes=5), processes=2)
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before


def test_a_watermark_shorter_than_the_disorder_makes_energy_late_and_says_how_much():
    f = fleet(disorder=20.0)
    until = COURSE_START + timedelta(minutes=40)
    pile = batch.charging(f, until=until)
    pipe = stream.charging(f, until=until, delay=2.0, partitions=3, poll=1.0)
    assert not pipe.late.empty
    # Nothing is lost: per site and minute, the batch's energy = the stream's on time + the stream's late.
    on_time = pipe.load.set_index(["site", "minute"])["energy_wh"]
    late = pipe.late.groupby(["site", "minute"])["energy_wh"].sum()
    both = on_time.add(late, fill_value=0).astype("int64")
    assert both[both > 0].sort_index().equals(pile.load.set_index(["site", "minute"])["energy_wh"].sort_index())
    # The rest of the answer does not depend on the watermark: each charger's messages arrive in order.
    assert set(pipe.differences(pile)) <= {"load"}


def test_the_two_machine_command_names_each_process_and_every_address():
    command = process_command(1, ["10.0.0.1:2101", "10.0.0.2:2101"], 2)
    assert command[1:4] == ["-m", "bytewax.run", "streamlab.stream.charging:job()"]
    assert command[4:] == ["-i", "1", "-a", "10.0.0.1:2101;10.0.0.2:2101", "-w", "2"]


@pytest.mark.parametrize("kwargs, field", [
    ({"partitions": 0}, "partitions"), ({"workers": 0}, "workers"), ({"processes": 0}, "processes"),
    ({"batch_size": 0}, "batch_size"), ({"delay": -1}, "delay"), ({"silence": "long"}, "silence"),
    ({"poll": 0}, "poll"),
])
def test_bad_arguments_are_named_before_anything_runs(kwargs, field):
    with pytest.raises((ValueError, TypeError), match=field):
        stream.charging(fleet(), until=COURSE_START + timedelta(minutes=1), **kwargs)


def test_batch_and_stream_refuse_what_is_not_a_fleet():
    for driver in (batch.charging, stream.charging):
        with pytest.raises(TypeError, match="fleet must be a Fleet"):
            driver([], until=COURSE_START)


def test_partitions_given_as_piles_end_where_the_piles_end():
    # A pile given in full ends without a message past the cut: the stream must still finish.
    f = fleet(disorder=5.0)
    until = COURSE_START + timedelta(minutes=20)
    piles = [f.pile(until=until, partition=p, partitions=3) for p in range(3)]
    assert stream.charging(f, until=until, partitions=3, piles=piles).differences(batch.charging(f, until=until)) == {}
    with pytest.raises(ValueError, match="one list per partition"):
        stream.charging(f, until=until, partitions=4, piles=piles)
