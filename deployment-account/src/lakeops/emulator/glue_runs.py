"""Glue job runs that run: `StartJobRun` on a job created in the emulator executes its script.

moto records a run and executes nothing; its state advances by moto's state manager. Here `StartJobRun`
(patched on moto's job model, so every caller of the backend gets it, not only the HTTP API):
1. refuses a run beyond the job's `ExecutionProperty.MaxConcurrentRuns` (Glue's default: 1) with
   `ConcurrentRunsExceededException`, as Glue does when run queuing is off (queuing is not emulated);
2. fetches the script (`Command.ScriptLocation`, or a `--scriptLocation` argument) and each
   `--extra-py-files` entry (comma-separated `s3://` URLs: `.py` files, or archives put on the path as
   they are) from the emulator's own S3 in the job's account, before it answers: a run uses the bytes that
   were in S3 when it started;
3. runs the script in a child process of the "Glue runtime" interpreter (`GlueRuntime.python`: the
   runtime, not the emulator, brings pyspark), with the `awsglue` stand-in of `glue_runtime/` first on
   its path, the extra Python files after it, `sys.argv` as Glue builds it (`glue_argv`), and the
   credentials of the job's role: AssumeRole of `Role` in the job's account (session
   `GlueJobRunnerSession`), so every call the job makes acts in that account, through `AWS_ENDPOINT_URL`
   and the emulator's CA bundle; Spark's `s3://` is the emulator's S3 through `glue_mirror`;
4. answers at once with the run `RUNNING`; when the process ends, Spark's writes go back to S3 and only
   then does `GetJobRun`/`GetJobRuns` report `SUCCEEDED`, `FAILED` (`ErrorMessage`: the exception as the
   traceback's last line shows it) or `TIMEOUT` (the run's or the job's `Timeout` in minutes; the whole
   process group is killed), with `StartedOn`, `CompletedOn` and `ExecutionTime`.

Each run keeps its files under `<workdir>/runs/<account>/<region>/<job>/<run id>/`: the script and Python
files it ran, `output.log` and `error.log` (Glue's output and error streams), its Spark configuration, the
reads of its Spark (`reads.txt`, see below) and the calls its role was refused (`denied-calls.log`).
Bookmarks are kept per job name under `<workdir>/bookmarks/<account>/<region>/` (see
`glue_runtime/awsglue/job.py`).

Spark's writes are checked against the job role's policies before they reach S3 (`glue_permissions`): a write
the role may not make fails the run with AccessDenied naming the action and the object. So are its reads, seen
by an inotify watch on the mirror (`read_watch`): each object opened needs s3:GetObject, and each folder listed
s3:ListBucket with the folder as `s3:prefix`; the run's `reads.txt` lists both. A refused read of what was in
S3 before the run fails it and nothing is written back; a refused read of what the run wrote itself counts only
when its writes were allowed. The watch lasts until every process of the run has ended, not only its Python
process: Spark's JVM outlives the script that started it by a fraction of a second. inotify cannot tell
processes apart, so any other process reading the run's mirror meanwhile counts as the run (a `find` or
`grep -r` over the emulator's workdir while a run is going makes it list every folder). Where inotify cannot
be used (not Linux), reads go unchecked and the run's `reads-not-checked.txt` says why. The job's own calls
(boto3, with the run's credentials) are authorized by the same policies as they are made (`run_calls`): a call
the role may not make is answered with AccessDenied, as AWS answers it, and kept in the run's
`denied-calls.log`.

Not emulated: the StopJobRun API (a run is stopped only by `stop`, which a Step Functions `.sync` task whose
execution stops calls), retries (`MaxRetries`), run queuing, workers and capacity, continuous logging to
CloudWatch Logs, Python modules from `--additional-python-modules`. Until `configure` is called (the server
does it at start) moto's own behaviour stays: the run is recorded and nothing runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from moto.core.utils import utcnow
from moto.glue.exceptions import ConcurrentRunsExceededException
from moto.glue.models import FakeJob, FakeJobRun

from lakeops.emulator import glue_permissions, read_watch, run_calls
from lakeops.emulator.glue_mirror import S3Mirror, buckets_named
from lakeops.emulator.read_watch import Reads, ReadWatch

RUNTIME_DIR = Path(__file__).parent / "glue_runtime"
LAUNCHER = RUNTIME_DIR / "launch.py"
# Read by the stand-in in the child (glue_runtime/awsglue/job.py and launch.py).
BOOKMARK_DIR_ENV = "LAKEOPS_GLUE_BOOKMARK_DIR"
ERROR_FILE_ENV = "LAKEOPS_GLUE_ERROR_FILE"

ACTIVE_STATES = frozenset({"STARTING", "RUNNING", "STOPPING"})
# Glue's default Timeout of a Spark job, in minutes.
DEFAULT_TIMEOUT_MINUTES = 2880
SESSION_NAME = "GlueJobRunnerSession"
# How long the run's other processes may outlive its Python process before they are killed: Spark's JVM ends
# after the driver script (it notices the gateway close, then runs its shutdown hooks), in well under a second.
GROUP_EXIT_GRACE_S = 30.0
# Arguments naming code that Glue fetches for the run rather than data the job reads: not mirrored for Spark.
CODE_ARGUMENTS = frozenset(
    {"--scriptLocation", "--extra-py-files", "--extra-jars", "--extra-files", "--additional-python-modules"}
)
# Cluster settings of Glue that matter locally; the rest is local Spark's (loopback only, no UI).
SPARK_DEFAULTS = {
    "spark.master": "local[2]",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    # Sample-sized data; changes how many files a write makes, not what they hold.
    "spark.sql.shuffle.partitions": "4",
    # A run's JVM lives seconds: the quick compiler alone starts sooner than both tiers and changes no result
    # (one job on its sample data, a fresh process each: 6.8 s against 7.8 s, median of 3; BENCHMARKS.md).
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1",
}


@dataclass(frozen=True)
class GlueRuntime:
    """What runs need: how the child reaches the emulator, where runs keep files, which Python runs them."""

    endpoint_url: str
    workdir: Path
    python: str
    ca_bundle: str | None = None
    # How long one minute of a job's Timeout lasts here: 60, except where a test needs a timeout to fire.
    minute_s: float = 60.0


class RunError(Exception):
    """The emulator could not start the job; the run fails with this message."""


_runtime: GlueRuntime | None = None
_start_lock = threading.Lock()
_processes: dict[str, subprocess.Popen[bytes]] = {}
_original_start: Any = None


def configure(runtime: GlueRuntime | None) -> None:
    """Run jobs with `runtime` from now on (None: back to moto's runs that run nothing)."""
    global _runtime
    _runtime = runtime


def apply() -> None:
    global _original_start
    if _original_start is None:
        job: Any = FakeJob
        _original_start = job.start_job_run
        job.start_job_run = _start_job_run
        run_calls.apply()


def stop_all() -> None:
    """Kill every run still going (the emulator is stopping); their runs never report an end."""
    for process in list(_processes.values()):
        _kill(process)


def stop(run: Any) -> None:
    """Stop a run that is still going, as BatchStopJobRun does: its process group is killed and it ends STOPPED.

    Used by `step_functions` when the execution of a `.sync` task ends before the run: Step Functions stops the
    job it waits for (the reason the `.sync` pattern's policy includes glue:BatchStopJobRun).
    """
    if not isinstance(run, EmulatedJobRun) or run.status not in ACTIVE_STATES:
        return
    run.stop_requested = True
    process = _processes.get(run.job_run_id)
    if process is not None:
        _kill(process)


class EmulatedJobRun(FakeJobRun):
    """A run whose state is its process's, not moto's state manager's."""

    def __init__(self, *, glue_version: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._state = "RUNNING"
        self._completed: datetime | None = None
        self._began = time.monotonic()
        self.glue_version = glue_version
        self.error_message: str | None = None
        self.execution_seconds = 0
        self.stop_requested = False

    @property
    def status(self) -> str:
        return self._state

    @status.setter
    def status(self, value: str) -> None:
        self._state = value

    def advance(self) -> None:
        """moto moves its runs on at every read; this one moves when its process ends."""

    def finish(self, state: str, message: str | None) -> None:
        self.error_message = message
        self.execution_seconds = math.ceil(time.monotonic() - self._began)
        self._completed = self.modified_on = utcnow()
        self._state = state  # last: a reader that sees the end state sees the rest of it

    def as_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = super().as_dict()
        answer["GlueVersion"] = self.glue_version
        answer["LastModifiedOn"] = self.modified_on
        answer["ExecutionTime"] = self.execution_seconds
        answer.pop("CompletedOn", None)
        if self._completed is not None:
            answer["CompletedOn"] = self._completed
        if self.error_message:
            answer["ErrorMessage"] = self.error_message
        return answer


def glue_argv(
    script: str,
    arguments: Mapping[str, str],
    *,
    job_name: str,
    job_id: str,
    run_id: str,
    security_configuration: str | None = None,
) -> list[str]:
    """The `sys.argv` Glue gives a job's script: the script's local path, then `--key value` pairs.

    The pairs are the run's resolved arguments (the job's DefaultArguments, the run's Arguments over them,
    the job's NonOverridableArguments over both: developer guide, "Using job parameters in AWS Glue jobs"),
    then Glue's own: `--JOB_ID` (`j_` and 64 hex digits, one per job), `--JOB_RUN_ID`, `--JOB_NAME`,
    `--SECURITY_CONFIGURATION` when the run has one (the reserved identity parameters of the awsglue
    library's `getResolvedOptions`), and `--job-bookmark-option job-bookmark-disable` unless the arguments
    set it (the value `getResolvedOptions` assumes when it is absent). `--TempDir` and the other special
    parameters pass as the arguments give them; Glue adds no TempDir to a job created through the API.

    Flags: a special parameter that only switches something on (`--enable-metrics`) must still carry a
    value in a job definition, and the documented value is the empty string (AWS Knowledge Center,
    "cloudformation-glue-special-parameters"). The documentation describes arguments only as name-value
    pairs that reach the script in `sys.argv`; whether an empty value arrives as an empty element or not
    at all is not written anywhere. This emulates the literal pair, `["--enable-metrics", ""]`: the map
    the API stores, turned into argv by one rule that needs no list of which parameters are flags. A
    script must cope with both forms: `getResolvedOptions` (argparse `parse_known_args`) ignores either,
    and lakejobs' argument parser reads both as "".
    """
    own = {
        "--JOB_ID": job_id,
        "--JOB_RUN_ID": run_id,
        "--JOB_NAME": job_name,
        **({"--SECURITY_CONFIGURATION": security_configuration} if security_configuration else {}),
    }
    resolved = {key: value for key, value in arguments.items() if key not in own}
    resolved.setdefault("--job-bookmark-option", "job-bookmark-disable")
    argv = [script]
    for key, value in [*resolved.items(), *own.items()]:
        argv += [key, value]
    return argv


def job_id(account: str, region: str, name: str) -> str:
    """A stable Glue-shaped job id (`j_` and 64 hex digits) for the job `name` of an account and region."""
    return "j_" + hashlib.sha256(f"{account}:{region}:{name}".encode()).hexdigest()


@dataclass(frozen=True)
class _Plan:
    account: str
    region: str
    role: str
    run_dir: Path
    script: Path
    python_path: tuple[Path, ...]
    argv: tuple[str, ...]
    data_buckets: frozenset[str]
    timeout_minutes: int


def _start_job_run(
    self: Any,
    allocated_capacity: int | None,
    max_capacity: float | None,
    timeout: int | None,
    worker_type: str | None,
    security_configuration: str | None,
    number_of_workers: int | None,
    notification_property: dict[str, int] | None,
    previous_run_id: str | None,
    arguments: dict[str, str] | None,
) -> str:
    runtime = _runtime
    if runtime is None:
        started: str = _original_start(
            self,
            allocated_capacity=allocated_capacity,
            max_capacity=max_capacity,
            timeout=timeout,
            worker_type=worker_type,
            security_configuration=security_configuration,
            number_of_workers=number_of_workers,
            notification_property=notification_property,
            previous_run_id=previous_run_id,
            arguments=arguments,
        )
        return started
    resolved = {**self.default_arguments, **(arguments or {}), **(self.non_overridable_arguments or {})}
    with _start_lock:
        active = sum(1 for run in self.job_runs if run.status in ACTIVE_STATES)
        if active >= int(self.execution_property.get("MaxConcurrentRuns", 1)):
            raise ConcurrentRunsExceededException(f"Concurrent runs exceeded for {self.name}")
        run = EmulatedJobRun(
            glue_version=self.glue_version,
            job_name=self.name,
            arguments=resolved,
            allocated_capacity=allocated_capacity or self.allocated_capacity,
            max_capacity=max_capacity or self.max_capacity,
            timeout=timeout or self.timeout,
            worker_type=worker_type or self.worker_type,
            security_configuration=security_configuration or self.security_configuration,
            number_of_workers=number_of_workers or self.number_of_workers,
            notification_property=notification_property or self.notification_property,
            # moto's FakeJobRun names its previous-run parameter `job_run_id`: it keeps it as PreviousRunId
            # and always draws the new run's own id (StartJobRun's JobRunId is the run to retry, not an id).
            job_run_id=previous_run_id,
        )
        self.job_runs.append(run)
    try:
        plan = _prepare(self, run, resolved, runtime)
    except RunError as exc:
        run.finish("FAILED", str(exc))
        return str(run.job_run_id)
    except Exception as exc:  # the emulator's own failure: this run fails with the reason, the server goes on
        run.finish("FAILED", f"emulated Glue could not start the job: {exc}")
        return str(run.job_run_id)
    name = f"glue-run-{run.job_run_id[:12]}"
    threading.Thread(target=_execute, args=(run, plan, runtime), name=name, daemon=True).start()
    return str(run.job_run_id)


def _prepare(job: Any, run: EmulatedJobRun, arguments: Mapping[str, str], runtime: GlueRuntime) -> _Plan:
    """Everything a run needs from S3 and the job definition, fetched now (before StartJobRun answers)."""
    account, region = job.backend.account_id, job.backend.region_name
    run_dir = runtime.workdir / "runs" / account / region / _safe(job.name) / run.job_run_id
    script_url = arguments.get("--scriptLocation") or (job.command or {}).get("ScriptLocation")
    if not script_url:
        raise RunError(f"job {job.name} has no Command.ScriptLocation")
    script = _fetch(account, region, script_url, run_dir / "script")
    python_path: list[Path] = []
    extra = [url.strip() for url in arguments.get("--extra-py-files", "").split(",") if url.strip()]
    for index, url in enumerate(extra):
        local = _fetch(account, region, url, run_dir / "py-files" / str(index))
        # A module file is imported from its folder; an archive (zip, wheel, egg) is itself a path entry.
        python_path.append(local.parent if local.suffix == ".py" else local)
    return _Plan(
        account=account,
        region=region,
        role=job.role,
        run_dir=run_dir,
        script=script,
        python_path=tuple(python_path),
        argv=tuple(
            glue_argv(
                str(script),
                arguments,
                job_name=job.name,
                job_id=job_id(account, region, job.name),
                run_id=run.job_run_id,
                security_configuration=run.security_configuration or None,
            )
        ),
        data_buckets=frozenset(buckets_named(v for k, v in arguments.items() if k not in CODE_ARGUMENTS)),
        timeout_minutes=int(run.timeout or DEFAULT_TIMEOUT_MINUTES),
    )


def _fetch(account: str, region: str, url: str, folder: Path) -> Path:
    """The object at `url` in the account's S3, as a file in `folder` named like the key's last part."""
    from moto.s3.exceptions import MissingBucket
    from moto.s3.models import FakeKey, s3_backends
    from moto.utilities.utils import get_partition

    if not url.startswith("s3://") or "/" not in url[len("s3://") :]:
        raise RunError(f"cannot fetch {url!r}: not an s3://bucket/key URL")
    bucket, _, key = url[len("s3://") :].partition("/")
    try:
        found = s3_backends[account][get_partition(region)].get_object(bucket, key)
    except MissingBucket:
        found = None
    if not isinstance(found, FakeKey):
        raise RunError(f"cannot fetch {url}: no such object in account {account}")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (key.rsplit("/", 1)[-1] or "script.py")
    path.write_bytes(found.value)
    return path


def _execute(run: EmulatedJobRun, plan: _Plan, runtime: GlueRuntime) -> None:
    """The run's thread: mirror the data, run the process to its end or timeout, check what it read, write back,
    then report."""
    mirror = S3Mirror(plan.run_dir / "s3", account=plan.account, region=plan.region)
    state: str
    message: str | None
    reads: Reads | None = None
    try:
        mirror.download(plan.data_buckets)
        watch = _watch_reads(mirror, plan)
        try:
            state, message = _run_process(run, plan, runtime, mirror)
        finally:
            reads = watch.stop() if watch is not None else None
    except Exception as exc:  # the emulator's own failure: the run fails with the reason, the server goes on
        state, message = "FAILED", f"emulated Glue could not run the job: {exc}"
    # Reads of what was in S3 before the run come first: on Glue a refused read fails the job before it writes
    # what it read. Reads of what the run wrote itself happen after those writes, so they count only when every
    # write was allowed (a refused write fails the job before it could read the object back).
    try:
        inputs, own_outputs = _refused_reads(plan, mirror, reads) if reads is not None else ([], [])
    except Exception as exc:  # the role's policies could not be read: nothing the run did can be shown allowed
        inputs, own_outputs = [f"any read (its policies could not be evaluated: {exc})"], []
    if inputs:
        state, message = "FAILED", _access_denied(plan, inputs)
    else:
        try:
            synced = mirror.upload_changes(refuse=_role_refusals(plan))
        except Exception as exc:  # what Spark wrote did not reach S3: the run cannot count as succeeded
            if state == "SUCCEEDED":
                state, message = "FAILED", f"emulated Glue could not write Spark's output to S3: {exc}"
        else:
            # On Glue the write itself fails with S3's AccessDenied and the job with it.
            if synced.denied or own_outputs:
                state, message = "FAILED", _access_denied(plan, synced.denied or own_outputs)
    shutil.rmtree(mirror.root, ignore_errors=True)
    run.finish(state, message)


def _watch_reads(mirror: S3Mirror, plan: _Plan) -> ReadWatch | None:
    """A watch on the mirror for the run's reads; None (and why, in the run's `reads-not-checked.txt`) where
    inotify cannot be used, on a machine that is not Linux."""
    why = read_watch.available()
    watch = ReadWatch(mirror.root) if why is None else None
    if watch is not None:
        try:
            watch.start()
        except (OSError, RuntimeError) as exc:
            why, watch = str(exc), None
    if why is not None:
        (plan.run_dir / "reads-not-checked.txt").write_text(f"{why}\n")
    return watch


def _refused_reads(plan: _Plan, mirror: S3Mirror, reads: Reads) -> tuple[list[str], list[str]]:
    """Spark's reads of this run (objects opened, folders listed) that the job role may not make: (of what was
    in S3 when the run started, of what the run wrote itself)."""
    from moto.utilities.utils import get_partition

    if not reads.complete:
        (plan.run_dir / "reads-not-checked.txt").write_text("".join(f"{gap}\n" for gap in reads.gaps))
    gets = sorted(url for url in (mirror.url_of(path) for path in reads.files) if url)
    listed = sorted(url for url in (mirror.url_of(path, folder=True) for path in reads.folders) if url)
    seen = [f"GET {url}\n" for url in gets] + [f"LIST {url}\n" for url in listed]
    (plan.run_dir / "reads.txt").write_text("".join(seen))
    partition = get_partition(plan.region)
    statements = glue_permissions.role_statements(plan.account, partition, plan.role)
    inputs: list[str] = []
    own_outputs: list[str] = []
    for url, why in glue_permissions.denied_reads(statements, partition, gets, listed).items():
        (inputs if mirror.mirrored(url) else own_outputs).append(why)
    return inputs, own_outputs


def _access_denied(plan: _Plan, refusals: list[str]) -> str:
    more = f" (and {len(refusals) - 1} more)" if len(refusals) > 1 else ""
    return f"AccessDenied: role {plan.role} may not {refusals[0]}{more}"


def _run_process(run: EmulatedJobRun, plan: _Plan, runtime: GlueRuntime, mirror: S3Mirror) -> tuple[str, str | None]:
    work = plan.run_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    conf_dir = plan.run_dir / "spark-conf"
    conf_dir.mkdir(parents=True, exist_ok=True)
    conf = {**SPARK_DEFAULTS, **mirror.spark_conf()}
    (conf_dir / "spark-defaults.conf").write_text("".join(f"{key} {value}\n" for key, value in conf.items()))
    env = _child_env(plan, runtime, conf_dir)
    access_key = env["AWS_ACCESS_KEY_ID"]
    session = run_calls.RunSession(role_arn=_role_arn(plan), run_id=run.job_run_id)
    run_calls.register(access_key, session)
    try:
        return _wait_for_process(run, plan, runtime, env, work)
    finally:
        run_calls.unregister(access_key)
        if session.denied:
            (plan.run_dir / "denied-calls.log").write_text("".join(f"{why}\n" for why in session.denied))


def _wait_for_process(
    run: EmulatedJobRun, plan: _Plan, runtime: GlueRuntime, env: dict[str, str], work: Path
) -> tuple[str, str | None]:
    timeout_s = plan.timeout_minutes * runtime.minute_s
    if run.stop_requested:
        return "STOPPED", None
    with (plan.run_dir / "output.log").open("wb") as out, (plan.run_dir / "error.log").open("wb") as err:
        process = subprocess.Popen(
            [runtime.python, str(LAUNCHER), *plan.argv],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own process group: a timeout kills Spark's JVM and workers too
        )
        _processes[run.job_run_id] = process
        if run.stop_requested:  # stopped while the process was being started: `stop` could not see it
            _kill(process)
        try:
            code = process.wait(timeout=timeout_s)
            # The run ends when all of it has: Spark's JVM outlives the Python process that started it, and what
            # it does meanwhile (its shutdown) belongs to the run and must reach the read watch before it stops.
            wait_for_group(process.pid, GROUP_EXIT_GRACE_S)
        except subprocess.TimeoutExpired:
            _kill(process)
            return "TIMEOUT", f"Job run timed out after {plan.timeout_minutes} minute(s), the run's Timeout"
        finally:
            _processes.pop(run.job_run_id, None)
    if run.stop_requested:
        return "STOPPED", None
    if code == 0:
        return "SUCCEEDED", None
    return "FAILED", _error_message(plan.run_dir, code)


def _child_env(plan: _Plan, runtime: GlueRuntime, conf_dir: Path) -> dict[str, str]:
    """The job's environment: the emulator's own AWS, Python and Spark settings replaced by the run's."""
    credentials = _role_credentials(plan)
    env = {key: value for key, value in os.environ.items() if not _replaced(key)}
    no_file = str(plan.run_dir / "no-aws-config")  # keeps ~/.aws profiles (other endpoints, keys) out of the job
    env.update(
        {
            "AWS_ENDPOINT_URL": runtime.endpoint_url,
            "AWS_ACCESS_KEY_ID": credentials.access_key_id,
            "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key,
            "AWS_SESSION_TOKEN": credentials.session_token,
            "AWS_DEFAULT_REGION": plan.region,
            "AWS_REGION": plan.region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": no_file,
            "AWS_SHARED_CREDENTIALS_FILE": no_file,
            "PYTHONPATH": os.pathsep.join([str(RUNTIME_DIR), *map(str, plan.python_path)]),
            "PYTHONUNBUFFERED": "1",
            # Bytecode of the stand-in and the job's code in the emulator's folder, not in the installed package.
            "PYTHONPYCACHEPREFIX": str(runtime.workdir / "pycache"),
            "PYSPARK_PYTHON": runtime.python,
            "SPARK_CONF_DIR": str(conf_dir),
            "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
            "TZ": "UTC",
            BOOKMARK_DIR_ENV: str(runtime.workdir / "bookmarks" / plan.account / plan.region),
            ERROR_FILE_ENV: str(plan.run_dir / "error-message.txt"),
        }
    )
    if runtime.ca_bundle:
        env["AWS_CA_BUNDLE"] = runtime.ca_bundle
    return env


def _replaced(key: str) -> bool:
    return key.startswith(("AWS_", "MOTO_", "PYTHON", "PYSPARK_", "LAKEOPS_GLUE_")) or key in {
        "SPARK_CONF_DIR",
        "VIRTUAL_ENV",
        "TEST_SERVER_MODE",
    }


def _role_refusals(plan: _Plan) -> Callable[[list[str], list[str]], dict[str, str]]:
    """Spark's writes of this run checked against the job role's policies (`glue_permissions`)."""
    from moto.utilities.utils import get_partition

    partition = get_partition(plan.region)
    statements = glue_permissions.role_statements(plan.account, partition, plan.role)
    return lambda puts, deletes: glue_permissions.denied_writes(statements, partition, puts, deletes)


def _role_credentials(plan: _Plan) -> Any:
    """A session of the job's role in the job's account: moto maps its access key to that account."""
    from moto.sts.models import sts_backends
    from moto.utilities.utils import get_partition

    return sts_backends[plan.account][get_partition(plan.region)].assume_role(
        region_name=plan.region,
        role_session_name=SESSION_NAME,
        role_arn=_role_arn(plan),
        policy="",
        duration=min(43200, max(900, plan.timeout_minutes * 60)),
        external_id="",
    )


def _role_arn(plan: _Plan) -> str:
    from moto.utilities.utils import get_partition

    if plan.role.startswith("arn:"):
        return plan.role
    return f"arn:{get_partition(plan.region)}:iam::{plan.account}:role/{plan.role}"


def _error_message(run_dir: Path, code: int) -> str:
    """What the launcher recorded of the exception, else the last line of the error stream, else the status."""
    recorded = run_dir / "error-message.txt"
    if recorded.is_file() and recorded.read_text(errors="replace").strip():
        return recorded.read_text(errors="replace").strip()
    lines = [line for line in (run_dir / "error.log").read_text(errors="replace").splitlines() if line.strip()]
    if lines:
        return lines[-1].strip()
    if code < 0:
        return f"the job's process was killed by signal {-code}"
    return f"the job's process exited with status {code}"


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    wait_for_group(process.pid, GROUP_EXIT_GRACE_S)


def wait_for_group(group: int, grace_s: float) -> None:
    """Until no process of the group is alive; what is still alive after `grace_s` is killed. A process killed
    has had its files closed by the kernel before it counts as exited (a zombie)."""
    deadline = time.monotonic() + grace_s
    killed = False
    while group_alive(group):
        if time.monotonic() >= deadline:
            if killed:
                raise RuntimeError(f"process group {group} still alive {grace_s:g}s after SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            killed, deadline = True, time.monotonic() + grace_s
        time.sleep(0.02)


def group_alive(group: int) -> bool:
    """Whether a process of the group is alive (not a zombie: the run's orphans are reaped by whoever adopts
    them, which in a container may be never). Without /proc (not Linux), whether any process of it exists."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ")".
        state, _ppid, pgrp = stat.rpartition(")")[2].split()[:3]
        if int(pgrp) == group and state not in ("Z", "X"):
            return True
    return False


def _safe(name: str) -> str:
    return urllib.parse.quote(name, safe="")
