"""Prove the split: each repository, copied alone into an empty folder, installs from its own files and
passes its own checks, with the team's packages taken as wheels from a local index.

    python scripts/standalone.py [--part NAME ...] [--workdir DIR]

For every part: copy its tracked files (nothing generated, nothing around it), create a virtual
environment, `pip install -r requirements.txt` with the wheels `lakeops release build` made on the
find-links path, `npm ci` where it pins the CDK CLI, then run its lint, type check and tests from its own
pyproject.toml. The PATH holds the part's environment and the machine's tools, never the workspace's, so a
repository that needs a file or a package from outside itself fails here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("shared-config", "deployment-account", "infra-repo", "etl-jobs-repo")
CHECKS = (["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"], ["python", "-m", "pytest"])


def tracked_files(part: str) -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", part],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    return [Path(name) for name in listed.decode().split("\0") if name]


def copy_alone(part: str, target: Path) -> None:
    for relative in tracked_files(part):
        source = ROOT / relative
        destination = target / relative.relative_to(part)
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            destination.symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, destination)


def machine_path() -> list[str]:
    """The machine's PATH without the workspace (its .venv, its node_modules)."""
    return [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and not Path(p).resolve().is_relative_to(ROOT)]


def run(argv: list[str], *, cwd: Path, env: dict[str, str], log: Path) -> None:
    with log.open("a", encoding="utf-8") as out:
        out.write(f"\n$ (cd {cwd} && {' '.join(argv)})\n")
        out.flush()
        result = subprocess.run(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        tail = "\n".join(log.read_text(encoding="utf-8").splitlines()[-30:])
        raise SystemExit(f"{cwd.name}: `{' '.join(argv)}` exited {result.returncode}\n{tail}\n(full log: {log})")


def check_part(part: str, workdir: Path, wheels: Path) -> float:
    started = time.monotonic()
    target = workdir / part
    copy_alone(part, target)
    venv = target / ".venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")},
        "VIRTUAL_ENV": str(venv),
        "PATH": os.pathsep.join([str(venv / "bin"), str(target / "node_modules" / ".bin"), *machine_path()]),
        # the team's packages as a local index would serve them; everything else from the public index
        "PIP_FIND_LINKS": str(wheels),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    log = workdir / f"{part}.log"
    run(["python", "-m", "pip", "install", "--quiet", "-r", "requirements.txt"], cwd=target, env=env, log=log)
    if (target / "package-lock.json").exists():
        run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=target, env=env, log=log)
    for check in CHECKS:
        run(check, cwd=target, env=env, log=log)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", action="append", choices=PARTS, help="check only these parts (repeatable)")
    parser.add_argument("--workdir", type=Path, help="keep the copies here (default: a temporary folder)")
    args = parser.parse_args()
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="standalone-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    wheels = workdir / "wheels"
    subprocess.run(["lakeops", "release", "build", "--out", str(wheels)], cwd=ROOT, check=True)
    for part in args.part or PARTS:
        seconds = check_part(part, workdir, wheels)
        print(f"✓ {part}: installed alone and passed its own checks ({seconds:.0f}s)", flush=True)
    print(f"every repository stands alone (copies in {workdir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
