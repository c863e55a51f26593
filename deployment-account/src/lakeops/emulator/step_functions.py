"""State machines that run in the emulator, with the integrations the lake's workflows use (patch 10).

Active only when the server runs with `--deliver-events` (`LAKEOPS_DELIVER_EVENTS=1`), with `events`: moto
records executions and runs nothing unless its `execute_state_machine` setting is on; its interpreter
(moto.stepfunctions.parser) then runs the DynamoDB, SNS and AWS SDK tasks, but not these. Here:

1. Executions run: the setting is on, and the state machines CloudFormation creates live in the same backend
   as the API's (moto's CloudFormation model puts them in the backend that does not run them). An execution
   started without a name gets a UUID, as Step Functions names it (moto names every one "None", so a second
   unnamed start fails with ExecutionAlreadyExists). A stopped execution ends ABORTED even when the state it
   was in fails as it stops (moto records that failure over the stop).
2. A task's service calls reach this emulator as the task's role: moto's interpreter calls a fixed local
   endpoint with fixed keys, which act in moto's default account. Here its clients use the emulator's endpoint
   with a session of the execution's role (or the state's `Credentials.RoleArn`), so they act in the role's
   account, as the state machine's own calls would.
3. `arn:aws:states:::glue:startJobRun` and `.sync` start the run through the emulator's Glue (`glue_runs`
   runs it) and answer `{"JobRunId", "JobName"}` (Step Functions Developer Guide, "Start an AWS Glue job with
   Step Functions": JobName is inserted into the response). `.sync` then waits, polling the Glue backend,
   until the run ends, and answers the run as GetJobRun's `JobRun` does; a run that ends FAILED, TIMEOUT,
   STOPPED or ERROR fails the task with `States.TaskFailed` and the `JobRun` as JSON for its cause. Glue's
   errors (ConcurrentRunsExceededException, EntityNotFoundException, ...) fail it as `Glue.<ExceptionName>`,
   which a Retry or Catch on that name matches. moto's own `.sync` fails on every run (its callback code
   needs a task token Glue tasks do not have). If the execution stops or the task times out first, the run is
   stopped (`glue_runs.stop`), as the `.sync` pattern's BatchStopJobRun grant is for.
4. `arn:aws:states:::states:startExecution`, `.sync` and `.sync:2` start the execution with the task's
   `StateMachineArn`, `Name` and `Input` (moto passes them to boto3 in the wrong case, so StateMachineArn is
   dropped) and answer `{"ExecutionArn", "StartDate"}`; the `.sync` forms wait for it and answer its
   DescribeExecution output in the integration's casing, with `Input`/`Output` as text (`.sync`) or as JSON
   (`.sync:2`); a child that does not succeed fails the task with `States.TaskFailed` and that output as
   cause. Step Functions' errors fail it as `StepFunctions.<Name>Exception`. A parent that stops stops its
   child.
5. Each of those calls, and the DynamoDB (`arn:aws:states:::dynamodb:*`), SNS publish and AWS SDK S3 object
   (`arn:aws:states:::aws-sdk:s3:getObject`, headObject, putObject, deleteObject) tasks, is first checked
   against the role's identity policies (`role_permissions`): glue:StartJobRun on the job, and for `.sync`
   glue:GetJobRun, glue:GetJobRuns and glue:BatchStopJobRun (Developer Guide, "Start an AWS Glue job with
   Step Functions", IAM policies for calling AWS Glue, Run a Job (.sync)); states:StartExecution on the
   state machine, and for `.sync` states:DescribeExecution and states:StopExecution on the execution and
   events:PutTargets, events:PutRule and events:DescribeRule on the rule
   `StepFunctionsGetEventsForStepFunctionsExecutionRule` (Developer Guide, "Start a new AWS Step Functions
   state machine from a running execution", IAM policies for calling Step Functions, Synchronous); the
   DynamoDB action of the task on the table, sns:Publish on the topic, the S3 action on the object. A call
   the role may not make fails the task, before anything is called, with `<Service>.AccessDeniedException`
   (the AWS SDK integrations' `ServiceName.ErrorName` rule, Developer Guide, "Learning to use AWS service SDK
   integrations in Step Functions") and the cause `AccessDenied: role <arn> may not <action> on <resource>
   (...)`; a Catch on States.TaskFailed or States.ALL catches it. All of a pattern's permissions are checked
   before the first call (AWS would fail at the first call that needs the missing one, e.g. GetJobRun
   after the run started). Other integrations' calls (other AWS SDK calls, SQS, Lambda, ...) and the KMS
   permissions services use on the role's behalf are not checked.
6. A standard workflow's execution sends "Step Functions Execution Status Change" events to the default
   event bus when it starts (RUNNING) and when it ends (SUCCEEDED, FAILED, TIMED_OUT, ABORTED), with the
   detail DescribeExecution gives (`executionArn`, `stateMachineArn`, `name`, `status`, `startDate`,
   `stopDate` in epoch milliseconds, `input`, `output`, and `error`/`cause` when it failed: Developer Guide,
   "Automating Step Functions event delivery with EventBridge"), so a rule on them fires (`events`).

Timestamps in task results (`StartedOn`, `StartDate`, ...) are epoch milliseconds, as in the status events.
"""

