"""AWS's own published data, read offline: the IAM action reference and the CloudFormation resource schemas.

- The IAM Service Authorization Reference (actions, the resource types each acts on, condition keys) as
  parliament ships it (`parliament/iam_definition.json`). The file is located without importing parliament:
  its `__init__` imports `pkg_resources`, which setuptools no longer provides.
- The CloudFormation resource provider schemas as cfn-lint ships them: `providers/<region>.json` maps a
  resource type to a file in `resources/`, whose `handlers.<handler>.permissions` list what CloudFormation
  calls and whose `tagging` says whether the type takes (stack) tags.
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

HANDLERS = ("create", "read", "update", "delete", "list")


class AwsDataError(LookupError):
    """A resource type or action the shipped AWS data does not know."""


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise AwsDataError(f"the package {name} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


# --- IAM action reference ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResourceType:
    service: str
    name: str
    arn: str  # pattern with ${Partition}, ${Region}, ${Account} and the type's own ${Variables}
    required: bool  # marked `*` in the action's row: every request carries one
    condition_keys: frozenset[str] = frozenset()

    def is_created(self) -> bool:
        """The action creates this resource: its row takes the tags of the request."""
        return "aws:RequestTag/${TagKey}" in self.condition_keys


@dataclass(frozen=True)
class Action:
    service: str
    name: str
    access_level: str
    resource_types: tuple[ResourceType, ...]
    condition_keys: frozenset[str]

    @property
    def full_name(self) -> str:
        return f"{self.service}:{self.name}"

    def supports_request_tags(self) -> bool:
        return "aws:RequestTag/${TagKey}" in self.condition_keys or "aws:TagKeys" in self.condition_keys


@cache
def _iam_definition() -> list[dict[str, Any]]:
    path = _package_dir("parliament") / "iam_definition.json"
    data: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return data


@cache
def _actions() -> dict[str, Action]:
    actions: dict[str, Action] = {}
    for service in _iam_definition():
        prefix = service["prefix"]
        arns = {r["resource"]: r["arn"] for r in service["resources"]}
        for privilege in service["privileges"]:
            types: list[ResourceType] = []
            keys: set[str] = set()
            for row in privilege["resource_types"]:
                keys.update(row["condition_keys"])
                name = row["resource_type"]
                if name:
                    bare = name.rstrip("*")
                    types.append(
                        ResourceType(
                            prefix, bare, arns.get(bare, ""), name.endswith("*"), frozenset(row["condition_keys"])
                        )
                    )
            key = f"{prefix}:{privilege['privilege']}".lower()
            # A few prefixes are split over two services in the reference: merge what each says.
            previous = actions.get(key)
            if previous is not None:
                types = [*previous.resource_types, *(t for t in types if t not in previous.resource_types)]
                keys |= previous.condition_keys
            actions[key] = Action(
                prefix, privilege["privilege"], privilege["access_level"], tuple(types), frozenset(keys)
            )
    return actions


def iam_action(action: str) -> Action:
    found = _actions().get(action.lower())
    if found is None:
        raise AwsDataError(f"{action} is not in the IAM action reference")
    return found


def is_known_action(action: str) -> bool:
    return action.lower() in _actions()


def actions_matching(pattern: str) -> list[str]:
    """Every action of the IAM reference a policy's Action pattern (`s3:GetObject*`, `kms:*`) stands for."""
    regex = re.compile(re.escape(pattern.lower()).replace(r"\*", ".*").replace(r"\?", "."))
    return sorted(a.full_name for key, a in _actions().items() if regex.fullmatch(key))


@cache
def _resource_arns() -> dict[tuple[str, str], str]:
    return {(s["prefix"], r["resource"]): r["arn"] for s in _iam_definition() for r in s["resources"]}


def resource_arn(service: str, resource_type: str) -> str | None:
    """The ARN pattern of one of a service's resource types."""
    return _resource_arns().get((service, resource_type))


def arn_variables(pattern: str) -> list[str]:
    """The ${Variables} of an ARN pattern that the caller must supply (not partition, region or account)."""
    return [v for v in re.findall(r"\$\{([^}]+)\}", pattern) if v not in ("Partition", "Region", "Account")]


def fill_arn(pattern: str, partition: str, region: str, account: str, values: list[str]) -> str:
    filled = pattern.replace("${Partition}", partition).replace("${Region}", region).replace("${Account}", account)
    names = arn_variables(pattern)
    if len(names) != len(values):
        raise ValueError(f"{pattern} needs {names}, got {values}")
    for name, value in zip(names, values, strict=True):
        filled = filled.replace("${" + name + "}", value, 1)
    return filled


# --- CloudFormation resource provider schemas --------------------------------------------------------
@cache
def _providers(region: str) -> dict[str, str]:
    path = _package_dir("cfnlint") / "data" / "schemas" / "providers" / f"{region}.json"
    if not path.exists():
        path = path.with_name("us-east-1.json")
    data: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return data


@cache
def resource_schema(resource_type: str, region: str) -> dict[str, Any]:
    file = _providers(region).get(resource_type)
    if file is None:
        raise AwsDataError(f"{resource_type} has no CloudFormation resource schema for {region}")
    path = _package_dir("cfnlint") / "data" / "schemas" / "resources" / f"{file}.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


# Types CloudFormation still manages without a registry resource provider publish no handler permissions.
# Their calls, from the service's API reference (each call CloudFormation makes to create, change, read and
# delete the resource, and the role the resource is given):
UNPUBLISHED_HANDLERS: dict[str, dict[str, tuple[str, ...]]] = {
    # CodeBuild API reference: CreateProject / UpdateProject / BatchGetProjects / DeleteProject; the service
    # role is passed on create and update (iam:PassRole, CodeBuild user guide "Allow a user to ... pass roles").
    "AWS::CodeBuild::Project": {
        "create": ("codebuild:CreateProject", "codebuild:BatchGetProjects", "iam:PassRole"),
        "read": ("codebuild:BatchGetProjects",),
        "update": ("codebuild:UpdateProject", "codebuild:BatchGetProjects", "iam:PassRole"),
        "delete": ("codebuild:DeleteProject",),
    },
}


def handler_permissions(resource_type: str, region: str) -> dict[str, tuple[str, ...]]:
    """What CloudFormation calls per handler (create, read, update, delete, list) for this type.

    A type whose schema publishes no handlers must be in `UNPUBLISHED_HANDLERS`, or this raises: a type with no
    known calls would otherwise pass every coverage check.
    """
    if resource_type in UNPUBLISHED_HANDLERS:
        return UNPUBLISHED_HANDLERS[resource_type]
    handlers = resource_schema(resource_type, region).get("handlers", {})
    if not handlers:
        raise AwsDataError(f"{resource_type} publishes no handler permissions; list its calls in UNPUBLISHED_HANDLERS")
    return {h: tuple(handlers[h].get("permissions", ())) for h in HANDLERS if h in handlers}


def is_taggable(resource_type: str, region: str) -> bool:
    """Whether the type takes tags, so that CloudFormation propagates the stack's tags to it."""
    schema = resource_schema(resource_type, region)
    if "tagging" in schema:
        return bool(schema["tagging"].get("taggable", False))
    return "Tags" in schema.get("properties", {})
