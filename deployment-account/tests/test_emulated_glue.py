"""Emulated Glue: StartJobRun on a job created in the emulator runs its script from the emulator's S3."""

from __future__ import annotations

import io
import json
import re
import subprocess
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from lakeops.emulator.glue_runs import glue_argv, group_alive, job_id, wait_for_group
from lakeops.emulator.glue_runtime.awsglue.utils import GlueArgumentError, getResolvedOptions
from lakeops.emulator.process import Emulator

DEPLOYMENT, TARGET, REGION = "111111111111", "222222222222", "eu-west-1"
ROLE = "etl-job-role"
CODE, DATA = "glue-test-code", "glue-test-data"
# One minute of a job's Timeout lasts this many seconds in these tests, so that a timeout fires in a test.
MINUTE_S = 10.0
TERMINAL = {"SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "ERROR"}

Aws = Callable[[str], Any]


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with Emulator(
        tmp_path_factory.mktemp("glue-emulator"), default_account=DEPLOYMENT, region=REGION, glue_minute_s=MINUTE_S
    ) as emu:
        yield emu


@pytest.fixture(scope="module")
def aws(emulator: Emulator) -> Aws:
    """Clients acting in the target account (as a deployment would create the jobs there)."""
    client = emulator.account_clients(TARGET, "glue-tests")

    for bucket in (CODE, DATA):
        client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    create_role(client)
    return client


def create_role(client: Aws) -> None:
    """The jobs' role, with what the test scripts' Spark writes and boto3 calls may do (both are checked)."""
    client("iam").create_role(
        RoleName=ROLE,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )
    # What the test jobs may do: Spark's writes and reads and the scripts' boto3 calls are all checked against it.
    statements: list[dict[str, Any]] = [
        {"Action": ["s3:PutObject", "s3:DeleteObject"], "Resource": f"arn:aws:s3:::{DATA}/spark/out/*"},
        {
            "Action": "s3:GetObject",
            "Resource": [f"arn:aws:s3:::{DATA}/{k}" for k in ("echo/*", "spark/in/*", "spark/out/*")],
        },
        {"Action": "s3:PutObject", "Resource": [f"arn:aws:s3:::{DATA}/{k}" for k in ("echo/*", "jr_*", "spark/jr_*")]},
        {
            "Action": "s3:ListBucket",
            "Resource": f"arn:aws:s3:::{DATA}",
            "Condition": {"StringLike": {"s3:prefix": ["*/release", "spark/in/*", "spark/out/*"]}},
        },
        {
            "Action": "glue:GetTable",
            "Resource": [
                f"arn:aws:glue:{REGION}:{TARGET}:catalog",
                f"arn:aws:glue:{REGION}:{TARGET}:database/lake",
                f"arn:aws:glue:{REGION}:{TARGET}:table/lake/granted",
            ],
        },
    ]
    client("iam").put_role_policy(
        RoleName=ROLE,
        PolicyName="test-jobs",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **statement} for statement in statements]}
        ),
    )


def create_job(
    aws: Aws, name: str, script: str, *, arguments: dict[str, str] | None = None, timeout: int = 30, **job: Any
) -> str:
    """A glueetl job whose script is uploaded to the code bucket; returns the script's location."""
    location = f"s3://{CODE}/scripts/{name}.py"
    aws("s3").put_object(Bucket=CODE, Key=f"scripts/{name}.py", Body=script.encode())
    aws("glue").create_job(
        Name=name,
        Role=f"arn:aws:iam::{TARGET}:role/{ROLE}",
        Command={"Name": "glueetl", "ScriptLocation": location, "PythonVersion": "3"},
        DefaultArguments=arguments or {},
        GlueVersion="5.0",
        Timeout=timeout,
        **job,
    )
    return location


def wait_for_end(aws: Aws, name: str, run_id: str, limit_s: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        run: dict[str, Any] = aws("glue").get_job_run(JobName=name, RunId=run_id)["JobRun"]
        if run["JobRunState"] in TERMINAL:
            return run
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} of {name} did not end within {limit_s}s")


