"""What lesson 06 computes from the chargers' messages, as tables both drivers fill the same way.

:class:`Charging` holds the answer: the charging sessions and the energy each
delivered, the energy per charger, each site's load per minute (kW), the
chargers that went silent, and every message set aside with its reason. The
batch driver (:func:`streamlab.batch.charging`) and the stream driver
(:func:`streamlab.stream.charging`) both return one; :meth:`Charging.differences`
says where two disagree (nothing, when the watermark covers the disorder).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from streamlab.ev import Aside, Session, Silence

__all__ = ["Charging", "TABLES"]

#: The tables of an answer, each sorted by its key columns so two answers compare row by row.
TABLES: dict[str, list[str]] = {
    "sessions": ["charger", "transaction"],
    "chargers": ["charger"],
    "load": ["site", "minute"],
    "silences": ["charger", "since"],
    "aside": ["message_id", "reason", "charger"],
}


@dataclass(frozen=True)
class Charging:
    """The answer of lesson 06's computation, and how every message was accounted for.

    ``messages`` = ``used`` + ``set_aside``, always. ``late`` is the energy that
    reached a site's minute after the stream had closed it (never, when the
    watermark's delay covers the disorder; the batch driver has none).
    """

    sessions: pd.DataFrame
    chargers: pd.DataFrame
    load: pd.DataFrame
    silences: pd.DataFrame
    aside: pd.DataFrame
    messages: int
    used: int
    late: pd.DataFrame

    @property
    def set_aside(self) -> int:
        return len(self.aside)

    @property
    def reasons(self) -> pd.Series:
        """How many messages were set aside, per reason."""
        return self.aside["reason"].value_counts().sort_index().rename("messages")

    @property
    def reconciles(self) -> bool:
        """Every message is either used or set aside."""
        return self.messages == self.used + self.set_aside

    def differences(self, other: Charging) -> dict[str, int]:
        """For each table that differs, how many rows are in one answer and not in the other; empty when they agree.

        Rows are compared as values (an int and a numpy int are the same number), in any order.
        """
        out = {}
        for name in TABLES:
            mine, theirs = (Counter(map(tuple, getattr(x, name).astype(str).to_numpy().tolist())) for x in (self, other))
            differ = sum(((mine - theirs) + (theirs - mine)).values())
            if differ:
                out[name] = differ
        for name in ("messages", "used"):
            if getattr(self, name) != getattr(other, name):
                out[name] = abs(getattr(self, name) - getattr(other, name))
        return out

    def summary(self) -> pd.Series:
        """The headline numbers, one per line."""
        return pd.Series({
            "messages": self.messages,
            "used": self.used,
            "set aside": self.set_aside,
            "sessions (complete)": int(self.sessions["complete"].sum()),
            "sessions (stop never came)": int((~self.sessions["complete"]).sum()),
            "energy delivered, kWh": round(self.sessions["energy_wh"].sum() / 1000, 1),
            "site-minutes": len(self.load),
            "silences": len(self.silences),
            "late energy, Wh": int(self.late["energy_wh"].sum()),
        }, name="answer", dtype=object)

    @classmethod
    def build(
        cls,
        *,
        sessions: Iterable[Session],
        load: pd.DataFrame,
        silences: Iterable[Silence],
        aside: Iterable[Aside],
        messages: int,
        used: int,
        late: Iterable[tuple[str, datetime, int]] = (),
    ) -> Charging:
        """Tables from what the rules found; ``load`` has columns site, minute, energy_wh."""
        s = pd.DataFrame(list(sessions), columns=list(Session._fields))
        s["energy_wh"] = s["energy_wh"].astype("int64")
        s["complete"] = s["complete"].astype(bool)
        s = _sorted(s, "sessions")
        per = s.groupby(["charger", "site"], as_index=False).agg(
            sessions=("transaction", "size"), energy_wh=("energy_wh", "sum"))
        load = load.astype({"energy_wh": "int64"}).copy()
        # Energy in one minute, as the average power over that minute: Wh × 60 / 1000 = kW.
        load["kw"] = load["energy_wh"] * 60 / 1000
        silence = pd.DataFrame(list(silences), columns=list(Silence._fields))
        # A message set aside may be anything at all (it is set aside for that): read its fields with care.
        rows = [(getattr(a.message, "message_id", None), getattr(a.message, "charger", None),
                 getattr(a.message, "kind", None), a.reason, a.field) for a in aside]
        aside_frame = pd.DataFrame(rows, columns=["message_id", "charger", "kind", "reason", "field"])
        late_frame = pd.DataFrame(list(late), columns=["site", "minute", "energy_wh"])
        return cls(s, _sorted(per, "chargers"), _sorted(load, "load"), _sorted(silence, "silences"),
                   _sorted(aside_frame, "aside"), messages, used, late_frame)


def _sorted(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    keys = TABLES[name]
    # Keys may hold None or odd types (a broken message's fields): sort on their text.
    order = frame[keys].astype(str).sort_values(keys, kind="stable").index
    return frame.loc[order].reset_index(drop=True)

