"""`lakeops graph`: the system as a Mermaid diagram, generated from the config and the synthesized assemblies."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from lakeops.bootstrap import PROJECT_ROOT
from lakeops.commands.common import add_config_option, load_config
from lakeops.errors import LakeopsError
from lakeops.graph import APP_FOLDERS, read_assemblies, readme_diagram, render, synthesize, with_readme_diagram

RENDERED_SUFFIXES = (".svg", ".png", ".pdf")
RENDERER = "mmdc"  # the Mermaid CLI (@mermaid-js/mermaid-cli); used where installed, never installed by us


def register(groups: Any) -> None:
    parser = groups.add_parser(
        "graph",
        help="the system as a Mermaid diagram: accounts, pipelines, stacks, promotion, the secret, the SSM contract",
        description=(
            "Generated from the config and each app's synthesized cloud assembly (the workspace's cdk.out after "
            "`make synth`, --assembly, or --synth to synthesize now): the deployment account with its pipelines, "
            "the target accounts with their stacks, the promotion order, the global-config secret, the facts, and "
            "which stack writes and which reads each SSM parameter. Deterministic: the same inputs give the same text."
        ),
    )
    add_config_option(parser)
    parser.add_argument(
        "--assembly",
        action="append",
        type=Path,
        metavar="CDK_OUT",
        help="an app's synthesized cloud assembly (repeatable; default: each app's cdk.out in the workspace)",
    )
    parser.add_argument(
        "--synth", action="store_true", help="synthesize both apps with the config first (about a minute)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help=f"write here instead of standard output; {', '.join(RENDERED_SUFFIXES)} need {RENDERER} installed",
    )
    parser.add_argument(
        "--readme", type=Path, metavar="FILE", help="replace the generated diagram between the markers of this file"
    )
    parser.add_argument(
        "--check", action="store_true", help="with --readme: change nothing, exit 1 if the file's diagram differs"
    )
    parser.set_defaults(handler=_graph)


def _graph(args: argparse.Namespace) -> int:
    config = load_config(args)
    if args.check and not args.readme:
        raise LakeopsError("graph --check compares with a README: pass --readme FILE")
    with tempfile.TemporaryDirectory(prefix="lakeops-graph-") as scratch:
        if args.synth:
            assemblies = synthesize(args.config, Path(scratch), PROJECT_ROOT)
        else:
            assemblies = args.assembly or [PROJECT_ROOT / folder / "cdk.out" for folder in APP_FOLDERS.values()]
        mermaid = render(config, read_assemblies(config, assemblies))
    if args.readme:
        text = _read(args.readme)
        if args.check:
            if readme_diagram(text) == mermaid:
                print(f"{args.readme}: the diagram is up to date")
                return 0
            print(
                f"{args.readme}: the diagram differs from the generated one; run lakeops graph --readme",
                file=sys.stderr,
            )
            return 1
        _write(args.readme, with_readme_diagram(text, mermaid))
        print(f"wrote the diagram into {args.readme}")
    if args.output:
        _output(args.output, mermaid)
        print(f"wrote {args.output}")
    elif not args.readme:
        print(mermaid, end="")
    return 0


def _output(path: Path, mermaid: str) -> None:
    if path.suffix.lower() not in RENDERED_SUFFIXES:
        _write(path, mermaid)
        return
    renderer = shutil.which(RENDERER)
    if renderer is None:
        raise LakeopsError(
            f"{path}: no Mermaid renderer ({RENDERER}, from @mermaid-js/mermaid-cli) is installed; write the Mermaid "
            "text instead (--output FILE.mmd), which GitHub and GitLab render"
        )
    with tempfile.TemporaryDirectory(prefix="lakeops-graph-") as scratch:
        source = Path(scratch) / "system.mmd"
        source.write_text(mermaid, encoding="utf-8")
        result = subprocess.run([renderer, "-i", str(source), "-o", str(path)], capture_output=True, text=True)
    if result.returncode != 0:
        raise LakeopsError(f"{RENDERER} exited {result.returncode}: {(result.stderr or result.stdout).strip()[-500:]}")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LakeopsError(f"cannot read {path}: {exc.strerror}") from None


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise LakeopsError(f"cannot write {path}: {exc.strerror}") from None
