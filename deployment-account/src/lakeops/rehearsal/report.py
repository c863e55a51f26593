"""What the rehearsal really created, per stack: counted from the emulator, never assumed from the template.

Every template resource is accounted for in exactly one category, so that per stack
in template = created + handler not run + not emulated + listed + unaccounted. `AWS::CDK::Metadata` (CDK's
version report, on which nothing depends) is left out of every count, and the summary says so.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from lakeops.emulator.gaps import LISTED_GAPS, ListedGap, listed_gap
from lakeops.rehearsal.existence import Probe, Prober

# CloudFormation metadata, not a resource anything depends on.
METADATA_TYPES = frozenset({"AWS::CDK::Metadata"})
# How moto's CloudFormation spells "no physical id" (an attribute it lacks, or a None it rendered as text).
NO_PHYSICAL_ID = (None, "", "None")


def emulated_types() -> frozenset[str]:
    """Resource types the emulator's CloudFormation really creates: moto's own plus ours."""
    from moto.cloudformation import parsing

    from lakeops.emulator.models import EMULATIONS

    return frozenset(parsing.get_model_map()) | {e.cfn_type for e in EMULATIONS}


def is_custom(resource_type: str) -> bool:
    return resource_type.startswith("Custom::") or resource_type == "AWS::CloudFormation::CustomResource"


class Category(Enum):
    CREATED = "created"  # with a physical id, and found through the service's API where there is a check
    HANDLER_NOT_RUN = "handler not run"  # custom resources: completed without their Lambda handler
    NOT_EMULATED = "not emulated"  # a type the emulator's CloudFormation does not create
    LISTED = "listed"  # without a physical id or not found, on `lakeops.emulator.gaps.LISTED_GAPS`
    UNACCOUNTED = "unaccounted"  # without a physical id or not found, and not listed: fails the rehearsal


@dataclass(frozen=True)
class Accounted:
    logical_id: str
    resource_type: str
    category: Category
    physical_id: str = ""
    checked_by: str = ""  # the API call that found it (created) or did not (listed, unaccounted)
    reason: str = ""  # listed and unaccounted: what is missing, and for listed, why that is accepted

    def describe(self) -> str:
        return f"{self.logical_id} ({self.resource_type})" + (f": {self.reason}" if self.reason else "")


def account_for(
    template: Mapping[str, Any],
    deployed: Iterable[Mapping[str, Any]],
    *,
    supported: Collection[str],
    probe: Callable[[str, str], Probe | None],
    gaps: tuple[ListedGap, ...] = LISTED_GAPS,
) -> list[Accounted]:
    """One entry per template resource (metadata aside), in template order.

    `deployed` is what DescribeStackResources answered; `probe(type, physical id)` asks the service whether
    the resource exists (None: no check for that type).
    """
    # moto answers for types it skipped with entries that carry no logical id: those are not emulated anyway
    physical_ids = {r["LogicalResourceId"]: r.get("PhysicalResourceId") for r in deployed if r.get("LogicalResourceId")}
    entries = []
    for logical_id, resource in template.get("Resources", {}).items():
        kind = resource["Type"]
        if kind in METADATA_TYPES:
            continue
        if is_custom(kind):
            entries.append(Accounted(logical_id, kind, Category.HANDLER_NOT_RUN))
            continue
        if kind not in supported:
            entries.append(Accounted(logical_id, kind, Category.NOT_EMULATED))
            continue
        physical_id = physical_ids.get(logical_id)
        if logical_id not in physical_ids:
            missing, found_by = "not among the stack's resources", ""
        elif physical_id in NO_PHYSICAL_ID:
            missing, found_by = "created without a physical id", ""
        else:
            answer = probe(kind, str(physical_id))
            if answer is None or answer.found:
                entries.append(
                    Accounted(logical_id, kind, Category.CREATED, str(physical_id), answer.api if answer else "")
                )
                continue
            missing, found_by = f"{physical_id} not found by {answer.api}", answer.api
        gap = listed_gap(kind, logical_id, gaps)
        if gap is None:
            entries.append(Accounted(logical_id, kind, Category.UNACCOUNTED, str(physical_id or ""), found_by, missing))
        else:
            reason = f"{missing}; {gap.what}: {gap.why} (covered by {gap.covered_by})"
            entries.append(Accounted(logical_id, kind, Category.LISTED, str(physical_id or ""), found_by, reason))
    return entries


@dataclass
class StackReport:
    stack: str
    account: str
    resources: list[Accounted] = field(default_factory=list)
    metadata: int = 0  # AWS::CDK::Metadata resources, left out of every count

    def of(self, category: Category) -> list[Accounted]:
        return [r for r in self.resources if r.category is category]

    @property
    def in_template(self) -> int:
        return len(self.resources)

    @property
    def created(self) -> int:
        return len(self.of(Category.CREATED))

    @property
    def checked(self) -> int:
        """Created resources the service's own API found (the rest have no check; see `existence.py`)."""
        return sum(1 for r in self.of(Category.CREATED) if r.checked_by)

    @property
    def not_emulated(self) -> Counter[str]:
        return Counter(r.resource_type for r in self.of(Category.NOT_EMULATED))


