"""How job groups map onto stacks: one stack per group, split into numbered parts before a CloudFormation limit.

CloudFormation refuses a template with more than 500 resources, 200 parameters or 1 MB of JSON. The
numbers below are what a job costs in the group stack's template (measured by the 500-job test, which
fails if they are ever wrong); parts are planned against budgets kept well below the hard limits so a
group never fails to deploy because it grew by a job.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from datalake_config import EnvironmentNames
from etl_jobs.spec import GROUP_FILE, Group, Job, SpecError

MAX_RESOURCES = 500
MAX_TEMPLATE_BYTES = 1_000_000
MAX_PARAMETERS = 200

RESOURCE_BUDGET = 420
TEMPLATE_BYTES_BUDGET = 850_000

# Per stack: state machine, its role/policy/log group, failed-executions alarm, two trigger rules and the rule
# freeing the lock of a stopped execution, with their role/policy, and the CDK metadata resource.
STACK_RESOURCES = 13
# Per job: Glue job, role, role policy, its two log groups (output, error); plus one catalog table per output.
JOB_RESOURCES = 5
# One job-failure rule per this many jobs (an EventBridge pattern is limited in size).
JOBS_PER_FAILURE_RULE = 25

# Template bytes as CDK writes them (indented JSON, which is what CloudFormation receives). Size binds long
# before the resource count: a job's role policy, Glue job, two log groups, state machine states (run, counts,
# audit) and the reasons of its acknowledged cdk-nag findings take about 18 kB. A stack's own part, about 37 kB,
# is mostly the state machine's single-flight states (etl_jobs.orchestration) and its role.
# Each dataset prefix a job reads or writes (its inputs, outputs, quarantine and staging) is granted as three
# object keys (`prefix/*`, and the two EMRFS keys beside it) and four listed prefixes.
STACK_BYTES = 40_000
JOB_BYTES = 18_600
INPUT_BYTES = 1_050
OUTPUT_BYTES = 1_650
COLUMN_BYTES = 60
# A job with a partitioned output registers partitions: a catalog statement and a KMS-through-Glue statement
# in its role policy; each partitioned output adds its table ARN there, a `--catalog_tables` entry and a
# `--partition_by_<output>` argument; each partition key a catalog PartitionKeys entry. Measured at about
# 1.47 kB for a job with one output partitioned by one key.
PARTITIONED_JOB_BYTES = 1_100
PARTITIONED_OUTPUT_BYTES = 300
PARTITION_KEY_BYTES = 100

# Step Functions and Glue name limits.
MAX_STATE_MACHINE_NAME = 80
MAX_GLUE_JOB_NAME = 255


class LayoutError(ValueError):
    """Groups that cannot be deployed side by side; the message names the groups and jobs."""


@dataclass(frozen=True)
class StackPart:
    """The jobs of one group that one stack deploys; `number` counts from 1, of `count` parts."""

    group: Group
    number: int
    count: int
    jobs: tuple[Job, ...]

    @property
    def is_entry(self) -> bool:
        """The first part owns the group's triggers and starts the chain of parts."""
        return self.number == 1

    @property
    def is_last(self) -> bool:
        return self.number == self.count

    def component(self) -> str:
        """`group-<name>[-<number>]`; stack names allow no underscores (state machine names follow the same scheme,
        so `check_names` catching a state machine clash also catches a stack name clash)."""
        suffix = "" if self.number == 1 else f"-{self.number}"
        return f"group-{self.group.name}{suffix}".replace("_", "-")


def job_resources(job: Job) -> int:
    return JOB_RESOURCES + len(job.outputs)


def job_bytes(job: Job) -> int:
    columns = sum(len(output.columns) for output in job.outputs)
    arguments = sum(len(key) + len(value) + 20 for key, value in job.arguments.items())
    partitioned = [output for output in job.outputs if output.partition_by]
    partitions = (
        PARTITIONED_JOB_BYTES
        + PARTITIONED_OUTPUT_BYTES * len(partitioned)
        + PARTITION_KEY_BYTES * sum(len(output.partition_by) for output in partitioned)
        if partitioned
        else 0
    )
    return (
        JOB_BYTES
        + INPUT_BYTES * len(job.inputs)
        + OUTPUT_BYTES * len(job.outputs)
        + COLUMN_BYTES * columns
        + partitions
        + arguments
        + len(job.description)
    )


