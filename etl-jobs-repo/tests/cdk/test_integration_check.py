"""The post-deploy integration check against moto: moto's Glue records runs but runs nothing, so each test
sets the run state (moto's state manager, or the run itself) and writes the job outputs the way a job would:
`RunningJobs` stands in for the jobs, writing an output's data and manifest (with the run id Glue passes the
run as `--JOB_RUN_ID`) when the check starts the run."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.glue.models import glue_backends
from moto.moto_api import state_manager

from datalake_config import load, names_for
from datalake_config.testing import EXAMPLE_CONFIG_PATH
from etl_jobs import integration_check
from etl_jobs.integration_check import IntegrationCheck, main
from etl_jobs.spec import discover
from lakejobs.context import JobContext
from lakejobs.io import MANIFEST_FILE, S3FileStore, rebuild_dataset, run_record_path, write_manifest

FIXTURES = Path(__file__).parent / "fixtures"
CONFIG = load(EXAMPLE_CONFIG_PATH)
NAMES = names_for(CONFIG, "dev")
REGION = CONFIG.env("dev").region
ORDERS = next(g for g in discover(FIXTURES / "jobs", "dev", CONFIG.environment_names) if g.name == "orders")
CONFORM = NAMES.glue_job_name("orders", "conform_orders")
TOTALS = NAMES.glue_job_name("orders", "daily_totals")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(variable, "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        clients = {name: boto3.client(name, region_name=REGION) for name in ("glue", "s3", "ssm")}
        for zone in CONFIG.zones:
            bucket = f"lake-{zone}"
            clients["s3"].create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
            clients["ssm"].put_parameter(Name=NAMES.bucket_name(zone), Value=bucket, Type="String")
        for job in (CONFORM, TOTALS):
            clients["glue"].create_job(
                Name=job,
                Role="arn:aws:iam::123456789012:role/job",
                Command={"Name": "glueetl", "ScriptLocation": "s3://x/y.py"},
            )
        yield clients
        state_manager.unset_transition("glue::job_run")


def write_output(s3: Any, zone: str, prefix: str, rows: int | None, run_id: str | None = None) -> None:
    """What a job run leaves under an output prefix: a data file and, unless `rows` is None, its manifest."""
    s3.put_object(Bucket=f"lake-{zone}", Key=f"{prefix}part-00000.parquet", Body=b"PAR1")
    if rows is not None:
        manifest = {"rows": rows} if run_id is None else {"rows": rows, "run_id": run_id}
        s3.put_object(Bucket=f"lake-{zone}", Key=f"{prefix}_manifest.json", Body=json.dumps(manifest).encode())


# What each job writes when it runs: (zone, prefix, rows in its manifest or None for no manifest).
Outputs = dict[str, list[tuple[str, str, int | None]]]
ALL_OUTPUTS: Outputs = {
    CONFORM: [("conformed", "orders/current/", 42)],
    TOTALS: [("curated", "orders/daily_totals/", 3)],
}


class RunningJobs:
    """moto's Glue client, whose runs write what `outputs` says their job writes, as that run (its JobRunId), and
    the run record `records` gives their job (its counts, under the job's --TempDir)."""

    def __init__(self, glue: Any, s3: Any, outputs: Outputs, records: dict[str, dict[str, Any]] | None = None) -> None:
        self.glue, self.s3, self.outputs, self.records = glue, s3, outputs, records or {}

    def start_job_run(self, **kwargs: Any) -> Any:
        response = self.glue.start_job_run(**kwargs)
        for zone, prefix, rows in self.outputs.get(kwargs["JobName"], []):
            write_output(self.s3, zone, prefix, rows, run_id=response["JobRunId"])
        if kwargs["JobName"] in self.records:
            temp_dir = self.glue.get_job(JobName=kwargs["JobName"])["Job"]["DefaultArguments"]["--TempDir"]
            bucket, _, key = run_record_path(temp_dir, response["JobRunId"]).removeprefix("s3://").partition("/")
            self.s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(self.records[kwargs["JobName"]]).encode())
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self.glue, name)


def checker(aws: dict[str, Any], outputs: Outputs | None = None, **kwargs: Any) -> IntegrationCheck:
    glue = RunningJobs(aws["glue"], aws["s3"], ALL_OUTPUTS if outputs is None else outputs)
    return IntegrationCheck(glue=glue, s3=aws["s3"], ssm=aws["ssm"], names=NAMES, **kwargs)


def latest_run(job: str) -> Any:
    return glue_backends[DEFAULT_ACCOUNT_ID][REGION].jobs[job].job_runs[-1]


def lines(results: list[Any]) -> list[str]:
    return [r.line() for r in results]