from __future__ import annotations

import datetime
import importlib
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from lakeops.emulator import events, glue_runs, role_permissions

GLUE_TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "ERROR"})
GLUE_SYNC_ACTIONS = ("glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun")
# The rule Step Functions manages to learn of the end of an execution a `.sync` task started.
SYNC_EXECUTION_RULE = "StepFunctionsGetEventsForStepFunctionsExecutionRule"
S3_OBJECT_ACTIONS = {
    "getobject": "s3:GetObject",
    "headobject": "s3:GetObject",
    "putobject": "s3:PutObject",
    "deleteobject": "s3:DeleteObject",
}
SESSION_NAME = "StepFunctionsTask"
# The interpreter's modules that make service clients (under moto.stepfunctions.parser.asl.component.state.exec).
CLIENT_USERS = (
    "state_map.item_reader.eval.resource_eval_s3",
    "state_map.result_writer.resource_eval.resource_eval_s3",
    "state_task.lambda_eval_utils",
    "state_task.service.state_task_service_factory",
)
SESSION_SECONDS = 3600


@dataclass(frozen=True)
class StepFunctionsRuntime:
    """How tasks reach the emulator, and how often a `.sync` task looks at what it waits for."""

    endpoint_url: str
    ca_bundle: str | None = None
    poll_s: float = 0.2


_runtime: StepFunctionsRuntime | None = None
_applied = False
_sessions: dict[str, tuple[float, Any]] = {}
_sessions_lock = threading.Lock()


def configure(runtime: StepFunctionsRuntime) -> None:
    global _runtime
    _runtime = runtime


def apply() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    _execute_state_machines()
    _call_the_emulator_as_the_role()
    _run_glue_jobs()
    _start_executions()
    _check_other_tasks()
    _send_status_changes()


def _poll_s() -> float:
    return _runtime.poll_s if _runtime is not None else 0.2


# --- 1. executions run ----------------------------------------------------------------------------------


def _execute_state_machines() -> None:
    from moto.core.config import default_user_config
    from moto.stepfunctions import models
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend, stepfunctions_parser_backends

    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
    # Only CloudFormation's model looks the backends up by this name (the server's routing uses the package's,
    # which must stay: it finds the service's URLs through it).
    models_module: Any = models
    models_module.stepfunctions_backends = stepfunctions_parser_backends

    backend: Any = StepFunctionsParserBackend
    original_start = backend.start_execution

    def start_execution(
        self: Any,
        state_machine_arn: str,
        name: str | None = None,
        execution_input: str | None = None,
        trace_header: str | None = None,
    ) -> Any:
        return original_start(self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header)

    backend.start_execution = start_execution
    _keep_stopped_executions_aborted()


def _keep_stopped_executions_aborted() -> None:
    """A state that fails because its execution was stopped (a `.sync` task whose wait ends) must not turn the
    stopped execution into a failed one: moto's interpreter records the error over the stop."""
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

    environment: Any = Environment
    original = environment.set_error

    def set_error(self: Any, error: Any) -> None:
        if isinstance(self.program_state(), ProgramStopped):
            return
        original(self, error)

    environment.set_error = set_error


