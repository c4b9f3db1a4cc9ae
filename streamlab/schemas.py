"""One rule table for order events, two validators built from it, and dead letters for what fails.

:data:`RULES` says, once, what a valid order event is: each field's type and
its bounds, lengths or allowed values. From it come

- :data:`OrderModel`, a pydantic model: the stream validates each event with it;
- :func:`pandera_schema`, a pandera ``DataFrameSchema``: the pile validates its columns with it;

so the two can never drift apart (a test checks they flag the same events and fields).

:func:`validate` is what the stream does with one payload, as it arrived: an
Avro message on the wire (bytes: :func:`encode` / :func:`decode`) or a record
already decoded (a dict). It returns the :class:`~streamlab.orders.OrderEvent`
or a :class:`DeadLetter`: the original payload, where it came from, and the
reason (field, value, rule). It never raises for bad data. Dead letters go to a
dead-letter topic (:func:`dead_letter_log`, a :class:`~streamlab.log.Log`),
from which they can be read back and replayed after a fix (:func:`replay`).

>>> from streamlab.orders import COURSE_START
>>> good = {"order_id": "order-1", "customer": "customer-3", "kind": "placed", "amount": 25.0,
...         "event_time": COURSE_START, "arrival_time": COURSE_START}
>>> validate(good).kind
'placed'
>>> letter = validate({**good, "amount": "25.0"}, source="orders/0@7")
>>> letter.field, letter.value, letter.rule, letter.source
('amount', "'25.0'", 'type', 'orders/0@7')
>>> letter.reason
"amount must be a number (int or float), got '25.0'"
>>> validate(encode(good)).order_id
'order-1'
>>> validate(encode(good)[:9]).reason
'truncated or not Avro: the body ends before the record does (EOFError)'
"""

from __future__ import annotations

import base64
import io
import json
import math
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import fastavro
import pandas as pd
import pandera.pandas as pa
import pydantic
from pydantic import AfterValidator, AwareDatetime, ConfigDict, Field
from pydantic_core import PydanticCustomError

from streamlab.events import EARLIEST, LATEST
from streamlab.orders import KINDS, OrderEvent
from streamlab.registry import Registry, UnknownSchemaError, load

__all__ = [
    "DEAD_LETTER_COLUMNS",
    "MAGIC",
    "FAULTS",
    "LEGACY_SUBJECT",
    "MISSING",
    "ORDER_SUBJECT",
    "RULES",
    "DeadLetter",
    "Opaque",
    "OrderModel",
    "Problem",
    "Replayed",
    "Rule",
    "Unencodable",
    "check_record",
    "dead_frame",
    "dead_letter_log",
    "decode",
    "default_registry",
    "dirty_payloads",
    "encode",
    "first_failure",
    "iter_checked",
    "pandera_schema",
    "problems_pandera",
    "problems_pydantic",
    "publish_dead_letters",
    "read_dead_letters",
    "records_frame",
    "shape_problem",
    "replay",
    "rollout",
    "rules_frame",
    "to_event",
    "validate",
    "Validated",
    "WireError",
    "events_frame",
    "finite_payloads",
]

# --------------------------------------------------------------------------- the rule table


@dataclass(frozen=True)
class Rule:
    """What one field of an order event must be: its type, and bounds, lengths or allowed values.

    Every field is required and may not be ``None``. A field's checks run in a
    fixed order, and a value is reported for the first one it fails:
    ``required``, ``type``, then for strings ``utf8``, ``length``, ``allowed``;
    for numbers ``finite``, ``range``; for times ``utc``, ``range`` (the times pandas can hold).
    """

    field: str
    type: Literal["str", "float", "datetime"]
    min_length: int | None = None
    max_length: int | None = None
    allowed: tuple[str, ...] | None = None
    gt: float | None = None
    le: float | None = None

    @property
    def checks(self) -> tuple[str, ...]:
        """The names of this field's checks, in the order they run."""
        return {
            "str": ("required", "type", "utf8", "length", "allowed"),
            "float": ("required", "type", "finite", "range"),
            "datetime": ("required", "type", "utc", "range"),
        }[self.type]


#: The one rule set of an order event (lesson 02's :class:`~streamlab.orders.OrderEvent`).
RULES: tuple[Rule, ...] = (
    Rule("order_id", "str", min_length=1, max_length=64),
    Rule("customer", "str", min_length=1, max_length=64),
    Rule("kind", "str", allowed=KINDS),
    Rule("amount", "float", gt=0.0, le=1_000_000.0),
    Rule("event_time", "datetime"),
    Rule("arrival_time", "datetime"),
)
_FIELDS = tuple(r.field for r in RULES)
_ORDER = {name: i for i, name in enumerate(_FIELDS)}


