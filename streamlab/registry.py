"""A schema registry without a server: subjects, versions, ids, and the compatibility a registry enforces.

A producer writes each event with a schema; a consumer reads it with its own.
Avro can read data written with one schema using another (*schema
resolution*: fields matched by name or alias, defaults filled in, numbers
promoted), but only for some pairs of schemas. A registry keeps every schema a
subject (a topic's values) ever had, gives each an id that travels with every
message, and refuses a new version that would break its readers or writers,
according to the subject's *compatibility mode*:

=======================  ==========================================  =========================
mode                     a new schema must ...                       who upgrades first
=======================  ==========================================  =========================
``BACKWARD``             read data written with the latest one       consumers
``BACKWARD_TRANSITIVE``  read data written with every earlier one    consumers
``FORWARD``              be readable by the latest one               producers
``FORWARD_TRANSITIVE``   be readable by every earlier one            producers
``FULL``                 both, with the latest one                   either, in any order
``FULL_TRANSITIVE``      both, with every earlier one                either, in any order
``NONE``                 nothing                                     both at once
=======================  ==========================================  =========================

The check itself is not written here: it is the Apache Avro project's
:class:`avro.compatibility.ReaderWriterCompatibilityChecker` (the Python port of
the Java checker that Confluent's registry uses). This module only decides
which pairs to check, as the mode says. :mod:`streamlab.schemas` puts the id on
the wire and decodes with writer and reader schemas (fastavro).

>>> registry = Registry()
>>> registry.register("orders-value", load("orders-v1"))
1
>>> registry.check("orders-value", load("orders-add-currency"))
['reader field currency has no default and the writer has no such field (BACKWARD, against version 1)']
>>> registry.register("orders-value", load("orders-add-currency-default"))
2
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import avro.schema
import fastavro
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType, SchemaIncompatibilityType

__all__ = [
    "CASES",
    "DIRECT_MODES",
    "MODES",
    "SCHEMA_DIR",
    "UPGRADE_FIRST",
    "Case",
    "IncompatibleSchemaError",
    "Registry",
    "UnknownSchemaError",
    "can_read",
    "compatibility_table",
    "example_record",
    "load",
    "read_as",
    "resolution_table",
    "problems",
]

Mode = Literal[
    "NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"
]
#: Every compatibility mode, as Confluent's registry names them.
MODES: tuple[str, ...] = (
    "NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"
)
#: The modes that compare a new schema with the latest one only (their transitive forms compare with all).
DIRECT_MODES: tuple[str, ...] = ("BACKWARD", "FORWARD", "FULL")
#: Under each mode, which side of the pipe must run the new schema first.
UPGRADE_FIRST: Mapping[str, str] = {
    "NONE": "both at once (nothing is checked)",
    "BACKWARD": "consumers", "BACKWARD_TRANSITIVE": "consumers",
    "FORWARD": "producers", "FORWARD_TRANSITIVE": "producers",
    "FULL": "either", "FULL_TRANSITIVE": "either",
}
#: Where the course's Avro schemas live (``.avsc`` files, one schema each).
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "data" / "schemas"


class UnknownSchemaError(LookupError, ValueError):
    """No schema has this id, or no subject this name."""


class IncompatibleSchemaError(ValueError):
    """A new schema breaks the subject's compatibility mode; the message says which field and why."""

    def __init__(self, message: str, problems: Sequence[str]) -> None:
        super().__init__(message)
        self.problems = list(problems)


def load(name: str) -> dict[str, Any]:
    """The schema in ``data/schemas/NAME.avsc``, as a dict.

    >>> [f["name"] for f in load("orders-v1")["fields"]]
    ['order_id', 'customer', 'kind', 'amount', 'event_time', 'arrival_time']
    """
    if not isinstance(name, str) or not name or "/" in name or "\\" in name:
        raise ValueError(f"name must be a schema's file name without .avsc, got {name!r:.60}")
    path = SCHEMA_DIR / f"{name}.avsc"
    if not path.is_file():
        known = sorted(p.stem for p in SCHEMA_DIR.glob("*.avsc"))
        raise UnknownSchemaError(f"no schema named {name!r} in {SCHEMA_DIR}; there are {known}")
    return json.loads(path.read_text(encoding="utf-8"))


