"""customer_cdc: conform rules, the merge job end to end on the sample data, and an idempotent rerun."""

from __future__ import annotations

import importlib.util
import json
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from etl_jobs.local_runner import RunResult, lake_path, quarantine_path, run_job, run_sample
from etl_jobs.spec import JOBS_DIR, load_group
from lakejobs.io import MANIFEST_FILE


def script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"customer_cdc_{name}", JOBS_DIR / "customer_cdc" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


conform_events, merge_current = script("conform_events"), script("merge_current")


def test_both_jobs_agree_on_the_feed() -> None:
    assert conform_events.CDC == merge_current.CDC
    raw = {f.name: f.dataType for f in conform_events.RAW_EVENTS.fields}
    conformed = {f.name: f.dataType for f in merge_current.EVENTS.fields}
    assert raw == {k: v for k, v in conformed.items() if k != "event_date"}


def test_conform_events_normalises_and_flags_bad_events(spark: Any) -> None:
    ts = datetime(2024, 3, 1, 9)
    raw = spark.createDataFrame(
        [
            ("c1", "U", ts, 1, "N", " A@B.com ", " de ", "Berlin", "Gold"),
            ("c2", "X", ts, 1, "N", "a@b.com", "DE", "Berlin", "gold"),
            ("c3", "U", ts, 1, "N", "a@b.com", " ", "Berlin", "gold"),
            ("c4", "D", ts, 1, None, None, None, None, None),
        ],
        conform_events.RAW_EVENTS,
    )
    from lakejobs.io import split_malformed

    good, malformed = split_malformed(raw, rules=conform_events.event_rules())
    conformed = {r.customer_id: r for r in conform_events.conform_events(good).collect()}
    assert sorted(conformed) == ["c1", "c4"]
    assert (conformed["c1"].email, conformed["c1"].country, conformed["c1"].tier) == ("a@b.com", "DE", "gold")
    assert str(conformed["c1"].event_date) == "2024-03-01"
    reasons = sorted(r.reason for r in malformed.collect())
    assert reasons[0].startswith("op must be one of")
    assert reasons[1].startswith("upsert without a country")


@pytest.fixture(scope="module")
def lake(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[RunResult]]:
    out = tmp_path_factory.mktemp("cdc-lake")
    return out, run_sample("customer_cdc", out, spark=spark, echo=lambda _line: None)


EXPECTED_CURRENT = {
    "c001": ("ines.aalto@example.com", "DE", "gold"),  # update wins; the later-arriving older event does not
    "c003": ("lea@example.com", "DE", "silver"),  # moved FR → DE
    "c004": ("nils@example.com", "FR", "platinum"),  # same timestamp, higher sequence wins
    "c005": ("rosa@example.com", "IT", "silver"),
    "c006": ("theo@example.com", "IT", "bronze"),  # its op "X" event was quarantined
    "c007": ("mila@example.com", "ES", "gold"),  # its unparseable timestamp event was quarantined
    "c008": ("jon@example.com", "ES", "silver"),  # its upsert without country was quarantined
    "c009": ("ada@example.com", "DE", "bronze"),
    "c010": ("eli@example.com", "FR", "silver"),
    "c011": ("noa@example.com", "IT", "gold"),  # e-mail normalised
    "c012": ("ivo@example.com", "ES", "bronze"),
    "c013": ("sami@example.com", "PT", "bronze"),
}


def test_sample_run_produces_the_documented_counts(lake: tuple[Path, list[RunResult]]) -> None:
    _, (conformed, merged) = lake
    assert conformed.counts == {
        "read": {"raw_events": 29},
        "written": {"events": 23},
        "quarantined": {"events": 5},
    }
    assert merged.counts == {
        "read": {"events": 23, "previous_current": 0, "previous_tombstones": 0},
        "written": {"current": 12, "tombstones": 3},
        "quarantined": {},
    }


