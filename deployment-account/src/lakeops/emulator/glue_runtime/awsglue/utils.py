"""`getResolvedOptions`: the job's named arguments out of `sys.argv`, parsed as Glue's library parses them.

Behaviour reproduced (developer guide, "Accessing parameters using getResolvedOptions", and the awsglue
library's `utils.getResolvedOptions`):
- `args` is `sys.argv`; its first element (the script) is skipped. Parsing is argparse's `parse_known_args`:
  arguments nobody asked for are ignored, `--name value` and `--name=value` both work, and an argparse
  error raises `GlueArgumentError` instead of exiting.
- Every name in `options` is required (`--JOB_NAME` too, when asked for). Names are given without the
  leading `--`; the result uses argparse's names (a `-` becomes `_`).
- Glue's reserved parameters are always parsed and may not be asked for: `--job-bookmark-option`
  (job-bookmark-enable, -pause or -disable), the older `--continuation-option`, `--job-bookmark-from`/`-to`,
  `--JOB_ID`, `--JOB_RUN_ID`, `--SECURITY_CONFIGURATION`, `--encryption-type` (sse-s3). Asking for one
  raises RuntimeError.
- `TempDir` and `RedshiftTempDir` are optional even when asked for, and each stands in for the other.
- `job_bookmark_option` is always in the result: as given, else translated from `--continuation-option`,
  else `job-bookmark-disable`. `--job-bookmark-from` and `--job-bookmark-to` go together, and only with
  `job-bookmark-pause`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, NoReturn

BOOKMARK_OPTION = "--job-bookmark-option"
BOOKMARK_CHOICES = ("job-bookmark-enable", "job-bookmark-pause", "job-bookmark-disable")
CONTINUATION_OPTION = "--continuation-option"
# In the order of BOOKMARK_CHOICES: continuation-enabled means job-bookmark-enable, and so on.
CONTINUATION_CHOICES = ("continuation-enabled", "continuation-readonly", "continuation-ignore")
BOOKMARK_RANGE = ("--job-bookmark-from", "--job-bookmark-to")
IDENTITY = ("--JOB_ID", "--JOB_RUN_ID", "--SECURITY_CONFIGURATION")
ENCRYPTION_TYPE = "--encryption-type"
TEMP_DIRS = ("TempDir", "RedshiftTempDir")


class GlueArgumentError(Exception):
    """An argument is missing or malformed (argparse's error, raised instead of exiting)."""


class GlueArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise GlueArgumentError(message)


def getResolvedOptions(args: Sequence[str], options: Sequence[str]) -> dict[str, Any]:  # noqa: N802 (Glue's name)
    reserved = [BOOKMARK_OPTION, CONTINUATION_OPTION, *BOOKMARK_RANGE, *IDENTITY, ENCRYPTION_TYPE]
    for option in reserved:
        if option.removeprefix("--") in options:
            raise RuntimeError(f"Using reserved arguments {option}")
    parser = GlueArgumentParser()
    parser.add_argument(BOOKMARK_OPTION, choices=BOOKMARK_CHOICES, required=False)
    parser.add_argument(CONTINUATION_OPTION, choices=CONTINUATION_CHOICES, required=False)
    for option in [*BOOKMARK_RANGE, *IDENTITY]:
        parser.add_argument(option, required=False)
    parser.add_argument(ENCRYPTION_TYPE, choices=("sse-s3",), required=False)
    for temp_dir in TEMP_DIRS:
        parser.add_argument(f"--{temp_dir}", required=False)
    for option in options:
        if option not in TEMP_DIRS:
            parser.add_argument(f"--{option}", required=True)
    parsed, _unknown = parser.parse_known_args(list(args[1:]))
    resolved: dict[str, Any] = vars(parsed)

    if resolved["TempDir"] is not None:
        resolved["RedshiftTempDir"] = resolved["TempDir"]
    elif resolved["RedshiftTempDir"] is not None:
        resolved["TempDir"] = resolved["RedshiftTempDir"]

    continuation = resolved.pop("continuation_option")
    if resolved["job_bookmark_option"] is None:
        resolved["job_bookmark_option"] = (
            BOOKMARK_CHOICES[CONTINUATION_CHOICES.index(continuation)]
            if continuation is not None
            else "job-bookmark-disable"
        )
    missing_range = [option for option in BOOKMARK_RANGE if resolved[option[2:].replace("-", "_")] is None]
    if resolved["job_bookmark_option"] == "job-bookmark-pause":
        if len(missing_range) == 1:
            raise RuntimeError(f"Missing option or value for {missing_range[0]}")
    elif not missing_range:
        raise RuntimeError(f"Invalid option(s) {' '.join(BOOKMARK_RANGE)}")
    return resolved
