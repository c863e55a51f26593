"""`etl-jobs`: list the job groups, create one, check one on its own, run a job or a whole group on local
Spark, reprocess a window of a deployed job, and (for the rehearsal) deliver the sample data to an emulated
environment, where the deployed jobs process it. Exit codes: 0 ok, 1 invalid input, failed run or failed
check, 2 usage."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from datalake_config import PULLED_CONFIG_PATH, ConfigError, LakeConfig, load, names_for
from datalake_config.cli import add_aws_options, aws_failure, sessions_from
from etl_jobs import local_runner, reprocess
from etl_jobs.group_check import Paths, StepFailed
from etl_jobs.sample_delivery import DeliveryError
from etl_jobs.scaffold import ScaffoldError
from etl_jobs.spec import JOBS_DIR, REPOSITORY_DIR, SpecError, discover, trigger_overrides
from lakejobs.io import DataQualityError

T = TypeVar("T")
EXIT_OK, EXIT_INVALID = 0, 1


class CliError(RuntimeError):
    """A refusal worth one line on stderr (exit 1), never a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="etl-jobs",
        description="List, create, check, run locally and reprocess the ETL job groups of this repository.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    listing = commands.add_parser(
        "list", help="job groups with their trigger, jobs, inputs and outputs (partition columns included)"
    )
    _add_jobs_dir(listing)
    listing.set_defaults(handler=_list)

    new = commands.add_parser(
        "new",
        help="create a job group: group.yaml, one script per job, sample data and a test module",
        description=(
            "Create jobs/GROUP/ (group.yaml and one script per job), sample-data/GROUP/raw/... and "
            "tests/jobs/test_GROUP.py, all passing ruff, mypy and pytest as written. The first job conforms "
            "raw JSON lines (malformed records quarantined); each later job aggregates what it writes."
        ),
    )
    new.add_argument("group", help="the group's name (its folder): lowercase letters, digits, underscores")
    new.add_argument(
        "--job", dest="jobs", action="append", required=True, metavar="NAME", help="a job, in run order; repeatable"
    )
    trigger = new.add_mutually_exclusive_group(required=True)
    trigger.add_argument(
        "--raw-prefix", metavar="PREFIX", help="start the group when an object lands under this raw-zone prefix"
    )
    trigger.add_argument("--schedule", metavar="EXPRESSION", help="start the group on 'rate(...)' or 'cron(...)'")
    _add_root(new)
    new.set_defaults(handler=_new)

    check = commands.add_parser(
        "check",
        help="check one group alone: spec, script arguments, sample run, outputs, synth with cdk-nag, cfn-lint",
    )
    check.add_argument("group")
    check.add_argument(
        "--config",
        type=Path,
        help="shared config to synthesize with (default: .lake/config.json if pulled, else the example config)",
    )
    check.add_argument("--out", type=Path, help="keep the sample run's local lake here (default: a temporary folder)")
    _add_root(check)
    check.set_defaults(handler=_check)

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

    again = commands.add_parser(
        "reprocess",
        help="rerun a deployed job over the input first seen after FROM_RUN up to and including TO_RUN",
    )
    again.add_argument("target", metavar="GROUP/JOB")
    again.add_argument("--from-run", required=True, metavar="RUN_ID")
    again.add_argument("--to-run", required=True, metavar="RUN_ID")
    again.add_argument("--env", required=True, help="the environment whose job runs")
    again.add_argument("--dry-run", action="store_true", help="check the job and runs, start nothing")
    _add_config(again)
    add_aws_options(again)
    _add_jobs_dir(again)
    again.set_defaults(handler=_reprocess)

    deliver = commands.add_parser(
        "deliver-sample",
        help="deliver every group's sample data to an environment's raw bucket, wait for the executions its "
        "triggers start and report each job run (the rehearsal's step)",
    )
    deliver.add_argument("--env", required=True, help="the environment whose raw bucket receives the data")
    deliver.add_argument("--report", type=Path, help="also write the printed lines as a JSON list here")
    _add_config(deliver)
    add_aws_options(deliver)
    _add_jobs_dir(deliver)
    deliver.set_defaults(handler=_deliver_sample)
    return parser


def _add_jobs_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs-dir", type=Path, default=JOBS_DIR, help="folder of job groups (default: jobs/)")


def _add_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        type=Path,
        default=REPOSITORY_DIR,
        help="repository folder holding jobs/, sample-data/ and tests/ (default: this repository)",
    )


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, default=PULLED_CONFIG_PATH, help=f"shared config file (default: {PULLED_CONFIG_PATH})"
    )


def _split_target(target: str) -> tuple[str, str]:
    group, slash, job = target.partition("/")
    if not slash or not group or not job or "/" in job:
        raise CliError(f"expected GROUP/JOB, got {target!r}")
    return group, job


