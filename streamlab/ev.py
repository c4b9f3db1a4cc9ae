"""EV charging telemetry: a fleet of chargers on sites, their OCPP-style messages, and the rules that read them.

A charging company's back office hears from every charger over its own
connection: a ``Heartbeat`` every minute while idle, a ``StatusNotification``
when its state changes, and for each charging session a ``StartTransaction``,
``MeterValues`` every few seconds and a ``StopTransaction`` (the message kinds of
the Open Charge Point Protocol, OCPP 1.6). :func:`fleet` describes such a fleet,
seeded: thousands of chargers on about a hundred sites, one of them hot (many
more chargers than the others), a few chargers not yet registered, outages,
and broken messages (a missing field, a meter reading that goes backwards, a
retry that duplicates a message).

Each charger's messages arrive in the order they happened (one ordered
connection per charger, as OCPP's WebSocket gives), each at most ``disorder``
after it happened; messages of *different* chargers arrive out of order. The
messages go to ``partitions`` partitions by charger, as a Kafka topic (or the
lesson 03 log) would put them: :meth:`Fleet.partition` is one partition's
stream, :meth:`Fleet.pile` the pile cut at an arrival time.

One set of rules reads them, in both drivers: a :class:`Chargers` object holds
each charger's state (its open session, its last message) and turns messages
into charging sessions, silences, per-site energy per minute and messages set
aside with a reason. The batch driver feeds it the pile, charger by charger;
the stream driver feeds it each partition as it arrives.

>>> f = fleet(seed=1, chargers=20, sites=3)
>>> pile = f.pile(until=f.start + timedelta(minutes=10))
>>> len(pile), sorted({m.kind for m in pile})[:2]
(215, ['Heartbeat', 'MeterValues'])
>>> pile == f.pile(until=f.start + timedelta(minutes=10))   # same seed, same messages
True
"""

from __future__ import annotations

import heapq
import json
import math
import random
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

import pandas as pd

from streamlab.events import COURSE_START, MAX_DURATION, check_count, check_utc, duration

__all__ = [
    "KINDS",
    "REASONS",
    "Aside",
    "Chargers",
    "Fleet",
    "Message",
    "Session",
    "Silence",
    "fleet",
    "minute_of",
    "partition_for",
    "to_frame",
    "to_ocpp",
]

#: The message kinds, after OCPP 1.6's.
KINDS: tuple[str, ...] = ("Heartbeat", "StatusNotification", "StartTransaction", "MeterValues", "StopTransaction")
#: The statuses a StatusNotification carries here (OCPP 1.6 has a few more).
STATUSES: tuple[str, ...] = ("Available", "Charging", "Faulted")
#: Why a message is set aside; every message is either used or set aside with one of these.
REASONS: tuple[str, ...] = (
    "unknown kind",
    "bad time",
    "missing field",
    "bad value",
    "unknown charger",
    "duplicate",
    "no open session",
    "meter went backwards",
)
#: The fields each kind must carry (beyond message_id, charger, kind and the two times).
REQUIRED: dict[str, tuple[str, ...]] = {
    "Heartbeat": (),
    "StatusNotification": ("status",),
    "StartTransaction": ("transaction", "meter_wh"),
    "MeterValues": ("transaction", "meter_wh", "power_w"),
    "StopTransaction": ("transaction", "meter_wh"),
}
#: Most chargers a fleet may have (each keeps its own generator state).
MAX_CHARGERS = 200_000
#: Most partitions.
MAX_PARTITIONS = 1024


class Message(NamedTuple):
    """One OCPP-style message from a charger, with when it happened and when it arrived.

    ``transaction``, ``meter_wh`` (the energy register, in Wh), ``power_w`` and
    ``status`` are ``None`` where the kind does not carry them. The rules never
    trust a message: a missing or ill-typed field sets it aside with a reason.
    """

    message_id: str
    charger: str
    kind: str
    event_time: datetime
    arrival_time: datetime
    transaction: int | None = None
    meter_wh: int | None = None
    power_w: int | None = None
    status: str | None = None


