"""EventBridge that delivers to Step Functions: the trigger chain S3 → EventBridge → state machine (patch 9).

Active only when the server runs with `--deliver-events` (`LAKEOPS_DELIVER_EVENTS=1`); without it moto's own
behaviour stays. moto stores what the chain needs but does not run it; here:

1. A bucket created by CloudFormation keeps `NotificationConfiguration.EventBridgeConfiguration
   .EventBridgeEnabled: true` (moto's CloudFormation model drops the whole `NotificationConfiguration`): its
   EventBridge notifications are on, as `PutBucketNotificationConfiguration` with an EventBridge configuration
   would set them. Only that part is kept; topic, queue and Lambda configurations stay dropped, as before.
2. An object created in such a bucket (PutObject, POST, CopyObject, CompleteMultipartUpload) sends one
   "Object Created" event to the default event bus of the bucket's account and Region, in S3's shape (Amazon
   S3 User Guide, "EventBridge event message structure": a new `id` per event, `time`, `resources` [bucket
   ARN], `detail.object` with `key`, `size`, `etag`, `version-id` (versioned buckets), `sequencer`, and
   `detail.reason` naming the API: PutObject, POST Object, CopyObject, CompleteMultipartUpload). moto sends
   its own shape (`eTag`, reason "ObjectCreated", one fixed id) to every bus, a second, PutObject event for
   a completed multipart upload, and an "Object Tags Added" event for every object it stores (PutObject and
   CopyObject tag it), which here only PutObjectTagging sends; other S3 event types keep moto's.
   `requester` is the bucket owner's account: the emulator does not know who made the request.
3. A rule delivers only while ENABLED (moto ignores `State`), and a scheduled rule never on an event (moto's
   empty pattern for it matches them all); whether an event matches is moto's pattern matching. A target
   whose ARN is a Step Functions state machine starts an execution (moto raises
   NotImplementedError for it, and skips a target's input settings for S3 events): the target's role
   (`RoleArn`) must allow `states:StartExecution` on the state machine by its identity policies
   (`role_permissions`); a role that does not starts nothing. The execution's input is the target's `Input`
   as given, or the part of the event its `InputPath` selects, or its `InputTransformer` applied (Amazon
   EventBridge User Guide, "Amazon EventBridge input transformation": a variable outside a JSON string is
   inserted as a JSON value, so a string gets its quotes; inside a string its text is inserted unescaped;
   predefined `aws.events.rule-arn`, `aws.events.rule-name`, `aws.events.event.ingestion-time`,
   `aws.events.event` (the event without `detail`) and `aws.events.event.json`), or else the whole event.
   A variable whose path is absent from the event becomes `null` outside a string and nothing inside one (the
   guide says only that it "isn't created"). The event as a target sees it has `time` in ISO 8601.
   Other targets keep moto's delivery.
4. Every delivery to a state machine is recorded, started or not, with its reason: `GET` on
   `/moto-api/lakeops/event-deliveries` answers `{"deliveries": [...]}` (`process.Emulator.event_deliveries`);
   a denied or failed one is also logged as a warning. `/moto-api/reset` clears the record.

`put_on_default_bus` is also how `step_functions` sends the "Step Functions Execution Status Change" events.
Not emulated: scheduled rules (nothing fires on a schedule), the target's retry policy and dead-letter queue
(a delivery either starts the execution or is recorded as not started), custom event buses for S3 events
(S3 sends to the default bus only), the events service's permission to assume the target role.
"""

from __future__ import annotations

import copy
import datetime
import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from lakeops.emulator import role_permissions

DELIVERIES_PATH = "/moto-api/lakeops/event-deliveries"
# The API each kind of moto's ObjectCreated notification stands for, as S3 names it in `detail.reason`.
CREATED_REASONS = {
    "s3:ObjectCreated:Put": "PutObject",
    "s3:ObjectCreated:Post": "POST Object",
    "s3:ObjectCreated:Copy": "CopyObject",
    "s3:ObjectCreated:CompleteMultipartUpload": "CompleteMultipartUpload",
}
# Predefined variables of an input transformer that name the event as a whole: inserted as JSON only.
WHOLE_EVENT = "aws.events.event"
WHOLE_EVENT_JSON = "aws.events.event.json"