def stack_report(
    template_file: Path, stack: str, account: str, cloudformation: Any, client: Callable[[str], Any]
) -> StackReport:
    """Account for `stack`'s template resources; `client(service)` makes a client in the stack's account."""
    template = json.loads(template_file.read_text())
    deployed = cloudformation.describe_stack_resources(StackName=stack)["StackResources"]
    resources = account_for(template, deployed, supported=emulated_types(), probe=Prober(client).probe)
    metadata = sum(1 for r in template.get("Resources", {}).values() if r["Type"] in METADATA_TYPES)
    return StackReport(stack, account, resources, metadata)


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
    protected: list[str] = field(default_factory=list)  # stacks with termination protection switched on

    def count(self, category: Category) -> int:
        return sum(len(r.of(category)) for r in self.stacks)

    def unaccounted(self) -> list[str]:
        return [f"{r.stack}: {a.describe()}" for r in self.stacks for a in r.of(Category.UNACCOUNTED)]


def unaccounted_failure(summary: EnvironmentSummary) -> str | None:
    """The rehearsal's failure message when a resource of `summary` is unaccounted, else None."""
    unaccounted = summary.unaccounted()
    if not unaccounted:
        return None
    return (
        f"{len(unaccounted)} resource(s) in {summary.env} ({summary.repository}) created without a physical id or "
        f"not found, and not listed in lakeops.emulator.gaps: " + "; ".join(unaccounted)
    )


COLUMNS = (
    ("env", "<10"),
    ("repo", "<6"),
    ("stacks", ">6"),
    ("in template", ">11"),
    ("created", ">7"),
    ("checked", ">7"),
    ("handler not run", ">15"),
    ("not emulated", ">12"),
    ("listed", ">6"),
    ("unaccounted", ">11"),
    ("contract", ">8"),
    ("time", ">7"),
)


def _row(values: Iterable[object]) -> str:
    return " ".join(f"{value!s:{spec}}" for value, (_, spec) in zip(values, COLUMNS, strict=True))


def render(summaries: list[EnvironmentSummary], steps: list[Any], failed: bool, *, status: str = "") -> str:
    """The summary; `status` (the `lakeops status` table after the last environment) is shown before the steps."""
    lines = ["", "Rehearsal summary", "=" * 17]
    header = _row(name for name, _ in COLUMNS) + "  check"
    lines.append(header)
    lines.append("-" * len(header))
    for s in summaries:
        contract = f"{s.contract_present}/{s.contract_expected}" if s.contract_expected else "-"
        lines.append(
            _row(
                (
                    s.env,
                    s.repository,
                    len(s.stacks),
                    sum(r.in_template for r in s.stacks),
                    s.count(Category.CREATED),
                    sum(r.checked for r in s.stacks),
                    s.count(Category.HANDLER_NOT_RUN),
                    s.count(Category.NOT_EMULATED),
                    s.count(Category.LISTED),
                    s.count(Category.UNACCOUNTED),
                    contract,
                    f"{s.seconds:.1f}s",
                )
            )
            + f"  {s.check}"
        )
        for job in s.jobs:
            lines.append(f"{'':<18}job {job}")
        if s.protected:
            lines.append(f"{'':<18}termination protection on: {', '.join(s.protected)}")
    lines.append(
        "in template = created + handler not run + not emulated + listed + unaccounted, per row; "
        "AWS::CDK::Metadata (CDK's version report) is not counted."
    )
    lines.append("checked: created resources found by their physical id through the service's own API.")
    not_emulated: Counter[str] = Counter()
    details: dict[Category, list[str]] = {Category.HANDLER_NOT_RUN: [], Category.LISTED: [], Category.UNACCOUNTED: []}
    for s in summaries:
        for r in s.stacks:
            not_emulated.update(r.not_emulated)
            for category, listing in details.items():
                listing += [f"{r.stack}: {a.describe()}" for a in r.of(category)]
    if not_emulated:
        lines.append("")
        lines.append("Not emulated (in the templates, not created by the emulator; verified by template tests only):")
        lines += [f"  {kind} × {count}" for kind, count in sorted(not_emulated.items())]
    if details[Category.HANDLER_NOT_RUN]:
        lines.append("Custom resources completed without running their Lambda handler (no Docker here):")
        lines += [f"  {c}" for c in details[Category.HANDLER_NOT_RUN]]
    if details[Category.LISTED]:
        lines.append("Created without a physical id or not found, listed in lakeops.emulator.gaps:")
        lines += [f"  {c}" for c in details[Category.LISTED]]
    if details[Category.UNACCOUNTED]:
        lines.append("UNACCOUNTED: created without a physical id or not found, and not listed (fails the rehearsal):")
        lines += [f"  {c}" for c in details[Category.UNACCOUNTED]]
    if status:
        lines += ["", status]
    lines.append("")
    lines.append("Steps:")
    lines += [
        f"  {'✓' if st.ok else '✗'} {st.name} ({st.seconds:.1f}s){': ' + st.detail if st.detail else ''}"
        for st in steps
    ]
    lines.append("")
    lines.append("REHEARSAL FAILED" if failed else "REHEARSAL PASSED")
    return "\n".join(lines)