class Session(NamedTuple):
    """A charging session and the energy it delivered; ``complete`` is False when its stop never came."""

    charger: str
    site: str
    transaction: int
    started: datetime
    ended: datetime
    energy_wh: int
    complete: bool


class Silence(NamedTuple):
    """A charger that sent nothing for longer than the threshold; ``until`` is None if it is still silent."""

    charger: str
    site: str
    since: datetime
    until: datetime | None


class Aside(NamedTuple):
    """A message set aside, with the reason and the field at fault (empty when none is)."""

    message: Message
    reason: str
    field: str


def partition_for(charger: str, partitions: int) -> int:
    """The partition a charger's messages go to: a stable hash of its id (the same as the lesson 03 log's).

    >>> partition_for("CP-0001", 4) == partition_for("CP-0001", 4)
    True
    """
    return zlib.crc32(charger.encode("utf-8")) % partitions


def minute_of(t: datetime) -> datetime:
    """The start of the minute ``t`` falls in: the 1-minute window it counts in."""
    return t.replace(second=0, microsecond=0)


def to_ocpp(message: Message) -> str:
    """The message as it travels: an OCPP-J ``CALL`` frame, ``[2, id, action, payload]``, as JSON.

    >>> t = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
    >>> to_ocpp(Message("CP-0001:7", "CP-0001", "Heartbeat", t, t))
    '[2,"CP-0001:7","Heartbeat",{"timestamp":"2026-03-01T09:00:00+00:00"}]'
    """
    payload: dict[str, Any] = {"timestamp": message.event_time.isoformat()}
    if message.kind == "StatusNotification":
        payload.update(connectorId=1, errorCode="NoError", status=message.status)
    elif message.kind == "StartTransaction":
        payload.update(connectorId=1, idTag="RFID-0", meterStart=message.meter_wh, transactionId=message.transaction)
    elif message.kind == "StopTransaction":
        payload.update(meterStop=message.meter_wh, transactionId=message.transaction)
    elif message.kind == "MeterValues":
        payload.update(connectorId=1, transactionId=message.transaction, meterValue=[{"sampledValue": [
            {"measurand": "Energy.Active.Import.Register", "unit": "Wh", "value": str(message.meter_wh)},
            {"measurand": "Power.Active.Import", "unit": "W", "value": str(message.power_w)},
        ]}])
    return json.dumps([2, message.message_id, message.kind, payload], separators=(",", ":"))


# ---------------------------------------------------------------------- the fleet


