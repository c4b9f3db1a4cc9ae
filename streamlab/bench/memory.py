"""Peak memory as the events grow, each run in a fresh process: lesson 01's two drivers, lesson 04's panes.

``python -m streamlab.bench memory`` (it runs only when named: over 10 M
events it takes minutes) summarizes 1 M and 10 M events from the pipe with
each driver, each in a fresh process, and reports each process's peak
resident memory. The stream's state is bounded by the number of keys; the
batch driver holds the whole pile. Then lesson 04's panes stream over the same
numbers of events: its state is bounded by the windows it holds open.
"""

from __future__ import annotations

import resource
import subprocess
import sys

from streamlab import batch, pipe, stream
from streamlab.bench import SEED
from streamlab.panes import Delay, check_settings
from streamlab.stream import run
from streamlab.stream.panes import panes_flow
from streamlab.windows import Tumbling

SIZES, QUICK_SIZES = (1_000_000, 10_000_000), (2_000, 20_000)
DRIVERS = ("stream", "batch")


def peak_rss_mib(driver: str, events: int) -> float:
    """Peak resident memory, in MiB, of a fresh process that summarizes ``events`` events with ``driver``."""
    out = subprocess.run(
        [sys.executable, "-m", "streamlab.bench.memory", driver, str(events)],
        check=True, capture_output=True, text=True,
    )
    return float(out.stdout.strip())


def _child(driver: str, events: int) -> None:
    p = pipe(seed=SEED)
    if driver == "stream":
        # A live stream hands its answers on; it does not keep their history.
        stream.summarize(p, limit=events, keep_updates=False)
    elif driver == "batch":
        batch.summarize(p, limit=events)
    elif driver == "panes":
        # Lesson 04's stream, handing its panes on (only the latest batch's kept), no watermark trace kept.
        settings = check_settings(Tumbling(60), Delay(5))
        run(panes_flow(settings, keep_watermark=False), pipe(seed=SEED, keys=10, disorder=20), limit=events,
            keep="latest")
    elif driver != "none":
        raise SystemExit(f"unknown driver {driver!r}")
    print(_peak_rss_kib() / 1024)


def _peak_rss_kib() -> float:
    """This process's peak resident memory, in KiB.

    On Linux, ``ru_maxrss`` carries the parent's peak across fork and exec, so a
    child started by a big parent reports the parent's memory; ``VmHWM`` does not.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux


def report(quick: bool = False) -> str:
    """Measure and return the Markdown table (tiny sizes with ``quick``)."""
    sizes = QUICK_SIZES if quick else SIZES
    memory = {(driver, size): peak_rss_mib(driver, size) for size in sizes for driver in DRIVERS}
    baseline = peak_rss_mib("none", 0)
    lines = [
        "### Lesson 01: peak memory of a fresh process",
        "",
        f"MiB; {baseline:.0f} MiB after imports alone:",
        "",
        "| driver | " + " | ".join(f"{s:,} events" for s in sizes) + " | growth |",
        "|---|" + "---|" * (len(sizes) + 1),
    ]
    for driver in DRIVERS:
        cells = " | ".join(f"{memory[driver, s]:,.0f}" for s in sizes)
        lines.append(f"| {driver} | {cells} | {memory[driver, sizes[-1]] / memory[driver, sizes[0]]:.2f}× |")
    panes = {size: peak_rss_mib("panes", size) for size in sizes}
    lines += [
        "",
        "### Lesson 04: peak memory of the panes stream (one-minute windows, 10 keys, watermark 5 s behind)",
        "",
        "| driver | " + " | ".join(f"{s:,} events" for s in sizes) + " | growth |",
        "|---|" + "---|" * (len(sizes) + 1),
        "| stream.panes | " + " | ".join(f"{panes[s]:,.0f}" for s in sizes)
        + f" | {panes[sizes[-1]] / panes[sizes[0]]:.2f}× |",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    _child(sys.argv[1], int(sys.argv[2]))