LOG = logging.getLogger(__name__)
_applied = False
_deliveries: list[dict[str, Any]] = []
_deliveries_lock = threading.Lock()
_sequence = itertools.count(1)
_request = threading.local()  # what the S3 request being served in this thread is (`_send_s3_events_in_s3_shape`)


class TargetInputError(ValueError):
    """A target's input settings cannot be applied to the event."""


def apply() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    _keep_cloudformation_event_bridge_configuration()
    _send_s3_events_in_s3_shape()
    _deliver_to_state_machines()
    _serve_deliveries()


def deliveries() -> list[dict[str, Any]]:
    with _deliveries_lock:
        return copy.deepcopy(_deliveries)


def clear_deliveries() -> None:
    with _deliveries_lock:
        _deliveries.clear()


# --- 1. CloudFormation buckets keep EventBridge notifications -------------------------------------------


def _keep_cloudformation_event_bridge_configuration() -> None:
    from moto.s3.models import FakeBucket

    from lakeops.emulator.patches import wrap_cloudformation

    wrap_cloudformation(FakeBucket, after=_configure_event_bridge)


def event_bridge_enabled(properties: Mapping[str, Any]) -> bool:
    """Whether an AWS::S3::Bucket's properties turn EventBridge notifications on (a boolean, or its text)."""
    configuration = (properties.get("NotificationConfiguration") or {}).get("EventBridgeConfiguration") or {}
    return str(configuration.get("EventBridgeEnabled", "")).lower() == "true"


def _configure_event_bridge(bucket: Any, properties: Mapping[str, Any]) -> None:
    enabled = event_bridge_enabled(properties)
    if bucket.notification_configuration is None:
        if enabled:
            # The API's shape: an empty EventBridgeConfiguration element turns delivery on.
            bucket.set_notification_configuration({"EventBridgeConfiguration": {}})
        return
    bucket.notification_configuration.event_bridge = {} if enabled else None


# --- 2. S3's "Object Created" events ---------------------------------------------------------------------


def _send_s3_events_in_s3_shape() -> None:
    from moto.s3 import notifications
    from moto.s3.models import S3Backend
    from moto.s3.responses import S3Response

    original = notifications._send_event_bridge_message
    backend: Any = S3Backend
    response: Any = S3Response
    original_complete = backend.complete_multipart_upload
    original_tagging = response.put_object_tagging

    def complete_multipart_upload(self: Any, *args: Any, **kwargs: Any) -> Any:
        # moto stores the completed object with its PutObject code, which notifies as a PutObject too: S3
        # sends one event, CompleteMultipartUpload's.
        _request.completing = True
        try:
            return original_complete(self, *args, **kwargs)
        finally:
            _request.completing = False

    def put_object_tagging(self: Any) -> Any:
        # moto also tags every object it stores for PutObject and CopyObject, and notifies each as tagged: S3
        # sends "Object Tags Added" for PutObjectTagging, this request, only.
        _request.tagging = True
        try:
            return original_tagging(self)
        finally:
            _request.tagging = False

    def send(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
        name = str(getattr(event_name, "value", event_name))  # moto passes its enum
        reason = CREATED_REASONS.get(name)
        if reason is None:
            if name.startswith("s3:ObjectTagging:Put") and not getattr(_request, "tagging", False):
                return
            original(account_id, bucket, event_name, key)
            return
        if reason == "PutObject" and getattr(_request, "completing", False):
            return
        try:
            put_on_default_bus(account_id, bucket.region_name, object_created_event(account_id, bucket, key, reason))
        except Exception:  # delivery is asynchronous in AWS: it never fails the request that created the object
            LOG.exception("EventBridge: the Object Created event of s3://%s/%s was lost", bucket.name, key.name)

    notifications._send_event_bridge_message = send
    backend.complete_multipart_upload = complete_multipart_upload
    response.put_object_tagging = put_object_tagging


def object_created_event(account_id: str, bucket: Any, key: Any, reason: str) -> dict[str, Any]:
    obj: dict[str, Any] = {"key": key.name, "size": key.size, "etag": str(key.etag).strip('"')}
    if key.version_id and key.version_id != "null":
        obj["version-id"] = key.version_id
    # Increasing per event, as S3's sequencer orders the events of one key.
    obj["sequencer"] = f"{time.time_ns():016X}{next(_sequence):04X}"
    return service_event(
        "aws.s3",
        "Object Created",
        account=account_id,
        region=bucket.region_name,
        resources=[bucket.arn],
        detail={
            "version": "0",
            "bucket": {"name": bucket.name},
            "object": obj,
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": account_id,
            "source-ip-address": "127.0.0.1",
            "reason": reason,
        },
    )


def service_event(
    source: str, detail_type: str, *, account: str, region: str, resources: list[str], detail: dict[str, Any]
) -> dict[str, Any]:
    """The envelope of an event an AWS service sends to the default bus, in moto's internal form."""
    now = time.time()
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": now,  # moto's internal form (seconds); targets see ISO 8601 (`as_delivered`)
        "region": region,
        "resources": resources,
        "detail": detail,
        "ingestion-time": now,
    }


