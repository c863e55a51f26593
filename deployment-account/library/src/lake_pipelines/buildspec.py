"""Build commands, defined once: the pipeline's synth step and the offline rehearsal both run these.

Every repository root holds `app.py`, `cdk.json`, a pinned `requirements.txt` and a `package.json` +
`package-lock.json` pinning the CDK CLI. The requirements pin the team's own packages (`gluelake-config`,
`gluelake-pipelines`), which exist only in the team's CodeArtifact repository, so every `pip install` runs
after `index_login_commands` has pointed pip at that repository (public packages come through its upstream).
Beyond the package registries only `pull_config_commands` touches the network: it reads the published global
config from Secrets Manager into `CONFIG_FILE`, and synth then reads files only.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

CONFIG_FILE = ".lake/config.json"
# The commit the pipeline's source action fetched (its CommitId variable), given to the synth step.
SOURCE_COMMIT_VARIABLE = "LAKE_SOURCE_COMMIT"
CONFIG_DIRECTORY = ".lake"
CDK_OUT = "cdk.out"


def index_login_commands(domain: str, domain_owner: str, repository: str, region: str) -> list[str]:
    """Point pip at the team's package repository for this build (a CodeArtifact token, valid 12 hours)."""
    return [
        "aws codeartifact login --tool pip "
        f"--domain {shlex.quote(domain)} --domain-owner {shlex.quote(domain_owner)} "
        f"--repository {shlex.quote(repository)} --region {shlex.quote(region)}"
    ]


def python_install_commands(*, index_login: Sequence[str]) -> list[str]:
    """Install the repository's pinned Python dependencies (the verify step needs only these).

    `index_login` (from `index_login_commands`) runs first: without it pip would look for the team's
    packages on the public index, which must never provide them.
    """
    return [*index_login, "python -m pip install --disable-pip-version-check --no-input -r requirements.txt"]


def install_commands(*, index_login: Sequence[str]) -> list[str]:
    """Install the pinned CDK CLI (from package-lock.json) and the pinned Python dependencies."""
    return ["npm ci --no-audit --no-fund", *python_install_commands(index_login=index_login)]


def promotion_guard_commands(previous_pipeline: str, previous_env: str, env_name: str, region: str) -> list[str]:
    """Refuse the commit unless the previous environment's pipeline deployed *and verified* exactly this commit.

    It runs first in the synth step, before anything installs or synthesizes, so a refused commit changes
    nothing: not its environment and not its own pipeline (self-mutation comes after synth). It asks CodePipeline,
    not git, so it needs no git credentials and works for CodeCommit and CodeConnections alike: an execution of
    the previous pipeline that succeeded ran every step, its deployment and its Verify step included, for the
    commit in its source revisions. `lakeops promote` fast-forwards, so the promoted commit is that same commit.
    One shell line: the rehearsal runs each command in a shell of its own, CodeBuild in one.
    """
    query = "pipelineExecutionSummaries[?status=='Succeeded'].sourceRevisions[].revisionId"
    commit = f'"${SOURCE_COMMIT_VARIABLE}"'
    return [
        f'test -n {commit} || {{ echo "REFUSED: the source action passed no commit id"; exit 1; }}; '
        f"if aws codepipeline list-pipeline-executions --pipeline-name {shlex.quote(previous_pipeline)} "
        f"--region {shlex.quote(region)} --query {shlex.quote(query)} --output text "
        f"| tr -s '[:space:]' '\\n' | grep -qx {commit}; "
        f'then echo "commit ${SOURCE_COMMIT_VARIABLE} was deployed and verified in {previous_env}"; '
        f'else echo "REFUSED: commit ${SOURCE_COMMIT_VARIABLE} has no succeeded run of {previous_pipeline}: it was not '
        f"deployed and verified in {previous_env} (or that pipeline cannot be read). Promote it through "
        f'{previous_env} first: lakeops promote {previous_env} {env_name}"; exit 1; fi'
    ]


