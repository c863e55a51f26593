"""The commands a deployed pipeline's CodeBuild steps run, read from its synthesized template.

The rehearsal plays the CodeBuild machine: it runs what the pipeline stack bootstrap deployed says, not a
reconstruction of it, so a command changed in the pipeline construct is the command rehearsed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakeops.errors import LakeopsError

# CDK Pipelines names a step's project after the pipeline construct, its stage and the step.
SYNTH_PROJECT = re.compile(r"^PipelineBuildSynthCdkBuildProject[0-9A-F]{8}$")


@dataclass(frozen=True)
class StepCommands:
    install: tuple[str, ...]
    build: tuple[str, ...]


def synth_step(template: Path) -> StepCommands:
    return _step(template, SYNTH_PROJECT, "Synth")


def verify_step(template: Path, stage: str) -> StepCommands:
    return _step(template, re.compile(rf"^Pipeline{re.escape(stage)}Verify[0-9A-F]{{8}}$"), f"{stage}/Verify")


def termination_protection_step(template: Path, stage: str) -> StepCommands | None:
    """The step that turns on termination protection after a deployment, where the stage has one."""
    return _optional_step(template, stage, "TerminationProtection")


def contract_check_step(template: Path, stage: str) -> StepCommands | None:
    """The step that checks, before deploying, the SSM parameters the stage reads from outside, where it reads any."""
    return _optional_step(template, stage, "ContractCheck")


def _optional_step(template: Path, stage: str, step: str) -> StepCommands | None:
    pattern = re.compile(rf"^Pipeline{re.escape(stage)}{step}[0-9A-F]{{8}}$")
    if not any(pattern.match(key) for key in _resources(template)):
        return None
    return _step(template, pattern, f"{stage}/{step}")


def source_action(template: Path) -> str:
    """The name of the pipeline's source action: the one whose revision a pipeline execution records."""
    for resource in _resources(template).values():
        if resource.get("Type") == "AWS::CodePipeline::Pipeline":
            first = resource["Properties"]["Stages"][0]
            return str(first["Actions"][0]["Name"])
    raise LakeopsError(f"{template.name}: no CodePipeline pipeline in the template")


def _resources(template: Path) -> dict[str, Any]:
    try:
        resources: dict[str, Any] = json.loads(template.read_text(encoding="utf-8"))["Resources"]
    except (OSError, ValueError, KeyError) as exc:
        raise LakeopsError(f"{template}: not a synthesized pipeline template ({exc})") from None
    return resources


def _step(template: Path, logical_id: re.Pattern[str], label: str) -> StepCommands:
    resources = _resources(template)
    found = [r for key, r in resources.items() if r.get("Type") == "AWS::CodeBuild::Project" and logical_id.match(key)]
    if len(found) != 1:
        raise LakeopsError(f"{template.name}: expected one CodeBuild project for the {label} step, found {len(found)}")
    spec = found[0]["Properties"]["Source"].get("BuildSpec")
    if not isinstance(spec, str):
        raise LakeopsError(f"{template.name}: the {label} step's build spec is not inline")
    phases = json.loads(spec).get("phases", {})
    return StepCommands(
        install=tuple(phases.get("install", {}).get("commands", [])),
        build=tuple(phases.get("build", {}).get("commands", [])),
    )
