"""Releases of the team's shared packages: build their wheels, publish them to the team's package index.

The app repositories install `gluelake-config` and `gluelake-pipelines` as pinned versions from the
CodeArtifact repository in the deployment account (names from `datalake_config.naming.LakeNames`). A
release builds each package from its folder in the DevOps workspace and uploads the wheels with the
legacy PyPI upload protocol twine speaks, refusing before anything is uploaded when a wheel is not one of
the team's packages or its version is already in the repository (a published version is never replaced).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import tomllib
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

from datalake_config.naming import TEAM_PACKAGES
from lakeops.errors import LakeopsError

# The DevOps workspace holds each repository as a folder; these are the ones holding shared packages.
DEFAULT_SOURCES = (Path("shared-config"), Path("deployment-account/library"))
# Never copied into a build: earlier builds, caches and environments (a stale build/lib would ship
# modules that were deleted from the source).
BUILD_IGNORED = (
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    ".venv",
    "node_modules",
    "cdk.out",
    ".git",
)
# setuptools before 70.1 builds wheels only with the separate `wheel` package installed.
SETUPTOOLS_WITH_BDIST_WHEEL = (70, 1)
UPLOAD_TIMEOUT_S = 120


class ReleaseError(LakeopsError):
    """A build or publish step refused or failed; the message names the package, file or folder."""


def normalize(name: str) -> str:
    """A project name as package indexes compare them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def is_team_package(name: str) -> bool:
    return normalize(name) in {normalize(p) for p in TEAM_PACKAGES}


# --- build ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourcePart:
    """A folder holding one of the team's packages, as its pyproject.toml declares it."""

    folder: Path
    name: str
    version: str
    build_requires: tuple[str, ...]


@dataclass(frozen=True)
class BuiltWheel:
    part: SourcePart
    path: Path
    # why pip's isolated build environment was used instead of this environment's setuptools (None: it was not)
    isolation_reason: str | None


def read_part(folder: Path) -> SourcePart:
    """Read a package folder's pyproject.toml; refuse a folder that is missing or not one of ours."""
    pyproject = folder / "pyproject.toml"
    if not folder.is_dir():
        raise ReleaseError(f"release build: {folder}: no such folder (run from the DevOps workspace or pass --source)")
    if not pyproject.is_file():
        raise ReleaseError(f"release build: {folder}: no pyproject.toml, not a package folder")
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ReleaseError(f"release build: {pyproject}: cannot read: {exc}") from None
    project = data.get("project", {})
    name, version = project.get("name"), project.get("version")
    if not isinstance(name, str):
        raise ReleaseError(f"release build: {pyproject}: no [project].name")
    if not is_team_package(name):
        raise ReleaseError(
            f"release build: {pyproject}: [project].name is {name!r}, not one of the team's packages "
            f"({', '.join(TEAM_PACKAGES)})"
        )
    if not isinstance(version, str):
        raise ReleaseError(f"release build: {pyproject}: [project].version must be set in the file (a release pins it)")
    requires = data.get("build-system", {}).get("requires", [])
    return SourcePart(folder=folder, name=name, version=version, build_requires=tuple(str(r) for r in requires))


def isolation_reason(build_requires: Iterable[str]) -> str | None:
    """Why this environment cannot build without isolation (None: it can).

    Only plain `name` and `name>=X.Y` requirements are checked here; anything else is left to pip's
    isolated build environment, which installs exactly what the pyproject asks for.
    """
    for requirement in build_requires:
        match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:>=\s*(\d+(?:\.\d+)*))?\s*", requirement)
        if match is None:
            return f"build requirement {requirement!r} is not checked here"
        name, minimum = match.group(1), match.group(2)
        installed = _installed_version(name)
        if installed is None:
            return f"{name} is not installed here (the pyproject asks for {requirement!r})"
        if minimum and _release(installed) < _release(minimum):
            return f"this environment has {name} {installed}, the pyproject asks for {requirement!r}"
        old_setuptools = normalize(name) == "setuptools" and _release(installed) < SETUPTOOLS_WITH_BDIST_WHEEL
        if old_setuptools and _installed_version("wheel") is None:
            return f"setuptools {installed} needs the `wheel` package to build wheels, and it is not installed"
    return None


