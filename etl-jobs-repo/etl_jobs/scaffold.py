"""A new job group, written in the shape of the shipped ones: `etl-jobs new <group> --job <name> ...`.

Under the repository's folder it writes

    jobs/<group>/group.yaml                           the spec: the first job conforms raw JSON lines, the
                                                      others aggregate what it writes
    jobs/<group>/<job>.py                             one script per job: declared ARGS, pure transforms,
                                                      `main(context, args)`, the Glue edge under __main__
    sample-data/<group>/raw/<raw input prefix>batch-0001.json    a small sample with malformed records
    tests/jobs/test_<group>.py                        the transforms' tests and the sample run's counts

and every file passes ruff, ruff format, mypy and pytest as written. Everything is checked before anything
is written: the names, the trigger, that none of the files exists, and the resulting group.yaml itself.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template

from etl_jobs.group_check import Paths
from etl_jobs.spec import GROUP_FILE, NAME_RE, PREFIX_RE, SCHEDULE_RE, SpecError, load_group

# The first job's datasets: raw records in, conformed records out; every later job reads `records`.
RAW_INPUT = "raw_records"
CONFORMED = "records"
SAMPLE_FILE = "batch-0001.json"


class ScaffoldError(ValueError):
    """A group that cannot be created as asked; nothing has been written when this is raised."""


@dataclass(frozen=True)
class NewGroup:
    """What `etl-jobs new` was asked for, checked."""

    name: str
    jobs: tuple[str, ...]
    raw_prefix: str | None
    schedule: str | None

    @property
    def raw_input_prefix(self) -> str:
        """Where the first job reads in the raw zone: under the trigger's prefix, else under the group's name."""
        return f"{self.raw_prefix or self.name + '/'}{CONFORMED}/"


def check_request(
    name: str, jobs: Sequence[str], *, raw_prefix: str | None, schedule: str | None, paths: Paths
) -> NewGroup:
    """Refuse bad names, a missing or double trigger, and anything that already exists; every problem at once."""
    problems = []
    for label, value in [("group", name), *(("--job", job) for job in dict.fromkeys(jobs))]:
        if not re.fullmatch(NAME_RE, value):
            problems.append(
                f"{label} {value!r}: use 2 to 40 lowercase letters, digits and underscores, starting with a letter"
            )
    if not jobs:
        problems.append("give at least one --job (the first conforms the raw data, the others aggregate it)")
    twice = sorted({job for job in jobs if list(jobs).count(job) > 1})
    if twice:
        problems.append(f"--job {', '.join(twice)}: given twice")
    if CONFORMED in jobs[1:]:
        problems.append(f"--job {CONFORMED}: a later job reads the dataset {CONFORMED!r}, so it cannot also be a job")
    if (raw_prefix is None) == (schedule is None):
        problems.append(
            "give exactly one trigger: --raw-prefix PREFIX (runs when raw data lands) or --schedule EXPRESSION"
        )
    if raw_prefix is not None:
        raw_prefix = raw_prefix if raw_prefix.endswith("/") else f"{raw_prefix}/"
        if not re.fullmatch(PREFIX_RE, raw_prefix):
            problems.append(
                f"--raw-prefix {raw_prefix!r}: an S3 key prefix of lowercase letters, digits, '_' and '-', "
                "such as taxi/ or taxi/trips/"
            )
    if schedule is not None and not re.fullmatch(SCHEDULE_RE, schedule):
        problems.append(
            f"--schedule {schedule!r}: an EventBridge expression such as 'rate(1 day)' or 'cron(0 4 * * ? *)'"
        )
    request = NewGroup(name, tuple(jobs), raw_prefix, schedule)
    if not problems:
        existing = [path for path in _targets(request, paths) if path.exists()]
        if existing:
            problems.append(f"group {name!r} exists already: {', '.join(str(p) for p in existing)}")
    if problems:
        raise ScaffoldError("; ".join(problems))
    return request


def create_group(request: NewGroup, paths: Paths) -> list[Path]:
    """Write the group's files under `paths.root`; returns them. The spec is loaded before anything is written."""
    files = render(request)
    with tempfile.TemporaryDirectory(prefix=f"new-{request.name}-") as scratch:
        staged = Paths(Path(scratch))
        for relative, text in files.items():
            target = staged.root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        try:
            load_group(staged.jobs / request.name)
        except SpecError as exc:
            message = str(exc).replace(str(staged.root), "").lstrip("/")
            raise ScaffoldError(f"the generated spec would be invalid: {message}") from None
        written = []
        for relative in files:
            target = paths.root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(staged.root / relative, target)
            written.append(target)
    return written