def wait_for_object(aws: Aws, key: str, limit_s: float = 60) -> bytes:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            body: bytes = aws("s3").get_object(Bucket=DATA, Key=key)["Body"].read()
            return body
        except ClientError:
            time.sleep(0.2)
    raise AssertionError(f"s3://{DATA}/{key} did not appear within {limit_s}s")


def pairs(argv: list[str]) -> dict[str, str]:
    return dict(zip(argv[1::2], argv[2::2], strict=True))


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie left for a reaper does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# --- argv and getResolvedOptions, without the emulator -------------------------------------------------


def test_glue_argv_puts_the_resolved_arguments_then_glue_s_own() -> None:
    argv = glue_argv(
        "/runs/x/script/job.py",
        {"--input": "s3://b/in/", "--enable-metrics": "", "--JOB_NAME": "ignored"},
        job_name="lake-job",
        job_id="j_1",
        run_id="jr_1",
        security_configuration="lake-etl",
    )
    assert argv == [
        "/runs/x/script/job.py",
        *("--input", "s3://b/in/", "--enable-metrics", "", "--job-bookmark-option", "job-bookmark-disable"),
        *("--JOB_ID", "j_1", "--JOB_RUN_ID", "jr_1", "--JOB_NAME", "lake-job", "--SECURITY_CONFIGURATION", "lake-etl"),
    ]
    enabled = {"--job-bookmark-option": "job-bookmark-enable"}
    bookmarked = glue_argv("s.py", enabled, job_name="j", job_id="i", run_id="r")
    assert pairs(bookmarked)["--job-bookmark-option"] == "job-bookmark-enable"
    assert re.fullmatch(r"j_[0-9a-f]{64}", job_id(TARGET, REGION, "lake-job"))
    assert job_id(TARGET, REGION, "lake-job") != job_id(TARGET, REGION, "other-job")


def test_get_resolved_options_parses_as_glue_s_library_does() -> None:
    argv = [
        "script.py",
        *("--JOB_ID", "j_1", "--JOB_RUN_ID", "jr_1", "--JOB_NAME", "lake-job", "--enable-metrics", ""),
        *("--TempDir", "s3://b/tmp/", "--output=s3://b/out/", "--unasked", "x"),
    ]
    resolved = getResolvedOptions(argv, ["JOB_NAME", "output", "TempDir"])
    assert resolved["JOB_NAME"] == "lake-job"
    assert resolved["output"] == "s3://b/out/"  # the --key=value form too
    assert resolved["JOB_RUN_ID"] == "jr_1"  # reserved identity parameters are always parsed
    assert resolved["RedshiftTempDir"] == resolved["TempDir"] == "s3://b/tmp/"
    assert resolved["job_bookmark_option"] == "job-bookmark-disable"  # the default when Glue passes none
    assert "unasked" not in resolved and "enable_metrics" not in resolved

    with pytest.raises(GlueArgumentError, match="required: --output"):
        getResolvedOptions(["script.py", "--JOB_NAME", "j"], ["JOB_NAME", "output"])
    with pytest.raises(RuntimeError, match="reserved"):
        getResolvedOptions(["script.py"], ["JOB_RUN_ID"])
    with pytest.raises(GlueArgumentError, match="invalid choice"):
        getResolvedOptions(["script.py", "--job-bookmark-option", "on"], [])
    continued = getResolvedOptions(["script.py", "--continuation-option", "continuation-enabled"], [])
    assert continued["job_bookmark_option"] == "job-bookmark-enable"
    with pytest.raises(RuntimeError, match="Missing option or value for --job-bookmark-to"):
        getResolvedOptions(["s.py", "--job-bookmark-option", "job-bookmark-pause", "--job-bookmark-from", "jr_1"], [])


