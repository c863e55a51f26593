"""Run moto server with the emulator patches: `python -m lakeops.emulator.server --port P --cert C --key K`.

Glue job runs (`glue_runs`) execute with the interpreter given by `--glue-python` (else the environment
variable `LAKEOPS_GLUE_PYTHON`, else this Python): the Glue runtime, which brings pyspark. They keep their
files and bookmarks under `--glue-workdir` (else `LAKEOPS_GLUE_WORKDIR`, else a new temporary folder).

`--deliver-events` (or `LAKEOPS_DELIVER_EVENTS=1`) turns on the trigger chain: EventBridge delivers S3's and
Step Functions' events to rules, rule targets start state machines, and state machines execute, Glue and
nested executions included (`patches.py` 9 and 10). Off by default: then nothing starts by itself.
"""

from __future__ import annotations

import argparse
import atexit
import os
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="moto server over TLS with the lakeops emulator patches")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--glue-python", default=os.environ.get("LAKEOPS_GLUE_PYTHON") or sys.executable)
    parser.add_argument("--glue-workdir", default=os.environ.get("LAKEOPS_GLUE_WORKDIR"))
    parser.add_argument(
        "--glue-minute-seconds", type=float, default=60.0, help="how long a minute of a Glue job's Timeout lasts"
    )
    parser.add_argument(
        "--deliver-events",
        action="store_true",
        default=os.environ.get("LAKEOPS_DELIVER_EVENTS") == "1",
        help="deliver EventBridge events to state machines and execute them",
    )
    args = parser.parse_args(argv)

    from moto import server

    from lakeops.emulator import glue_runs, patches, step_functions

    patches.apply(deliver_events=args.deliver_events)
    if args.deliver_events:
        step_functions.configure(
            step_functions.StepFunctionsRuntime(
                endpoint_url=f"https://localhost:{args.port}", ca_bundle=str(Path(args.cert).resolve())
            )
        )
    glue_runs.configure(
        glue_runs.GlueRuntime(
            # `localhost`, as for every client of the emulator (process.Emulator.endpoint_url).
            endpoint_url=f"https://localhost:{args.port}",
            ca_bundle=str(Path(args.cert).resolve()),
            workdir=Path(args.glue_workdir or tempfile.mkdtemp(prefix="lakeops-glue-")).resolve(),
            python=args.glue_python,
            minute_s=args.glue_minute_seconds,
        )
    )
    # Stopping the emulator stops the job runs it started, which run in their own process groups: moto's
    # server turns SIGTERM and SIGINT into sys.exit, and an exit runs this.
    atexit.register(glue_runs.stop_all)
    server.main(["-H", "127.0.0.1", "-p", str(args.port), "-c", args.cert, "-k", args.key])


if __name__ == "__main__":
    main(sys.argv[1:])