def _targets(request: NewGroup, paths: Paths) -> list[Path]:
    """What must not exist yet: the group folder, its sample data and its test module."""
    return [paths.jobs / request.name, paths.samples / request.name, paths.tests / f"test_{request.name}.py"]


def render(request: NewGroup) -> dict[Path, str]:
    """Every file of the new group by its path relative to the repository's folder."""
    first, *later = request.jobs
    group = request.name
    files = {Path("jobs", group, GROUP_FILE): _group_yaml(request)}
    files[Path("jobs", group, f"{first}.py")] = CONFORM_SCRIPT.substitute(group=group, job=first)
    for job in later:
        files[Path("jobs", group, f"{job}.py")] = AGGREGATE_SCRIPT.substitute(group=group, job=job, first=first)
    sample = Path("sample-data", group, "raw", *request.raw_input_prefix.strip("/").split("/"), SAMPLE_FILE)
    files[sample] = SAMPLE_RECORDS
    files[Path("tests", "jobs", f"test_{group}.py")] = _test_module(request)
    return files


def _group_yaml(request: NewGroup) -> str:
    first, *later = request.jobs
    if request.raw_prefix is not None:
        trigger = f"raw_prefix: {request.raw_prefix}  # an object created under this raw-zone prefix starts the group"
    else:
        trigger = f"schedule: {json.dumps(request.schedule)}  # an EventBridge schedule starts the group"
    text = GROUP_YAML.substitute(group=request.name, trigger=trigger, first=first, raw_input=request.raw_input_prefix)
    for job in later:
        text += AGGREGATE_YAML.substitute(group=request.name, job=job)
    return text


def _test_module(request: NewGroup) -> str:
    first, *later = request.jobs
    modules = "".join(f'{job}_job = script("{job}")\n' for job in request.jobs)
    tests = TEST_CONFORM.substitute(first=first)
    if later:
        agree = "".join(f"    assert {job}_job.RECORDS == {first}_job.RECORDS\n" for job in later)
        tests += TEST_AGREE.substitute(first=first, asserts=agree)
    for job in later:
        tests += TEST_AGGREGATE.substitute(job=job)
    counts = TEST_COUNTS_FIRST.substitute(first=first)
    counts += "".join(TEST_COUNTS_LATER.substitute(job=job) for job in later)
    return TEST_MODULE.substitute(group=request.name, modules=modules, tests=tests, counts=counts)


# --- templates ------------------------------------------------------------------------------------------
# Written as ruff format writes them, with every line short enough for 40-character group and job names:
# the scaffold's test formats and lints a group with the longest names.

GROUP_YAML = Template(
    """\
# Written by `etl-jobs new`; every field is described in jobs/README.md ("group.yaml reference").
# The first job conforms raw JSON lines, malformed records quarantined; the others aggregate its output.
description: the ${group} job group
${trigger}
jobs:
  - name: ${first}
    script: ${first}.py
    description: raw records (JSON lines) to typed parquet; malformed records quarantined and counted
    inputs:
      - {name: raw_records, zone: raw, prefix: ${raw_input}, format: json}
    outputs:
      - name: records
        zone: conformed
        prefix: ${group}/records/
        # One column per line needs no quotes; in a one-line map {...} write "decimal(10,2)" in quotes.
        columns:
          id: string
          category: string
          amount: decimal(10,2)
          recorded_at: timestamp
    arguments:
      --max_malformed_fraction: "0.5"
    expected_min_rows: {records: 1}
"""
)

