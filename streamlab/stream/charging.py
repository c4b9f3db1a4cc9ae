"""Lesson 06 as a stream: partitions of charger messages, read by one or more workers, threads or processes.

The dataflow (:func:`charging_flow`) has two stateful steps:

1. ``rules``, keyed by partition: each partition's messages, a polled batch at
   a time, go through the course's rules (:class:`~streamlab.ev.Chargers`,
   which keeps each charger's state). Out come sessions, silences, messages set
   aside, and each site's energy per minute in this batch (summed here, before
   the exchange: a combiner). With it goes the partition's *watermark*: the
   arrival time of its latest message minus ``delay``. A partition's messages
   arrive in order, so none of its later messages happened before that.
2. ``site load``, keyed by site: adds the energy into 1-minute windows and
   closes a minute once *every* partition's watermark has passed its end: the
   slowest partition sets the site's clock, so a partition read faster than
   another (on another worker) cannot close a minute too early.

:func:`charging` runs it on 1 worker, on ``workers`` threads, or on
``processes`` real processes that talk over loopback TCP, as they would across
machines, and returns the same :class:`~streamlab.charging.Charging` as the
batch driver: the same answer in every configuration when ``delay`` covers the
disorder.

>>> from datetime import timedelta
>>> from streamlab import ev
>>> from streamlab.batch.charging import charging as batch_charging
>>> f = ev.fleet(seed=1, chargers=20, sites=3)
>>> until = f.start + timedelta(hours=1)
>>> charging(f, until=until, partitions=4).differences(batch_charging(f, until=until))
{}
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
from bytewax.dataflow import Dataflow
from bytewax.errors import BytewaxRuntimeError
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.testing import cluster_main

from streamlab.charging import Charging
from streamlab.ev import MAX_PARTITIONS, Chargers, Fleet, fleet as make_fleet
from streamlab.events import MAX_BATCH_SIZE, check_count, check_utc, duration
from streamlab.stream.runner import DEFAULT_BATCH_SIZE, StreamError, _explain, quiet_rust_errors

__all__ = ["Batch", "FleetSource", "charging", "charging_flow", "process_command", "run_processes", "site_items",
           "write_piles"]

#: Environment variable through which a process of a cluster learns what to run (see :func:`job`).
JOB_ENV = "STREAMLAB_CHARGING_JOB"
#: Longest a cluster of processes may take before it is stopped (a cell must never hang).
PROCESS_TIMEOUT = 300.0
MINUTE = timedelta(minutes=1)


class Batch(NamedTuple):
    """What one partition hands over at a time: its next messages, and its latest arrival time.

    ``done`` is True on the last batch of a partition cut at ``until``: nothing more will come.
    """

    messages: list
    last_arrival: datetime | None
    done: bool


class _FleetPartition(StatefulSourcePartition[tuple[str, Batch], int]):
    def __init__(self, source: FleetSource, partition: int, resume_at: int | None) -> None:
        self._source = source
        self._key = f"p{partition:03d}"
        piles = source.piles
        if piles is None:
            self._it: Iterator = source.fleet.partition(partition, source.partitions)
        elif isinstance(piles, Path):
            # A partition stored by write_piles(): read here, by the worker that reads this partition.
            self._it = iter(pickle.loads((piles / f"partition-{partition}.pickle").read_bytes()))
        else:
            self._it = iter(piles[partition])
        self._read = 0
        self._done = False
        self._pending = None
        # Resuming: the partition is generated afresh and skips what was read before (its offset).
        for _ in range(resume_at or 0):
            next(self._it)
            self._read += 1

    def next_batch(self) -> list[tuple[str, Batch]]:
        if self._done:
            raise StopIteration()
        until, size, poll = self._source.until, self._source.batch_size, self._source.poll
        batch = []
        it = self._it
        end = None  # with a poll interval: the end of the interval the first message arrived in
        while len(batch) < size:
            message = self._pending if self._pending is not None else next(it, None)
            self._pending = None
            if message is None:
                # A pile given in full has run out: that partition is done too.
                self._done = True
                break
            if message.arrival_time >= until:
                self._done = True
                break
            if poll is not None:
                if end is None:
                    end = self._source.fleet.start + poll * ((message.arrival_time - self._source.fleet.start) // poll + 1)
                elif message.arrival_time >= end:
                    self._pending = message  # it belongs to the next poll
                    break
            batch.append(message)
        self._read += len(batch)
        return [(self._key, Batch(batch, batch[-1].arrival_time if batch else None, self._done))]

    def snapshot(self) -> int:
        return self._read


class FleetSource(FixedPartitionedSource[tuple[str, Batch], int]):
    """The fleet's messages in ``partitions`` partitions (by charger), each a bytewax partition, cut at ``until``.

    Each worker reads the partitions bytewax gives it; a partition hands over
    ``(partition key, Batch)`` items, up to ``batch_size`` messages each (a
    Kafka consumer's poll), and remembers its offset (its snapshot), so a
    resumed dataflow carries on where it stopped.

    By default each partition's messages are generated from the fleet's seed as
    they are read. ``piles`` gives them instead: one list per partition, in
    arrival order (``[fleet.pile(until=..., partition=p, partitions=n) ...]``),
    or a directory written by :func:`write_piles` (each process of a cluster
    reads its own partitions from it), so that a benchmark times the dataflow,
    not the generator.

    ``poll`` models a live consumer: a batch then holds only what arrived in
    one interval of that length (of the simulated arrival clock), as a poll
    every ``poll`` seconds would get; without it, a batch is ``batch_size``
    messages, however long they took to arrive (a replay).
    """

    def __init__(self, fleet: Fleet, *, until: datetime, partitions: int = 8,
                 batch_size: int = DEFAULT_BATCH_SIZE, piles: Sequence[list] | Path | None = None,
                 poll: timedelta | float | None = None) -> None:
        if not isinstance(fleet, Fleet):
            raise TypeError(f"fleet must be a Fleet (streamlab.ev.fleet(...)), got {type(fleet).__name__}")
        check_utc("until", until)
        check_count("partitions", partitions, 1, MAX_PARTITIONS)
        check_count("batch_size", batch_size, 1, MAX_BATCH_SIZE)
        if piles is not None and not isinstance(piles, Path) and len(piles) != partitions:
            raise ValueError(f"piles must hold one list per partition ({partitions}), got {len(piles)}")
        self.fleet, self.until, self.partitions, self.batch_size = fleet, until, partitions, batch_size
        self.piles = piles
        self.poll = None if poll is None else duration("poll", poll)
        if self.poll is not None and self.poll <= timedelta(0):
            raise ValueError(f"poll must be > 0, got {self.poll.total_seconds():g} s")

    def list_parts(self) -> list[str]:
        return [str(p) for p in range(self.partitions)]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _FleetPartition:
        return _FleetPartition(self, int(for_part), resume_state)


class _PartitionRules:
    """The state of step 1 for one partition: the rules, and the last watermark minute sent to every site."""

    def __init__(self, fleet: Fleet, silence: timedelta) -> None:
        self.rules = Chargers(fleet.site_of, silence)
        self.sites = fleet.site_ids
        self.sent_minute: datetime | None = None
        self.read = 0


def _rules_step(fleet: Fleet, silence: timedelta, delay: timedelta, until: datetime):
    def step(state: _PartitionRules | None, batch: Batch) -> tuple[_PartitionRules, list]:
        state = state or _PartitionRules(fleet, silence)
        rules = state.rules
        n_sessions, n_silences, n_aside = len(rules.sessions), len(rules.silences), len(rules.aside)
        state.read += len(batch.messages)
        for message in batch.messages:
            rules.feed(message)
        if batch.done:
            rules.close(until)
        out: list = [("session", s) for s in rules.sessions[n_sessions:]]
        out += [("silence", s) for s in rules.silences[n_silences:]]
        out += [("aside", a) for a in rules.aside[n_aside:]]
        # The found items are sent on; the rules keep only each charger's state.
        del rules.sessions[:], rules.silences[:], rules.aside[:]
        if batch.done:
            out += [("read", state.read), ("used", rules.used)]
        # None stands for "this partition is done": its clock is past every minute.
        watermark = None if batch.done else (batch.last_arrival - delay if batch.last_arrival else None)
        per_site: dict[str, dict[datetime, int]] = {}
        for (site, minute), wh in rules.load.items():
            per_site.setdefault(site, {})[minute] = wh
        rules.load.clear()
        minute = None if watermark is None else watermark.replace(second=0, microsecond=0)
        if batch.done or minute != state.sent_minute:
            # The watermark entered a new minute: every site must hear it, to close its windows.
            state.sent_minute = minute
            targets = state.sites
        else:
            targets = per_site
        if watermark is not None or batch.done:
            for site in targets:
                out.append(("load", site, (batch.done, watermark, per_site.get(site, {}))))
        return state, out

    return step


class _SiteWindows:
    """The state of step 2 for one site: open minutes, and each partition's watermark."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.open: dict[datetime, int] = {}
        self.marks: dict[str, datetime | None] = {}
        self.done: set[str] = set()
        self.closed_until: datetime | None = None


def _site_step(partitions: int):
    def step(state: _SiteWindows | None, item: tuple[str, tuple]) -> tuple[_SiteWindows, list]:
        state = state or _SiteWindows(partitions)
        part, (done, watermark, energy) = item
        out = []
        for minute, wh in energy.items():
            if state.closed_until is not None and minute < state.closed_until:
                out.append(("late", minute, wh))
            else:
                state.open[minute] = state.open.get(minute, 0) + wh
        if done:
            state.done.add(part)
            state.marks.pop(part, None)
        elif watermark is not None:
            state.marks[part] = watermark
        if len(state.done) == state.partitions:
            clock = None  # every partition has ended: every minute is complete
        elif len(state.marks) + len(state.done) == state.partitions:
            clock = min(state.marks.values())
        else:
            return state, out  # a partition not heard from yet could still send anything
        for minute in sorted(state.open):
            if clock is not None and minute + MINUTE > clock:
                break
            out.append(("minute", minute, state.open.pop(minute)))
            closed = minute + MINUTE
            state.closed_until = closed if state.closed_until is None else max(state.closed_until, closed)
        if clock is not None:
            # Minutes with no energy at all close too: energy for them now would be late.
            edge = clock.replace(second=0, microsecond=0)
            state.closed_until = edge if state.closed_until is None else max(state.closed_until, edge)
        return state, out

    return step


def charging_flow(
    fleet: Fleet,
    *,
    until: datetime,
    partitions: int = 8,
    delay: timedelta | float | None = None,
    silence: timedelta | float = 300.0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    sink: DynamicSink | None = None,
    piles: Sequence[list] | Path | None = None,
    poll: timedelta | float | None = None,
) -> Dataflow:
    """The packaged dataflow: partitions → rules (keyed by partition) → site windows (keyed by site) → ``sink``.

    Every item reaching ``sink`` is ``(kind, ...)``: ``("session", Session)``,
    ``("silence", Silence)``, ``("aside", Aside)``, ``("used", n)`` once per
    partition, ``("minute", site, minute, wh)`` for a closed site-minute and
    ``("late", site, minute, wh)`` for energy that came after its minute closed.
    """
    import bytewax.operators as op

    if not isinstance(fleet, Fleet):
        raise TypeError(f"fleet must be a Fleet (streamlab.ev.fleet(...)), got {type(fleet).__name__}")
    delay_td = duration("delay", fleet.disorder if delay is None else delay)
    silence_td = duration("silence", silence)
    for name, value in (("delay", delay_td), ("silence", silence_td)):
        if value < timedelta(0) or (name == "silence" and value == timedelta(0)):
            raise ValueError(f"{name} must be {'>= 0' if name == 'delay' else '> 0'}, got {value.total_seconds():g} s")
    source = FleetSource(fleet, until=until, partitions=partitions, batch_size=batch_size, piles=piles, poll=poll)
    flow = Dataflow("charging")
    batches = op.input("messages", flow, source)
    found = op.stateful_map("rules", batches, _rules_step(fleet, silence_td, delay_td, until))
    items = op.flat_map("unpack", found, lambda kv: [(kv[0], item) for item in kv[1]])
    split = op.branch("is load", items, lambda kv: kv[1][0] == "load")
    loads = op.map("by site", split.trues, lambda kv: (kv[1][1], (kv[0], kv[1][2])))
    windows = op.stateful_map("site load", loads, _site_step(partitions))
    closed = op.flat_map("minutes", windows, lambda kv: [(kind, kv[0], minute, wh) for kind, minute, wh in kv[1]])
    rest = op.map("found", split.falses, lambda kv: kv[1])
    op.output("out", op.merge("all", rest, closed), sink if sink is not None else _FileSink(None))
    return flow


class _ListPartition(StatelessSinkPartition[Any]):
    def __init__(self, items: list, path: Path | None) -> None:
        self._items, self._path = items, path

    def write_batch(self, items: list[Any]) -> None:
        self._items.extend(items)

    def close(self) -> None:
        if self._path is not None:
            # Written once, at the end, then renamed: a reader never sees half a file.
            tmp = self._path.with_suffix(".part")
            tmp.write_bytes(pickle.dumps(self._items))
            tmp.rename(self._path)


class _FileSink(DynamicSink[Any]):
    """Collects items into a list in this process, or, given a directory, into one file per worker."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.items: list = []

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _ListPartition:
        if self.directory is None:
            return _ListPartition(self.items, None)
        return _ListPartition([], self.directory / f"worker-{worker_index}.pickle")


def charging(
    fleet: Fleet,
    *,
    until: datetime,
    silence: timedelta | float = 300.0,
    partitions: int = 8,
    delay: timedelta | float | None = None,
    workers: int = 1,
    processes: int = 1,
    batch_size: int = DEFAULT_BATCH_SIZE,
    piles: Sequence[list] | Path | None = None,
    poll: timedelta | float | None = None,
) -> Charging:
    """Sessions, energy per charger, site load per minute, silences and messages set aside, as a stream.

    :param fleet: the chargers; their messages are generated per partition, as they arrive.
    :param until: the cut: the stream reads what arrives before it (the pile's cut, for comparing).
    :param silence: a charger that sends nothing for longer than this is silent.
    :param partitions: how many partitions the messages are spread over, by charger.
    :param delay: the watermark's delay (seconds or a timedelta); by default the fleet's disorder.
    :param workers: worker threads per process.
    :param processes: processes; more than 1 starts real processes (``python -m bytewax.run
        ... -i N -a ...``) on this machine, talking over loopback TCP, and waits for them.
    :param batch_size: most messages a partition hands over at a time.
    :param piles: the partitions' messages, already cut (see :class:`FleetSource`); with
        ``processes`` > 1, a directory written by :func:`write_piles`.
    :param poll: read each partition as a live consumer polling every ``poll`` seconds
        of arrival time (see :class:`FleetSource`); by default ``batch_size`` at a time.
    """
    check_count("workers", workers, 1, 64)
    check_count("processes", processes, 1, 16)
    sink = _FileSink(None)
    # Built here in every case, so that bad arguments fail in this process, with a clear message.
    flow = charging_flow(fleet, until=until, partitions=partitions, delay=delay, silence=silence,
                         batch_size=batch_size, sink=sink, piles=piles, poll=poll)
    if processes > 1 and piles is not None and not isinstance(piles, Path):
        raise ValueError("with processes > 1, piles must be a directory written by write_piles(): "
                         "each process reads its own partitions from it")
    if processes == 1:
        with quiet_rust_errors():
            try:
                cluster_main(flow, [], 0, worker_count_per_proc=workers)
            except BytewaxRuntimeError as err:
                raise _explain(err) from None
        items = sink.items
    else:
        items = run_processes(fleet, until=until, partitions=partitions, delay=delay, silence=silence,
                              batch_size=batch_size, workers=workers, processes=processes, piles=piles, poll=poll)
    return _answer(items)


def _answer(items: list) -> Charging:
    found: dict[str, list] = {k: [] for k in ("session", "silence", "aside", "read", "used", "minute", "late")}
    for item in items:
        found[item[0]].append(item[1:] if len(item) > 2 else item[1])
    load = pd.DataFrame(found["minute"], columns=["site", "minute", "energy_wh"])
    used = sum(found["used"])
    return Charging.build(sessions=found["session"], load=load, silences=found["silence"], aside=found["aside"],
                          messages=sum(found["read"]), used=used, late=found["late"])


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def process_command(process_id: int, addresses: list[str], workers: int) -> list[str]:
    """The command that starts one process of the cluster; on other machines, their own ``host:port`` go in ``addresses``."""
    return [sys.executable, "-m", "bytewax.run", "streamlab.stream.charging:job()",
            "-i", str(process_id), "-a", ";".join(addresses), "-w", str(workers)]


def run_processes(
    fleet: Fleet,
    *,
    until: datetime,
    partitions: int,
    delay: timedelta | float | None,
    silence: timedelta | float,
    batch_size: int,
    workers: int,
    processes: int,
    piles: Path | None = None,
    poll: timedelta | float | None = None,
) -> list:
    """Run the dataflow on ``processes`` real processes over loopback TCP; return every worker's items.

    Each process is started with :func:`process_command`, learns the job from
    an environment variable, regenerates the fleet from its seed (same seed, same
    messages), reads the partitions bytewax gives its workers, and writes what
    its workers collected to a file in a temporary directory. Every process is
    waited for, and killed if it is still running after :data:`PROCESS_TIMEOUT`
    seconds or if this one is interrupted; the directory is removed.
    """
    delay_s = duration("delay", fleet.disorder if delay is None else delay).total_seconds()
    with tempfile.TemporaryDirectory(prefix="streamlab-cluster-") as tmp:
        spec = {"fleet": fleet.spec(), "until": until.isoformat(), "partitions": partitions, "delay": delay_s,
                "silence": duration("silence", silence).total_seconds(), "batch_size": batch_size, "out": tmp,
                "piles": None if piles is None else str(piles),
                "poll": None if poll is None else duration("poll", poll).total_seconds()}
        env = {**os.environ, JOB_ENV: json.dumps(spec), "RUST_BACKTRACE": "0"}
        addresses = [f"127.0.0.1:{port}" for port in _free_ports(processes)]
        procs = []
        try:
            for i in range(processes):
                procs.append(subprocess.Popen(process_command(i, addresses, workers), env=env,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                              start_new_session=True))
            errors = []
            for proc in procs:
                _, err = proc.communicate(timeout=PROCESS_TIMEOUT)
                if proc.returncode:
                    errors.append(err.decode(errors="replace").strip().splitlines()[-1:] or ["(no message)"])
            if errors:
                raise StreamError(f"a process of the cluster failed: {errors[0][0]}")
        except subprocess.TimeoutExpired:
            raise StreamError(f"the cluster did not finish within {PROCESS_TIMEOUT:g} s; it was stopped") from None
        finally:
            for proc in procs:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        items: list = []
        for path in sorted(Path(tmp).glob("worker-*.pickle")):
            items.extend(pickle.loads(path.read_bytes()))
        return items


def job() -> Dataflow:
    """The dataflow a process of a cluster runs (``python -m bytewax.run "streamlab.stream.charging:job()" ...``)."""
    try:
        spec = json.loads(os.environ[JOB_ENV])
    except KeyError:
        raise RuntimeError(f"set {JOB_ENV} to the job's JSON (streamlab.stream.charging.run_processes does)") from None
    f = spec["fleet"]
    fl = make_fleet(**{**f, "start": datetime.fromisoformat(f["start"])})
    return charging_flow(fl, until=datetime.fromisoformat(spec["until"]), partitions=spec["partitions"],
                         delay=spec["delay"], silence=spec["silence"], batch_size=spec["batch_size"],
                         sink=_FileSink(Path(spec["out"])), piles=None if spec["piles"] is None else Path(spec["piles"]),
                         poll=spec["poll"])


def write_piles(fleet: Fleet, *, until: datetime, partitions: int, directory: Path) -> list[int]:
    """Cut each partition's pile and store it in ``directory`` for the processes of a cluster; return their sizes."""
    sizes = []
    for p in range(partitions):
        pile = fleet.pile(until=until, partition=p, partitions=partitions)
        (Path(directory) / f"partition-{p}.pickle").write_bytes(pickle.dumps(pile))
        sizes.append(len(pile))
    return sizes



def site_items(fleet: Fleet, *, until: datetime, partitions: int = 8,
               batch_size: int = DEFAULT_BATCH_SIZE) -> pd.DataFrame:
    """Per site, the items its key would receive: one per meter reading, or one per batch with a combiner.

    Without a combiner every reading (``MeterValues``) is sent to its site's
    key; with one (as :func:`charging_flow` does) each batch a partition
    hands over sends a site at most one item, its energy summed. The columns
    count those items per site (the watermarks every site also hears are left
    out: the same number for every site).
    """
    rows: dict[str, list[int]] = {site: [0, 0] for site in fleet.site_ids}
    for p in range(partitions):
        pile = fleet.pile(until=until, partition=p, partitions=partitions)
        for start in range(0, len(pile), batch_size):
            touched = set()
            for m in pile[start:start + batch_size]:
                site = fleet.site_of.get(m.charger)
                if m.kind == "MeterValues" and site is not None:
                    rows[site][0] += 1
                    touched.add(site)
            for site in touched:
                rows[site][1] += 1
    return pd.DataFrame.from_dict(rows, orient="index", columns=["one item per reading", "with a combiner"])
