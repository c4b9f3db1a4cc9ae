"""The pictures of lesson 07 draw what they are given, on the Axes given, and return it."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from streamlab import batch, plots  # noqa: E402
from streamlab.orders import order_pipe, take  # noqa: E402
from streamlab.schemas import dirty_payloads  # noqa: E402


def _result():
    return batch.validate_orders([p for _, p in dirty_payloads(take(order_pipe(seed=3), 300), seed=3)])


def test_the_dataflow_picture_shows_the_counts_that_reconcile():
    result = _result()
    fig, ax = plt.subplots()
    assert plots.validation_dataflow(result.dead, result.count_in, ax=ax) is ax
    texts = " ".join(t.get_text() for t in ax.texts)
    processed = len(result.events)
    assert f"{processed:,} events" in texts and f"{len(result.letters):,} letters" in texts
    assert ax.get_title() == f"Nothing lost: 300 in = {processed:,} processed + {len(result.letters):,} dead-lettered"
    plt.close(fig)


def test_the_reasons_plot_has_one_bar_per_rule_and_field():
    result = _result()
    fig, ax = plt.subplots()
    assert plots.dead_letter_reasons(result.dead, ax=ax) is ax
    pairs = result.dead.groupby(["rule", "field"]).ngroups
    assert len(ax.patches) == pairs
    assert sum(p.get_width() for p in ax.patches) == len(result.letters)
    plt.close(fig)
