"""`lakeops release build|publish` end to end through `lakeops.cli.main`: real wheels of the shared packages,
published to the CodeArtifact stand-in, and every refusal before anything is uploaded.

The build reads the workspace's shared-config and deployment-account/library folders (what `release build`
does in the DevOps workspace); it is skipped where they are not checked out beside this repository.
"""

from __future__ import annotations

import importlib.metadata
import io
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from datalake_config import lake_names
from datalake_config.testing import EXAMPLE_CONFIG_PATH, example_config
from lakeops.cli import main
from lakeops.emulator.package_index import PackageIndex
from lakeops.release import read_wheel

WORKSPACE = Path(__file__).resolve().parents[2]
CONFIG = example_config()
DOMAIN = lake_names(CONFIG).package_domain
REPOSITORY = lake_names(CONFIG).package_repository
OWNER = CONFIG.deployment.account
# The versions the workspace's sources carry (installed from them, editable, in the workspace).
VERSIONS = {name: importlib.metadata.version(name) for name in ("gluelake-config", "gluelake-pipelines")}
WHEELS = {name: f"{name.replace('-', '_')}-{version}-py3-none-any.whl" for name, version in VERSIONS.items()}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def publish(capsys: pytest.CaptureFixture[str], wheel_dir: Path, *extra: str) -> tuple[int, str, str]:
    return run(capsys, "release", "publish", "--dir", str(wheel_dir), "--config", str(EXAMPLE_CONFIG_PATH), *extra)


@pytest.fixture(scope="module")
def built() -> Iterator[Path]:
    """Both wheels, built once by `lakeops release build` from the workspace root with its default folders."""
    if not (WORKSPACE / "shared-config" / "pyproject.toml").is_file():
        pytest.skip(f"the DevOps workspace ({WORKSPACE}) has no shared-config folder beside this repository")
    with tempfile.TemporaryDirectory(prefix="lakeops-release-test-") as out, pytest.MonkeyPatch.context() as patch:
        patch.chdir(WORKSPACE)
        assert main(["release", "build", "--out", out]) == 0
        yield Path(out)


@pytest.fixture
def wheels(built: Path, tmp_path: Path) -> Path:
    """A private copy of the built wheels, so a test may add files beside them."""
    return Path(shutil.copytree(built, tmp_path / "wheels"))


