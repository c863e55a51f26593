"""Allow or deny one request against an IAM identity-based policy, offline, the way IAM documents it.

No kept library evaluates (action, resource, condition context) against a policy without calling AWS
(parliament lints statements; moto's IAM mode ignores Allow conditions), so the execution-policy coverage
check uses this small evaluator. It implements the parts of the policy language the shipped policies use,
as the IAM User Guide describes them (references in `tests/test_iam_eval.py`):

- Action/NotAction match case-insensitively with `*` and `?` wildcards; Resource/NotResource match an ARN
  component by component (ArnLike semantics), the resource component case-sensitively;
- an explicit Deny wins over any Allow; no matching Allow is an implicit deny;
- within a Condition, operators AND, keys AND, values of one key OR; `ForAnyValue:`/`ForAllValues:` over
  multivalued keys; `...IfExists`; negated operators and `ForAllValues:` are true for a missing key, every
  other operator is false;
- a condition key the caller marks undecidable makes an Allow statement not apply and a Deny statement apply:
  what the check cannot decide never counts as allowing.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any


class Decision(enum.Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


@dataclass(frozen=True)
class Request:
    """One authorization IAM makes: the action, the one resource it is checked against, the request context.

    `context` holds the keys present in the request (every value as a list; single-valued keys have one).
    A key absent from `context` is missing from the request, unless `undecidable(key)` says the caller
    cannot know it.
    """

    action: str
    resource: str
    context: Mapping[str, Sequence[str]] = field(default_factory=dict)
    undecidable: Callable[[str], bool] = lambda key: False


@dataclass(frozen=True)
class Evaluation:
    decision: Decision
    undecided: tuple[str, ...] = ()  # condition keys that kept an Allow from applying (or forced a Deny)

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW


class UnsupportedPolicy(ValueError):
    """The policy uses a part of the language this evaluator does not implement (it never guesses)."""


def evaluate(statements: Iterable[Mapping[str, Any]], request: Request) -> Evaluation:
    """The decision IAM reaches for `request` under these identity-policy statements."""
    allowed = False
    undecided: set[str] = set()
    for statement in statements:
        if not _action_matches(statement, request.action) or not _resource_matches(statement, request.resource):
            continue
        outcome, keys = _conditions(statement.get("Condition", {}), request)
        effect = statement.get("Effect")
        if effect == "Deny":
            # A Deny whose condition cannot be decided is taken to apply: undecided never allows.
            if outcome is not False:
                return Evaluation(Decision.EXPLICIT_DENY, tuple(sorted(keys)))
        elif effect == "Allow":
            if outcome is True:
                allowed = True
            elif outcome is None:
                undecided |= keys
        else:
            raise UnsupportedPolicy(f"statement {statement.get('Sid', '?')}: Effect must be Allow or Deny")
    if allowed:
        return Evaluation(Decision.ALLOW)
    return Evaluation(Decision.IMPLICIT_DENY, tuple(sorted(undecided)))


def action_matches(pattern: str, action: str) -> bool:
    """IAM action matching: case-insensitive, `*` and `?` wildcards (the service prefix included)."""
    return _wildcard(pattern.lower()).fullmatch(action.lower()) is not None


def arn_matches(pattern: str, arn: str) -> bool:
    """ArnLike: `*` alone matches anything; otherwise the six ARN components are matched one by one.

    The first five components (arn, partition, service, region, account) never contain a colon; the sixth,
    the resource, may, and a wildcard in it may cross colons and slashes.
    """
    if pattern == "*":
        return True
    pattern_parts, arn_parts = pattern.split(":", 5), arn.split(":", 5)
    if len(pattern_parts) != 6 or len(arn_parts) != 6:
        return pattern == arn
    return all(_wildcard(p).fullmatch(a) is not None for p, a in zip(pattern_parts, arn_parts, strict=True))


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@lru_cache(maxsize=4096)
def _wildcard(pattern: str) -> re.Pattern[str]:
    if "${" in pattern:
        raise UnsupportedPolicy(f"policy variables are not supported: {pattern}")
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL)


def _action_matches(statement: Mapping[str, Any], action: str) -> bool:
    if "Action" in statement:
        return any(action_matches(p, action) for p in _listed(statement["Action"]))
    if "NotAction" in statement:
        return not any(action_matches(p, action) for p in _listed(statement["NotAction"]))
    raise UnsupportedPolicy(f"statement {statement.get('Sid', '?')} has neither Action nor NotAction")


def _resource_matches(statement: Mapping[str, Any], resource: str) -> bool:
    if "Resource" in statement:
        return any(arn_matches(p, resource) for p in _listed(statement["Resource"]))
    if "NotResource" in statement:
        return not any(arn_matches(p, resource) for p in _listed(statement["NotResource"]))
    raise UnsupportedPolicy(f"statement {statement.get('Sid', '?')} has neither Resource nor NotResource")


def _string_equals(policy: str, value: str) -> bool:
    return policy == value


def _string_equals_ignore_case(policy: str, value: str) -> bool:
    return policy.lower() == value.lower()


def _string_like(policy: str, value: str) -> bool:
    return _wildcard(policy).fullmatch(value) is not None


def _bool(policy: str, value: str) -> bool:
    return policy.lower() == value.lower()


# Each operator: how one policy value compares with one request value, and whether it is negated.
_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (_string_equals, False),
    "StringNotEquals": (_string_equals, True),
    "StringEqualsIgnoreCase": (_string_equals_ignore_case, False),
    "StringNotEqualsIgnoreCase": (_string_equals_ignore_case, True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "ArnEquals": (arn_matches, False),
    "ArnLike": (arn_matches, False),
    "ArnNotEquals": (arn_matches, True),
    "ArnNotLike": (arn_matches, True),
    "Bool": (_bool, False),
}


def _conditions(block: Mapping[str, Any], request: Request) -> tuple[bool | None, set[str]]:
    """True, False, or None (undecidable), with the keys that made it undecidable."""
    result: bool | None = True
    undecided: set[str] = set()
    for operator, keys in block.items():
        for key, policy_values in keys.items():
            if request.undecidable(key):
                undecided.add(key)
                result = None if result is not False else False
                continue
            if not _condition(operator, key, [str(v) for v in _listed(policy_values)], request.context):
                return False, set()
    return result, undecided


def _condition(operator: str, key: str, policy_values: list[str], context: Mapping[str, Sequence[str]]) -> bool:
    values = next((list(v) for k, v in context.items() if k.lower() == key.lower()), None)
    if operator == "Null":
        if len(policy_values) != 1 or policy_values[0].lower() not in ("true", "false"):
            raise UnsupportedPolicy(f"Null condition on {key} must be 'true' or 'false'")
        return (values is None) == (policy_values[0].lower() == "true")
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if base not in _OPERATORS or qualifier not in ("", "ForAnyValue", "ForAllValues"):
        raise UnsupportedPolicy(f"condition operator {operator} is not supported")
    compare, negated = _OPERATORS[base]
    if values is None:
        # Missing key: IfExists and ForAllValues are true, negated operators are true, the rest false.
        return if_exists or qualifier == "ForAllValues" or (negated and qualifier == "")

    def matches(value: str) -> bool:
        hit = any(compare(p, value) for p in policy_values)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(matches(v) for v in values)
    if qualifier == "ForAnyValue":
        return any(matches(v) for v in values)
    if len(values) != 1:
        # A single-valued operator on a multivalued key is undefined in IAM's documentation; refuse to guess.
        raise UnsupportedPolicy(f"{operator} on {key}, which has several values in the request: use ForAnyValue")
    return matches(values[0])
