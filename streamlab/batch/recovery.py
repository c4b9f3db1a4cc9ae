"""Sales per store as a batch job over the sales log: the answer, and a job that fails half-way and is run again.

:func:`sales_totals` is the batch answer every recovery is checked against:
pandas over every record of the log (poison records routed aside, as the
stream does). :func:`batch_job` computes the same answer one log partition at
a time, writing each partition's totals to a file of its own, atomically (a
temporary file renamed into place): run again, it writes the same files, so
its outputs are idempotent. Run again with ``skip_done=True``, it skips the
partitions already written: a batch job's checkpoint is a finished partition.

>>> import tempfile, pathlib
>>> from streamlab.events import pipe, take
>>> from streamlab.recovery import publish_sales
>>> with tempfile.TemporaryDirectory() as tmp:
...     log = Log.create(pathlib.Path(tmp) / "sales", partitions=3)
...     _ = publish_sales(log, take(pipe(seed=1, keys=4), 300))
...     failed = batch_job(log, pathlib.Path(tmp) / "out", crash=Crash(200))
...     again = batch_job(log, pathlib.Path(tmp) / "out", skip_done=True)
...     failed.processed, failed.written, again.processed, again.skipped
(200, [0], 227, [0])
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from streamlab.log import Log
from streamlab.recovery import Crash, CrashPoint, InjectedCrash, Rejected, answer_frame, sale_from

__all__ = ["BatchRun", "batch_job", "job_answer", "sales_totals"]


def _frame(log: Log, partitions: list[int]) -> tuple[pd.DataFrame, list[Rejected]]:
    stores, cents, rejected = [], [], []
    for p in partitions:
        for record in log.records(p):
            try:
                sale = sale_from(record)
            except ValueError as why:
                rejected.append(Rejected(record.partition, record.offset, str(why)))
                continue
            stores.append(sale.store)
            cents.append(sale.cents)
    return pd.DataFrame({"store": stores, "cents": pd.Series(cents, dtype="int64")}), rejected


def _totals(frame: pd.DataFrame) -> pd.DataFrame:
    grouped = frame.groupby("store", sort=True)["cents"].agg(["count", "sum"])
    return answer_frame({store: (int(n), int(total)) for store, (n, total) in grouped.iterrows()})


def sales_totals(log: Log) -> pd.DataFrame:
    """The batch answer: ``sales`` and ``total_cents`` per store, pandas over every record of the log.

    Records that are not sales are routed aside (they count in no store).
    """
    if not isinstance(log, Log):
        raise TypeError(f"log must be a streamlab.log.Log, got {type(log).__name__}")
    frame, _ = _frame(log, list(range(log.partitions)))
    return _totals(frame)


@dataclass
class BatchRun:
    """One run of the batch job: records processed, partitions written and skipped, and the error if it failed."""

    processed: int = 0
    written: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    error: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.error)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # the file is whole or absent, never half-written


def batch_job(log: Log, out: Path, *, crash: Crash | None = None, skip_done: bool = False) -> BatchRun:
    """Compute each partition's totals and write them to ``out/partition-N.json``; a crash ends the job there.

    ``crash``: the job dies before its ``at``-th record (counted over the whole
    run, from 0); the partition it was in is not written. ``skip_done``: skip
    partitions whose file exists (finished by an earlier run).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    point = CrashPoint(crash, "step")
    run = BatchRun()
    try:
        for p in range(log.partitions):
            path = out / f"partition-{p}.json"
            if skip_done and path.exists():
                run.skipped.append(p)
                continue
            records = log.read(p)
            for _ in records:
                point.tick()  # the job handles this record
                run.processed += 1
            frame, _ = _frame(log, [p])
            totals = _totals(frame)
            _write_atomic(path, json.dumps(
                {store: [int(r.sales), int(r.total_cents)] for store, r in totals.iterrows()}, sort_keys=True
            ))
            run.written.append(p)
    except InjectedCrash as err:
        run.error = str(err)
    return run


def job_answer(log: Log, out: Path) -> pd.DataFrame:
    """The answer from the job's files: every partition's totals together (each store lives in one partition)."""
    totals: dict[str, tuple[int, int]] = {}
    for p in range(log.partitions):
        path = Path(out) / f"partition-{p}.json"
        if not path.exists():
            raise FileNotFoundError(f"partition {p} has no output yet ({path.name}): the job has not finished")
        for store, (sales, cents) in json.loads(path.read_text(encoding="utf-8")).items():
            totals[store] = (sales, cents)
    return answer_frame(totals)
