"""`lakeops config ...` end to end through `lakeops.cli.main`: exit codes, messages, and publish on moto."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.client
import pytest
import yaml

from datalake_config import dumps_json, load
from datalake_config.schema import json_schema_text
from datalake_config.testing import EXAMPLE_CONFIG_PATH, moto_acting_in
from lakeops.cli import build_parser, main

DEPLOYMENT = "111111111111"
REGION = "eu-west-1"
SECRET = "acme-lake/config/global"
EXAMPLE = str(EXAMPLE_CONFIG_PATH)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def example_raw() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG_PATH.read_text(encoding="utf-8"))
    return raw


def write_config(path: Path, raw: dict[str, Any], **edits: Any) -> Path:
    """Write the example with top-level-path edits like `environments__prod__account="12345"`."""
    data = json.loads(json.dumps(raw))
    for dotted, value in edits.items():
        *parents, last = dotted.split("__")
        node = data
        for key in parents:
            node = node[key]
        node[last] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


# --- validate and usage -------------------------------------------------------------------------


def test_validate_accepts_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "config", "validate", EXAMPLE)
    assert code == 0, err
    assert out == (
        f"{EXAMPLE}: valid; prefix acme-lake; deployment account 111111111111; "
        "dev (222222222222) → test (333333333333) → prod (444444444444)\n"
    )


def test_validate_defaults_to_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "config", "validate")
    assert code == 0
    assert out.startswith(f"{EXAMPLE}: valid;")


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        ({"environments__prod__account": "12345"}, "environments.prod.account: must be 12 digits, got '12345'"),
        ({"environments__test__vpc_cidr": "10.10.0.0/16"}, "environments.test.vpc_cidr: 10.10.0.0/16 overlaps"),
        ({"environments__prod__retian_data": True}, "environments.prod.retian_data: unknown key (did you mean"),
        ({"deployment__region": "eu-wset-1"}, "deployment.region: is not a known AWS region, got 'eu-wset-1'"),
        ({"prefix": "Acme"}, "prefix: must be lowercase letters"),
        ({"notifications__emails": []}, "environments.prod.notification_emails: an environment that requires"),
    ],
)
def test_validate_names_the_field_of_a_malformed_config(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    example_raw: dict[str, Any],
    edits: dict[str, Any],
    expected: str,
) -> None:
    path = write_config(tmp_path / "config.yaml", example_raw, **edits)
    code, out, err = run(capsys, "config", "validate", str(path))
    assert code == 1
    assert out == ""
    assert err.startswith(f"error: {path}: 1 problem:\n  - ")
    assert expected in err


def test_validate_reports_yaml_syntax_errors_with_their_position(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("prefix: acme-lake\nzones: [raw, conformed\ntags: {}\n", encoding="utf-8")
    code, _, err = run(capsys, "config", "validate", str(path))
    assert code == 1
    assert "line 3, column 5: not valid YAML" in err


def test_validate_of_a_missing_file_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "config", "validate", str(tmp_path / "absent.yaml"))
    assert code == 1
    assert "cannot read the file" in err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["config"],
        ["config", "validate", "a.yaml", "b.yaml"],
        ["config", "validate", "--bogus"],
        ["config", "frobnicate"],
        ["config", "diff", "only-one.yaml"],
        ["no-such-group"],
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert "usage: lakeops" in capsys.readouterr().err


def every_command(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command path of the parser, found by walking its sub-parsers (so new commands are included)."""
    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from every_command(sub, (*prefix, name))


def test_every_command_is_walked() -> None:
    commands = set(every_command(build_parser()))
    expected = {("config", c) for c in ("validate", "show", "schema", "diff", "publish")}
    assert expected <= commands