AGGREGATE_YAML = Template(
    """\
  - name: ${job}
    script: ${job}.py
    description: records and amounts per day and category
    quarantine: false  # reads conformed records only: nothing here can be malformed
    inputs:
      - {name: records, zone: conformed, prefix: ${group}/records/}
    outputs:
      - name: ${job}
        zone: curated
        prefix: ${group}/${job}/
        partition_by: [record_date]
        partition_types: {record_date: date}
        columns:
          category: string
          records: bigint
          total_amount: decimal(20,2)
    expected_min_rows: {${job}: 1}
"""
)

CONFORM_SCRIPT = Template(
    '''\
"""Job ${job} of the group ${group}.

Raw records (JSON lines) to typed, conformed parquet. Records that are not JSON, miss a required field or
break a rule go to the quarantine with a reason, counted. Every run reads every delivery (the files under the
raw prefix), so a record a later delivery repeats or corrects is read more than once: the output keeps one
record per key, from the delivery that arrived last. Written by `etl-jobs new` as a starting point: replace
the schema, the key, the rules and the transform with the dataset's own and keep the shape.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as sf
from pyspark.sql.types import DecimalType, StringType, StructField, StructType, TimestampType

from lakejobs.args import Arg, JobArgs, job_args
from lakejobs.context import JobContext
from lakejobs.io import enforce_malformed_limit, latest_delivery, rebuild_dataset, split_malformed, write_quarantine

# The raw records as read, and what this job writes (the output's `columns` in group.yaml).
RECORDS = StructType(
    [
        StructField("id", StringType()),
        StructField("category", StringType()),
        StructField("amount", DecimalType(10, 2)),
        StructField("recorded_at", TimestampType()),
    ]
)
# What identifies a record across deliveries, and the column naming each raw row's file (its delivery).
KEYS = ("id",)
DELIVERY = "_delivery"

ARGS = job_args(
    Arg("input_raw_records"),
    Arg("output_records"),
    # A platform argument, declared again without a default: a run given no quarantine fails before reading.
    Arg("quarantine_path", help="malformed records, per dataset and run"),
    Arg("max_malformed_fraction", float, default=0.5, help="fail the run when more of the records are malformed"),
)


# --- transforms: DataFrame to DataFrame, nothing else --------------------------------------------------


def record_rules() -> dict[str, Column]:
    """Why a parsed record is still malformed: each reason with a condition that is true for a bad row."""
    return {"amount must not be negative": sf.col("amount") < 0}


def conform_records(records: DataFrame, *keep: str) -> DataFrame:
    """Trimmed identifiers, lower-case categories; `keep` columns pass through (the delivery)."""
    return records.select(
        sf.trim(sf.col("id")).alias("id"),
        sf.lower(sf.trim(sf.col("category"))).alias("category"),
        "amount",
        "recorded_at",
        *keep,
    )


# --- the flow: sources, transforms, sinks --------------------------------------------------------------


def main(context: JobContext, args: JobArgs) -> Mapping[str, Mapping[str, int]]:
    raw = context.read("raw_records", args["input_raw_records"], "json", RECORDS, source_column=DELIVERY)
    good, malformed = split_malformed(raw, required=("id", "recorded_at"), rules=record_rules())
    quarantined = write_quarantine(context, malformed, args["quarantine_path"], dataset="records")
    limit = args["max_malformed_fraction"]
    enforce_malformed_limit("records", quarantined, context.counts.read["raw_records"], limit)
    # Rebuilt whole from every raw file, one record per key: a rerun, or a delivery sent again, replaces the
    # conformed records and never adds copies of them.
    records = latest_delivery(conform_records(good, DELIVERY), KEYS, DELIVERY)
    rebuild_dataset(context, records, args["output_records"], dataset="records")
    return context.counts.as_dict()


if __name__ == "__main__":
    from lakejobs.context import run_in_glue

    run_in_glue(main, ARGS)
'''
)

