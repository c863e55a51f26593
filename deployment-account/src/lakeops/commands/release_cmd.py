"""`lakeops release build|publish`: the team's shared packages as wheels, published to the team's index."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from datalake_config import lake_names
from datalake_config.cli import add_aws_options, sessions_from
from datalake_config.naming import TEAM_PACKAGES
from lakeops.commands.common import add_config_option, aws_step, confirm, load_config
from lakeops.errors import LakeopsError
from lakeops.release import (
    DEFAULT_SOURCES,
    ReleaseError,
    Repository,
    build_wheels,
    plan_publish,
    read_part,
    repository_endpoint,
    upload,
    wheels_in,
)

# The token only has to outlive the uploads; 900 s is the shortest CodeArtifact issues.
TOKEN_SECONDS = 900


def register(groups: Any) -> None:
    parser = groups.add_parser("release", help="build the team's shared packages and publish them to the team's index")
    commands = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)

    build = commands.add_parser(
        "build",
        help="build the wheels of the shared packages from their folders",
        description=f"Builds each folder's package ({', '.join(TEAM_PACKAGES)} only) from a clean copy of it.",
    )
    build.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write the wheels to")
    build.add_argument(
        "--source",
        action="append",
        type=Path,
        metavar="PART_DIR",
        help=f"a package folder (repeatable; default: {', '.join(map(str, DEFAULT_SOURCES))})",
    )
    build.set_defaults(handler=_build)

    publish = commands.add_parser(
        "publish",
        help="upload the wheels in a folder to the team's CodeArtifact repository",
        description="Refuses before uploading anything when a wheel is not the team's or its version exists.",
    )
    wheels = publish.add_mutually_exclusive_group(required=True)
    wheels.add_argument("--dir", type=Path, dest="wheel_dir", metavar="DIR", help="folder of wheels")
    wheels.add_argument(
        "--build",
        action="store_true",
        help=f"build the wheels first, from --source folders (default: {', '.join(map(str, DEFAULT_SOURCES))})",
    )
    publish.add_argument(
        "--source", action="append", type=Path, metavar="PART_DIR", help="a package folder (with --build)"
    )
    publish.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave out wheels whose version the repository already holds (bootstrap re-runs), instead of refusing",
    )
    publish.add_argument("--dry-run", action="store_true", help="show the plan and the checks, upload nothing")
    publish.add_argument("--yes", action="store_true", help="upload without asking")
    add_config_option(publish)
    add_aws_options(publish)
    publish.set_defaults(handler=_publish)


def _build(args: argparse.Namespace) -> int:
    parts = [read_part(folder) for folder in args.source or DEFAULT_SOURCES]
    for part in parts:
        print(f"release build: {part.name} {part.version} from {part.folder}")
    built = build_wheels(parts, args.out)
    for wheel in built:
        print(f"  wrote {wheel.path}")
    for reason in sorted({w.isolation_reason for w in built if w.isolation_reason}):
        print(
            f"note: built in pip's isolated build environment ({reason}); the build fetched its setuptools "
            "from the package index",
            file=sys.stderr,
        )
    return 0


def _publish(args: argparse.Namespace) -> int:
    if args.source and not args.build:
        raise LakeopsError("release publish: --source names folders to build from, so it needs --build")
    if not args.build:
        return _publish_dir(args, args.wheel_dir)
    with tempfile.TemporaryDirectory(prefix="lakeops-release-") as scratch:
        args.out = Path(scratch)
        _build(args)
        return _publish_dir(args, Path(scratch))


def _publish_dir(args: argparse.Namespace, wheel_dir: Path) -> int:
    config = load_config(args)
    wheels = wheels_in(wheel_dir)  # a foreign wheel is refused here, before any AWS call
    lake = lake_names(config)
    domain, owner, name = lake.package_domain, config.deployment.account, lake.package_repository
    with aws_step("release publish"):
        client = sessions_from(args, config).client("codeartifact")
        endpoint = repository_endpoint(client, domain=domain, owner=owner, name=name)
        repository = Repository(
            domain=domain, owner=owner, name=name, region=client.meta.region_name, endpoint=endpoint
        )
        plan = plan_publish(client, repository, wheels)
    print(plan.describe())
    if args.skip_existing and plan.conflicts:
        present = {id(w) for w, _ in plan.conflicts}
        print("skipped, already published: " + ", ".join(f"{w.name} {w.version}" for w, _ in plan.conflicts))
        wheels = [w for w in wheels if id(w) not in present]
        if not wheels:
            print("release publish: nothing new to publish")
            return 0
    else:
        plan.refuse_conflicts()
    if args.dry_run:
        print("dry run: nothing uploaded")
        return 0
    if not confirm(f"upload {len(wheels)} wheel(s) to {name}?", assume_yes=args.yes):
        print("nothing uploaded")
        return 1
    with aws_step("release publish"):
        token = client.get_authorization_token(domain=domain, domainOwner=owner, durationSeconds=TOKEN_SECONDS)
    uploaded: list[str] = []
    for wheel in wheels:
        try:
            upload(wheel, endpoint, token["authorizationToken"])
        except ReleaseError as exc:
            done = f" (uploaded before it: {', '.join(uploaded)})" if uploaded else " (nothing was uploaded)"
            raise ReleaseError(f"{exc}{done}") from None
        uploaded.append(f"{wheel.name} {wheel.version}")
        print(f"  uploaded {wheel.path.name}")
    print(f"release publish: published {', '.join(uploaded)} to {name}")
    return 0
