"""`etl-jobs list|run|run-sample`: usage errors exit non-zero with a clear message; a real local run.

(`etl-jobs new` and `check` are tested in test_scaffold.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from etl_jobs.cli import main as etl_jobs
from etl_jobs.local_runner import SAMPLE_DATA_DIR


def test_list_shows_groups_triggers_jobs_locations_and_partitions(capsys: pytest.CaptureFixture[str]) -> None:
    assert etl_jobs(["list"]) == 0
    out = capsys.readouterr().out
    assert "legislators  (started by objects created under raw/legislators/)" in out
    assert "customer_cdc  (started by objects created under raw/customer_cdc/; prod/schedule: rate(1 hour))" in out
    assert "customer_cdc/merge_current  [bookmarks]" in out
    assert "raw_persons (raw:legislators/persons/ json)" in out
    assert "history (curated:legislators/history/ parquet, partitioned by organization_type)" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "legislators"], "expected GROUP/JOB, got 'legislators'"),
        (["run", "legislators/conform", "--input", "raw_persons"], "--input 'raw_persons': expected NAME=VALUE"),
        (["run", "nope/x"], "no job group 'nope'"),
        (["run", "legislators/conform", "--input", "raw_persons=a"], "missing input(s) raw_memberships"),
        (["run-sample", "nope", "--out", "x"], "no job group 'nope'"),
    ],
)
def test_refusals_exit_1_naming_the_problem(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert etl_jobs(argv) == 1
    assert message in capsys.readouterr().err


def test_run_one_job_locally_prints_progress_and_counts(
    spark: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = SAMPLE_DATA_DIR / "customer_cdc/raw/customer_cdc/events"
    argv = [
        "run",
        "customer_cdc/conform_events",
        "--input",
        f"raw_events={raw}",
        "--output",
        f"events={tmp_path / 'events'}",
        "--quarantine",
        str(tmp_path / "quarantine"),
        "--arg",
        "max_malformed_fraction=0.2",
    ]
    assert etl_jobs(argv) == 0
    out = capsys.readouterr().out
    assert "▶ customer_cdc/conform_events" in out
    assert "'max_malformed_fraction': '0.2'" in out
    assert "quarantined 5 malformed events record(s)" in out
    assert [line.split() for line in out.splitlines() if line.strip().startswith("raw_events")] == [
        ["raw_events", "29", "-", "-"]
    ]
    quarantined = [
        json.loads(line) for f in (tmp_path / "quarantine").rglob("*.json") for line in f.read_text().splitlines()
    ]
    assert len(quarantined) == 5
    # A stricter limit stops the run after quarantining, through the same CLI, with exit 1.
    argv[-1] = "max_malformed_fraction=0.1"
    assert etl_jobs(argv) == 1
    assert "events: 5 of 29 records malformed (17%), above the limit of 10%" in capsys.readouterr().err