AGGREGATE_SCRIPT = Template(
    '''\
"""Job ${job} of the group ${group}.

Conformed records to records and amounts per day and category, partitioned by day. Written by
`etl-jobs new` as a starting point: replace the schema and the transform with the dataset's own and keep
the shape.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as sf
from pyspark.sql.types import DecimalType, StringType, StructField, StructType, TimestampType

from lakejobs.args import Arg, JobArgs, job_args
from lakejobs.context import JobContext
from lakejobs.io import rebuild_dataset

# What ${first} writes. Each script is uploaded to Glue on its own and cannot import
# its sibling, so the schema is declared again here; the group's test checks that the two agree.
RECORDS = StructType(
    [
        StructField("id", StringType()),
        StructField("category", StringType()),
        StructField("amount", DecimalType(10, 2)),
        StructField("recorded_at", TimestampType()),
    ]
)

ARGS = job_args(
    Arg("input_records"),
    Arg("output_${job}"),
    Arg(
        "partition_by_${job}",
        tuple,
        help="the output's partition columns, as group.yaml declares them",
    ),
)


def daily_totals(records: DataFrame) -> DataFrame:
    """One row per day and category: how many records, and their total amount."""
    per_day = records.groupBy(sf.to_date("recorded_at").alias("record_date"), "category")
    return per_day.agg(sf.count(sf.lit(1)).alias("records"), sf.sum("amount").alias("total_amount"))


def main(context: JobContext, args: JobArgs) -> Mapping[str, Mapping[str, int]]:
    records = context.read("records", args["input_records"], "parquet", RECORDS)
    # An aggregate of every record is rebuilt whole: a day that lost its records is emptied, not left stale.
    rebuild_dataset(
        context,
        daily_totals(records),
        args["output_${job}"],
        dataset="${job}",
        partition_by=args["partition_by_${job}"],
    )
    return context.counts.as_dict()


if __name__ == "__main__":
    from lakejobs.context import run_in_glue

    run_in_glue(main, ARGS)
'''
)

SAMPLE_RECORDS = """\
{"id": "r001", "category": " Books ", "amount": 12.50, "recorded_at": "2024-03-01T08:15:00Z"}
{"id": "r002", "category": "books", "amount": 7.25, "recorded_at": "2024-03-01T09:30:00Z"}
{"id": "r003", "category": "Games", "amount": 30.00, "recorded_at": "2024-03-01T11:00:00Z"}
{"id": "r004", "category": "games", "amount": 19.99, "recorded_at": "2024-03-02T10:45:00Z"}
{"id": "r005", "category": "books", "amount": -3.00, "recorded_at": "2024-03-02T12:00:00Z"}
{"id": null, "category": "games", "amount": 5.00, "recorded_at": "2024-03-02T13:00:00Z"}
{"id": "r007", "category": "books", "amount":
"""