def test_all_jobs_succeed_with_outputs_and_rows(aws: dict[str, Any]) -> None:
    results = checker(aws).check_group(ORDERS)
    assert all(r.passed for r in results), lines(results)
    assert [r.name for r in results] == [
        "orders/conform_orders run",
        "orders/conform_orders duration",
        "orders/conform_orders output orders",
        "orders/conform_orders output orders rows",
        "orders/daily_totals run",
        "orders/daily_totals duration",
        "orders/daily_totals output totals",
        "orders/daily_totals output totals rows",
    ]
    # the jobs really were started, in order, one run each
    glue = aws["glue"]
    runs = [glue.get_job_runs(JobName=j)["JobRuns"] for j in (CONFORM, TOTALS)]
    assert [len(r) for r in runs] == [1, 1]
    assert results[3].detail == f"42 rows (at least 1), written by run {runs[0][0]['Id']}"
    assert results[7].detail == f"3 rows, written by run {runs[1][0]['Id']}"  # no expected_min_rows declared


def test_a_manifest_an_earlier_run_wrote_fails_naming_both_runs(aws: dict[str, Any]) -> None:
    """The run succeeded but wrote nothing: what is under the prefix is an earlier run's, however many rows."""
    write_output(aws["s3"], "conformed", "orders/current/", rows=42, run_id="jr_earlier")
    results = checker(aws, outputs={}).check_group(ORDERS)
    (started,) = aws["glue"].get_job_runs(JobName=CONFORM)["JobRuns"]
    failed = [(r.name, r.detail) for r in results if not r.passed]
    assert failed == [
        (
            "orders/conform_orders output orders rows",
            f"s3://lake-conformed/orders/current/_manifest.json was written by run jr_earlier, not by run "
            f"{started['Id']} that this check started: the run did not write this output",
        ),
        ("orders/daily_totals", "not run: orders/conform_orders failed"),
    ]
    # a manifest that names no run proves no more
    write_output(aws["s3"], "conformed", "orders/current/", rows=42)
    results = checker(aws, outputs={}).check_group(ORDERS)
    assert "was written by run (no run_id recorded), not by run jr_" in results[3].detail


def test_a_run_that_read_nothing_new_keeps_the_earlier_output_by_its_own_record(aws: dict[str, Any]) -> None:
    """After the triggered runs have read every delivery, a bookmarked job started by the check reads nothing: it
    writes no output (or an empty one), and its run record, under the job's --TempDir, is what says so."""
    glue = aws["glue"]
    for job in (CONFORM, TOTALS):
        glue.delete_job(JobName=job)
        glue.create_job(
            Name=job,
            Role="arn:aws:iam::123456789012:role/job",
            Command={"Name": "glueetl", "ScriptLocation": "s3://x/y.py"},
            DefaultArguments={"--TempDir": f"s3://lake-conformed/staging/orders/{job}/"},
        )
    write_output(aws["s3"], "conformed", "orders/current/", rows=42, run_id="jr_triggered")
    nothing = {"read": {"orders": 0}, "written": {}, "quarantined": {}}
    idle = RunningJobs(glue, aws["s3"], {TOTALS: [("curated", "orders/daily_totals/", 0)]}, {CONFORM: nothing})
    results = IntegrationCheck(glue=idle, s3=aws["s3"], ssm=aws["ssm"], names=NAMES).check_group(ORDERS)
    assert all(r.passed for r in results), lines(results)
    (started,) = glue.get_job_runs(JobName=CONFORM)["JobRuns"]
    assert results[3].detail == (
        f"run {started['Id']} read nothing new (its run record says 0 rows read); the manifest's 42 rows of run "
        "jr_triggered stand"
    )
    # a record that counts rows read does not excuse an output the run did not write
    busy = RunningJobs(glue, aws["s3"], {}, {CONFORM: {**nothing, "read": {"orders": 5}}})
    results = IntegrationCheck(glue=busy, s3=aws["s3"], ssm=aws["ssm"], names=NAMES).check_group(ORDERS)
    assert not results[3].passed and "was written by run jr_triggered" in results[3].detail


def test_failed_run_fails_and_stops_the_group(aws: dict[str, Any]) -> None:
    state_manager.set_transition("glue::job_run", {"progression": "manual", "times": 1000})

    def fail_the_run(_: float) -> None:
        latest_run(CONFORM).status = "FAILED"

    results = checker(aws, sleep=fail_the_run).check_group(ORDERS)
    assert [(r.name, r.passed) for r in results] == [
        ("orders/conform_orders run", False),
        ("orders/daily_totals", False),
    ]
    assert "ended FAILED" in results[0].detail
    assert "not run" in results[1].detail
    assert aws["glue"].get_job_runs(JobName=TOTALS)["JobRuns"] == []


