"""The Glue edge's bookmarked reads, driven through a stand-in for the few `awsglue` calls they make.

The stand-in builds what Glue's DynamicFrame reader documents for JSON lines: a field whose values have one
type keeps it (ints as `int` or `long`, `double`, `string`, `boolean`); a field seen with several types is a
choice type that must be resolved before `toDF()`; a line that is not JSON is an error record. Resolution
actions are checked against Glue's own type names (awsglue.gluetypes: `long`, not Spark's `bigint`), as Glue
would. The same records read locally (`read_dataset`) and through the Glue path must come out the same:
the same rows, the same values, the same records flagged corrupt, with the raw value kept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame
from pyspark.sql.types import (
    BooleanType,
    DataType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from lakejobs.context import GlueJobContext, JobContext
from lakejobs.io import CORRUPT_COLUMN, LocalFileStore, read_dataset, split_malformed

# awsglue.gluetypes: DataType.typeName() is the class name without "Type", lowercased; IntegerType says "int".
GLUE_TYPE_NAMES = frozenset(
    {
        "binary",
        "boolean",
        "byte",
        "date",
        "decimal",
        "double",
        "float",
        "int",
        "long",
        "null",
        "short",
        "string",
        "timestamp",
    }
)
SPARK_TYPES: dict[str, DataType] = {
    "int": IntegerType(),
    "long": LongType(),
    "double": DoubleType(),
    "string": StringType(),
    "boolean": BooleanType(),
}
EVENTS = StructType(
    [
        StructField("customer_id", StringType()),
        StructField("event_ts", TimestampType()),
        StructField("seq", LongType()),
        StructField("name", StringType()),
        StructField("score", DoubleType()),
        StructField("active", BooleanType()),
    ]
)


def glue_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int" if -(2**31) <= value < 2**31 else "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    raise TypeError(f"the stand-in reads flat records only, got {value!r}")


@dataclass
class GlueType:
    name: str

    def typeName(self) -> str:  # noqa: N802 - awsglue's spelling
        return self.name


@dataclass
class GlueField:
    name: str
    dataType: GlueType  # noqa: N815 - awsglue's spelling


@dataclass
class GlueSchema:
    fields: list[GlueField]


@dataclass
class FakeDynamicFrame:
    """Records as Glue's JSON reader types them; choice columns are structs of one member per type name."""

    spark: Any
    records: list[dict[str, Any]]
    errors: list[str]
    resolved: set[str] = field(default_factory=set)

    def _types(self) -> dict[str, list[str]]:
        types: dict[str, list[str]] = {}
        for record in self.records:
            for name, value in record.items():
                kinds = types.setdefault(name, [])
                if value is not None and glue_type(value) not in kinds:
                    kinds.append(glue_type(value))
        return types

    def schema(self) -> GlueSchema:
        return GlueSchema(
            [
                GlueField(name, GlueType("choice" if len(kinds) > 1 else (kinds or ["null"])[0]))
                for name, kinds in self._types().items()
            ]
        )

    def resolveChoice(self, specs: Sequence[tuple[str, str]] | None = None, choice: str = "", **_options: Any) -> Any:  # noqa: N802
        assert (specs is None) != (not choice), "Glue takes specs or choice, not both"
        choices = {name for name, kinds in self._types().items() if len(kinds) > 1}
        actions = [(path, action) for path, action in specs or []] or [(name, choice) for name in choices]
        for path, action in actions:
            kind, _, type_name = action.partition(":")
            if kind in ("cast", "project") and type_name not in GLUE_TYPE_NAMES:
                raise ValueError(f"resolveChoice {path}: {type_name!r} is not a Glue type name")
        for path, action in actions:
            if action != "make_struct":
                raise NotImplementedError(f"the stand-in resolves with make_struct only, got {action}")
            self.resolved.add(path)
        return self

    def toDF(self) -> DataFrame:  # noqa: N802
        types = self._types()
        unresolved = sorted(n for n, kinds in types.items() if len(kinds) > 1 and n not in self.resolved)
        assert not unresolved, f"toDF() with unresolved choice types {unresolved}"
        columns: list[StructField] = []
        for name, kinds in types.items():
            if len(kinds) > 1:
                members = [StructField(kind, SPARK_TYPES[kind]) for kind in kinds]
                columns.append(StructField(name, StructType(members)))
            else:
                columns.append(StructField(name, SPARK_TYPES[(kinds or ["string"])[0]]))
        rows = []
        for record in self.records:
            row: list[Any] = []
            for column in columns:
                value = record.get(column.name)
                if isinstance(column.dataType, StructType):
                    kinds = [member.name for member in column.dataType.fields]
                    row.append(tuple(value if value is not None and glue_type(value) == k else None for k in kinds))
                else:
                    row.append(value)
            rows.append(tuple(row))
        frame: DataFrame = self.spark.createDataFrame(rows, StructType(columns))
        return frame

    def errorsAsDynamicFrame(self) -> Any:  # noqa: N802
        return FakeErrors(self.spark, self.errors)


@dataclass
class FakeErrors:
    spark: Any
    lines: list[str]

    def toDF(self) -> DataFrame:  # noqa: N802
        schema = "input string, error string" if self.lines else StructType([])
        frame: DataFrame = self.spark.createDataFrame([(line, "JsonParseException") for line in self.lines], schema)
        return frame