def use_stand_in(index: PackageIndex, monkeypatch: pytest.MonkeyPatch, scratch: Path) -> None:
    """The stand-in as the CodeArtifact endpoint (the boto3 way), with dummy credentials and no profile."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(scratch / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(scratch / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL_CODEARTIFACT", index.endpoint_url)


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PackageIndex]:
    with PackageIndex(tmp_path / "index", domain=DOMAIN, repository=REPOSITORY, domain_owner=OWNER) as running:
        use_stand_in(running, monkeypatch, tmp_path)
        yield running


def foreign_wheel(folder: Path, name: str = "requests_extra", version: str = "0.1.0") -> Path:
    path = folder / f"{name}-{version}-py3-none-any.whl"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{name}/__init__.py", "")
        metadata = f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n"
        archive.writestr(f"{name}-{version}.dist-info/METADATA", metadata)
    path.write_bytes(buffer.getvalue())
    return path


# --- build ----------------------------------------------------------------------------------------------


def test_build_writes_both_wheels_carrying_the_config_file(built: Path) -> None:
    assert sorted(p.name for p in built.iterdir()) == sorted(WHEELS.values())
    with zipfile.ZipFile(built / WHEELS["gluelake-config"]) as archive:
        # example-config.yaml is a link in the source; the wheel must carry the file's bytes
        shipped = archive.read("datalake_config/example-config.yaml")
        assert "datalake_config/py.typed" in archive.namelist()
    assert shipped == (WORKSPACE / "shared-config" / "config.yaml").read_bytes()
    with zipfile.ZipFile(built / WHEELS["gluelake-pipelines"]) as archive:
        assert "lake_pipelines/policies/cfn-execution.json" in archive.namelist()
    requires = read_wheel(built / WHEELS["gluelake-pipelines"]).requires_dist
    assert f"gluelake-config=={VERSIONS['gluelake-config']}" in requires


def test_build_refuses_a_missing_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "shared-config"
    code, _out, err = run(capsys, "release", "build", "--out", str(tmp_path / "out"), "--source", str(missing))
    assert code == 1
    assert f"{missing}: no such folder" in err
    assert not (tmp_path / "out").exists()


def test_build_refuses_a_folder_that_is_not_a_team_package(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "requests-extra"\nversion = "1.0"\n')
    code, _out, err = run(capsys, "release", "build", "--out", str(tmp_path / "out"), "--source", str(tmp_path))
    assert code == 1
    assert "'requests-extra', not one of the team's packages" in err


def test_build_refuses_a_link_out_of_the_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    part = tmp_path / "shared-config"
    package = part / "src" / "datalake_config"
    package.mkdir(parents=True)
    (part / "pyproject.toml").write_text('[project]\nname = "gluelake-config"\nversion = "9.9.9"\n')
    (package / "__init__.py").write_text("")
    (tmp_path / "elsewhere.yaml").write_text("prefix: x\n")
    (package / "example-config.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    code, _out, err = run(capsys, "release", "build", "--out", str(tmp_path / "out"), "--source", str(part))
    assert code == 1
    assert f"{package / 'example-config.yaml'} links outside {part}" in err


# --- publish --------------------------------------------------------------------------------------------


def test_publish_uploads_each_wheel_then_refuses_the_same_versions(
    capsys: pytest.CaptureFixture[str], wheels: Path, index: PackageIndex
) -> None:
    code, out, err = publish(capsys, wheels, "--yes")
    assert code == 0, err
    assert f"2 wheel(s) → repository {REPOSITORY} in domain {DOMAIN} (account {OWNER}" in out
    assert all(f"{name} {version}" in out for name, version in VERSIONS.items())
    assert index.published() == {name: [version] for name, version in VERSIONS.items()}
    for project, filename in WHEELS.items():
        assert (index.storage / project / filename).read_bytes() == (wheels / filename).read_bytes()
    [token] = index.issued_tokens
    assert token not in out + err

    code, out, err = publish(capsys, wheels, "--yes")
    assert code == 1
    for name, version in VERSIONS.items():
        assert f"{name} {version} already exists in repository {REPOSITORY}" in err
    assert "nothing uploaded" in err
    assert index.counts()["upload"] == 2
    assert len(index.issued_tokens) == 1  # a refused publish never asks for a token


def test_publish_refuses_when_one_version_exists(
    capsys: pytest.CaptureFixture[str], wheels: Path, index: PackageIndex
) -> None:
    only_config = wheels.parent / "only-config"
    only_config.mkdir()
    shutil.copy(wheels / WHEELS["gluelake-config"], only_config)
    assert publish(capsys, only_config, "--yes")[0] == 0
    code, _out, err = publish(capsys, wheels, "--yes")
    assert code == 1
    assert f"gluelake-config {VERSIONS['gluelake-config']} already exists" in err and "gluelake-pipelines" not in err
    assert index.published() == {"gluelake-config": [VERSIONS["gluelake-config"]]}  # the new pipelines wheel waits too


def test_skip_existing_publishes_only_what_is_new_and_then_nothing(
    capsys: pytest.CaptureFixture[str], wheels: Path, index: PackageIndex
) -> None:
    only_config = wheels.parent / "only-config"
    only_config.mkdir()
    shutil.copy(wheels / WHEELS["gluelake-config"], only_config)
    assert publish(capsys, only_config, "--yes")[0] == 0
    code, out, err = publish(capsys, wheels, "--yes", "--skip-existing")
    assert code == 0, err
    assert f"skipped, already published: gluelake-config {VERSIONS['gluelake-config']}" in out
    assert index.published() == {name: [version] for name, version in VERSIONS.items()}
    code, out, _ = publish(capsys, wheels, "--yes", "--skip-existing")
    assert (code, out.splitlines()[-1]) == (0, "release publish: nothing new to publish")
    assert index.counts()["upload"] == 2


def test_source_without_build_is_a_usage_error(capsys: pytest.CaptureFixture[str], wheels: Path) -> None:
    code, _, err = publish(capsys, wheels, "--source", "shared-config")
    assert code == 1
    assert "--source names folders to build from, so it needs --build" in err


def test_dry_run_shows_the_plan_and_uploads_nothing(
    capsys: pytest.CaptureFixture[str], wheels: Path, index: PackageIndex
) -> None:
    code, out, _err = publish(capsys, wheels, "--dry-run")
    assert code == 0
    assert f"endpoint {index.repository_endpoint}" in out
    assert out.count("new version") == 2 and "dry run: nothing uploaded" in out
    assert index.published() == {} and index.issued_tokens == []


def test_without_yes_and_without_a_terminal_nothing_is_uploaded(
    capsys: pytest.CaptureFixture[str], wheels: Path, index: PackageIndex
) -> None:
    code, out, err = publish(capsys, wheels)
    assert code == 1
    assert "pass --yes" in err and "nothing uploaded" in out
    assert index.published() == {}


def test_publish_refuses_a_foreign_wheel_before_any_aws_call(
    capsys: pytest.CaptureFixture[str], wheels: Path, index: PackageIndex
) -> None:
    foreign_wheel(wheels)
    code, _out, err = publish(capsys, wheels, "--yes")
    assert code == 1
    assert "requests_extra-0.1.0-py3-none-any.whl (requests-extra)" in err
    assert "not the team's packages" in err and "nothing uploaded" in err
    assert index.requests == []


def test_publish_refuses_an_empty_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, index: PackageIndex
) -> None:
    code, _out, err = publish(capsys, tmp_path)
    assert code == 1
    assert f"no wheels in {tmp_path}" in err


def test_publish_names_a_repository_that_does_not_exist(
    capsys: pytest.CaptureFixture[str], wheels: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with PackageIndex(tmp_path / "other", domain=DOMAIN, repository="another-repository") as other:
        use_stand_in(other, monkeypatch, tmp_path)
        code, _out, err = publish(capsys, wheels, "--yes")
    assert code == 1
    assert "AWS refused GetRepositoryEndpoint: ResourceNotFoundException" in err
    assert REPOSITORY in err
