"""The CodeArtifact stand-in: its API through boto3, its PyPI endpoint through urllib and the real pip, and the
pipeline's install phase end to end (`aws codeartifact login --tool pip`, then `pip install` in a fresh venv).

Needs the workspace's shared-config folder (to build the real gluelake-config wheel); the tests that reach the
public index through the stand-in's redirect skip when pypi.org cannot be reached.
"""

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import boto3
import pytest
from botocore.exceptions import ClientError

from datalake_config import lake_names
from datalake_config.testing import example_config
from lakeops.emulator.package_index import PackageIndex
from lakeops.release import ReleaseError, Wheel, build_wheels, read_part, read_wheel, upload

WORKSPACE = Path(__file__).resolve().parents[2]
SHARED_CONFIG = WORKSPACE / "shared-config"
CONFIG = example_config()
DOMAIN = lake_names(CONFIG).package_domain
REPOSITORY = lake_names(CONFIG).package_repository
OWNER = CONFIG.deployment.account
REGION = CONFIG.deployment.region
SUBPROCESS_TIMEOUT_S = 180


def _pypi_reachable() -> bool:
    try:
        with socket.create_connection(("pypi.org", 443), timeout=3):
            return True
    except OSError:
        return False


needs_pypi = pytest.mark.skipif(not _pypi_reachable(), reason="pypi.org cannot be reached from here")


