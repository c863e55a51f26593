"""What an emulated Glue run's calls need, by the IAM service authorization reference (`run_calls`)."""

from __future__ import annotations

from typing import Any

import pytest

from lakeops.emulator.run_calls import Call, UnknownCall, s3_calls, service_calls

PARTITION, REGION, ACCOUNT = "aws", "eu-west-1", "222222222222"
GLUE = f"arn:aws:glue:{REGION}:{ACCOUNT}"


def test_a_listing_carries_its_prefix_delimiter_and_size_as_condition_keys() -> None:
    query = {"list-type": ["2"], "prefix": ["raw/orders/"], "delimiter": ["/"], "max-keys": ["1000"]}
    assert s3_calls("s3:ListBucket", "arn:aws:s3:::lake-raw", query, b"") == [
        Call(
            "s3:ListBucket",
            ("arn:aws:s3:::lake-raw",),
            {"s3:prefix": ["raw/orders/"], "s3:delimiter": ["/"], "s3:max-keys": ["1000"]},
        )
    ]
    # Without a prefix the key is absent: a grant conditioned on s3:prefix does not apply, as in IAM.
    assert s3_calls("s3:ListBucket", "arn:aws:s3:::lake-raw", {}, b"") == [
        Call("s3:ListBucket", ("arn:aws:s3:::lake-raw",), {})
    ]


def test_a_bulk_delete_needs_delete_object_on_every_key_it_names() -> None:
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Object><Key>cur/a.parquet</Key></Object><Object><Key>cur/b.parquet</Key></Object><Quiet>true</Quiet>"
        b"</Delete>"
    )
    assert s3_calls("s3:DeleteObject", "arn:aws:s3:::lake-cur", {"delete": [""]}, body) == [
        Call("s3:DeleteObject", ("arn:aws:s3:::lake-cur/cur/a.parquet", "arn:aws:s3:::lake-cur/cur/b.parquet"))
    ]
    single = b"<Delete><Object><Key>cur/only.parquet</Key></Object></Delete>"
    assert s3_calls("s3:DeleteObject", "arn:aws:s3:::lake-cur", {"delete": [""]}, single)[0].resources == (
        "arn:aws:s3:::lake-cur/cur/only.parquet",
    )
    # An object request is authorized on the object moto names.
    assert s3_calls("s3:GetObject", "arn:aws:s3:::lake-cur/cur/a.parquet", {}, b"") == [
        Call("s3:GetObject", ("arn:aws:s3:::lake-cur/cur/a.parquet",))
    ]


def test_catalog_calls_need_the_catalog_the_database_and_the_table() -> None:
    def needs(action: str, **params: Any) -> tuple[str, ...]:
        (call,) = service_calls(action, params, partition=PARTITION, region=REGION, account=ACCOUNT)
        return call.resources

    table = (f"{GLUE}:catalog", f"{GLUE}:database/lake", f"{GLUE}:table/lake/orders")
    assert needs("glue:GetTable", DatabaseName="lake", Name="orders") == table
    assert needs("glue:BatchCreatePartition", DatabaseName="lake", TableName="orders") == table
    assert needs("glue:GetPartitions", DatabaseName="lake", TableName="orders") == table
    assert needs("glue:CreateTable", DatabaseName="lake", TableInput={"Name": "orders"}) == table
    assert needs("glue:GetDatabase", Name="lake") == table[:2]
    assert needs("glue:GetTable", DatabaseName="lake", Name="orders", CatalogId="333333333333")[0] == (
        f"arn:aws:glue:{REGION}:333333333333:catalog"
    )
    assert needs("glue:GetJobRun", JobName="lake-job", RunId="jr_1") == (f"{GLUE}:job/lake-job",)
    assert needs("dynamodb:PutItem", TableName="audit") == (f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/audit",)


def test_a_call_whose_resources_are_not_modelled_is_refused_not_passed() -> None:
    assert service_calls("sts:GetCallerIdentity", {}, partition=PARTITION, region=REGION, account=ACCOUNT) == []
    with pytest.raises(UnknownCall, match=r"ssm:GetParameter are not modelled"):
        service_calls("ssm:GetParameter", {"Name": "/lake/x"}, partition=PARTITION, region=REGION, account=ACCOUNT)
    for listing in ("glue:GetDatabases", "glue:GetTables"):  # which tables a listing needs is not modelled
        with pytest.raises(UnknownCall, match=listing):
            service_calls(listing, {"DatabaseName": "lake"}, partition=PARTITION, region=REGION, account=ACCOUNT)