class _Missing:
    """A field the payload does not have (not the same as a field that is ``None``)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


#: Stands for an absent field in a pile's frame (pandas would otherwise turn it into NaN, like a real NaN).
MISSING = _Missing()


def _expected(rule: Rule, check: str) -> str:
    """What ``check`` of ``rule`` asks for, in words (the dead letter's reason says it)."""
    if check == "required":
        return "present (required, not None)"
    if check == "type":
        return {"str": "a string", "float": "a number (int or float)", "datetime": "a datetime"}[rule.type]
    if check == "length":
        return f"{rule.min_length} to {rule.max_length} characters long"
    if check == "utf8":
        return "valid Unicode text (encodable as UTF-8)"
    if check == "allowed":
        return f"one of {rule.allowed}"
    if check == "finite":
        return "a finite number (not NaN or infinite)"
    if check == "range" and rule.type == "datetime":
        return f"between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (the times pandas can hold)"
    if check == "range":
        return f"> {rule.gt:g} and <= {rule.le:g}"
    if check == "utc":
        return "timezone-aware UTC"
    if check == "known_fields":
        return f"absent: an order event has only the fields {list(_FIELDS)}"
    raise ValueError(f"no check named {check!r}")


def _is_number(v: Any) -> bool:
    """A float, or an int a float can hold (as pydantic's strict float accepts); never a bool."""
    if isinstance(v, float):
        return True
    if not isinstance(v, int) or isinstance(v, bool):
        return False
    try:
        float(v)
    except OverflowError:
        return False
    return True


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no file, frame or log can hold it
        return False
    return True


class Unencodable:
    """A string that UTF-8 cannot hold (a lone surrogate), wrapped for a pile's frame.

    pandera reports failing values through pyarrow strings, which cannot hold
    such a string: the whole column would fail instead of the row. Wrapped, it
    stays an object; it is still "a string" to the ``type`` and ``length``
    checks, and fails ``utf8``, exactly as pydantic sees the bare string.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __len__(self) -> int:
        return len(self.text)

    def __repr__(self) -> str:
        return repr(self.text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unencodable) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


# The element tests of each check, used by the pandera form. Each assumes the checks before it passed.
def _passes(rule: Rule, check: str, v: Any) -> bool:
    if check == "required":
        return v is not MISSING and v is not None
    if check == "type":
        if rule.type == "str":
            return isinstance(v, (str, Unencodable))
        if rule.type == "float":
            return _is_number(v)
        return isinstance(v, datetime)
    if check == "length":
        return (rule.min_length is None or len(v) >= rule.min_length) and (
            rule.max_length is None or len(v) <= rule.max_length)
    if check == "utf8":
        return not isinstance(v, Unencodable) and _encodable(v)
    if check == "allowed":
        return rule.allowed is None or v in rule.allowed
    if check == "finite":
        return isinstance(v, int) or math.isfinite(v)
    if check == "range" and rule.type == "datetime":
        return EARLIEST <= v <= LATEST
    if check == "range":
        return (rule.gt is None or v > rule.gt) and (rule.le is None or v <= rule.le)
    if check == "utc":
        return v.utcoffset() == timedelta(0)
    raise ValueError(f"no check named {check!r}")


def first_failure(rule: Rule, value: Any) -> str | None:
    """The first check of ``rule`` that ``value`` fails, or ``None`` if it passes them all.

    >>> first_failure(RULES[3], float("nan")), first_failure(RULES[3], 12.5)
    ('finite', None)
    """
    for check in rule.checks:
        if not _passes(rule, check, value):
            return check
    return None


# --------------------------------------------------------------------------- the pydantic form


def _after(rule: Rule, checks: tuple[str, ...]) -> Callable[[Any], Any]:
    """One after-validator for the ``checks`` of ``rule`` pydantic has no constraint for, in the table's order.

    It raises an error whose type is the failing check's name. One Python call
    per field, and a fast test for the common case, because the stream pays it
    for every event.
    """
    tests = []
    for check in checks:
        if check == "utf8":
            tests.append((check, lambda v: v.isascii() or _encodable(v)))
        elif check == "allowed":
            allowed = frozenset(rule.allowed or ())
            tests.append((check, lambda v, allowed=allowed: v in allowed))
        elif check == "utc":
            tests.append((check, lambda v: v.utcoffset() == _ZERO))
        elif check == "range" and rule.type == "datetime":
            tests.append((check, lambda v: EARLIEST <= v <= LATEST))
        else:
            raise ValueError(f"no after-validator for check {check!r}")

    def validator(value: Any) -> Any:
        for check, test in tests:
            if not test(value):
                raise PydanticCustomError(check, "{field} must be {expected}",
                                          {"field": rule.field, "expected": _expected(rule, check)})
        return value

    return validator


_ZERO = timedelta(0)


def _annotation(rule: Rule) -> Any:
    """The pydantic type of one rule: the rule's bounds as pydantic constraints, the rest as one validator."""
    if rule.type == "str":
        constraint = Field(min_length=rule.min_length, max_length=rule.max_length)
        # pydantic refuses a string UTF-8 cannot hold by itself (string_unicode), but only when the field has
        # a length to check (found by fuzzing): the validator says it for the others, before allowed values.
        checks = () if rule.min_length is not None or rule.max_length is not None else ("utf8",)
        checks += ("allowed",) if rule.allowed is not None else ()
        return Annotated[str, constraint, AfterValidator(_after(rule, checks))] if checks else Annotated[str, constraint]
    if rule.type == "float":
        return Annotated[float, Field(gt=rule.gt, le=rule.le, allow_inf_nan=False)]
    # AwareDatetime refuses a naive time (timezone_aware: the utc check); the validator does the rest.
    return Annotated[AwareDatetime, AfterValidator(_after(rule, ("utc", "range")))]


#: The rule table as a pydantic model: strict (no "25.0" taken for 25.0), no unknown fields.
OrderModel: type[pydantic.BaseModel] = pydantic.create_model(
    "OrderModel",
    __config__=ConfigDict(strict=True, extra="forbid"),
    __doc__="An order event as the rule table describes it (built from :data:`RULES`).",
    **{rule.field: (_annotation(rule), ...) for rule in RULES},
)

# pydantic's error types, as the rule table's check names.
_PYDANTIC_CHECKS = {
    "missing": "required",
    "string_type": "type", "float_type": "type", "datetime_type": "type", "string_unicode": "utf8",
    "string_too_short": "length", "string_too_long": "length",
    "finite_number": "finite",
    "greater_than": "range", "less_than_equal": "range",
    "timezone_aware": "utc",
    "extra_forbidden": "known_fields",
    "utf8": "utf8", "allowed": "allowed", "utc": "utc",
}


@dataclass(frozen=True)
class Problem:
    """One field that breaks the rules: its name, its value (as ``repr``, cut short) and the check it fails."""

    field: str
    value: str
    rule: str

    @property
    def reason(self) -> str:
        """The problem in one sentence."""
        if self.rule == "known_fields":
            return f"{self.field} is not a field of an order event (it has {list(_FIELDS)})"
        rule = RULES[_ORDER[self.field]]
        return f"{self.field} must be {_expected(rule, self.rule)}, got {self.value}"


def _short(value: Any) -> str:
    if value is MISSING:
        return "nothing (the field is missing)"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _sorted(problems: Iterable[Problem]) -> tuple[Problem, ...]:
    # The rule table's field order, then unknown fields by name: the same order in both drivers.
    return tuple(sorted(problems, key=lambda p: (_ORDER.get(p.field, len(_ORDER)), p.field)))


def problems_pydantic(record: Mapping[str, Any]) -> tuple[Problem, ...] | OrderEvent:
    """Validate one record with :data:`OrderModel`: the event, or every field's problem.

    >>> [p.rule for p in problems_pydantic({"order_id": "", "amount": float("inf")})][:3]
    ['length', 'required', 'required']
    """
    try:
        model = OrderModel.model_validate(record)
    except pydantic.ValidationError as err:
        found = []
        for e in err.errors(include_url=False):
            name = str(e["loc"][0]) if e["loc"] else ""
            value = record.get(name, MISSING) if isinstance(record, Mapping) else record
            check = _PYDANTIC_CHECKS.get(e["type"], e["type"])
            if check == "type" and value is None:
                check = "required"
            found.append(Problem(name, _short(value), check))
        return _sorted(found)
    return to_event(model)


def to_event(model: Any) -> OrderEvent:
    """The :class:`~streamlab.orders.OrderEvent` of a validated record (a model, or a dict of its fields)."""
    data = model if isinstance(model, Mapping) else model.__dict__
    return OrderEvent(data["order_id"], data["customer"], data["kind"], float(data["amount"]),
                      data["event_time"], data["arrival_time"])


# --------------------------------------------------------------------------- the pandera form


def _column_check(rule: Rule, check: str) -> pa.Check:
    """One check of ``rule`` over a whole column: a row fails it if it passed the checks before and fails this one."""
    before = rule.checks[: rule.checks.index(check)]

    def test(column: pd.Series) -> pd.Series:
        ok = [not all(_passes(rule, b, v) for b in before) or _passes(rule, check, v) for v in column]
        return pd.Series(ok, index=column.index, dtype=bool)

    # ignore_na=False: pandera would otherwise drop NaN before checking, and NaN is a value to refuse here.
    # No error= text: pandera would report it instead of the check's name, which is the dead letter's rule.
    return pa.Check(test, name=check, ignore_na=False)


def _unknown_check() -> pa.Check:
    def test(column: pd.Series) -> pd.Series:
        return pd.Series([v is MISSING for v in column], index=column.index, dtype=bool)

    return pa.Check(test, name="known_fields", ignore_na=False)


def pandera_schema(columns: Iterable[str] = ()) -> pa.DataFrameSchema:
    """The rule table as a pandera schema, for a frame of raw records (object columns, :data:`MISSING` for absent).

    ``columns``: the frame's columns; those not in the rule table get one check
    that flags every row in which they have a value (an unknown field).

    >>> sorted(pandera_schema().columns)
    ['amount', 'arrival_time', 'customer', 'event_time', 'kind', 'order_id']
    """
    spec = {
        rule.field: pa.Column(
            None, nullable=True, required=True, checks=[_column_check(rule, c) for c in rule.checks]
        )
        for rule in RULES
    }
    for name in columns:
        if name not in spec:
            spec[name] = pa.Column(None, nullable=True, checks=[_unknown_check()])
    return pa.DataFrameSchema(spec, name="order events", strict=False)


def records_frame(records: list[Mapping[str, Any]]) -> pd.DataFrame:
    """Decoded records as a frame of object columns: every rule field, then unknown fields sorted; absent is :data:`MISSING`."""
    extra = sorted({k for r in records for k in r if k not in _ORDER}, key=str)
    names = [*_FIELDS, *extra]

    def cell(v: Any) -> Any:
        return Unencodable(v) if isinstance(v, str) and not _encodable(v) else v

    return pd.DataFrame(
        {name: pd.Series([cell(r.get(name, MISSING)) for r in records], dtype=object) for name in names},
        index=pd.RangeIndex(len(records)),
    )


def problems_pandera(frame: pd.DataFrame) -> dict[int, tuple[Problem, ...]]:
    """Validate a frame of records (:func:`records_frame`) with :func:`pandera_schema`, lazily: every row's problems.

    Rows that pass are absent from the answer.
    """
    schema = pandera_schema(frame.columns)
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
    else:
        return {}
    found: dict[int, list[Problem]] = {}
    unexpected = cases[cases["index"].isna()]
    if len(unexpected):
        # A column-level failure would flag no row: refuse loudly rather than pass bad rows.
        raise ValueError(f"the pile failed as a whole, not row by row: {unexpected.to_dict('records')}")
    for column, check, index in zip(cases["column"], cases["check"], cases["index"], strict=True):
        row = int(index)
        found.setdefault(row, []).append(Problem(str(column), _short(frame.at[row, column]), str(check)))
    return {row: _sorted(p) for row, p in found.items()}


# --------------------------------------------------------------------------- the wire

#: The first byte of every message on the wire (Confluent's wire format: magic byte, schema id, Avro body).
MAGIC = 0
#: The subject of order events' values in the registry.
ORDER_SUBJECT = "orders-value"
_HEADER = struct.Struct(">bI")


#: A second subject, written by an old service whose amounts are strings: its id (2) is known, its schema unreadable as v1.
LEGACY_SUBJECT = "orders-legacy-value"


def default_registry() -> Registry:
    """The course's registry: ``orders-value`` version 1 (id 1, ``orders-v1.avsc``), and a legacy subject (id 2).

    >>> registry = default_registry()
    >>> registry.subjects, registry.schema_id(ORDER_SUBJECT), registry.schema_id(LEGACY_SUBJECT)
    (['orders-legacy-value', 'orders-value'], 1, 2)
    """
    registry = Registry("BACKWARD")
    registry.register(ORDER_SUBJECT, load("orders-v1"))
    registry.register(LEGACY_SUBJECT, load("orders-amount-string"))
    return registry


_DEFAULT: Registry | None = None


def _registry(registry: Registry | None) -> Registry:
    global _DEFAULT
    if registry is not None:
        if not isinstance(registry, Registry):
            raise TypeError(f"registry must be a streamlab.registry.Registry, got {type(registry).__name__}")
        return registry
    if _DEFAULT is None:
        _DEFAULT = default_registry()
    return _DEFAULT


def encode(record: Mapping[str, Any] | OrderEvent, schema_id: int = 1, registry: Registry | None = None) -> bytes:
    """An event on the wire: the magic byte, the schema id (4 bytes), the record in Avro with that schema.

    >>> from streamlab.orders import COURSE_START
    >>> e = OrderEvent("order-1", "customer-3", "placed", 25.0, COURSE_START, COURSE_START)
    >>> wire = encode(e)
    >>> wire[:5], len(wire)
    (b'\\x00\\x00\\x00\\x00\\x01', 55)
    """
    registry = _registry(registry)
    if isinstance(record, OrderEvent):
        record = {name: getattr(record, name) for name in _FIELDS}
    out = io.BytesIO()
    out.write(_HEADER.pack(MAGIC, schema_id))
    fastavro.schemaless_writer(out, registry.parsed(schema_id), record)
    return out.getvalue()


class WireError(ValueError):
    """A message that cannot be decoded: the rule it breaks and why."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(reason)
        self.rule = rule
        self.reason = reason


_AVRO_ERRORS = {
    EOFError: "the body ends before the record does",
    UnicodeDecodeError: "a string in it is not UTF-8",
    IndexError: "a length or index in it points past the data",
    OverflowError: "a number in it is out of range",
    ValueError: "a value in it cannot be decoded",
    MemoryError: "a length in it is absurdly large",
}


_V1: Any = None


def _reader(reader: Any) -> Any:
    """The consumer's schema, parsed by fastavro (``None``: ``orders-v1``, the rule table's shape)."""
    global _V1
    if reader is None:
        if _V1 is None:
            _V1 = fastavro.parse_schema(load("orders-v1"))
        return _V1
    if isinstance(reader, Mapping) and "__fastavro_parsed" not in reader:
        return _parse(json.dumps(reader, sort_keys=True))
    return reader


@lru_cache(maxsize=64)
def _parse(text: str) -> Any:
    # One parsed object per distinct schema: a consumer passing its schema as a dict on every call parses it once.
    try:
        return fastavro.parse_schema(json.loads(text))
    except fastavro.schema.SchemaParseException as err:
        raise ValueError(f"reader is not a valid Avro schema: {err}") from None


_SAME: dict[tuple[int, int], tuple[Any, Any, bool]] = {}


def _same(writer: Any, reader: Any) -> bool:
    key = (id(writer), id(reader))
    known = _SAME.get(key)
    if known is None:
        same = writer is reader or json.dumps(writer, sort_keys=True, default=str) == json.dumps(
            reader, sort_keys=True, default=str)
        # The pair is kept with the answer, so that neither id can be reused by another schema.
        known = _SAME[key] = (writer, reader, same)
    return known[2]


def decode(payload: bytes, reader: Any = None, registry: Registry | None = None) -> dict[str, Any]:
    """Read one message from the wire with its writer's schema (looked up by id) and the ``reader`` schema.

    ``reader``: the consumer's schema (a dict, or fastavro-parsed); by default
    ``orders-v1``, the shape of the rule table. Raises :class:`WireError` (a ValueError) with the rule
    broken: ``framing`` (too short, wrong magic byte), ``schema_id`` (not in the
    registry), ``avro`` (truncated, garbage), ``resolution`` (the reader cannot
    read the writer's schema), ``trailing_bytes`` (more bytes than the record).
    """
    registry = _registry(registry)
    if len(payload) < _HEADER.size:
        raise WireError("framing", f"too short for the wire format: {len(payload)} bytes, the header alone is 5")
    magic, schema_id = _HEADER.unpack_from(payload)
    if magic != MAGIC:
        raise WireError("framing", f"not the wire format: the first byte is {payload[0]}, not {MAGIC}")
    try:
        writer = registry.parsed(schema_id)
    except UnknownSchemaError:
        raise WireError("schema_id", f"schema id {schema_id} is not in the registry (unregistered writer)") from None
    reader = _reader(reader)
    body = io.BytesIO(payload)
    body.seek(_HEADER.size)
    try:
        # Resolution only when the schemas differ: reading with the writer's own schema is the fast path.
        record = fastavro.schemaless_reader(body, writer, None if _same(writer, reader) else reader)
    except fastavro.read.SchemaResolutionError as err:
        raise WireError("resolution", f"schema {schema_id} cannot be read with the reader's schema: {err}") from None
    except tuple(_AVRO_ERRORS) as err:
        what = next(text for kind, text in _AVRO_ERRORS.items() if isinstance(err, kind))
        raise WireError("avro", f"truncated or not Avro: {what} ({type(err).__name__})") from None
    if body.tell() != len(payload):
        raise WireError("trailing_bytes", f"{len(payload) - body.tell()} bytes left after the record (not one record)")
    return record


# --------------------------------------------------------------------------- dead letters

#: The columns of :func:`dead_frame`.
DEAD_LETTER_COLUMNS = ["position", "source", "field", "value", "rule", "reason"]


@dataclass(frozen=True)
class DeadLetter:
    """A payload that failed, kept whole: where it came from, and why (the first problem; ``problems`` has all).

    ``field`` is ``""`` when the payload as a whole is wrong (not decodable, not a record).
    """

    payload: Any
    source: str
    position: int
    field: str
    value: str
    rule: str
    reason: str
    problems: tuple[Problem, ...] = field(default=(), compare=False)

    @classmethod
    def of(cls, payload: Any, source: str, position: int, problems: tuple[Problem, ...]) -> DeadLetter:
        """The dead letter of a record that broke the rule table (``problems`` not empty)."""
        first = problems[0]
        return cls(payload, source, position, first.field, first.value, first.rule, first.reason, problems)

    @classmethod
    def whole(cls, payload: Any, source: str, position: int, rule: str, reason: str) -> DeadLetter:
        """The dead letter of a payload that is wrong as a whole."""
        return cls(payload, source, position, "", _short(payload), rule, reason)

    def to_json(self) -> dict[str, Any]:
        """The dead letter as a JSON-ready dict; the payload is kept exactly (bytes as base64, NaN and times tagged)."""
        return {"payload": _to_json(self.payload), "source": self.source, "position": self.position,
                "field": self.field, "value": self.value, "rule": self.rule, "reason": self.reason,
                "problems": [[p.field, p.value, p.rule] for p in self.problems]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DeadLetter:
        """Rebuild a dead letter from :meth:`to_json`'s dict, payload included."""
        return cls(_from_json(data["payload"]), data["source"], data["position"], data["field"], data["value"],
                   data["rule"], data["reason"], tuple(Problem(*p) for p in data.get("problems", [])))


class Opaque(str):
    """A payload that JSON could not keep (an object of no known kind): its ``repr``. Replaying it dead-letters it again."""


def _to_json(v: Any) -> Any:
    # Tagged JSON: the dead-letter topic stores payloads as JSON lines, and a replay needs them back exactly.
    if v is None or isinstance(v, (bool, str)) and not isinstance(v, Opaque):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else {"$float": repr(v)}
    if isinstance(v, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(bytes(v)).decode("ascii")}
    if isinstance(v, datetime):
        return {"$datetime": v.isoformat()}
    if isinstance(v, Mapping):
        return {"$map": [[_to_json(k), _to_json(x)] for k, x in v.items()]}
    if isinstance(v, (list, tuple)):
        return {"$list": [_to_json(x) for x in v]}
    if v is MISSING:
        return {"$missing": True}
    return {"$repr": str(v) if isinstance(v, Opaque) else repr(v)}


def _from_json(v: Any) -> Any:
    if not isinstance(v, dict):
        return v
    ((tag, x),) = v.items()
    if tag == "$float":
        return float(x)
    if tag == "$bytes":
        return base64.b64decode(x)
    if tag == "$datetime":
        return datetime.fromisoformat(x)
    if tag == "$map":
        return {_from_json(k): _from_json(y) for k, y in x}
    if tag == "$list":
        return [_from_json(y) for y in x]
    if tag == "$missing":
        return MISSING
    return Opaque(x)


def shape_problem(record: Any) -> tuple[str, str] | None:
    """Why a decoded payload is not a record at all, as ``(rule, reason)``; ``None`` if it is one (a dict of names).

    Both drivers ask this first: a frame (or a model) can only be made of records.
    """
    if not isinstance(record, Mapping):
        return "payload_type", f"an order event must be Avro bytes or a record (a dict), got {type(record).__name__}"
    # The rule table's own names are fine strings: only other keys need a look (this runs for every event).
    odd = [k for k in record if k not in _ORDER and (not isinstance(k, str) or not _encodable(k))]
    if odd:
        return "known_fields", f"field names must be strings UTF-8 can hold, got {_short(odd[0])}"
    return None


def check_record(record: Any) -> OrderEvent | tuple[str, str] | tuple[Problem, ...]:
    """Validate a decoded record (the stream's path): the event, ``(rule, reason)`` if not a record, or its problems."""
    shape = shape_problem(record)
    if shape is not None:
        return shape
    return problems_pydantic(record)


def validate(
    payload: Any, *, source: str = "", position: int = 0, reader: Any = None, registry: Registry | None = None
) -> OrderEvent | DeadLetter:
    """One payload, as it arrived, checked: the :class:`~streamlab.orders.OrderEvent`, or a :class:`DeadLetter`.

    ``payload``: bytes on the wire (decoded with ``reader`` and ``registry``, see
    :func:`decode`) or a decoded record (a dict of field to value). Anything else
    is dead-lettered too. It never raises for bad data.
    """
    if isinstance(payload, (bytes, bytearray)):
        try:
            record: Any = decode(bytes(payload), reader, registry)
        except WireError as err:
            return DeadLetter.whole(payload, source, position, err.rule, err.reason)
    else:
        record = payload
    result = check_record(record)
    if isinstance(result, OrderEvent):
        return result
    if result and isinstance(result[0], str):
        return DeadLetter.whole(payload, source, position, *result)
    return DeadLetter.of(payload, source, position, result)  # type: ignore[arg-type]


def dead_frame(letters: Iterable[DeadLetter]) -> pd.DataFrame:
    """Dead letters as a frame, one row each in position order: where from, field, value, rule, reason."""
    rows = sorted(letters, key=lambda d: d.position)
    return pd.DataFrame([[getattr(d, c) for c in DEAD_LETTER_COLUMNS] for d in rows],
                        columns=DEAD_LETTER_COLUMNS).astype({"position": "int64"})


def dead_letter_log(path: Any, partitions: int = 1) -> Any:
    """Create the dead-letter topic: a :class:`~streamlab.log.Log` (lesson 03) at ``path``."""
    from streamlab.log import Log

    return Log.create(path, partitions=partitions)


def publish_dead_letters(log: Any, letters: Iterable[DeadLetter]) -> int:
    """Append dead letters to the dead-letter topic, keyed by where they came from; return how many."""
    return len(log.extend((d.source or "unknown", d.to_json()) for d in letters))


def read_dead_letters(log: Any) -> list[DeadLetter]:
    """Every dead letter in the topic, payloads restored, in position order."""
    return sorted((DeadLetter.from_json(r.value) for r in log.records()), key=lambda d: d.position)


@dataclass(frozen=True)
class Replayed:
    """What a replay of dead letters gave: the events recovered, the letters still dead; they add up."""

    recovered: list[OrderEvent]
    still_dead: list[DeadLetter]
    replayed: int

    def __post_init__(self) -> None:
        if len(self.recovered) + len(self.still_dead) != self.replayed:
            raise AssertionError(f"replay does not reconcile: {self.replayed} replayed, "
                                 f"{len(self.recovered)} recovered, {len(self.still_dead)} still dead")


def replay(
    letters: Iterable[DeadLetter], fix: Callable[[Any], Any] | None = None, *,
    reader: Any = None, registry: Registry | None = None,
) -> Replayed:
    """Validate dead letters again, after a fix: ``fix`` maps a payload to a repaired one (or the same).

    Every letter comes back as an event or as a dead letter again (with its
    new reason); ``recovered + still dead == replayed``, always. A ``fix`` that
    raises leaves the letter dead, with the fix's error as the reason.
    """
    recovered: list[OrderEvent] = []
    dead: list[DeadLetter] = []
    count = 0
    for letter in letters:
        count += 1
        payload = letter.payload
        if fix is not None:
            try:
                payload = fix(payload)
            except (ValueError, TypeError, KeyError) as err:
                dead.append(DeadLetter.whole(letter.payload, letter.source, letter.position, "fix",
                                             f"the fix failed: {type(err).__name__}: {err}"))
                continue
        result = validate(payload, source=letter.source, position=letter.position, reader=reader, registry=registry)
        (dead if isinstance(result, DeadLetter) else recovered).append(result)  # type: ignore[arg-type]
    return Replayed(recovered, dead, count)


@dataclass(frozen=True)
class Validated:
    """What a driver made of its payloads: the events that passed, the dead letters; the counts reconcile.

    ``events``: one row per event that passed, its ``position`` in the input
    then :data:`~streamlab.orders.EVENT_COLUMNS`; ``letters``: the dead letters,
    in position order. ``count_in == len(events) + len(letters)``, always.
    """

    events: pd.DataFrame
    letters: list[DeadLetter]
    count_in: int

    def __post_init__(self) -> None:
        if len(self.events) + len(self.letters) != self.count_in:
            raise AssertionError(f"counts do not reconcile: {self.count_in} in, {len(self.events)} processed, "
                                 f"{len(self.letters)} dead-lettered")

    @property
    def dead(self) -> pd.DataFrame:
        """The dead letters as a frame (:func:`dead_frame`)."""
        return dead_frame(self.letters)

    def counts(self) -> pd.Series:
        """In, processed, dead-lettered: the reconciliation, as numbers."""
        return pd.Series({"in": self.count_in, "processed": len(self.events), "dead-lettered": len(self.letters)},
                         name="events")


def events_frame(pairs: Iterable[tuple[int, OrderEvent]]) -> pd.DataFrame:
    """Events that passed, with their positions in the input, as a frame in position order."""
    from streamlab.orders import EVENT_COLUMNS

    rows = sorted(pairs, key=lambda p: p[0])
    frame = pd.DataFrame({
        "position": pd.Series([i for i, _ in rows], dtype="int64"),
        **{c: [getattr(e, c) for _, e in rows] for c in EVENT_COLUMNS},
    })
    frame["amount"] = frame["amount"].astype("float64")
    for c in ("order_id", "customer", "kind"):
        frame[c] = frame[c].astype("str")
    for c in ("event_time", "arrival_time"):
        frame[c] = pd.Series(pd.DatetimeIndex(frame[c].tolist(), tz="UTC"), dtype="datetime64[ns, UTC]")
    return frame


def finite_payloads(payloads: Iterable[Any]) -> list[Any]:
    """The payloads as a list; an unbounded pipe is refused (cut it first with ``take``)."""
    from streamlab.events import Pipe

    if isinstance(payloads, Pipe) or isinstance(payloads, (str, bytes, bytearray, Mapping)):
        raise TypeError(f"payloads must be a finite iterable of payloads (bytes or records), got "
                        f"{type(payloads).__name__}; cut a pipe with take() first")
    if not isinstance(payloads, Iterable):
        raise TypeError(f"payloads must be an iterable of payloads, got {type(payloads).__name__}")
    return list(payloads)


def iter_checked(
    payloads: Iterable[Any], source: str = "pipe", reader: Any = None, registry: Registry | None = None
) -> Iterator[OrderEvent | DeadLetter]:
    """:func:`validate` every payload in turn, its position in the input as where it came from."""
    for i, payload in enumerate(payloads):
        yield validate(payload, source=f"{source}#{i}", position=i, reader=reader, registry=registry)


# --------------------------------------------------------------------------- dirty data


def _record(event: OrderEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in _FIELDS}


def _with(record: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**record, **changes}


def _without(record: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != name}


def _wire(record: dict[str, Any], schema_id: int = 1) -> bytes:
    return encode(record, schema_id)


#: Every way the course's dirty data can be wrong, and how each is made from a good event (``r``: its record;
#: ``rng``: a seeded random.Random). ``good-*`` are not faults: good events on the wire and as records.
FAULTS: dict[str, Callable[[dict[str, Any], Any], Any]] = {
    "good-wire": lambda r, rng: _wire(r),
    "good-record": lambda r, rng: r,
    "not-avro": lambda r, rng: bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40))),
    "truncated": lambda r, rng: (w := _wire(r))[: rng.randrange(5, len(w))],
    "wrong-magic": lambda r, rng: b"\x01" + _wire(r)[1:],
    "unknown-schema-id": lambda r, rng: _wire(r)[:1] + struct.pack(">I", rng.randrange(3, 10_000)) + _wire(r)[5:],
    "unreadable-schema": lambda r, rng: _wire(_with(r, amount=str(r["amount"])), 2),
    "trailing-bytes": lambda r, rng: _wire(r) + b"\x00\x01",
    "nan-amount": lambda r, rng: _wire(_with(r, amount=float("nan"))),
    "infinite-amount": lambda r, rng: _wire(_with(r, amount=rng.choice([math.inf, -math.inf]))),
    "negative-amount": lambda r, rng: _wire(_with(r, amount=-r["amount"])),
    "unknown-kind": lambda r, rng: _wire(_with(r, kind="refunded")),
    "empty-order-id": lambda r, rng: _wire(_with(r, order_id="")),
    "string-amount": lambda r, rng: _with(r, amount=str(r["amount"])),
    "bool-amount": lambda r, rng: _with(r, amount=True),
    "naive-time": lambda r, rng: _with(r, event_time=r["event_time"].replace(tzinfo=None)),
    "other-offset": lambda r, rng: _with(r, arrival_time=r["arrival_time"].astimezone(
        __import__("datetime").timezone(timedelta(hours=2)))),
    "string-time": lambda r, rng: _with(r, event_time=r["event_time"].isoformat()),
    "missing-field": lambda r, rng: _without(r, rng.choice(_FIELDS)),
    "none-field": lambda r, rng: _with(r, **{rng.choice(_FIELDS): None}),
    "unknown-field": lambda r, rng: _with(r, coupon="SPRING"),
    "not-a-record": lambda r, rng: rng.choice([None, 42, "order-1", [r["order_id"]], 2.5]),
}