def _pairs(values: list[str], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        name, equals, text = value.partition("=")
        if not equals or not name or not text:
            raise CliError(f"{option} {value!r}: expected NAME=VALUE")
        if name in pairs:
            raise CliError(f"{option} {name}: given twice")
        pairs[name] = text
    return pairs


def _environment(config: LakeConfig, env_name: str) -> None:
    if env_name not in config.environment_names:
        raise CliError(f"--env {env_name}: unknown environment; configured: {', '.join(config.environment_names)}")


def _list(args: argparse.Namespace) -> int:
    for group in discover(args.jobs_dir):
        per_env = "".join(f"; {key}: {value}" for key, value in trigger_overrides(group.folder).items())
        print(f"{group.name}  (started by {group.trigger_text()}{per_env})")
        for job in group.jobs:
            flags = ", ".join(f for f in ("bookmarks" if job.bookmarks else "", "vpc" if job.needs_vpc else "") if f)
            print(f"  {group.name}/{job.name}{f'  [{flags}]' if flags else ''}")
            print(f"    in:  {', '.join(f'{i.name} ({i.zone}:{i.prefix} {i.format})' for i in job.inputs)}")
            outputs = [
                f"{o.name} ({o.zone}:{o.prefix} {o.format}"
                + (f", partitioned by {', '.join(o.partition_by)}" if o.partition_by else "")
                + ")"
                for o in job.outputs
            ]
            print(f"    out: {', '.join(outputs)}")
    return EXIT_OK


def _new(args: argparse.Namespace) -> int:
    from etl_jobs.scaffold import check_request, create_group

    paths = Paths(args.root)
    request = check_request(args.group, args.jobs, raw_prefix=args.raw_prefix, schedule=args.schedule, paths=paths)
    written = create_group(request, paths)
    print(f"created the job group {request.name} in {paths.root}:")
    for path in written:
        print(f"  {path.relative_to(paths.root)}")
    print("next: make the schemas, rules, transforms and sample data your own (jobs/README.md), then")
    print(f"  etl-jobs check {request.name}")
    print(f"  pytest tests/jobs/test_{request.name}.py")
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from etl_jobs.group_check import check_group, default_config_path

    paths = Paths(args.root)
    config = args.config or default_config_path(paths.root)
    try:
        seconds = check_group(args.group, paths=paths, config_path=config, keep_lake=args.out)
    except StepFailed as failed:
        for problem in failed.problems:
            print(f"✘ {failed.step}: {problem}")
        print(f"{args.group}: the check failed at step {failed.step!r}", file=sys.stderr)
        return EXIT_INVALID
    print(f"{args.group}: every step passed in {seconds:.1f} s")
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    group, job = _split_target(args.target)
    local_runner.run_job(
        group,
        job,
        _pairs(args.input, "--input"),
        _pairs(args.output, "--output"),
        quarantine=args.quarantine,
        arguments=_pairs(args.arg, "--arg"),
        jobs_dir=args.jobs_dir,
    )
    return EXIT_OK


def _run_sample(args: argparse.Namespace) -> int:
    results = local_runner.run_sample(args.group, args.out, jobs_dir=args.jobs_dir)
    print(f"{args.group}: {len(results)} job(s) ran; the local lake is in {args.out}")
    return EXIT_OK


def _reprocess(args: argparse.Namespace) -> int:
    group_name, job_name = _split_target(args.target)
    _, job = local_runner.resolve(group_name, job_name, args.jobs_dir)
    config = load(args.config)
    _environment(config, args.env)
    if not job.bookmarks:
        raise CliError(f"{group_name}/{job_name} does not use bookmarks (group.yaml), so it has no window to reprocess")
    env = config.env(args.env)
    glue = sessions_from(args, config).account_client("glue", env.account, env.region)
    glue_job = names_for(config, args.env).glue_job_name(group_name, job_name)
    plan = reprocess.plan_reprocess(glue, glue_job, args.from_run, args.to_run)
    print(f"reprocess {glue_job}: input after run {plan.from_run} up to and including run {plan.to_run}")
    if args.dry_run:
        print("dry run: no run started")
        return EXIT_OK
    run_id = reprocess.start_reprocess(glue, plan)
    print(f"started run {run_id} (bookmark paused: the job's regular bookmark does not move)")
    return EXIT_OK


def _deliver_sample(args: argparse.Namespace) -> int:
    from etl_jobs.sample_delivery import deliver_samples

    config = load(args.config)
    _environment(config, args.env)
    env = config.env(args.env)
    sessions = sessions_from(args, config)
    clients = lambda service: sessions.account_client(service, env.account, env.region)  # noqa: E731
    lines = deliver_samples(config, args.env, clients, jobs_dir=args.jobs_dir)
    for line in lines:
        print(line)
    if args.report:
        args.report.write_text(json.dumps(lines, indent=1), encoding="utf-8")
    return EXIT_OK


def _guarded(action: Callable[[], T]) -> T:
    """Every refusal of the ETL side (bad spec, names, arguments, a too-broken feed) as one line."""
    try:
        return action()
    except (
        SpecError,
        ScaffoldError,
        local_runner.RunnerError,
        DataQualityError,
        reprocess.ReprocessError,
        DeliveryError,
    ) as exc:
        raise CliError(str(exc)) from None
    except (ClientError, BotoCoreError) as exc:
        raise CliError(aws_failure("etl-jobs", exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = _guarded(lambda: args.handler(args))
    except (CliError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return code


if __name__ == "__main__":
    sys.exit(main())