def test_a_run_s_process_group_is_waited_for_until_its_last_process_has_ended() -> None:
    """Spark's JVM outlives the Python process that started it: the run (and its read watch) lasts until the
    whole group has ended; a process still alive after the grace period is killed."""
    lingering = subprocess.Popen(
        ["sh", "-c", "sleep 0.6 & sleep 30 & exit 0"], start_new_session=True, stdout=subprocess.DEVNULL
    )
    lingering.wait()
    assert group_alive(lingering.pid)  # the script has ended, its children have not

    started = time.monotonic()
    wait_for_group(lingering.pid, grace_s=1.5)

    assert 1.5 <= time.monotonic() - started < 10  # waited the grace period for `sleep 30`, then killed it
    assert not group_alive(lingering.pid)
    quick = subprocess.Popen(["sh", "-c", "sleep 0.3 & exit 0"], start_new_session=True)
    quick.wait()
    started = time.monotonic()
    wait_for_group(quick.pid, grace_s=30)
    assert 0.1 <= time.monotonic() - started < 5 and not group_alive(quick.pid)


# --- runs in the emulator --------------------------------------------------------------------------

ECHO = """
import json
import sys
from urllib.parse import urlparse

import boto3
from awsglue.utils import getResolvedOptions

from lakehelper import shout

args = getResolvedOptions(sys.argv, ["JOB_NAME", "input", "output"])
s3 = boto3.client("s3")
source, target = urlparse(args["input"]), urlparse(args["output"])
text = s3.get_object(Bucket=source.netloc, Key=source.path.lstrip("/"))["Body"].read().decode()
identity = boto3.client("sts").get_caller_identity()
report = {
    "argv": sys.argv,
    "resolved": args,
    "text": shout(text),
    "identity": {"Account": identity["Account"], "Arn": identity["Arn"]},
}
s3.put_object(Bucket=target.netloc, Key=target.path.lstrip("/"), Body=json.dumps(report))
"""


@pytest.mark.long
def test_a_run_executes_its_script_in_the_job_s_account_with_glue_s_arguments(aws: Aws) -> None:
    helper = io.BytesIO()
    with zipfile.ZipFile(helper, "w") as archive:
        archive.writestr("lakehelper/__init__.py", "def shout(text):\n    return text.upper()\n")
    aws("s3").put_object(Bucket=CODE, Key="lib/lakehelper.zip", Body=helper.getvalue())
    aws("s3").put_object(Bucket=DATA, Key="echo/in.txt", Body=b"hello from s3")
    location = create_job(
        aws,
        "echo",
        ECHO,
        arguments={
            "--input": f"s3://{DATA}/echo/missing.txt",
            "--output": f"s3://{DATA}/echo/out.json",
            "--TempDir": f"s3://{DATA}/staging/echo/",
            "--extra-py-files": f"s3://{CODE}/lib/lakehelper.zip",
            "--enable-metrics": "",
        },
    )

    run_id = aws("glue").start_job_run(JobName="echo", Arguments={"--input": f"s3://{DATA}/echo/in.txt"})["JobRunId"]
    run = wait_for_end(aws, "echo", run_id)

    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    assert "ErrorMessage" not in run
    assert run["StartedOn"] <= run["CompletedOn"]
    assert isinstance(run["ExecutionTime"], int) and run["ExecutionTime"] >= 1
    report = json.loads(aws("s3").get_object(Bucket=DATA, Key="echo/out.json")["Body"].read())
    assert report["text"] == "HELLO FROM S3"  # the run's --input won over the job's default; the zip was on the path
    assert report["identity"] == {
        "Account": TARGET,
        "Arn": f"arn:aws:sts::{TARGET}:assumed-role/{ROLE}/GlueJobRunnerSession",
    }
    argv = report["argv"]
    assert argv[0].endswith("/echo.py") and location.endswith("/echo.py")
    given = pairs(argv)
    assert given["--JOB_RUN_ID"] == run_id and given["--JOB_NAME"] == "echo"
    assert given["--JOB_ID"] == job_id(TARGET, REGION, "echo")
    assert given["--job-bookmark-option"] == "job-bookmark-disable"
    assert given["--TempDir"] == f"s3://{DATA}/staging/echo/"
    assert given["--enable-metrics"] == ""  # a flag's documented empty value, passed as an empty element
    assert report["resolved"]["JOB_RUN_ID"] == run_id
    assert report["resolved"]["RedshiftTempDir"] == f"s3://{DATA}/staging/echo/"
    listed = aws("glue").get_job_runs(JobName="echo")["JobRuns"]
    assert [(r["Id"], r["JobRunState"]) for r in listed] == [(run_id, "SUCCEEDED")]