def test_run_that_never_ends_times_out(aws: dict[str, Any]) -> None:
    state_manager.set_transition("glue::job_run", {"progression": "manual", "times": 1000})
    now = [0.0]

    def advance(seconds: float) -> None:
        now[0] += seconds

    results = checker(aws, timeout_seconds=60, poll_seconds=15, clock=lambda: now[0], sleep=advance).check_group(ORDERS)
    assert not results[0].passed
    assert "still" in results[0].detail and "after 60s" in results[0].detail
    assert now[0] == 60  # polled every 15 s until the deadline, no longer


def test_missing_output_fails(aws: dict[str, Any]) -> None:
    results = checker(aws, outputs={**ALL_OUTPUTS, TOTALS: []}).check_group(ORDERS)
    failed = [r for r in results if not r.passed]
    assert [r.name for r in failed] == ["orders/daily_totals output totals"]
    assert "no objects under s3://lake-curated/orders/daily_totals/" in failed[0].detail


def test_an_output_holding_only_markers_has_no_data(aws: dict[str, Any]) -> None:
    for marker in ("_SUCCESS", "_temporary/0/part-00000.parquet"):
        aws["s3"].put_object(Bucket="lake-curated", Key=f"orders/daily_totals/{marker}", Body=b"")
    results = checker(aws, outputs={**ALL_OUTPUTS, TOTALS: []}).check_group(ORDERS)
    assert "FAIL orders/daily_totals output totals: no objects under s3://lake-curated/orders/daily_totals/" in lines(
        results
    )


def test_too_few_rows_fail(aws: dict[str, Any]) -> None:
    results = checker(aws, outputs={**ALL_OUTPUTS, CONFORM: [("conformed", "orders/current/", 0)]}).check_group(ORDERS)
    failed = [(r.name, r.detail) for r in results if not r.passed]
    (started,) = aws["glue"].get_job_runs(JobName=CONFORM)["JobRuns"]
    assert failed == [
        ("orders/conform_orders output orders rows", f"0 rows (fewer than 1), written by run {started['Id']}"),
        ("orders/daily_totals", "not run: orders/conform_orders failed"),
    ]


def test_missing_manifest_fails(aws: dict[str, Any]) -> None:
    results = checker(aws, outputs={**ALL_OUTPUTS, CONFORM: [("conformed", "orders/current/", None)]}).check_group(
        ORDERS
    )
    failed = [r for r in results if not r.passed]
    assert failed[0].name == "orders/conform_orders output orders rows"
    assert "no manifest s3://lake-conformed/orders/current/_manifest.json" in failed[0].detail


def test_run_longer_than_the_job_timeout_fails(aws: dict[str, Any], tmp_path: Path) -> None:
    folder = tmp_path / "orders"
    folder.mkdir()
    for source in (FIXTURES / "jobs" / "orders").iterdir():
        (folder / source.name).write_text(source.read_text())
    spec = (folder / "group.yaml").read_text().replace("bookmarks: true", "bookmarks: true\n    timeout_minutes: 1")
    (folder / "group.yaml").write_text(spec)
    (group,) = discover(tmp_path, "dev", CONFIG.environment_names)
    results = checker(aws).check_group(group)
    duration = next(r for r in results if r.name == "orders/conform_orders duration")
    assert not duration.passed
    assert duration.detail == "123s exceeds the job timeout of 60s"  # moto reports every run as 123 s


