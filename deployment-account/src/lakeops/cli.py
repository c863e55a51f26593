"""The `lakeops` command line. Exit codes: 0 ok, 1 invalid input or failed step, 2 usage."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from datalake_config import ConfigError
from lakeops.commands import (
    bootstrap_cmd,
    config_cmd,
    graph_cmd,
    promote_cmd,
    prune_cmd,
    rehearse_cmd,
    release_cmd,
    status_cmd,
)
from lakeops.errors import LakeopsError

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2

# Each command group registers its own sub-commands; add a module here to add a group.
COMMAND_GROUPS = [config_cmd, bootstrap_cmd, promote_cmd, status_cmd, graph_cmd, prune_cmd, release_cmd, rehearse_cmd]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lakeops",
        description="Operate the data lake's deployment account: config, bootstrap, promotion, status, the system "
        "picture, pruning, releases, rehearsal.",
    )
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    for module in COMMAND_GROUPS:
        module.register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except LakeopsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
