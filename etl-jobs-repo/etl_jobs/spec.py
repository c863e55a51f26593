"""Job groups as folders: `jobs/<group>/group.yaml` declares the jobs; `overrides.yaml` tunes them per environment.

A group folder holds the job scripts (uploaded as Glue script assets), `group.yaml` and optionally
`overrides.yaml` whose keys follow `<env>/jobs/<job>/<parameter>` (or `<env>/<group parameter>`):

    prod/jobs/enrich_persons/workers: 10
    prod/schedule: cron(0 4 * * ? *)

Adding a group is adding a folder: the CDK app and the local runner both discover groups here.
Paths in this module and in `etl-jobs` are relative to this repository's folder (`etl-jobs-repo/`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# The repository's folder: `jobs/`, `sample-data/` and `tests/` sit directly under it.
REPOSITORY_DIR = Path(__file__).resolve().parents[1]
JOBS_DIR = REPOSITORY_DIR / "jobs"
GROUP_FILE = "group.yaml"
OVERRIDES_FILE = "overrides.yaml"

NAME_RE = r"^[a-z][a-z0-9_]{1,39}$"
PREFIX_RE = r"^([a-z0-9][a-z0-9_\-]*/)+$"  # S3 key prefix, ending in '/'
ARG_RE = r"^--[a-z][a-z0-9_\-]*$"
COLUMN_RE = r"^[a-z_][a-z0-9_]{0,127}$"
HIVE_TYPE_RE = r"^(string|boolean|tinyint|smallint|int|bigint|float|double|date|timestamp|binary|decimal\(\d+,\d+\))$"
SCHEDULE_RE = r"^(cron\(.+\)|rate\(\d+ (minute|minutes|hour|hours|day|days)\))$"
# Malformed records of a job go under quarantine/<group>/<job>/ in the zone of its first output.
QUARANTINE_ROOT = "quarantine/"

WorkerType = Literal["G.025X", "G.1X", "G.2X", "G.4X", "G.8X"]
# Glue offers G.025X to streaming jobs only; every job here is a batch (glueetl) job.
STREAMING_ONLY_WORKER_TYPES = frozenset({"G.025X"})
# An input named `previous_<output>` re-reads what the job itself wrote last time (a merge's current state).
PREVIOUS_INPUT_PREFIX = "previous_"
Name = Annotated[str, Field(pattern=NAME_RE)]
ColumnName = Annotated[str, Field(pattern=COLUMN_RE)]
HiveType = Annotated[str, Field(pattern=HIVE_TYPE_RE)]
# A job learns each output's partition columns from `--partition_by_<output> a,b` (lakejobs.args `tuple`).
PARTITION_ARGUMENT_PREFIX = "--partition_by_"


class SpecError(ValueError):
    """A group spec or override that cannot be used; the message names the file and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Location(_Strict):
    """A dataset a job reads or writes: a zone bucket (from the infra contract) and a key prefix."""

    name: Name
    zone: Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{1,19}$")]
    prefix: Annotated[str, Field(pattern=PREFIX_RE)]
    format: Literal["json", "csv", "parquet"] = "parquet"
    columns: dict[ColumnName, HiveType] = Field(
        default_factory=dict,
        description="output schema for its Glue catalog table (column: Hive type), in order; data files only",
    )
    partition_by: list[ColumnName] = Field(
        default_factory=list, description="partition columns, outermost first: directories <column>=<value>"
    )
    partition_types: dict[ColumnName, HiveType] = Field(
        default_factory=dict, description="Hive type of every partition column (the catalog's partition keys)"
    )

    @model_validator(mode="after")
    def _partitions_typed(self) -> Location:
        duplicates = sorted({c for c in self.partition_by if self.partition_by.count(c) > 1})
        if duplicates:
            raise ValueError(f"{self.name}: partition_by: listed twice: {', '.join(duplicates)}")
        untyped = [c for c in self.partition_by if c not in self.partition_types]
        if untyped:
            raise ValueError(f"{self.name}: partition_types: no Hive type for partition column(s) {', '.join(untyped)}")
        unused = sorted(set(self.partition_types) - set(self.partition_by))
        if unused:
            raise ValueError(f"{self.name}: partition_types: {', '.join(unused)} not in partition_by")
        both = sorted(set(self.partition_by) & set(self.columns))
        if both:
            # Spark writes a partition column into the directory names, not the files: declaring it twice
            # would give the catalog table a duplicate column.
            raise ValueError(f"{self.name}: partition column(s) {', '.join(both)} must not also be in columns")
        return self


