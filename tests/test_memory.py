"""The memory claim of lesson 01: the pile grows with the events, the stream's state does not."""

import pytest

from streamlab.events import pipe
from streamlab.memory import memory_growth, peak_bytes


def test_stream_memory_is_flat_while_the_pile_grows():
    growth = memory_growth(pipe(seed=1), [5_000, 20_000]).set_index("events")
    batch_growth = growth.loc[20_000, "batch_bytes"] / growth.loc[5_000, "batch_bytes"]
    stream_growth = growth.loc[20_000, "stream_bytes"] / growth.loc[5_000, "stream_bytes"]
    assert batch_growth > 3.0  # four times the events, about four times the memory
    assert stream_growth < 1.25  # four times the events, about the same memory
    assert growth.loc[20_000, "batch_bytes"] > 5 * growth.loc[20_000, "stream_bytes"]


def test_peak_bytes_counts_what_the_call_allocates():
    assert peak_bytes(lambda: bytearray(2_000_000)) >= 2_000_000
    assert peak_bytes(lambda: None) < 100_000


def test_peak_bytes_refuses_to_nest():
    with pytest.raises(RuntimeError, match="already tracing"):
        peak_bytes(peak_bytes, lambda: None)