@pytest.fixture(scope="module")
def config_wheel() -> Iterator[Wheel]:
    """The real gluelake-config wheel, built once for the module from the workspace's shared-config folder."""
    if not (SHARED_CONFIG / "pyproject.toml").is_file():
        pytest.skip(f"{SHARED_CONFIG} is not checked out beside this repository")
    with tempfile.TemporaryDirectory(prefix="lakeops-index-test-") as out:
        [built] = build_wheels([read_part(SHARED_CONFIG)], Path(out))
        yield read_wheel(built.path)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[PackageIndex]:
    with PackageIndex(tmp_path / "index", domain=DOMAIN, repository=REPOSITORY, domain_owner=OWNER) as running:
        yield running


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, index: PackageIndex) -> None:
    """Dummy credentials and the stand-in as the CodeArtifact endpoint, nothing from the machine."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL_CODEARTIFACT", index.endpoint_url)


def publish(index: PackageIndex, wheel: Wheel) -> None:
    token, _ = index.issue_token()
    upload(wheel, index.repository_endpoint, token)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def get(url: str, token: str | None = None, user: str = "aws") -> tuple[int, dict[str, str], bytes]:
    """One GET, redirects not followed: (status, headers, body)."""
    request = urllib.request.Request(url)  # noqa: S310 - a loopback test server
    if token is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode())
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def clean_pip_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment pip runs in: no PIP_* setting and no user config of this machine (an existing
    PIP_CONFIG_FILE makes pip skip the user's files), no version check, never a prompt."""
    env_config = tmp_path / "pip-env.conf"
    env_config.touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))}
    env |= {"PIP_CONFIG_FILE": str(env_config), "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    return env | extra


def pip_download(index_url: str, requirement: str, dest: Path, env: dict[str, str]) -> None:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(dest), "--index-url", index_url]
    result = subprocess.run(
        [*command, requirement], env=env, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the CodeArtifact API ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("aws_env")
def test_botocore_reaches_the_api_through_the_service_endpoint_variable(
    index: PackageIndex, config_wheel: Wheel
) -> None:
    client = boto3.client("codeartifact", region_name=REGION)  # no endpoint_url: AWS_ENDPOINT_URL_CODEARTIFACT
    token = client.get_authorization_token(domain=DOMAIN, domainOwner=OWNER)
    assert token["authorizationToken"] in index.issued_tokens
    remaining = token["expiration"] - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(hours=11) < remaining <= datetime.timedelta(hours=12)
    endpoint = client.get_repository_endpoint(domain=DOMAIN, domainOwner=OWNER, repository=REPOSITORY, format="pypi")
    assert endpoint["repositoryEndpoint"] == index.repository_endpoint
    assert endpoint["repositoryEndpoint"].startswith("http://localhost:")

    with pytest.raises(client.exceptions.ResourceNotFoundException, match="gluelake-config"):
        client.list_package_versions(
            domain=DOMAIN, domainOwner=OWNER, repository=REPOSITORY, format="pypi", package="gluelake-config"
        )
    publish(index, config_wheel)
    listed = client.list_package_versions(
        domain=DOMAIN, domainOwner=OWNER, repository=REPOSITORY, format="pypi", package="GlueLake_Config"
    )
    assert [(v["version"], v["status"]) for v in listed["versions"]] == [(config_wheel.version, "Published")]


@pytest.mark.usefixtures("aws_env")
def test_unknown_domain_owner_or_repository_is_resource_not_found(index: PackageIndex) -> None:
    client = boto3.client("codeartifact", region_name=REGION)
    calls = [
        lambda: client.get_authorization_token(domain="other-domain", domainOwner=OWNER),
        lambda: client.get_authorization_token(domain=DOMAIN, domainOwner="999999999999"),
        lambda: client.get_repository_endpoint(domain=DOMAIN, domainOwner=OWNER, repository="other", format="pypi"),
    ]
    for call in calls:
        with pytest.raises(ClientError) as caught:
            call()
        assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert index.issued_tokens == []


# --- the PyPI endpoint -------------------------------------------------------------------------------------


def test_reads_need_an_issued_token(index: PackageIndex) -> None:
    page = f"{index.repository_endpoint}simple/six/"
    token, _ = index.issue_token()
    for status, headers, _body in (get(page), get(page, "not-issued"), get(page, token, user="admin")):
        assert status == 401
        assert headers["WWW-Authenticate"].startswith("Basic")
        assert "Location" not in headers
    assert get(page, token)[0] == 303
    assert index.counts()["refused"] == 3


def test_a_team_name_is_never_sent_upstream(index: PackageIndex) -> None:
    token, _ = index.issue_token()
    for name in ("gluelake-pipelines", "GlueLake_Pipelines", "gluelake.not-yet-written"):
        status, headers, _body = get(f"{index.repository_endpoint}simple/{name}/", token)
        assert (status, headers.get("Location")) == (404, None), name
    assert index.counts()["upstream"] == 0


def test_a_public_name_is_redirected_to_the_upstream(tmp_path: Path) -> None:
    with PackageIndex(
        tmp_path, domain=DOMAIN, repository=REPOSITORY, upstream="https://mirror.example/simple"
    ) as index:
        token, _ = index.issue_token()
        status, headers, _body = get(f"{index.repository_endpoint}simple/Typing_Extensions/", token)
        assert (status, headers["Location"]) == (303, "https://mirror.example/simple/typing-extensions/")
    with PackageIndex(tmp_path, domain=DOMAIN, repository=REPOSITORY) as index:
        token, _ = index.issue_token()
        assert get(f"{index.repository_endpoint}simple/six/", token)[1]["Location"] == "https://pypi.org/simple/six/"
        assert index.counts() == {"upstream": 1}


def test_a_published_wheel_is_listed_with_its_sha256_and_downloads(index: PackageIndex, config_wheel: Wheel) -> None:
    publish(index, config_wheel)
    token, _ = index.issue_token()
    page_url = f"{index.repository_endpoint}simple/gluelake-config/"
    status, headers, page = get(page_url, token)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    [href] = re.findall(r'href="([^"]+)"', page.decode())
    link, _, fragment = href.partition("#")
    assert fragment == f"sha256={config_wheel.sha256}"
    status, _headers, content = get(urljoin(page_url, link), token)
    assert status == 200 and hashlib.sha256(content).hexdigest() == config_wheel.sha256
    assert get(urljoin(page_url, link))[0] == 401  # files need the token too
    assert index.published() == {"gluelake-config": [config_wheel.version]}


def test_an_existing_version_is_a_conflict(index: PackageIndex, config_wheel: Wheel) -> None:
    publish(index, config_wheel)
    with pytest.raises(ReleaseError, match=rf"gluelake-config {re.escape(config_wheel.version)}.*HTTP 409"):
        publish(index, config_wheel)
    with pytest.raises(ReleaseError, match="refused the authorization token"):
        upload(config_wheel, index.repository_endpoint, "not-issued")
    assert index.counts()["upload"] == 1
    assert [p.name for p in (index.storage / "gluelake-config").iterdir()] == [config_wheel.path.name]


# --- the real pip --------------------------------------------------------------------------------------------


# the Authorization header of every request the public index below received ("" when there was none)
PUBLIC_INDEX_AUTHORIZATION: list[str] = []


class _PublicIndex(BaseHTTPRequestHandler):
    """A public index on another origin (127.0.0.1): absolute file links, as PyPI's are."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        PUBLIC_INDEX_AUTHORIZATION.append(self.headers.get("Authorization", ""))
        wheel = _tiny_wheel_bytes()
        if self.path == "/simple/tinypub/":
            url = f"http://127.0.0.1:{self.server.server_port}/files/tinypub-1.0-py3-none-any.whl"  # type: ignore[attr-defined]
            body = f'<a href="{url}#sha256={hashlib.sha256(wheel).hexdigest()}">tinypub-1.0-py3-none-any.whl</a>'
            self._send(200, body.encode(), "text/html")
        elif self.path == "/files/tinypub-1.0-py3-none-any.whl":
            self._send(200, wheel, "application/octet-stream")
        else:
            self._send(404, b"", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@functools.cache
def _tiny_wheel_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("tinypub/__init__.py", "")
        archive.writestr("tinypub-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: tinypub\nVersion: 1.0\n")
        archive.writestr(
            "tinypub-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr("tinypub-1.0.dist-info/RECORD", "")
    return buffer.getvalue()


def test_pip_follows_the_redirect_and_never_sends_the_token_upstream(tmp_path: Path) -> None:
    public = ThreadingHTTPServer(("127.0.0.1", 0), _PublicIndex)
    threading.Thread(target=public.serve_forever, daemon=True).start()
    PUBLIC_INDEX_AUTHORIZATION.clear()
    try:
        upstream = f"http://127.0.0.1:{public.server_address[1]}/simple/"
        with PackageIndex(tmp_path / "index", domain=DOMAIN, repository=REPOSITORY, upstream=upstream) as index:
            token, _ = index.issue_token()
            index_url = f"http://aws:{token}@localhost:{index.port}/pypi/{REPOSITORY}/simple/"
            pip_download(index_url, "tinypub==1.0", tmp_path / "dl", clean_pip_env(tmp_path))
            assert index.counts() == {"upstream": 1}
    finally:
        public.shutdown()
        public.server_close()
    assert (tmp_path / "dl" / "tinypub-1.0-py3-none-any.whl").read_bytes() == _tiny_wheel_bytes()
    assert PUBLIC_INDEX_AUTHORIZATION == ["", ""]  # the page and the file, neither with our credentials


@needs_pypi
def test_pip_downloads_from_pypi_through_the_redirect(index: PackageIndex, tmp_path: Path) -> None:
    """PyPI answers the redirected request (JSON or HTML by content negotiation) with absolute file links."""
    token, _ = index.issue_token()
    index_url = f"http://aws:{token}@localhost:{index.port}/pypi/{REPOSITORY}/simple/"
    pip_download(index_url, "six==1.17.0", tmp_path, clean_pip_env(tmp_path))
    assert (tmp_path / "six-1.17.0-py2.py3-none-any.whl").is_file()
    assert index.counts() == {"upstream": 1}


def test_pip_config_set_does_not_write_to_pip_config_file(tmp_path: Path) -> None:
    """What `aws codeartifact login --tool pip` runs is `pip config set global.index-url URL`. Pinned here:
    pip does not write to PIP_CONFIG_FILE. With that file missing it writes to the user's own pip.conf;
    with it present and no site file it fails; only a `pip.conf` already in the venv (the site file) takes the
    write. So the login lands in a venv only if its `pip.conf` exists beforehand."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    home = tmp_path / "home"
    env_config = tmp_path / "env.conf"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))}
    env |= {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "PIP_CONFIG_FILE": str(env_config)}
    # this pip, run for the scratch venv's interpreter: the venv's own site file is the one that counts
    command = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "config", "set"]

    def config_set(value: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, "global.index-url", value], env=env, capture_output=True, text=True, timeout=60
        )

    assert config_set("http://first.invalid/simple/").returncode == 0
    assert not env_config.exists()
    assert "first.invalid" in (home / ".config" / "pip" / "pip.conf").read_text()

    env_config.touch()
    failed = config_set("http://second.invalid/simple/")
    assert failed.returncode != 0 and "Fatal Internal error" in failed.stderr

    (venv / "pip.conf").touch()
    assert config_set("http://third.invalid/simple/").returncode == 0
    assert "third.invalid" in (venv / "pip.conf").read_text()
    assert env_config.read_text() == ""


