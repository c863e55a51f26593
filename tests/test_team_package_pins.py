"""Every repository pins the team's packages at the versions their sources declare.

The app repositories and the DevOps tooling install `gluelake-config` and `gluelake-pipelines` from the
team's package index, pinned (`requirements.txt`, and the dependencies of each `pyproject.toml`). A
release publishes the version a package's `pyproject.toml` declares, and never replaces a published one
(`lakeops release`). So a change to a shared package ships only with a new version, and every pin must
then move with it: a pin left behind installs the old release on the pipelines, whatever the sources say.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

WORKSPACE = Path(__file__).resolve().parents[1]
# The team's released packages, by the folder holding their sources.
SOURCES = {"gluelake-config": "shared-config", "gluelake-pipelines": "deployment-account/library"}
# Where the other parts name them: pinned requirements and declared dependencies.
PINNING_FILES = [
    "deployment-account/requirements.txt",
    "deployment-account/pyproject.toml",
    "deployment-account/library/pyproject.toml",
    "infra-repo/requirements.txt",
    "infra-repo/pyproject.toml",
    "etl-jobs-repo/requirements.txt",
    "etl-jobs-repo/pyproject.toml",
]
PIN = re.compile(r"(gluelake-[a-z]+)\s*([=<>!~]=?)\s*([0-9][^\s\",;]*)")


def declared_version(folder: str) -> str:
    project = tomllib.loads((WORKSPACE / folder / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return str(project["version"])


def pins(path: str) -> list[tuple[str, str, str]]:
    text = (WORKSPACE / path).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return PIN.findall("\n".join(lines))


@pytest.mark.parametrize("path", PINNING_FILES)
def test_every_pin_of_a_team_package_is_exact_and_current(path: str) -> None:
    found = [(name, operator, version) for name, operator, version in pins(path) if name in SOURCES]
    expected = [(name, "==", declared_version(SOURCES[name])) for name, _, _ in found]
    assert found == expected, f"{path}: pin the team's packages at the versions their sources declare"


def test_each_app_and_the_tooling_pin_the_packages_they_import() -> None:
    """A pin missing from a file would let pip resolve any version: each file names what its part uses."""
    named = {path: {name for name, _, _ in pins(path)} for path in PINNING_FILES}
    assert named["deployment-account/library/pyproject.toml"] == {"gluelake-config"}
    for part in ("infra-repo", "etl-jobs-repo"):
        for kind in ("requirements.txt", "pyproject.toml"):
            assert named[f"{part}/{kind}"] == set(SOURCES), f"{part}/{kind}"
    assert named["deployment-account/requirements.txt"] == {"gluelake-config"}
    assert named["deployment-account/pyproject.toml"] == set(SOURCES)
