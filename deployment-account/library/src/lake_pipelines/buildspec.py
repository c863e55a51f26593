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
