"""Run a job group's Glue jobs on local Spark against local paths: what `etl-jobs run` and `run-sample` drive.

The job script is loaded from its group folder exactly as Glue would run it, its arguments are built from
the group spec (`--input_<name>`, `--output_<name>`, `--partition_by_<output>`, `--quarantine_path`, the
spec's default arguments), and `main(context, args)` runs on a local SparkSession. Progress and row counts
are printed.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from etl_jobs.spec import JOBS_DIR, REPOSITORY_DIR, Group, Job, Location, load_group

# `sample-data/<group>/` is a miniature lake: `<zone>/<key prefix>/files`, as the deployed buckets hold them.
SAMPLE_DATA_DIR = REPOSITORY_DIR / "sample-data"

Echo = Callable[[str], None]


class RunnerError(ValueError):
    """A local run that cannot start: unknown group/job, missing or unknown inputs/outputs, bad arguments."""


@dataclass(frozen=True)
class RunResult:
    """One local job run: its id, row counts per dataset and how long it took."""

    group: str
    job: str
    run_id: str
    counts: Mapping[str, Mapping[str, int]]
    seconds: float


def load_job_module(group: Group, job: Job) -> ModuleType:
    """Import a job script from its group folder (scripts are files, not a package, as they are in Glue)."""
    path = group.script_path(job)
    spec = importlib.util.spec_from_file_location(f"lakejobs_script_{group.name}_{job.name}", path)
    if spec is None or spec.loader is None:
        raise RunnerError(f"{group.name}/{job.name}: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for attribute in ("main", "ARGS"):
        if not hasattr(module, attribute):
            raise RunnerError(f"{group.name}/{job.name}: {path.name} defines no {attribute}")
    return module


def resolve(group_name: str, job_name: str, jobs_dir: Path = JOBS_DIR) -> tuple[Group, Job]:
    folder = jobs_dir / group_name
    if not (folder / "group.yaml").is_file():
        known = ", ".join(sorted(p.parent.name for p in jobs_dir.glob("*/group.yaml"))) or "none"
        raise RunnerError(f"no job group {group_name!r} in {jobs_dir}; groups: {known}")
    group = load_group(folder)
    try:
        return group, group.job(job_name)
    except KeyError as exc:
        raise RunnerError(str(exc.args[0])) from None


def job_argv(
    group: Group,
    job: Job,
    inputs: Mapping[str, str | Path],
    outputs: Mapping[str, str | Path],
    *,
    quarantine: str | Path | None = None,
    arguments: Mapping[str, str] | None = None,
) -> list[str]:
    """The argument list the deployed job gets, with local paths in place of the S3 locations."""
    label = f"{group.name}/{job.name}"
    _check_names(label, "input", [loc.name for loc in job.inputs], inputs)
    _check_names(label, "output", [loc.name for loc in job.outputs], outputs)
    argv = [str(group.script_path(job)), "--group_name", group.name, "--job_short_name", job.name]
    for location in job.inputs:
        argv += [f"--input_{location.name}", _absolute(inputs[location.name])]
    for location in job.outputs:
        argv += [f"--output_{location.name}", _absolute(outputs[location.name])]
    for option, columns in job.partition_arguments().items():
        argv += [option, columns]
    if job.quarantine:
        if quarantine is None:
            raise RunnerError(f"{label} quarantines malformed records: give a quarantine path")
        argv += ["--quarantine_path", _absolute(quarantine)]
    merged = {**job.arguments, **{_option(k): v for k, v in (arguments or {}).items()}}
    for option, value in merged.items():
        argv += [option, value]
    return argv


def run_job(
    group_name: str,
    job_name: str,
    inputs: Mapping[str, str | Path],
    outputs: Mapping[str, str | Path],
    *,
    quarantine: str | Path | None = None,
    arguments: Mapping[str, str] | None = None,
    run_id: str | None = None,
    spark: Any = None,
    jobs_dir: Path = JOBS_DIR,
    echo: Echo = print,
) -> RunResult:
    """Run one job on local Spark; returns its counts. Bad names or arguments fail before Spark starts."""
    from lakejobs.args import ArgumentError
    from lakejobs.context import JobContext

    group, job = resolve(group_name, job_name, jobs_dir)
    argv = job_argv(group, job, inputs, outputs, quarantine=quarantine, arguments=arguments)
    module = load_job_module(group, job)
    try:
        args = module.ARGS.parse(argv)
    except ArgumentError as exc:
        raise RunnerError(f"{group.name}/{job.name}: {exc}") from None
    logger, handler = _echo_logger(f"lakejobs.local.{group.name}.{job.name}", echo)
    try:
        context = JobContext.local(f"{group.name}/{job.name}", run_id=run_id, spark=spark, logger=logger)
        echo(f"▶ {group.name}/{job.name}  run {context.run_id}")
        echo(f"  arguments: {args.redacted()}")
        started = time.monotonic()
        counts = module.main(context, args)
        seconds = time.monotonic() - started
    finally:
        logger.removeHandler(handler)
    echo(f"✔ {group.name}/{job.name} finished in {seconds:.1f} s")
    for line in format_counts(counts):
        echo(f"  {line}")
    return RunResult(group=group.name, job=job.name, run_id=context.run_id, counts=counts, seconds=seconds)


def run_sample(
    group_name: str,
    out_dir: Path,
    *,
    spark: Any = None,
    jobs_dir: Path = JOBS_DIR,
    sample_dir: Path = SAMPLE_DATA_DIR,
    echo: Echo = print,
) -> list[RunResult]:
    """Copy the group's shipped sample data into a local lake at `out_dir` and run every job in order.

    The local lake mirrors the deployed one: `<out_dir>/<zone>/<prefix>` for every declared location.
    """
    group_folder = jobs_dir / group_name
    if not (group_folder / "group.yaml").is_file():
        raise RunnerError(f"no job group {group_name!r} in {jobs_dir}")
    group = load_group(group_folder)
    samples = sample_dir / group.name
    if not samples.is_dir():
        raise RunnerError(f"{group.name}: no sample data at {samples}")
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(samples, out_dir, dirs_exist_ok=True)
    echo(f"sample data of {group.name} copied into {out_dir}")
    results = []
    for job in group.jobs:
        results.append(
            run_job(
                group.name,
                job.name,
                {loc.name: lake_path(out_dir, loc) for loc in job.inputs},
                {loc.name: lake_path(out_dir, loc) for loc in job.outputs},
                quarantine=quarantine_path(out_dir, group, job),
                spark=spark,
                jobs_dir=jobs_dir,
                echo=echo,
            )
        )
    return results


def lake_path(root: Path, location: Location) -> Path:
    return root / location.zone / location.prefix


def quarantine_path(root: Path, group: Group, job: Job) -> Path:
    """Where a local lake at `root` keeps the job's quarantine: the deployed layout (`Job.quarantine_location`)."""
    zone, prefix = job.quarantine_location(group.name)
    return root / zone / prefix


