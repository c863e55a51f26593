"""A CodeArtifact stand-in for the rehearsal: one domain, one PyPI repository, the public index as upstream.

moto has no CodeArtifact, so this small HTTP server answers what our pipelines and `lakeops release`
really send:
- the CodeArtifact REST calls botocore makes (`GetAuthorizationToken`, `GetRepositoryEndpoint`,
  `ListPackageVersions`; method, URI and query names from botocore's service model), so that
  `aws codeartifact login --tool pip` and boto3 work unchanged through `AWS_ENDPOINT_URL_CODEARTIFACT`;
- the repository's PyPI endpoint: the simple API (PEP 503 pages with sha256 fragments), file downloads
  and the legacy upload API twine speaks, all behind HTTP basic auth with an issued token (user `aws`);
- the upstream: a project outside the team's prefix that is not published here is answered with a redirect
  to the public index (standing in for the `public:pypi` external connection); a project under the prefix
  never is (the package group's origin control blocks upstream), so an unpublished one is a 404.

Deliberately not emulated: SigV4 signature checks (a signed request is only recognised by its header),
IAM and domain/repository policies, package groups other than the team prefix, other formats than PyPI,
source distributions (uploads are wheels only), package version statuses other than Published, the JSON
simple API (PEP 691), and caching upstream packages in the repository (each upstream read is a redirect).
URLs use `localhost` on purpose: pip treats it as a secure origin over plain http.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import json
import re
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from datalake_config.naming import TEAM_PACKAGE_PREFIX

DEFAULT_UPSTREAM = "https://pypi.org/simple/"
DEFAULT_TOKEN_SECONDS = 12 * 3600  # CodeArtifact's default token lifetime
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*\.whl")
MAX_UPLOAD_BYTES = 100 * 1024 * 1024


def normalize(name: str) -> str:
    """PEP 503: runs of `-`, `_`, `.` are one `-`, and case does not matter."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Served:
    """One request, for the rehearsal's summary.

    `kind`: `api` (a CodeArtifact call, whatever its answer), `local` (a page or file served from this
    repository), `upstream` (redirected to the public index), `upload` (a wheel stored) or `refused` (the
    PyPI endpoint said 400/401/404/405/409).
    """

    kind: str
    method: str
    path: str  # never carries a token: tokens travel in the Authorization header only
    status: int
    project: str | None = None


class PackageIndex:
    """`with PackageIndex(storage, domain=..., repository=...) as index:` serves on 127.0.0.1 until the end."""

    def __init__(
        self,
        storage: Path,
        *,
        domain: str,
        repository: str,
        domain_owner: str | None = None,
        upstream: str = DEFAULT_UPSTREAM,
        team_prefix: str = TEAM_PACKAGE_PREFIX,
    ) -> None:
        self.storage = storage
        self.domain = domain
        self.repository = repository
        self.domain_owner = domain_owner  # None: any owner is accepted
        self.upstream = upstream if upstream.endswith("/") else upstream + "/"
        self.team_prefix = normalize(team_prefix)
        self.requests: list[Served] = []
        self._tokens: dict[str, float] = {}  # token → expiry (epoch seconds)
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------------------
    def __enter__(self) -> PackageIndex:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._server is not None:
            return
        self.storage.mkdir(parents=True, exist_ok=True)
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        server = self._server
        # a short poll interval: stopping waits for the serving loop's next poll
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), name="package-index", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the package index is not running")
        return int(self._server.server_address[1])

    @property
    def endpoint_url(self) -> str:
        """For `AWS_ENDPOINT_URL_CODEARTIFACT` (or `--endpoint-url`): where the CodeArtifact API answers."""
        return f"http://localhost:{self.port}"

    @property
    def repository_endpoint(self) -> str:
        """What GetRepositoryEndpoint returns for format pypi: uploads go here, `simple/` is below it."""
        return f"{self.endpoint_url}/pypi/{self.repository}/"

    # --- state -----------------------------------------------------------------------------------------
    def issue_token(self, seconds: int = DEFAULT_TOKEN_SECONDS) -> tuple[str, float]:
        token = secrets.token_urlsafe(48)
        expiry = time.time() + seconds
        with self._lock:
            self._tokens[token] = expiry
        return token, expiry

    def token_valid(self, token: str) -> bool:
        with self._lock:
            expiry = self._tokens.get(token)
        return expiry is not None and expiry > time.time()

    @property
    def issued_tokens(self) -> list[str]:
        with self._lock:
            return list(self._tokens)

    def counts(self) -> Counter[str]:
        """How many requests of each kind were served (local, upstream, upload, api, refused)."""
        with self._lock:
            return Counter(r.kind for r in self.requests)

    def published(self) -> dict[str, list[str]]:
        """{project: [versions]} stored here."""
        return {p: sorted({_version_of(f.name) for f in self._files(p)}) for p in self._projects()}

    def is_team_project(self, project: str) -> bool:
        return normalize(project).startswith(self.team_prefix)

    def _record(self, served: Served) -> None:
        with self._lock:
            self.requests.append(served)

    def _projects(self) -> list[str]:
        return sorted(p.name for p in self.storage.iterdir() if p.is_dir()) if self.storage.is_dir() else []

    def _files(self, project: str) -> list[Path]:
        folder = self.storage / normalize(project)
        return sorted(folder.glob("*.whl")) if folder.is_dir() else []


