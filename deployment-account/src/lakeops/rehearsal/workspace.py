"""The rehearsal's workspace: one git repository per part made from that folder alone, a fresh virtual
environment per app repository, and AWS profiles for every account."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from datalake_config import LakeConfig, lake_names
from lakeops.emulator.process import Emulator

# A fresh clone holds the folder's tracked files only: nothing generated, nothing from the workspace around it.
IGNORED = shutil.ignore_patterns(
    "cdk.out",
    "__pycache__",
    "*.egg-info",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".lake",
    ".hypothesis",
    "node_modules",
    "build",
)
TARGET_ROLE = "lake-operator-admin"


@dataclass
class RepoCopy:
    kind: str  # "infra" | "etl"
    path: Path
    env: dict[str, str | None] = field(default_factory=dict)  # its own environment and tools (None: unset)
    installed: str = ""  # digest of the install inputs the environment was made from


def make_repositories(
    project_root: Path, workdir: Path, config: LakeConfig, folders: dict[str, str]
) -> dict[str, RepoCopy]:
    """A git repository per app folder: every environment branch at the import, then one change on the
    first branch, so each promotion really moves a commit (and the pipelines deploy a new commit)."""
    repos = {}
    for kind, folder in folders.items():
        path = copy_alone(project_root, workdir, folder)
        (path / ".gitignore").write_text("node_modules\ncdk.out\n.lake\n__pycache__\n*.egg-info\n")
        first, *others = [config.branch_for(kind, env) for env in config.environment_names]
        _git(path, "init", "--quiet", "--initial-branch", first)
        _git(path, "add", "--all")
        _git(path, "commit", "--quiet", "--message", f"{folder}: initial import for the rehearsal")
        for branch in others:
            _git(path, "branch", branch)
        (path / "CHANGES.md").write_text(f"# {folder}\n\n- the change this rehearsal promotes from {first}\n")
        _git(path, "add", "CHANGES.md")
        _git(path, "commit", "--quiet", "--message", f"{folder}: a change made on {first}, promoted by the rehearsal")
        repos[kind] = RepoCopy(kind, path)
    return repos


def copy_alone(project_root: Path, workdir: Path, folder: str) -> Path:
    """A clone's worth of one part: its own folder and nothing around it."""
    path = workdir / "repos" / folder
    shutil.copytree(project_root / folder, path, ignore=IGNORED, symlinks=True)
    return path


def checkout(repo: RepoCopy, branch: str) -> str:
    _git(repo.path, "checkout", "--quiet", branch)
    return _git(repo.path, "rev-parse", "HEAD").strip()


def commit_directly(repo: RepoCopy, branch: str, message: str) -> str:
    """A commit made on `branch` itself, as a direct push would land it (not through a promotion)."""
    checkout(repo, branch)
    _git(repo.path, "commit", "--quiet", "--allow-empty", "--message", message)
    return _git(repo.path, "rev-parse", "HEAD").strip()


def reset_branch(repo: RepoCopy, branch: str, commit: str) -> None:
    checkout(repo, branch)
    _git(repo.path, "reset", "--quiet", "--hard", commit)


def write_profiles(workdir: Path, config: LakeConfig, emulator: Emulator) -> dict[str, str]:
    """An AWS config file with the profiles `lakeops bootstrap` expects, each reaching its own account.

    The deployment profile holds the operator's keys; each environment profile assumes the target
    account's role from it, exactly as a multi-account AWS CLI setup does.
    """
    names = lake_names(config)
    region = config.deployment.region
    deployment = names.deployment_profile
    lines = [f"[profile {deployment}]", f"region = {region}", ""]
    for env in config.environment_names:
        e = config.env(env)
        lines += [
            f"[profile {names.environment_profile(env)}]",
            f"region = {e.region}",
            f"role_arn = arn:aws:iam::{e.account}:role/{TARGET_ROLE}",
            f"source_profile = {deployment}",
            "",
        ]
    config_file = workdir / "aws-config"
    credentials_file = workdir / "aws-credentials"
    config_file.write_text("\n".join(lines))
    credentials_file.write_text(
        f"[{deployment}]\naws_access_key_id = {emulator.access_key}\naws_secret_access_key = {emulator.secret_key}\n"
    )
    credentials_file.chmod(0o600)
    # Credentials come from the profiles only, as on an operator's machine.
    client_env = {
        k: v for k, v in emulator.client_env().items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    return client_env | {"AWS_CONFIG_FILE": str(config_file), "AWS_SHARED_CREDENTIALS_FILE": str(credentials_file)}


def _git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=lakeops rehearsal", "-c", "user.email=rehearsal@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout
