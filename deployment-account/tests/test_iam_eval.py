"""The offline IAM evaluator (`lake_pipelines.iam_eval`), against the behaviour the IAM User Guide documents.

Each test cites the page whose example or rule it reproduces:
- EVALUATION: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
- ACTION: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html
- NOTACTION: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html
- RESOURCE: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html
- OPERATORS: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
- MULTIPLE: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-logic-multiple-context-keys-or-values.html
- MULTIVALUED: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
"""

from __future__ import annotations

from typing import Any

import pytest

from lake_pipelines.iam_eval import Decision, Request, UnsupportedPolicy, arn_matches, evaluate

BUCKET = "arn:aws:s3:::amzn-s3-demo-bucket"


def _allow(action: Any, resource: Any = "*", condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


def _decide(statements: list[dict[str, Any]], action: str, resource: str = "*") -> Decision:
    return evaluate(statements, Request(action, resource)).decision


def test_no_matching_statement_is_an_implicit_deny() -> None:
    # EVALUATION: "By default, all requests are implicitly denied".
    assert _decide([_allow("s3:ListBucket", BUCKET)], "s3:GetObject", f"{BUCKET}/a") is Decision.IMPLICIT_DENY


def test_an_explicit_deny_overrides_any_allow() -> None:
    # EVALUATION: "An explicit deny in any policy overrides any allows".
    statements = [_allow("s3:*", "*"), {"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": BUCKET}]
    assert _decide(statements, "s3:DeleteBucket", BUCKET) is Decision.EXPLICIT_DENY
    assert _decide(statements, "s3:PutBucketTagging", BUCKET) is Decision.ALLOW


def test_actions_match_case_insensitively_with_wildcards() -> None:
    # ACTION: prefixes and action names are case insensitive; "iam:*AccessKey*" matches several actions.
    statements = [_allow("IAM:*AccessKey*")]
    assert _decide(statements, "iam:CreateAccessKey") is Decision.ALLOW
    assert _decide(statements, "iam:listaccesskeys") is Decision.ALLOW
    assert _decide(statements, "iam:CreateUser") is Decision.IMPLICIT_DENY


def test_not_action_allows_everything_but_the_listed_actions() -> None:
    # NOTACTION: Allow with "NotAction": "iam:*" on "*" allows all but IAM.
    statements = [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]
    assert _decide(statements, "s3:ListAllMyBuckets") is Decision.ALLOW
    assert _decide(statements, "iam:CreateUser") is Decision.IMPLICIT_DENY


def test_not_resource_excludes_the_listed_resources() -> None:
    # RESOURCE / NotResource: a Deny with NotResource applies to every resource except those listed.
    statements = [
        _allow("s3:*"),
        {"Effect": "Deny", "Action": "s3:*", "NotResource": [BUCKET, f"{BUCKET}/*"]},
    ]
    assert _decide(statements, "s3:GetObject", f"{BUCKET}/key") is Decision.ALLOW
    assert _decide(statements, "s3:GetObject", "arn:aws:s3:::other/key") is Decision.EXPLICIT_DENY


def test_resource_wildcards_match_within_and_across_the_resource_path() -> None:
    # RESOURCE: "arn:aws:s3:::amzn-s3-demo-bucket/*" matches every object; wildcards may be used in any
    # segment, and an ARN with another service or account does not match.
    assert arn_matches(f"{BUCKET}/*", f"{BUCKET}/a/b/c.txt")
    assert not arn_matches(f"{BUCKET}/*", BUCKET)
    assert arn_matches("arn:aws:iam::123456789012:role/lake-*", "arn:aws:iam::123456789012:role/lake-x")
    assert not arn_matches("arn:aws:iam::123456789012:role/lake-*", "arn:aws:iam::210987654321:role/lake-x")
    assert arn_matches("arn:aws:logs:*:*:log-group:/aws/lambda/*", "arn:aws:logs:eu-west-1:1:log-group:/aws/lambda/f")
    assert not arn_matches("arn:aws:logs:*:*:log-group:one", "arn:aws:logs:eu-west-1:1:log-group:other")


def test_condition_keys_and_operators_are_anded_and_values_ored() -> None:
    # MULTIPLE: "If your policy has multiple condition operators or multiple keys attached to a single
    # condition operator, the conditions are evaluated using a logical AND"; several values of one key are
    # evaluated using a logical OR.
    statement = _allow(
        "ec2:CreateTags",
        condition={
            "StringEquals": {"aws:PrincipalTag/department": ["finance", "hr"], "aws:RequestedRegion": "eu-west-1"}
        },
    )
    assert (
        evaluate(
            [statement],
            Request(
                "ec2:CreateTags", "*", {"aws:PrincipalTag/department": ["hr"], "aws:RequestedRegion": ["eu-west-1"]}
            ),
        ).decision
        is Decision.ALLOW
    )
    assert (
        evaluate(
            [statement],
            Request(
                "ec2:CreateTags", "*", {"aws:PrincipalTag/department": ["hr"], "aws:RequestedRegion": ["us-east-1"]}
            ),
        ).decision
        is Decision.IMPLICIT_DENY
    )


def test_a_missing_key_is_false_except_for_negated_operators_and_if_exists() -> None:
    # OPERATORS: "If the key that you specify in a policy condition is not present in the request context,
    # the values do not match and the condition is false. If the policy condition requires that the key is
    # not matched, such as StringNotLike or ArnNotLike, and the right key is not present, the condition is
    # true." ...IfExists: "If the policy key is not present in the context of the request, treat the key
    # value as true".
    def decide(condition: dict[str, Any]) -> Decision:
        return evaluate([_allow("s3:GetObject", condition=condition)], Request("s3:GetObject", "*")).decision

    assert decide({"StringEquals": {"aws:ResourceTag/team": "a"}}) is Decision.IMPLICIT_DENY
    assert decide({"StringNotEquals": {"aws:ResourceTag/team": "a"}}) is Decision.ALLOW
    assert decide({"ArnNotLike": {"aws:SourceArn": "arn:aws:s3:::x"}}) is Decision.ALLOW
    assert decide({"StringEqualsIfExists": {"aws:ResourceTag/team": "a"}}) is Decision.ALLOW
    assert decide({"Null": {"aws:ResourceTag/team": "true"}}) is Decision.ALLOW
    assert decide({"Null": {"aws:ResourceTag/team": "false"}}) is Decision.IMPLICIT_DENY


def test_string_like_and_arn_like_use_wildcards_and_bool_compares_case_insensitively() -> None:
    # OPERATORS: StringLike "case-sensitive matching. The values can include multi-character match wildcards
    # (*) and single-character match wildcards (?)"; ArnLike matches each ARN component; Bool true/false.
    def decide(condition: dict[str, Any], **context: list[str]) -> Decision:
        return evaluate([_allow("s3:GetObject", condition=condition)], Request("s3:GetObject", "*", context)).decision

    assert decide({"StringLike": {"s3:prefix": "home/*"}}, **{"s3:prefix": ["home/carlos"]}) is Decision.ALLOW
    assert decide({"StringLike": {"s3:prefix": "home/*"}}, **{"s3:prefix": ["Home/carlos"]}) is Decision.IMPLICIT_DENY
    assert (
        decide(
            {"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:123456789012:t?"}},
            **{"aws:SourceArn": ["arn:aws:sns:eu-west-1:123456789012:t1"]},
        )
        is Decision.ALLOW
    )
    assert decide({"Bool": {"aws:SecureTransport": "false"}}, **{"aws:SecureTransport": ["FALSE"]}) is Decision.ALLOW