def put_on_default_bus(account_id: str, region: str, event: dict[str, Any], *, transform_input: bool = False) -> None:
    """Deliver an AWS service's event to every rule of the account's default event bus in the Region.

    `transform_input` is what moto's other targets get: False for S3's events (as moto's S3 sends them),
    True for the events PutEvents would carry.
    """
    from moto.events.models import events_backends

    bus = events_backends[account_id][region].event_buses.get("default")
    if bus is None:
        return
    rules: list[Any] = list(bus.rules.values())
    for rule in rules:
        rule.send_to_targets(copy.deepcopy(event), transform_input=transform_input)


# --- 3. rule targets that are state machines ---------------------------------------------------------------


def _deliver_to_state_machines() -> None:
    from moto.events.models import Rule

    rule_class: Any = Rule
    original = rule_class.send_to_targets

    def send_to_targets(self: Any, original_event: dict[str, Any], transform_input: bool = True) -> None:
        if self.state != "ENABLED":  # a disabled rule matches no event
            return
        # A scheduled rule fires on its schedule only (not emulated), never on an event. moto gives it an empty
        # pattern, which matches every event: a state machine started on its schedule would then start itself
        # again from each of its own status-change events, without end, inside the request that sent the first.
        if self.scheduled_expression:
            return
        if not self.event_pattern.matches_event(original_event):
            return
        for target in list(self.targets):
            if is_state_machine(target.get("Arn", "")):
                start_execution_for(self, target, original_event)
            else:
                single = copy.copy(self)  # moto's delivery, for this one target only
                single.targets = [target]
                original(single, original_event, transform_input)

    rule_class.send_to_targets = send_to_targets


def is_state_machine(arn: str) -> bool:
    parts = arn.split(":", 6)
    return len(parts) >= 6 and parts[2] == "states" and parts[5] == "stateMachine"


def start_execution_for(rule: Any, target: Mapping[str, Any], event: Mapping[str, Any]) -> None:
    """What EventBridge does for one state machine target of a matching rule: start an execution, if allowed."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    machine = str(target["Arn"])
    record: dict[str, Any] = {
        "rule": rule.arn,
        "target": target.get("Id"),
        "stateMachineArn": machine,
        "eventId": event.get("id"),
        "source": event.get("source"),
        "detailType": event.get("detail-type"),
    }
    try:
        text = target_input(rule, target, event)
    except TargetInputError as exc:
        _record(record, "failed", reason=str(exc))
        return
    record["input"] = text
    refused = role_permissions.denial(target.get("RoleArn"), [("states:StartExecution", machine)])
    if refused:
        _record(record, "denied", reason=refused)
        return
    account, region = role_permissions.arn_account(machine), machine.split(":")[3]
    try:
        backend: Any = stepfunctions_parser_backends[account][region]
        execution = backend.start_execution(machine, None, text)  # no name: Step Functions gives it one
    except Exception as exc:  # as on AWS, a failed invocation does not fail the event's source
        _record(record, "failed", reason=f"{type(exc).__name__}: {exc}")
        return
    _record(record, "started", execution=execution.execution_arn)


def _record(record: dict[str, Any], outcome: str, **details: Any) -> None:
    entry = {**record, "outcome": outcome, **details}
    if outcome != "started":
        LOG.warning(
            "EventBridge rule %s did not start %s (%s): %s",
            record["rule"],
            record["stateMachineArn"],
            outcome,
            details.get("reason"),
        )
    with _deliveries_lock:
        _deliveries.append(entry)


def as_delivered(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event as a target receives it: `time` in ISO 8601, without moto's internal fields."""
    delivered = {key: copy.deepcopy(value) for key, value in event.items() if key != "ingestion-time"}
    if isinstance(delivered.get("time"), int | float):
        delivered["time"] = _iso(float(delivered["time"]))
    return delivered


