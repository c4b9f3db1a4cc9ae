"""Sales per store as a bytewax dataflow that survives crashes: bytewax's recovery store, a resumable log source.

:func:`totals_flow` is the dataflow: read the sales log (:class:`ResumableLogSource`),
decode each record (a poison record raises, or is routed aside), key by store,
keep a running count and total per store (``stateful_map``), write each row to
a sink (:class:`~streamlab.recovery.Ledger` or :class:`~streamlab.recovery.Table`).
Its step ids never change, so a resumed run finds its state.

:func:`run_once` runs it in this process with bytewax's recovery (``run_main``
with a :class:`~bytewax.recovery.RecoveryConfig`); :func:`run_in_subprocess`
runs it as ``python -m bytewax.run`` in a process of its own, which
:func:`kill_at` kills with SIGKILL at a chosen point. :func:`crash_and_resume`
does a whole trial, from a fresh recovery store to the accounts.

>>> import tempfile, pathlib
>>> from streamlab.events import pipe, take
>>> from streamlab.log import Log
>>> from streamlab.recovery import publish_sales
>>> with tempfile.TemporaryDirectory() as tmp:
...     log = Log.create(pathlib.Path(tmp) / "sales", partitions=3)
...     _ = publish_sales(log, take(pipe(seed=1, keys=4), 300))
...     trial = crash_and_resume(log, "at least once", Crash(at=130, where="sink"), pathlib.Path(tmp), batch_size=20)
...     trial.correct, trial.duplicates, len(trial.replayed), trial.lost
(True, 10, 10, 0)
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.recovery import RecoveryConfig, init_db_dir

from streamlab.log import Log
from streamlab.recovery import (
    GUARANTEES,
    Crash,
    CrashPoint,
    InjectedCrash,
    Recovery,
    Rejected,
    Row,
    Sale,
    Store,
    answer_from,
    open_store,
    sale_from,
    step,
)
from streamlab.stream.logs import LogSource
from streamlab.stream.runner import DEFAULT_BATCH_SIZE, StreamError, in_step, run_flow

__all__ = [
    "Attempt",
    "ResumableLogSource",
    "StoreSink",
    "crash_and_resume",
    "fresh_store",
    "kill_at",
    "run_in_subprocess",
    "run_once",
    "sales_totals",
    "totals_flow",
]

#: The consumer whose offsets an at-most-once run commits when it reads.
CONSUMER = "sales-totals"
#: Snapshot after every batch the source hands over: a resume point that does not depend on the clock.
EVERY_BATCH = timedelta(0)
Resume = Literal["snapshot", "committed"]


class ResumableLogSource(LogSource):
    """The lesson 03 :class:`~streamlab.stream.logs.LogSource`, telling where each partition resumed.

    ``resume="snapshot"`` (bytewax's way): a resumed partition starts at the
    offset in the recovery store. ``resume="committed"``: it starts at the
    ``consumer``'s committed offset, and commits each batch *as it is read*,
    before any step handles it (the at-most-once order of lesson 03).

    After a run, ``snapshot_at`` holds the offsets the recovery store gave
    (0 for a fresh store) and ``resumed_from`` where each partition started.
    """

    def __init__(self, log: Log, *, batch_size: int = DEFAULT_BATCH_SIZE, resume: Resume = "snapshot",
                 consumer: str = CONSUMER) -> None:
        if resume not in ("snapshot", "committed"):
            raise ValueError(f"resume must be 'snapshot' or 'committed', got {resume!r}")
        super().__init__(log, batch_size=batch_size)
        self.resume = resume
        self.consumer = consumer
        self.snapshot_at: dict[int, int] = {}
        self.resumed_from: dict[int, int] = {}
        if resume == "committed" and consumer not in log.consumers:
            log.add_consumer(consumer)

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> Any:
        partition = int(for_part)
        self.snapshot_at[partition] = 0 if resume_state is None else resume_state
        if self.resume == "committed":
            start = self.log.committed(self.consumer)[partition]
            part = super().build_part(step_id, for_part, start)
            part.next_batch = _committing(part.next_batch, self.log, self.consumer, partition, part)
        else:
            part = super().build_part(step_id, for_part, resume_state)
        self.resumed_from[partition] = self.positions[partition]
        return part


def _committing(next_batch: Callable[[], list], log: Log, consumer: str, partition: int, part: Any) -> Callable:
    def read_and_commit() -> list:
        records = next_batch()
        log.commit(consumer, {partition: part._offset})  # before any step has seen them: at most once
        return records
    return read_and_commit


class _StorePartition(StatelessSinkPartition[Row]):
    def __init__(self, store: Store, crash: CrashPoint, step_id: str) -> None:
        self._store = store
        self._crash = crash
        self._step_id = step_id

    def write_batch(self, items: list[Row]) -> None:
        try:
            self._store.write(items, self._crash)
        except Exception as err:
            raise in_step(err, self._step_id)


class StoreSink(DynamicSink[Row]):
    """A bytewax sink writing rows to a :class:`~streamlab.recovery.Ledger` or :class:`~streamlab.recovery.Table`."""

    def __init__(self, store: Store, crash: Crash | None = None) -> None:
        self.store = store
        self.crash = CrashPoint(crash, "sink")

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _StorePartition:
        return _StorePartition(self.store, self.crash, step_id)


class _Aside(StatelessSinkPartition[Rejected]):
    def __init__(self, aside: list[Rejected]) -> None:
        self._aside = aside

    def write_batch(self, items: list[Rejected]) -> None:
        self._aside.extend(items)


class AsideSink(DynamicSink[Rejected]):
    """Records that are not sales, each with its reason: routed aside, never dropped."""

    def __init__(self) -> None:
        self.items: list[Rejected] = []

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Aside:
        return _Aside(self.items)


def _decoder(crash: CrashPoint, lenient: bool) -> Callable[[Any], Sale | Rejected]:
    def decode(record: Any) -> Sale | Rejected:
        crash.tick()
        try:
            return sale_from(record)
        except ValueError as why:
            if not lenient:
                raise
            return Rejected(record.partition, record.offset, str(why))
    return decode


def totals_flow(source: ResumableLogSource, sink: StoreSink, *, crash: Crash | None = None,
                lenient: bool = False, aside: AsideSink | None = None) -> Dataflow:
    """The dataflow: read, decode, key by store, running count and total, write each row.

    ``lenient=False``: a poison record stops the run (step ``decode`` raises a
    ValueError naming it). ``lenient=True``: it is routed aside to ``aside``
    with its reason. The steps and their ids are the same either way, so a
    run fixed this way resumes from the snapshots of the run that failed.
    """
    flow = Dataflow("sales_totals")
    records = op.input("read", flow, source)
    decoded = op.map("decode", records, _decoder(CrashPoint(crash, "step"), lenient))
    split = op.branch("route_aside", decoded, lambda item: isinstance(item, Sale))
    keyed = op.key_on("by_store", split.trues, lambda sale: sale.store)
    rows = op.stateful_map("running_total", keyed, step)
    op.output("write", op.map("row", rows, lambda kv: kv[1]), sink)
    op.output("aside", split.falses, aside or AsideSink())
    return flow


def fresh_store(path: Path) -> Path:
    """Create an empty recovery store (one SQLite partition) at ``path``, which must not exist yet."""
    path = Path(path)
    path.mkdir(parents=True)
    init_db_dir(path, 1)
    return path


@dataclass
class Attempt:
    """One run: whether and how it stopped, where it started, what it read, what it routed aside."""

    error: StreamError | None
    snapshot_at: dict[int, int]
    resumed_from: dict[int, int]
    read_to: dict[int, int]
    aside: list[Rejected] = field(default_factory=list)

    @property
    def crashed(self) -> bool:
        return self.error is not None


def run_once(
    log: Log,
    store: Store,
    recovery: Path | None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    epoch_interval: timedelta | None = EVERY_BATCH,
    resume: Resume = "snapshot",
    consumer: str = CONSUMER,
    crash: Crash | None = None,
    lenient: bool = False,
) -> Attempt:
    """Run the dataflow once, in this process, until the end of the log or a crash.

    ``recovery``: a recovery store made by :func:`fresh_store` (``None``: no
    recovery). A crash of its own (:class:`~streamlab.recovery.Crash`) or a
    step that raises ends the run; the returned :class:`Attempt` holds the
    :class:`~streamlab.stream.runner.StreamError`, and the store keeps what was
    snapshotted. Run again with the same store to resume.
    """
    source = ResumableLogSource(log, batch_size=batch_size, resume=resume, consumer=consumer)
    aside = AsideSink()
    flow = totals_flow(source, StoreSink(store, crash), crash=crash, lenient=lenient, aside=aside)
    config = RecoveryConfig(str(recovery)) if recovery is not None else None
    error = None
    try:
        run_flow(flow, epoch_interval=epoch_interval, recovery_config=config)
    except StreamError as err:
        error = err
    return Attempt(error, dict(source.snapshot_at), dict(source.resumed_from), dict(source.positions), aside.items)


def sales_totals(log: Log, *, batch_size: int = DEFAULT_BATCH_SIZE) -> Any:
    """The running totals' final answer, by the stream, without recovery: ``sales`` and ``total_cents`` per store.

    Poison records are routed aside (as the batch driver does).
    """
    rows = _Memory()
    attempt = run_once(log, rows, None, batch_size=batch_size, epoch_interval=None, lenient=True)  # type: ignore[arg-type]
    if attempt.error is not None:
        raise attempt.error
    return answer_from(rows.items)


class _Memory:
    """Rows kept in a list: the output of a run that needs no recovery."""

    kind = "memory"

    def __init__(self) -> None:
        self.items: list[Row] = []

    def write(self, rows: list[Row], crash: CrashPoint | None = None) -> None:
        self.items.extend(rows)

    def rows(self) -> list[Row]:
        return list(self.items)


# --------------------------------------------------------------------------- a real process, killed


JOB = "streamlab.stream.recovery_job:flow()"


def _job_env(log: Log, kind: str, output: Path, batch_size: int, crash: Crash | None, resume: Resume,
             consumer: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "STREAMLAB_JOB_LOG": str(log.path),
        "STREAMLAB_JOB_OUTPUT": f"{kind}:{output}",
        "STREAMLAB_JOB_BATCH_SIZE": str(batch_size),
        "STREAMLAB_JOB_RESUME": resume,
        "STREAMLAB_JOB_CONSUMER": consumer,
        "STREAMLAB_JOB_CRASH": crash.encode() if crash is not None else "",
        "RUST_BACKTRACE": "0",
    })
    return env


def run_in_subprocess(log: Log, kind: str, output: Path, recovery: Path, *, batch_size: int = DEFAULT_BATCH_SIZE,
                      crash: Crash | None = None, resume: Resume = "snapshot",
                      consumer: str = CONSUMER) -> subprocess.Popen:
    """Start ``python -m bytewax.run`` on the dataflow, snapshotting after every batch, in a process group of its own.

    The caller must reap it (:func:`kill_at` does).
    """
    cmd = [sys.executable, "-m", "bytewax.run", JOB, "-r", str(recovery), "-s", "0", "-b", "0"]
    return subprocess.Popen(
        cmd, env=_job_env(log, kind, output, batch_size, crash, resume, consumer),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )


def kill_at(log: Log, kind: str, output: Path, recovery: Path, crash: Crash, *, batch_size: int = DEFAULT_BATCH_SIZE,
            resume: Resume = "snapshot", consumer: str = CONSUMER, timeout: float = 60.0) -> int:
    """Run the dataflow in a subprocess and ``kill -9`` it when it reaches ``crash``'s point; return its exit status.

    ``crash.how`` must be ``"wait"``: the process writes ``crash.signal`` and
    waits there, and this sends SIGKILL to its whole process group. The
    process is always reaped, whatever happens.
    """
    if crash.how != "wait" or not crash.signal:
        raise ValueError("kill_at needs a Crash with how='wait' and a signal file")
    flag = Path(crash.signal)
    flag.unlink(missing_ok=True)
    proc = run_in_subprocess(log, kind, output, recovery, batch_size=batch_size, crash=crash, resume=resume,
                             consumer=consumer)
    try:
        deadline = time.monotonic() + timeout
        while not flag.exists():
            if proc.poll() is not None:
                err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
                raise RuntimeError(f"the job ended (status {proc.returncode}) before its crash point: {err[-600:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the job did not reach its crash point within {timeout:g} s")
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


# --------------------------------------------------------------------------- a whole trial


def _setup(guarantee: str) -> tuple[str, Resume]:
    if guarantee not in GUARANTEES:
        raise ValueError(f"guarantee must be one of {GUARANTEES}, got {guarantee!r}")
    kind = "table" if guarantee == "effectively once" else "ledger"
    return kind, ("committed" if guarantee == "at most once" else "snapshot")


def crash_and_resume(
    log: Log,
    guarantee: str,
    crash: Crash,
    workdir: Path,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    kill: bool = False,
    name: str | None = None,
) -> Recovery:
    """Crash the dataflow once, resume it to the end of the log, and account for every record.

    ``guarantee``: ``"at most once"`` (a ledger; the resumed run reads from
    offsets committed as they were read), ``"at least once"`` (a ledger;
    resumed from the snapshot) or ``"effectively once"`` (an idempotent table;
    resumed from the snapshot). Everything lives under ``workdir/name``, a
    fresh directory: the recovery store, the output, the consumer's offsets
    belong to this trial. ``kill=True`` runs the crashing run as a subprocess
    killed with SIGKILL at the crash point; the resumption runs here.
    """
    from streamlab.batch.recovery import sales_totals as batch_totals

    kind, resume = _setup(guarantee)
    trial = Path(workdir) / (name or f"{kind}-{resume}-{crash.where}-{crash.at}")
    trial.mkdir(parents=True)
    recovery = fresh_store(trial / "recovery")
    output = trial / ("rows.jsonl" if kind == "ledger" else "rows.sqlite")
    store = open_store(kind, output)
    # The consumer's committed offsets belong to this trial: a consumer of its own (at most once only).
    consumer = f"{re.sub(r'[^a-z0-9_-]', '-', trial.name.lower())[:50]}-{len(log.consumers)}".lstrip("-_")
    if kill:
        crash = Crash(crash.at, crash.where, "wait", str(trial / "reached"))
        if resume == "committed":
            log.add_consumer(consumer)
        kill_at(log, kind, output, recovery, crash, batch_size=batch_size, resume=resume, consumer=consumer)
        error = "killed with SIGKILL"
    else:
        first = run_once(log, store, recovery, batch_size=batch_size, resume=resume, consumer=consumer, crash=crash)
        if first.error is None or not isinstance(first.error.__cause__, InjectedCrash):
            raise RuntimeError(f"the run did not crash as asked ({crash}): {first.error}")
        error = str(first.error)
    written_before = store.rows()
    second = run_once(log, store, recovery, batch_size=batch_size, resume=resume, consumer=consumer, lenient=True)
    if second.error is not None:
        raise second.error
    rows = store.rows()
    return Recovery(
        guarantee, crash, sum(log.end_offsets().values()), second.snapshot_at, second.resumed_from,
        written_before, rows, answer_from(rows), batch_totals(log), error,
    )


def account(recoveries: Mapping[str, Recovery]) -> Any:
    """The lesson's table: one row per setup."""
    import pandas as pd

    return pd.DataFrame([r.summary() for r in recoveries.values()]).set_index("guarantee")


# --------------------------------------------------------------------------- the snapshot trade-off


def replay_by_interval(
    log: Log, workdir: Path, batch_sizes: list[int], crash_points: list[int]
) -> Any:
    """How much is replayed after a crash, for each snapshot interval: a sink crash at each of ``crash_points``.

    With ``epoch_interval=0`` bytewax snapshots after every batch the source
    hands over, one batch per partition: the interval is ``batch_size`` records
    per partition (``snapshot_every``: that times the partitions). Each crash is
    resumed to the end, at least once; ``replayed`` counts the rows written
    twice. Deterministic: no clock is involved.
    """
    import pandas as pd

    rows = []
    for batch_size in batch_sizes:
        for at in crash_points:
            trial = crash_and_resume(log, "at least once", Crash(at, "sink"), Path(workdir), batch_size=batch_size,
                                     name=f"interval-{batch_size}-{at}")
            if not trial.correct:
                raise AssertionError(f"batch_size={batch_size}, crash at {at}: the answer differs from the batch answer")
            rows.append((batch_size, batch_size * log.partitions, at, len(trial.replayed), trial.duplicates))
    return pd.DataFrame(rows, columns=["batch_size", "snapshot_every", "crash_at", "replayed", "duplicates"])


def timed_run(log: Log, workdir: Path, *, batch_size: int = DEFAULT_BATCH_SIZE,
              epoch_interval: timedelta | None = EVERY_BATCH, recovery: bool = True) -> dict[str, float]:
    """Run the dataflow once over the whole log, its rows kept in memory; its CPU and wall time, and records per second.

    For a lesson's tagged cell and the benchmark: timings depend on the machine.
    """
    import time as clock

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    n = len(list(workdir.iterdir()))
    store = fresh_store(workdir / f"recovery-{n}") if recovery else None
    rows = _Memory()  # the engine's cost, not a sink's
    cpu, wall = clock.process_time(), clock.perf_counter()
    attempt = run_once(log, rows, store, batch_size=batch_size, epoch_interval=epoch_interval)  # type: ignore[arg-type]
    cpu, wall = clock.process_time() - cpu, clock.perf_counter() - wall
    if attempt.error is not None:
        raise attempt.error
    records = sum(log.end_offsets().values())
    return {"cpu_s": cpu, "wall_s": wall, "records_per_s": records / wall}
