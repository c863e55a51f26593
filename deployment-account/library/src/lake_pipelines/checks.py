"""Security and lint gates shared by every CDK app: cdk-nag (AwsSolutions) and cfn-lint.

cdk-nag 3 is a policy-validation plugin, and a plugin added to the app does not reach the stacks of a
nested `Stage` (the pipelines' deployment stages): `enable_nag` must be called on the app *and* on
every stage. Findings fail synthesis; an acknowledged finding must carry a reason, next to the
resource it concerns, and that reason is written into the template metadata for auditors.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

MIN_REASON_LENGTH = 20


class NagFindings(RuntimeError):
    """Unacknowledged cdk-nag findings; the message lists rule, construct path and description."""


def lake_app(*, outdir: str | None = None, context: Mapping[str, Any] | None = None) -> cdk.App:
    """The CDK app of a lake repository (`app.py`), with CDK's built-in CloudFormation validation off.

    That plugin (CDK's WASM template validator, on by default) starts its engine in every `cdk synth` and
    only warns: about 2 s of a 5-7 s synth here, for nothing it reports on these templates. The templates'
    gate is cfn-lint, pinned, whose errors fail each repository's tests (`cfn_lint`), and the tests run before
    `cdk synth` in the pipeline's Synth step; cdk-nag stays on every synth (`enable_nag`). Tests build their
    apps with it too, so they synthesize what the apps synthesize.
    """
    return cdk.App(builtin_cloud_formation_validation=False, outdir=outdir, context=dict(context or {}))


def enable_nag(scope: cdk.Stage) -> None:
    """Check every stack of `scope` (an App or a Stage) against the AwsSolutions pack at synth time."""
    checks = AwsSolutionsChecks(scope, write_suppressions_to_cloud_formation=True)
    cdk.Validations.of(scope).add_plugins(checks)


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on `construct`, e.g. `AwsSolutions-IAM5[Resource::*]`."""
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise ValueError(f"acknowledging {rule} on {construct.node.path} needs a real reason, got {reason!r}")
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=rule, reason=reason.strip()))


def synth(app: cdk.App) -> cdk.cx_api.CloudAssembly:
    """`app.synth()` that turns a cdk-nag failure into `NagFindings` listing every finding."""
    try:
        return app.synth()
    except RuntimeError as exc:
        if "ValidationFailed" not in str(exc):
            raise
        report = Path(app.outdir) / "validation-report.json"
        raise NagFindings(_describe_findings(report)) from None


def _describe_findings(report: Path) -> str:
    if not report.exists():
        return "cdk-nag validation failed (no report written)"
    lines = []
    for plugin in json.loads(report.read_text()).get("pluginReports", []):
        for violation in plugin.get("violations", []):
            for construct in violation.get("violatingConstructs", []):
                lines.append(f"{violation['ruleName']} at {construct['constructPath']}: {violation['description']}")
    return "cdk-nag findings:\n" + "\n".join(f"  {line}" for line in lines)


@dataclass(frozen=True)
class Acknowledged:
    template: str
    logical_id: str
    rule: str
    reason: str


def acknowledgements(assembly_dir: str | Path) -> list[Acknowledged]:
    """Every acknowledged finding written into the templates of an assembly (nested stages included)."""
    found = []
    for template in templates(assembly_dir):
        resources = json.loads(template.read_text()).get("Resources", {})
        for logical_id, resource in resources.items():
            for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
                found.append(Acknowledged(template.name, logical_id, rule["id"], rule.get("reason", "")))
    return found


def templates(assembly_dir: str | Path) -> list[Path]:
    """Every CloudFormation template in a cloud assembly, including nested stage assemblies."""
    return sorted(Path(assembly_dir).rglob("*.template.json"))


def cfn_lint(assembly_dir: str | Path, *, ignore: tuple[str, ...] = ()) -> list[str]:
    """cfn-lint errors (not warnings) over every template of the assembly; empty means clean."""
    files = [str(t) for t in templates(assembly_dir)]
    if not files:
        return [f"no templates found under {assembly_dir}"]
    # the cfn-lint installed beside this interpreter, so the pinned version is the one that runs
    command = [str(Path(sys.executable).with_name("cfn-lint")), "--format", "parseable"]
    if ignore:
        command += ["--ignore-checks", *ignore]
    result = subprocess.run([*command, "--", *files], capture_output=True, text=True, check=False)
    # parseable lines: file:line:col:endline:endcol:RULE:message; E-rules are errors
    errors = [
        line
        for line in result.stdout.splitlines()
        if line.split(":")[5:6] and line.split(":")[5].startswith("E") and not _known_false_positive(line)
    ]
    if result.returncode & 1:  # cfn-lint itself failed (bad arguments, unreadable file)
        errors.append(f"cfn-lint failed: {result.stderr.strip()[:500]}")
    return errors


# cfn-lint 1.x validates a pipeline action's `Configuration.RoleArn` (rule E3703) by running every rule of
# the ARN format, including the informational "use Sub instead of Join" style hint (I1022), and reports
# that hint under E3703. CDK pipelines writes exactly such a Join for the target account's deploy role.
_FALSE_POSITIVES = (("E3703", "Prefer using Fn::Sub over Fn::Join with an empty delimiter"),)


def _known_false_positive(line: str) -> bool:
    parts = line.split(":", 6)
    return len(parts) == 7 and (parts[5], parts[6].strip()) in _FALSE_POSITIVES