@dataclass(frozen=True)
class Fleet:
    """A seeded fleet of chargers and the unbounded stream of their messages; build one with :func:`fleet`."""

    seed: int
    chargers: int
    sites: int
    hot_share: float
    unregistered: int
    meter_interval: float
    heartbeat_interval: float
    disorder: float
    broken: float
    outages: float
    start: datetime
    charger_ids: tuple[str, ...] = field(repr=False)
    #: The back office's charger table: registered charger -> its site.
    site_of: dict[str, str] = field(repr=False)
    #: Each charger's rated power, in W.
    rated_w: dict[str, int] = field(repr=False)

    def __len__(self) -> int:
        raise TypeError("a fleet's stream has no length: there is no last message (cut a pile with pile(until=...))")

    def spec(self) -> dict[str, Any]:
        """The arguments that rebuild this fleet with :func:`fleet`, as JSON-ready values (for another process)."""
        names = ("seed", "chargers", "sites", "hot_share", "unregistered", "meter_interval", "heartbeat_interval",
                 "disorder", "broken", "outages")
        return {**{n: getattr(self, n) for n in names}, "start": self.start.isoformat()}

    @property
    def site_ids(self) -> list[str]:
        """The sites, hot one first."""
        return sorted(set(self.site_of.values()))

    def __iter__(self) -> Iterator[Message]:
        """Every charger's messages, merged in arrival order: the whole pipe."""
        return self._merged(self.charger_ids)

    def partition(self, partition: int, partitions: int) -> Iterator[Message]:
        """The messages of the chargers in one partition, in arrival order; unbounded."""
        check_count("partitions", partitions, 1, MAX_PARTITIONS)
        if not isinstance(partition, int) or isinstance(partition, bool) or not 0 <= partition < partitions:
            raise ValueError(f"partition must be an int from 0 to {partitions - 1}, got {partition!r}")
        return self._merged([c for c in self.charger_ids if partition_for(c, partitions) == partition])

    def pile(self, *, until: datetime, partition: int | None = None, partitions: int = 1) -> list[Message]:
        """Every message that arrived strictly before ``until`` (of one partition, if given): a finite pile."""
        check_utc("until", until)
        source = self if partition is None else self.partition(partition, partitions)
        out = []
        for message in source:
            if message.arrival_time >= until:
                return out
            out.append(message)
        raise AssertionError("unreachable: a fleet never runs dry")  # pragma: no cover

    def _merged(self, chargers: Iterable[str]) -> Iterator[Message]:
        # Each charger's messages come in arrival order; a heap keyed by the next arrival (in seconds
        # from the start, cheaper to compare than datetimes) merges them, one message per charger at a time.
        heap = []
        for n, charger in enumerate(chargers):
            gen = self._charger(charger)
            arrival, message = next(gen)
            heap.append((arrival, n, message, gen))
        heapq.heapify(heap)
        while heap:
            _, n, message, gen = heap[0]
            yield message
            arrival, following = next(gen)
            heapq.heapreplace(heap, (arrival, n, following, gen))

    def _charger(self, charger: str) -> Iterator[tuple[float, Message]]:
        """One charger's messages, in event order, each arriving no earlier than the one before, with its arrival in seconds."""
        index = int(charger[3:])
        rng = random.Random(f"{self.seed}:{charger}")
        start, disorder, broken = self.start, self.disorder, self.broken
        rated = self.rated_w[charger]
        sequence = 0
        last_arrival = -math.inf
        # The last reading sent intact: a reading "going backwards" is made lower than this one.
        reported = 0
        # A charger's connection has its own latency; it drifts, within [0, disorder].
        latency = rng.uniform(0.0, disorder)
        register = rng.randrange(1_000, 5_000_000)
        transaction = index * 100_000

        def send(t: float, kind: str, **fields: Any) -> Iterator[tuple[float, Message]]:
            nonlocal sequence, last_arrival, latency, reported
            sequence += 1
            if disorder:
                latency = min(disorder, max(0.0, latency + rng.uniform(-0.1, 0.1) * disorder))
            # Never before the previous message: one ordered connection per charger.
            arrival = last_arrival = max(t + latency, last_arrival)
            message = Message(f"{charger}:{sequence}", charger, kind, start + timedelta(seconds=t),
                              start + timedelta(seconds=arrival), **fields)
            if broken and rng.random() < broken:
                damage = rng.choice(("duplicate", "missing") + (("backwards",) if kind == "MeterValues" else ()))
                if damage == "missing" and REQUIRED[kind]:
                    message = message._replace(**{rng.choice(REQUIRED[kind]): None})
                elif damage == "backwards":
                    message = message._replace(meter_wh=max(0, reported - rng.randrange(1, 500)))
                elif damage == "duplicate" or not REQUIRED[kind]:
                    # A retry: the same message again, a moment later (OCPP resends a call it got no answer to).
                    yield arrival, message
                    # ... still within `disorder` of when it happened.
                    arrival = last_arrival = last_arrival + (t + disorder - last_arrival) * rng.random()
                    message = message._replace(arrival_time=start + timedelta(seconds=arrival))
            if message.meter_wh is not None and kind != "StartTransaction":
                reported = max(reported, message.meter_wh)
            elif kind == "StartTransaction" and message.meter_wh is not None:
                reported = message.meter_wh
            yield arrival, message

        t = rng.uniform(0.0, self.heartbeat_interval)
        yield from send(t, "StatusNotification", status="Available")
        while True:
            # Idle: a heartbeat a minute, now and then an outage (the charger goes silent, then reboots).
            idle_end = t + rng.expovariate(1 / 2400)
            if self.outages and rng.random() < self.outages:
                t += rng.uniform(0, 300)
                yield from send(t, "StatusNotification", status="Faulted")
                t += rng.uniform(600, 3600)
                yield from send(t, "StatusNotification", status="Available")
                idle_end = max(idle_end, t + 1)
            while t + self.heartbeat_interval < idle_end:
                t += self.heartbeat_interval
                yield from send(t, "Heartbeat")
            # A session: the car draws a share of the charger's power, metered every meter_interval.
            t = idle_end
            transaction += 1
            yield from send(t, "StatusNotification", status="Charging")
            t += 1.0
            yield from send(t, "StartTransaction", transaction=transaction, meter_wh=register)
            end = t + max(120.0, rng.expovariate(1 / 1800))
            power = rated * rng.uniform(0.4, 1.0)
            energy = float(register)
            while t + self.meter_interval < end:
                t += self.meter_interval
                drawn = power * rng.uniform(0.9, 1.0)
                energy += drawn * self.meter_interval / 3600
                yield from send(t, "MeterValues", transaction=transaction, meter_wh=int(energy),
                                power_w=int(drawn))
            t = end
            register = int(energy)
            yield from send(t, "StopTransaction", transaction=transaction, meter_wh=register)
            t += 1.0
            yield from send(t, "StatusNotification", status="Available")


