"""What every job group must satisfy on its shipped sample data: a new group folder is checked too.

The checks are `etl-jobs check`'s own (etl_jobs.group_check), so the command and the suite agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from etl_jobs.group_check import output_problems
from etl_jobs.local_runner import RunResult, run_sample
from etl_jobs.spec import JOBS_DIR, Group, discover

GROUPS = discover(JOBS_DIR)


@pytest.fixture(scope="module", params=GROUPS, ids=[g.name for g in GROUPS])
def sample_run(
    request: pytest.FixtureRequest, spark: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Group, Path, list[RunResult]]:
    group: Group = request.param
    out = tmp_path_factory.mktemp(f"{group.name}-lake")
    return group, out, run_sample(group.name, out, spark=spark, echo=lambda _line: None)


def test_outputs_match_the_catalog_columns_partitions_and_manifests(
    sample_run: tuple[Group, Path, list[RunResult]], spark: Any
) -> None:
    group, out, results = sample_run
    assert output_problems(spark, group, out, results) == []


def test_output_problems_are_found(sample_run: tuple[Group, Path, list[RunResult]], spark: Any) -> None:
    """The check above would pass vacuously if `output_problems` found nothing: break each fact it reads."""
    group, out, results = sample_run
    job = group.jobs[0]
    output = job.outputs[0]
    columns = {**output.columns, "not_written": "string"}
    changed = group.model_copy(
        update={
            "jobs": [
                job.model_copy(
                    update={
                        "outputs": [output.model_copy(update={"columns": columns}), *job.outputs[1:]],
                        "expected_min_rows": {output.name: 10**9},
                    }
                ),
                *group.jobs[1:],
            ]
        }
    )
    wrong_count = RunResult(
        results[0].group,
        results[0].job,
        results[0].run_id,
        {**results[0].counts, "written": {**results[0].counts["written"], output.name: -1}},
        results[0].seconds,
    )
    problems = output_problems(spark, changed, out, [wrong_count, *results[1:]])
    label = f"{group.name}/{job.name} output {output.name}"
    assert [p.partition(":")[0] for p in problems] == [label] * 3
    assert "not_written: string" in problems[0]
    assert "the run reported -1 written" in problems[1]
    assert "fewer than expected_min_rows 1000000000" in problems[2]