def _parser_backend(arn: str) -> Any:
    """The backend holding the state machine or execution `arn` names (its account and Region)."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    return stepfunctions_parser_backends[role_permissions.arn_account(arn)][arn.split(":")[3]]


# --- 2. service clients act as the task's role --------------------------------------------------------------


def _call_the_emulator_as_the_role() -> None:
    from moto.stepfunctions.parser.asl.utils import boto_client

    # Each module imported the function by name: replace it where it was imported, every such module loaded.
    for user in CLIENT_USERS:
        importlib.import_module(f"moto.stepfunctions.parser.asl.component.state.exec.{user}")
    original = boto_client.boto_client_for
    for name, module in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions.parser") and getattr(module, "boto_client_for", None) is original:
            module.boto_client_for = client_for  # type: ignore[attr-defined]


def client_for(region: str, service: str, state_credentials: Any = None) -> Any:
    """A boto3 client of this emulator acting as the task's role (moto's `boto_client_for`'s signature)."""
    import boto3
    from botocore.config import Config

    runtime = _runtime
    if runtime is None:
        raise RuntimeError("the emulator's Step Functions is not configured (step_functions.configure)")
    role = getattr(state_credentials, "role_arn", None)
    if not role:
        raise RuntimeError(f"no role to call {service} with")
    credentials = _session(str(role), region)
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=runtime.endpoint_url,
        verify=runtime.ca_bundle or True,
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token,
        # As moto's: the interpreter's own Retry fields decide retries; its parameters are Step Functions'.
        config=Config(parameter_validation=False, retries={"max_attempts": 0, "total_max_attempts": 1}),
    )


def _session(role_arn: str, region: str) -> Any:
    """Credentials of the role in its account (moto maps their key to it), reused while they are fresh."""
    from moto.sts.models import sts_backends

    with _sessions_lock:
        cached = _sessions.get(role_arn)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        account = role_permissions.arn_account(role_arn)
        credentials = sts_backends[account][role_permissions.arn_partition(role_arn)].assume_role(
            region_name=region,
            role_session_name=SESSION_NAME,
            role_arn=role_arn,
            policy="",
            duration=SESSION_SECONDS,
            external_id="",
        )
        _sessions[role_arn] = (time.monotonic() + SESSION_SECONDS / 2, credentials)
        return credentials


# --- failures, as the interpreter reports them ---------------------------------------------------------------


def _task_failure(task: Any, env: Any, error: str, cause: str) -> Exception:
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    name: Any = (
        StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed)
        if error == StatesErrorNameType.StatesTaskFailed.to_name()
        else CustomErrorName(error)
    )
    details = TaskFailedEventDetails(
        error=error, cause=cause, resource=task._get_sfn_resource(), resourceType=task._get_sfn_resource_type()
    )
    # moto's typing declares every detail key of EventDetails required; an event has one of them.
    event_details: Any = EventDetails
    return FailureEventException(
        FailureEvent(
            env=env,
            error_name=name,
            event_type=HistoryEventType.TaskFailed,
            event_details=event_details(taskFailedEventDetails=details),
        )
    )


def _report_failures_as_raised(service: Any) -> None:
    """Let a task's own failure (`_task_failure`) through the service's error mapping unchanged: some services
    (DynamoDB) report any exception that is not a botocore ClientError under one generic error name."""
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEventException

    original = service._from_error

    def from_error(self: Any, env: Any, ex: Exception) -> Any:
        if isinstance(ex, FailureEventException):
            return ex.failure_event
        return original(self, env, ex)

    service._from_error = from_error


def _authorize(task: Any, env: Any, credentials: Any, service: str, requests: Iterable[tuple[str, str]]) -> None:
    refused = role_permissions.denial(getattr(credentials, "role_arn", None), requests)
    if refused:
        raise _task_failure(task, env, f"{service}.AccessDeniedException", refused)


def _exception_name(exc: Exception) -> str:
    """A moto exception's error code, as the service's API names it."""
    name = getattr(exc, "error_type", None) or type(exc).__name__
    return str(name).split("#")[-1]