def fleet(
    seed: int = 0,
    *,
    chargers: int = 3000,
    sites: int = 100,
    hot_share: float = 0.2,
    unregistered: int = 0,
    meter_interval: timedelta | float = 15.0,
    heartbeat_interval: timedelta | float = 60.0,
    disorder: timedelta | float = 5.0,
    broken: float = 0.0,
    outages: float = 0.0,
    start: datetime = COURSE_START,
) -> Fleet:
    """Describe a seeded fleet of EV chargers and the unbounded stream of their messages.

    :param seed: the same seed gives the same messages, every time.
    :param chargers: registered chargers, ``CP-0000`` ... ; they are spread over ``sites``.
    :param sites: how many sites (``site-000`` ...); the first is the hot one.
    :param hot_share: the share of all chargers on the hot site (a big motorway hub); 0 to 1.
    :param unregistered: chargers that send messages but are not in the back office's table yet.
    :param meter_interval: seconds between two MeterValues of a session.
    :param heartbeat_interval: seconds between two heartbeats of an idle charger.
    :param disorder: the longest a message takes to arrive, in seconds; each charger's
        messages still arrive in order, those of different chargers do not.
    :param broken: the share of messages damaged: a field missing, a meter reading
        lower than the one before, or a retry that sends it twice.
    :param outages: the chance that an idle charger faults and goes silent for 10 to 60 minutes.
    :param start: when the clock starts (timezone-aware UTC).

    >>> fleet(chargers=0)
    Traceback (most recent call last):
    ...
    ValueError: chargers must be an int >= 1, got 0
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__} {seed!r:.60}")
    check_count("chargers", chargers, 1, MAX_CHARGERS)
    check_count("sites", sites, 1, chargers)
    check_count("unregistered", unregistered, 0, MAX_CHARGERS)
    for name, share in (("hot_share", hot_share), ("broken", broken), ("outages", outages)):
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 <= share <= 1.0:
            raise ValueError(f"{name} must be a fraction from 0 to 1, got {share!r}")
    intervals = {}
    for name, value in (("meter_interval", meter_interval), ("heartbeat_interval", heartbeat_interval)):
        seconds = duration(name, value).total_seconds()
        if not 1.0 <= seconds <= 3600.0:
            raise ValueError(f"{name} must be from 1 second to 1 hour, got {seconds:g} s")
        intervals[name] = seconds
    disorder_s = duration("disorder", disorder).total_seconds()
    if not 0.0 <= disorder_s <= MAX_DURATION.total_seconds():
        raise ValueError(f"disorder must be >= 0, got {disorder_s:g} s")
    check_utc("start", start)
    width = max(4, len(str(chargers + unregistered - 1)))
    ids = tuple(f"CP-{i:0{width}d}" for i in range(chargers + unregistered))
    rng = random.Random(f"{seed}:sites")
    site_names = [f"site-{i:03d}" for i in range(sites)]
    # The hot site takes hot_share of the chargers; the others share the rest evenly (at least one each).
    hot = max(1, min(chargers - (sites - 1), round(hot_share * chargers))) if sites > 1 else chargers
    order = list(range(chargers))
    rng.shuffle(order)
    site_of = {}
    for rank, i in enumerate(order):
        site_of[ids[i]] = site_names[0] if rank < hot else site_names[1 + (rank - hot) % (sites - 1)]
    # AC chargers (11 kW) mostly; a fifth are DC fast chargers (50 or 150 kW).
    rated = {c: rng.choice((11_000, 11_000, 11_000, 11_000, 50_000, 150_000)) for c in ids}
    return Fleet(seed, chargers, sites, float(hot_share), unregistered, intervals["meter_interval"],
                 intervals["heartbeat_interval"], disorder_s, float(broken), float(outages), start, ids, site_of,
                 rated)


def to_frame(pile: Iterable[Message]) -> pd.DataFrame:
    """A pile of messages as a DataFrame, one row per message, columns named as the message's fields."""
    frame = pd.DataFrame.from_records(list(pile), columns=Message._fields)
    for column in ("transaction", "meter_wh", "power_w"):
        frame[column] = frame[column].astype("Int64") if frame[column].map(_is_int_or_none).all() else frame[column]
    return frame


