"""Lesson 06 as a nightly job: the day's pile of charger messages, read whole, then aggregated with pandas.

>>> from datetime import timedelta
>>> from streamlab import ev
>>> f = ev.fleet(seed=1, chargers=20, sites=3)
>>> answer = charging(f, until=f.start + timedelta(hours=1))
>>> answer.reconciles, len(answer.sessions)
(True, 11)
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from streamlab.charging import Charging
from streamlab.ev import Chargers, Fleet, Message, _problem
from streamlab.events import check_utc

__all__ = ["charging"]


def charging(
    fleet: Fleet,
    *,
    until: datetime,
    silence: timedelta | float = 300.0,
    pile: list[Message] | None = None,
) -> Charging:
    """Sessions, energy per charger, site load per minute, silences and messages set aside, from the pile.

    :param fleet: the chargers (its back-office table says which charger is on which site).
    :param until: the cut: the pile holds every message that arrived before it.
    :param silence: a charger that sends nothing for longer than this is silent.
    :param pile: the messages, if already cut (by default ``fleet.pile(until=until)``).

    The job sorts each charger's messages by the time they happened and applies
    the course's rules (:class:`~streamlab.ev.Chargers`) to them in that order;
    then pandas sums each site's energy per minute.
    """
    if not isinstance(fleet, Fleet):
        raise TypeError(f"fleet must be a Fleet (streamlab.ev.fleet(...)), got {type(fleet).__name__}")
    check_utc("until", until)
    messages = fleet.pile(until=until) if pile is None else list(pile)
    rules = Chargers(fleet.site_of, silence, readings=True)
    for message in sorted(messages, key=_charger_then_time):
        rules.feed(message)
    rules.close(until)
    readings = pd.DataFrame(rules.readings, columns=["site", "event_time", "energy_wh"])
    readings["minute"] = pd.to_datetime(readings["event_time"], utc=True).dt.floor("min")
    load = readings.groupby(["site", "minute"], as_index=False)["energy_wh"].sum()
    load["minute"] = load["minute"].map(lambda t: t.to_pydatetime())
    return Charging.build(sessions=rules.sessions, load=load, silences=rules.silences, aside=rules.aside,
                          messages=len(messages), used=rules.used)


def _charger_then_time(message: Message) -> tuple[str, int, float]:
    """A batch job's order: by charger, then by the time each message happened.

    A message the rules set aside on its own (no valid time, say) changes no
    charger's state, so it may go anywhere: first. The sort is stable, so a
    retry stays after the message it repeats (same time, arrived later).
    """
    charger = str(getattr(message, "charger", ""))
    if _problem(message) is not None:
        return (charger, 0, 0.0)
    return (charger, 1, message.event_time.timestamp())
