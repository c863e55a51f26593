"""`lakeops promote` against temporary git repositories: every refusal, then the fast-forward itself."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from datalake_config import LakeConfig, from_mapping
from lakeops import cli
from lakeops.promote import PromotionError, apply_promotion, plan_promotion

GIT_IDENTITY = ["-c", "user.name=lakeops test", "-c", "user.email=lakeops-test@example.com"]


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), *GIT_IDENTITY, *args], capture_output=True, text=True, check=True)
    return result.stdout.strip()


def commit(repo: Path, path: str, text: str, message: str) -> str:
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(text)
    git(repo, "add", path)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """dev, test and prod at one base commit; dev then two commits ahead; dev checked out."""
    path = tmp_path / "infra"
    path.mkdir()
    git(path, "init", "-q", "-b", "dev")
    commit(path, "app.py", "base\n", "base")
    git(path, "branch", "test")
    git(path, "branch", "prod")
    commit(path, "app.py", "base\nnetwork\n", "add the network")
    commit(path, "storage/zones.py", "zones\n", "add storage zones")
    return path


def head(repo: Path, branch: str) -> str:
    return git(repo, "rev-parse", f"refs/heads/{branch}")


def promote(repo: Path, *args: str) -> int:
    return cli.main(["promote", *args, "--repo", str(repo)])


# --- refusals ---------------------------------------------------------------------------------------------
def test_skipping_an_environment_is_refused_naming_the_expected_step(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = head(repo, "prod")
    assert promote(repo, "dev", "prod", "--yes") == 1
    err = capsys.readouterr().err
    assert "refused: dev promotes to test next (configured order: dev → test → prod)" in err
    assert "expected `promote dev test`, got `promote dev prod`" in err
    assert head(repo, "prod") == before


def test_promoting_backwards_is_refused(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert promote(repo, "test", "dev", "--yes") == 1
    assert "expected `promote test prod`, got `promote test dev`" in capsys.readouterr().err


def test_promoting_past_the_last_environment_or_to_an_unknown_one_is_refused(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert promote(repo, "prod", "dev", "--yes") == 1
    assert "prod is the last environment (dev → test → prod)" in capsys.readouterr().err
    assert promote(repo, "dev", "qa", "--yes") == 1
    assert "unknown environment 'qa'; configured order: dev → test → prod" in capsys.readouterr().err


def test_diverged_target_is_refused_listing_the_commits_the_source_lacks(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git(repo, "checkout", "-q", "test")
    commit(repo, "hotfix.py", "fix\n", "hotfix made directly on test")
    git(repo, "checkout", "-q", "dev")
    before = head(repo, "test")
    assert promote(repo, "dev", "test", "--yes") == 1
    err = capsys.readouterr().err
    assert "refused: test has commits that dev lacks" in err
    assert f"{before[:7]} hotfix made directly on test" in err
    assert head(repo, "test") == before


def test_dirty_work_tree_is_refused(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "app.py").write_text("uncommitted\n")
    before = head(repo, "test")
    assert promote(repo, "dev", "test", "--yes") == 1
    err = capsys.readouterr().err
    assert "the work tree has uncommitted changes" in err
    assert "app.py" in err
    assert head(repo, "test") == before


def test_missing_branch_is_refused_by_name(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    git(repo, "branch", "-D", "prod")
    assert promote(repo, "test", "prod", "--yes") == 1
    err = capsys.readouterr().err
    assert "missing branch(es) prod (for infra: test → test, prod → prod)" in err


def test_not_a_git_repository_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert promote(tmp_path, "dev", "test", "--yes") == 1
    assert "is not a git repository" in capsys.readouterr().err


def test_without_a_terminal_or_yes_nothing_is_promoted(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = head(repo, "test")
    assert promote(repo, "dev", "test") == 1
    captured = capsys.readouterr()
    assert "pass --yes to proceed" in captured.err
    assert "nothing promoted" in captured.out
    assert head(repo, "test") == before


def test_every_repository_is_checked_before_any_is_changed(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "etl"
    other.mkdir()
    git(other, "init", "-q", "-b", "dev")
    commit(other, "job.py", "job\n", "first job")  # no test branch here
    before = head(repo, "test")
    assert cli.main(["promote", "dev", "test", "--yes", "--repo", str(repo), "--repo", str(other)]) == 1
    assert "missing branch(es) test" in capsys.readouterr().err
    assert head(repo, "test") == before


# --- success ------------------------------------------------------------------------------------------------
def test_fast_forward_shows_commits_and_files_and_leaves_the_work_tree_alone(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, dev = head(repo, "test"), head(repo, "dev")
    assert promote(repo, "dev", "test", "--yes") == 0
    out = capsys.readouterr().out
    assert f"dev → test: fast-forward {base[:12]}..{dev[:12]}, 2 commit(s), 2 file(s)" in out
    commits = out[out.index("  commits:") : out.index("  files:")]
    assert commits.splitlines()[1:] == [
        f"    {dev[:7]} add storage zones",
        f"    {git(repo, 'rev-parse', '--short=7', 'dev~1')} add the network",
    ]
    assert "    M\tapp.py" in out
    assert "    A\tstorage/zones.py" in out
    assert f"test fast-forwarded to {dev[:12]}" in out
    assert head(repo, "test") == dev
    assert git(repo, "symbolic-ref", "--short", "HEAD") == "dev"  # the checked-out branch did not change
    assert head(repo, "prod") == base  # nothing else moved


def test_checked_out_target_is_merged_fast_forward_only(repo: Path) -> None:
    git(repo, "checkout", "-q", "test")
    assert promote(repo, "dev", "test", "--yes") == 0
    assert head(repo, "test") == head(repo, "dev")
    assert (repo / "storage/zones.py").read_text() == "zones\n"  # the work tree followed
    assert git(repo, "status", "--porcelain") == ""


def test_then_test_to_prod_and_push(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "dev", "test", "prod")
    assert promote(repo, "dev", "test", "--yes", "--push") == 0
    assert promote(repo, "test", "prod", "--yes", "--push") == 0
    assert "pushed prod to origin" in capsys.readouterr().out
    assert git(remote, "rev-parse", "refs/heads/prod") == head(repo, "dev")


def test_nothing_to_promote_is_reported_and_changes_nothing(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert promote(repo, "dev", "test", "--yes") == 0
    capsys.readouterr()
    assert promote(repo, "dev", "test") == 0  # no question asked: nothing to do
    assert "already up to date, nothing to promote" in capsys.readouterr().out


def test_branches_follow_the_repository_kind(example_config: LakeConfig, repo: Path) -> None:
    raw = example_config.model_dump(mode="json")
    raw["repositories"]["etl"]["branches"] = {"test": "release"}
    config = from_mapping(raw)
    git(repo, "branch", "release", "test")
    with pytest.raises(PromotionError, match="cannot tell whether this is the infra or the etl repository"):
        plan_promotion(config, repo, "dev", "test")
    plan = plan_promotion(config, repo, "dev", "test", kind="etl")
    assert (plan.source_branch, plan.target_branch) == ("dev", "release")
    git(repo, "remote", "add", "origin", "https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/acme-lake-etl")
    assert plan_promotion(config, repo, "dev", "test").kind == "etl"
    apply_promotion(plan)
    assert head(repo, "release") == head(repo, "dev")
    assert head(repo, "test") != head(repo, "dev")


def test_a_branch_moved_after_planning_is_not_overwritten(example_config: LakeConfig, repo: Path) -> None:
    plan = plan_promotion(example_config, repo, "dev", "test")
    git(repo, "branch", "-f", "test", "dev~1")  # someone else moved test meanwhile
    with pytest.raises(PromotionError, match="update of test failed"):
        apply_promotion(plan)
    assert head(repo, "test") == git(repo, "rev-parse", "dev~1")