# --- the pipeline's install phase, end to end ----------------------------------------------------------------


def _user_pip_configs() -> dict[Path, bytes | None]:
    home = Path.home()
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    paths = (xdg / "pip" / "pip.conf", home / ".pip" / "pip.conf")
    return {p: p.read_bytes() if p.is_file() else None for p in paths}


@pytest.mark.long
@needs_pypi
@pytest.mark.usefixtures("aws_env")
def test_a_fresh_venv_logs_in_and_installs_the_published_config(
    index: PackageIndex, config_wheel: Wheel, tmp_path: Path
) -> None:
    publish(index, config_wheel)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=SUBPROCESS_TIMEOUT_S)
    site_config = venv / "pip.conf"
    site_config.touch()  # without it the login's `pip config set` writes to the user's pip.conf
    env = clean_pip_env(tmp_path, PATH=os.pathsep.join([str(venv / "bin"), os.environ["PATH"]]))
    user_configs = _user_pip_configs()

    aws = shutil.which("aws", path=env["PATH"])
    if aws is not None:
        command = [aws, "codeartifact", "login", "--tool", "pip", "--domain", DOMAIN, "--domain-owner", OWNER]
        login = subprocess.run(
            [*command, "--repository", REPOSITORY, "--region", REGION],
            env=env,
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT_S,
        )
        assert login.returncode == 0, login.stdout + login.stderr
    else:
        # what the login does (awscli's PipLogin), for a machine without the AWS CLI
        client = boto3.client("codeartifact", region_name=REGION)
        token = client.get_authorization_token(domain=DOMAIN, domainOwner=OWNER)["authorizationToken"]
        endpoint = client.get_repository_endpoint(
            domain=DOMAIN, domainOwner=OWNER, repository=REPOSITORY, format="pypi"
        )["repositoryEndpoint"]
        url = endpoint.replace("http://", f"http://aws:{token}@", 1) + "simple/"
        subprocess.run(["pip", "config", "set", "global.index-url", url], env=env, check=True, timeout=60)
    [token] = index.issued_tokens[-1:]
    expected = f"http://aws:{token}@localhost:{index.port}/pypi/{REPOSITORY}/simple/"
    assert f"index-url = {expected}" in site_config.read_text()
    assert _user_pip_configs() == user_configs

    python = str(venv / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", f"gluelake-config=={config_wheel.version}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    # what an app's tests do with the package: load the example config it ships (pydantic, PyYAML at work)
    script = (
        "from importlib import resources; import datalake_config; "
        "path = resources.files('datalake_config') / 'example-config.yaml'; "
        "datalake_config.load(path); print(path)"
    )
    check = subprocess.run(
        [python, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    installed = Path(check.stdout.strip())
    assert installed.is_relative_to(venv)
    assert installed.read_bytes() == (SHARED_CONFIG / "config.yaml").read_bytes()

    served = {(r.kind, r.project) for r in index.requests}
    assert ("local", "gluelake-config") in served and ("upstream", "gluelake-config") not in served
    assert {("upstream", "pydantic"), ("upstream", "pyyaml"), ("upstream", "boto3")} <= served
