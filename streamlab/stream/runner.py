"""Run a bytewax dataflow over events, inside a notebook, and get its outputs back.

:func:`run` takes a function that turns the stream of events into one or more
output streams, builds the dataflow around it (source, sinks), runs it to the end
of a bounded input and returns what each output collected. An unbounded pipe must
be bounded by ``limit`` or ``until``, so a cell can never hang on it.

>>> import bytewax.operators as op
>>> from streamlab.events import pipe
>>> def keys_only(events):
...     return op.map("key", events, lambda e: e.key)
>>> run(keys_only, pipe(seed=2, keys=3), limit=3)["out"]
['store-0', 'store-2', 'store-1']
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from bytewax.dataflow import Dataflow, Stream
from bytewax.errors import BytewaxRuntimeError
from bytewax.inputs import FixedPartitionedSource, Source, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.testing import TestingSink, run_main

from streamlab.events import MAX_BATCH_SIZE, Event, bounded, check_count

__all__ = ["DEFAULT_BATCH_SIZE", "EventSource", "LatestSink", "Run", "StreamError", "quiet_rust_errors", "run", "run_flow"]

#: Events handed to the dataflow at a time. Batching costs no correctness and
#: is worth 5-9x in throughput (see the benchmark in the README).
DEFAULT_BATCH_SIZE = 1000


class StreamError(RuntimeError):
    """A dataflow stopped because a step raised; the step's own error is the cause."""


def bad_input(err: Exception) -> Exception:
    """Mark an error as being about the events given, not about a step: :func:`run` raises it as it is."""
    err.__streamlab_input__ = True  # type: ignore[attr-defined]
    return err


class _Partition(StatefulSourcePartition[Event, int]):
    def __init__(self, source: EventSource, resume_at: int | None) -> None:
        self._source = source
        self._read = resume_at or 0
        events = source.events
        # A list is sliced (cheaper per batch than islice); anything else is iterated.
        self._list = events if isinstance(events, list) else None
        if self._list is None:
            self._it = iter(events)
            # Skip what an earlier run already read (recovery resumes from here).
            next(itertools.islice(self._it, self._read, self._read), None)

    def next_batch(self) -> list[Event]:
        if self._list is not None:
            batch = self._list[self._read:self._read + self._source.batch_size]
        else:
            try:
                batch = list(itertools.islice(self._it, self._source.batch_size))
            except Exception as err:
                # Bad input (an event of the wrong type, out of order): run() raises it as it is.
                raise bad_input(err)
        if not batch:
            raise StopIteration()
        self._read += len(batch)
        self._source.events_read = self._read
        return batch

    def snapshot(self) -> int:
        return self._read


class EventSource(FixedPartitionedSource[Event, int]):
    """A bytewax source over any iterable of events, read in order by one worker.

    It hands events over in batches of ``batch_size`` and remembers how many it
    has read: that number is its snapshot, so a resumed dataflow carries on
    where it stopped (when the iterable can be iterated afresh, as a pipe can).
    """

    def __init__(self, events: Iterable[Event], batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        check_count("batch_size", batch_size, 1, MAX_BATCH_SIZE)
        self.events = events
        self.batch_size = batch_size
        self.events_read = 0

    def list_parts(self) -> list[str]:
        return ["events"]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _Partition:
        return _Partition(self, resume_state)


class _LatestPartition(StatelessSinkPartition[tuple[Any, Any]]):
    def __init__(self, latest: dict[Any, Any]) -> None:
        self._latest = latest

    def write_batch(self, items: list[tuple[Any, Any]]) -> None:
        for key, value in items:
            self._latest[key] = value


class LatestSink(DynamicSink[tuple[Any, Any]]):
    """A sink that keeps only the latest ``(key, value)`` per key, as a live table would.

    Its memory is bounded by the number of keys, unlike a list of every item.
    """

    def __init__(self, latest: dict[Any, Any]) -> None:
        self.latest = latest

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _LatestPartition:
        return _LatestPartition(self.latest)


@dataclass(frozen=True)
class Run:
    """What a dataflow produced: the items of each named output, and how many events it read.

    ``events_read`` is ``None`` when a source of your own does not count them.
    """

    outputs: Mapping[str, list[Any]]
    events_read: int | None

    def __getitem__(self, name: str) -> list[Any]:
        try:
            return self.outputs[name]
        except KeyError:
            raise KeyError(f"no output named {name!r}; outputs are {sorted(self.outputs)}") from None

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}: {len(items)} items" for name, items in self.outputs.items())
        return f"Run(events_read={self.events_read}, {sizes})"


