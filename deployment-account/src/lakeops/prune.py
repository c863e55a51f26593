"""Stacks of the lake an environment still has but no app synthesizes any more, and their removal.

CDK Pipelines never deletes a stack that left the app (aws-cdk issue 10759): a removed job group keeps its
triggers running, and a group split differently can leave a named Glue job in an old stack. `lakeops prune`
compares the environment's stacks of the lake (`<prefix>-<env>-<repository>-...`) with the stacks of the
synthesized assemblies and deletes the difference. A stack that is termination protected, or any stack of an
environment that retains data, is only listed unless `--include-retained` says so separately.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datalake_config import LakeConfig, names_for
from datalake_config.naming import REPOSITORIES
from lakeops.errors import LakeopsError

# Stacks in these states are gone or going; every other state is a stack that exists.
GONE = ("DELETE_COMPLETE", "DELETE_IN_PROGRESS")


@dataclass(frozen=True)
class Orphan:
    name: str
    status: str
    protected: bool  # termination protection is on


@dataclass
class PrunePlan:
    env: str
    expected: set[str]
    retains_data: bool
    orphans: list[Orphan] = field(default_factory=list)

    def needs_separate_confirmation(self, orphan: Orphan) -> bool:
        return orphan.protected or self.retains_data

    def describe(self) -> list[str]:
        if not self.orphans:
            return [f"{self.env}: every stack of the lake is one the apps synthesize ({len(self.expected)})"]
        lines = [f"{self.env}: {len(self.orphans)} stack(s) no app synthesizes any more:"]
        for orphan in self.orphans:
            guard = ""
            if self.needs_separate_confirmation(orphan):
                why = "termination protection" if orphan.protected else "the environment retains data"
                guard = f"  (kept unless --include-retained: {why})"
            lines.append(f"  {orphan.name} [{orphan.status}]{guard}")
        return lines


def synthesized_stacks(assemblies: Iterable[Path], env_name: str) -> set[str]:
    """The stack names of `env_name`'s stage in each app's cloud assembly (`cdk.out` after `cdk synth`)."""
    stage = env_name.capitalize()
    found: set[str] = set()
    for assembly in assemblies:
        stage_dirs = [d for d in assembly.glob("assembly-*") if d.name.endswith(f"-{stage}")]
        if not (assembly / "manifest.json").is_file():
            raise LakeopsError(f"{assembly}: not a cloud assembly (run `cdk synth` in the app first)")
        for stage_dir in stage_dirs:
            manifest = json.loads((stage_dir / "manifest.json").read_text(encoding="utf-8"))
            for artifact_id, artifact in manifest.get("artifacts", {}).items():
                if artifact.get("type") == "aws:cloudformation:stack":
                    found.add(str(artifact.get("properties", {}).get("stackName", artifact_id)))
    return found


def plan_prune(config: LakeConfig, env_name: str, cloudformation: Any, expected: set[str]) -> PrunePlan:
    """Read the environment's stacks of the lake; nothing is changed."""
    if not expected:
        raise LakeopsError(
            f"the assemblies hold no stack of {env_name}: refusing to treat every stack there as removed"
        )
    names = names_for(config, env_name)
    prefixes = tuple(f"{names.stack_name(repository, '')}" for repository in REPOSITORIES)
    plan = PrunePlan(env_name, expected, config.env(env_name).retain_data)
    for page in cloudformation.get_paginator("describe_stacks").paginate():
        for stack in page["Stacks"]:
            name, status = stack["StackName"], stack["StackStatus"]
            if status in GONE or not name.startswith(prefixes) or name in expected:
                continue
            plan.orphans.append(Orphan(name, status, bool(stack.get("EnableTerminationProtection"))))
    plan.orphans.sort(key=lambda o: o.name)
    return plan


def apply_prune(plan: PrunePlan, cloudformation: Any, *, include_retained: bool) -> list[str]:
    """Delete the orphans (waiting for each); protected or retained ones only with `include_retained`."""
    done = []
    for orphan in plan.orphans:
        if plan.needs_separate_confirmation(orphan) and not include_retained:
            done.append(f"kept {orphan.name} (--include-retained deletes it)")
            continue
        if orphan.protected:
            cloudformation.update_termination_protection(StackName=orphan.name, EnableTerminationProtection=False)
        cloudformation.delete_stack(StackName=orphan.name)
        cloudformation.get_waiter("stack_delete_complete").wait(StackName=orphan.name)
        done.append(f"deleted {orphan.name}")
    return done
