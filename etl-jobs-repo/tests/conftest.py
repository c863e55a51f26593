"""Fixtures shared by the ETL tests: ONE local Spark session for the whole run, and a DataFrame comparison."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """The local SparkSession every Spark test shares (starting one costs seconds)."""
    from lakejobs.context import local_spark

    session = local_spark("etl-jobs-tests")
    yield session
    session.stop()


def _rows(frame: Any, columns: Sequence[str]) -> Counter[tuple[Any, ...]]:
    return Counter(tuple(row[c] for c in columns) for row in frame.select(*columns).collect())


def assert_same_rows(actual: Any, expected: Any) -> None:
    """Same columns (any order) and the same rows as a multiset (any order): Spark promises no row order."""
    assert sorted(actual.columns) == sorted(expected.columns), f"columns {actual.columns} != {expected.columns}"
    columns = sorted(expected.columns)
    got, want = _rows(actual, columns), _rows(expected, columns)
    missing, extra = want - got, got - want
    assert not missing and not extra, (
        f"rows differ on {columns}:\n  missing {dict(missing)}\n  unexpected {dict(extra)}"
    )


@pytest.fixture(scope="session")
def same_rows() -> Callable[[Any, Any], None]:
    return assert_same_rows


def create_audit_table(dynamodb: Any, name: str) -> None:
    """The audit table as the shared stack declares it (`etl_jobs.shared_stack`): job_name, then run_id."""
    keys = [("job_name", "HASH"), ("run_id", "RANGE")]
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": key, "KeyType": kind} for key, kind in keys],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key, _ in keys],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture(scope="session")
def audit_table() -> Callable[[Any, str], None]:
    """Creates the audit table in a (moto) DynamoDB client: `audit_table(client, name)`."""
    return create_audit_table