def _epoch_ms(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
        return int(moment.timestamp() * 1000)
    if isinstance(value, dict):
        return {key: _epoch_ms(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_epoch_ms(item) for item in value]
    return value


def _wait(env: Any, ended: Callable[[], bool]) -> bool:
    """Wait until `ended()`; False when the execution stopped (or the task timed out) first."""
    while env.is_running():
        if ended():
            return True
        env.program_state_event.wait(_poll_s())
    return False


# --- 3. Glue ----------------------------------------------------------------------------------------------------


def _run_glue_jobs() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_glue import (
        StateTaskServiceGlue,
    )

    glue: Any = StateTaskServiceGlue
    _report_failures_as_raised(glue)
    glue._eval_service_task = _glue_start_job_run
    glue._eval_integration_pattern = _glue_wait_for_run


def _glue_start_job_run(
    self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
) -> None:
    from moto.glue.models import glue_backends
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
    from moto.utilities.utils import get_partition

    if self.resource.api_action.lower() != "startjobrun":
        raise RuntimeError(f"glue:{self.resource.api_action} is not a Step Functions integration")
    parameters, account, region = normalised_parameters, resource_runtime_part.account, resource_runtime_part.region
    job_name = str(parameters.get("JobName", ""))
    job_arn = f"arn:{get_partition(region)}:glue:{region}:{account}:job/{job_name}"
    actions = ["glue:StartJobRun"]
    if self.resource.condition == ResourceCondition.Sync:
        actions += GLUE_SYNC_ACTIONS
    _authorize(self, env, state_credentials, "Glue", [(action, job_arn) for action in actions])
    try:
        run_id = glue_backends[account][region].start_job_run(
            name=job_name,
            arguments=parameters.get("Arguments"),
            allocated_capacity=parameters.get("AllocatedCapacity"),
            max_capacity=parameters.get("MaxCapacity"),
            timeout=parameters.get("Timeout"),
            worker_type=parameters.get("WorkerType"),
            security_configuration=parameters.get("SecurityConfiguration"),
            number_of_workers=parameters.get("NumberOfWorkers"),
            notification_property=parameters.get("NotificationProperty"),
            previous_run_id=parameters.get("JobRunId"),
        )
    except Exception as exc:
        raise _task_failure(self, env, f"Glue.{_exception_name(exc)}", str(getattr(exc, "message", exc))) from exc
    env.stack.append({"JobRunId": run_id, "JobName": job_name})


def _glue_wait_for_run(
    self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
) -> None:
    from moto.glue.models import glue_backends
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition

    submitted = env.stack.pop()
    if self.resource.condition != ResourceCondition.Sync:
        raise RuntimeError(f"{self.resource.resource_arn}: only the .sync pattern is emulated for Glue")
    run = glue_backends[resource_runtime_part.account][resource_runtime_part.region].get_job_run(
        submitted["JobName"], submitted["JobRunId"]
    )
    if not _wait(env, lambda: run.status in GLUE_TERMINAL):
        glue_runs.stop(run)
        raise RuntimeError(f"the execution stopped while job run {run.job_run_id} ran; the run was stopped")
    job_run = _epoch_ms(run.as_dict())
    job_run["JobName"] = submitted["JobName"]
    if job_run["JobRunState"] != "SUCCEEDED":
        raise _task_failure(self, env, "States.TaskFailed", json.dumps(job_run, default=str))
    env.stack.append(job_run)


# --- 4. Step Functions ---------------------------------------------------------------------------------------------


def _start_executions() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
        StateTaskServiceSfn,
    )

    sfn: Any = StateTaskServiceSfn
    _report_failures_as_raised(sfn)
    original_pattern = sfn._eval_integration_pattern

    # moto calls these with keyword arguments: the parameters keep its names.
    def integration_pattern(
        self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
    ) -> None:
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
            ResourceCondition,
        )

        if self.resource.condition in (ResourceCondition.Sync, ResourceCondition.Sync2):
            _sfn_wait_for_execution(self, env)
        else:
            original_pattern(self, env, resource_runtime_part, normalised_parameters, state_credentials)

    sfn._eval_service_task = _sfn_start_execution
    sfn._eval_integration_pattern = integration_pattern