def _canonical(schema: Mapping[str, Any]) -> str:
    if not isinstance(schema, Mapping):
        raise TypeError(f"schema must be an Avro schema as a dict, got {type(schema).__name__} {schema!r:.60}")
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


@lru_cache(maxsize=256)
def _avro(text: str) -> avro.schema.Schema:
    try:
        parsed = avro.schema.parse(text)
        # fastavro also checks that every default has its field's type (avro's parser lets a null default
        # through for a string): a registry must refuse a schema its consumers could not parse.
        fastavro.parse_schema(json.loads(text))
    except (avro.errors.AvroException, fastavro.schema.SchemaParseException) as err:
        raise ValueError(f"not a valid Avro schema: {err}") from None
    return parsed


def _field_name(reader: Mapping[str, Any], location: str) -> str:
    """The reader's field a checker location such as ``/fields/3/type`` points at."""
    found = re.search(r"fields/(\d+)", location)
    fields = reader.get("fields", [])
    if found and int(found.group(1)) < len(fields):
        return f"field {fields[int(found.group(1))]['name']}"
    return "the record"


def problems(reader: Mapping[str, Any], writer: Mapping[str, Any]) -> list[str]:
    """Why data written with ``writer`` cannot be read with ``reader`` (empty: it can), per Avro's checker.

    >>> problems(load("orders-v1"), load("orders-amount-string"))
    ['type mismatch at field amount: reader type: double not compatible with writer type: string']
    """
    result = ReaderWriterCompatibilityChecker().get_compatibility(
        _avro(_canonical(reader)), _avro(_canonical(writer))
    )
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    missing = SchemaIncompatibilityType.reader_field_missing_default_value
    if all(kind is missing for kind in result.incompatibilities):
        # The messages are the reader's field names: one sentence each, in the course's words.
        return [f"reader field {name} has no default and the writer has no such field"
                for name in sorted(result.messages)]
    # The checker merges what it found into sets; said together, with where it found it.
    kinds = ", ".join(sorted({k.name.replace("_", " ") for k in result.incompatibilities}))
    # The checker's sets start with "/" (the root) and gain the field locations it finds.
    where = ", ".join(sorted({_field_name(reader, loc) for loc in result.locations if "fields" in loc})) or "the record"
    return [f"{kinds} at {where}: {'; '.join(sorted(result.messages))}"]


def can_read(reader: Mapping[str, Any], writer: Mapping[str, Any]) -> bool:
    """Whether data written with ``writer`` can be read with ``reader`` (Avro schema resolution).

    >>> can_read(load("orders-add-currency-default"), load("orders-v1"))
    True
    """
    return not problems(reader, writer)


def _check(new: Mapping[str, Any], earlier: Sequence[Mapping[str, Any]], mode: str) -> list[str]:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "NONE" or not earlier:
        return []
    against = list(enumerate(earlier, start=1))
    if not mode.endswith("_TRANSITIVE"):
        against = against[-1:]
    base = mode.removesuffix("_TRANSITIVE")
    found = []
    for version, old in reversed(against):
        if base in ("BACKWARD", "FULL"):
            found += [f"{p} ({mode}, against version {version})" for p in problems(new, old)]
        if base in ("FORWARD", "FULL"):
            found += [f"{p} ({mode}, version {version} reading the new schema)" for p in problems(old, new)]
    return found


@dataclass(frozen=True)
class _Version:
    version: int
    schema_id: int
    schema: dict[str, Any]


