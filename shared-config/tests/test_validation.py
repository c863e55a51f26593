"""Every validation rule, failing and passing, each problem naming the exact field and the bad value.

Variants are edits of the example config (loaded once), so each test shows only what it changes.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from datalake_config import ConfigError, load, loads
from datalake_config.model import LOG_RETENTION_DAYS, git_ref_problem

Problems = Callable[..., list[str]]
Variant = Callable[..., dict[str, Any]]

EXTRA_ENV = {
    "account": "555555555555",
    "region": "eu-west-1",
    "vpc_cidr": "10.40.0.0/16",
    "require_approval": False,
}
VALID_CONNECTION_ARN = "arn:aws:codeconnections:eu-west-1:111111111111:connection/00000000-0000-0000-0000-000000000000"


def only(found: list[str]) -> str:
    assert len(found) == 1, found
    return found[0]


def test_the_example_config_is_valid(problems: Problems) -> None:
    assert problems() == []


# --- accounts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["12345678901", "1234567890123", "12345678901a", "abcdefghijkl", "12345", ""])
@pytest.mark.parametrize("field", ["environments.prod.account", "deployment.account"])
def test_account_must_be_12_digits(problems: Problems, field: str, bad: str) -> None:
    assert only(problems({field: bad})) == f"{field}: must be 12 digits, got {bad!r}"


def test_account_written_as_a_yaml_number_asks_for_quotes(problems: Problems) -> None:
    message = only(problems({"environments.prod.account": 555555555555}))
    assert message.startswith("environments.prod.account: must be a quoted string")
    assert message.endswith("got 555555555555")


def test_any_12_digit_account_is_accepted(problems: Problems) -> None:
    assert problems({"environments.prod.account": "012345678901", "deployment.account": "999999999999"}) == []


def test_the_deployment_account_cannot_double_as_an_environment(problems: Problems) -> None:
    message = only(problems({"environments.prod.account": "111111111111"}))
    assert message.startswith("environments.prod.account: '111111111111' is the deployment account")
    assert "deployment.allow_as_target_for" in message


def test_the_deployment_account_may_double_when_explicitly_allowed(problems: Problems) -> None:
    edits = {"environments.dev.account": "111111111111", "deployment.allow_as_target_for": ["dev"]}
    assert problems(edits) == []


def test_allowing_one_environment_does_not_allow_another(problems: Problems) -> None:
    edits = {"environments.prod.account": "111111111111", "deployment.allow_as_target_for": ["dev"]}
    assert only(problems(edits)).startswith("environments.prod.account: '111111111111' is the deployment account")


def test_two_environments_cannot_share_an_account(problems: Problems) -> None:
    assert only(problems({"environments.test.account": "222222222222"})) == (
        "environments.test.account: '222222222222' is already used by environment 'dev'; "
        "each environment needs its own account"
    )


# --- regions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["EU-WEST-1", "euwest1", "eu-west", "eu_west_1", "eu-west-1a", "west-1"])
def test_malformed_region(problems: Problems, bad: str) -> None:
    assert only(problems({"environments.test.region": bad})) == (
        f"environments.test.region: is not a region name (like eu-west-1), got {bad!r}"
    )


@pytest.mark.parametrize("bad", ["eu-wset-1", "eu-west-9", "xx-north-1"])
@pytest.mark.parametrize("field", ["environments.test.region", "deployment.region"])
def test_unknown_region(problems: Problems, field: str, bad: str) -> None:
    assert only(problems({field: bad})) == f"{field}: is not a known AWS region, got {bad!r}"


@pytest.mark.parametrize("good", ["us-east-1", "ap-southeast-2", "us-gov-west-1", "eu-central-2"])
def test_known_regions_are_accepted(problems: Problems, good: str) -> None:
    assert problems({"environments.test.region": good, "deployment.region": good}) == []


# --- VPC CIDRs --------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["10.10.0.0/33", "not-a-cidr", "10.10.0.300/16", "10.10.0.0"])
def test_vpc_cidr_must_be_a_network(problems: Problems, bad: str) -> None:
    message = only(problems({"environments.dev.vpc_cidr": bad}))
    assert message.startswith("environments.dev.vpc_cidr: is not a valid network CIDR")
    assert message.endswith(f"got {bad!r}")


def test_vpc_cidr_with_host_bits_set(problems: Problems) -> None:
    message = only(problems({"environments.dev.vpc_cidr": "10.10.0.1/16"}))
    assert message.startswith("environments.dev.vpc_cidr: is not a valid network CIDR (10.10.0.1/16 has host bits set)")


def test_vpc_cidr_too_small(problems: Problems) -> None:
    assert only(problems({"environments.dev.vpc_cidr": "10.10.0.0/23"})) == (
        "environments.dev.vpc_cidr: is too small: use /22 or larger, got '10.10.0.0/23'"
    )


def test_vpc_cidr_too_large(problems: Problems) -> None:
    assert only(problems({"environments.dev.vpc_cidr": "10.10.0.0/15"})) == (
        "environments.dev.vpc_cidr: is too large: AWS allows /16 at most, got '10.10.0.0/15'"
    )


def test_vpc_cidr_must_be_ipv4(problems: Problems) -> None:
    assert only(problems({"environments.dev.vpc_cidr": "fd00:10::/56"})) == (
        "environments.dev.vpc_cidr: must be an IPv4 CIDR, got 'fd00:10::/56'"
    )


@pytest.mark.parametrize("good", ["10.40.0.0/16", "10.40.0.0/22", "172.16.0.0/20", "192.168.4.0/22"])
def test_vpc_cidrs_from_16_to_22_are_accepted(problems: Problems, good: str) -> None:
    assert problems({"environments.dev.vpc_cidr": good}) == []


def test_vpc_cidrs_must_not_overlap_between_environments(problems: Problems) -> None:
    assert only(problems({"environments.prod.vpc_cidr": "10.10.128.0/17"})) == (
        "environments.prod.vpc_cidr: 10.10.128.0/17 overlaps 10.10.0.0/16 of environment 'dev'"
    )


def test_adjacent_vpc_cidrs_do_not_overlap(problems: Problems) -> None:
    assert problems({"environments.dev.vpc_cidr": "10.20.0.0/22", "environments.test.vpc_cidr": "10.20.4.0/22"}) == []


# --- branches ---------------------------------------------------------------------------------


def test_environment_branches_must_not_collide(problems: Problems) -> None:
    # the clash is the same for both repositories, so it is reported once
    assert only(problems({"environments.test.branch": "dev"})) == (
        "environments.test.branch: branch 'dev' would deploy both 'dev' and 'test'"
    )


def test_a_repository_override_must_not_collide_with_another_environment(problems: Problems) -> None:
    assert only(problems({"repositories.etl.branches": {"test": "dev"}})) == (
        "repositories.etl.branches.test: branch 'dev' would deploy both 'dev' and 'test' in repository 'etl'"
    )


def test_a_collision_caused_by_an_override_blames_the_override(problems: Problems) -> None:
    # `dev` is overridden to `test`, so the later environment `test` (not overridden) meets it
    assert only(problems({"repositories.infra.branches": {"dev": "test"}})) == (
        "repositories.infra.branches.dev: branch 'test' would deploy both 'dev' and 'test' in repository 'infra'"
    )


def test_repository_overrides_that_stay_distinct_are_accepted(problems: Problems, example_raw: dict[str, Any]) -> None:
    edits = {"repositories.etl.branches": {"dev": "main", "prod": "release/prod"}}
    assert problems(edits) == []
    # the other repository keeps the environment branches, so reusing `main` there is fine too
    assert problems({**edits, "repositories.infra.branches": {"dev": "main"}}) == []


# (name, the rule of `git check-ref-format` it breaks)
INVALID_BRANCHES = [
    ("", "empty"),
    ("-dev", "cannot start with '-'"),
    ("/dev", "cannot start with '/'"),
    ("dev/", "cannot end with '/'"),
    ("dev.", "cannot end with '.'"),
    ("dev.lock", "cannot end with '.lock'"),
    ("team.lock/dev", "no component may end with '.lock'"),
    ("team/.dev", "no component may start with '.'"),
    (".dev", "cannot start with '.'"),
    ("dev..next", "no '..'"),
    ("team//dev", "no '//'"),
    ("dev@{1}", "no '@{'"),
    ("@", "cannot be '@'"),
    ("HEAD", "not 'HEAD'"),
    ("my dev", "no space"),
    ("dev\tbranch", "no control character"),
    ("dev\x7f", "no DEL"),
    ("dev~1", "no '~'"),
    ("dev^2", "no '^'"),
    ("dev:x", "no ':'"),
    ("dev?", "no '?'"),
    ("dev*", "no '*'"),
    ("dev[0]", "no '['"),
    ("dev\\x", "no backslash"),
]
VALID_BRANCHES = ["dev", "release/1.0", "feature/team-a/x", "a@b", "x/HEAD", "v1.2.3", "dev_branch", "a{b}"]


@pytest.mark.parametrize(("bad", "rule"), INVALID_BRANCHES, ids=[rule for _, rule in INVALID_BRANCHES])
def test_invalid_git_branch_names_are_refused(problems: Problems, bad: str, rule: str) -> None:
    for field, edits in [
        ("environments.dev.branch", {"environments.dev.branch": bad}),
        ("repositories.etl.branches.test", {"repositories.etl.branches": {"test": bad}}),
    ]:
        message = only(problems(edits))
        assert message.startswith(f"{field}: is not a valid git branch name: "), rule
        assert message.endswith(f"got {bad!r}")


@pytest.mark.parametrize("good", VALID_BRANCHES)
def test_valid_git_branch_names_are_accepted(problems: Problems, good: str) -> None:
    assert problems({"environments.dev.branch": good}) == []


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_branch_rules_agree_with_git_itself() -> None:
    """The rules are a re-implementation; git is the authority where it is available."""

    def git_accepts(name: str) -> bool:
        checks = (["git", "check-ref-format", "--branch", name], ["git", "check-ref-format", f"refs/heads/{name}"])
        # `--branch` alone expands `@` to the current branch; `refs/heads/<name>` alone allows a leading `-`
        return all(subprocess.run(c, capture_output=True, check=False).returncode == 0 for c in checks)

    # `@` is refused on purpose although `refs/heads/@` is well-formed: git reads `@` as HEAD everywhere else
    names = [name for name, _ in INVALID_BRANCHES if name not in ("", "@")] + VALID_BRANCHES
    disagreements = [n for n in names if git_accepts(n) != (git_ref_problem(n) is None)]
    assert disagreements == []


# --- environment order and approvals ------------------------------------------------------------


def reordered(raw: dict[str, Any], order: list[str], extra: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    envs = {**raw["environments"], **(extra or {})}
    raw["environments"] = {name: envs[name] for name in order}
    return raw


def test_environments_must_be_in_promotion_order(problems: Problems, variant: Variant) -> None:
    raw = reordered(variant(), ["test", "dev", "prod"])
    assert (
        only(problems(raw=raw)) == "environments: must be in promotion order dev → test → prod, got test → dev → prod"
    )


def test_prod_must_be_the_last_environment(problems: Problems, variant: Variant) -> None:
    raw = reordered(variant(), ["dev", "test", "prod", "sandbox"], {"sandbox": {**EXTRA_ENV, "branch": "sandbox"}})
    assert only(problems(raw=raw)) == "environments: prod must be the last environment, got dev → test → prod → sandbox"


def test_staging_between_test_and_prod_is_accepted(problems: Problems, variant: Variant) -> None:
    staging = {**EXTRA_ENV, "branch": "staging", "require_approval": True}
    raw = reordered(variant(), ["dev", "test", "staging", "prod"], {"staging": staging})
    assert problems(raw=raw) == []


def test_a_two_environment_lake_without_test_is_accepted(problems: Problems, variant: Variant) -> None:
    assert problems(raw=reordered(variant(), ["dev", "prod"])) == []


def test_the_first_environment_cannot_require_approval(problems: Problems) -> None:
    assert only(problems({"environments.dev.require_approval": True})) == (
        "environments.dev.require_approval: the first environment receives every merge; it cannot require approval"
    )


def test_at_least_one_environment_is_required(problems: Problems) -> None:
    assert only(problems({"environments": {}})).startswith("environments: ")


def test_environment_names_are_checked(problems: Problems, variant: Variant) -> None:
    raw = variant()
    raw["environments"]["Dev_1"] = {**EXTRA_ENV, "branch": "dev1"}
    found = problems(raw=raw)
    assert "environments.Dev_1: the name must match ^[a-z][a-z0-9]{1,9}$, got 'Dev_1'" in found


def test_an_approval_environment_needs_a_notification_address(problems: Problems) -> None:
    assert only(problems({"notifications.emails": []})) == (
        "environments.prod.notification_emails: an environment that requires approval needs a notification "
        "address (here or in notifications.emails) so approvers hear about pending deployments"
    )


def test_an_explicitly_empty_environment_list_overrides_the_global_one(problems: Problems) -> None:
    assert only(problems({"environments.prod.notification_emails": []})).startswith(
        "environments.prod.notification_emails: an environment that requires approval needs"
    )


def test_an_environment_level_address_is_enough(problems: Problems) -> None:
    edits = {"notifications.emails": [], "environments.prod.notification_emails": ["approvers@example.com"]}
    assert problems(edits) == []


def test_a_global_address_is_enough(problems: Problems, example_raw: dict[str, Any]) -> None:
    assert example_raw["notifications"]["emails"]
    assert "notification_emails" not in example_raw["environments"]["prod"]
    assert problems() == []


@pytest.mark.parametrize("bad", ["not-an-address", "a@b", "two words@example.com"])
def test_notification_addresses_are_checked(problems: Problems, bad: str) -> None:
    assert (
        only(problems({"notifications.emails": [bad]}))
        == f"notifications.emails.0: is not an e-mail address, got {bad!r}"
    )


# --- prefix -----------------------------------------------------------------------------------

PATTERN_MESSAGE = "must be lowercase letters and digits in hyphen-separated words, starting with a letter"
RESERVED_MESSAGE = "starts or ends with a prefix/suffix AWS reserves for S3 or SSM names"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("Acme-lake", PATTERN_MESSAGE),
        ("acme_lake", PATTERN_MESSAGE),
        ("1acme", PATTERN_MESSAGE),
        ("acme--lake", PATTERN_MESSAGE),
        ("acme-", PATTERN_MESSAGE),
        ("acme.lake", PATTERN_MESSAGE),
        ("a" * 21, "must be 3 to 20 characters"),
        ("ab", "must be 3 to 20 characters"),
        ("aws-lake", RESERVED_MESSAGE),
        ("awslake", RESERVED_MESSAGE),
        ("ssm-lake", RESERVED_MESSAGE),
        ("xn--lake", RESERVED_MESSAGE),
        ("sthree-lake", RESERVED_MESSAGE),
        ("lake-s3alias", RESERVED_MESSAGE),
    ],
)
def test_prefix_must_be_valid_in_s3_and_ssm_names(problems: Problems, bad: str, message: str) -> None:
    assert only(problems({"prefix": bad})) == f"prefix: {message}, got {bad!r}"


@pytest.mark.parametrize("good", ["abc", "a" * 20, "lake2-x", "data-lake-01"])
def test_valid_prefixes_are_accepted(problems: Problems, good: str) -> None:
    assert problems({"prefix": good}) == []


# --- unknown keys -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "suggestion"),
    [
        ("prefx", "prefix"),
        ("deployment.regoin", "region"),
        ("environments.prod.retian_data", "retain_data"),
        ("environments.dev.lifecycle.log_retention", "log_retention_days"),
        ("repositories.etll", "etl"),
        ("repositories.etl.branch", "branches"),
        ("repositories.infra.source.repository_nam", "repository_name"),
        ("notifications.email", "emails"),
    ],
)
def test_unknown_keys_are_errors_with_a_suggestion(problems: Problems, path: str, suggestion: str) -> None:
    assert only(problems({path: "x"})) == f"{path}: unknown key (did you mean {suggestion!r}?)"


def test_unknown_key_in_a_codeconnections_source_suggests_from_that_source(problems: Problems) -> None:
    source = {
        "provider": "codeconnections",
        "connection_arn": VALID_CONNECTION_ARN,
        "owner": "acme",
        "repository_name": "lake-etl",
        "ownr": "acme",
    }
    assert only(problems({"repositories.etl.source": source})) == (
        "repositories.etl.source.ownr: unknown key (did you mean 'owner'?)"
    )


def test_an_unknown_key_without_a_close_match_lists_the_allowed_keys(problems: Problems) -> None:
    assert only(problems({"notifications.pager": "x"})) == "notifications.pager: unknown key (allowed: emails)"


# --- other field rules ------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, 15, 364, 10000])
def test_log_retention_must_be_a_cloudwatch_period(problems: Problems, bad: int) -> None:
    message = only(problems({"environments.dev.lifecycle.log_retention_days": bad}))
    assert message.startswith(
        "environments.dev.lifecycle.log_retention_days: is not a CloudWatch Logs retention period"
    )
    assert message.endswith(f"got {bad}")


@pytest.mark.parametrize("good", LOG_RETENTION_DAYS)
def test_every_cloudwatch_period_is_accepted(problems: Problems, good: int) -> None:
    assert problems({"environments.dev.lifecycle.log_retention_days": good}) == []


@pytest.mark.parametrize(
    "bad",
    [
        "arn:aws:codestar:eu-west-1:111111111111:connection/00000000-0000-0000-0000-000000000000",
        "arn:aws:codeconnections:eu-west-1:1111:connection/00000000-0000-0000-0000-000000000000",
        "arn:aws:codeconnections:eu-west-1:111111111111:connection/not-a-uuid",
        "my-github-connection",
    ],
)
def test_codeconnections_source_needs_a_connection_arn(problems: Problems, bad: str) -> None:
    source = {"provider": "codeconnections", "connection_arn": bad, "owner": "acme", "repository_name": "lake-etl"}
    message = only(problems({"repositories.etl.source": source}))
    assert message.startswith("repositories.etl.source.connection_arn: must match ")
    assert message.endswith(f"got {bad!r}")


@pytest.mark.parametrize(
    "arn", [VALID_CONNECTION_ARN, VALID_CONNECTION_ARN.replace("codeconnections", "codestar-connections")]
)
def test_codeconnections_source_is_accepted(problems: Problems, arn: str) -> None:
    source = {"provider": "codeconnections", "connection_arn": arn, "owner": "acme", "repository_name": "lake-etl"}
    assert problems({"repositories.etl.source": source}) == []


def test_unknown_source_provider(problems: Problems) -> None:
    message = only(problems({"repositories.etl.source": {"provider": "svn", "repository_name": "x"}}))
    assert message.startswith("repositories.etl.source: ")
    assert "'codecommit'" in message
    assert "'codeconnections'" in message


def test_branch_overrides_must_name_configured_environments(problems: Problems) -> None:
    assert only(problems({"repositories.etl.branches": {"qa": "qa"}})) == (
        "repositories.etl.branches: names unknown environment 'qa'"
    )


def test_allow_as_target_for_must_name_configured_environments(problems: Problems) -> None:
    assert only(problems({"deployment.allow_as_target_for": ["staging"]})) == (
        "deployment.allow_as_target_for: names unknown environment 'staging'"
    )


@pytest.mark.parametrize(
    "good",
    [
        "arn:aws:iam::111111111111:role/acme-lake-operator",
        "arn:aws:iam::111111111111:role/ops/lake-operator",
        "arn:aws:iam::111111111111:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_LakeOperator_*",
        "arn:aws-cn:iam::111111111111:role/lake-operator",
    ],
)
def test_operator_principal_is_a_role_of_the_deployment_account(problems: Problems, good: str) -> None:
    assert problems({"deployment.operator_principal": good}) == []


@pytest.mark.parametrize(
    "bad",
    [
        "arn:aws:iam::111111111111:user/alice",  # a user, not a role
        "arn:aws:sts::111111111111:assumed-role/lake-operator/alice",  # a session, not a role
        "arn:aws:iam::*:role/lake-operator",  # any account
        "acme-lake-operator",  # a name, not an ARN
        "arn:aws:iam::111111111111:role/",
    ],
)
def test_operator_principal_must_be_a_role_arn(problems: Problems, bad: str) -> None:
    assert only(problems({"deployment.operator_principal": bad})).startswith(
        "deployment.operator_principal: must be an IAM role ARN like arn:aws:iam::111111111111:role/lake-operator"
    )


def test_operator_principal_must_be_in_the_deployment_account(problems: Problems) -> None:
    found = problems({"deployment.operator_principal": "arn:aws:iam::222222222222:role/lake-operator"})
    assert only(found) == (
        "deployment.operator_principal: names account 222222222222; the operator must be a role in the "
        "deployment account 111111111111"
    )


def test_approvers_are_roles_of_the_deployment_account(problems: Problems) -> None:
    sso = "arn:aws:iam::111111111111:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_LakeApprover_*"
    assert problems({"environments.prod.approvers": [sso, "arn:aws:iam::111111111111:role/release"]}) == []
    found = problems({"environments.prod.approvers": ["arn:aws:iam::111111111111:role/a", ROLE_ELSEWHERE]})
    assert only(found) == (
        "environments.prod.approvers.1: names account 333333333333; the approver must be a role in the "
        "deployment account 111111111111"
    )


ROLE_ELSEWHERE = "arn:aws:iam::333333333333:role/release"


def test_approvers_need_an_environment_that_requires_approval(problems: Problems) -> None:
    found = problems({"environments.test.approvers": ["arn:aws:iam::111111111111:role/release"]})
    assert only(found) == "environments.test.approvers: names approvers, but require_approval is not true"


@pytest.mark.parametrize("bad", [[], ["arn:aws:iam::111111111111:user/alice"]])
def test_approvers_are_a_non_empty_list_of_role_arns(problems: Problems, bad: list[str]) -> None:
    assert only(problems({"environments.prod.approvers": bad})).startswith("environments.prod.approvers")


def test_zones_must_not_repeat(problems: Problems) -> None:
    assert only(problems({"zones": ["raw", "conformed", "raw", "curated"]})) == "zones: lists raw more than once"


def test_distinct_zones_are_accepted(problems: Problems) -> None:
    assert problems({"zones": ["landing", "raw", "conformed", "curated"]}) == []


# --- documents that are not a config ----------------------------------------------------------


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "list"), ("just words\n", "str"), ("", "NoneType")])
def test_the_top_level_must_be_a_mapping(text: str, kind: str) -> None:
    with pytest.raises(ConfigError) as caught:
        loads(text, source="inline")
    assert caught.value.problems == [f"the top level must be a mapping of keys to values, got {kind}"]


def test_yaml_syntax_errors_name_the_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("prefix: acme\ndeployment:\n  account: '111111111111'\n   region: eu-west-1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert only(caught.value.problems).startswith("line 4, column 4: not valid YAML")
    assert str(caught.value).startswith(f"{path}: 1 problem:")


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path / "absent.yaml")
    assert only(caught.value.problems).startswith("cannot read the file")


def test_every_problem_is_reported_at_once(example_raw: dict[str, Any]) -> None:
    raw = copy.deepcopy(example_raw)
    raw["prefix"] = "Acme"
    raw["environments"]["prod"]["account"] = "12345"
    raw["environments"]["prod"]["vpc_cidr"] = "10.10.0.0/16"
    raw["environments"]["test"]["retian_data"] = True
    raw["environments"]["test"]["lifecycle"]["log_retention_days"] = 15
    raw["zones"] = ["raw", "raw"]
    with pytest.raises(ConfigError) as caught:
        loads(json.dumps(raw), source="several.yaml")
    fields = sorted(p.split(":", 1)[0] for p in caught.value.problems)
    assert fields == [
        "environments.prod.account",
        "environments.prod.vpc_cidr",
        "environments.test.lifecycle.log_retention_days",
        "environments.test.retian_data",
        "prefix",
        "zones",
    ]
    assert str(caught.value).startswith("several.yaml: 6 problems:\n  - ")
    assert "got '12345'" in str(caught.value)
