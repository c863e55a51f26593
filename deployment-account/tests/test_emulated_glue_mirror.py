"""Spark's view of S3 in an emulated Glue run: buckets mirrored to folders, and only Spark's changes written back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from lakeops.emulator.glue_mirror import OVERLOAD_SCHEME, S3Mirror, buckets_named

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