def test_for_all_values_and_for_any_value_over_multivalued_keys() -> None:
    # MULTIVALUED: ForAllValues "returns true if every value in the request matches at least one value in the
    # condition ... or if the key is missing"; ForAnyValue "true if any one of the values in the request
    # matches", false when the key is missing. Example keys: aws:TagKeys.
    all_values = {"ForAllValues:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]}}
    any_value = {"ForAnyValue:StringEquals": {"aws:TagKeys": ["environment"]}}

    def decide(condition: dict[str, Any], tag_keys: list[str] | None) -> Decision:
        context = {} if tag_keys is None else {"aws:TagKeys": tag_keys}
        return evaluate(
            [_allow("ec2:CreateTags", condition=condition)], Request("ec2:CreateTags", "*", context)
        ).decision

    assert decide(all_values, ["environment"]) is Decision.ALLOW
    assert decide(all_values, ["environment", "owner"]) is Decision.IMPLICIT_DENY
    assert decide(all_values, None) is Decision.ALLOW
    assert decide(any_value, ["owner", "environment"]) is Decision.ALLOW
    assert decide(any_value, ["owner"]) is Decision.IMPLICIT_DENY
    assert decide(any_value, None) is Decision.IMPLICIT_DENY


def test_an_undecidable_key_never_allows_and_always_lets_a_deny_apply() -> None:
    # Our rule, not AWS's: what the check cannot know must not count as allowing.
    allow = _allow("kms:Decrypt", condition={"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}})
    deny = {
        "Effect": "Deny",
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {"StringNotEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}},
    }
    unknown = Request("kms:Decrypt", "*", {}, lambda key: key == "kms:ViaService")
    outcome = evaluate([allow], unknown)
    assert outcome.decision is Decision.IMPLICIT_DENY and outcome.undecided == ("kms:ViaService",)
    assert evaluate([_allow("kms:Decrypt"), deny], unknown).decision is Decision.EXPLICIT_DENY


def test_unsupported_language_is_refused_rather_than_guessed() -> None:
    with pytest.raises(UnsupportedPolicy):
        evaluate(
            [_allow("s3:GetObject", condition={"DateLessThan": {"aws:CurrentTime": "2030"}})],
            Request("s3:GetObject", "*"),
        )
    with pytest.raises(UnsupportedPolicy):
        evaluate([_allow("s3:GetObject", "arn:aws:s3:::${aws:username}/*")], Request("s3:GetObject", BUCKET))