Keep = Literal["all", "latest"]
Build = Callable[[Stream[Event]], "Stream[Any] | Mapping[str, Stream[Any]]"]


def run(
    build: Build,
    events: Iterable[Event] | Source,
    *,
    limit: int | None = None,
    until: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    name: str | None = None,
    keep: Keep | Mapping[str, Keep] = "all",
) -> Run:
    """Run ``build`` over the events and return what its outputs collected.

    :param build: takes the stream of events and returns an output stream
        (collected as ``"out"``) or a dict of named output streams.
    :param events: a pipe or any iterable of events, read in the order given;
        or a bytewax ``Source`` (such as :class:`~streamlab.stream.logs.LogSource`),
        used as it is: it bounds itself, so ``limit``, ``until`` and
        ``batch_size`` do not apply, and it reports ``events_read`` if it counts them.
    :param limit: stop after this many events.
    :param until: stop at the first event that arrives at or after this time.
    :param batch_size: events handed to the dataflow at a time.
    :param name: the dataflow's name (defaults to ``build``'s name).
    :param keep: ``"all"`` collects every item; ``"latest"`` keeps only the
        latest value per key (outputs must be ``(key, value)`` pairs), so that
        collecting costs bounded memory however long the run. One mode for
        every output, or a dict naming the mode of each.

    The dataflow is built afresh on every call, so running a cell twice gives
    the same answer. If a step raises, a :class:`StreamError` names the step and
    the original error is its cause.
    """
    if isinstance(events, Source):
        if limit is not None or until is not None:
            raise ValueError("limit= and until= cut an iterable of events; a bytewax Source bounds itself")
        source: Source = events
    else:
        source = EventSource(bounded(events, limit=limit, until=until), batch_size)
    if not callable(build):
        raise TypeError(f"build must be a function that takes the stream of events, got {type(build).__name__} {build!r:.60}")
    if name is not None and not (isinstance(name, str) and name and "." not in name):
        raise ValueError(f"name must be a non-empty string without '.' (it names the dataflow), got {name!r:.60}")
    flow = Dataflow(name or getattr(build, "__name__", "flow").strip("<>") or "flow")
    import bytewax.operators as op  # local: keeps `import streamlab` light for doctests

    built = build(op.input("events", flow, source))
    streams = {"out": built} if isinstance(built, Stream) else built
    if not isinstance(streams, Mapping) or not streams or not all(isinstance(s, Stream) for s in streams.values()):
        raise TypeError("build must return a bytewax Stream or a dict of named Streams")
    if not isinstance(keep, (str, Mapping)):
        raise TypeError(f"keep must be 'all', 'latest' or a dict of output name to one of them, got {keep!r:.60}")
    modes = {out_name: keep for out_name in streams} if isinstance(keep, str) else dict(keep)
    for out_name in streams:
        if modes.get(out_name) not in ("all", "latest"):
            raise ValueError(f"keep for output {out_name!r} must be 'all' or 'latest', got {modes.get(out_name)!r}")
    collected: dict[str, Any] = {}
    for out_name, stream in streams.items():
        if modes[out_name] == "all":
            collected[out_name] = []
            sink: Any = TestingSink(collected[out_name])
        else:
            collected[out_name] = {}
            sink = LatestSink(collected[out_name])
        op.output(f"collect_{out_name}", stream, sink)
    run_flow(flow)
    collected = {
        name: list(items.items()) if isinstance(items, dict) else items
        for name, items in collected.items()
    }
    return Run(collected, getattr(source, "events_read", None))


def run_flow(flow: Dataflow, *, epoch_interval: timedelta | None = None, recovery_config: Any = None) -> None:
    """Run a dataflow of your own to its end in this process, with :func:`run`'s care for errors.

    If a step raises, a :class:`StreamError` names the step and the cause (the
    original error is its ``__cause__``), and no Rust panic notice reaches the
    output; the kernel stays usable. ``epoch_interval`` and ``recovery_config``
    are bytewax's own (``run_main``'s): how often to snapshot, and where.
    """
    with quiet_rust_errors():
        try:
            run_main(flow, epoch_interval=epoch_interval, recovery_config=recovery_config)
        except BytewaxRuntimeError as err:
            root = _root_cause(err)
            if getattr(root, "__streamlab_input__", False):
                # The events themselves were wrong, not a step: the same error the batch driver gives.
                raise root.with_traceback(None) from None
            raise _explain(err) from root


def in_step(err: BaseException, step_id: str) -> BaseException:
    """Mark an error raised in a sink with the sink's step id (bytewax's error does not name it); returns ``err``."""
    if not hasattr(err, "__streamlab_step__"):
        err.__streamlab_step__ = step_id  # type: ignore[attr-defined]
    return err