def target_input(rule: Any, target: Mapping[str, Any], event: Mapping[str, Any]) -> str:
    """The input text a target's settings make of the event (module docstring, 3)."""
    delivered = as_delivered(event)
    if target.get("Input") is not None:
        return str(target["Input"])
    if target.get("InputPath"):
        found, value = select(delivered, str(target["InputPath"]))
        return json.dumps(value if found else None)
    transformer = target.get("InputTransformer")
    if transformer:
        ingested = event.get("ingestion-time")
        predefined: dict[str, Any] = {
            "aws.events.rule-arn": rule.arn,
            "aws.events.rule-name": rule.name,
            "aws.events.event.ingestion-time": _iso(float(ingested)) if isinstance(ingested, int | float) else "",
            WHOLE_EVENT: {key: value for key, value in delivered.items() if key != "detail"},
            WHOLE_EVENT_JSON: delivered,
        }
        return render_template(
            str(transformer.get("InputTemplate", "")), transformer.get("InputPathsMap") or {}, delivered, predefined
        )
    return json.dumps(delivered)


def render_template(
    template: str, paths: Mapping[str, str], event: Mapping[str, Any], predefined: Mapping[str, Any]
) -> str:
    """An InputTransformer's template with its `<variable>`s replaced (module docstring, 3)."""
    values: dict[str, tuple[bool, Any]] = {name: (True, value) for name, value in predefined.items()}
    for name, path in paths.items():
        if name in predefined:
            raise TargetInputError(f"InputPathsMap may not define the predefined variable {name}")
        values[name] = select(event, path)
    out: list[str] = []
    in_string = False
    i = 0
    while i < len(template):
        char = template[i]
        if in_string and char == "\\" and i + 1 < len(template):
            out.append(template[i : i + 2])
            i += 2
            continue
        if char == '"':
            in_string = not in_string
        elif char == "<":
            end = template.find(">", i + 1)
            name = template[i + 1 : end] if end > i else ""
            if name in values:
                found, value = values[name]
                if in_string and name in (WHOLE_EVENT, WHOLE_EVENT_JSON):
                    raise TargetInputError(f"<{name}> can only be the value of a JSON field, not part of a string")
                if in_string:
                    out.append("" if not found else value if isinstance(value, str) else json.dumps(value))
                else:
                    out.append(json.dumps(value if found else None))
                i = end + 1
                continue
        out.append(char)
        i += 1
    return "".join(out)


def select(document: Any, path: str) -> tuple[bool, Any]:
    """(found, value) of a JSON path of the forms EventBridge supports: `$`, `$.a.b-c`, `$.a[0]`, `$.a[*]`/`.*`."""
    if not path.startswith("$"):
        raise TargetInputError(f"{path!r} is not a JSON path")
    steps: list[str | int] = []
    for part in path[1:].replace("[", ".[").split("."):
        if not part:
            continue
        if part.startswith("[") and part.endswith("]"):
            inner = part[1:-1]
            steps.append("*" if inner == "*" else int(inner) if inner.isdigit() else inner.strip("'\""))
        else:
            steps.append(part)
    current: list[Any] = [document]
    wildcard = False
    for step in steps:
        following: list[Any] = []
        for node in current:
            if step == "*":
                wildcard = True
                if isinstance(node, dict | list):
                    following += list(node.values()) if isinstance(node, dict) else node
            elif isinstance(step, int):
                if isinstance(node, list) and step < len(node):
                    following.append(node[step])
            elif isinstance(node, dict) and step in node:
                following.append(node[step])
        current = following
    if wildcard:
        return True, current
    return (True, current[0]) if current else (False, None)


def _iso(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- 4. the record, over the moto API ------------------------------------------------------------------------


def _serve_deliveries() -> None:
    from moto.moto_api._internal import urls
    from moto.moto_api._internal.models import MotoAPIBackend

    def event_deliveries(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
        return 200, {"Content-Type": "application/json"}, json.dumps({"deliveries": deliveries()}, default=str)

    # Read when the server builds its moto-API application, at the first request: registered before that.
    urls.url_paths["{0}" + DELIVERIES_PATH] = event_deliveries

    backend: Any = MotoAPIBackend
    original_reset = backend.reset

    def reset(self: Any) -> None:
        original_reset(self)
        clear_deliveries()

    backend.reset = reset
