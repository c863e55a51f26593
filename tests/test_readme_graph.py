"""The workspace README's picture of the system is generated, never drawn: regenerating it changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from datalake_config import load
from lakeops.graph import read_assemblies, readme_diagram, render, synthesize

WORKSPACE = Path(__file__).resolve().parents[1]
CONFIG = WORKSPACE / "shared-config" / "config.yaml"


@pytest.fixture(scope="module")
def assemblies(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return synthesize(CONFIG, tmp_path_factory.mktemp("synth"), WORKSPACE)


@pytest.mark.long
def test_the_readme_shows_the_picture_generated_now(assemblies: list[Path]) -> None:
    """A fresh synth of both apps from the workspace's config draws what README.md shows
    (`lakeops graph --synth --readme README.md` updates it)."""
    config = load(CONFIG)
    generated = render(config, read_assemblies(config, assemblies))
    shown = readme_diagram((WORKSPACE / "README.md").read_text(encoding="utf-8"))
    assert shown is not None, "README.md has no generated picture between the lakeops graph markers"
    assert shown == generated, "README.md's picture is out of date: run `lakeops graph --synth --readme README.md`"
