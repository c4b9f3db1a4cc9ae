"""The registry: subjects, versions, ids, modes; its table agrees with fastavro actually decoding."""

import io

import fastavro
import pytest

from streamlab.orders import COURSE_START
from streamlab.registry import (
    CASES,
    DIRECT_MODES,
    MODES,
    UPGRADE_FIRST,
    IncompatibleSchemaError,
    Registry,
    UnknownSchemaError,
    can_read,
    compatibility_table,
    load,
    problems,
)

VALUES = {"order_id": "order-1", "customer": "customer-3", "customer_id": "customer-3", "kind": "placed",
          "currency": "USD", "event_time": COURSE_START, "arrival_time": COURSE_START}


def sample(schema):
    """A record with a value for every field of ``schema``."""
    record = {}
    for f in schema["fields"]:
        if f["name"] == "amount":
            record["amount"] = {"double": 25.5, "float": 25.5, "string": "25.50"}[f["type"]]
        else:
            record[f["name"]] = VALUES[f["name"]]
    return record


def decodes(writer, reader):
    """Whether fastavro reads a record written with ``writer`` using ``reader``, really."""
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(writer), sample(writer))
    out.seek(0)
    try:
        fastavro.schemaless_reader(out, fastavro.parse_schema(writer), fastavro.parse_schema(reader))
    except fastavro.read.SchemaResolutionError:
        return False
    return True


def test_the_compatibility_table_agrees_with_fastavro_decoding_both_ways():
    table = compatibility_table()
    assert list(table.columns) == list(DIRECT_MODES) and len(table) == len(CASES)
    for case in CASES:
        old, new = load(case.old), load(case.new)
        new_reads_old = decodes(writer=old, reader=new)  # old data, new consumer
        old_reads_new = decodes(writer=new, reader=old)  # new data, old consumer
        row = table.loc[case.name]
        assert row["BACKWARD"] == new_reads_old, case
        assert row["FORWARD"] == old_reads_new, case
        assert row["FULL"] == (new_reads_old and old_reads_new), case


def test_the_table_has_a_case_for_every_outcome():
    table = compatibility_table()
    rows = {tuple(r) for r in table.itertuples(index=False)}
    assert rows == {(True, True, True), (True, False, False), (False, True, False), (False, False, False)}


def test_resolution_shows_defaults_aliases_and_promotion():
    def read(writer, reader, record):
        out = io.BytesIO()
        fastavro.schemaless_writer(out, fastavro.parse_schema(writer), record)
        out.seek(0)
        return fastavro.schemaless_reader(out, fastavro.parse_schema(writer), fastavro.parse_schema(reader))

    v1 = load("orders-v1")
    assert read(v1, load("orders-add-currency-default"), sample(v1))["currency"] == "EUR"
    renamed = read(v1, load("orders-rename-customer"), sample(v1))
    assert renamed["customer_id"] == "customer-3" and "customer" not in renamed
    widened = read(load("orders-amount-float"), v1, sample(load("orders-amount-float")))
    assert widened["amount"] == 25.5 and isinstance(widened["amount"], float)
    dropped = read(load("orders-add-currency-default"), v1, sample(load("orders-add-currency-default")))
    assert "currency" not in dropped


def test_register_gives_ids_and_versions_and_refuses_what_breaks_the_mode():
    registry = Registry()
    assert registry.register("orders-value", load("orders-v1")) == 1
    assert registry.register("orders-value", load("orders-v1")) == 1  # the same schema: no new version
    assert registry.versions("orders-value") == [1]
    with pytest.raises(IncompatibleSchemaError, match="currency has no default") as err:
        registry.register("orders-value", load("orders-add-currency"))
    assert isinstance(err.value, ValueError) and err.value.problems
    assert registry.register("orders-value", load("orders-add-currency-default")) == 2
    assert registry.versions("orders-value") == [1, 2]
    assert registry.schema_id("orders-value", 1) == 1 and registry.schema_id("orders-value") == 2
    assert registry.schema(2) == load("orders-add-currency-default")
    # Another subject with a schema already known shares its id.
    assert registry.register("archive-value", load("orders-v1")) == 1