CALLER = """
import sys

import boto3
from awsglue.utils import getResolvedOptions

args = getResolvedOptions(sys.argv, ["table", "output"])
boto3.client("glue").get_table(DatabaseName="lake", Name=args["table"])
bucket, _, key = args["output"].removeprefix("s3://").partition("/")
boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=b"done")
"""


@pytest.mark.long
def test_the_script_s_calls_are_authorized_by_the_job_role(aws: Aws) -> None:
    glue = aws("glue")
    glue.create_database(DatabaseInput={"Name": "lake"})
    for table in ("granted", "other"):
        glue.create_table(DatabaseName="lake", TableInput={"Name": table})
    create_job(aws, "caller", CALLER, arguments={"--table": "granted", "--output": f"s3://{DATA}/echo/caller.txt"})
    role = f"role arn:aws:iam::{TARGET}:role/{ROLE}"

    allowed = wait_for_end(aws, "caller", glue.start_job_run(JobName="caller")["JobRunId"])
    assert allowed["JobRunState"] == "SUCCEEDED", allowed.get("ErrorMessage")
    assert aws("s3").get_object(Bucket=DATA, Key="echo/caller.txt")["Body"].read() == b"done"

    other_table = glue.start_job_run(JobName="caller", Arguments={"--table": "other"})["JobRunId"]
    refused = wait_for_end(aws, "caller", other_table)
    assert refused["JobRunState"] == "FAILED"
    assert refused["ErrorMessage"] == (
        "botocore.errorfactory.AccessDeniedException: An error occurred (AccessDeniedException) when calling the "
        f"GetTable operation: {role} may not glue:GetTable on arn:aws:glue:{REGION}:{TARGET}:table/lake/other "
        "(implicit deny)"
    )

    elsewhere = glue.start_job_run(JobName="caller", Arguments={"--output": f"s3://{DATA}/forbidden/caller.txt"})
    refused = wait_for_end(aws, "caller", elsewhere["JobRunId"])
    assert refused["JobRunState"] == "FAILED"
    assert refused["ErrorMessage"] == (
        "botocore.errorfactory.AccessDenied: An error occurred (AccessDenied) when calling the PutObject operation: "
        f"{role} may not s3:PutObject on arn:aws:s3:::{DATA}/forbidden/caller.txt (implicit deny)"
    )
    assert "Contents" not in aws("s3").list_objects_v2(Bucket=DATA, Prefix="forbidden/")


@pytest.mark.parametrize(
    ("name", "script", "message"),
    [
        ("raises", "raise ValueError('no partition for 2024-13-01')\n", "ValueError: no partition for 2024-13-01"),
        (
            "lacks-argument",
            "import sys\nfrom awsglue.utils import getResolvedOptions\ngetResolvedOptions(sys.argv, ['output'])\n",
            "awsglue.utils.GlueArgumentError: the following arguments are required: --output",
        ),
        ("exits", "import sys\nsys.exit(3)\n", "SystemExit: 3"),
    ],
    ids=["raises", "lacks-argument", "exits"],
)
@pytest.mark.long
def test_a_failing_script_fails_the_run_with_its_error(aws: Aws, name: str, script: str, message: str) -> None:
    create_job(aws, name, f"print('starting')\n{script}")

    run_id = aws("glue").start_job_run(JobName=name)["JobRunId"]
    run = wait_for_end(aws, name, run_id)

    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"] == message
    assert "CompletedOn" in run


