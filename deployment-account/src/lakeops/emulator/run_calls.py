"""The AWS calls an emulated Glue run makes, authorized by the run role's policies as IAM would.

moto evaluates no IAM policy. Its own IAM mode is no answer: it applies to every caller of the emulator at
once, and it ignores conditions. A job's boto3 calls reach the emulator over HTTP, signed with a session of
the run's role (`glue_runs`: AssumeRole, session `GlueJobRunnerSession`). `glue_runs` registers each run's
access key here while the run lasts. Every request signed with one of them is checked before moto handles
it: each (action, resource) it needs is evaluated against the role's identity policies by `role_permissions`.
A call the role may not make gets AWS's answer, a 403 `AccessDenied` naming the action and the resource, and
is kept on the run (`RunSession.denied`).

What a call needs, from the Service Authorization Reference (the resource types of each action):
- S3: the IAM action moto names for the request: ListBucket for a listing, GetObject for GET and HEAD of an
  object, PutObject (multipart parts too), DeleteObject, and so on, on the bucket or the object. ListBucket
  carries the condition keys `s3:prefix`, `s3:delimiter` and `s3:max-keys` of the query. DeleteObjects (the
  bulk delete) is authorized per object: each key needs s3:DeleteObject. One refused key makes every key of
  the request answer AccessDenied (moto deletes all of them or none); S3 would delete the others.
- Glue Data Catalog: a table operation needs the catalog, the database and the table; a database operation
  the catalog and the database ("Specifying AWS Glue resource ARNs", Developer Guide).
- Glue jobs and their runs: the job. DynamoDB: the table.
- `sts:GetCallerIdentity` needs no permission.
Any other call is refused with a message saying the emulator does not know its resources: a new kind of call
fails the rehearsal loudly rather than passing unchecked. Not evaluated here (as in `role_permissions`):
permissions boundaries, resource policies, session policies, KMS key policies, and condition keys this
module does not set (an Allow that depends on one does not apply).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lakeops.emulator import role_permissions

# Request signing names that are not the service's IAM prefix.
IAM_PREFIX = {"monitoring": "cloudwatch"}
_NEEDS_NOTHING = frozenset({"sts:GetCallerIdentity"})


@dataclass
class RunSession:
    """The role a run's credentials act as, and what it was refused."""

    role_arn: str
    run_id: str
    denied: list[str] = field(default_factory=list)


_sessions: dict[str, RunSession] = {}
_lock = threading.Lock()
_original: Any = None


def register(access_key_id: str, session: RunSession) -> None:
    with _lock:
        _sessions[access_key_id] = session


def unregister(access_key_id: str) -> None:
    with _lock:
        _sessions.pop(access_key_id, None)


