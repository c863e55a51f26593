"""What the rehearsal really created, per stack: counted from the emulator, never assumed from the template."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# CloudFormation metadata, not a resource anything depends on.
METADATA_TYPES = frozenset({"AWS::CDK::Metadata"})


def emulated_types() -> frozenset[str]:
    """Resource types the emulator's CloudFormation really creates: moto's own plus ours."""
    from moto.cloudformation import parsing

    from lakeops.emulator.models import EMULATIONS

    return frozenset(parsing.get_model_map()) | {e.cfn_type for e in EMULATIONS}


def is_custom(resource_type: str) -> bool:
    return resource_type.startswith("Custom::") or resource_type == "AWS::CloudFormation::CustomResource"


@dataclass
class StackReport:
    stack: str
    account: str
    in_template: int = 0
    created: int = 0  # resources the emulator reports with a physical id
    handler_not_run: list[str] = field(default_factory=list)
    not_emulated: Counter[str] = field(default_factory=Counter)


def stack_report(template_file: Path, stack: str, account: str, cloudformation: Any) -> StackReport:
    template = json.loads(template_file.read_text())
    resources = {k: v for k, v in template.get("Resources", {}).items() if v["Type"] not in METADATA_TYPES}
    report = StackReport(stack, account, in_template=len(resources))
    supported = emulated_types()
    for logical_id, resource in resources.items():
        kind = resource["Type"]
        if is_custom(kind):
            report.handler_not_run.append(f"{logical_id} ({kind})")
        elif kind not in supported:
            report.not_emulated[kind] += 1
    deployed = cloudformation.describe_stack_resources(StackName=stack)["StackResources"]
    report.created = sum(
        1
        for r in deployed
        if r.get("PhysicalResourceId") not in (None, "", "None")
        and not is_custom(r["ResourceType"])
        and r["ResourceType"] not in METADATA_TYPES
    )
    return report


@dataclass
class EnvironmentSummary:
    env: str
    repository: str
    stacks: list[StackReport] = field(default_factory=list)
    contract_present: int = 0
    contract_expected: int = 0
    jobs: list[str] = field(default_factory=list)  # "group/job: rows in → rows out"
    seconds: float = 0.0
    check: str = ""


def render(summaries: list[EnvironmentSummary], steps: list[Any], failed: bool) -> str:
    lines = ["", "Rehearsal summary", "=" * 17]
    header = (
        f"{'env':<10} {'repo':<6} {'stacks':>6} {'created':>8} {'not emulated':>13} {'contract':>9} {'time':>7}  check"
    )
    lines.append(header)
    lines.append("-" * len(header))
    for s in summaries:
        created = sum(r.created for r in s.stacks)
        skipped = sum(sum(r.not_emulated.values()) for r in s.stacks)
        contract = f"{s.contract_present}/{s.contract_expected}" if s.contract_expected else "-"
        lines.append(
            f"{s.env:<10} {s.repository:<6} {len(s.stacks):>6} {created:>8} {skipped:>13} {contract:>9} "
            f"{s.seconds:>6.1f}s  {s.check}"
        )
        for job in s.jobs:
            lines.append(f"{'':<18}job {job}")
    not_emulated: Counter[str] = Counter()
    custom: list[str] = []
    for s in summaries:
        for r in s.stacks:
            not_emulated.update(r.not_emulated)
            custom += [f"{r.stack}: {c}" for c in r.handler_not_run]
    if not_emulated:
        lines.append("")
        lines.append("Not emulated (in the templates, not created by the emulator; verified by template tests only):")
        lines += [f"  {kind} × {count}" for kind, count in sorted(not_emulated.items())]
    if custom:
        lines.append("Custom resources completed without running their Lambda handler (no Docker here):")
        lines += [f"  {c}" for c in custom]
    lines.append("")
    lines.append("Steps:")
    lines += [
        f"  {'✓' if st.ok else '✗'} {st.name} ({st.seconds:.1f}s){': ' + st.detail if st.detail else ''}"
        for st in steps
    ]
    lines.append("")
    lines.append("REHEARSAL FAILED" if failed else "REHEARSAL PASSED")
    return "\n".join(lines)