class Registry:
    """Subjects, their versions and modes, and one id per distinct schema: a registry in memory.

    ``mode`` is the default for new subjects (Confluent's default is ``BACKWARD``);
    :meth:`set_mode` changes one subject's.
    """

    def __init__(self, mode: Mode = "BACKWARD") -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.default_mode = mode
        self._subjects: dict[str, list[_Version]] = {}
        self._modes: dict[str, str] = {}
        self._ids: dict[str, int] = {}  # canonical text -> id
        self._by_id: dict[int, dict[str, Any]] = {}
        self._parsed: dict[int, Any] = {}

    def __repr__(self) -> str:
        subjects = {s: len(v) for s, v in self._subjects.items()}
        return f"Registry(subjects {subjects}, default mode {self.default_mode})"

    @property
    def subjects(self) -> list[str]:
        """The subjects, sorted."""
        return sorted(self._subjects)

    def _versions(self, subject: str) -> list[_Version]:
        if subject not in self._subjects:
            raise UnknownSchemaError(f"no subject named {subject!r:.60}; subjects are {self.subjects}")
        return self._subjects[subject]

    def mode(self, subject: str) -> str:
        """The compatibility mode of ``subject`` (the registry's default until one is set)."""
        return self._modes.get(subject, self.default_mode)

    def set_mode(self, subject: str, mode: Mode) -> None:
        """Set the compatibility mode of ``subject``; it applies to the next version registered."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self._modes[subject] = mode

    def versions(self, subject: str) -> list[int]:
        """The versions of ``subject``, oldest first (1, 2, ...)."""
        return [v.version for v in self._versions(subject)]

    def schema_id(self, subject: str, version: int | Literal["latest"] = "latest") -> int:
        """The id of one version of ``subject`` (the id producers put in front of every message)."""
        versions = self._versions(subject)
        if version == "latest":
            return versions[-1].schema_id
        for v in versions:
            if v.version == version:
                return v.schema_id
        raise UnknownSchemaError(f"subject {subject!r} has no version {version!r:.20}; it has {self.versions(subject)}")

    def latest(self, subject: str) -> dict[str, Any]:
        """The schema of the latest version of ``subject``."""
        return self._versions(subject)[-1].schema

    def check(self, subject: str, schema: Mapping[str, Any], mode: Mode | None = None) -> list[str]:
        """What would stop ``schema`` from being registered under ``subject`` (empty: nothing), under its mode or ``mode``."""
        _avro(_canonical(schema))  # a malformed schema is refused before any comparison
        earlier = [v.schema for v in self._subjects.get(subject, [])]
        return _check(schema, earlier, self.mode(subject) if mode is None else mode)

    def register(self, subject: str, schema: Mapping[str, Any]) -> int:
        """Add ``schema`` as the next version of ``subject`` and return its id; refuse it if it breaks the mode.

        Registering a schema the subject already has returns its id and adds no version.
        """
        if not isinstance(subject, str) or not subject:
            raise ValueError(f"subject must be a non-empty string, got {subject!r:.60}")
        text = _canonical(schema)
        versions = self._subjects.get(subject, [])
        for v in versions:
            if _canonical(v.schema) == text:
                return v.schema_id
        found = self.check(subject, schema)
        if found:
            raise IncompatibleSchemaError(
                f"schema refused for {subject!r} under {self.mode(subject)}: " + "; ".join(found), found
            )
        schema_id = self._ids.get(text)
        if schema_id is None:
            schema_id = self._ids[text] = len(self._ids) + 1
            self._by_id[schema_id] = json.loads(text)
        self._subjects.setdefault(subject, []).append(_Version(len(versions) + 1, schema_id, json.loads(text)))
        return schema_id

    def schema(self, schema_id: int) -> dict[str, Any]:
        """The schema with id ``schema_id`` (what a consumer looks up for each message it reads)."""
        try:
            return self._by_id[schema_id]
        except (KeyError, TypeError):
            raise UnknownSchemaError(f"no schema has id {schema_id!r:.20} in this registry") from None

    def parsed(self, schema_id: int) -> Any:
        """The schema with id ``schema_id``, parsed by fastavro once and kept (decoding reuses it)."""
        parsed = self._parsed.get(schema_id)
        if parsed is None:
            parsed = self._parsed[schema_id] = fastavro.parse_schema(self.schema(schema_id))
        return parsed


@dataclass(frozen=True)
class Case:
    """One schema change: the schema before (``old``) and after (``new``), by file name, and what it shows."""

    name: str
    old: str
    new: str
    what: str


#: The changes the lesson tabulates, each a pair of ``.avsc`` files in :data:`SCHEMA_DIR`.
CASES: tuple[Case, ...] = (
    Case("add a field with a default", "orders-v1", "orders-add-currency-default", "currency, default EUR"),
    Case("add a field without a default", "orders-v1", "orders-add-currency", "currency, no default"),
    Case("remove a field with a default", "orders-add-currency-default", "orders-v1", "currency goes"),
    Case("remove a field without a default", "orders-v1", "orders-drop-customer", "customer goes"),
    Case("rename a field, old name as alias", "orders-v1", "orders-rename-customer", "customer to customer_id"),
    Case("widen a type", "orders-amount-float", "orders-v1", "amount float to double"),
    Case("change a type", "orders-v1", "orders-amount-string", "amount double to string"),
)


def compatibility_table(cases: Sequence[Case] = CASES, modes: Sequence[str] = DIRECT_MODES) -> Any:
    """For each change and each mode, whether a registry in that mode accepts the new schema after the old one.

    Computed by registering ``old`` then ``new`` in a fresh :class:`Registry`
    per mode. Rows: the cases' names; columns: the modes; values: booleans.
    """
    import pandas as pd

    rows = {}
    for case in cases:
        old, new = load(case.old), load(case.new)
        row = {}
        for mode in modes:
            registry = Registry(mode)  # type: ignore[arg-type]
            registry.register("orders-value", old)
            row[mode] = not registry.check("orders-value", new)
        rows[case.name] = row
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(modes)).astype(bool)
    frame.index.name = "change"
    return frame


# --------------------------------------------------------------------------- resolution, seen happen

_EXAMPLE = {"order_id": "order-00001", "customer": "customer-07", "customer_id": "customer-07", "kind": "placed",
            "currency": "USD", "amount": 25.5}


def example_record(schema: Mapping[str, Any]) -> dict[str, Any]:
    """One order event with a value for every field of ``schema`` (an amount of 25.5, as the schema types it).

    >>> example_record(load("orders-amount-string"))["amount"]
    '25.5'
    """
    from streamlab.events import COURSE_START

    record: dict[str, Any] = {}
    for f in schema["fields"]:
        name, kind = f["name"], f["type"]
        if isinstance(kind, Mapping):  # the two times: timestamp-micros
            record[name] = COURSE_START
        elif name == "amount":
            record[name] = str(_EXAMPLE[name]) if kind == "string" else _EXAMPLE[name]
        else:
            record[name] = _EXAMPLE[name]
    return record


def read_as(writer: Mapping[str, Any], reader: Mapping[str, Any], record: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write ``record`` with ``writer`` (fastavro), read the bytes back with ``reader``: what the reader gets.

    Raises fastavro's ``SchemaResolutionError`` (a plain Exception) when the reader cannot read the writer's data.

    >>> read_as(load("orders-v1"), load("orders-add-currency-default"))["currency"]
    'EUR'
    """
    import io

    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(dict(writer)), example_record(writer) if record is None else record)
    out.seek(0)
    return fastavro.schemaless_reader(out, fastavro.parse_schema(dict(writer)), fastavro.parse_schema(dict(reader)))