def _is_int_or_none(x: object) -> bool:
    return x is None or (isinstance(x, int) and not isinstance(x, bool))


# ---------------------------------------------------------------------- the rules


class _Charger:
    __slots__ = ("last_id", "last_seen", "transaction", "started", "meter_start", "meter_last", "last_reading")

    def __init__(self) -> None:
        self.last_id: str | None = None
        self.last_seen: datetime | None = None
        self.transaction: int | None = None
        self.started: datetime | None = None
        self.meter_start = 0
        self.meter_last = 0
        self.last_reading: datetime | None = None


_UTC = timezone.utc
_UTC_MIN = datetime.min.replace(tzinfo=timezone.utc)
_MINUTE = timedelta(minutes=1)


def _problem(m: Any) -> tuple[str, str] | None:
    """What is wrong with a message on its own (no state needed), as (reason, field), or None."""
    try:
        kind, event_time, arrival_time, message_id, charger = (
            m.kind, m.event_time, m.arrival_time, m.message_id, m.charger)
    except AttributeError:
        return ("unknown kind", "kind")  # not a message at all
    required = REQUIRED.get(kind) if isinstance(kind, str) else None
    if required is None:
        return ("unknown kind", "kind")
    for name, t in (("event_time", event_time), ("arrival_time", arrival_time)):
        # The fast test first: the course's own times carry timezone.utc itself.
        if not (isinstance(t, datetime) and (t.tzinfo is _UTC or t.utcoffset() == timedelta(0))):
            return ("bad time", name)
    if not isinstance(message_id, str) or not message_id:
        return ("missing field", "message_id")
    if not isinstance(charger, str) or not charger:
        return ("missing field", "charger")
    if kind == "MeterValues":
        # The commonest message, checked in one go; anything odd takes the general path below.
        transaction, meter, power = m.transaction, m.meter_wh, m.power_w
        if type(transaction) is int and type(meter) is int and type(power) is int and meter >= 0 and power >= 0 \
                and transaction >= 0:
            return None
    for name in required:
        value = getattr(m, name)
        if value is None:
            return ("missing field", name)
        if name == "status":
            if value not in STATUSES:
                return ("bad value", name)
        # type() rather than isinstance: a bool is not a reading.
        elif type(value) is not int or value < 0:
            return ("bad value", name)
    return None


