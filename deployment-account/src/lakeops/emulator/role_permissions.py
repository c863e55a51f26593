"""What a role may call, by its identity policies as deployed in the emulator: the authorization moto skips.

moto evaluates no IAM policy, so a service acting with a role (EventBridge starting a state machine with a
target's role, a state machine's task calling Glue with the execution's role) would succeed whatever the role
allows. The emulator's own service code asks here first: each (action, resource) the call needs is evaluated
against the statements of the role's inline and attached managed policies (`glue_permissions.role_statements`)
by `lake_pipelines.iam_eval` (explicit deny wins, no allow denies). A condition key this check cannot know
keeps an Allow from applying, so it is reported rather than passed.

Not evaluated, as in `glue_permissions`: permissions boundaries, resource policies, session policies, and the
role's trust policy (whether the service may assume it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from lake_pipelines.iam_eval import UnsupportedPolicy
from lakeops.emulator import glue_permissions


def arn_account(arn: str) -> str:
    """The account of an ARN (`arn:partition:service:region:account:...`), or "" when it names none."""
    parts = arn.split(":", 5)
    return parts[4] if len(parts) == 6 else ""


def arn_partition(arn: str) -> str:
    parts = arn.split(":", 5)
    return parts[1] if len(parts) == 6 and parts[1] else "aws"


def denial(
    role_arn: str | None,
    requests: Iterable[tuple[str, str]],
    *,
    context: Mapping[str, Sequence[str]] | None = None,
) -> str | None:
    """None when the role may make every (action, resource) request; otherwise why not, naming the first one
    it may not make: `AccessDenied: role <arn> may not <action> on <resource> (<decision>)`. `context` holds the
    condition keys the requests carry; any other key a condition names is one this check cannot know."""
    if not role_arn:
        return "AccessDenied: no role to act with"
    account = arn_account(role_arn)
    if not role_arn.startswith("arn:") or ":role/" not in role_arn or not account:
        return f"AccessDenied: {role_arn!r} is not a role ARN"
    try:
        statements = glue_permissions.role_statements(account, arn_partition(role_arn), role_arn)
    except Exception as exc:  # moto's NoSuchEntity: a role that does not exist allows nothing
        return f"AccessDenied: role {role_arn} cannot be used: {exc}"
    for action, resource in requests:
        refused = f"AccessDenied: role {role_arn} may not {action} on {resource}"
        try:
            decision = glue_permissions.decide(statements, action, resource, context)
        except UnsupportedPolicy as exc:
            return f"{refused} (its policy cannot be evaluated: {exc})"
        if not decision.allowed:
            undecided = f", conditions on {', '.join(decision.undecided)}" if decision.undecided else ""
            return f"{refused} ({decision.decision.value}{undecided})"
    return None