def list_jobs(jobs_dir: Path = JOBS_DIR) -> list[Group]:
    from etl_jobs.spec import discover

    return discover(jobs_dir)


def format_counts(counts: Mapping[str, Mapping[str, int]]) -> list[str]:
    datasets = sorted({name for table in counts.values() for name in table})
    if not datasets:
        return ["no rows read or written"]
    width = max(len("dataset"), *(len(d) for d in datasets))
    lines = [f"{'dataset':<{width}}  {'read':>8}  {'written':>8}  {'quarantined':>11}"]
    for dataset in datasets:
        cells = [counts.get(kind, {}).get(dataset) for kind in ("read", "written", "quarantined")]
        shown = ["-" if c is None else str(c) for c in cells]
        lines.append(f"{dataset:<{width}}  {shown[0]:>8}  {shown[1]:>8}  {shown[2]:>11}")
    return lines


def _check_names(label: str, kind: str, declared: Sequence[str], given: Mapping[str, Any]) -> None:
    missing = [n for n in declared if n not in given]
    unknown = sorted(set(given) - set(declared))
    problems = []
    if missing:
        problems.append(f"missing {kind}(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown {kind}(s) {', '.join(unknown)}")
    if problems:
        raise RunnerError(f"{label}: {'; '.join(problems)}; it declares {kind}s: {', '.join(declared)}")


def _absolute(path: str | Path) -> str:
    text = str(path)
    return text if "://" in text else str(Path(text).resolve())


def _option(name: str) -> str:
    return name if name.startswith("--") else f"--{name}"


class _EchoHandler(logging.Handler):
    def __init__(self, echo: Echo) -> None:
        super().__init__(logging.INFO)
        self.echo = echo

    def emit(self, record: logging.LogRecord) -> None:
        self.echo(f"  {record.getMessage()}")


def _echo_logger(name: str, echo: Echo) -> tuple[logging.Logger, logging.Handler]:
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = _EchoHandler(echo)
    logger.addHandler(handler)
    return logger, handler
