"""`etl-jobs new` and `etl-jobs check`: a group the scaffold writes passes ruff, mypy, its own tests and the
one-group check (the CDK app discovers it beside the shipped groups and synthesizes it) with nothing else
edited; a bad request writes nothing; a failing check names its step."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from etl_jobs.cli import main as etl_jobs
from etl_jobs.group_check import STEPS, Paths, check_group, example_config_path
from etl_jobs.local_runner import lake_path, quarantine_path, run_job, run_sample
from etl_jobs.spec import load_group

REPOSITORY = Path(__file__).resolve().parents[2]
# The longest names the spec allows (40 characters): every generated line must still fit ruff's 120.
LONGEST = "a_group_named_as_long_as_any_name_may_be"
LONG_JOBS = ("and_a_job_named_as_long_as_a_name_may_be", "the_other_job_named_as_long_as_names_get")


def repository_copy(root: Path) -> Path:
    """The repository's groups, its pytest/ruff/mypy settings and its shared test fixtures, under `root`."""
    shutil.copytree(REPOSITORY / "jobs", root / "jobs", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "tests" / "jobs").mkdir(parents=True)
    shutil.copy(REPOSITORY / "tests" / "conftest.py", root / "tests")
    shutil.copy(REPOSITORY / "pyproject.toml", root)
    # mypy resolves first-party modules from the folder it runs in, as it does in the repository.
    for package in ("etl_jobs", "lakejobs"):
        (root / package).symlink_to(REPOSITORY / package, target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = repository_copy(tmp_path_factory.mktemp("repository"))
    taxi = ["new", "taxi", "--job", "conform_trips", "--job", "zone_stats", "--raw-prefix", "taxi/"]
    assert etl_jobs([*taxi, "--root", str(root)]) == 0
    longest = ["new", LONGEST, "--job", LONG_JOBS[0], "--job", LONG_JOBS[1], "--schedule", "cron(0 4 * * ? *)"]
    assert etl_jobs([*longest, "--root", str(root)]) == 0
    return root


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)


def test_the_files_land_where_the_docs_say(repository: Path) -> None:
    created = sorted(
        str(p.relative_to(repository))
        for p in repository.rglob("*")
        # exactly the new group's files (a group of the repository may have a similar name)
        if p.is_file() and ("taxi" in p.relative_to(repository).parts or p.name == "test_taxi.py")
    )
    assert created == [
        "jobs/taxi/conform_trips.py",
        "jobs/taxi/group.yaml",
        "jobs/taxi/zone_stats.py",
        "sample-data/taxi/raw/taxi/records/batch-0001.json",
        "tests/jobs/test_taxi.py",
    ]
    taxi = load_group(repository / "jobs" / "taxi")
    assert (taxi.raw_prefix, taxi.schedule) == ("taxi/", None)
    assert [j.name for j in taxi.jobs] == ["conform_trips", "zone_stats"]
    assert taxi.jobs[0].inputs[0].prefix == "taxi/records/"
    longest = load_group(repository / "jobs" / LONGEST)
    assert (longest.raw_prefix, longest.schedule) == (None, "cron(0 4 * * ? *)")
    # Without a raw prefix to trigger on, the raw input sits under the group's name.
    assert (repository / "sample-data" / LONGEST / "raw" / LONGEST / "records" / "batch-0001.json").is_file()


def test_the_generated_code_passes_ruff_and_mypy(repository: Path) -> None:
    generated = ["jobs/taxi", f"jobs/{LONGEST}", "tests/jobs"]
    for command in (["ruff", "check"], ["ruff", "format", "--check"], ["mypy"]):
        result = run([sys.executable, "-m", *command, *generated], repository)
        assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}{result.stderr}"


@pytest.mark.long
def test_the_generated_tests_pass(repository: Path) -> None:
    # In a process of its own, from the copy's folder, as `pytest` runs there: the test finds its group
    # and sample data from its own path. (The longest names' module is the same template: ruff and mypy
    # above are what its names could break.)
    result = run([sys.executable, "-m", "pytest", "-q", "tests/jobs/test_taxi.py"], repository)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # 5: the conform rules, the schemas agree, the aggregate, the sample counts, a delivery sent again
    assert "5 passed" in result.stdout