@pytest.mark.long
def test_a_run_without_its_script_fails_at_once(aws: Aws) -> None:
    create_job(aws, "scriptless", "print('never run')\n")
    aws("s3").delete_object(Bucket=CODE, Key="scripts/scriptless.py")

    run_id = aws("glue").start_job_run(JobName="scriptless")["JobRunId"]
    run = aws("glue").get_job_run(JobName="scriptless", RunId=run_id)["JobRun"]

    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"] == f"cannot fetch s3://{CODE}/scripts/scriptless.py: no such object in account {TARGET}"


BLOCKING = """
import json
import os
import subprocess
import sys
import time

import boto3
from awsglue.utils import getResolvedOptions

VERSION = "{version}"
args = getResolvedOptions(sys.argv, ["JOB_NAME", "bucket"])
s3 = boto3.client("s3")
helper = subprocess.Popen(["sleep", "600"])  # a process of the run's own (as Spark's JVM is)
started = {{"pid": os.getpid(), "helper": helper.pid, "version": VERSION}}
s3.put_object(Bucket=args["bucket"], Key=f"{{args['JOB_RUN_ID']}}/started", Body=json.dumps(started))
while "Contents" not in s3.list_objects_v2(Bucket=args["bucket"], Prefix=f"{{args['JOB_NAME']}}/release"):
    time.sleep(0.2)
helper.kill()
s3.put_object(Bucket=args["bucket"], Key=f"{{args['JOB_RUN_ID']}}/done", Body=VERSION.encode())
"""


@pytest.mark.long
def test_a_run_keeps_the_script_it_started_with_and_concurrent_runs_are_limited(aws: Aws) -> None:
    create_job(aws, "blocking", BLOCKING.format(version="A"), arguments={"--bucket": DATA})
    glue = aws("glue")

    first = glue.start_job_run(JobName="blocking")["JobRunId"]
    assert glue.get_job_run(JobName="blocking", RunId=first)["JobRun"]["JobRunState"] == "RUNNING"
    assert "CompletedOn" not in glue.get_job_run(JobName="blocking", RunId=first)["JobRun"]
    aws("s3").put_object(Bucket=CODE, Key="scripts/blocking.py", Body=BLOCKING.format(version="B").encode())
    with pytest.raises(ClientError) as refused:
        glue.start_job_run(JobName="blocking")  # MaxConcurrentRuns defaults to 1
    assert refused.value.response["Error"]["Code"] == "ConcurrentRunsExceededException"

    assert json.loads(wait_for_object(aws, f"{first}/started"))["version"] == "A"
    aws("s3").put_object(Bucket=DATA, Key="blocking/release", Body=b"")
    assert wait_for_end(aws, "blocking", first)["JobRunState"] == "SUCCEEDED"
    assert aws("s3").get_object(Bucket=DATA, Key=f"{first}/done")["Body"].read() == b"A"

    second = glue.start_job_run(JobName="blocking")["JobRunId"]  # the first has ended: allowed again
    assert wait_for_end(aws, "blocking", second)["JobRunState"] == "SUCCEEDED"
    assert aws("s3").get_object(Bucket=DATA, Key=f"{second}/done")["Body"].read() == b"B"


@pytest.mark.long
def test_max_concurrent_runs_allows_as_many_runs_as_it_says(aws: Aws) -> None:
    create_job(
        aws,
        "pair",
        BLOCKING.format(version="P"),
        arguments={"--bucket": DATA},
        ExecutionProperty={"MaxConcurrentRuns": 2},
    )
    glue = aws("glue")
    runs = [glue.start_job_run(JobName="pair")["JobRunId"] for _ in range(2)]
    with pytest.raises(ClientError, match="ConcurrentRunsExceededException"):
        glue.start_job_run(JobName="pair")
    aws("s3").put_object(Bucket=DATA, Key="pair/release", Body=b"")
    assert [wait_for_end(aws, "pair", run)["JobRunState"] for run in runs] == ["SUCCEEDED", "SUCCEEDED"]