def build_wheels(parts: Sequence[SourcePart], out: Path) -> list[BuiltWheel]:
    """Build each part's wheel into `out`, from a clean copy of its folder (the folder itself is not touched)."""
    names = [normalize(p.name) for p in parts]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ReleaseError(f"release build: {', '.join(twice)} given twice")
    for part in parts:
        check_symlinks(part.folder)
    out.mkdir(parents=True, exist_ok=True)
    built = []
    for part in parts:
        with tempfile.TemporaryDirectory(prefix="lakeops-release-") as scratch:
            source = Path(scratch) / "source"
            shutil.copytree(part.folder, source, symlinks=True, ignore=shutil.ignore_patterns(*BUILD_IGNORED))
            reason = isolation_reason(part.build_requires)
            wheel_dir = Path(scratch) / "wheels"
            isolation = [] if reason else ["--no-build-isolation"]  # with this environment's setuptools
            command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", *isolation]
            command += ["--wheel-dir", str(wheel_dir), str(source)]
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
                raise ReleaseError(f"release build: {part.name} from {part.folder}: pip wheel failed:\n{tail}")
            wheels = sorted(wheel_dir.glob("*.whl"))
            if len(wheels) != 1:
                raise ReleaseError(f"release build: {part.name}: expected one wheel, pip wrote {len(wheels)}")
            wheel = read_wheel(wheels[0])
            if normalize(wheel.name) != normalize(part.name) or wheel.version != part.version:
                raise ReleaseError(
                    f"release build: {part.folder} declares {part.name} {part.version} but built "
                    f"{wheel.name} {wheel.version}"
                )
            check_symlinked_data(part.folder, wheels[0])
            target = out / wheels[0].name
            shutil.copyfile(wheels[0], target)
            built.append(BuiltWheel(part=part, path=target, isolation_reason=reason))
    return built


def check_symlinks(folder: Path) -> None:
    """A repository builds from its own files: every link in it must point at a file inside it."""
    root = folder.resolve()
    for link in _walk_links(folder):
        target = link.resolve()
        if not target.is_relative_to(root):
            raise ReleaseError(f"release build: {link} links outside {folder} (to {target})")
        if not target.is_file():
            raise ReleaseError(f"release build: {link} is a link to {target}, which is not a file")


def check_symlinked_data(folder: Path, wheel_path: Path) -> None:
    """A link inside a Python package must reach the wheel as the bytes of the file it points at."""
    with zipfile.ZipFile(wheel_path) as wheel:
        entries = set(wheel.namelist())
        for link in _walk_links(folder):
            if not (link.parent / "__init__.py").is_file():
                continue  # not inside a package: never part of a wheel
            parts = link.relative_to(folder).parts
            candidates = ["/".join(parts[i:]) for i in range(len(parts))]
            entry = next((c for c in candidates if c in entries), None)
            if entry is None:
                raise ReleaseError(
                    f"release build: {wheel_path.name} lacks {link.relative_to(folder)} (a link in a package; "
                    "list it in [tool.setuptools.package-data])"
                )
            if wheel.read(entry) != link.read_bytes():
                raise ReleaseError(f"release build: {wheel_path.name}: {entry} differs from {link.resolve()}")


def _walk_links(folder: Path) -> Iterator[Path]:
    """Every symbolic link under `folder` (to a file or a folder), outside the folders a build ignores."""
    for parent, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not _ignored(d))
        for name in sorted(dirnames + filenames):
            if (Path(parent) / name).is_symlink():
                yield Path(parent) / name


def _ignored(name: str) -> bool:
    return any(Path(name).match(pattern) for pattern in BUILD_IGNORED)


def _installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _release(version: str) -> tuple[int, ...]:
    numbers = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(n) for n in numbers.group(0).split(".")) if numbers else ()


