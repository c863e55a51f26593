"""Promotion between environment branches: only the next step in the configured order, only fast-forwards.

`lakeops promote dev test` moves the `test` branch of a repository to the commit `dev` points at, after
refusing anything that is not a plain fast-forward along the configured order. It works on local
branches (pull them first); `--push` then pushes the target branch. Which branch serves an environment
comes from `config.branch_for(kind, env)`, kind being `infra` or `etl`: given with `--kind`, or inferred
from the repository's `origin` URL naming a configured repository; when both kinds use the same branches
the kind makes no difference and `infra` is used.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from datalake_config import LakeConfig
from datalake_config.naming import REPOSITORIES
from lakeops.errors import LakeopsError


class PromotionError(LakeopsError):
    """A promotion was refused or failed; nothing was changed in that repository."""


@dataclass(frozen=True)
class PromotionPlan:
    """What promoting `source_branch` into `target_branch` of one repository would do."""

    repo: Path
    kind: str
    source_env: str
    target_env: str
    source_branch: str
    target_branch: str
    source_commit: str
    target_commit: str
    commits: tuple[str, ...]  # `<short sha> <subject>`, newest first
    files: tuple[str, ...]  # `<status>\t<path>` as git diff --name-status prints them
    target_checked_out: bool

    @property
    def empty(self) -> bool:
        return not self.commits

    def describe(self) -> str:
        head = f"{self.repo} ({self.kind}): {self.source_branch} → {self.target_branch}"
        if self.empty:
            return f"{head}: already up to date, nothing to promote"
        lines = [
            f"{head}: fast-forward {self.target_commit[:12]}..{self.source_commit[:12]}, "
            f"{len(self.commits)} commit(s), {len(self.files)} file(s)",
            "  commits:",
            *(f"    {c}" for c in self.commits),
            "  files:",
            *(f"    {f}" for f in self.files),
        ]
        return "\n".join(lines)


def check_order(config: LakeConfig, source: str, target: str) -> None:
    """Refuse anything but the next step of the configured order, naming the expected step."""
    order = " → ".join(config.environment_names)
    for name in (source, target):
        if name not in config.environments:
            raise PromotionError(f"unknown environment {name!r}; configured order: {order}")
    expected = config.next_environment(source)
    if expected is None:
        raise PromotionError(f"{source} is the last environment ({order}): there is nothing to promote it to")
    if target != expected:
        raise PromotionError(
            f"refused: {source} promotes to {expected} next (configured order: {order}); "
            f"expected `promote {source} {expected}`, got `promote {source} {target}`"
        )


def plan_promotion(config: LakeConfig, repo: Path, source: str, target: str, kind: str | None = None) -> PromotionPlan:
    """Check everything and describe the fast-forward; changes nothing."""
    check_order(config, source, target)
    root = Path(_git(repo, "rev-parse", "--show-toplevel", what=f"{repo} is not a git repository"))
    kind = kind or infer_kind(config, root, source, target)
    if kind not in REPOSITORIES:
        raise PromotionError(f"--kind {kind!r}: expected one of {', '.join(REPOSITORIES)}")
    source_branch, target_branch = config.branch_for(kind, source), config.branch_for(kind, target)

    dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    if dirty:
        raise PromotionError(f"{root}: the work tree has uncommitted changes; commit or stash them first:\n{dirty}")
    missing = [b for b in (source_branch, target_branch) if not _branch_exists(root, b)]
    if missing:
        raise PromotionError(
            f"{root}: missing branch(es) {', '.join(missing)} (for {kind}: {source} → {source_branch}, "
            f"{target} → {target_branch}); fetch or create them first"
        )
    source_commit = _git(root, "rev-parse", f"refs/heads/{source_branch}")
    target_commit = _git(root, "rev-parse", f"refs/heads/{target_branch}")
    only_on_target = _git(root, "log", "--format=%h %s", f"{source_commit}..{target_commit}")
    if only_on_target:
        raise PromotionError(
            f"{root}: refused: {target_branch} has commits that {source_branch} lacks, so this would not be a "
            f"fast-forward (bring them into {source_branch} first, or revert them on {target_branch}):\n"
            + "\n".join(f"  {line}" for line in only_on_target.splitlines())
        )
    commits = _git(root, "log", "--format=%h %s", f"{target_commit}..{source_commit}")
    files = _git(root, "diff", "--name-status", target_commit, source_commit)
    checked_out = _git(root, "symbolic-ref", "--quiet", "--short", "HEAD", check=False) == target_branch
    return PromotionPlan(
        repo=root,
        kind=kind,
        source_env=source,
        target_env=target,
        source_branch=source_branch,
        target_branch=target_branch,
        source_commit=source_commit,
        target_commit=target_commit,
        commits=tuple(commits.splitlines()),
        files=tuple(files.splitlines()),
        target_checked_out=checked_out,
    )


def infer_kind(config: LakeConfig, repo: Path, source: str, target: str) -> str:
    """`infra` or `etl` from the origin URL; needed only when the two kinds map these environments differently."""
    wanted = {kind: (config.branch_for(kind, source), config.branch_for(kind, target)) for kind in REPOSITORIES}
    url = _git(repo, "remote", "get-url", "origin", check=False)
    named = [k for k in REPOSITORIES if url and _names_repository(url, config.repository(k).source.repository_name)]
    if len(named) == 1:
        return named[0]
    if len(set(wanted.values())) == 1:
        return REPOSITORIES[0]
    raise PromotionError(
        f"{repo}: cannot tell whether this is the infra or the etl repository, and their branches differ "
        f"({', '.join(f'{k}: {s} → {t}' for k, (s, t) in wanted.items())}); pass --kind infra|etl"
    )


def apply_promotion(plan: PromotionPlan, *, push: bool = False, remote: str = "origin") -> list[str]:
    """Fast-forward the target branch (and push it); returns what was done."""
    done = []
    if not plan.empty:
        if plan.target_checked_out:
            _git(plan.repo, "merge", "--ff-only", plan.source_commit, what=f"fast-forward of {plan.target_branch}")
        else:
            # the old value makes git refuse if the branch moved since the plan was made
            _git(
                plan.repo,
                "update-ref",
                "-m",
                f"lakeops promote {plan.source_env} {plan.target_env}",
                f"refs/heads/{plan.target_branch}",
                plan.source_commit,
                plan.target_commit,
                what=f"update of {plan.target_branch}",
            )
        done.append(f"{plan.repo}: {plan.target_branch} fast-forwarded to {plan.source_commit[:12]}")
    if push:
        ref = f"refs/heads/{plan.target_branch}"
        _git(plan.repo, "push", remote, f"{ref}:{ref}", what=f"push of {plan.target_branch} to {remote}")
        done.append(f"{plan.repo}: pushed {plan.target_branch} to {remote}")
    return done


def _names_repository(url: str, name: str) -> bool:
    last = url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return last.removesuffix(".git") == name


def _branch_exists(repo: Path, branch: str) -> bool:
    result = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0


def _git(repo: Path, *args: str, what: str | None = None, check: bool = True) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    if result.returncode != 0 and check:
        detail = result.stderr.strip() or result.stdout.strip()
        raise PromotionError(f"{what or 'git ' + ' '.join(args)} failed: {detail}")
    return result.stdout.strip() if result.returncode == 0 else ""