def _outcome(writer: Mapping[str, Any], reader: Mapping[str, Any]) -> str:
    try:
        got = read_as(writer, reader)
    except fastavro.read.SchemaResolutionError as err:
        return f"error: {str(err).splitlines()[0]}"
    sent = example_record(writer)
    seen = []
    for name, value in got.items():
        if name not in sent:
            alias = next((a for f in reader["fields"] if f["name"] == name for a in f.get("aliases", [])), None)
            seen.append(f"{name}={value!r} (from {alias})" if alias in sent else f"{name}={value!r} (default)")
        else:
            types = [next(f["type"] for f in schema["fields"] if f["name"] == name) for schema in (writer, reader)]
            if types[0] != types[1]:
                seen.append(f"{name}={value!r} (promoted {types[0]} to {types[1]})")
    dropped = [name for name in sent if name not in got and not any(
        name in f.get("aliases", []) for f in reader["fields"])]
    seen += [f"{name} dropped" for name in dropped]
    return "read: " + (", ".join(seen) if seen else "as written")


def resolution_table(cases: Sequence[Case] = CASES) -> Any:
    """What fastavro does for each change: old data read with the new schema, new data read with the old one."""
    import pandas as pd

    rows = []
    for case in cases:
        old, new = load(case.old), load(case.new)
        rows.append({"change": case.name, "what": case.what,
                     "old data, new reader": _outcome(old, new), "new data, old reader": _outcome(new, old)})
    return pd.DataFrame(rows).set_index("change")
