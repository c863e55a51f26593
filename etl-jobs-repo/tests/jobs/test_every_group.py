"""What every job group must satisfy on its shipped sample data: a new group folder is checked too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from etl_jobs.local_runner import RunResult, lake_path, run_sample
from etl_jobs.spec import JOBS_DIR, Group, discover
from lakejobs.io import MANIFEST_FILE, read_manifest_rows

GROUPS = discover(JOBS_DIR)


@pytest.fixture(scope="module", params=GROUPS, ids=[g.name for g in GROUPS])
def sample_run(
    request: pytest.FixtureRequest, spark: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Group, Path, list[RunResult]]:
    group: Group = request.param
    out = tmp_path_factory.mktemp(f"{group.name}-lake")
    return group, out, run_sample(group.name, out, spark=spark, echo=lambda _line: None)


def test_catalog_columns_declared_in_the_spec_match_the_files(
    sample_run: tuple[Group, Path, list[RunResult]], written_columns: Any
) -> None:
    group, out, _ = sample_run
    for job in group.jobs:
        for output in job.outputs:
            root = lake_path(out, output)
            assert written_columns(root) == output.columns, f"{job.name}: {output.name}"
            # The declared partition columns are the directory levels above every data file, outermost first.
            for file in root.rglob("*.parquet"):
                levels = [part.partition("=")[0] for part in file.relative_to(root).parts[:-1]]
                assert levels == output.partition_by, f"{job.name}: {output.name}: {file}"


def test_each_output_manifest_holds_the_rows_written_and_meets_the_check(
    sample_run: tuple[Group, Path, list[RunResult]],
) -> None:
    group, out, results = sample_run
    for job, result in zip(group.jobs, results, strict=True):
        for output in job.outputs:
            rows = read_manifest_rows((lake_path(out, output) / MANIFEST_FILE).read_text())
            assert rows == result.counts["written"][output.name], f"{job.name}: {output.name}"
            assert rows >= job.expected_min_rows.get(output.name, 0)