def _version_of(filename: str) -> str:
    return filename.split("-")[1]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], index: PackageIndex) -> None:
        self.index = index
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "codeartifact-stand-in"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: every request is recorded in `PackageIndex.requests` instead."""

    @property
    def index(self) -> PackageIndex:
        return self.server.index

    # --- routing -------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = url.path
        if path.startswith("/v1/"):
            return self._api(method, path, query)
        prefix = f"/pypi/{self.index.repository}/"
        if not path.startswith(prefix):
            return self._reply(HTTPStatus.NOT_FOUND, "refused", b"no such repository\n")
        rest = path[len(prefix) :]
        if not self._authorized():
            return
        if method == "POST" and rest == "":
            return self._upload()
        if method != "GET":
            return self._reply(HTTPStatus.METHOD_NOT_ALLOWED, "refused", b"method not allowed\n")
        parts = [p for p in rest.split("/") if p]
        if rest == "simple/":
            return self._root_page()
        if len(parts) == 2 and parts[0] == "simple":
            if not rest.endswith("/"):
                return self._redirect(f"{prefix}simple/{parts[1]}/", "local", parts[1])
            return self._project_page(parts[1])
        if len(parts) == 3 and parts[0] == "files":
            return self._download(parts[1], parts[2])
        return self._reply(HTTPStatus.NOT_FOUND, "refused", b"not found\n")

    # --- CodeArtifact API ------------------------------------------------------------------------------
    def _api(self, method: str, path: str, query: dict[str, str]) -> None:
        if not self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 "):
            return self._api_error(HTTPStatus.FORBIDDEN, "AccessDeniedException", "the request is not signed")
        operations = {
            ("POST", "/v1/authorization-token"): self._get_authorization_token,
            ("GET", "/v1/repository/endpoint"): self._get_repository_endpoint,
            ("POST", "/v1/package/versions"): self._list_package_versions,
        }
        operation = operations.get((method, path))
        if operation is None:
            return self._api_error(
                HTTPStatus.NOT_FOUND, "ResourceNotFoundException", f"the stand-in does not implement {method} {path}"
            )
        if query.get("domain") != self.index.domain or (
            self.index.domain_owner is not None
            and query.get("domain-owner", self.index.domain_owner) != self.index.domain_owner
        ):
            owner = query.get("domain-owner", "(caller's account)")
            return self._api_error(
                HTTPStatus.NOT_FOUND,
                "ResourceNotFoundException",
                f"Domain {query.get('domain')} not found in account {owner}",
                resourceType="domain",
            )
        if path != "/v1/authorization-token" and query.get("repository") != self.index.repository:
            return self._api_error(
                HTTPStatus.NOT_FOUND,
                "ResourceNotFoundException",
                f"Repository {query.get('repository')} not found in domain {self.index.domain}",
                resourceType="repository",
            )
        if path != "/v1/authorization-token" and query.get("format") != "pypi":
            return self._api_error(
                HTTPStatus.BAD_REQUEST,
                "ValidationException",
                f"the stand-in serves format pypi only, not {query.get('format')}",
            )
        operation(query)

    def _get_authorization_token(self, query: dict[str, str]) -> None:
        seconds = int(query.get("duration", DEFAULT_TOKEN_SECONDS)) or DEFAULT_TOKEN_SECONDS
        if not 900 <= seconds <= 43200:
            return self._api_error(HTTPStatus.BAD_REQUEST, "ValidationException", "duration: 0 or 900..43200")
        token, expiry = self.index.issue_token(seconds)
        self._api_reply({"authorizationToken": token, "expiration": expiry})

    def _get_repository_endpoint(self, query: dict[str, str]) -> None:
        self._api_reply({"repositoryEndpoint": self.index.repository_endpoint})

    def _list_package_versions(self, query: dict[str, str]) -> None:
        project = normalize(query.get("package", ""))
        versions = self.index.published().get(project)
        if not versions:
            return self._api_error(
                HTTPStatus.NOT_FOUND,
                "ResourceNotFoundException",
                f"Package {project} not found in repository {self.index.repository}",
                resourceType="package",
            )
        self._api_reply(
            {
                "defaultDisplayVersion": versions[-1],
                "format": "pypi",
                "package": project,
                "versions": [
                    {"version": v, "revision": v, "status": "Published", "origin": {"originType": "INTERNAL"}}
                    for v in versions
                ],
            }
        )

    def _api_reply(self, body: dict[str, Any]) -> None:
        self._reply(HTTPStatus.OK, "api", json.dumps(body).encode(), content_type="application/json")

    def _api_error(self, status: HTTPStatus, code: str, message: str, **extra: str) -> None:
        # rest-json: botocore reads the error code from this header and the message from the body
        body = json.dumps({"message": message, **extra}).encode()
        self._reply(status, "api", body, content_type="application/json", headers={"x-amzn-ErrorType": code})

    # --- PyPI endpoint -----------------------------------------------------------------------------------
    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        token = None
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, password = "", ""
            token = password if user == "aws" else None
        if token is not None and self.index.token_valid(token):
            return True
        self._reply(
            HTTPStatus.UNAUTHORIZED,
            "refused",
            b"an authorization token is required (aws codeartifact login)\n",
            headers={"WWW-Authenticate": f'Basic realm="{self.index.repository}"'},
        )
        return False

    def _root_page(self) -> None:
        links = "".join(f'<a href="{p}/">{p}</a>\n' for p in self.index._projects())
        self._html(f"<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n", None)

    def _project_page(self, name: str) -> None:
        project = normalize(name)
        files = self.index._files(project)
        if not files and not self.index.is_team_project(project):
            # the external connection: the public index answers for names that are not ours
            return self._redirect(f"{self.index.upstream}{project}/", "upstream", project)
        if not files:
            # the origin control: a name under the team's prefix never comes from upstream
            return self._reply(HTTPStatus.NOT_FOUND, "refused", b"not published here\n", project=project)
        links = "".join(
            f'<a href="../../files/{project}/{html.escape(f.name)}#sha256={_sha256(f)}">{html.escape(f.name)}</a><br>\n'
            for f in files
        )
        self._html(f"<!DOCTYPE html>\n<html><body>\n<h1>Links for {project}</h1>\n{links}</body></html>\n", project)

    def _download(self, name: str, filename: str) -> None:
        project = normalize(name)
        path = self.index.storage / project / filename
        if not FILE_NAME.fullmatch(filename) or not path.is_file():
            return self._reply(HTTPStatus.NOT_FOUND, "refused", b"no such file\n", project=project)
        self._reply(HTTPStatus.OK, "local", path.read_bytes(), content_type="application/octet-stream", project=project)

    def _upload(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        if not 0 < length <= MAX_UPLOAD_BYTES:
            return self._reply(HTTPStatus.BAD_REQUEST, "refused", b"missing or oversized body\n")
        body = self.rfile.read(length)
        try:
            fields, (filename, content) = _parse_multipart(self.headers.get("Content-Type", ""), body)
        except ValueError as exc:
            return self._reply(HTTPStatus.BAD_REQUEST, "refused", f"{exc}\n".encode())
        name, version = fields.get("name", ""), fields.get("version", "")
        problem = None
        if fields.get(":action") != "file_upload":
            problem = ":action must be file_upload"
        elif fields.get("filetype") != "bdist_wheel" or not FILE_NAME.fullmatch(filename):
            problem = "the stand-in accepts wheels only"
        elif normalize(filename.split("-")[0]) != normalize(name) or _version_of(filename) != version:
            problem = f"{filename} does not match name {name!r} version {version!r}"
        elif fields.get("sha256_digest") != hashlib.sha256(content).hexdigest():
            problem = "sha256_digest does not match the content"
        if problem:
            return self._reply(HTTPStatus.BAD_REQUEST, "refused", f"{problem}\n".encode(), project=name)
        project = normalize(name)
        with self.index._lock:  # one upload of a version at a time: check and store together
            if version in {_version_of(f.name) for f in self.index._files(project)}:
                conflict = True
            else:
                conflict = False
                target = self.index.storage / project / filename
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(filename + ".part")  # readers list *.whl: never a half-written file
                partial.write_bytes(content)
                partial.replace(target)
        if conflict:
            message = f"{project} {version} already exists in repository {self.index.repository}\n"
            return self._reply(HTTPStatus.CONFLICT, "refused", message.encode(), project=project)
        self._reply(HTTPStatus.OK, "upload", b"OK\n", project=project)

    # --- replies -----------------------------------------------------------------------------------------
    def _html(self, page: str, project: str | None) -> None:
        self._reply(HTTPStatus.OK, "local", page.encode(), content_type="text/html; charset=utf-8", project=project)

    def _redirect(self, location: str, kind: str, project: str) -> None:
        self._reply(HTTPStatus.SEE_OTHER, kind, b"", headers={"Location": location}, project=normalize(project))

    def _reply(
        self,
        status: HTTPStatus,
        kind: str,
        body: bytes,
        *,
        content_type: str = "text/plain; charset=utf-8",
        headers: dict[str, str] | None = None,
        project: str | None = None,
    ) -> None:
        self.index._record(Served(kind, self.command, urlsplit(self.path).path, int(status), project))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], tuple[str, bytes]]:
    """The form fields and the one file (`content`) of a multipart/form-data upload."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/form-data") or match is None:
        raise ValueError("expected multipart/form-data with a boundary")
    delimiter = b"--" + match.group(1).encode()
    fields: dict[str, str] = {}
    upload: tuple[str, bytes] | None = None
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        head, separator, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not separator:
            raise ValueError("a form part has no header block")
        content = content.removesuffix(b"\r\n")
        disposition = next(
            (line for line in head.decode("utf-8").split("\r\n") if line.lower().startswith("content-disposition:")),
            "",
        )
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        if name is None:
            raise ValueError("a form part has no name")
        if filename is not None:
            if name.group(1) != "content" or upload is not None:
                raise ValueError("expected one file, in the field `content`")
            upload = (filename.group(1), content)
        else:
            fields.setdefault(name.group(1), content.decode("utf-8"))
    if upload is None:
        raise ValueError("no file in the field `content`")
    return fields, upload