def test_a_scaffolded_group_run_twice_over_the_same_delivery_keeps_one_row_per_record(
    repository: Path, spark: Any, tmp_path: Path
) -> None:
    """The conform job reads every delivery under its raw prefix: the same delivery sent again (a retried upload,
    a re-sent file) must not double the conformed records, nor what the later jobs aggregate from them."""
    out = tmp_path / "lake"
    jobs_dir, samples = repository / "jobs", repository / "sample-data"
    first = run_sample("taxi", out, spark=spark, jobs_dir=jobs_dir, sample_dir=samples, echo=lambda _line: None)
    group = load_group(jobs_dir / "taxi")
    conform = group.jobs[0]
    raw = lake_path(out, conform.inputs[0])
    shutil.copy(raw / "batch-0001.json", raw / "batch-0002.json")

    def run_group() -> list[Any]:
        return [
            run_job(
                "taxi",
                job.name,
                {loc.name: lake_path(out, loc) for loc in job.inputs},
                {loc.name: lake_path(out, loc) for loc in job.outputs},
                quarantine=quarantine_path(out, group, job),
                spark=spark,
                jobs_dir=jobs_dir,
                echo=lambda _line: None,
            )
            for job in group.jobs
        ]

    for _ in range(2):  # the group runs once per upload: twice over the two copies of the delivery
        again = run_group()
        assert again[0].counts["read"] == {"raw_records": 14}
        assert [r.counts["written"] for r in again] == [r.counts["written"] for r in first]
        assert [r.counts["written"] for r in first] == [{"records": 4}, {"zone_stats": 3}]
    records = spark.read.parquet(str(lake_path(out, conform.outputs[0])))
    assert sorted(r.id for r in records.collect()) == ["r001", "r002", "r003", "r004"]
    totals = spark.read.parquet(str(lake_path(out, group.jobs[1].outputs[0])))
    assert sum(r.records for r in totals.collect()) == 4


def test_the_one_group_check_passes_and_synthesizes_the_group(repository: Path, spark: Any) -> None:
    lines: list[str] = []
    check_group(LONGEST, paths=Paths(repository), config_path=example_config_path(), spark=spark, echo=lines.append)
    steps = [line.partition(":")[0] for line in lines if line.startswith("✔ ")]
    assert steps == [f"✔ {step}" for step in STEPS]
    synth = next(line for line in lines if line.startswith("✔ synth"))
    # Every environment of the example config: the shared stack and the group's.
    assert "6 stack(s) for dev, test, prod" in synth and "cdk-nag clean" in synth


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["new", "legislators", "--job", "more", "--raw-prefix", "more/"], "group 'legislators' exists already"),
        (["new", "Taxi", "--job", "conform", "--raw-prefix", "taxi/"], "group 'Taxi': use 2 to 40 lowercase"),
        (["new", "taxi", "--job", "x", "--raw-prefix", "taxi/"], "--job 'x': use 2 to 40 lowercase"),
        (["new", "taxi", "--job", "aa", "--job", "aa", "--raw-prefix", "taxi/"], "--job aa: given twice"),
        (["new", "taxi", "--job", "aa", "--job", "records", "--raw-prefix", "t/"], "--job records: a later job reads"),
        (["new", "taxi", "--job", "aa", "--raw-prefix", "Taxi/"], "--raw-prefix 'Taxi/': an S3 key prefix"),
        (["new", "taxi", "--job", "aa", "--schedule", "daily"], "--schedule 'daily': an EventBridge expression"),
    ],
)
def test_bad_requests_are_refused_before_anything_is_written(
    tmp_path: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "jobs" / "legislators").mkdir(parents=True)
    before = sorted(tmp_path.rglob("*"))
    assert etl_jobs([*argv, "--root", str(tmp_path)]) == 1
    assert message in capsys.readouterr().err
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        (["--raw-prefix", "taxi/", "--schedule", "rate(1 day)"], "not allowed with argument --raw-prefix"),
        ([], "one of the arguments --raw-prefix --schedule is required"),
    ],
)
def test_exactly_one_trigger_is_a_usage_rule(
    tmp_path: Path, trigger: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        etl_jobs(["new", "taxi", "--job", "aa", *trigger, "--root", str(tmp_path)])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_failing_check_names_its_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path
    assert etl_jobs(["new", "taxi", "--job", "conform_trips", "--raw-prefix", "taxi/", "--root", str(root)]) == 0
    capsys.readouterr()
    script = root / "jobs" / "taxi" / "conform_trips.py"
    script.write_text(script.read_text().replace('    Arg("output_records"),\n', ""))
    assert etl_jobs(["check", "taxi", "--root", str(root)]) == 1
    out, err = capsys.readouterr()
    assert "✔ spec: 1 job(s) (conform_trips); started by objects created under raw/taxi/" in out
    assert (
        "✘ arguments: taxi/conform_trips: group.yaml gives --output_records but conform_trips.py does not declare it"
        in out
    )
    assert "taxi: the check failed at step 'arguments'" in err

    spec = root / "jobs" / "taxi" / "group.yaml"
    one_line = "columns: {id: string, category: string, amount: decimal(10,2), recorded_at: timestamp}"
    text = spec.read_text()
    spec.write_text(text[: text.index("columns:")] + one_line + text[text.index("\n    arguments:") :])
    assert etl_jobs(["check", "taxi", "--root", str(root)]) == 1
    out, err = capsys.readouterr()
    assert "✘ spec: " in out and "jobs.conform_trips.outputs.records.columns.amount: YAML split the type" in out
    assert "taxi: the check failed at step 'spec'" in err

    assert etl_jobs(["check", "nope", "--root", str(root)]) == 1
    assert "✘ spec: no group.yaml in" in capsys.readouterr().out
