"""What an emulated Glue run's Spark reads and writes may touch: the job role's identity policies, as IAM would decide.

moto evaluates no IAM policy, so a job whose role lacks a grant would write anyway. Spark's writes reach S3
only through the emulated run's mirror (`glue_mirror`), so they are checked there, before anything is
written back: each created or changed object needs `s3:PutObject` on `arn:<partition>:s3:::<bucket>/<key>`,
each deleted one `s3:DeleteObject`, under the statements of the role's inline and attached managed policies
as deployed in the emulator, evaluated by `lake_pipelines.iam_eval` (explicit deny wins, no allow denies).
A write the role may not make is not written back, and the run fails naming the action and the resource.

The calls the job makes through boto3 (the catalog, a manifest written with the SDK) are checked as they are
made, by `run_calls`. Spark's reads are checked once the run ends (`denied_reads`): s3:GetObject on each object
it opened and s3:ListBucket with the folder as `s3:prefix` on each folder it listed, as `read_watch` saw them.
Not checked: metadata requests (a HEAD or a `getFileStatus` opens no file), the permissions boundary (that
every role fits inside it is proven from the templates by the stage tests), KMS key policies, and condition
keys other than a listing's `s3:prefix`: a condition on a key this check cannot know keeps an Allow from
applying, so it is reported rather than passed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from lake_pipelines.iam_eval import Evaluation, Request, evaluate


def role_statements(account: str, partition: str, role: str) -> list[Mapping[str, Any]]:
    """Every statement of the role's inline and attached managed policies in the emulator's IAM."""
    from moto.iam.models import iam_backends

    backend = iam_backends[account][partition]
    name = role.rsplit("/", 1)[-1]
    found = backend.get_role(name)
    documents: list[Any] = list(found.policies.values())
    documents += [
        version.document
        for policy in found.managed_policies.values()
        for version in policy.versions
        if version.is_default
    ]
    statements: list[Mapping[str, Any]] = []
    for document in documents:
        parsed = json.loads(unquote(document)) if isinstance(document, str) else document
        listed = parsed.get("Statement", [])
        statements += listed if isinstance(listed, list) else [listed]
    return statements


def decide(
    statements: Iterable[Mapping[str, Any]],
    action: str,
    resource: str,
    context: Mapping[str, Sequence[str]] | None = None,
) -> Evaluation:
    """IAM's decision on one request under these statements. `context` holds the condition keys the request
    carries; a condition on any other key is one this emulator cannot know, which keeps an Allow from applying
    (`Evaluation.undecided` names it). Raises UnsupportedPolicy for a policy the evaluator does not implement."""
    known = {key.lower(): list(values) for key, values in (context or {}).items()}
    request = Request(action, resource, known, undecidable=lambda key: key.lower() not in known)
    return evaluate(list(statements), request)


def denied_writes(
    statements: Iterable[Mapping[str, Any]], partition: str, puts: Iterable[str], deletes: Iterable[str]
) -> dict[str, str]:
    """For each `s3://bucket/key` the statements do not allow to put (or to delete), why: `<action> on <arn>:
    <decision>`, and the condition keys that kept an Allow from applying."""
    checks = [_object("s3:PutObject", url, partition) for url in puts]
    return _refused(statements, checks + [_object("s3:DeleteObject", url, partition) for url in deletes])


def denied_reads(
    statements: Iterable[Mapping[str, Any]], partition: str, gets: Iterable[str], lists: Iterable[str] = ()
) -> dict[str, str]:
    """The same for reads: each object URL in `gets` needs s3:GetObject on it, and each folder URL in `lists`
    (`s3://bucket/a/b/`, or `s3://bucket/` for the bucket's top) s3:ListBucket on the bucket with the folder's
    key as `s3:prefix` (`a/b/`, or empty): what S3 authorizes when the folder is listed (Amazon S3 User Guide,
    "Condition key examples": s3:prefix limits ListBucket to keys with the prefix)."""
    checks = [_object("s3:GetObject", url, partition) for url in gets]
    for url in lists:
        bucket, _, key = url.removeprefix("s3://").partition("/")
        checks.append(_Check("s3:ListBucket", url, f"arn:{partition}:s3:::{bucket}", {"s3:prefix": key}))
    return _refused(statements, checks)


@dataclass(frozen=True)
class _Check:
    action: str
    url: str
    arn: str
    context: Mapping[str, str] = field(default_factory=dict)


def _object(action: str, url: str, partition: str) -> _Check:
    return _Check(action, url, f"arn:{partition}:s3:::{url.removeprefix('s3://')}")


def _refused(statements: Iterable[Mapping[str, Any]], checks: Sequence[_Check]) -> dict[str, str]:
    """For each check IAM would refuse, its URL and why, naming the condition keys it carried."""
    rules = list(statements)
    denied = {}
    for check in checks:
        decision = decide(rules, check.action, check.arn, {key: [value] for key, value in check.context.items()})
        if not decision.allowed:
            undecided = f" (conditions on {', '.join(decision.undecided)})" if decision.undecided else ""
            carried = "".join(f" with {key} {value!r}" for key, value in check.context.items())
            denied[check.url] = f"{check.action} on {check.arn}{carried}: {decision.decision.value}{undecided}"
    return denied
