"""One job group checked on its own, in seconds rather than a whole test run: `etl-jobs check <group>`.

The steps run in this order; the first that fails ends the check, named in the last line:

    spec       jobs/<group>/group.yaml loads and validates, with overrides.yaml for every configured environment
    arguments  each script's `ARGS` declares exactly what group.yaml hands the job, and a deployed run's
               argument list (platform and Glue arguments included) parses
    sample     every job runs in order on sample-data/<group>/ on local Spark, in a temporary local lake
    outputs    each output's files hold the columns group.yaml declares for its catalog table, in the declared
               partition folders, and its `_manifest.json` counts the rows the run wrote (and meets
               `expected_min_rows`)
    synth      the shared stack and this group's stack(s) synthesize for every environment with cdk-nag
    cfn-lint   those templates are cfn-lint clean

The repository's tests use the same functions on every group (tests/jobs/test_every_group.py), so the check
and the suite cannot drift apart.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from datalake_config import ConfigError, LakeConfig, load
from etl_jobs.local_runner import RunnerError, RunResult, job_argv, lake_path, load_job_module, run_sample
from etl_jobs.spec import GROUP_FILE, Group, Job, SpecError, load_group
from lakejobs.args import PLATFORM_ARGS, ArgumentError
from lakejobs.io import MANIFEST_FILE, DataQualityError, read_manifest_rows

Echo = Callable[[str], None]
STEPS = ("spec", "arguments", "sample", "outputs", "synth", "cfn-lint")
# What `lake-config pull` writes into a repository; without it the check synthesizes with the example config.
PULLED_CONFIG = Path(".lake") / "config.json"
# Arguments Glue adds to every run: a script must accept them without declaring them.
_GLUE_RUN_ARGUMENTS = ["--JOB_NAME", "x", "--job-bookmark-option", "job-bookmark-enable", "--TempDir", "s3://b/tmp/"]


class StepFailed(RuntimeError):
    """A check step that found problems; `step` names it, the message lists what is wrong."""

    def __init__(self, step: str, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.step = step
        self.problems = list(problems)


@dataclass(frozen=True)
class Paths:
    """Where a repository keeps its groups, sample data and tests (all relative to its folder)."""

    root: Path

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    @property
    def samples(self) -> Path:
        return self.root / "sample-data"

    @property
    def tests(self) -> Path:
        return self.root / "tests" / "jobs"


def example_config_path() -> Path:
    """The example config gluelake-config ships (what the app's tests synthesize with), without test helpers."""
    return Path(str(resources.files("datalake_config").joinpath("example-config.yaml")))


def default_config_path(root: Path) -> Path:
    """The config `cdk synth` would read in `root` (`.lake/config.json`), else the shipped example config."""
    pulled = root / PULLED_CONFIG
    return pulled if pulled.is_file() else example_config_path()


# --- the checks, as functions the tests share ----------------------------------------------------------


def argument_problems(group: Group, job: Job) -> list[str]:
    """How the script's declared arguments differ from what group.yaml hands the job; empty when they agree."""
    label = f"{group.name}/{job.name}"
    try:
        module = load_job_module(group, job)
    except RunnerError as exc:
        return [str(exc)]
    except Exception as exc:
        # Whatever importing the script raised (a syntax error, a missing import) is the problem to show.
        return [f"{label}: importing {job.script} failed: {type(exc).__name__}: {exc}"]
    declared = set(module.ARGS.names) - {a.name for a in PLATFORM_ARGS}
    given = (
        {f"input_{i.name}" for i in job.inputs}
        | {f"output_{o.name}" for o in job.outputs}
        | {name.removeprefix("--") for name in job.arguments}
        | {name.removeprefix("--") for name in job.partition_arguments()}
    )
    problems = []
    if given - declared:
        problems.append(
            f"{label}: group.yaml gives --{', --'.join(sorted(given - declared))} but {job.script} does not declare "
            "it (add Arg(...) to ARGS)"
        )
    if declared - given:
        problems.append(
            f"{label}: {job.script} declares --{', --'.join(sorted(declared - given))} but group.yaml does not give "
            "it (an input, output, partitioned output or `arguments:` entry)"
        )
    if problems:
        return problems
    argv = job_argv(
        group,
        job,
        {i.name: f"s3://bucket/{i.prefix}" for i in job.inputs},
        {o.name: f"s3://bucket/{o.prefix}" for o in job.outputs},
        quarantine="s3://bucket/quarantine/",
    )
    try:
        parsed = module.ARGS.parse([*argv, *_GLUE_RUN_ARGUMENTS])
    except ArgumentError as exc:
        return [f"{label}: a deployed run's arguments do not parse: {exc}"]
    if parsed["group_name"] != group.name or parsed["job_short_name"] != job.name:
        problems.append(f"{label}: --group_name/--job_short_name do not parse as given (leave them to the platform)")
    if job.quarantine and parsed["quarantine_path"] != "s3://bucket/quarantine/":
        problems.append(f"{label}: --quarantine_path does not parse as given (declare it Arg('quarantine_path'))")
    for output in job.outputs:
        if output.partition_by and parsed[f"partition_by_{output.name}"] != tuple(output.partition_by):
            problems.append(
                f"{label}: --partition_by_{output.name} parses as {parsed[f'partition_by_{output.name}']!r}, not "
                f"{tuple(output.partition_by)!r} (declare it Arg(..., tuple))"
            )
    return problems


def written_columns(spark: Any, path: Path) -> dict[str, str]:
    """Column → Hive type as stored in a parquet dataset's files (partition columns live in folder names)."""
    files = sorted(path.rglob("*.parquet"))
    if not files:
        return {}
    return {f.name: f.dataType.simpleString() for f in spark.read.parquet(str(files[0])).schema.fields}


def output_problems(spark: Any, group: Group, lake: Path, results: Sequence[RunResult]) -> list[str]:
    """How a sample run's outputs in `lake` differ from group.yaml and from what the run reported."""
    problems: list[str] = []
    for job, result in zip(group.jobs, results, strict=True):
        for output in job.outputs:
            label = f"{group.name}/{job.name} output {output.name}"
            root = lake_path(lake, output)
            if output.format == "parquet":
                files = written_columns(spark, root)
                if not files:
                    problems.append(f"{label}: no parquet files under {root}")
                elif files != output.columns:
                    problems.append(
                        f"{label}: the files hold columns {_types(files)}, group.yaml declares {_types(output.columns)}"
                    )
                for file in sorted(root.rglob("*.parquet")):
                    levels = [part.partition("=")[0] for part in file.relative_to(root).parts[:-1]]
                    if levels != output.partition_by:
                        problems.append(
                            f"{label}: {file.relative_to(root)} sits in folders {levels or 'none'}, group.yaml "
                            f"partitions by {output.partition_by or 'nothing'} (write with partition_by from "
                            f"--partition_by_{output.name})"
                        )
                        break
            problems += _manifest_problems(label, root, job, output.name, result)
    return problems


def _manifest_problems(label: str, root: Path, job: Job, output: str, result: RunResult) -> list[str]:
    manifest = root / MANIFEST_FILE
    if not manifest.is_file():
        return [f"{label}: no {MANIFEST_FILE} (write outputs with the lakejobs.io sinks, which record it)"]
    try:
        rows = read_manifest_rows(manifest.read_text(encoding="utf-8"))
    except ValueError as exc:
        return [f"{label}: {manifest}: {exc}"]
    problems = []
    reported = result.counts.get("written", {}).get(output)
    if rows != reported:
        problems.append(f"{label}: {MANIFEST_FILE} says {rows} rows, the run reported {reported} written")
    expected = job.expected_min_rows.get(output, 0)
    if rows < expected:
        problems.append(f"{label}: {rows} rows, fewer than expected_min_rows {expected}")
    return problems


def _types(columns: dict[str, str]) -> str:
    return "{" + ", ".join(f"{name}: {kind}" for name, kind in columns.items()) + "}"


def synthesize_group(config: LakeConfig, group_name: str, jobs_dir: Path, outdir: Path) -> tuple[Path, int]:
    """The shared stack and `group_name`'s stacks for every environment, cdk-nag on; (assembly dir, stacks).

    Raises `NagFindings` listing every unacknowledged cdk-nag finding.
    """
    import aws_cdk as cdk

    from etl_jobs.stage import EtlStage
    from lake_pipelines.checks import enable_nag, synth

    app = cdk.App(outdir=str(outdir))
    stages = []
    for env_name in config.environment_names:
        stage = EtlStage(app, env_name, config=config, env_name=env_name, jobs_dir=jobs_dir, only=[group_name])
        enable_nag(stage)
        stages.append(stage)
    enable_nag(app)
    assembly = synth(app)
    return Path(assembly.directory), sum(1 + len(stage.group_stacks) for stage in stages)


# --- the command ----------------------------------------------------------------------------------------


def check_group(
    group_name: str,
    *,
    paths: Paths,
    config_path: Path,
    echo: Echo = print,
    spark: Any = None,
    keep_lake: Path | None = None,
) -> float:
    """Run every step on one group, echoing one line per step; returns the seconds taken.

    Raises `StepFailed` at the first step that fails. `keep_lake` keeps the sample run's local lake there
    instead of in a temporary folder.
    """
    started = time.monotonic()
    folder = paths.jobs / group_name
    if not (folder / GROUP_FILE).is_file():
        known = ", ".join(sorted(p.parent.name for p in paths.jobs.glob(f"*/{GROUP_FILE}"))) or "none"
        raise StepFailed("spec", [f"no {GROUP_FILE} in {folder}; groups: {known}"])
    echo(f"check {group_name}: {folder}, sample data {paths.samples / group_name}, config {config_path}")

    with _step("spec", echo) as note:
        try:
            config = load(config_path)
            group = load_group(folder)
            for env_name in config.environment_names:
                load_group(folder, env_name, config.environment_names)
        except (SpecError, ConfigError) as exc:
            raise StepFailed("spec", [str(exc)]) from None
        note(
            f"{len(group.jobs)} job(s) ({', '.join(j.name for j in group.jobs)}); started by {group.trigger_text()}; "
            f"overrides valid for {', '.join(config.environment_names)}"
        )

    with _step("arguments", echo) as note:
        problems = [p for job in group.jobs for p in argument_problems(group, job)]
        if problems:
            raise StepFailed("arguments", problems)
        note("every script declares exactly the arguments group.yaml gives it, and a deployed run's arguments parse")

    with tempfile.TemporaryDirectory(prefix=f"check-{group_name}-") as scratch:
        lake = keep_lake or Path(scratch) / "lake"
        with _step("sample", echo) as note:
            try:
                results = run_sample(
                    group_name,
                    lake,
                    spark=spark,
                    jobs_dir=paths.jobs,
                    sample_dir=paths.samples,
                    echo=lambda line: echo(f"    {line}"),
                )
            except (RunnerError, DataQualityError, SpecError) as exc:
                raise StepFailed("sample", [str(exc)]) from None
            except Exception as exc:
                # A job's own failure (a Spark analysis error, a bug in a transform): the ▶ line above names
                # the job that was running.
                raise StepFailed("sample", [f"{type(exc).__name__}: {str(exc).strip()[:2000]}"]) from None
            note(f"{len(results)} job(s) ran into {lake}")

        with _step("outputs", echo) as note:
            from lakejobs.context import local_spark

            problems = output_problems(spark or local_spark(), group, lake, results)
            if problems:
                raise StepFailed("outputs", problems)
            outputs = [o.name for job in group.jobs for o in job.outputs]
            note(f"{', '.join(outputs)}: catalog columns, partition folders and manifests match group.yaml")

        with _step("synth", echo) as note:
            from lake_pipelines.checks import NagFindings

            try:
                assembly, stacks = synthesize_group(config, group_name, paths.jobs, Path(scratch) / "cdk.out")
            except (NagFindings, ValueError) as exc:
                raise StepFailed("synth", [str(exc)]) from None
            except Exception as exc:
                # A construct's own refusal (CDK raises RuntimeError through jsii) names the construct path.
                raise StepFailed("synth", [f"{type(exc).__name__}: {str(exc).strip()[:2000]}"]) from None
            note(f"{stacks} stack(s) for {', '.join(config.environment_names)} (shared + the group's), cdk-nag clean")

        with _step("cfn-lint", echo) as note:
            from lake_pipelines.checks import cfn_lint, templates

            errors = cfn_lint(assembly)
            if errors:
                raise StepFailed("cfn-lint", errors)
            note(f"{len(templates(assembly))} template(s) clean")
    return time.monotonic() - started


@contextmanager
def _step(name: str, echo: Echo) -> Iterator[Callable[[str], None]]:
    """Times a step; prints `✔ <step>: <notes> (<s> s)` only when the step ends without raising."""
    started = time.monotonic()
    notes: list[str] = []
    yield notes.append
    echo(f"✔ {name}: {'; '.join(notes)} ({time.monotonic() - started:.1f} s)")