class Chargers:
    """Every charger's state, and the rules that turn its messages into sessions, silences and energy.

    Feed it each charger's messages in the order they happened (:meth:`feed`); it
    appends what it finds to its lists and adds energy to :attr:`load` (Wh per
    ``(site, minute)``). Every message is either used (:attr:`used`) or set
    aside with a reason (:attr:`aside`). The rules, in order:

    1. kind, times and the fields the kind needs, present and well typed;
    2. the charger is in the back office's table (``site_of``);
    3. a retry (the same ``message_id`` as the charger's previous message) is a duplicate;
    4. meter readings and stops belong to the charger's open session, and a
       reading is never below the previous one;
    5. a start while a session is open closes that session as incomplete.

    A gap longer than ``silence`` between two messages of a charger is a
    :class:`Silence`; :meth:`close` adds the chargers still silent at the end.

    >>> f = fleet(seed=3, chargers=4, sites=2)
    >>> rules = Chargers(f.site_of)
    >>> for m in f.pile(until=f.start + timedelta(hours=2)):
    ...     rules.feed(m)
    >>> rules.used, len(rules.aside), len(rules.sessions)
    (1257, 0, 6)
    """

    def __init__(self, site_of: dict[str, str], silence: timedelta | float = 300.0, *, readings: bool = False) -> None:
        self.site_of = site_of
        self.silence = duration("silence", silence)
        if self.silence <= timedelta(0):
            raise ValueError(f"silence must be > 0, got {self.silence}")
        self.state: dict[str, _Charger] = {}
        self.used = 0
        self.aside: list[Aside] = []
        self.sessions: list[Session] = []
        self.silences: list[Silence] = []
        self.load: dict[tuple[str, datetime], int] = {}
        #: With ``readings=True``, every accepted increase of a meter as ``(site, event_time, wh)``,
        #: instead of summing them into :attr:`load` (a batch job aggregates them itself).
        self.readings: list[tuple[str, datetime, int]] | None = [] if readings else None
        # The minute of the last reading: most readings fall in the same one, and datetime.replace is not cheap.
        self._minute = self._minute_end = _UTC_MIN

    def feed(self, m: Message) -> None:
        """Apply the rules to one message (the charger's messages must come in the order they happened)."""
        problem = _problem(m)
        if problem is not None:
            self.aside.append(Aside(m, *problem))
            return
        site = self.site_of.get(m.charger)
        if site is None:
            self.aside.append(Aside(m, "unknown charger", "charger"))
            return
        c = self.state.get(m.charger)
        if c is None:
            c = self.state[m.charger] = _Charger()
        if m.message_id == c.last_id:
            self.aside.append(Aside(m, "duplicate", "message_id"))
            return
        c.last_id = m.message_id
        t = m.event_time
        if c.last_seen is not None and t - c.last_seen > self.silence:
            self.silences.append(Silence(m.charger, site, c.last_seen, t))
        c.last_seen = t
        kind = m.kind
        if kind == "MeterValues" or kind == "StopTransaction":
            if c.transaction is None or m.transaction != c.transaction:
                self.aside.append(Aside(m, "no open session", "transaction"))
                return
            if m.meter_wh < c.meter_last:
                self.aside.append(Aside(m, "meter went backwards", "meter_wh"))
                return
            if m.meter_wh > c.meter_last:
                if self.readings is not None:
                    self.readings.append((site, t, m.meter_wh - c.meter_last))
                else:
                    if not self._minute <= t < self._minute_end:
                        self._minute = t.replace(second=0, microsecond=0)
                        self._minute_end = self._minute + _MINUTE
                    key = (site, self._minute)
                    self.load[key] = self.load.get(key, 0) + m.meter_wh - c.meter_last
            c.meter_last = m.meter_wh
            c.last_reading = t
            if kind == "StopTransaction":
                self.sessions.append(
                    Session(m.charger, site, c.transaction, c.started, t, m.meter_wh - c.meter_start, True))
                c.transaction = None
        elif kind == "StartTransaction":
            if c.transaction is not None:
                self._incomplete(m.charger, site, c)
            c.transaction, c.started, c.meter_start, c.meter_last = m.transaction, t, m.meter_wh, m.meter_wh
            c.last_reading = t
        self.used += 1

    def _incomplete(self, charger: str, site: str, c: _Charger) -> None:
        self.sessions.append(Session(charger, site, c.transaction, c.started, c.last_reading,
                                     c.meter_last - c.meter_start, False))
        c.transaction = None

    def close(self, now: datetime) -> None:
        """At the end of a pile cut at ``now``: the chargers silent for longer than the threshold, still silent."""
        for charger, c in self.state.items():
            if now - c.last_seen > self.silence:
                self.silences.append(Silence(charger, self.site_of[charger], c.last_seen, None))
