"""Comparing two answers: tolerant of float noise and row order, precise about real differences."""

import pandas as pd

from streamlab import batch, stream
from streamlab.compare import agree
from streamlab.events import pipe


def table(**columns):
    return pd.DataFrame(columns, index=pd.Index(["a", "b"], name="key"))


def test_agree_ignores_row_order_dtype_and_float_noise():
    a = table(count=[2, 3], sum=[0.1 + 0.2, 5.0])
    b = table(count=[2.0, 3.0], sum=[0.3, 5.0]).iloc[::-1]
    result = agree(a, b)
    assert result.ok and bool(result)
    assert result.message() == "batch and stream agree on all 2 rows × 2 statistics."


def test_agree_names_the_keys_and_the_amounts_that_differ():
    a = table(count=[2, 3], sum=[10.0, 5.0])
    b = table(count=[2, 2], sum=[10.0, 1.5])
    result = agree(a, b)
    assert not result.ok
    assert result.differences[["key", "statistic"]].values.tolist() == [["b", "count"], ["b", "sum"]]
    assert result.message().splitlines() == [
        "batch and stream differ on 2 of 4 values:",
        "  b count: batch 3, stream 2 (batch − stream = 1)",
        "  b sum: batch 5, stream 1.5 (batch − stream = 3.5)",
    ]


def test_counts_must_match_exactly_even_when_large():
    big = table(count=[10**12, 1], sum=[0.0, 0.0])
    off = table(count=[10**12 + 1, 1], sum=[0.0, 0.0])
    assert not agree(big, off).ok


def test_a_key_on_one_side_only_is_a_difference():
    a = table(count=[1, 1])
    b = pd.DataFrame({"count": [1]}, index=pd.Index(["a"], name="key"))
    result = agree(a, b, names=("pile", "pipe"))
    assert not result.ok
    assert "b count: no answer from pipe" in result.message()


def test_agree_shows_html_with_a_verdict():
    p = pipe(seed=1)
    html = agree(batch.summarize(p, limit=100), stream.summarize(p, limit=100))._repr_html_()
    assert html.startswith("<p><b>✓ batch and stream agree")
