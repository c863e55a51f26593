"""`lakeops job ...`: list the ETL job groups, run a job or a whole group on local Spark, reprocess a window.

The ETL code lives in the etl-jobs package; it is imported only when a job command runs, so the rest of
lakeops works without pyspark installed.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import ModuleType
from typing import Any

from datalake_config.naming import names_for
from lakeops.commands.common import add_aws_options, add_config_option, load_config, sessions_from
from lakeops.errors import LakeopsError


def register(groups: Any) -> None:
    parser = groups.add_parser("job", help="list, run locally and reprocess the ETL job groups")
    commands = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)

    listing = commands.add_parser("list", help="job groups and their jobs, inputs and outputs")
    _add_jobs_dir(listing)
    listing.set_defaults(handler=_list)

    run = commands.add_parser("run", help="run one job on local Spark against local paths")
    run.add_argument("target", metavar="GROUP/JOB")
    run.add_argument("--input", action="append", default=[], metavar="NAME=PATH", help="one per declared input")
    run.add_argument("--output", action="append", default=[], metavar="NAME=PATH", help="one per declared output")
    run.add_argument("--quarantine", type=Path, help="where malformed records go (jobs that quarantine need it)")
    run.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE", help="a job argument")
    _add_jobs_dir(run)
    run.set_defaults(handler=_run)

    sample = commands.add_parser("run-sample", help="run every job of a group on its shipped sample data")
    sample.add_argument("group")
    sample.add_argument("--out", type=Path, required=True, help="directory for the local lake (zones as folders)")
    _add_jobs_dir(sample)
    sample.set_defaults(handler=_run_sample)

    reprocess = commands.add_parser(
        "reprocess",
        help="rerun a deployed job over the input first seen after FROM_RUN up to and including TO_RUN",
    )
    reprocess.add_argument("target", metavar="GROUP/JOB")
    reprocess.add_argument("--from-run", required=True, metavar="RUN_ID")
    reprocess.add_argument("--to-run", required=True, metavar="RUN_ID")
    reprocess.add_argument("--env", required=True, help="the environment whose job runs")
    reprocess.add_argument("--dry-run", action="store_true", help="check the job and runs, start nothing")
    add_config_option(reprocess)
    add_aws_options(reprocess)
    _add_jobs_dir(reprocess)
    reprocess.set_defaults(handler=_reprocess)


def _add_jobs_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs-dir", type=Path, help="folder of job groups (default: the etl-jobs jobs/ folder)")


def _etl(module: str) -> ModuleType:
    import importlib

    try:
        return importlib.import_module(f"etl_jobs.{module}")
    except ImportError as exc:
        raise LakeopsError(
            f"job commands need the etl-jobs package and pyspark ({exc}); install them with "
            "`pip install -e etl-jobs-repo` in this environment"
        ) from None


def _jobs_dir(args: argparse.Namespace) -> Path:
    return Path(args.jobs_dir) if args.jobs_dir else Path(_etl("spec").JOBS_DIR)


def _split_target(target: str) -> tuple[str, str]:
    group, slash, job = target.partition("/")
    if not slash or not group or not job or "/" in job:
        raise LakeopsError(f"expected GROUP/JOB, got {target!r}")
    return group, job


def _pairs(values: list[str], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        name, equals, text = value.partition("=")
        if not equals or not name or not text:
            raise LakeopsError(f"{option} {value!r}: expected NAME=VALUE")
        if name in pairs:
            raise LakeopsError(f"{option} {name}: given twice")
        pairs[name] = text
    return pairs


def _list(args: argparse.Namespace) -> int:
    spec = _etl("spec")
    try:
        groups = spec.discover(_jobs_dir(args))
    except spec.SpecError as exc:
        raise LakeopsError(str(exc)) from None
    for group in groups:
        trigger = ", ".join(
            t for t in (group.raw_prefix and f"raw objects under {group.raw_prefix}", group.schedule) if t
        )
        print(f"{group.name}  ({trigger})")
        for job in group.jobs:
            flags = ", ".join(f for f in ("bookmarks" if job.bookmarks else "", "vpc" if job.needs_vpc else "") if f)
            print(f"  {group.name}/{job.name}{f'  [{flags}]' if flags else ''}")
            print(f"    in:  {', '.join(f'{i.name} ({i.zone}:{i.prefix} {i.format})' for i in job.inputs)}")
            print(f"    out: {', '.join(f'{o.name} ({o.zone}:{o.prefix} {o.format})' for o in job.outputs)}")
    return 0


def _run(args: argparse.Namespace) -> int:
    group, job = _split_target(args.target)
    inputs, outputs = _pairs(args.input, "--input"), _pairs(args.output, "--output")
    arguments = _pairs(args.arg, "--arg")
    runner = _etl("local_runner")
    _guarded(
        lambda: runner.run_job(
            group,
            job,
            inputs,
            outputs,
            quarantine=args.quarantine,
            arguments=arguments,
            jobs_dir=_jobs_dir(args),
        )
    )
    return 0


def _run_sample(args: argparse.Namespace) -> int:
    runner = _etl("local_runner")
    results = _guarded(lambda: runner.run_sample(args.group, args.out, jobs_dir=_jobs_dir(args)))
    print(f"{args.group}: {len(results)} job(s) ran; the local lake is in {args.out}")
    return 0


def _guarded(action: Any) -> Any:
    """Turn the ETL side's refusals (bad spec, names, arguments, a too-broken feed) into lakeops errors."""
    spec, runner = _etl("spec"), _etl("local_runner")
    from lakejobs.io import DataQualityError

    try:
        return action()
    except (spec.SpecError, runner.RunnerError, DataQualityError) as exc:
        raise LakeopsError(str(exc)) from None


def _reprocess(args: argparse.Namespace) -> int:
    group_name, job_name = _split_target(args.target)
    config = load_config(args)
    if args.env not in config.environment_names:
        raise LakeopsError(f"--env {args.env}: unknown environment; configured: {', '.join(config.environment_names)}")
    runner, reprocess = _etl("local_runner"), _etl("reprocess")
    _, job = _guarded(lambda: runner.resolve(group_name, job_name, _jobs_dir(args)))
    if not job.bookmarks:
        raise LakeopsError(
            f"{group_name}/{job_name} does not use bookmarks (group.yaml), so it has no window to reprocess"
        )
    env = config.env(args.env)
    glue = sessions_from(args, config).account_client("glue", env.account, env.region)
    glue_job = names_for(config, args.env).glue_job_name(group_name, job_name)
    try:
        plan = reprocess.plan_reprocess(glue, glue_job, args.from_run, args.to_run)
        print(f"reprocess {glue_job}: input after run {plan.from_run} up to and including run {plan.to_run}")
        if args.dry_run:
            print("dry run: no run started")
            return 0
        run_id = reprocess.start_reprocess(glue, plan)
    except reprocess.ReprocessError as exc:
        raise LakeopsError(str(exc)) from None
    print(f"started run {run_id} (bookmark paused: the job's regular bookmark does not move)")
    return 0
