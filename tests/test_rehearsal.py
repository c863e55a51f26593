"""`lakeops rehearse`: a reduced rehearsal (dev only) end to end, and the ways it must stop."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from datalake_config.testing import EXAMPLE_CONFIG_PATH

LAKEOPS = [sys.executable, "-m", "lakeops.cli"]
WORKSPACE = Path(__file__).resolve().parents[1]


def rehearse(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    return subprocess.run(
        [*LAKEOPS, "rehearse", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=1500, check=False
    )


def emulator_pid(output: str) -> int | None:
    match = re.search(r"emulator pid (\d+)", output)
    return int(match.group(1)) if match else None


def alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text().lower()


@pytest.fixture(scope="module")
def dev_rehearsal(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    workdir = tmp_path_factory.mktemp("rehearsal")
    # make test runs each repository's checks itself; the rehearsal here covers everything else
    # lakeops runs in the DevOps workspace, where shared-config/ is checked out beside the other repositories
    return rehearse("--env", "dev", "--skip-checks", "--yes", "--workdir", str(workdir), cwd=WORKSPACE)


@pytest.mark.long
def test_dev_rehearsal_passes_and_reports_what_it_created(dev_rehearsal: subprocess.CompletedProcess[str]) -> None:
    out = dev_rehearsal.stdout
    assert dev_rehearsal.returncode == 0, out[-4000:] + dev_rehearsal.stderr[-4000:]
    assert "REHEARSAL PASSED" in out
    rows = {line.split()[1]: line.split() for line in out.splitlines() if re.match(r"^dev\s+(infra|etl)\s", line)}
    assert set(rows) == {"infra", "etl"}
    # env repo stacks in-template created checked handler-not-run not-emulated listed unaccounted contract ...
    infra = rows["infra"]
    stacks, in_template, created, checked, handler, not_emulated, listed, unaccounted = map(int, infra[2:10])
    assert stacks >= 4 and created > 50 and checked > 0  # resources really created, and found by their API
    assert in_template == created + handler + not_emulated + listed + unaccounted and unaccounted == 0
    contract_present, contract_expected = infra[10].split("/")
    assert contract_present == contract_expected
    # the sample delivered; its objects start each group's state machine through the ObjectCreated rule (a burst:
    # one execution runs the jobs, the others are skipped and one follow-up runs), which runs every deployed job
    # in the emulated Glue, with the counts the run recorded; then Verify starts each job itself
    assert re.search(r"job customer_cdc: delivered \d+ sample object\(s\) to s3://", out)
    assert re.search(r"job EventBridge: [1-9]\d* execution\(s\) started by rule\(s\) .*ObjectCreated", out)
    assert "(skipped: another execution held the group's lock and followed up)" in out
    assert re.search(
        r"job customer_cdc/conform_events: Glue run jr_[0-9a-f]{64} SUCCEEDED, started by execution "
        r"[0-9a-f-]{36}, read [1-9]\d*, wrote [1-9]\d*",
        out,
    )
    for job in (
        "customer-cdc-conform-events",
        "customer-cdc-merge-current",
        "legislators-conform",
        "legislators-enrich",
    ):
        run = rf"job acme-lake-dev-{job}: run jr_[0-9a-f]{{64}} SUCCEEDED in \d+s, started by"
        assert re.search(rf"{run} execution [0-9a-f-]{{36}}", out), job
        assert re.search(rf"{run} a direct StartJobRun", out), job
    # honesty: what the emulator cannot create is listed, and custom resources are called out
    assert "Not emulated" in out and "without running their Lambda handler" in out
    assert "AWS::CodeArtifact::Repository × 2" in out


@pytest.mark.long
def test_each_repository_installs_alone_from_the_package_index(dev_rehearsal: subprocess.CompletedProcess[str]) -> None:
    out = dev_rehearsal.stdout
    assert "package index holds gluelake-config 0.2.0, gluelake-pipelines 0.2.0" in out
    # the pipeline's install phase, verbatim, once per repository: login first, then pip
    assert out.count("$ aws codeartifact login --tool pip --domain acme-lake-packages") == 2
    assert out.count("$ python -m pip install --disable-pip-version-check --no-input -r requirements.txt") == 2


@pytest.mark.long
def test_the_emulator_is_gone_after_the_rehearsal(dev_rehearsal: subprocess.CompletedProcess[str]) -> None:
    pid = emulator_pid(dev_rehearsal.stdout)
    assert pid is not None
    assert not alive(pid)


def test_a_broken_config_stops_at_validation_with_the_field_named(tmp_path: Path) -> None:
    raw = yaml.safe_load(EXAMPLE_CONFIG_PATH.read_text())
    raw["environments"]["prod"]["account"] = "12345"
    broken = tmp_path / "config.yaml"
    broken.write_text(yaml.safe_dump(raw, sort_keys=False))
    result = rehearse("--config", str(broken), "--yes", "--workdir", str(tmp_path / "work"), cwd=tmp_path)
    assert result.returncode == 1
    assert "environments.prod.account: must be 12 digits, got '12345'" in result.stderr
    assert "✗ validate the shared config" in result.stdout
    assert "REHEARSAL FAILED" in result.stdout
    assert emulator_pid(result.stdout) is None  # stopped before anything started


def test_environments_must_be_a_leading_part_of_the_order(tmp_path: Path) -> None:
    result = rehearse("--env", "prod", "--yes", "--workdir", str(tmp_path), cwd=WORKSPACE)
    assert result.returncode == 1
    assert "leading part of the promotion order dev → test → prod" in result.stderr


def test_rehearsal_repositories_hold_one_change_to_promote(tmp_path: Path) -> None:
    from datalake_config import load
    from lakeops.rehearsal.flow import APP_FOLDERS, PROJECT_ROOT
    from lakeops.rehearsal.workspace import make_repositories

    config = load(EXAMPLE_CONFIG_PATH)
    repos = make_repositories(PROJECT_ROOT, tmp_path, config, APP_FOLDERS)
    assert set(repos) == {"infra", "etl"}
    for kind, repo in repos.items():

        def git(*args: str, path: Path = repo.path) -> str:
            return subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, check=True).stdout

        branches = git("branch", "--format=%(refname:short)").split()
        assert sorted(branches) == sorted(config.branch_for(kind, env) for env in config.environment_names)
        # dev is one commit ahead of test and prod: the change each promotion moves
        assert git("rev-list", "--count", "test..dev").strip() == "1"
        assert git("rev-list", "--count", "dev..test").strip() == "0"
        assert git("rev-parse", "test") == git("rev-parse", "prod")
        assert (repo.path / "app.py").exists() and (repo.path / "pyproject.toml").exists()
        assert not (repo.path / "ruff.toml").exists()  # each repository carries its own tool settings