def apply() -> None:
    """Check the requests of registered sessions in moto's authorization hook, which every request passes."""
    global _original
    if _original is not None:
        return
    from moto.core.authorization import ActionAuthenticatorMixin

    mixin: Any = ActionAuthenticatorMixin
    _original = mixin._authenticate_and_authorize_action

    def authorize(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        with _lock:
            session = _sessions.get(self.get_access_key())
        if session is not None:
            _check(self, session, resource)
        _original(self, iam_request_cls, resource)

    mixin._authenticate_and_authorize_action = authorize


@dataclass(frozen=True)
class Call:
    """One request as IAM sees it: its action, the resources it is authorized against, its condition keys."""

    action: str
    resources: tuple[str, ...]
    context: Mapping[str, Sequence[str]] = field(default_factory=dict)


class UnknownCall(Exception):
    """A call whose resources this module does not know: it is refused, never passed unchecked."""


def _check(response: Any, session: RunSession, resource: str) -> None:
    scope = _credential_scope(response.headers.get("Authorization", ""))
    region, service = scope if scope else (response.region, response.service_name or "")
    prefix = IAM_PREFIX.get(service, service)
    s3 = prefix == "s3"
    action = f"{prefix}:{response.data.get('Action') if s3 else response._get_action()}"
    account = role_permissions.arn_account(session.role_arn)
    partition = role_permissions.arn_partition(session.role_arn)
    why: str | None = None
    try:
        calls = (
            s3_calls(action, resource, response.querystring, response.body)
            if s3
            else service_calls(action, _json_body(response.body), partition=partition, region=region, account=account)
        )
    except UnknownCall as exc:
        why = f"AccessDenied: emulated Glue cannot authorize {action}: {exc}"
    else:
        for call in calls:
            why = role_permissions.denial(
                session.role_arn, [(call.action, r) for r in call.resources], context=call.context
            )
            if why:
                break
    if why:
        session.denied.append(why)
        _refuse(response, s3, why)


def s3_calls(action: str, resource: str, query: Mapping[str, Any], body: Any) -> list[Call]:
    """What an S3 request needs: `action` (moto's IAM name for it) on `resource` (moto's bucket or object ARN)."""
    if action == "s3:ListBucket":
        context = {
            f"s3:{name}": [str(_first(query[name]))] for name in ("prefix", "delimiter", "max-keys") if name in query
        }
        return [Call(action, (resource,), context)]
    if action == "s3:DeleteObject" and "delete" in query and "/" not in resource.split(":::", 1)[-1]:
        return [Call(action, tuple(f"{resource}/{key}" for key in _deleted_keys(body)))]
    return [Call(action, (resource,))]


def service_calls(action: str, params: Mapping[str, Any], *, partition: str, region: str, account: str) -> list[Call]:
    """What a call of a JSON-protocol service needs, by its parameters."""
    if action in _NEEDS_NOTHING:
        return []
    service, operation = action.split(":", 1)
    arn = f"arn:{partition}:{service}:{region}:{params.get('CatalogId') or account}"
    if service == "glue":
        if params.get("JobName"):
            return [Call(action, (f"{arn}:job/{params['JobName']}",))]
        # A database is named DatabaseName, or Name in the database operations; a table TableName, Name in the
        # table operations, or TableInput.Name where a table is created or updated.
        named = params.get("Name")
        database = params.get("DatabaseName") or (named if operation.endswith("Database") else None)
        table = (
            params.get("TableName")
            or (params.get("TableInput") or {}).get("Name")
            or (named if operation.endswith("Table") else None)
        )
        if database and (table or operation.endswith("Database")):
            resources = [f"{arn}:catalog", f"{arn}:database/{database}"]
            return [Call(action, (*resources, *([f"{arn}:table/{database}/{table}"] if table else [])))]
    if service == "dynamodb" and params.get("TableName"):
        return [Call(action, (f"arn:{partition}:dynamodb:{region}:{account}:table/{params['TableName']}",))]
    raise UnknownCall(f"the resources of {action} are not modelled (lakeops.emulator.run_calls)")


def _deleted_keys(body: Any) -> list[str]:
    """The keys of a DeleteObjects body, read as moto reads it (xmltodict, one of moto's own dependencies)."""
    import xmltodict

    objects = (xmltodict.parse(body).get("Delete") or {}).get("Object") or []
    return [str(item.get("Key", "")) for item in (objects if isinstance(objects, list) else [objects])]


def _credential_scope(authorization: str) -> tuple[str, str] | None:
    """(region, service) of a SigV4 `Authorization` header's `Credential=key/date/region/service/aws4_request`."""
    credential = authorization.partition("Credential=")[2].split(",", 1)[0]
    parts = credential.split("/")
    return (parts[2], parts[3]) if len(parts) >= 5 else None


def _json_body(body: Any) -> Mapping[str, Any]:
    text = body.decode() if isinstance(body, bytes) else str(body or "")
    try:
        parsed = json.loads(text) if text.strip() else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _refuse(response: Any, s3: bool, why: str) -> None:
    message = why.removeprefix("AccessDenied: ")
    if s3:
        from moto.s3.exceptions import BucketAccessDeniedError

        # BucketAccessDeniedError: moto's bulk delete answers it with AccessDenied for every key, as S3 answers a
        # caller refused on them; every other S3 request fails with it.
        error = BucketAccessDeniedError(bucket=response.bucket_name if hasattr(response, "bucket_name") else "")
        error.message = message
        raise error
    from moto.core.exceptions import JsonRESTError

    error_json = JsonRESTError("AccessDeniedException", message)
    error_json.code = 403
    raise error_json
