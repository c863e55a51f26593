"""Run a job script as Glue runs it: `python launch.py <script> --key value ...`.

The script runs as `__main__` with `sys.argv` = [script, --key, value, ...] and its own folder first on
`sys.path`, as `python <script>` would. An exception that ends the script is printed as usual and, for the
run's `ErrorMessage`, its last traceback line (`ValueError: ...`) is written to the file named by
`LAKEOPS_GLUE_ERROR_FILE`. `sys.exit(0)` (or no exit) is success; any other exit status is a failure.
"""

from __future__ import annotations

import os
import runpy
import sys
import traceback
from pathlib import Path

ERROR_FILE_ENV = "LAKEOPS_GLUE_ERROR_FILE"


def _record(exc: BaseException) -> None:
    target = os.environ.get(ERROR_FILE_ENV)
    if target:
        Path(target).write_text("".join(traceback.format_exception_only(type(exc), exc)).strip() + "\n")


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: launch.py <script> [--key value ...]", file=sys.stderr)
        return 2
    script = str(Path(argv[1]).resolve())
    sys.argv = [script, *argv[2:]]
    sys.path[0] = str(Path(script).parent)
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        if exc.code is None or exc.code == 0:
            return 0
        _record(exc)
        raise
    except BaseException as exc:
        _record(exc)
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