class Job(_Strict):
    """One Glue PySpark job: `<script>` in the group folder, run with `--input_<name>`/`--output_<name>` paths."""

    name: Name
    script: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*\.py$")]
    description: str = ""
    inputs: list[Location] = Field(min_length=1)
    outputs: list[Location] = Field(min_length=1)
    worker_type: WorkerType = "G.1X"
    workers: int = Field(default=2, ge=2, le=299)
    timeout_minutes: int = Field(default=60, ge=1, le=2880)
    max_retries: int = Field(default=0, ge=0, le=10)
    bookmarks: bool = Field(default=False, description="incremental: Glue job bookmarks track processed input")
    needs_vpc: bool = Field(default=False, description="attach the Glue network connection in private subnets")
    quarantine: bool = Field(default=True, description="malformed records go to the quarantine prefix, counted")
    arguments: dict[Annotated[str, Field(pattern=ARG_RE)], str] = Field(default_factory=dict)
    expected_min_rows: dict[Name, int] = Field(
        default_factory=dict, description="per output: rows the integration check requires at least"
    )

    @field_validator("worker_type")
    @classmethod
    def _batch_worker_type(cls, worker_type: str) -> str:
        if worker_type in STREAMING_ONLY_WORKER_TYPES:
            raise ValueError(
                f"{worker_type} is for Glue streaming jobs only; a batch job needs G.1X or larger "
                "(the job would fail to start)"
            )
        return worker_type

    @model_validator(mode="after")
    def _previous_inputs_are_their_outputs(self) -> Job:
        # A previous input that points anywhere else reads as empty: the merge would then rebuild its partitions
        # without their rows and rewrite the tombstones as empty, so deleted keys come back. Refused here.
        outputs = {output.name: output for output in self.outputs}
        for location in self.inputs:
            if not location.name.startswith(PREVIOUS_INPUT_PREFIX):
                continue
            output_name = location.name.removeprefix(PREVIOUS_INPUT_PREFIX)
            output = outputs.get(output_name)
            if output is None:
                raise ValueError(
                    f"inputs.{location.name}: a '{PREVIOUS_INPUT_PREFIX}<output>' input re-reads that output, but "
                    f"this job has no output {output_name} (outputs: {', '.join(outputs)})"
                )
            if (location.zone, location.prefix, location.format) != (output.zone, output.prefix, output.format):
                raise ValueError(
                    f"inputs.{location.name}: must be the location of output {output.name} "
                    f"({output.zone}:{output.prefix}, {output.format}), got "
                    f"{location.zone}:{location.prefix}, {location.format}"
                )
        return self

    @model_validator(mode="after")
    def _names_unique(self) -> Job:
        names = [loc.name for loc in (*self.inputs, *self.outputs)]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"input/output names must be unique within a job: {', '.join(duplicates)}")
        unknown = sorted(set(self.expected_min_rows) - {o.name for o in self.outputs})
        if unknown:
            raise ValueError(f"expected_min_rows names unknown outputs: {', '.join(unknown)}")
        partitioned_inputs = [loc.name for loc in self.inputs if loc.partition_by]
        if partitioned_inputs:
            raise ValueError(
                f"inputs {', '.join(partitioned_inputs)}: partition_by is declared on the output of the job that "
                "writes a dataset, not where it is read"
            )
        return self

    def partition_arguments(self) -> dict[str, str]:
        """`--partition_by_<output>: a,b` for every partitioned output: how the job gets the declared layout."""
        return {
            f"{PARTITION_ARGUMENT_PREFIX}{output.name}": ",".join(output.partition_by)
            for output in self.outputs
            if output.partition_by
        }

    def quarantine_location(self, group_name: str) -> tuple[str, str]:
        """(zone, key prefix) of this job's quarantine: what the deployed role, its argument and local runs use.

        The zone of the first output, because the job's role already writes there and the quarantined records
        sit next to the data they were kept out of.
        """
        return self.outputs[0].zone, f"{QUARANTINE_ROOT}{group_name}/{self.name}/"