def dirty_payloads(events: Iterable[OrderEvent], seed: int = 0, bad: float = 0.2) -> list[tuple[str, Any]]:
    """Payloads made from good events, a share ``bad`` of them broken in one of the :data:`FAULTS` ways (seeded).

    Returns ``(fault, payload)`` pairs in the events' order; a good event is
    sent on the wire or as a record, half and half.

    >>> from streamlab.orders import order_pipe, take
    >>> [fault for fault, _ in dirty_payloads(take(order_pipe(seed=1), 6), seed=3, bad=0.5)]
    ['none-field', 'not-a-record', 'good-wire', 'good-record', 'infinite-amount', 'good-record']
    """
    import random

    if not (isinstance(bad, (int, float)) and 0.0 <= bad <= 1.0):
        raise ValueError(f"bad must be a share from 0 to 1, got {bad!r}")
    rng = random.Random(seed)
    faults = [f for f in FAULTS if not f.startswith("good")]
    out = []
    for event in events:
        fault = rng.choice(faults) if rng.random() < bad else rng.choice(["good-wire", "good-record"])
        out.append((fault, FAULTS[fault](_record(event), rng)))
    return out


# --------------------------------------------------------------------------- the rule table, shown; an upgrade, run


def rules_frame() -> pd.DataFrame:
    """The rule table as a frame: one row per field, its type, constraint and the checks it runs, in order."""
    rows = []
    for rule in RULES:
        if rule.allowed is not None:
            constraint = f"one of {', '.join(rule.allowed)}"
        elif rule.type == "str":
            constraint = f"{rule.min_length} to {rule.max_length} characters"
        elif rule.type == "float":
            constraint = _expected(rule, "range")
        else:
            constraint = "UTC, " + _expected(rule, "range")
        rows.append({"field": rule.field, "type": rule.type, "constraint": constraint,
                     "checks, in order": ", ".join(rule.checks)})
    return pd.DataFrame(rows).set_index("field")


