"""The deployment-account stack synthesized once from the example config (and once with a connection source)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from datalake_config import LakeConfig, from_mapping, lake_names
from lake_pipelines.checks import MIN_REASON_LENGTH, acknowledgements, cfn_lint, enable_nag, lake_app, synth
from lakeops.deployment_stack import DeploymentAccountStack

CONNECTION_ARN = "arn:aws:codeconnections:eu-west-1:111111111111:connection/00000000-0000-0000-0000-000000000000"
DEPLOYMENT_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def assembly(example_config: LakeConfig, module_dir: Path) -> Path:
    # the app's own feature flags (cdk.json), partition literals among them
    context = json.loads((DEPLOYMENT_DIR / "cdk.json").read_text())["context"]
    app = lake_app(outdir=str(module_dir / "deployment"), context=context)
    DeploymentAccountStack(app, lake_names(example_config).deployment_stack_name, config=example_config)
    enable_nag(app)
    synth(app)  # NagFindings on any unacknowledged finding
    return module_dir / "deployment"


@pytest.fixture(scope="module")
def template(example_config: LakeConfig, assembly: Path) -> Template:
    name = lake_names(example_config).deployment_stack_name
    return Template.from_json(json.loads((assembly / f"{name}.template.json").read_text()))


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _only(template: Template, kind: str) -> tuple[str, dict[str, Any]]:
    found = template.find_resources(kind)
    assert len(found) == 1, f"expected one {kind}, got {list(found)}"
    return next(iter(found.items()))


def test_secret_has_no_value_in_the_template(example_config: LakeConfig, template: Template) -> None:
    _, secret = _only(template, "AWS::SecretsManager::Secret")
    props = secret["Properties"]
    assert props["Name"] == lake_names(example_config).global_config_secret
    assert "SecretString" not in props
    assert "GenerateSecretString" not in props
    assert secret["DeletionPolicy"] == "Retain"


def test_secret_is_encrypted_with_its_own_rotated_key_behind_the_named_alias(
    example_config: LakeConfig, template: Template
) -> None:
    _, secret = _only(template, "AWS::SecretsManager::Secret")
    key_id = secret["Properties"]["KmsKeyId"]["Fn::GetAtt"][0]
    key = template.to_json()["Resources"][key_id]
    assert key["Properties"]["EnableKeyRotation"] is True
    template.has_resource_properties(
        "AWS::KMS::Alias",
        {
            "AliasName": lake_names(example_config).global_config_key_alias,
            "TargetKeyId": {"Fn::GetAtt": [key_id, "Arn"]},
        },
    )


def test_topic_is_encrypted_tls_only_and_open_to_codestar_notifications_of_this_account(
    example_config: LakeConfig, template: Template
) -> None:
    topic_id, topic = _only(template, "AWS::SNS::Topic")
    lake = lake_names(example_config)
    assert topic["Properties"]["TopicName"] == lake.pipeline_topic
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    resources = template.to_json()["Resources"]
    assert resources[key_id]["Properties"]["EnableKeyRotation"] is True
    template.has_resource_properties("AWS::KMS::Alias", {"AliasName": lake.pipeline_topic_key_alias})
    _, policy = _only(template, "AWS::SNS::TopicPolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert {
        "Action": "sns:Publish",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": "*",
        "Resource": {"Ref": topic_id},
        "Sid": "AllowPublishThroughSSLOnly",
    } in statements
    (publish,) = [s for s in statements if s["Effect"] == "Allow"]
    assert publish["Principal"] == {"Service": "codestar-notifications.amazonaws.com"}
    assert publish["Condition"] == {"StringEquals": {"aws:SourceAccount": example_config.deployment.account}}
    key_statements = resources[key_id]["Properties"]["KeyPolicy"]["Statement"]
    (service,) = [
        s for s in key_statements if s.get("Principal") == {"Service": "codestar-notifications.amazonaws.com"}
    ]
    # exactly the statement the CodeStar Notifications guide documents: no condition the call may not carry
    assert sorted(service["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert service["Condition"] == {"StringEquals": {"kms:ViaService": "sns.eu-west-1.amazonaws.com"}}


def test_every_configured_address_is_subscribed(example_config: LakeConfig, template: Template) -> None:
    subscriptions = template.find_resources("AWS::SNS::Subscription")
    endpoints = sorted(s["Properties"]["Endpoint"] for s in subscriptions.values())
    assert endpoints == sorted(example_config.notifications.emails)
    assert all(s["Properties"]["Protocol"] == "email" for s in subscriptions.values())


def test_codecommit_repositories_named_as_configured(example_config: LakeConfig, template: Template) -> None:
    names = sorted(
        r["Properties"]["RepositoryName"] for r in template.find_resources("AWS::CodeCommit::Repository").values()
    )
    assert names == sorted(
        [
            example_config.repositories.infra.source.repository_name,
            example_config.repositories.etl.source.repository_name,
        ]
    )
    template.has_resource("AWS::CodeCommit::Repository", {"DeletionPolicy": "Retain"})


# --- the team's package index ------------------------------------------------------------------------------
def test_environment_branches_after_the_first_are_protected_from_direct_pushes(
    example_config: LakeConfig, template: Template
) -> None:
    policies = template.find_resources("AWS::IAM::ManagedPolicy")
    (policy,) = [p for p in policies.values() if p["Properties"]["ManagedPolicyName"].endswith("branch-protection")]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert {"codecommit:GitPush", "codecommit:DeleteBranch", "codecommit:MergePullRequestByThreeWay"} <= set(
        statement["Action"]
    )
    protected = statement["Condition"]["StringEqualsIfExists"]["codecommit:References"]
    later = example_config.environment_names[1:]
    assert protected == sorted(
        {f"refs/heads/{example_config.branch_for(k, e)}" for k in ("infra", "etl") for e in later}
    )
    assert "refs/heads/dev" not in protected  # the first branch is where work lands
    # a call naming no reference is not let through (the CodeCommit User Guide's pattern)
    assert statement["Condition"]["Null"] == {"codecommit:References": "false"}
    assert len(statement["Resource"]) == 2  # both repositories


def test_only_the_configured_approvers_may_approve(example_config: LakeConfig, template: Template) -> None:
    """A deny on the approval actions of every environment that requires approval, except for its approvers."""
    policies = template.find_resources("AWS::IAM::ManagedPolicy")
    (policy,) = [
        p for p in policies.values() if p["Properties"]["ManagedPolicyName"] == "acme-lake-approval-restriction"
    ]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]  # prod is the only one asking for approval
    assert statement["Effect"] == "Deny" and statement["Action"] == "codepipeline:PutApprovalResult"
    # resource type `action` of the IAM service authorization reference: pipeline/stage/action
    assert sorted(statement["Resource"]) == [
        f"arn:aws:codepipeline:eu-west-1:111111111111:acme-lake-{kind}-prod-pipeline/Prod/Approve"
        for kind in ("etl", "infra")
    ]
    assert statement["Condition"] == {
        "ArnNotLike": {"aws:PrincipalArn": ["arn:aws:iam::111111111111:role/acme-lake-operator"]}
    }


def test_package_domain_is_encrypted_with_its_own_rotated_key_usable_by_codeartifact_only(
    example_config: LakeConfig, template: Template
) -> None:
    lake = lake_names(example_config)
    _, domain = _only(template, "AWS::CodeArtifact::Domain")
    assert domain["Properties"]["DomainName"] == lake.package_domain
    assert domain["DeletionPolicy"] == "Retain"
    key_id = domain["Properties"]["EncryptionKey"]["Fn::GetAtt"][0]
    key = template.to_json()["Resources"][key_id]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"  # the domain's assets stay encrypted with it
    template.has_resource_properties(
        "AWS::KMS::Alias", {"AliasName": lake.package_key_alias, "TargetKeyId": {"Fn::GetAtt": [key_id, "Arn"]}}
    )
    # AWS's key policy for a CodeArtifact domain key: grants created through CodeArtifact, for this account only
    (codeartifact,) = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if "kms:*" not in _listed(s["Action"])]
    assert codeartifact == {
        "Sid": "CodeArtifactDomainOfThisAccount",
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": ["kms:CreateGrant", "kms:DescribeKey"],
        "Resource": "*",
        "Condition": {
            "StringEquals": {
                "kms:CallerAccount": example_config.deployment.account,
                "kms:ViaService": "codeartifact.eu-west-1.amazonaws.com",
            }
        },
    }


def test_team_repository_reaches_the_public_index_only_through_its_upstream(
    example_config: LakeConfig, template: Template
) -> None:
    lake = lake_names(example_config)
    repositories = template.find_resources("AWS::CodeArtifact::Repository")
    by_name = {r["Properties"]["RepositoryName"]: (k, r) for k, r in repositories.items()}
    assert sorted(by_name) == sorted([lake.package_repository, lake.package_upstream_repository])
    (domain_id, _) = _only(template, "AWS::CodeArtifact::Domain")
    upstream_id, upstream = by_name[lake.package_upstream_repository]
    _, team = by_name[lake.package_repository]
    assert upstream["Properties"]["ExternalConnections"] == ["public:pypi"]
    assert "Upstreams" not in upstream["Properties"]
    assert team["Properties"]["Upstreams"] == [{"Fn::GetAtt": [upstream_id, "Name"]}]
    assert "ExternalConnections" not in team["Properties"]
    for _, repository in by_name.values():
        assert repository["Properties"]["DomainName"] == {"Fn::GetAtt": [domain_id, "Name"]}
        assert repository["DeletionPolicy"] == "Retain"


def test_origin_controls_keep_the_team_packages_from_the_public_index(template: Template) -> None:
    (domain_id, _) = _only(template, "AWS::CodeArtifact::Domain")
    _, group = _only(template, "AWS::CodeArtifact::PackageGroup")
    props = group["Properties"]
    assert props["DomainName"] == {"Fn::GetAtt": [domain_id, "Name"]}
    # every PyPI name starting with gluelake- (the team's packages, in their PEP 503 normalized form)
    assert props["Pattern"] == "/pypi//gluelake-~"
    assert props["OriginConfiguration"] == {
        "Restrictions": {
            "Publish": {"RestrictionMode": "ALLOW"},
            "ExternalUpstream": {"RestrictionMode": "BLOCK"},
            "InternalUpstream": {"RestrictionMode": "ALLOW"},
        }
    }


def test_stack_is_termination_protected_in_the_deployment_account(example_config: LakeConfig, assembly: Path) -> None:
    manifest = json.loads((assembly / "manifest.json").read_text())
    stack = manifest["artifacts"][lake_names(example_config).deployment_stack_name]
    assert stack["properties"]["terminationProtection"] is True
    assert stack["environment"] == "aws://111111111111/eu-west-1"


def test_nag_acknowledgements_have_reasons_and_cfn_lint_is_clean(assembly: Path) -> None:
    found = acknowledgements(assembly)
    assert [a.rule for a in found] == ["AwsSolutions-SMG4"]
    assert all(len(a.reason) >= MIN_REASON_LENGTH for a in found)
    assert cfn_lint(assembly) == []


def test_connection_sourced_repositories_get_no_codecommit_repository(
    example_config: LakeConfig, module_dir: Path
) -> None:
    raw = example_config.model_dump(mode="json")
    raw["repositories"]["etl"]["source"] = {
        "provider": "codeconnections",
        "connection_arn": CONNECTION_ARN,
        "owner": "acme",
        "repository_name": "lake-etl",
    }
    config = from_mapping(raw)
    stack = DeploymentAccountStack(lake_app(), "Deployment", config=config)
    repositories = Template.from_stack(stack).find_resources("AWS::CodeCommit::Repository")
    assert [r["Properties"]["RepositoryName"] for r in repositories.values()] == ["acme-lake-infra"]
    assert list(stack.repositories) == ["infra"]


def test_app_synthesizes_offline_from_the_config_given_as_context(
    example_config: LakeConfig, module_dir: Path, tmp_path: Path
) -> None:
    raw = example_config.model_dump(mode="json")
    raw["prefix"] = "other-lake"
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(raw))
    outdir = module_dir / "app"
    env = {**os.environ, "CDK_OUTDIR": str(outdir), "CDK_CONTEXT_JSON": json.dumps({"config": str(config_file)})}
    for offline in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(offline, None)
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=DEPLOYMENT_DIR, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (outdir / "other-lake-deployment.template.json").exists()
    assert json.loads((DEPLOYMENT_DIR / "cdk.context.json").read_text()) == {}  # nothing looked up


def test_template_pins_logical_ids_of_stateful_resources(template: Template) -> None:
    # renaming any of these would replace the resource: a new, empty secret or repository
    resources = template.to_json()["Resources"]
    assert resources["GlobalConfigSecret"]["Type"] == "AWS::SecretsManager::Secret"
    assert resources["GlobalConfigKeyF30CD34C"]["Type"] == "AWS::KMS::Key"
    assert resources["InfraRepositoryB420BAE1"]["Type"] == "AWS::CodeCommit::Repository"
    assert resources["EtlRepository8313B89C"]["Type"] == "AWS::CodeCommit::Repository"
    assert resources["PackageIndexKeyA7935C4D"]["Type"] == "AWS::KMS::Key"
    assert resources["PackageDomain"]["Type"] == "AWS::CodeArtifact::Domain"
    assert resources["PackageUpstreamRepository"]["Type"] == "AWS::CodeArtifact::Repository"
    assert resources["PackageRepository"]["Type"] == "AWS::CodeArtifact::Repository"