@pytest.mark.parametrize("command", list(every_command(build_parser())), ids=" ".join)
def test_every_command_has_help(capsys: pytest.CaptureFixture[str], command: tuple[str, ...]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([*command, "--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {' '.join(('lakeops', *command))}")


def test_publish_help_lists_the_aws_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["config", "publish", "--help"])
    out = capsys.readouterr().out
    for option in ("--profile", "--region", "--endpoint-url", "--dry-run", "--yes", "--config"):
        assert option in out
    # publish assumes each environment's config publisher role; no role can be named instead
    assert "--assume-role-name" not in out


def test_publish_refuses_an_assume_role_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["config", "publish", "--dry-run", "--assume-role-name", "OrganizationAccountAccessRole"])
    assert caught.value.code == 2
    assert "unrecognized arguments: --assume-role-name" in capsys.readouterr().err


def test_the_installed_entry_point_exits_with_the_code(tmp_path: Path, example_raw: dict[str, Any]) -> None:
    bad = write_config(tmp_path / "bad.yaml", example_raw, deployment__account="1")
    entry_point = Path(sys.executable).parent / "lakeops"
    result = subprocess.run([str(entry_point), "config", "validate", str(bad)], capture_output=True, text=True)
    assert result.returncode == 1
    assert "deployment.account: must be 12 digits, got '1'" in result.stderr


# --- show, schema, diff -------------------------------------------------------------------------


def test_show_prints_the_config_with_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "config", "show")
    assert code == 0
    shown = json.loads(out)
    assert shown["prefix"] == "acme-lake"
    assert shown["environments"]["dev"]["max_azs"] == 2  # a default, not in the YAML


def test_show_names_lists_every_shared_name(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "config", "show", "--names", "--config", EXAMPLE)
    assert code == 0
    names = out.split("\nglobal-config secret:", 1)[1]
    assert names.startswith(f" {SECRET}\n")
    assert "deployment stack:     acme-lake-deployment" in names
    for env in ("dev", "test", "prod"):
        assert f"\n[{env}]\n" in names
        assert f"  pipeline acme-lake-etl-{env}-pipeline ← branch {env}" in names
        assert f"  /acme-lake/{env}/contract/network/vpc-id  (data lake VPC id)" in names


def test_show_of_an_invalid_config_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, example_raw: dict[str, Any]
) -> None:
    bad = write_config(tmp_path / "bad.yaml", example_raw, zones=["raw", "raw"])
    code, out, err = run(capsys, "config", "show", "--config", str(bad))
    assert (code, out) == (1, "")
    assert "zones: lists raw more than once" in err


def test_schema_prints_the_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "config", "schema")
    assert code == 0
    assert out == json_schema_text()


def test_schema_out_writes_the_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "config.schema.json"
    code, out, _ = run(capsys, "config", "schema", "--out", str(target))
    assert code == 0
    assert out == f"wrote {target}\n"
    assert target.read_text(encoding="utf-8") == json_schema_text()


def test_schema_out_to_an_unwritable_place_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "config", "schema", "--out", str(tmp_path / "missing-dir" / "schema.json"))
    assert code == 1
    assert "config schema: cannot write" in err


def test_diff_shows_fields_and_names(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, example_raw: dict[str, Any]
) -> None:
    new = write_config(tmp_path / "new.yaml", example_raw, environments__test__account="555555555555")
    code, out, _ = run(capsys, "config", "diff", EXAMPLE, str(new))
    assert code == 0
    assert out == (
        "fields:\n"
        "  environments.test.account: '333333333333' → '555555555555'\n"
        "names in environment test:\n"
        "  - account 333333333333 / eu-west-1\n"
        "  + account 555555555555 / eu-west-1\n"
    )


def test_diff_of_identical_configs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    copy = tmp_path / "copy.json"
    copy.write_text(dumps_json(load(EXAMPLE)))
    code, out, _ = run(capsys, "config", "diff", EXAMPLE, str(copy))
    assert (code, out) == (0, "no changes\n")


def test_diff_with_an_invalid_side_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, example_raw: dict[str, Any]
) -> None:
    bad = write_config(tmp_path / "bad.yaml", example_raw, prefix="x")
    code, out, err = run(capsys, "config", "diff", EXAMPLE, str(bad))
    assert (code, out) == (1, "")
    assert "prefix: must be 3 to 20 characters, got 'x'" in err