@pytest.mark.long
def test_a_run_past_its_timeout_is_killed_with_its_processes(aws: Aws) -> None:
    create_job(aws, "sleeper", BLOCKING.format(version="T"), arguments={"--bucket": DATA}, timeout=1)

    run_id = aws("glue").start_job_run(JobName="sleeper")["JobRunId"]
    started = json.loads(wait_for_object(aws, f"{run_id}/started"))
    run = wait_for_end(aws, "sleeper", run_id)

    assert run["JobRunState"] == "TIMEOUT"
    assert "timed out after 1 minute" in run["ErrorMessage"]
    assert run["ExecutionTime"] >= MINUTE_S
    assert not alive(started["pid"]) and not alive(started["helper"])


@pytest.mark.long
def test_stopping_the_emulator_stops_its_runs(tmp_path: Path) -> None:
    with Emulator(tmp_path, default_account=TARGET, region=REGION) as emu:
        env = emu.client_env()
        session = boto3.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"]
        )

        def client(service: str) -> Any:
            return session.client(service, region_name=REGION, endpoint_url=emu.endpoint_url, verify=str(emu.cert))

        client("s3").create_bucket(Bucket=DATA, CreateBucketConfiguration={"LocationConstraint": REGION})
        client("s3").create_bucket(Bucket=CODE, CreateBucketConfiguration={"LocationConstraint": REGION})
        create_role(client)
        create_job(client, "left-running", BLOCKING.format(version="S"), arguments={"--bucket": DATA})
        run_id = client("glue").start_job_run(JobName="left-running")["JobRunId"]
        started = json.loads(wait_for_object(client, f"{run_id}/started"))
    assert not alive(started["pid"]) and not alive(started["helper"])


OUTLIVING = """
import os
import subprocess
import sys
from pathlib import Path

# The mirrored bucket's folder, as Spark finds it (spark-defaults.conf maps s3://<bucket> to it).
conf = (Path(os.environ["SPARK_CONF_DIR"]) / "spark-defaults.conf").read_text().splitlines()
folder = next(line.split()[1] for line in conf if ".mounttable.glue-test-data.linkFallback" in line)
secret = folder.removeprefix("file://") + "/outlive/secret.txt"
# A process of the run that reads after the script has ended, as Spark's JVM may in its shutdown.
subprocess.Popen([sys.executable, "-c", f"import time; time.sleep(0.5); open({secret!r}).read()"])
"""


@pytest.mark.long
def test_a_read_by_a_process_that_outlives_the_script_is_checked(aws: Aws) -> None:
    aws("s3").put_object(Bucket=DATA, Key="outlive/secret.txt", Body=b"not the job's")
    create_job(aws, "outliving", OUTLIVING, arguments={"--input": f"s3://{DATA}/outlive/"})

    run_id = aws("glue").start_job_run(JobName="outliving")["JobRunId"]
    run = wait_for_end(aws, "outliving", run_id)

    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"] == (
        f"AccessDenied: role arn:aws:iam::{TARGET}:role/{ROLE} may not s3:GetObject on "
        f"arn:aws:s3:::{DATA}/outlive/secret.txt: implicit deny"
    )


SPARK_JOB = """
import json
import sys

import boto3
from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

args = getResolvedOptions(sys.argv, ["JOB_NAME", "input", "output", "summaries"])
glue_context = GlueContext(SparkContext.getOrCreate())
job = Job(glue_context)
job.init(args["JOB_NAME"], args)
events = glue_context.create_dynamic_frame.from_options(
    connection_type="s3",
    connection_options={"paths": [args["input"]], "recurse": True},
    format="json",
    transformation_ctx="events",
)
frame = events.toDF()
rows = frame.count()
if rows:
    frame.write.mode("append").parquet(args["output"])
summary = {
    "rows": rows,
    "errors": events.errorsAsDynamicFrame().toDF().count(),
    "columns": sorted(frame.columns),
    "total": glue_context.spark_session.read.parquet(args["output"]).count(),
}
summary_key = f"spark/{args['JOB_RUN_ID']}.json"
boto3.client("s3").put_object(Bucket=args["summaries"], Key=summary_key, Body=json.dumps(summary))
job.commit()
"""


