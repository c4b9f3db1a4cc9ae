"""The table as a fold over the log, with pandas over a pile; and what only the log can answer.

:func:`orders_changelog` folds the pile with :func:`streamlab.orders.apply`
(the rule lives there, once) and keeps every version of every order: the
table's history. :func:`orders_table` travels in time over that history with a
pandas filter; the :class:`~streamlab.orders.Changelog` it returns answers
questions a table of "what the orders are now" cannot.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import pandas as pd

from streamlab.events import check_utc, pile_frame
from streamlab.orders import (
    Changelog,
    Order,
    OrderEvent,
    RejectedEvent,
    apply,
    change_frame,
    from_frame,
    rejected_frame,
    to_frame,
)

__all__ = ["orders_changelog", "orders_table"]


def orders_changelog(
    events: Iterable[OrderEvent] | pd.DataFrame,
    *,
    limit: int | None = None,
    until: datetime | None = None,
) -> Changelog:
    """Fold a pile of order events into the table and return every change it went through.

    ``events``: a pile (a list of order events, or a frame from
    :func:`streamlab.orders.to_frame`), or an order pipe cut by ``limit`` (the
    first events to arrive) and/or ``until`` (those that arrived before that
    time). A batch job may sort: the pile is
    folded in arrival order (stable, so one order's events keep their order).

    >>> from streamlab.orders import order_pipe
    >>> log = orders_changelog(order_pipe(seed=1), limit=100)
    >>> len(log.changes), len(log.rejected), log.events_read
    (100, 0, 100)
    """
    frame = pile_frame(events, limit=limit, until=until, frame=to_frame)
    frame = frame.sort_values("arrival_time", kind="stable")
    state: dict[str, Order] = {}
    changes: list[tuple[datetime, Order]] = []
    rejected: list[tuple[OrderEvent, str]] = []
    for event in from_frame(frame):
        try:
            order = state[event.order_id] = apply(state.get(event.order_id), event)
        except RejectedEvent as why:
            rejected.append((event, why.reason))
        else:
            changes.append((event.arrival_time, order))
    return Changelog(change_frame(changes), rejected_frame(rejected), len(frame))


def orders_table(
    events: Iterable[OrderEvent] | pd.DataFrame,
    *,
    as_of: datetime | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """The table of orders as it stood just before ``as_of`` (an arrival time), computed from the whole pile.

    The batch job reads the whole pile, builds the history once and then
    looks up any moment in it: time travel is a filter on ``known_at``.
    ``limit`` cuts a pipe to its first events, as for :func:`orders_changelog`.

    >>> from streamlab.orders import order_pipe, take
    >>> pile = take(order_pipe(seed=1), 300)
    >>> orders_table(pile)["status"].value_counts(sort=False).to_dict()
    {'placed': 31, 'paid': 30, 'shipped': 61, 'cancelled': 11}
    >>> len(orders_table(pile, as_of=pile[0].arrival_time)), len(orders_table(pile, as_of=pile[9].arrival_time))
    (0, 8)
    """
    if as_of is not None:
        check_utc("as_of", as_of)
    if as_of is not None and not isinstance(events, pd.DataFrame):
        # Read the events up to the first that arrived at as_of, as the stream does: a pipe has
        # no end to build the whole history from, and a pile cut the same way gives the same table.
        return orders_changelog(events, limit=limit, until=as_of).table(as_of)
    return orders_changelog(events, limit=limit).table(as_of)