def test_current_state_and_tombstones(spark: Any, lake: tuple[Path, list[RunResult]]) -> None:
    out, _ = lake
    current = spark.read.parquet(str(out / "curated/customer_cdc/current"))
    assert {r.customer_id: (r.email, r.country, r.tier) for r in current.collect()} == EXPECTED_CURRENT
    assert sorted(p.name for p in (out / "curated/customer_cdc/current").iterdir() if p.is_dir()) == [
        "country=DE",
        "country=ES",
        "country=FR",
        "country=IT",
        "country=PT",
    ]
    tombstones = spark.read.parquet(str(out / "curated/customer_cdc/tombstones"))
    assert sorted(r.customer_id for r in tombstones.collect()) == ["c002", "c014", "c015"]


def test_rerunning_the_merge_changes_nothing_and_replaces_the_files(
    spark: Any, lake: tuple[Path, list[RunResult]]
) -> None:
    out, _ = lake
    group = load_group(JOBS_DIR / "customer_cdc")
    job = group.job("merge_current")
    table = out / "curated/customer_cdc/current"
    before = {str(p) for p in table.rglob("*.parquet")}
    rerun = run_job(
        "customer_cdc",
        "merge_current",
        {loc.name: lake_path(out, loc) for loc in job.inputs},
        {loc.name: lake_path(out, loc) for loc in job.outputs},
        spark=spark,
        echo=lambda _line: None,
    )
    assert rerun.counts["read"] == {"events": 23, "previous_current": 12, "previous_tombstones": 3}
    assert rerun.counts["written"] == {"current": 12, "tombstones": 3}
    after = {str(p) for p in table.rglob("*.parquet")}
    assert after and not after & before, "the rebuild must replace the previous files, not add to them"
    manifest = json.loads((table / MANIFEST_FILE).read_text())
    assert (manifest["rows"], manifest["run_id"]) == (12, rerun.run_id)
    current = spark.read.parquet(str(table))
    assert {r.customer_id: (r.email, r.country, r.tier) for r in current.collect()} == EXPECTED_CURRENT


def test_an_empty_previous_state_beside_a_filled_output_is_refused(
    spark: Any, lake: tuple[Path, list[RunResult]], tmp_path: Path
) -> None:
    # A previous input that points beside the output reads as empty: merging into that would rebuild the
    # touched partitions without their rows and empty the tombstones, so deleted customers would come back.
    out, _ = lake
    job = load_group(JOBS_DIR / "customer_cdc").job("merge_current")
    inputs: dict[str, Path] = {loc.name: lake_path(out, loc) for loc in job.inputs}
    outputs = {loc.name: lake_path(out, loc) for loc in job.outputs}
    before = {str(p) for p in outputs["tombstones"].rglob("*.parquet")}
    for previous, output in (("previous_current", "current"), ("previous_tombstones", "tombstones")):
        with pytest.raises(
            ValueError, match=rf"input {previous} \(.*typo\) is empty, but output {output} \(.*\) holds"
        ):
            run_job(
                "customer_cdc",
                "merge_current",
                {**inputs, previous: tmp_path / "typo"},
                outputs,
                spark=spark,
                echo=lambda _line: None,
            )
    assert {str(p) for p in outputs["tombstones"].rglob("*.parquet")} == before


def test_a_retry_after_the_append_appends_and_quarantines_nothing_twice(
    spark: Any, lake: tuple[Path, list[RunResult]]
) -> None:
    # A run that failed after its append and before its bookmark commit is retried on the same raw files: a
    # local run has no bookmarks, so running conform_events again on the sample is exactly that retry.
    out, (first, _) = lake
    group = load_group(JOBS_DIR / "customer_cdc")
    job = group.job("conform_events")
    retry = run_job(
        "customer_cdc",
        "conform_events",
        {loc.name: lake_path(out, loc) for loc in job.inputs},
        {loc.name: lake_path(out, loc) for loc in job.outputs},
        quarantine=quarantine_path(out, group, job),
        spark=spark,
        echo=lambda _line: None,
    )
    assert retry.counts["read"] == {"raw_events": 29}
    assert retry.counts["written"] == {"events": 0}
    events = spark.read.parquet(str(out / "conformed/customer_cdc/events"))
    assert events.count() == first.counts["written"]["events"] == 23
    quarantine = spark.read.json(str(quarantine_path(out, group, job)))
    assert quarantine.count() == 5
    manifest = json.loads((out / "conformed/customer_cdc/events" / MANIFEST_FILE).read_text())
    assert (manifest["rows"], manifest["run_id"]) == (0, retry.run_id)