TEST_MODULE = Template(
    '''\
"""Tests of the job group ${group}.

Its transforms on small frames, and its jobs end to end on its sample data. Written by `etl-jobs new`.
tests/jobs/test_every_group.py checks the sample run of every group against group.yaml (catalog columns,
partition folders, manifests); this module checks what only this group knows: its rules and the counts
its sample data gives.
"""

from __future__ import annotations

import importlib.util
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from etl_jobs.local_runner import RunResult, lake_path, quarantine_path, run_job, run_sample
from etl_jobs.spec import load_group
from lakejobs.io import split_malformed

# Found from this file rather than from the installed package, so the test also runs in a copy.
ROOT = Path(__file__).resolve().parents[2]
GROUP = "${group}"


def script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{GROUP}_{name}", ROOT / "jobs" / GROUP / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


${modules}${tests}

@pytest.fixture(scope="module")
def lake(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[RunResult]]:
    out = tmp_path_factory.mktemp("lake")
    results = run_sample(
        GROUP,
        out,
        spark=spark,
        jobs_dir=ROOT / "jobs",
        sample_dir=ROOT / "sample-data",
        echo=lambda _line: None,
    )
    return out, results


def test_sample_run_counts(lake: tuple[Path, list[RunResult]]) -> None:
    _, results = lake
    counts = {result.job: result.counts for result in results}
${counts}

def test_a_delivery_sent_again_adds_no_rows(spark: Any, tmp_path: Path) -> None:
    out = tmp_path / "lake"
    first = run_sample(
        GROUP,
        out,
        spark=spark,
        jobs_dir=ROOT / "jobs",
        sample_dir=ROOT / "sample-data",
        echo=lambda _line: None,
    )
    group = load_group(ROOT / "jobs" / GROUP)
    conform = group.jobs[0]
    # The same delivery lands again under another name, one record corrected; every job runs again.
    (raw,) = [lake_path(out, loc) for loc in conform.inputs]
    (sample,) = sorted(raw.glob("*.json"))
    again = sample.read_text().replace('"amount": 12.50', '"amount": 13.50')
    (raw / f"again-{sample.name}").write_text(again)
    second = [
        run_job(
            GROUP,
            job.name,
            {loc.name: lake_path(out, loc) for loc in job.inputs},
            {loc.name: lake_path(out, loc) for loc in job.outputs},
            quarantine=quarantine_path(out, group, job),
            spark=spark,
            jobs_dir=ROOT / "jobs",
            echo=lambda _line: None,
        )
        for job in group.jobs
    ]
    # Twice the raw lines read, the same records written: one per id, from the delivery that came last.
    assert second[0].counts["read"] == {"raw_records": 2 * first[0].counts["read"]["raw_records"]}
    assert [r.counts["written"] for r in second] == [r.counts["written"] for r in first]
    (records,) = [lake_path(out, loc) for loc in conform.outputs]
    amounts = {r.id: r.amount for r in spark.read.parquet(str(records)).collect()}
    assert amounts["r001"] == Decimal("13.50")
'''
)

TEST_CONFORM = Template(
    """

def test_${first}_conforms_and_quarantines(spark: Any) -> None:
    at = datetime(2024, 3, 1, 8, 15)
    raw = spark.createDataFrame(
        [
            (" r1 ", " Books ", Decimal("12.50"), at),
            ("r2", "games", Decimal("-1.00"), at),
            (None, "games", Decimal("5.00"), at),
        ],
        ${first}_job.RECORDS,
    )
    rules = ${first}_job.record_rules()
    good, malformed = split_malformed(raw, required=("id", "recorded_at"), rules=rules)
    conformed = ${first}_job.conform_records(good).collect()
    assert [(r.id, r.category) for r in conformed] == [("r1", "books")]
    assert sorted(r.reason for r in malformed.collect()) == [
        "amount must not be negative",
        "missing required field(s): id",
    ]
"""
)

TEST_AGREE = Template(
    """

def test_every_later_job_reads_what_the_first_writes() -> None:
${asserts}"""
)

TEST_AGGREGATE = Template(
    """

def test_${job}_counts_and_sums_per_day_and_category(spark: Any) -> None:
    records = spark.createDataFrame(
        [
            ("r1", "books", Decimal("12.50"), datetime(2024, 3, 1, 8)),
            ("r2", "books", Decimal("7.25"), datetime(2024, 3, 1, 9)),
            ("r3", "games", Decimal("30.00"), datetime(2024, 3, 2, 9)),
        ],
        ${job}_job.RECORDS,
    )
    totals = ${job}_job.daily_totals(records).collect()
    rows = sorted((str(r.record_date), r.category, r.records, r.total_amount) for r in totals)
    assert rows == [
        ("2024-03-01", "books", 2, Decimal("19.75")),
        ("2024-03-02", "games", 1, Decimal("30.00")),
    ]
"""
)

TEST_COUNTS_FIRST = Template(
    """\
    # 7 sample lines: a negative amount, a record without id and a line that is not JSON are quarantined.
    assert counts["${first}"] == {
        "read": {"raw_records": 7},
        "written": {"records": 4},
        "quarantined": {"records": 3},
    }
"""
)

TEST_COUNTS_LATER = Template(
    """\
    # 4 conformed records on 3 (day, category) pairs.
    assert counts["${job}"] == {
        "read": {"records": 4},
        "written": {"${job}": 3},
        "quarantined": {},
    }
"""
)
