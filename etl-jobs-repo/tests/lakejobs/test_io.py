"""Sources and sinks: malformed records kept and counted, file stores, and the write-then-delete rebuild."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pyspark.sql import functions as sf
from pyspark.sql.types import DateType, IntegerType, StringType, StructField, StructType

from lakejobs.context import JobContext
from lakejobs.io import (
    CORRUPT_COLUMN,
    MANIFEST_FILE,
    DataQualityError,
    LocalFileStore,
    S3FileStore,
    append_dataset,
    conform_to_schema,
    enforce_malformed_limit,
    error_records_as_corrupt,
    file_store,
    partition_dir,
    read_dataset,
    read_manifest_rows,
    rebuild_dataset,
    rebuild_partitions,
    split_malformed,
    write_manifest,
    write_quarantine,
)

PEOPLE = StructType(
    [StructField("id", StringType()), StructField("age", IntegerType()), StructField("born", DateType())]
)
SameRows = Callable[[Any, Any], None]


def context_for(spark: Any, run_id: str = "run-1") -> JobContext:
    return JobContext.local("tests/io", run_id=run_id, spark=spark, logger=logging.getLogger("tests.io"))


def test_json_read_keeps_malformed_lines_and_split_names_the_reason(spark: Any, tmp_path: Path) -> None:
    source = tmp_path / "people"
    source.mkdir()
    (source / "part.json").write_text(
        '{"id": "a", "age": 30, "born": "1990-01-01"}\n'
        '{"id": "b", "age": "thirty"}\n'
        "not json\n"
        '{"age": 40}\n'
        '{"id": "c", "age": -1}\n'
    )
    frame = read_dataset(spark, str(source), "json", PEOPLE, store=LocalFileStore())
    assert frame.count() == 5
    good, malformed = split_malformed(frame, required=("id",), rules={"age must not be negative": sf.col("age") < 0})
    assert [r.id for r in good.collect()] == ["a"]
    assert good.columns == ["id", "age", "born"]
    reasons = sorted((r.reason, r.record) for r in malformed.collect())
    assert reasons == sorted(
        [
            ("unparseable or does not match the schema", '{"id": "b", "age": "thirty"}'),
            ("unparseable or does not match the schema", "not json"),
            ("missing required field(s): id", '{"age":40}'),
            ("age must not be negative", '{"id":"c","age":-1}'),
        ]
    )


def test_csv_columns_are_mapped_by_header_name_in_every_file(spark: Any, tmp_path: Path, same_rows: SameRows) -> None:
    source = tmp_path / "people"
    (source / "delivery=2").mkdir(parents=True)
    (source / "a.csv").write_text("id,age,born\na,30,1990-01-01\n")
    # Another delivery lists the columns in another order, adds one the schema does not know and lacks `born`.
    (source / "delivery=2" / "b.csv").write_text('age,note,id\n41,"x, y",b\nforty,z,c\n')
    frame = read_dataset(spark, str(source), "csv", PEOPLE, store=LocalFileStore())
    assert frame.columns == ["id", "age", "born", CORRUPT_COLUMN]
    good, malformed = split_malformed(frame, required=("id",))
    expected = [("a", 30, datetime(1990, 1, 1).date()), ("b", 41, None)]
    same_rows(good, spark.createDataFrame(expected, PEOPLE))
    assert [(r.reason, r.record) for r in malformed.collect()] == [
        ("unparseable or does not match the schema", "forty,z,c")
    ]


def test_missing_location_reads_as_empty_frame_with_the_schema(spark: Any, tmp_path: Path) -> None:
    for fmt in ("json", "parquet"):
        frame = read_dataset(spark, str(tmp_path / "nothing-yet"), fmt, PEOPLE, store=LocalFileStore())
        assert frame.count() == 0
        assert frame.columns[:3] == ["id", "age", "born"]
    with pytest.raises(ValueError, match="format must be one of"):
        read_dataset(spark, str(tmp_path), "xml", PEOPLE, store=LocalFileStore())


def test_split_malformed_refuses_unknown_required_columns(spark: Any) -> None:
    frame = spark.createDataFrame([("a", 1, None)], PEOPLE)
    with pytest.raises(ValueError, match=r"required column.* not in the frame: name"):
        split_malformed(frame, required=("name",))


def test_quarantine_stores_every_malformed_row_with_reason_and_count(spark: Any, tmp_path: Path) -> None:
    context = context_for(spark, run_id="run-q")
    malformed = spark.createDataFrame(
        [("bad date", "{...}"), ("missing id", '{"age":1}')], "reason string, record string"
    )
    assert write_quarantine(context, malformed, str(tmp_path / "q"), dataset="people") == 2
    stored = spark.read.json(str(tmp_path / "q" / "dataset=people" / "run_id=run-q"))
    assert sorted(r.reason for r in stored.collect()) == ["bad date", "missing id"]
    assert {r.dataset for r in stored.collect()} == {"people"}
    assert context.counts.quarantined == {"people": 2}
    empty = spark.createDataFrame([], "reason string, record string")
    assert write_quarantine(context, empty, str(tmp_path / "q2"), dataset="others") == 0
    assert not (tmp_path / "q2").exists()
    assert context.counts.quarantined == {"people": 2, "others": 0}


def test_malformed_limit() -> None:
    enforce_malformed_limit("events", 5, 10, 0.5)
    enforce_malformed_limit("events", 0, 0, 0.0)
    with pytest.raises(DataQualityError, match="events: 6 of 10 records malformed"):
        enforce_malformed_limit("events", 6, 10, 0.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        enforce_malformed_limit("events", 0, 1, 1.5)


def test_glue_shapes_conform_to_a_read(spark: Any) -> None:
    loose = spark.createDataFrame([("a", "41", "extra")], "id string, age string, other string")
    conformed = conform_to_schema(loose, PEOPLE, fmt="parquet")
    assert conformed.columns == ["id", "age", "born", CORRUPT_COLUMN]
    assert conformed.collect()[0].age == 41
    errors = spark.createDataFrame([("bad line", "parse error")], "input string, error string")
    as_corrupt = error_records_as_corrupt(errors, PEOPLE)
    good, malformed = split_malformed(conformed.unionByName(as_corrupt), required=("id",))
    assert good.count() == 1
    assert "bad line" in malformed.collect()[0].record


def test_partition_dirs_are_escaped_like_spark() -> None:
    assert partition_dir(["country"], ["DE"]) == "country=DE"
    assert partition_dir(["a", "b"], ["x/y", None]) == "a=x%2Fy/b=__HIVE_DEFAULT_PARTITION__"
    assert partition_dir(["flag"], [True]) == "flag=true"
    with pytest.raises(ValueError, match="does not match columns"):
        partition_dir(["a"], [1, 2])


def test_local_store_lists_data_files_only(tmp_path: Path) -> None:
    for name in ("a/part-1.parquet", "a/.part-1.parquet.crc", "_SUCCESS", "._SUCCESS.crc", "_temporary/0/x"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    store = LocalFileStore()
    assert store.list_files(str(tmp_path)) == sorted(
        [str(tmp_path / "a/.part-1.parquet.crc"), str(tmp_path / "a/part-1.parquet")]
    )
    store.delete_files(store.list_files(str(tmp_path / "a")))
    assert not (tmp_path / "a").exists()
    assert (tmp_path / "_SUCCESS").exists()


@mock_aws
def test_s3_store_lists_and_deletes_through_the_injected_client() -> None:
    client = boto3.client("s3", region_name="eu-west-1")
    client.create_bucket(Bucket="lake", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    keys = ["cur/country=DE/part-1.parquet", "cur/country=FR/part-2.parquet", "cur/_SUCCESS", "current-old/x"]
    for key in keys:
        client.put_object(Bucket="lake", Key=key, Body=b"x")
    store = file_store("s3://lake/cur/", s3_client=client)
    assert isinstance(store, S3FileStore)
    assert store.list_files("s3://lake/cur") == [
        "s3://lake/cur/country=DE/part-1.parquet",
        "s3://lake/cur/country=FR/part-2.parquet",
    ]
    store.delete_files(["s3://lake/cur/country=DE/part-1.parquet"])
    remaining = sorted(o["Key"] for o in client.list_objects_v2(Bucket="lake")["Contents"])
    assert remaining == ["cur/_SUCCESS", "cur/country=FR/part-2.parquet", "current-old/x"]


def test_file_store_choice_and_refusals() -> None:
    assert isinstance(file_store("/tmp/x"), LocalFileStore)
    with pytest.raises(ValueError, match="needs an S3 client"):
        file_store("s3://lake/x")
    with pytest.raises(ValueError, match="unsupported location"):
        file_store("hdfs://nn/x")


# --- the idempotent partition rebuild -----------------------------------------------------------

CURRENT = "id string, name string, country string"


def data_files(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*.parquet")}


@pytest.fixture
def table(spark: Any, tmp_path: Path) -> Path:
    """A table with DE and FR partitions, written by a first rebuild."""
    path = tmp_path / "current"
    first = spark.createDataFrame([("1", "a", "DE"), ("2", "b", "DE"), ("3", "c", "FR")], CURRENT)
    rebuild_partitions(context_for(spark, "run-0"), first, str(path), dataset="current", partition_by=["country"])
    return path


def test_rebuild_replaces_named_partitions_and_leaves_others(spark: Any, table: Path, same_rows: SameRows) -> None:
    fr_before = data_files(table / "country=FR")
    de_before = data_files(table / "country=DE")
    update = spark.createDataFrame([("1", "a2", "DE"), ("9", "z", "FR")], CURRENT)
    context = context_for(spark, "run-1")
    written = rebuild_partitions(
        context, update, str(table), dataset="current", partition_by=["country"], partitions=[("DE",)]
    )
    assert written == 1  # the FR row is outside the named partitions, so it is not written
    assert data_files(table / "country=FR") == fr_before
    assert not data_files(table / "country=DE") & de_before
    same_rows(spark.read.parquet(str(table)), spark.createDataFrame([("1", "a2", "DE"), ("3", "c", "FR")], CURRENT))
    assert context.counts.written == {"current": 1}


def test_rebuild_is_idempotent_and_empties_partitions_without_rows(
    spark: Any, table: Path, same_rows: SameRows
) -> None:
    update = spark.createDataFrame([("3", "c2", "FR")], CURRENT)
    for run in ("run-1", "run-2"):
        rebuild_partitions(
            context_for(spark, run),
            update,
            str(table),
            dataset="current",
            partition_by=["country"],
            partitions=[("DE",), ("FR",)],
        )
        same_rows(spark.read.parquet(str(table)), spark.createDataFrame([("3", "c2", "FR")], CURRENT))
    assert not (table / "country=DE").exists()
    assert len(data_files(table)) == len(data_files(table / "country=FR"))


def test_failure_mid_write_leaves_the_previous_data(spark: Any, table: Path, same_rows: SameRows) -> None:
    before = data_files(table)
    previous = spark.createDataFrame([("1", "a", "DE"), ("2", "b", "DE"), ("3", "c", "FR")], CURRENT)

    @sf.udf("string")
    def explode_on_second(name: str) -> str:
        if name == "boom":
            raise RuntimeError("the writer died")
        return name

    failing = spark.createDataFrame([("1", "ok", "DE"), ("2", "boom", "DE")], CURRENT).withColumn(
        "name", explode_on_second("name")
    )
    with pytest.raises(Exception, match="the writer died"):
        rebuild_partitions(
            context_for(spark, "run-x"), failing, str(table), dataset="current", partition_by=["country"]
        )
    assert data_files(table) == before
    same_rows(spark.read.parquet(str(table)), previous)


def test_rebuild_dataset_replaces_everything_under_the_path(spark: Any, tmp_path: Path, same_rows: SameRows) -> None:
    path = tmp_path / "history"
    context = context_for(spark)
    rebuild_dataset(
        context,
        spark.createDataFrame([("1", "a", "DE"), ("2", "b", "FR")], CURRENT),
        str(path),
        dataset="h",
        partition_by=["country"],
    )
    rebuild_dataset(
        context, spark.createDataFrame([("5", "e", "IT")], CURRENT), str(path), dataset="h", partition_by=["country"]
    )
    same_rows(spark.read.parquet(str(path)), spark.createDataFrame([("5", "e", "IT")], CURRENT))
    assert sorted(p.name for p in path.iterdir() if p.is_dir()) == ["country=IT"]
    with pytest.raises(ValueError, match=r"partition column.* not in the frame: region"):
        rebuild_dataset(context, spark.createDataFrame([], CURRENT), str(path), dataset="h", partition_by=["region"])
    with pytest.raises(ValueError, match="needs partition columns"):
        rebuild_partitions(context, spark.createDataFrame([], CURRENT), str(path), dataset="h", partition_by=[])


# --- the row-count manifest ----------------------------------------------------------------------------


def manifest(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((path / MANIFEST_FILE).read_text())
    return document


def assert_recent(written_at: str) -> None:
    moment = datetime.fromisoformat(written_at)
    assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - moment) < timedelta(minutes=5)


def test_every_rebuild_rewrites_the_manifest_and_never_deletes_it(spark: Any, tmp_path: Path) -> None:
    path = tmp_path / "history"
    first = spark.createDataFrame([("1", "a", "DE"), ("2", "b", "FR")], CURRENT)
    rebuild_dataset(context_for(spark, "run-1"), first, str(path), dataset="history", partition_by=["country"])
    written = manifest(path)
    assert {k: written[k] for k in ("rows", "run_id", "job", "dataset", "mode")} == {
        "rows": 2,
        "run_id": "run-1",
        "job": "tests/io",
        "dataset": "history",
        "mode": "rebuild",
    }
    assert_recent(written["written_at"])
    assert str(path / MANIFEST_FILE) not in LocalFileStore().list_files(str(path))

    second = spark.createDataFrame([("5", "e", "IT")], CURRENT)
    rebuild_dataset(context_for(spark, "run-2"), second, str(path), dataset="history", partition_by=["country"])
    assert (manifest(path)["rows"], manifest(path)["run_id"]) == (1, "run-2")
    assert read_manifest_rows((path / MANIFEST_FILE).read_text()) == 1
    # Only the manifest and the new generation are there: no staging file left beside it.
    assert sorted(p.name for p in path.iterdir() if not p.name.startswith(".")) == [
        "_SUCCESS",
        MANIFEST_FILE,
        "country=IT",
    ]


def test_partition_rebuild_manifest_counts_the_rebuilt_partitions(spark: Any, table: Path) -> None:
    assert (manifest(table)["rows"], manifest(table)["mode"]) == (3, "rebuild_partitions")
    update = spark.createDataFrame([("1", "a2", "DE"), ("9", "z", "FR")], CURRENT)
    written = rebuild_partitions(
        context_for(spark, "run-1"),
        update,
        str(table),
        dataset="current",
        partition_by=["country"],
        partitions=[("DE",)],
    )
    assert manifest(table)["rows"] == written == 1
    assert manifest(table)["run_id"] == "run-1"


def test_append_manifest_counts_this_runs_rows(spark: Any, tmp_path: Path, same_rows: SameRows) -> None:
    path = tmp_path / "events"
    batches = [[("1", "a", "DE"), ("2", "b", "FR")], [("3", "c", "FR")]]
    for number, batch in enumerate(batches, start=1):
        frame = spark.createDataFrame(batch, CURRENT)
        append_dataset(
            context_for(spark, f"run-{number}"), frame, str(path), dataset="events", partition_by=["country"]
        )
    assert {k: manifest(path)[k] for k in ("rows", "run_id", "mode")} == {
        "rows": 1,
        "run_id": "run-2",
        "mode": "append",
    }
    same_rows(spark.read.parquet(str(path)), spark.createDataFrame([r for b in batches for r in b], CURRENT))
    with pytest.raises(ValueError, match=r"partition column.* not in the frame: region"):
        append_dataset(context_for(spark), frame, str(path), dataset="events", partition_by=["region"])


def test_a_rerun_of_an_appended_batch_appends_nothing_twice(spark: Any, tmp_path: Path, same_rows: SameRows) -> None:
    path = tmp_path / "events"
    batch = [("1", "a", "DE"), ("2", "b", "FR"), ("2", "b", "FR")]
    first = context_for(spark, "run-1")
    assert (
        append_dataset(
            first, spark.createDataFrame(batch, CURRENT), str(path), dataset="events", partition_by=["country"]
        )
        == 2
    )
    # The run failed before its bookmark commit: the retry reads the batch again, plus what arrived since.
    retry = context_for(spark, "run-2")
    again = spark.createDataFrame([*batch, ("3", "c", "FR")], CURRENT)
    assert append_dataset(retry, again, str(path), dataset="events", partition_by=["country"]) == 1
    assert retry.counts.written == {"events": 1}
    expected = [("1", "a", "DE"), ("2", "b", "FR"), ("3", "c", "FR")]
    same_rows(spark.read.parquet(str(path)), spark.createDataFrame(expected, CURRENT))
    assert manifest(path)["rows"] == 1


def test_a_rerun_quarantines_nothing_twice_when_asked(spark: Any, tmp_path: Path) -> None:
    malformed = spark.createDataFrame([("bad date", "{1}"), ("missing id", "{2}")], "reason string, record string")
    for run in ("run-1", "run-2"):
        context = context_for(spark, run)
        assert write_quarantine(context, malformed, str(tmp_path / "q"), dataset="e", skip_known=True) == 2
        assert context.counts.quarantined == {"e": 2}
    assert spark.read.json(str(tmp_path / "q")).count() == 2


def test_the_manifest_carries_the_runs_read_written_and_quarantined_counts(spark: Any, tmp_path: Path) -> None:
    context = context_for(spark, "run-c")
    context.counts.add("read", "raw", 5)
    bad = spark.createDataFrame([("missing id", "{}")], "reason string, record string")
    write_quarantine(context, bad, str(tmp_path / "q"), dataset="history")
    frame = spark.createDataFrame([("1", "a", "DE"), ("2", "b", "FR")], CURRENT)
    rebuild_dataset(context, frame, str(tmp_path / "history"), dataset="history")
    assert manifest(tmp_path / "history")["counts"] == {
        "read": {"raw": 5},
        "written": {"history": 2},
        "quarantined": {"history": 1},
    }
    append_dataset(context, frame, str(tmp_path / "events"), dataset="events")
    assert manifest(tmp_path / "events")["counts"]["written"] == {"events": 2, "history": 2}


def test_glue_csv_records_are_typed_like_a_local_csv_read(spark: Any) -> None:
    # What a DynamicFrame of CSV text gives: strings, typed by the CSV parser a local read uses. A job's
    # context sets the session up (a date such as 1990-02-30 would otherwise fail the run, not the record).
    context_for(spark)
    loose = spark.createDataFrame(
        [("a", "41", "1990-01-01"), ("b", "forty", None), ("c", "4.5", "1990-02-30")],
        "id string, age string, born string",
    )
    rows = {r.id: r for r in conform_to_schema(loose, PEOPLE, fmt="csv").collect()}
    assert (rows["a"].age, str(rows["a"].born), rows["a"][CORRUPT_COLUMN]) == (41, "1990-01-01", None)
    assert rows["b"][CORRUPT_COLUMN] == '{"id":"b","age":"forty"}'
    assert rows["c"][CORRUPT_COLUMN] is not None


def test_failed_write_leaves_the_previous_manifest(spark: Any, table: Path) -> None:
    before = manifest(table)

    @sf.udf("string")
    def fail(name: str) -> str:
        raise RuntimeError("the writer died")

    failing = spark.createDataFrame([("1", "x", "DE")], CURRENT).withColumn("name", fail("name"))
    with pytest.raises(Exception, match="the writer died"):
        rebuild_partitions(
            context_for(spark, "run-x"), failing, str(table), dataset="current", partition_by=["country"]
        )
    assert manifest(table) == before


@mock_aws
def test_s3_store_writes_the_manifest_beside_the_data(spark: Any) -> None:
    client = boto3.client("s3", region_name="eu-west-1")
    client.create_bucket(Bucket="lake", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    client.put_object(Bucket="lake", Key="cur/country=DE/part-1.parquet", Body=b"x")
    store = S3FileStore(client)
    for run_id, rows in (("run-1", 7), ("run-2", 3)):
        path = write_manifest(
            context_for(spark, run_id), store, "s3://lake/cur/", dataset="current", rows=rows, mode="append"
        )
        assert path == f"s3://lake/cur/{MANIFEST_FILE}"
    body = client.get_object(Bucket="lake", Key=f"cur/{MANIFEST_FILE}")["Body"].read()
    assert (json.loads(body)["rows"], json.loads(body)["run_id"]) == (3, "run-2")
    assert store.list_files("s3://lake/cur/") == ["s3://lake/cur/country=DE/part-1.parquet"]
    with pytest.raises(ValueError, match="no file name"):
        store.write_text("s3://lake/cur/", "{}")


def test_manifest_rows_must_be_an_integer() -> None:
    assert read_manifest_rows(b'{"rows": 0}') == 0
    for text in ('{"rows": "12"}', '{"rows": true}', '{"rows": 1.5}', '{"count": 3}', "[1]", "not json"):
        with pytest.raises(ValueError, match="integer 'rows'"):
            read_manifest_rows(text)


def test_an_impossible_date_is_a_corrupt_record_not_a_failed_run(spark: Any, tmp_path: Path) -> None:
    (tmp_path / "people").mkdir()
    (tmp_path / "people" / "p.json").write_text(
        '{"id": "a", "born": "1990-02-30"}\n{"id": "b", "born": "1990-02-03"}\n'
    )
    context = context_for(spark)
    frame = context.read("people", str(tmp_path / "people"), "json", PEOPLE)
    flagged = {r.id: r[CORRUPT_COLUMN] is not None for r in frame.collect()}
    assert flagged == {"a": True, "b": False}
