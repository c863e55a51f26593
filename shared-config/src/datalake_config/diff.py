"""What changes between two configs: the fields, and the shared names (stacks, parameters, secret) they produce."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datalake_config.model import LakeConfig
from datalake_config.naming import REPOSITORIES, lake_names, names_for


@dataclass(frozen=True)
class ConfigDiff:
    fields: list[tuple[str, Any, Any]]  # (path, old, new); a missing side is None
    names_added: dict[str, list[str]]  # scope ("lake" or environment) → names
    names_removed: dict[str, list[str]]

    @property
    def empty(self) -> bool:
        return not (self.fields or self.names_added or self.names_removed)

    def render(self) -> str:
        if self.empty:
            return "no changes"
        lines: list[str] = []
        if self.fields:
            lines.append("fields:")
            lines += [f"  {path}: {_show(old)} → {_show(new)}" for path, old, new in self.fields]
        for scope in sorted(set(self.names_added) | set(self.names_removed)):
            lines.append(f"names in {scope}:")
            lines += [f"  - {name}" for name in self.names_removed.get(scope, [])]
            lines += [f"  + {name}" for name in self.names_added.get(scope, [])]
        return "\n".join(lines)


def resource_names(config: LakeConfig) -> dict[str, set[str]]:
    """Every shared name the config produces, grouped by scope."""
    lake = lake_names(config)
    result = {"lake": {lake.global_config_secret, lake.deployment_stack_name}}
    for env in config.environment_names:
        names = names_for(config, env)
        scope = result.setdefault(f"environment {env}", set())
        for repo in REPOSITORIES:
            scope.add(f"pipeline {names.pipeline_stack_name(repo)} (branch {config.branch_for(repo, env)})")
        scope.update(f"ssm {p.path}" for p in names.contract())
        scope.update(f"glue database {names.glue_database_name(zone)}" for zone in config.zones)
        scope.add(f"account {config.env(env).account} / {config.env(env).region}")
    return result


def diff(old: LakeConfig, new: LakeConfig) -> ConfigDiff:
    fields = _field_changes(old.model_dump(mode="json"), new.model_dump(mode="json"), "")
    old_names, new_names = resource_names(old), resource_names(new)
    added: dict[str, list[str]] = {}
    removed: dict[str, list[str]] = {}
    for scope in set(old_names) | set(new_names):
        before, after = old_names.get(scope, set()), new_names.get(scope, set())
        if after - before:
            added[scope] = sorted(after - before)
        if before - after:
            removed[scope] = sorted(before - after)
    return ConfigDiff(fields, added, removed)


def _field_changes(old: Any, new: Any, path: str) -> list[tuple[str, Any, Any]]:
    # An added or removed section (a new environment) is listed field by field, not as one blob.
    sections = (old, new)
    if any(isinstance(side, dict) for side in sections) and all(isinstance(side, dict | None) for side in sections):
        old, new = old or {}, new or {}
        changes: list[tuple[str, Any, Any]] = []
        for key in list(old) + [k for k in new if k not in old]:
            sub = f"{path}.{key}" if path else key
            changes += _field_changes(old.get(key), new.get(key), sub)
        return changes
    return [] if old == new else [(path, old, new)]


def _show(value: Any) -> str:
    return "(absent)" if value is None else repr(value)