def _sfn_start_execution(
    self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
) -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition

    if self._get_boto_service_action() != "start_execution":
        raise RuntimeError(f"states:{self.resource.api_action} is not a Step Functions integration")
    parameters = normalised_parameters
    machine = str(parameters.get("StateMachineArn", ""))
    name = str(parameters.get("Name") or uuid.uuid4())
    requests = [("states:StartExecution", machine)]
    if self.resource.condition in (ResourceCondition.Sync, ResourceCondition.Sync2):
        partition = role_permissions.arn_partition(machine)
        region, account = resource_runtime_part.region, resource_runtime_part.account
        machine_name = machine.rsplit(":", 1)[-1]
        execution = f"arn:{partition}:states:{region}:{account}:execution:{machine_name}:{name}"
        rule = f"arn:{partition}:events:{region}:{account}:rule/{SYNC_EXECUTION_RULE}"
        requests += [("states:DescribeExecution", execution), ("states:StopExecution", execution)]
        requests += [(action, rule) for action in ("events:PutTargets", "events:PutRule", "events:DescribeRule")]
    _authorize(self, env, state_credentials, "StepFunctions", requests)
    try:
        started = _parser_backend(machine).start_execution(machine, name, parameters.get("Input") or "{}")
    except Exception as exc:
        code = _exception_name(exc).removesuffix("Exception")
        raise _task_failure(self, env, f"StepFunctions.{code}Exception", str(getattr(exc, "message", exc))) from exc
    env.stack.append({"ExecutionArn": started.execution_arn, "StartDate": _epoch_ms(started.start_date)})


def _sfn_wait_for_execution(self: Any, env: Any) -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition

    submitted = env.stack.pop()
    arn = submitted["ExecutionArn"]
    backend = _parser_backend(arn)
    if not _wait(env, lambda: backend.describe_execution(arn).status != "RUNNING"):
        backend.stop_execution(arn)
        raise RuntimeError(f"the execution stopped while {arn} ran; it was stopped")
    parse = self.resource.condition == ResourceCondition.Sync2
    described = describe_execution(backend.describe_execution(arn), parse=parse)
    if described["Status"] != "SUCCEEDED":
        raise _task_failure(self, env, "States.TaskFailed", json.dumps(described, default=str))
    env.stack.append(described)


def describe_execution(execution: Any, *, parse: bool) -> dict[str, Any]:
    """DescribeExecution's output in the integration's casing; `parse` (`.sync:2`) gives Input/Output as JSON."""
    described: dict[str, Any] = {}
    for key, value in execution.to_describe_output().items():
        if value is None:
            continue
        if isinstance(value, dict):
            value = {k[:1].upper() + k[1:]: v for k, v in value.items()}
        described[key[:1].upper() + key[1:]] = getattr(value, "value", value)
    for key in ("Input", "Output"):
        if parse and isinstance(described.get(key), str):
            described[key] = json.loads(described[key])
    result: dict[str, Any] = _epoch_ms(described)
    return result


# --- 5. the other tasks' permissions ---------------------------------------------------------------------------