def plan_parts(group: Group) -> list[StackPart]:
    """Split `group` in job order into as few parts as the budgets allow."""
    chunks: list[list[Job]] = [[]]
    resources, size = STACK_RESOURCES, STACK_BYTES
    for job in group.jobs:
        extra_rule = 1 if len(chunks[-1]) % JOBS_PER_FAILURE_RULE == 0 else 0
        cost, cost_bytes = job_resources(job) + extra_rule, job_bytes(job)
        if chunks[-1] and (resources + cost > RESOURCE_BUDGET or size + cost_bytes > TEMPLATE_BYTES_BUDGET):
            chunks.append([])
            resources, size = STACK_RESOURCES, STACK_BYTES
            cost = job_resources(job) + 1
        chunks[-1].append(job)
        resources += cost
        size += cost_bytes
    return [StackPart(group, n, len(chunks), tuple(jobs)) for n, jobs in enumerate(chunks, start=1)]


def check_zones(groups: list[Group], zones: tuple[str, ...]) -> None:
    """Every input and output names a zone of the config: its bucket and database come from the contract."""
    for group in groups:
        for job in group.jobs:
            for kind, locations in (("inputs", job.inputs), ("outputs", job.outputs)):
                for location in locations:
                    if location.zone not in zones:
                        raise SpecError(
                            f"{group.folder / GROUP_FILE}: jobs.{job.name}.{kind}.{location.name}.zone: "
                            f"unknown zone {location.zone!r}; configured: {', '.join(zones)}"
                        )


def check_names(groups: list[Group], names: EnvironmentNames) -> None:
    """Physical names must be unique and valid: `a_b`/`c` and `a`/`b_c` both become `...-a-b-c`.

    Zones are checked first: every name below assumes a configured zone.
    """
    check_zones(groups, names.zones)
    job_names = Counter(names.glue_job_name(g.name, j.name) for g in groups for j in g.jobs)
    clashes = sorted(name for name, count in job_names.items() if count > 1)
    if clashes:
        owners = [
            f"{g.name}/{j.name}" for g in groups for j in g.jobs if names.glue_job_name(g.name, j.name) in clashes
        ]
        raise LayoutError(f"jobs {', '.join(owners)} map to the same Glue job name ({', '.join(clashes)}): rename one")
    too_long = [name for name in job_names if len(name) > MAX_GLUE_JOB_NAME]
    if too_long:
        raise LayoutError(f"Glue job names longer than {MAX_GLUE_JOB_NAME} characters: {', '.join(too_long)}")
    machines: Counter[str] = Counter()
    for group in groups:
        for part in plan_parts(group):
            name = names.state_machine_name(group.name, part.number)
            machines[name] += 1
            if len(name) > MAX_STATE_MACHINE_NAME:
                raise LayoutError(
                    f"group {group.name}: state machine name {name!r} is longer than {MAX_STATE_MACHINE_NAME} "
                    "characters; shorten the group name"
                )
    clashing_machines = sorted(name for name, count in machines.items() if count > 1)
    if clashing_machines:
        raise LayoutError(
            f"groups map to the same state machine name ({', '.join(clashing_machines)}): rename one group"
        )
    tables: Counter[tuple[str, str]] = Counter(
        (out.zone, catalog_table_name(g, out.name)) for g in groups for j in g.jobs for out in j.outputs
    )
    clashing_tables = sorted(f"{zone}.{table}" for (zone, table), count in tables.items() if count > 1)
    if clashing_tables:
        raise LayoutError(
            f"outputs map to the same catalog table ({', '.join(clashing_tables)}): output names must be unique "
            "per group and zone"
        )


def catalog_table_name(group: Group, output_name: str) -> str:
    """The Glue catalog table of an output, in its zone's database."""
    return f"{group.name}_{output_name}"