class Group(_Strict):
    """A job group: its jobs run in order (raw → conformed → curated) in one state machine."""

    name: Name
    description: str = ""
    raw_prefix: Annotated[str | None, Field(pattern=PREFIX_RE)] = Field(
        default=None, description="start the group when an object is created under this raw-zone prefix"
    )
    schedule: Annotated[str | None, Field(pattern=SCHEDULE_RE)] = None
    jobs: list[Job] = Field(min_length=1)
    folder: Path = Field(exclude=True)

    @model_validator(mode="after")
    def _consistent(self) -> Group:
        names = [job.name for job in self.jobs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"job names must be unique within a group: {', '.join(duplicates)}")
        if self.raw_prefix is None and self.schedule is None:
            raise ValueError("a group needs raw_prefix (event trigger), schedule, or both")
        return self

    def trigger_text(self) -> str:
        """What starts the group, in words: `etl-jobs list` and `etl-jobs check` show it."""
        triggers = []
        if self.raw_prefix is not None:
            triggers.append(f"objects created under raw/{self.raw_prefix}")
        if self.schedule is not None:
            triggers.append(f"schedule {self.schedule}")
        return " or ".join(triggers)

    def job(self, name: str) -> Job:
        for job in self.jobs:
            if job.name == name:
                return job
        raise KeyError(f"group {self.name!r} has no job {name!r}; jobs: {', '.join(j.name for j in self.jobs)}")

    def script_path(self, job: Job) -> Path:
        return self.folder / job.script

    def zones(self) -> set[str]:
        return {loc.zone for job in self.jobs for loc in (*job.inputs, *job.outputs)}


def load_group(folder: Path, env: str | None = None, env_names: Sequence[str] | None = None) -> Group:
    """Load `folder/group.yaml`, applying `overrides.yaml` entries for `env` when given.

    With `env_names` (the configured environments), an override naming any other environment is an
    error: a typo such as `prdo/jobs/x/workers` must not be silently ignored.
    """
    spec_file = folder / GROUP_FILE
    raw = _read_yaml(spec_file)
    if not isinstance(raw, Mapping):
        raise SpecError(f"{spec_file}: must be a mapping")
    data: dict[str, Any] = {**raw, "name": raw.get("name", folder.name), "folder": folder}
    if data["name"] != folder.name:
        raise SpecError(f"{spec_file}: name: must equal the folder name {folder.name!r}, got {data['name']!r}")
    split = _types_split_at_a_comma(data)
    if split:
        raise SpecError(f"{spec_file}: {'; '.join(split)}")
    if env is not None:
        data = _apply_overrides(data, folder / OVERRIDES_FILE, env, env_names)
    try:
        group = Group.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_field_path(data, e['loc']) or '(top level)'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise SpecError(f"{spec_file}: {problems}") from None
    for job in group.jobs:
        if not group.script_path(job).is_file():
            raise SpecError(f"{spec_file}: jobs.{job.name}.script: {job.script} not found in {folder.name}/")
    return group


def _field_path(data: Mapping[str, Any], loc: Sequence[int | str]) -> str:
    """A validation error's location with jobs, inputs and outputs named rather than numbered.

    `jobs.conform.outputs.persons.columns` says where to look in group.yaml; `jobs.0.outputs.2.columns` does not.
    """
    parts: list[str] = []
    node: Any = data
    for step in loc:
        item: Any = None
        if isinstance(node, Mapping):
            item = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            item = node[step]
        name = (
            item.get("name")
            if isinstance(item, Mapping) and parts[-1:] in (["jobs"], ["inputs"], ["outputs"])
            else None
        )
        parts.append(name if isinstance(name, str) and name else str(step))
        node = item
    return ".".join(parts)


# What YAML leaves of `decimal(10,2)` in a flow-style map `{amount: decimal(10,2)}`: a plain value ends at a
# comma there, so the type becomes `decimal(10` and `2)` turns into a key of its own (with no value).
_SPLIT_TYPE_HEAD = re.compile(r"^decimal\(\s*\d+\s*$")
_SPLIT_TYPE_TAIL = re.compile(r"^\s*\d+\s*\)$")


