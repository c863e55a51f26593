"""legislators: the conform and enrich transforms, and both jobs end to end on the shipped sample data."""

from __future__ import annotations

import importlib.util
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from etl_jobs.local_runner import RunResult, lake_path, quarantine_path, run_job, run_sample
from etl_jobs.spec import JOBS_DIR, load_group


def script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"legislators_{name}", JOBS_DIR / "legislators" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


conform, enrich = script("conform"), script("enrich")


def test_enrich_reads_what_conform_writes() -> None:
    assert enrich.PERSONS == conform.PERSONS
    assert enrich.MEMBERSHIPS == conform.MEMBERSHIPS
    assert enrich.ORGANIZATIONS == conform.ORGANIZATIONS


def test_conform_persons_trims_and_normalises(spark: Any, same_rows: Any) -> None:
    raw = spark.createDataFrame([(" p1 ", "  Ann  Lee ", None, "", " Female", date(1950, 1, 2), None)], conform.PERSONS)
    expected = spark.createDataFrame(
        [("p1", "Ann  Lee", None, None, "female", date(1950, 1, 2), None)], conform.PERSONS
    )
    same_rows(conform.conform_persons(raw), expected)


def test_history_joins_and_keeps_orphans_with_reasons(spark: Any) -> None:
    persons = spark.createDataFrame([("p1", "Ann", None, None, "female", date(1950, 1, 1), None)], conform.PERSONS)
    organizations = spark.createDataFrame([("house", "House", "legislature")], conform.ORGANIZATIONS)
    memberships = spark.createDataFrame(
        [
            ("p1", "house", "representative", date(2000, 1, 3), date(2010, 1, 3)),
            ("p1", "house", "representative", date(2012, 1, 3), None),
            ("p9", "house", "representative", date(2001, 1, 3), None),
            ("p1", "party/x", "member", date(1999, 1, 1), None),
        ],
        conform.MEMBERSHIPS,
    )
    history, orphans = enrich.legislator_history(persons, memberships, organizations)
    rows = sorted(history.collect(), key=lambda r: r.start_date)
    assert [(r.person_name, r.organization_name, r.years_served, r.is_current) for r in rows] == [
        ("Ann", "House", 10.0, False),
        ("Ann", "House", None, True),
    ]
    assert history.columns[-1] == "organization_type"
    assert sorted(r.reason for r in orphans.collect()) == ["unknown organization_id party/x", "unknown person_id p9"]


@pytest.fixture(scope="module")
def lake(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[RunResult]]:
    out = tmp_path_factory.mktemp("legislators-lake")
    return out, run_sample("legislators", out, spark=spark, echo=lambda _line: None)


def test_sample_run_produces_the_documented_counts(lake: tuple[Path, list[RunResult]]) -> None:
    _, (conformed, enriched) = lake
    assert conformed.counts == {
        "read": {"raw_memberships": 29, "raw_organizations": 6, "raw_persons": 15},
        "written": {"memberships": 26, "organizations": 5, "persons": 12},
        "quarantined": {"memberships": 3, "organizations": 1, "persons": 3},
    }
    assert enriched.counts == {
        "read": {"memberships": 26, "organizations": 5, "persons": 12},
        "written": {"history": 24},
        "quarantined": {"memberships": 2},
    }


def test_sample_outputs_and_quarantine_on_disk(spark: Any, lake: tuple[Path, list[RunResult]]) -> None:
    out, _ = lake
    history = spark.read.parquet(str(out / "curated/legislators/history"))
    by_type = {r.organization_type: r["count"] for r in history.groupBy("organization_type").count().collect()}
    assert by_type == {"legislature": 13, "party": 11}
    assert history.where("person_id = 'p01'").count() == 3
    quarantine = spark.read.json(str(out / "conformed/quarantine/legislators/conform"))
    reasons = {r.reason for r in quarantine.collect()}
    assert "end_date before start_date" in reasons
    assert "missing required field(s): id" in reasons
    assert any(reason.startswith("classification must be one of") for reason in reasons)
    assert quarantine.count() == 7


def test_a_second_delivery_supersedes_the_first_instead_of_multiplying_history(spark: Any, tmp_path: Path) -> None:
    out = tmp_path / "lake"
    run_sample("legislators", out, spark=spark, echo=lambda _line: None)
    # The next delivery repeats every file under a later name, with one person renamed.
    raw = out / "raw/legislators"
    for dataset in ("persons", "memberships", "organizations"):
        first = raw / dataset / f"{dataset}.json"
        text = first.read_text()
        if dataset == "persons":
            text = text.replace('"name": "Avery Stone"', '"name": "Avery Stone-Hale"')
        (raw / dataset / "2024-06-01").mkdir()
        (raw / dataset / "2024-06-01" / f"{dataset}.json").write_text(text)
    group = load_group(JOBS_DIR / "legislators")
    results = [
        run_job(
            "legislators",
            job.name,
            {loc.name: lake_path(out, loc) for loc in job.inputs},
            {loc.name: lake_path(out, loc) for loc in job.outputs},
            quarantine=quarantine_path(out, group, job),
            spark=spark,
            echo=lambda _line: None,
        )
        for job in group.jobs
    ]
    assert results[0].counts["read"] == {"raw_memberships": 58, "raw_organizations": 12, "raw_persons": 30}
    assert results[0].counts["written"] == {"memberships": 26, "organizations": 5, "persons": 12}
    assert results[1].counts["written"] == {"history": 24}
    history = spark.read.parquet(str(out / "curated/legislators/history"))
    assert {r.person_name for r in history.where("person_id = 'p01'").collect()} == {"Avery Stone-Hale"}
