"""The sales-totals dataflow as a job for ``python -m bytewax.run``, configured by environment variables.

A process of its own can be killed for real (``kill -9``), which a dataflow
inside a notebook kernel cannot. :func:`~streamlab.stream.recovery.run_in_subprocess`
starts it as ``python -m bytewax.run "streamlab.stream.recovery_job:flow()" -r DIR -s 0 -b 0``
with these variables set:

``STREAMLAB_JOB_LOG``         the sales log's directory
``STREAMLAB_JOB_OUTPUT``      ``ledger:PATH`` or ``table:PATH``
``STREAMLAB_JOB_BATCH_SIZE``  records read at a time
``STREAMLAB_JOB_RESUME``      ``snapshot`` or ``committed``
``STREAMLAB_JOB_CONSUMER``    the consumer committing offsets (``committed`` only)
``STREAMLAB_JOB_CRASH``       empty, or a :meth:`~streamlab.recovery.Crash.encode`\\ d crash

The dataflow is :func:`~streamlab.stream.recovery.totals_flow`, the very one a
run in the notebook builds, so the two can resume each other's snapshots.
"""

from __future__ import annotations

import os

from bytewax.dataflow import Dataflow

from streamlab.log import Log
from streamlab.recovery import Crash, open_store
from streamlab.stream.recovery import CONSUMER, ResumableLogSource, StoreSink, totals_flow

__all__ = ["flow"]


def _env(name: str) -> str:
    try:
        return os.environ[name]
    except KeyError:
        raise RuntimeError(f"the recovery job needs the environment variable {name} (see streamlab.stream.recovery_job)") from None


def flow() -> Dataflow:
    """Build the job's dataflow from the environment."""
    log = Log.open(_env("STREAMLAB_JOB_LOG"))
    kind, _, path = _env("STREAMLAB_JOB_OUTPUT").partition(":")
    crash_text = os.environ.get("STREAMLAB_JOB_CRASH", "")
    crash = Crash.decode(crash_text) if crash_text else None
    source = ResumableLogSource(
        log, batch_size=int(_env("STREAMLAB_JOB_BATCH_SIZE")), resume=_env("STREAMLAB_JOB_RESUME"),  # type: ignore[arg-type]
        consumer=os.environ.get("STREAMLAB_JOB_CONSUMER", CONSUMER),
    )
    return totals_flow(source, StoreSink(open_store(kind, path), crash), crash=crash, lenient=True)