def test_transitive_modes_compare_with_every_earlier_version():
    # v1 (no currency), v2 (currency, default EUR), v3 (currency required): v3 reads v2's data, not v1's.
    for mode, accepted in (("BACKWARD", True), ("BACKWARD_TRANSITIVE", False)):
        registry = Registry(mode)
        registry.register("orders-value", load("orders-v1"))
        registry.register("orders-value", load("orders-add-currency-default"))
        found = registry.check("orders-value", load("orders-add-currency"))
        assert (not found) == accepted, (mode, found)
    # Forward: the old readers must read the new data; v1 drops currency, so dropping its default is fine for v1.
    registry = Registry("FORWARD_TRANSITIVE")
    registry.register("orders-value", load("orders-add-currency-default"))
    registry.register("orders-value", load("orders-v1"))
    assert registry.check("orders-value", load("orders-drop-customer")) != []
    assert Registry("FULL_TRANSITIVE").check("new", load("orders-v1")) == []


def test_none_accepts_anything_and_modes_are_per_subject():
    registry = Registry()
    registry.register("orders-value", load("orders-v1"))
    registry.set_mode("orders-value", "NONE")
    assert registry.register("orders-value", load("orders-amount-string")) == 2
    assert registry.mode("orders-value") == "NONE" and registry.mode("other") == "BACKWARD"


def test_every_mode_says_who_upgrades_first():
    assert set(UPGRADE_FIRST) == set(MODES)
    assert UPGRADE_FIRST["BACKWARD"] == "consumers" and UPGRADE_FIRST["FORWARD"] == "producers"


def test_problems_name_the_field():
    assert problems(load("orders-v1"), load("orders-amount-string")) == [
        "type mismatch at field amount: reader type: double not compatible with writer type: string"]
    assert can_read(load("orders-rename-customer"), load("orders-v1"))
    assert not can_read(load("orders-v1"), load("orders-rename-customer"))


def test_bad_requests_get_clear_errors():
    registry = Registry()
    with pytest.raises(ValueError, match="mode must be one of"):
        Registry("SIDEWAYS")
    with pytest.raises(ValueError, match="mode must be one of"):
        registry.set_mode("x", "sideways")
    with pytest.raises(UnknownSchemaError, match="no subject named 'x'"):
        registry.versions("x")
    with pytest.raises(UnknownSchemaError, match="no schema has id 9"):
        registry.schema(9)
    with pytest.raises(ValueError, match="not a valid Avro schema"):
        registry.register("x", {"type": "record", "name": "R", "fields": [{"name": "a", "type": "nonsense"}]})
    with pytest.raises(TypeError, match="schema must be an Avro schema"):
        registry.register("x", "orders-v1")
    with pytest.raises(UnknownSchemaError, match="no schema named 'nope'"):
        load("nope")
    with pytest.raises(ValueError, match="file name"):
        load("../secrets")
    registry.register("x", load("orders-v1"))
    with pytest.raises(UnknownSchemaError, match="has no version 4"):
        registry.schema_id("x", 4)


def test_the_resolution_table_says_what_fastavro_did():
    from streamlab.registry import resolution_table

    table = resolution_table()
    compat = compatibility_table()
    for case in CASES:
        row = table.loc[case.name]
        assert row["old data, new reader"].startswith("read") == compat.loc[case.name, "BACKWARD"]
        assert row["new data, old reader"].startswith("read") == compat.loc[case.name, "FORWARD"]
    assert table.loc["add a field with a default", "old data, new reader"] == "read: currency='EUR' (default)"
    assert "from customer" in table.loc["rename a field, old name as alias", "old data, new reader"]
    assert "promoted float to double" in table.loc["widen a type", "old data, new reader"]