# --- publish on moto -------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """moto, with the process's credentials acting in the deployment account."""
    with moto_acting_in(DEPLOYMENT, REGION, monkeypatch, tmp_path):
        yield


@pytest.fixture
def deployment_stack(aws: None) -> None:
    boto3.Session(region_name=REGION).client("secretsmanager").create_secret(Name=SECRET)


@pytest.fixture
def aws_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every AWS operation any boto3 client makes during the test."""
    calls: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def record(client: Any, operation: str, params: Any) -> Any:
        calls.append(operation)
        return original(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", record)
    return calls


def published_value() -> str | None:
    client = boto3.Session(region_name=REGION).client("secretsmanager")
    try:
        return str(client.get_secret_value(SecretId=SECRET)["SecretString"])
    except client.exceptions.ResourceNotFoundException:
        return None


def in_dev_ssm() -> Any:
    sts = boto3.Session(region_name=REGION).client("sts")
    c = sts.assume_role(RoleArn="arn:aws:iam::222222222222:role/check", RoleSessionName="check")["Credentials"]
    return boto3.Session(
        aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c["SessionToken"],
        region_name=REGION,
    ).client("ssm")


def dev_facts() -> dict[str, str]:
    found = in_dev_ssm().get_parameters_by_path(Path="/acme-lake/dev/facts", Recursive=True, MaxResults=10)[
        "Parameters"
    ]
    return {p["Name"]: p["Value"] for p in found}


def test_publish_dry_run_shows_the_plan_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], deployment_stack: None
) -> None:
    code, out, err = run(capsys, "config", "publish", "--dry-run", "--config", EXAMPLE)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "config publish: 34 change(s):"
    assert lines[1] == f"  create  secret in {DEPLOYMENT}: {SECRET}  first value"
    assert "  create  ssm dev (222222222222/eu-west-1): /acme-lake/dev/facts/vpc-cidr  '10.10.0.0/16'" in lines
    assert lines[-1] == "dry run: nothing written"
    assert published_value() is None
    assert dev_facts() == {}


def test_publish_yes_applies_and_a_second_publish_has_no_changes(
    capsys: pytest.CaptureFixture[str], deployment_stack: None
) -> None:
    code, out, err = run(capsys, "config", "publish", "--yes", "--no-start")
    assert code == 0, err
    assert out.splitlines()[-1] == "config publish: applied 34 change(s)"
    assert published_value() == dumps_json(load(EXAMPLE))
    assert dev_facts()["/acme-lake/dev/facts/account"] == "222222222222"
    assert "{" not in out  # the secret's JSON is never printed

    code, out, _ = run(capsys, "config", "publish", "--yes")
    assert (code, out) == (0, "config publish: no changes; the published config is up to date\n")


def test_publish_starts_the_pipelines_that_read_what_changed(
    capsys: pytest.CaptureFixture[str], deployment_stack: None
) -> None:
    # bootstrap publishes before the pipelines exist: each missing one is named, none fails the publish
    code, out, err = run(capsys, "config", "publish", "--yes")
    assert code == 0, err
    assert "then starts the pipelines that read it: acme-lake-infra-dev-pipeline, acme-lake-etl-dev-pipeline" in out
    assert "  acme-lake-etl-prod-pipeline: not created yet" in out
    # once they exist, a change to dev's facts alone starts dev's two pipelines, nothing else
    codepipeline = boto3.client("codepipeline", region_name=REGION)
    service = {"Service": "codepipeline.amazonaws.com"}
    trust = {"Statement": [{"Effect": "Allow", "Principal": service, "Action": "sts:AssumeRole"}]}
    role = boto3.client("iam").create_role(RoleName="p", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    source = {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"}
    stages = [{"name": n, "actions": [{"name": n, "actionTypeId": source}]} for n in ("S", "T")]
    for env in ("dev", "test", "prod"):
        for kind in ("infra", "etl"):
            codepipeline.create_pipeline(
                pipeline={
                    "name": f"acme-lake-{kind}-{env}-pipeline",
                    "roleArn": role,
                    "artifactStore": {"type": "S3", "location": "artifacts"},
                    "stages": stages,
                }
            )
    stale = "/acme-lake/dev/facts/obsolete"
    in_dev_ssm().put_parameter(Name=stale, Value="x", Type="String")
    code, out, err = run(capsys, "config", "publish", "--yes")
    assert code == 0, err
    started = [line.split()[1] for line in out.splitlines() if line.startswith("  started ")]
    assert started == ["acme-lake-infra-dev-pipeline", "acme-lake-etl-dev-pipeline"]
    for kind in ("infra", "etl"):
        runs = codepipeline.list_pipeline_executions(pipelineName=f"acme-lake-{kind}-test-pipeline")
        assert runs["pipelineExecutionSummaries"] == []


def test_publish_writes_each_environments_facts_as_its_config_publisher_role(
    capsys: pytest.CaptureFixture[str], deployment_stack: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assumed: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def record(client: Any, operation: str, params: Any) -> Any:
        if operation == "AssumeRole":
            assumed.append(params["RoleArn"])
        return original(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", record)
    code, _, err = run(capsys, "config", "publish", "--yes")
    assert code == 0, err
    assert sorted(set(assumed)) == [
        f"arn:aws:iam::{account}:role/acme-lake-{env}-config-publisher"
        for env, account in (("dev", "222222222222"), ("test", "333333333333"), ("prod", "444444444444"))
    ]
    assert dev_facts()["/acme-lake/dev/facts/deployment-account"] == DEPLOYMENT


def test_publish_of_an_invalid_config_makes_no_aws_call(
    capsys: pytest.CaptureFixture[str],
    deployment_stack: None,
    aws_calls: list[str],
    tmp_path: Path,
    example_raw: dict[str, Any],
) -> None:
    bad = write_config(tmp_path / "bad.yaml", example_raw, environments__prod__account="444")
    code, out, err = run(capsys, "config", "publish", "--yes", "--config", str(bad))
    assert (code, out) == (1, "")
    assert "environments.prod.account: must be 12 digits, got '444'" in err
    assert aws_calls == []
    assert published_value() is None
    assert dev_facts() == {}


def test_publish_without_yes_and_without_a_terminal_refuses(
    capsys: pytest.CaptureFixture[str], deployment_stack: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # piped input is not a terminal: not a yes
    code, out, err = run(capsys, "config", "publish")
    assert code == 1
    assert "refused: no terminal to ask on; pass --yes to proceed" in err
    assert out.splitlines()[-1] == "nothing written"
    assert published_value() is None
    assert dev_facts() == {}


def test_publish_with_credentials_of_another_account_is_refused(
    capsys: pytest.CaptureFixture[str],
    deployment_stack: None,
    aws_calls: list[str],
    tmp_path: Path,
    example_raw: dict[str, Any],
) -> None:
    # the caller is in 111111111111, the config names another deployment account
    other = write_config(tmp_path / "other.yaml", example_raw, deployment__account="999999999999")
    code, out, err = run(capsys, "config", "publish", "--yes", "--config", str(other))
    assert (code, out) == (1, "")
    assert err == (
        "error: config publish needs credentials for account 999999999999, but the current credentials "
        f"belong to {DEPLOYMENT} (choose them with --profile)\n"
    )
    assert aws_calls == ["GetCallerIdentity"]


def test_publish_before_the_deployment_stack_exits_1(capsys: pytest.CaptureFixture[str], aws: None) -> None:
    code, out, err = run(capsys, "config", "publish", "--yes")
    assert (code, out) == (1, "")
    assert "deploy the deployment-account stack first" in err


def test_publish_without_credentials_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-role fallback on a build host
    code, out, err = run(capsys, "config", "publish", "--yes")
    assert (code, out) == (1, "")
    assert err == "error: config publish: Unable to locate credentials\n"
