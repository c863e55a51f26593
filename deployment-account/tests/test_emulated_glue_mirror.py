"""Spark's view of S3 in an emulated Glue run: buckets mirrored to folders, and only Spark's changes written back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from lakeops.emulator.glue_mirror import OVERLOAD_SCHEME, S3Mirror, buckets_named
from lakeops.emulator.glue_permissions import denied_reads, denied_writes, role_statements

REGION = "eu-west-1"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(variable, "testing")
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket="data", CreateBucketConfiguration={"LocationConstraint": REGION})
        yield client


def body(s3: Any, key: str) -> bytes:
    data: bytes = s3.get_object(Bucket="data", Key=key)["Body"].read()
    return data


def test_the_mirror_copies_buckets_and_writes_back_only_what_spark_changed(s3: Any, tmp_path: Path) -> None:
    for key, data in {
        "in/a.json": b'{"id": 1}\n',
        "in/b.json": b'{"id": 2}\n',
        "out/old.parquet": b"old generation",
        "kept/c.txt": b"as downloaded",
        "folder/": b"",
        "odd//key": b"no local path",
        "x": b"a key that is also a folder",
        "x/y": b"inside it",
    }.items():
        s3.put_object(Bucket="data", Key=key, Body=data)
    mirror = S3Mirror(tmp_path, account=DEFAULT_ACCOUNT_ID, region=REGION)

    mirror.download({"data", "no-such-bucket"})

    assert mirror.buckets == ["data"]
    assert (tmp_path / "data" / "in" / "a.json").read_bytes() == b'{"id": 1}\n'
    assert (tmp_path / "data" / "folder").is_dir()
    assert mirror.skipped == ["s3://data/odd//key", "s3://data/x/y"]
    modified = s3.head_object(Bucket="data", Key="in/a.json")["LastModified"].timestamp()
    assert (tmp_path / "data" / "in" / "a.json").stat().st_mtime == pytest.approx(modified, abs=1)
    assert mirror.spark_conf() == {
        "spark.hadoop.fs.s3.impl": OVERLOAD_SCHEME,
        "spark.hadoop.fs.viewfs.mounttable.data.linkFallback": (tmp_path / "data").as_uri(),
    }

    # What a job's Spark did locally, and what the job did to S3 itself meanwhile.
    (tmp_path / "data" / "out" / "part-0.parquet").write_bytes(b"new generation")
    (tmp_path / "data" / "out" / ".part-0.parquet.crc").write_bytes(b"checksum")
    (tmp_path / "data" / "in" / "b.json").write_bytes(b'{"id": 2, "fixed": true}\n')
    (tmp_path / "data" / "out" / "old.parquet").unlink()
    (tmp_path / "data" / "kept" / "c.txt").unlink()
    s3.put_object(Bucket="data", Key="kept/c.txt", Body=b"replaced in S3 during the run")
    s3.put_object(Bucket="data", Key="out/_manifest.json", Body=b'{"rows": 1}')

    result = mirror.upload_changes()

    assert sorted(result.uploaded) == ["s3://data/in/b.json", "s3://data/out/part-0.parquet"]
    assert result.deleted == ["s3://data/out/old.parquet"]
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="data")["Contents"])
    assert keys == [
        "folder/",
        "in/a.json",
        "in/b.json",
        "kept/c.txt",
        "odd//key",
        "out/_manifest.json",
        "out/part-0.parquet",
        "x",
        "x/y",
    ]
    assert body(s3, "in/b.json") == b'{"id": 2, "fixed": true}\n'
    assert body(s3, "kept/c.txt") == b"replaced in S3 during the run"  # S3's newer version is not deleted


def test_the_buckets_a_run_s_arguments_name() -> None:
    assert buckets_named(["s3://raw/events/", "s3://assets/a.zip,s3://assets/b.py", "plain text", ""]) == {
        "raw",
        "assets",
    }


def test_spark_s_writes_outside_the_job_role_s_grants_are_refused_and_not_written(s3: Any, tmp_path: Path) -> None:
    """The run's write-back asks the role's policies, as deployed in the emulator's IAM, for each object: a
    put or delete the role may not make stays out of S3 and is named with its action and ARN."""
    iam = boto3.client("iam", region_name=REGION)
    iam.create_role(RoleName="job", AssumeRolePolicyDocument="{}")
    grant = {"Effect": "Allow", "Action": ["s3:PutObject", "s3:DeleteObject"], "Resource": "arn:aws:s3:::data/out/*"}
    iam.put_role_policy(
        RoleName="job", PolicyName="inline", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [grant]})
    )
    deny = {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::data/out/secret/*"}
    managed = iam.create_policy(
        PolicyName="managed", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [deny]})
    )
    iam.attach_role_policy(RoleName="job", PolicyArn=managed["Policy"]["Arn"])
    for key in ("out/old.parquet", "in/a.json"):
        s3.put_object(Bucket="data", Key=key, Body=b"before the run")
    mirror = S3Mirror(tmp_path, account=DEFAULT_ACCOUNT_ID, region=REGION)
    mirror.download({"data"})
    (tmp_path / "data" / "out" / "part-0.parquet").write_bytes(b"granted")
    (tmp_path / "data" / "out" / "secret").mkdir()
    (tmp_path / "data" / "out" / "secret" / "part-0.parquet").write_bytes(b"explicitly denied")
    (tmp_path / "data" / "elsewhere.parquet").write_bytes(b"never granted")
    (tmp_path / "data" / "out" / "old.parquet").unlink()
    (tmp_path / "data" / "in" / "a.json").unlink()

    statements = role_statements(DEFAULT_ACCOUNT_ID, "aws", "arn:aws:iam::123456789012:role/job")
    assert grant in statements and deny in statements
    result = mirror.upload_changes(refuse=lambda puts, deletes: denied_writes(statements, "aws", puts, deletes))

    assert result.uploaded == ["s3://data/out/part-0.parquet"]
    assert result.deleted == ["s3://data/out/old.parquet"]
    assert sorted(result.denied) == [
        "s3:DeleteObject on arn:aws:s3:::data/in/a.json: implicit deny",
        "s3:PutObject on arn:aws:s3:::data/elsewhere.parquet: implicit deny",
        "s3:PutObject on arn:aws:s3:::data/out/secret/part-0.parquet: explicit deny",
    ]
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="data")["Contents"])
    assert keys == ["in/a.json", "out/part-0.parquet"]  # the refused writes and delete did not happen


def test_a_grant_under_a_condition_the_check_cannot_know_does_not_allow() -> None:
    grant = {
        "Effect": "Allow",
        "Action": "s3:PutObject",
        "Resource": "arn:aws:s3:::data/*",
        "Condition": {"StringEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}},
    }
    assert denied_writes([grant], "aws", ["s3://data/k"], []) == {
        "s3://data/k": "s3:PutObject on arn:aws:s3:::data/k: implicit deny (conditions on "
        "s3:x-amz-server-side-encryption)"
    }


def test_a_listed_folder_needs_list_bucket_with_its_key_as_the_prefix() -> None:
    """As a job role grants listings (etl_jobs.glue_job: the prefix, and everything below it); the bucket's top is
    the empty prefix; a condition on a key a folder's listing does not carry here keeps the grant from applying."""
    listing = {
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": "arn:aws:s3:::data",
        "Condition": {"StringLike": {"s3:prefix": ["in/events/", "in/events/*"]}},
    }
    delimited = {**listing, "Condition": {"StringEquals": {"s3:delimiter": "/"}}}
    reading = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/in/events/*"}
    folders = ["s3://data/in/events/", "s3://data/in/events/day=1/", "s3://data/in/", "s3://data/"]

    refused = denied_reads([listing, reading], "aws", ["s3://data/in/events/a.json"], folders)

    assert refused == {
        "s3://data/in/": "s3:ListBucket on arn:aws:s3:::data with s3:prefix 'in/': implicit deny",
        "s3://data/": "s3:ListBucket on arn:aws:s3:::data with s3:prefix '': implicit deny",
    }
    assert denied_reads([delimited], "aws", [], ["s3://data/in/events/"]) == {
        "s3://data/in/events/": "s3:ListBucket on arn:aws:s3:::data with s3:prefix 'in/events/': implicit deny "
        "(conditions on s3:delimiter)"
    }