def _check_other_tasks() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
        StateTaskServiceAwsSdk,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb import (
        StateTaskServiceDynamoDB,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sns import (
        StateTaskServiceSns,
    )

    _check_before(StateTaskServiceDynamoDB, "DynamoDB", _dynamodb_requests)
    _check_before(StateTaskServiceSns, "SNS", _sns_requests)
    _check_before(StateTaskServiceAwsSdk, "S3", _s3_object_requests)
    _read_streamed_bodies(StateTaskServiceAwsSdk)


def _read_streamed_bodies(service: Any) -> None:
    """An AWS SDK task's answer holds no stream: S3 GetObject's `Body` comes back as the object's text, which is
    what a state's output can hold (JSON) and what the lake's state machines read from `$.Body` (a run's record,
    etl_jobs.orchestration). moto leaves botocore's StreamingBody in the state's output, and the interpreter's
    next copy of that output fails ("cannot pickle '_io.BufferedReader' object"), so the task took its Catch."""
    original = service._eval_service_task

    def eval_service_task(self: Any, env: Any, *args: Any, **kwargs: Any) -> None:
        original(self, env, *args, **kwargs)
        answer = env.stack[-1] if env.stack else None
        if isinstance(answer, dict) and hasattr(answer.get("Body"), "read"):
            answer["Body"] = answer["Body"].read().decode("utf-8", errors="replace")

    service._eval_service_task = eval_service_task


def _check_before(
    service: Any, error_prefix: str, requests: Callable[[Any, Any, dict[str, Any]], list[tuple[str, str]]]
) -> None:
    _report_failures_as_raised(service)
    original = service._eval_service_task

    def eval_service_task(
        self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
    ) -> None:
        needed = requests(self, resource_runtime_part, normalised_parameters)
        if needed:
            _authorize(self, env, state_credentials, error_prefix, needed)
        original(self, env, resource_runtime_part, normalised_parameters, state_credentials)

    service._eval_service_task = eval_service_task


def _dynamodb_requests(task: Any, runtime_part: Any, parameters: dict[str, Any]) -> list[tuple[str, str]]:
    from moto.utilities.utils import get_partition

    action = task.resource.api_action
    region, account = runtime_part.region, runtime_part.account
    table = f"arn:{get_partition(region)}:dynamodb:{region}:{account}:table/{parameters.get('TableName', '')}"
    return [(f"dynamodb:{action[:1].upper()}{action[1:]}", table)]


def _sns_requests(task: Any, runtime_part: Any, parameters: dict[str, Any]) -> list[tuple[str, str]]:
    target = parameters.get("TopicArn") or parameters.get("TargetArn")
    if task.resource.api_action.lower() != "publish" or not target:
        return []  # an SMS to a phone number names no resource
    return [("sns:Publish", str(target))]


def _s3_object_requests(task: Any, runtime_part: Any, parameters: dict[str, Any]) -> list[tuple[str, str]]:
    from moto.utilities.utils import get_partition

    action = S3_OBJECT_ACTIONS.get(task.resource.api_action.lower())
    if task.resource.api_name != "s3" or action is None:
        return []  # not checked: see the module docstring, 5
    bucket, key = parameters.get("Bucket", ""), parameters.get("Key", "")
    return [(action, f"arn:{get_partition(runtime_part.region)}:s3:::{bucket}/{key}")]


# --- 6. status change events ---------------------------------------------------------------------------------------


def _send_status_changes() -> None:
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution

    execution_class: Any = Execution
    communication: Any = BaseExecutionWorkerCommunication
    original_start = execution_class.start
    original_terminated = communication.terminated

    def start(self: Any) -> None:
        # Before the worker starts: a quick execution could otherwise report its end before its start.
        _status_changed(self, "RUNNING")
        original_start(self)

    def terminated(self: Any) -> None:
        original_terminated(self)
        _status_changed(self.execution, None)

    execution_class.start = start
    communication.terminated = terminated


def _status_changed(execution: Any, status: str | None) -> None:
    """Send the execution's status change event; `status` overrides the execution's (its start is reported
    before the execution records it)."""
    if str(getattr(execution.sm_type, "value", execution.sm_type)) != "STANDARD":
        return  # express workflows send none
    try:
        event = status_change_event(execution, status)
        events.put_on_default_bus(execution.account_id, execution.region_name, event, transform_input=True)
    except Exception:  # the execution is not affected by an event that could not be delivered
        events.LOG.exception("Step Functions: the status change of %s was not delivered", execution.exec_arn)


def status_change_event(execution: Any, status: str | None) -> dict[str, Any]:
    machine = execution.state_machine
    current = status or str(getattr(execution.exec_status, "value", execution.exec_status))
    ended = status is None
    detail: dict[str, Any] = {
        "executionArn": execution.exec_arn,
        "stateMachineArn": getattr(machine, "source_arn", None) or machine.arn,
        "name": execution.name,
        "status": current,
        "startDate": _epoch_ms(execution.start_date),
        "stopDate": _epoch_ms(execution.stop_date) if ended and execution.stop_date else None,
        "input": json.dumps(execution.input_data, separators=(",", ":")),
        "output": json.dumps(execution.output, separators=(",", ":")) if current == "SUCCEEDED" else None,
    }
    if ended and execution.error is not None:
        detail["error"] = execution.error
    if ended and execution.cause is not None:
        detail["cause"] = execution.cause
    return events.service_event(
        "aws.states",
        "Step Functions Execution Status Change",
        account=execution.account_id,
        region=execution.region_name,
        resources=[execution.exec_arn],
        detail=detail,
    )