def rollout(
    events: Iterable[OrderEvent], old: str, new: str, first: Literal["producers", "consumers"],
) -> pd.DataFrame:
    """A schema change rolled out on a running pipe, one side first: what the consumers could read, phase by phase.

    The events are cut into three equal phases: *before* (everyone on
    ``old``), *halfway* (``first`` has upgraded to ``new``), *after* (everyone
    on ``new``). Each event is written by the producers with their schema (its
    id on the wire) and read by the consumers with theirs
    (:func:`decode`); a message they cannot read is dead-lettered by
    ``resolution``. ``old`` and ``new`` name ``.avsc`` files.

    >>> from streamlab.orders import order_pipe, take
    >>> rollout(take(order_pipe(), 30), "orders-v1", "orders-add-currency", "consumers")["dead-lettered"].tolist()
    [0, 10, 0]
    """
    if first not in ("producers", "consumers"):
        raise ValueError(f"first must be 'producers' or 'consumers', got {first!r}")
    registry = Registry("NONE")  # both versions on the wire: what the mode would allow is the registry's table
    ids = {name: registry.register(ORDER_SUBJECT, load(name)) for name in (old, new)}
    readers = {name: fastavro.parse_schema(load(name)) for name in (old, new)}
    events = list(events)
    cut = [len(events) // 3, 2 * len(events) // 3]
    rows = []
    for phase, chunk in (("before", events[:cut[0]]), ("halfway", events[cut[0]:cut[1]]),
                         ("after", events[cut[1]:])):
        producers = new if phase == "after" or (phase == "halfway" and first == "producers") else old
        consumers = new if phase == "after" or (phase == "halfway" and first == "consumers") else old
        dead = 0
        amount_type = next(f["type"] for f in load(producers)["fields"] if f["name"] == "amount")
        for event in chunk:
            record = {**_record(event), "currency": "EUR", "customer_id": event.customer}
            if amount_type == "string":  # the producer's own schema says how it writes an amount
                record["amount"] = f"{event.amount:.2f}"
            try:
                decode(encode(record, ids[producers], registry), readers[consumers], registry)
            except WireError:
                dead += 1
        rows.append({"phase": phase, "producers write": producers, "consumers read": consumers,
                     "messages": len(chunk), "read": len(chunk) - dead, "dead-lettered": dead})
    return pd.DataFrame(rows).set_index("phase")
