"""`run_in_glue`, the whole Glue edge of a job script, driven through a stand-in for the `awsglue` calls it makes.

Glue starts a job's script with its own options beside the job's arguments, among them `--JOB_NAME`, `--JOB_ID`,
`--JOB_RUN_ID` (the id StartJobRun returned, `jr_...`) and `--TempDir`; `awsglue.utils.getResolvedOptions` returns
the options asked for plus those ids (`Job.id_params`). The stand-in returns the same. What a run leaves for the
rest of the platform must name that run: each output's manifest (the post-deploy check compares its `run_id`
with the run it started) and the run record under `--TempDir` (the state machine reads its counts into the audit).
"""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from lakejobs.args import Arg, JobArgs, job_args
from lakejobs.context import JobContext, run_in_glue
from lakejobs.io import MANIFEST_FILE, RUN_RECORDS_FOLDER, rebuild_dataset, run_record_path

ARGS = job_args(Arg("output_things"))


def main(context: JobContext, args: JobArgs) -> Mapping[str, Mapping[str, int]]:
    frame = context.spark.createDataFrame([("a", 1), ("b", 2)], "id string, n int")
    context.counts.add("read", "raw_things", 3)
    context.counts.add("quarantined", "things", 1)
    rebuild_dataset(context, frame, args["output_things"], dataset="things")
    return context.counts.as_dict()


@pytest.fixture
def awsglue(spark: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Installs `awsglue.context`, `.job` and `.utils` stand-ins; the list collects the Job's calls."""
    calls: list[str] = []

    def get_resolved_options(argv: Sequence[str], options: Sequence[str]) -> dict[str, str]:
        pairs = dict(zip(argv[1::2], argv[2::2], strict=False))
        wanted = [*options, "JOB_ID", "JOB_RUN_ID", "TempDir"]
        return {name: pairs[f"--{name}"] for name in wanted if f"--{name}" in pairs}

    class GlueContext:
        def __init__(self, _spark_context: Any) -> None:
            self.spark_session = spark

    class Job:
        def __init__(self, _glue_context: Any) -> None:
            pass

        def init(self, name: str, _options: Mapping[str, str]) -> None:
            calls.append(f"init {name}")

        def commit(self) -> None:
            calls.append("commit")

    modules = {
        "awsglue": types.ModuleType("awsglue"),
        "awsglue.context": types.ModuleType("awsglue.context"),
        "awsglue.job": types.ModuleType("awsglue.job"),
        "awsglue.utils": types.ModuleType("awsglue.utils"),
    }
    modules["awsglue.context"].GlueContext = GlueContext  # type: ignore[attr-defined]
    modules["awsglue.job"].Job = Job  # type: ignore[attr-defined]
    modules["awsglue.utils"].getResolvedOptions = get_resolved_options  # type: ignore[attr-defined]
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    return calls


def glue_argv(out: Path, temp: Path, run_id: str) -> list[str]:
    return [
        "script.py",
        "--JOB_ID",
        "j_0123",
        "--JOB_RUN_ID",
        run_id,
        "--JOB_NAME",
        "acme-lake-dev-things-load",
        "--TempDir",
        str(temp),
        "--output_things",
        str(out),
        "--job-bookmark-option",
        "job-bookmark-disable",
    ]


def test_a_glue_run_writes_its_run_id_into_the_manifest(awsglue: list[str], tmp_path: Path) -> None:
    out = tmp_path / "things"
    run_in_glue(main, ARGS, glue_argv(out, tmp_path / "temp", "jr_0a1b2c"))
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert (manifest["run_id"], manifest["rows"]) == ("jr_0a1b2c", 2)
    assert awsglue == ["init acme-lake-dev-things-load", "commit"]


def test_a_glue_run_records_its_counts_by_run_id_before_the_commit(awsglue: list[str], tmp_path: Path) -> None:
    temp = tmp_path / "temp"
    run_in_glue(main, ARGS, glue_argv(tmp_path / "things", temp, "jr_0a1b2c"))
    record_file = temp / RUN_RECORDS_FOLDER / "jr_0a1b2c.json"
    assert str(record_file) == run_record_path(str(temp), "jr_0a1b2c")
    # the counts as JSON text, which the audit item keeps as it is
    assert json.loads(record_file.read_text()) == {
        "read": {"raw_things": 3},
        "written": {"things": 2},
        "quarantined": {"things": 1},
    }
    # a retry attempt is a run of its own (`jr_..._attempt_1`), with a record of its own
    run_in_glue(main, ARGS, glue_argv(tmp_path / "things", temp, "jr_0a1b2c_attempt_1"))
    assert sorted(p.name for p in record_file.parent.iterdir()) == ["jr_0a1b2c.json", "jr_0a1b2c_attempt_1.json"]


def test_a_run_id_is_a_file_name() -> None:
    for bad in ("", "jr/../x"):
        with pytest.raises(ValueError, match="not a run id"):
            run_record_path("s3://b/staging/g/j/", bad)
    assert run_record_path("s3://b/staging/g/j/", "jr_1") == "s3://b/staging/g/j/_runs/jr_1.json"