@pytest.mark.long
def test_a_spark_job_reads_dynamic_frames_past_its_bookmark_and_writes_to_s3(aws: Aws, emulator: Emulator) -> None:
    pytest.importorskip("pyspark")
    s3 = aws("s3")
    s3.put_object(
        Bucket=DATA, Key="spark/in/a.json", Body=b'{"id": 1, "name": "ada"}\nnot json\n{"id": 2, "name": "bo"}\n'
    )
    s3.put_object(Bucket=DATA, Key="spark/in/b.json", Body=b'{"id": 3, "name": "cy"}\n')
    create_job(
        aws,
        "spark-events",
        SPARK_JOB,
        arguments={
            "--input": f"s3://{DATA}/spark/in/",
            "--output": f"s3://{DATA}/spark/out/",
            "--summaries": DATA,
            "--job-bookmark-option": "job-bookmark-enable",
        },
    )

    def run_once() -> dict[str, Any]:
        run_id = aws("glue").start_job_run(JobName="spark-events")["JobRunId"]
        run = wait_for_end(aws, "spark-events", run_id, limit_s=300)
        assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
        summary: dict[str, Any] = json.loads(s3.get_object(Bucket=DATA, Key=f"spark/{run_id}.json")["Body"].read())
        return summary

    assert run_once() == {"rows": 3, "errors": 1, "columns": ["id", "name"], "total": 3}
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=DATA, Prefix="spark/out/")["Contents"]]
    assert any(k.endswith(".parquet") for k in keys) and "spark/out/_SUCCESS" in keys
    assert not [k for k in keys if k.endswith(".crc")]  # the local file system's checksums stay local

    s3.put_object(Bucket=DATA, Key="spark/in/late/c.json", Body=b'{"id": 4, "name": "di"}\n{"id": 5, "name": "ed"}\n')
    # Only the new file is read (the bookmark); the first run's output came back from S3 into this run's view.
    assert run_once() == {"rows": 2, "errors": 0, "columns": ["id", "name"], "total": 5}

    def refused_run(argument: str, url: str) -> dict[str, Any]:
        run_id = aws("glue").start_job_run(
            JobName="spark-events", Arguments={argument: url, "--job-bookmark-option": "job-bookmark-disable"}
        )["JobRunId"]
        run = wait_for_end(aws, "spark-events", run_id, limit_s=300)
        assert run["JobRunState"] == "FAILED"
        return run

    # A write the role does not allow fails the run, naming the action and the object, and is not written.
    refused = refused_run("--output", f"s3://{DATA}/spark/elsewhere/")
    assert refused["ErrorMessage"].startswith(
        f"AccessDenied: role arn:aws:iam::{TARGET}:role/{ROLE} "
        f"may not s3:PutObject on arn:aws:s3:::{DATA}/spark/elsewhere/"
    )
    assert not s3.list_objects_v2(Bucket=DATA, Prefix="spark/elsewhere/").get("Contents")
    # So does a read: Spark opened an object the role may not get, in a folder it may not list.
    s3.put_object(Bucket=DATA, Key="spark/secret/d.json", Body=b'{"id": 6, "name": "eve"}\n')
    refused = refused_run("--input", f"s3://{DATA}/spark/secret/")
    assert refused["ErrorMessage"] == (
        f"AccessDenied: role arn:aws:iam::{TARGET}:role/{ROLE} may not s3:GetObject on "
        f"arn:aws:s3:::{DATA}/spark/secret/d.json: implicit deny (and 1 more)"
    )
    run_dir = emulator.glue_workdir / "runs" / TARGET / REGION / "spark-events" / refused["Id"]
    reads = (run_dir / "reads.txt").read_text()
    assert {f"GET s3://{DATA}/spark/secret/d.json", f"LIST s3://{DATA}/spark/secret/"} <= set(reads.splitlines())
    bookmark = json.loads((emulator.glue_workdir / "bookmarks" / TARGET / REGION / "spark-events.json").read_text())
    assert sorted(bookmark["contexts"]["events"]["files"]) == [
        f"s3://{DATA}/spark/in/a.json",
        f"s3://{DATA}/spark/in/b.json",
        f"s3://{DATA}/spark/in/late/c.json",
    ]