def _types_split_at_a_comma(data: Mapping[str, Any]) -> list[str]:
    """Column types YAML cut in two, each named by its field, with the fix (quoting) in the message."""
    problems: list[str] = []
    jobs = data.get("jobs")
    for job_index, job in enumerate(jobs if isinstance(jobs, list) else []):
        if not isinstance(job, Mapping):
            continue
        for kind in ("inputs", "outputs"):
            locations = job.get(kind)
            for location_index, location in enumerate(locations if isinstance(locations, list) else []):
                if not isinstance(location, Mapping):
                    continue
                for field in ("columns", "partition_types"):
                    types = location.get(field)
                    if not isinstance(types, Mapping):
                        continue
                    path = _field_path(data, ["jobs", job_index, kind, location_index, field])
                    heads = [(str(c), t) for c, t in types.items() if isinstance(t, str) and _SPLIT_TYPE_HEAD.match(t)]
                    tails = [str(c) for c, t in types.items() if t is None and _SPLIT_TYPE_TAIL.match(str(c))]
                    # Each split leaves its head and tail in map order, so the n-th head goes with the n-th tail.
                    paired = len(heads) == len(tails)
                    for number, (column, head) in enumerate(heads):
                        whole = f"{head},{tails[number]}" if paired else f"{head},<scale>)"
                        left = f"{column}: {head!r}" + (f" and a key {tails[number]!r}" if paired else "")
                        problems.append(
                            f"{path}.{column}: YAML split the type {whole} at its comma (in a flow-style map {{...}} "
                            f"an unquoted value ends at ','), leaving {left}; quote the type: "
                            f'{{{column}: "{whole}"}}, or write the map one column per line'
                        )
                    if tails and not heads:
                        problems.append(
                            f"{path}: key {tails[0]!r} is the tail of a type YAML split at its comma (in a flow-style "
                            "map {...} an unquoted value ends at ','); quote the type, e.g. {amount: \"decimal(10,2)\"}"
                        )
    return problems


def discover(jobs_dir: Path = JOBS_DIR, env: str | None = None, env_names: Sequence[str] | None = None) -> list[Group]:
    """Every group folder (one holding group.yaml), sorted by name for deterministic synth."""
    folders = sorted(p.parent for p in jobs_dir.glob(f"*/{GROUP_FILE}"))
    return [load_group(folder, env, env_names) for folder in folders]


def trigger_overrides(folder: Path) -> dict[str, str]:
    """`<env>/schedule` and `<env>/raw_prefix` entries of the group's overrides.yaml: triggers that differ per
    environment, which a listing without a config must still show."""
    overrides_file = folder / OVERRIDES_FILE
    overrides = _read_yaml(overrides_file) if overrides_file.exists() else None
    if not isinstance(overrides, Mapping):
        return {}
    return {
        str(key): str(value)
        for key, value in overrides.items()
        if re.fullmatch(r"[a-z][a-z0-9]*/(schedule|raw_prefix)", str(key))
    }


def _apply_overrides(
    data: dict[str, Any], overrides_file: Path, env: str, env_names: Sequence[str] | None
) -> dict[str, Any]:
    if not overrides_file.exists():
        return data
    overrides = _read_yaml(overrides_file) or {}
    if not isinstance(overrides, Mapping):
        raise SpecError(f"{overrides_file}: must be a mapping of '<env>/jobs/<job>/<parameter>: value'")
    jobs = [dict(job) for job in data.get("jobs", [])]
    result = {**data, "jobs": jobs}
    for key, value in overrides.items():
        match = re.fullmatch(r"([a-z][a-z0-9]*)/(?:jobs/([a-z][a-z0-9_]*)/)?([a-z_]+)", str(key))
        if not match:
            raise SpecError(
                f"{overrides_file}: {key}: keys look like '<env>/jobs/<job>/<parameter>' or '<env>/<parameter>'"
            )
        key_env, job_name, parameter = match.groups()
        if env_names is not None and key_env not in env_names:
            raise SpecError(
                f"{overrides_file}: {key}: unknown environment {key_env!r}; configured: {', '.join(env_names)}"
            )
        if key_env != env:
            continue
        if job_name is None:
            if parameter not in ("schedule", "raw_prefix"):
                raise SpecError(f"{overrides_file}: {key}: only schedule and raw_prefix can be overridden per group")
            result[parameter] = value
            continue
        target = next((job for job in jobs if job.get("name") == job_name), None)
        if target is None:
            raise SpecError(f"{overrides_file}: {key}: no job {job_name!r} in this group")
        if parameter not in Job.model_fields or parameter in ("name", "script", "inputs", "outputs"):
            raise SpecError(f"{overrides_file}: {key}: {parameter!r} cannot be overridden")
        target[parameter] = value
    return result


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML ({exc})") from None
