"""Stack planning, physical-name clashes and the job library zip, without synthesizing anything."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from datalake_config import load, names_for
from datalake_config.testing import EXAMPLE_CONFIG_PATH
from etl_jobs.layout import LayoutError, check_names, job_bytes, plan_parts
from etl_jobs.library import LibraryError, build_library_zip, library_zip_bytes
from etl_jobs.spec import Group, SpecError

CONFIG = load(EXAMPLE_CONFIG_PATH)
NAMES = names_for(CONFIG, "dev")


def group(name: str, jobs: list[str], tmp: Path) -> Group:
    return Group.model_validate(
        {
            "name": name,
            "raw_prefix": f"{name}/",
            "folder": tmp,
            "jobs": [
                {
                    "name": job,
                    "script": "job.py",
                    "inputs": [{"name": "src", "zone": "raw", "prefix": f"{name}/{job}/in/"}],
                    "outputs": [{"name": f"{job}_out", "zone": "conformed", "prefix": f"{name}/{job}/out/"}],
                }
                for job in jobs
            ],
        }
    )


def test_small_group_is_one_part(tmp_path: Path) -> None:
    (part,) = plan_parts(group("sales", ["aa", "bb"], tmp_path))
    assert (part.number, part.count, part.is_entry, part.is_last) == (1, 1, True, True)
    assert part.component() == "group-sales"


def test_large_group_splits_in_order_under_the_budget(tmp_path: Path) -> None:
    jobs = [f"j{n:03d}" for n in range(120)]
    parts = plan_parts(group("big_one", jobs, tmp_path))
    assert len(parts) > 1
    assert [j.name for p in parts for j in p.jobs] == jobs
    assert [p.component() for p in parts] == [
        "group-big-one",
        *(f"group-big-one-{n}" for n in range(2, len(parts) + 1)),
    ]
    for part in parts:
        assert sum(job_bytes(j) for j in part.jobs) < 850_000


def test_clashing_glue_job_names_are_refused(tmp_path: Path) -> None:
    # `ab_cd`/`ef` and `ab`/`cd_ef` both become <prefix>-<env>-ab-cd-ef
    with pytest.raises(LayoutError, match=r"jobs ab_cd/ef, ab/cd_ef map to the same Glue job name"):
        check_names([group("ab_cd", ["ef"], tmp_path), group("ab", ["cd_ef"], tmp_path)], NAMES)


def test_clashing_state_machine_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match="same state machine name"):
        # part 2 of `big` and part 1 of `big_2` are both <prefix>-<env>-big-2
        check_names(
            [group("big", [f"j{n:03d}" for n in range(120)], tmp_path), group("big_2", ["aa"], tmp_path)], NAMES
        )


def test_distinct_names_pass(tmp_path: Path) -> None:
    check_names([group("sales", ["aa"], tmp_path), group("crm", ["aa"], tmp_path)], NAMES)


@pytest.mark.parametrize("side", ["inputs", "outputs"])
def test_a_zone_missing_from_the_config_is_refused_naming_the_field(tmp_path: Path, side: str) -> None:
    spec = group("sales", ["aa", "bb"], tmp_path).model_dump()
    location = spec["jobs"][1][side][0]
    location["zone"] = "gold"
    unknown = Group.model_validate({**spec, "folder": tmp_path / "jobs" / "sales"})
    expected = (
        f"{tmp_path / 'jobs' / 'sales' / 'group.yaml'}: jobs.bb.{side}.{location['name']}.zone: "
        "unknown zone 'gold'; configured: raw, conformed, curated"
    )
    with pytest.raises(SpecError) as raised:
        check_names([group("crm", ["aa"], tmp_path), unknown], NAMES)
    assert str(raised.value) == expected


def test_library_zip_is_reproducible_and_skips_caches(tmp_path: Path) -> None:
    library = tmp_path / "lakejobs"
    (library / "__pycache__").mkdir(parents=True)
    (library / "__init__.py").write_text('"""lib"""\n')
    (library / "io.py").write_text("X = 1\n")
    (library / "__pycache__" / "io.cpython-311.pyc").write_bytes(b"\0")
    first = build_library_zip(library, tmp_path / "out")
    (library / "io.py").touch()  # a new mtime must not change the archive
    assert library_zip_bytes(library) == first.read_bytes()
    with zipfile.ZipFile(first) as archive:
        assert archive.namelist() == ["lakejobs/__init__.py", "lakejobs/io.py"]
    (library / "io.py").write_text("X = 2\n")
    assert build_library_zip(library, tmp_path / "out") != first


def test_library_must_be_a_package(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match=r"no __init__\.py"):
        library_zip_bytes(tmp_path)


def test_package_json_pins_the_cli_the_pipelines_install() -> None:
    """Synth here and self-mutation in the pipeline run the same CDK CLI version."""
    import json

    from lake_pipelines.pipeline import CDK_CLI_VERSION

    package = json.loads((Path(__file__).resolve().parents[2] / "package.json").read_text(encoding="utf-8"))
    assert package["devDependencies"]["aws-cdk"] == CDK_CLI_VERSION
