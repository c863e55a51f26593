"""Spark's `s3://` inside an emulated Glue run: the run's buckets as local folders, written back when it ends.

On Glue, Spark reads and writes `s3://` paths through EMRFS. Neither EMRFS nor hadoop-aws (s3a) exists
here, and Maven is out of reach. What pyspark does ship is Hadoop's `ViewFileSystemOverloadScheme`
(hadoop-client-api): registered for the `s3` scheme, with one mount table per bucket whose fallback link is
that bucket's local folder, `s3://bucket/key` is `<mirror>/bucket/key` for Spark, and the paths Spark
reports (`inputFiles()`, `_metadata.file_path`) stay `s3://` URLs. The emulator fills the folders from its
own S3 backend before the job starts and writes Spark's changes back after the job's process ends.

Limits, where this differs from EMRFS (reads and writes go to S3 as they happen):
- Spark sees the buckets as they were when the run started, plus its own writes. An object that the job
  (through boto3, e.g. a manifest or a delete) or anyone else changes in S3 during the run is not seen by
  Spark in the same run.
- Spark's writes reach S3 when the job's process ends, whether it succeeded, failed or timed out (on Glue,
  objects written before a failure stay too); the run's final state is reported only after that. A file
  Spark created or changed is uploaded; a file Spark deleted is deleted in S3, unless S3 holds another
  version by then. An object changed both in S3 and by Spark keeps Spark's version.
- Only the buckets named in the run's arguments are mounted (code locations aside); another bucket makes
  Spark fail with "Could not initialize target File System for URI : s3://<bucket>/", as a bucket that
  does not exist would on Glue.
- Keys that cannot be a local path are not mirrored: empty, `.` or `..` segments, and a key that is also
  the "folder" of other keys. Folder marker objects (`a/b/`) become plain folders.
- Hadoop's local checksum files (`.part-0000.crc`) are not uploaded, and no EMRFS `_$folder$` markers are
  written.
- Objects are copied through memory: right for rehearsal data, not for a data lake's volume.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

# Registered for the s3 scheme; the mount tables are per bucket (the URI's authority).
OVERLOAD_SCHEME = "org.apache.hadoop.fs.viewfs.ViewFileSystemOverloadScheme"
_CHECKSUM = re.compile(r"^\..+\.crc$")


@dataclass(frozen=True)
class _Snapshot:
    """A mirrored object as written to disk: what tells an unchanged local file from one Spark wrote."""

    size: int
    mtime_ns: int
    etag: str


@dataclass
class SyncResult:
    uploaded: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    denied: list[str] = field(default_factory=list)  # "<action> on <arn>: <why>", not written back


class S3Mirror:
    """Some buckets of one account's S3 (the emulator's backend, in-process) as folders under `root`."""

    def __init__(self, root: Path, *, account: str, region: str) -> None:
        self.root = root
        self.account = account
        self.region = region
        self.buckets: list[str] = []
        self.skipped: list[str] = []
        self._snapshot: dict[tuple[str, str], _Snapshot] = {}

    def _backend(self) -> Any:
        from moto.s3.models import s3_backends
        from moto.utilities.utils import get_partition

        return s3_backends[self.account][get_partition(self.region)]

    def download(self, buckets: Iterable[str]) -> None:
        """Copy every object of each existing bucket; a bucket that does not exist is left unmounted."""
        from moto.s3.exceptions import MissingBucket
        from moto.s3.models import FakeKey

        backend = self._backend()
        for name in sorted(set(buckets)):
            try:
                bucket = backend.get_bucket(name)
            except MissingBucket:
                continue
            folder = self.root / name
            folder.mkdir(parents=True, exist_ok=True)
            self.buckets.append(name)
            # list() copies the key names at once; the server's request threads may add keys meanwhile.
            for key_name in sorted(list(bucket.keys)):
                key = backend.get_object(name, key_name)
                if isinstance(key, FakeKey):
                    self._write(name, key)

    def _write(self, bucket: str, key: Any) -> None:
        path = _local_path(self.root / bucket, key.name)
        if path is None:
            self.skipped.append(f"s3://{bucket}/{key.name}")
            return
        try:
            if key.name.endswith("/"):
                path.mkdir(parents=True, exist_ok=True)
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(key.value)
        except OSError:  # a key that is also the "folder" of other keys (or the reverse)
            self.skipped.append(f"s3://{bucket}/{key.name}")
            return
        # S3's LastModified as the file's time: stable across runs, so bookmarks can compare it.
        modified_ns = int(key.last_modified.replace(tzinfo=UTC).timestamp() * 1_000_000_000)
        os.utime(path, ns=(modified_ns, modified_ns))
        stat = path.stat()
        self._snapshot[(bucket, key.name)] = _Snapshot(stat.st_size, stat.st_mtime_ns, key.etag)

    def spark_conf(self) -> dict[str, str]:
        """Spark properties that make `s3://<bucket>/...` the mirrored folders."""
        conf = {"spark.hadoop.fs.s3.impl": OVERLOAD_SCHEME}
        for name in self.buckets:
            conf[f"spark.hadoop.fs.viewfs.mounttable.{name}.linkFallback"] = (self.root / name).as_uri()
        return conf

    def upload_changes(self, refuse: Callable[[list[str], list[str]], dict[str, str]] | None = None) -> SyncResult:
        """Write what Spark created, changed or deleted back to S3 (see the module docstring for the rules).
        `refuse(puts, deletes)` maps each `s3://` URL that may not be written or deleted to why (`glue_permissions`):
        those are left out, the others written, and the reasons returned in `SyncResult.denied`."""
        from moto.s3.models import FakeKey

        backend = self._backend()
        puts: dict[str, tuple[str, str, Path]] = {}
        for name in self.buckets:
            folder = self.root / name
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                key = path.relative_to(folder).as_posix()
                before = self._snapshot.get((name, key))
                if before is None and _CHECKSUM.match(path.name):
                    continue  # Hadoop's checksum of a file it wrote, not the job's data
                stat = path.stat()
                if before is not None and (stat.st_size, stat.st_mtime_ns) == (before.size, before.mtime_ns):
                    continue
                puts[f"s3://{name}/{key}"] = (name, key, path)
        deletes: dict[str, tuple[str, str]] = {}
        for (name, key), before in sorted(self._snapshot.items()):
            if (self.root / name / key).exists():
                continue
            current = backend.get_object(name, key)
            if isinstance(current, FakeKey) and current.etag == before.etag:
                deletes[f"s3://{name}/{key}"] = (name, key)
        refused = refuse(list(puts), list(deletes)) if refuse is not None else {}
        result = SyncResult(denied=list(refused.values()))
        for url, (name, key, path) in puts.items():
            if url not in refused:
                backend.put_object(name, key, path.read_bytes())
                result.uploaded.append(url)
        for url, (name, key) in deletes.items():
            if url not in refused:
                backend.delete_object(name, key)
                result.deleted.append(url)
        return result

    def url_of(self, path: Path, *, folder: bool = False) -> str | None:
        """The `s3://` URL of a mirrored path (a folder's ends in `/`), or None: not in a mounted bucket, or a
        Hadoop checksum file (not an object)."""
        try:
            parts = path.relative_to(self.root).parts
        except ValueError:
            return None
        if not parts or parts[0] not in self.buckets or (not folder and _CHECKSUM.match(parts[-1])):
            return None
        key = "/".join(parts[1:])
        if folder:
            return f"s3://{parts[0]}/{key}/" if key else f"s3://{parts[0]}/"
        return f"s3://{parts[0]}/{key}" if key else None

    def mirrored(self, url: str) -> bool:
        """Whether `url` (an object, or a folder ending in `/`) was in S3 when the run started: an object
        mirrored then, or a folder holding one."""
        bucket, _, key = url.removeprefix("s3://").partition("/")
        if not url.endswith("/"):
            return (bucket, key) in self._snapshot
        return any(name == bucket and held.startswith(key) for name, held in self._snapshot)


def _local_path(folder: Path, key: str) -> Path | None:
    parts = key.removesuffix("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        return None
    return folder.joinpath(*parts)


def buckets_named(values: Iterable[str]) -> set[str]:
    """The buckets of every `s3://bucket/...` URL in `values` (a value may hold several, comma-separated)."""
    return {match for value in values for match in re.findall(r"s3://([^/,\s]+)", value)}