# --- wheels ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wheel:
    """A wheel file and the metadata an upload declares (read from its METADATA, not its file name)."""

    path: Path
    name: str
    version: str
    metadata_version: str
    python_tag: str
    sha256: str
    summary: str = ""
    requires_python: str = ""
    requires_dist: tuple[str, ...] = field(default_factory=tuple)

    @property
    def project(self) -> str:
        return normalize(self.name)

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def read_wheel(path: Path) -> Wheel:
    match = re.fullmatch(r"([^-]+)-([^-]+)(?:-\d[^-]*)?-([^-]+)-([^-]+)-([^-]+)\.whl", path.name)
    if match is None:
        raise ReleaseError(f"{path}: not a wheel file name (name-version-python-abi-platform.whl)")
    try:
        with zipfile.ZipFile(path) as archive:
            metadata_files = [n for n in archive.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
            if len(metadata_files) != 1:
                raise ReleaseError(f"{path.name}: expected one .dist-info/METADATA, found {len(metadata_files)}")
            text = archive.read(metadata_files[0]).decode("utf-8")
    except (OSError, zipfile.BadZipFile) as exc:
        raise ReleaseError(f"{path}: cannot read the wheel: {exc}") from None
    headers = HeaderParser().parsestr(text)
    name, version = headers.get("Name"), headers.get("Version")
    if not name or not version:
        raise ReleaseError(f"{path.name}: METADATA has no Name or Version")
    if normalize(match.group(1)) != normalize(name) or match.group(2) != version:
        raise ReleaseError(f"{path.name}: the file name does not match its METADATA ({name} {version})")
    return Wheel(
        path=path,
        name=name,
        version=version,
        metadata_version=headers.get("Metadata-Version", "2.1"),
        python_tag=match.group(3),
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        summary=headers.get("Summary", ""),
        requires_python=headers.get("Requires-Python", ""),
        requires_dist=tuple(headers.get_all("Requires-Dist") or ()),
    )


def wheels_in(folder: Path) -> list[Wheel]:
    """Every wheel in `folder`, refusing the ones that are not the team's and a package given twice."""
    if not folder.is_dir():
        raise ReleaseError(f"release publish: {folder}: no such folder")
    wheels = [read_wheel(p) for p in sorted(folder.glob("*.whl"))]
    if not wheels:
        raise ReleaseError(f"release publish: no wheels in {folder} (lakeops release build --out {folder})")
    foreign = [w for w in wheels if not is_team_package(w.name)]
    if foreign:
        listed = ", ".join(f"{w.path.name} ({w.name})" for w in foreign)
        raise ReleaseError(
            f"release publish: refused, nothing uploaded: not the team's packages: {listed}; "
            f"only {', '.join(TEAM_PACKAGES)} are published to the team's repository"
        )
    seen: dict[str, Wheel] = {}
    for wheel in wheels:
        if wheel.project in seen:
            raise ReleaseError(
                f"release publish: {wheel.name} is in {folder} twice ({seen[wheel.project].path.name}, "
                f"{wheel.path.name}); publish one version of each package"
            )
        seen[wheel.project] = wheel
    return wheels


# --- publish --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Repository:
    """The team's CodeArtifact repository as one publish sees it."""

    domain: str
    owner: str
    name: str
    region: str
    endpoint: str  # the PyPI endpoint; never carries credentials


@dataclass
class PublishPlan:
    repository: Repository
    wheels: list[Wheel]
    existing: dict[str, dict[str, str]]  # project → {version: status} already in the repository

    @property
    def conflicts(self) -> list[tuple[Wheel, str]]:
        return [
            (w, self.existing[w.project][w.version])
            for w in self.wheels
            if w.version in self.existing.get(w.project, {})
        ]

    def describe(self) -> str:
        repo = self.repository
        lines = [
            f"release publish: {len(self.wheels)} wheel(s) → repository {repo.name} in domain {repo.domain} "
            f"(account {repo.owner}, {repo.region})",
            f"  endpoint {repo.endpoint}",
        ]
        for w in self.wheels:
            status = self.existing.get(w.project, {}).get(w.version)
            state = "new version" if status is None else f"REFUSED: already in the repository ({status})"
            lines.append(f"  {w.name} {w.version}: {w.path.name} ({_kib(w.size)}, sha256 {w.sha256[:12]}…), {state}")
        return "\n".join(lines)

    def refuse_conflicts(self) -> None:
        if not self.conflicts:
            return
        listed = "; ".join(
            f"{w.name} {w.version} already exists in repository {self.repository.name} (status {status})"
            for w, status in self.conflicts
        )
        raise ReleaseError(
            f"release publish: refused, nothing uploaded: {listed}. A published version is never replaced: "
            "raise [project].version in the package's pyproject.toml and build again"
        )


def plan_publish(client: Any, repository: Repository, wheels: list[Wheel]) -> PublishPlan:
    existing = {w.project: existing_versions(client, repository, w.project) for w in wheels}
    return PublishPlan(repository=repository, wheels=wheels, existing=existing)


def repository_endpoint(client: Any, *, domain: str, owner: str, name: str) -> str:
    response = client.get_repository_endpoint(domain=domain, domainOwner=owner, repository=name, format="pypi")
    endpoint: str = response["repositoryEndpoint"]
    return endpoint if endpoint.endswith("/") else endpoint + "/"


def existing_versions(client: Any, repository: Repository, project: str) -> dict[str, str]:
    """{version: status} of `project` in the repository; empty when the package is not there yet."""
    versions: dict[str, str] = {}
    paginator = client.get_paginator("list_package_versions")
    pages = paginator.paginate(
        domain=repository.domain,
        domainOwner=repository.owner,
        repository=repository.name,
        format="pypi",
        package=project,
    )
    try:
        for page in pages:
            versions.update({v["version"]: v.get("status", "?") for v in page.get("versions", [])})
    except client.exceptions.ResourceNotFoundException:
        # the repository answered GetRepositoryEndpoint before this, so what is missing is the package
        return {}
    return versions


def upload(wheel: Wheel, endpoint: str, token: str, *, timeout: float = UPLOAD_TIMEOUT_S) -> None:
    """POST the wheel as twine does (legacy upload API); the token travels in a header, never in a URL."""
    content = wheel.path.read_bytes()
    fields = [
        (":action", "file_upload"),
        ("protocol_version", "1"),
        ("metadata_version", wheel.metadata_version),
        ("name", wheel.name),
        ("version", wheel.version),
        ("filetype", "bdist_wheel"),
        ("pyversion", wheel.python_tag),
        ("sha256_digest", wheel.sha256),
        ("md5_digest", hashlib.md5(content, usedforsecurity=False).hexdigest()),
        ("blake2_256_digest", hashlib.blake2b(content, digest_size=32).hexdigest()),
        ("summary", wheel.summary),
        ("requires_python", wheel.requires_python),
        *(("requires_dist", r) for r in wheel.requires_dist),
    ]
    body, content_type = encode_multipart(fields, "content", wheel.path.name, content)
    credentials = base64.b64encode(f"aws:{token}".encode()).decode("ascii")
    request = urllib.request.Request(  # noqa: S310 - the endpoint comes from GetRepositoryEndpoint (https on AWS)
        endpoint,
        data=body,
        method="POST",
        headers={"Content-Type": content_type, "Authorization": f"Basic {credentials}"},
    )
    what = f"release publish: {wheel.path.name} ({wheel.name} {wheel.version})"
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - see above
            response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode("utf-8", "replace").strip()
        if exc.code == 409:
            raise ReleaseError(f"{what}: the repository already has this version (HTTP 409 Conflict)") from None
        if exc.code in (401, 403):
            raise ReleaseError(f"{what}: the repository refused the authorization token (HTTP {exc.code})") from None
        raise ReleaseError(f"{what}: upload failed: HTTP {exc.code} {exc.reason}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ReleaseError(f"{what}: cannot reach {endpoint}: {reason}") from None


def encode_multipart(
    fields: Sequence[tuple[str, str]], file_field: str, filename: str, content: bytes
) -> tuple[bytes, str]:
    boundary = secrets.token_hex(16)
    chunks: list[bytes] = []
    for name, value in fields:
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        chunks.append(value.encode("utf-8") + b"\r\n")
    chunks.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
    )
    chunks.append(content + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def _kib(size: int) -> str:
    return f"{size / 1024:.0f} KiB" if size >= 1024 else f"{size} B"