def _root_cause(err: BaseException) -> BaseException:
    while err.__cause__ is not None:
        err = err.__cause__
    return err


def _explain(err: BytewaxRuntimeError) -> StreamError:
    root = _root_cause(err)
    if root is err:
        return StreamError(f"the dataflow failed: {err}")
    # bytewax names steps "flow.step.inner_step"; the learner named the middle part.
    message = str(err)
    path = message.split('in step "', 1)[1].split('"', 1)[0].split(".") if 'in step "' in message else []
    # An error in a sink's write_batch does not name its step: a sink of the course names it (in_step).
    path = path or str(getattr(root, "__streamlab_step__", "")).split(".")
    if len(path) > 1:
        where = f"step {path[1]!r}"
    elif "error writing output batch" in message:
        where = "an output step"
    else:
        where = "a step"
    return StreamError(f"{where} raised {type(root).__name__}: {root}")


@contextmanager
def quiet_rust_errors() -> Iterator[None]:
    """Keep bytewax's Rust panic notice (and any backtrace) out of the output: the error says it all.

    When a step raises, bytewax's Rust core prints "thread '<unnamed>' panicked
    at src/operators.rs..." straight to file descriptor 2, which a notebook
    shows in the cell. While the dataflow runs, descriptor 2 goes to a
    temporary file; afterwards everything else written there is passed on.
    """
    before = os.environ.get("RUST_BACKTRACE")
    os.environ["RUST_BACKTRACE"] = "0"
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    saved = os.dup(2)
    caught = tempfile.TemporaryFile()
    # Once cluster_main has run in this process, bytewax prints a failing step's Python traceback
    # through sys.stderr (a notebook's own stream, not descriptor 2): catch that too.
    python_stderr, said = sys.stderr, io.StringIO()
    try:
        os.dup2(caught.fileno(), 2)
        sys.stderr = said
        yield
    finally:
        sys.stderr = python_stderr
        os.dup2(saved, 2)
        os.close(saved)
        if before is None:
            del os.environ["RUST_BACKTRACE"]
        else:
            os.environ["RUST_BACKTRACE"] = before
        caught.seek(0)
        rest = _without_panics(caught.read().decode("utf-8", "replace")) + _without_panics(said.getvalue())
        caught.close()
        if rest.strip():  # a blank line bytewax leaves after its notice is no output either
            sys.stderr.write(rest)


def _without_panics(text: str) -> str:
    r"""``text`` without bytewax's error notices: Rust panics, and the Python traceback it prints instead.

    A panic notice runs from "thread '…' panicked at" to the RUST_BACKTRACE note.
    Once ``cluster_main`` has run in a process (several workers in one process),
    bytewax prints a failing step's whole Python traceback instead, ending with
    its own ``BytewaxRuntimeError``: that goes too. Anything else is kept.

    >>> _without_panics("thread '<unnamed>' panicked at src/operators.rs:198:33:\nBox<dyn Any>\n"
    ...                 "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n\nkept\n")
    'kept\n'
    >>> _without_panics("Traceback (most recent call last):\n  File \"x\", line 1\nZeroDivisionError: division by zero\n\n"
    ...                 "The above exception was the direct cause of the following exception:\n\n"
    ...                 "bytewax.errors.BytewaxRuntimeError: (src/operators.rs:206:80): error\nkept\n")
    'kept\n'
    >>> _without_panics("Traceback (most recent call last):\nValueError: a learner's own\n")
    "Traceback (most recent call last):\nValueError: a learner's own\n"
    """
    kept: list[str] = []
    skipping = after_note = False
    held: list[str] | None = None  # a Python traceback being read: dropped if it is bytewax's
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if held is not None:
            held.append(line)
            if line.startswith("bytewax.errors.BytewaxRuntimeError:"):
                following = "".join(lines[i + 1:i + 3])
                if not following.startswith("\nThe above exception"):
                    held = None  # bytewax's own traceback, whole: drop it, and the blank line after it
                    after_note = True
            continue
        if line.startswith("Traceback (most recent call last):"):
            held = [line]
            continue
        if line.startswith("thread '") and "panicked at" in line:
            skipping = True
        if skipping:
            if line.startswith("note: ") and "RUST_BACKTRACE" in line:
                skipping, after_note = False, True
            continue
        if after_note and not line.strip():
            after_note = False  # the blank line that ends the notice
            continue
        after_note = False
        kept.append(line)
    if held is not None:
        kept += held  # a traceback that is not bytewax's: the learner's own output
    return "".join(kept)