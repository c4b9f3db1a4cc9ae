"""Writers run in child processes by tests/test_log_processes.py: each acknowledges what the log acknowledged.

Kept apart from the tests so that a forked child imports only this and the log.
"""

from __future__ import annotations

import random
import time
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Barrier

from streamlab.log import Log


def write(path: str, writer: str, records: int, seed: int, start: Barrier, acks: Connection) -> None:
    """Append ``records`` records (one at a time or in small batches) and send each one's place once acknowledged."""
    log = Log.open(path, lock_timeout=60)
    rng = random.Random(seed)
    start.wait()  # both writers are ready: they begin together
    i = 0
    while i < records:
        n = min(records - i, rng.choice((1, 1, 1, 3, 17)))
        items = [(f"key-{rng.randrange(7)}", {"writer": writer, "i": j, "pad": "x" * rng.randrange(200)})
                 for j in range(i, i + n)]
        written = log.extend(items)
        # Sent only after extend returned: these are acknowledged records.
        acks.send([(r.partition, r.offset, r.key, r.value) for r in written])
        i += n
        # A producer pauses between records now and then; without this the lock (no queue,
        # no fairness) lets one writer run long streaks and the two hardly interleave.
        time.sleep(rng.random() * 0.0004)
    acks.close()


def write_until_killed(path: str, seed: int, acks: Connection) -> None:
    """Append batches of up to 60 records of up to 2 kB, forever; the test kills this process with SIGKILL."""
    log = Log.open(path)
    rng = random.Random(seed)
    i = 0
    while True:
        n = rng.randrange(1, 60)
        items = [(f"key-{rng.randrange(5)}", {"i": j, "pad": "y" * rng.randrange(1000)}) for j in range(i, i + n)]
        written = log.extend(items)
        acks.send([(r.partition, r.offset, r.key, r.value) for r in written])
        i += n