@dataclass
class FakeReaders:
    spark: Any
    calls: list[dict[str, Any]] = field(default_factory=list)

    def from_options(self, **options: Any) -> FakeDynamicFrame:
        self.calls.append(options)
        records: list[dict[str, Any]] = []
        errors: list[str] = []
        for path in options["connection_options"]["paths"]:
            for file in sorted(Path(path).rglob("*.json")):
                for line in file.read_text().splitlines():
                    try:
                        records.append(json.loads(line))
                    except ValueError:
                        errors.append(line)
        return FakeDynamicFrame(self.spark, records, errors)


@dataclass
class FakeGlueContext:
    spark_session: Any
    create_dynamic_frame: FakeReaders


def glue_context_for(spark: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[GlueJobContext, FakeReaders]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    readers = FakeReaders(spark)
    context = GlueJobContext(
        spark, glue_context=FakeGlueContext(spark, readers), job=None, job_name="tests/glue", run_id="jr_1"
    )
    return context, readers


LINES = [
    '{"customer_id": "c1", "event_ts": "2024-03-01T10:00:00Z", "seq": 1, "name": "Ann", "score": 1.5, "active": true}',
    '{"customer_id": "c2", "event_ts": "2024-03-01T10:00:00.250+02:00", "seq": 2, "score": 2}',
    '{"customer_id": "c3", "event_ts": "2024-03-01 10:00:00", "seq": 3000000000, "name": 12}',
    '{"customer_id": "c4", "event_ts": "2024-03-01", "seq": null}',
    '{"customer_id": "c5", "event_ts": "yesterday", "seq": 5}',
    '{"customer_id": "c6", "event_ts": "2024-03-01T11:00:00Z", "seq": "six"}',
    '{"customer_id": "c7", "event_ts": "2024-03-01T12:00:00Z", "seq": 7.5}',
    '{"customer_id": "c8", "event_ts": "2024-03-01T13:00:00Z", "active": "yes"}',
    '{"customer_id": "c9", "event_ts": "2024-03-01T14:00:00Z", "score": "high"}',
    "not json at all",
]


def rows_and_flags(frame: DataFrame) -> list[tuple[Any, ...]]:
    columns = [f.name for f in EVENTS.fields]
    return sorted(((*(r[c] for c in columns), r[CORRUPT_COLUMN] is not None) for r in frame.collect()), key=repr)


def test_bookmarked_json_reads_on_glue_type_values_as_the_local_reader_does(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "raw"
    source.mkdir()
    (source / "batch.json").write_text("\n".join(LINES) + "\n")
    local = read_dataset(spark, str(source), "json", EVENTS, store=LocalFileStore())
    context, readers = glue_context_for(spark, monkeypatch)
    on_glue = context.read("raw_events", str(source), "json", EVENTS, incremental=True)
    assert readers.calls[0]["transformation_ctx"] == "raw_events"
    assert on_glue.columns == local.columns
    assert rows_and_flags(on_glue) == rows_and_flags(local)
    flagged = {r.customer_id for r in on_glue.collect() if r[CORRUPT_COLUMN] is not None}
    assert flagged == {"c5", "c6", "c7", "c8", "c9", None}
    # ISO timestamps with zones and fractions are parsed, not nulled (UTC session, as on Glue).
    times = {r.customer_id: r.event_ts.isoformat() for r in on_glue.collect() if r.event_ts is not None}
    assert times["c1"] == "2024-03-01T10:00:00" and times["c2"] == "2024-03-01T08:00:00.250000"
    # The quarantine keeps the value that did not fit, not a null in its place.
    _, malformed = split_malformed(on_glue, required=("customer_id",))
    records = {r.record for r in malformed.collect()}
    assert any('"seq":"six"' in record for record in records)
    assert any('"score":"high"' in record for record in records)
    assert any("not json at all" in record for record in records)
    assert context.counts.read == {"raw_events": len(LINES)}


def test_csv_on_glue_is_read_with_its_header(spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    context, readers = glue_context_for(spark, monkeypatch)
    (tmp_path / "raw").mkdir()
    context.read("raw_events", str(tmp_path / "raw"), "csv", EVENTS, incremental=True)
    assert readers.calls[0]["format"] == "csv"
    assert readers.calls[0]["format_options"] == {"withHeader": True}


def test_a_local_context_reads_the_same_without_glue(spark: Any, tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "batch.json").write_text("\n".join(LINES) + "\n")
    context = JobContext.local("tests/glue", spark=spark)
    assert context.read("raw_events", str(tmp_path / "raw"), "json", EVENTS, incremental=True).count() == len(LINES)


def test_an_empty_bookmarked_batch_reads_as_no_rows_with_the_schema(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    context, _ = glue_context_for(spark, monkeypatch)
    (tmp_path / "raw").mkdir()
    for fmt in ("json", "csv", "parquet"):
        frame = context.read(f"raw_{fmt}", str(tmp_path / "raw"), fmt, EVENTS, incremental=True)
        assert frame.columns == [*EVENTS.fieldNames(), CORRUPT_COLUMN]
        assert frame.count() == 0
