"""Partition registration: what the sinks record is what lands in the Glue catalog (moto), once per partition."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lakejobs.catalog import (
    CatalogError,
    CatalogTableRef,
    parse_catalog_tables,
    partition_values,
    register_partitions,
    register_written_partitions,
)
from lakejobs.context import JobContext
from lakejobs.io import append_dataset, rebuild_partitions

REGION = "eu-west-1"
TABLE = CatalogTableRef("lake_curated", "orders_totals")
TABLES_ARGUMENT = json.dumps({"totals": {"database": TABLE.database, "table": TABLE.table}})
ROWS = "id string, amount int, day date, currency string"


@pytest.fixture
def glue(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(variable, "testing")
    with mock_aws():
        client = boto3.client("glue", region_name=REGION)
        client.create_database(DatabaseInput={"Name": TABLE.database})
        client.create_table(
            DatabaseName=TABLE.database,
            TableInput={
                "Name": TABLE.table,
                "PartitionKeys": [{"Name": "day", "Type": "date"}, {"Name": "currency", "Type": "string"}],
                "StorageDescriptor": {
                    "Columns": [{"Name": "id", "Type": "string"}, {"Name": "amount", "Type": "int"}],
                    "Location": "s3://lake-curated/orders/totals/",
                    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                    "SerdeInfo": {
                        "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                    },
                },
            },
        )
        yield client


def registered(glue: Any) -> dict[tuple[str, ...], dict[str, Any]]:
    partitions = glue.get_partitions(DatabaseName=TABLE.database, TableName=TABLE.table)["Partitions"]
    return {tuple(p["Values"]): p["StorageDescriptor"] for p in partitions}


def test_sinks_record_what_they_wrote_and_the_edge_registers_it_once(glue: Any, spark: Any, tmp_path: Path) -> None:
    context = JobContext.local("orders/totals", run_id="jr_1", spark=spark, logger=logging.getLogger("tests.catalog"))
    path = str(tmp_path / "totals")
    rows = [("1", 5, date(2024, 3, 1), "EUR"), ("2", 7, date(2024, 3, 1), "EUR"), ("3", 9, date(2024, 3, 2), None)]
    append_dataset(context, spark.createDataFrame(rows, ROWS), path, dataset="totals", partition_by=["day", "currency"])
    assert context.written_partitions == {
        path: (("day", "currency"), {(date(2024, 3, 1), "EUR"), (date(2024, 3, 2), None)})
    }
    outputs = {"totals": path, "unpartitioned": str(tmp_path / "other")}
    assert register_written_partitions(glue, context.written_partitions, outputs, TABLES_ARGUMENT) == {"totals": 2}
    catalog = registered(glue)
    assert set(catalog) == {("2024-03-01", "EUR"), ("2024-03-02", "__HIVE_DEFAULT_PARTITION__")}
    # Each partition points at the directory Spark wrote, and reads its rows the way the table does.
    location = catalog[("2024-03-01", "EUR")]["Location"]
    assert location == f"{path}/day=2024-03-01/currency=EUR/"
    assert list(Path(location).glob("*.parquet"))
    assert catalog[("2024-03-01", "EUR")]["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert [c["Name"] for c in catalog[("2024-03-01", "EUR")]["Columns"]] == ["id", "amount"]

    # A rerun (or a rebuild of the same partitions) registers nothing new and does not fail.
    rebuild_partitions(
        context, spark.createDataFrame(rows[:1], ROWS), path, dataset="totals", partition_by=["day", "currency"]
    )
    assert register_written_partitions(glue, context.written_partitions, outputs, TABLES_ARGUMENT) == {"totals": 0}
    assert len(registered(glue)) == 2


def test_keys_that_differ_from_the_written_columns_are_refused(glue: Any) -> None:
    with pytest.raises(CatalogError, match=r"lake_curated.orders_totals: partition keys \['day', 'currency'\] differ"):
        register_partitions(
            glue, TABLE, "s3://lake-curated/orders/totals", ["currency", "day"], [("EUR", "2024-03-01")]
        )
    assert registered(glue) == {}


def test_nothing_is_registered_without_a_catalog(glue: Any, spark: Any, tmp_path: Path) -> None:
    context = JobContext.local("orders/totals", run_id="jr_1", spark=spark)
    context.record_partitions(str(tmp_path), ["day", "currency"], [(date(2024, 3, 1), "EUR")])
    assert register_written_partitions(glue, context.written_partitions, {"totals": str(tmp_path)}, "") == {}
    with pytest.raises(ValueError, match="written with partition columns"):
        context.record_partitions(str(tmp_path), ["day"], [(date(2024, 3, 1),)])


def test_catalog_tables_argument_and_values() -> None:
    assert parse_catalog_tables(TABLES_ARGUMENT) == {"totals": TABLE}
    for bad in ("[]", '{"totals": {"database": "x"}}', "not json", '{"totals": "x.y"}'):
        with pytest.raises(ValueError, match="--catalog_tables: expected JSON"):
            parse_catalog_tables(bad)
    with pytest.raises(ValueError, match="no output named history"):
        register_written_partitions(
            None, {}, {"totals": "s3://b/t"}, json.dumps({"history": {"database": "d", "table": "t"}})
        )
    assert partition_values([date(2024, 3, 1), datetime(2024, 3, 1, 9, 30), True, None, "", "a/b", 7]) == [
        "2024-03-01",
        "2024-03-01 09:30:00",
        "true",
        "__HIVE_DEFAULT_PARTITION__",
        "__HIVE_DEFAULT_PARTITION__",
        "a/b",
        "7",
    ]