def test_cli_exit_codes_and_one_line_per_check(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs: Outputs = dict(ALL_OUTPUTS)

    class Session:
        """The verify session's clients, with runs that write their job's outputs."""

        def client(self, service: str, endpoint_url: str | None = None) -> Any:
            return RunningJobs(aws["glue"], aws["s3"], outputs) if service == "glue" else aws[service]

    monkeypatch.setattr(integration_check, "verify_session", lambda **_: Session())
    argv = [
        "--config",
        str(EXAMPLE_CONFIG_PATH),
        "--env",
        "dev",
        "--jobs-dir",
        str(FIXTURES / "jobs"),
        "--group",
        "orders",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    *checks, closing = out
    assert len(checks) == 8 and all(line.startswith("PASS orders/") for line in checks)
    assert closing == "8 passed, 0 failed: job groups of dev (222222222222)"
    aws["s3"].delete_object(Bucket="lake-conformed", Key="orders/current/_manifest.json")
    outputs[CONFORM] = [("conformed", "orders/current/", None)]  # the next run writes data but no manifest
    assert main(argv) == 1
    assert any(
        line.startswith("FAIL orders/conform_orders output orders rows")
        for line in capsys.readouterr().out.splitlines()
    )
    assert main([*argv[:-1], "nosuchgroup"]) == 1
    assert "unknown nosuchgroup" in capsys.readouterr().out


def test_where_data_is_retained_the_check_reads_and_starts_no_job(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prod = names_for(CONFIG, "prod")
    assert CONFIG.env("prod").retain_data
    for job in ("conform_orders", "daily_totals"):
        aws["glue"].create_job(
            Name=prod.glue_job_name("orders", job),
            Role="arn:aws:iam::123456789012:role/job",
            Command={"Name": "glueetl", "ScriptLocation": "s3://x/y.py"},
        )
    for zone in CONFIG.zones:
        aws["ssm"].put_parameter(Name=prod.bucket_name(zone), Value=f"lake-{zone}", Type="String")
    argv = ["--config", str(EXAMPLE_CONFIG_PATH), "--env", "prod", "--jobs-dir", str(FIXTURES / "jobs")]
    argv += ["--group", "orders"]
    # a new environment: no run, no manifest yet, and that is not a failure
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "reading only, no job is started" in out and "no run yet" in out and "no manifest yet" in out
    assert all(
        aws["glue"].get_job_runs(JobName=prod.glue_job_name("orders", j))["JobRuns"] == []
        for j in ("conform_orders", "daily_totals")
    )
    # a last run that failed fails the check, still without starting anything
    state_manager.set_transition("glue::job_run", {"progression": "manual", "times": 1000})
    aws["glue"].start_job_run(JobName=prod.glue_job_name("orders", "conform_orders"))
    glue_backends[DEFAULT_ACCOUNT_ID][REGION].jobs[prod.glue_job_name("orders", "conform_orders")].job_runs[
        -1
    ].status = "FAILED"
    write_output(aws["s3"], "conformed", "orders/current/", rows=42)
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "FAIL orders/conform_orders last run" in out and "PASS orders/conform_orders output orders: 42 rows" in out
    assert len(aws["glue"].get_job_runs(JobName=prod.glue_job_name("orders", "conform_orders"))["JobRuns"]) == 1
    # the last run is the latest started, wherever GetJobRuns lists it (moto lists the oldest first): a later
    # run that succeeded after the failed one passes
    aws["glue"].start_job_run(JobName=prod.glue_job_name("orders", "conform_orders"))
    runs = glue_backends[DEFAULT_ACCOUNT_ID][REGION].jobs[prod.glue_job_name("orders", "conform_orders")].job_runs
    runs[-1].status = "SUCCEEDED"
    runs[-1].started_on = runs[0].started_on + datetime.timedelta(seconds=1)
    assert main(argv) == 0
    assert f"PASS orders/conform_orders last run: run {runs[-1].job_run_id} SUCCEEDED" in capsys.readouterr().out
    # a job that is not deployed fails
    aws["glue"].delete_job(JobName=prod.glue_job_name("orders", "daily_totals"))
    assert main(argv) == 1
    assert "FAIL orders/daily_totals deployed" in capsys.readouterr().out


def test_malformed_manifest_fails_naming_the_file(aws: dict[str, Any]) -> None:
    aws["s3"].put_object(Bucket="lake-conformed", Key=f"orders/current/{MANIFEST_FILE}", Body=b'{"rows": "many"}')
    result = checker(aws)._check_rows("rows", "lake-conformed", "orders/current/", CONFORM, "jr_1", 1)
    assert not result.passed
    assert result.detail.startswith(
        f"s3://lake-conformed/orders/current/{MANIFEST_FILE}: expected JSON with an integer"
    )


def test_the_check_reads_the_manifest_the_job_library_writes(aws: dict[str, Any], spark: Any, tmp_path: Path) -> None:
    """A sink's manifest, local or written through the S3 store, is what the check counts: one format, one name,
    and the run id the job's context carries (in Glue, the --JOB_RUN_ID of the run)."""
    context = JobContext.local("orders/conform_orders", run_id="jr_1", spark=spark)
    frame = spark.createDataFrame([("o1", 5), ("o2", 7), ("o3", 9)], "order_id string, amount int")
    local = tmp_path / "orders" / "current"
    rows = rebuild_dataset(context, frame, str(local), dataset="orders")
    # What a deployed job's output holds: the data files and the manifest under the output prefix.
    for file in sorted(p for p in local.rglob("*") if p.is_file()):
        aws["s3"].upload_file(str(file), "lake-conformed", f"orders/current/{file.relative_to(local).as_posix()}")
    check = checker(aws)
    assert check._check_rows("rows", "lake-conformed", "orders/current/", CONFORM, "jr_1", rows).passed
    assert not check._check_rows("rows", "lake-conformed", "orders/current/", CONFORM, "jr_1", rows + 1).passed
    assert not check._check_rows("rows", "lake-conformed", "orders/current/", CONFORM, "jr_2", rows).passed

    write_manifest(
        context,
        S3FileStore(aws["s3"]),
        "s3://lake-curated/orders/daily_totals/",
        dataset="totals",
        rows=2,
        mode="rebuild",
    )
    assert (
        check._check_rows("rows", "lake-curated", "orders/daily_totals/", CONFORM, "jr_1", 2).detail
        == "2 rows (at least 2), written by run jr_1"
    )