def termination_protection_commands(role_arn: str, region: str, stacks: Sequence[str]) -> list[str]:
    """Turn on termination protection of `stacks`, as the target account's CDK deploy role (the bootstrap
    template grants it cloudformation:UpdateTerminationProtection and trusts the deployment account).

    One shell line per stack (each assumes the role anew): the rehearsal runs each command in a shell of its own.
    `env -u AWS_PROFILE` lets the role's keys win over a profile the caller may have set.
    """
    assume = (
        f"aws sts assume-role --role-arn {shlex.quote(role_arn)} --role-session-name lake-termination-protection "
        "--query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' --output text"
    )
    return [
        f"set -- $({assume}) && test $# -eq 3 && "
        'env -u AWS_PROFILE AWS_ACCESS_KEY_ID="$1" AWS_SECRET_ACCESS_KEY="$2" AWS_SESSION_TOKEN="$3" '
        f"aws cloudformation update-termination-protection --enable-termination-protection "
        f"--region {shlex.quote(region)} --stack-name {shlex.quote(stack)}"
        for stack in stacks
    ]


# `ssm get-parameters` takes at most 10 names per call (SSM API reference, GetParameters).
SSM_GET_PARAMETERS_LIMIT = 10


def contract_check_commands(role_arn: str, region: str, parameters: Sequence[str], writers: str) -> list[str]:
    """Refuse the deployment, naming each parameter, when an SSM parameter the stage reads at deploy time is missing.

    The stage's templates resolve these parameters (`AWS::SSM::Parameter::Value<...>`) when CloudFormation creates
    the change set; one missing fails the deployment midway with a message naming a template parameter, not the
    path. The check runs as the target account's CDK lookup role, which exists from bootstrap on, trusts the
    deployment account and may read parameters (the bootstrap template gives it ReadOnlyAccess and denies
    kms:Decrypt; the contract holds String parameters only). One shell line: the rehearsal runs each command in
    a shell of its own. `writers` tells the reader who writes the parameters.
    """
    assume = (
        f"aws sts assume-role --role-arn {shlex.quote(role_arn)} --role-session-name lake-contract-check "
        "--query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' --output text"
    )
    batches = [
        parameters[start : start + SSM_GET_PARAMETERS_LIMIT]
        for start in range(0, len(parameters), SSM_GET_PARAMETERS_LIMIT)
    ]
    reads = "; ".join(
        'missing="$missing $(env -u AWS_PROFILE AWS_ACCESS_KEY_ID="$1" AWS_SECRET_ACCESS_KEY="$2" '
        f'AWS_SESSION_TOKEN="$3" aws ssm get-parameters --region {shlex.quote(region)} '
        f"--names {' '.join(shlex.quote(p) for p in batch)} --query InvalidParameters --output text "
        '|| echo UNREADABLE)"'
        for batch in batches
    )
    return [
        f'set -- $({assume}) && test $# -eq 3 || {{ echo "REFUSED: could not assume {role_arn}"; exit 1; }}; '
        f"missing=''; {reads}; "
        "missing=$(echo $missing | tr -s '[:space:]' '\\n' | grep -vx -e None -e '' | sort -u | paste -sd ' ' -); "
        'if [ -n "$missing" ]; then echo "REFUSED: the environment lacks the SSM parameter(s) this stage reads '
        f'at deploy time: $missing ({writers}; UNREADABLE: the lookup role could not read them)"; exit 1; fi; '
        f'echo "all {len(parameters)} SSM parameter(s) the stage reads exist"'
    ]


def start_pipeline_commands(pipeline: str, region: str) -> list[str]:
    """Start another pipeline (one that reads what this one deployed)."""
    return [f"aws codepipeline start-pipeline-execution --name {shlex.quote(pipeline)} --region {shlex.quote(region)}"]


def pull_config_commands(secret_name: str, region: str) -> list[str]:
    """Read the published global config into `CONFIG_FILE`; the only secret the build ever reads."""
    return [
        "lake-config pull "
        f"--secret {shlex.quote(secret_name)} --region {shlex.quote(region)} --out {shlex.quote(CONFIG_FILE)}"
    ]


def check_commands() -> list[str]:
    """Lint, type check (the repository's pyproject names what) and unit tests; the tests include the cdk-nag,
    cfn-lint and execution-policy gates over the synthesized app."""
    return ["ruff check .", "ruff format --check .", "mypy", "python -m pytest -q"]


def synth_commands() -> list[str]:
    """Synthesize the app from the pulled config: deterministic, no lookups."""
    return [f"npx cdk synth -c config={CONFIG_FILE}"]


def verify_commands(verify_module: str, env_name: str, role_arn: str, region: str) -> list[str]:
    """Run the repository's post-deploy check against one environment through its verify role."""
    return [
        f"python -m {shlex.quote(verify_module)} --config {shlex.quote(CONFIG_FILE)} --env {shlex.quote(env_name)} "
        f"--role-arn {shlex.quote(role_arn)} --region {shlex.quote(region)}"
    ]
