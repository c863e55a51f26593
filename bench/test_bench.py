"""The benchmark's own machinery, on tiny sizes (timings are never asserted: they belong to `make bench`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402  (the benchmark script, imported from its folder)


def test_assembly_shape_reports_the_largest_template_against_the_limits(tmp_path: Path) -> None:
    small = {"Resources": {f"R{n}": {"Type": "AWS::SNS::Topic"} for n in range(3)}}
    large = {"Resources": {f"R{n}": {"Type": "AWS::SNS::Topic"} for n in range(501)}, "Parameters": {"P": {}}}
    (tmp_path / "a.template.json").write_text(json.dumps(small))
    (tmp_path / "assembly-Dev").mkdir()
    (tmp_path / "assembly-Dev" / "b.template.json").write_text(json.dumps(large))
    shape = run.assembly_shape(tmp_path)
    assert shape["stacks"] == 2
    assert shape["largest"]["resources"] == 501 and shape["largest"]["parameters"] == 1
    assert shape["within_limits"] is False


def test_measure_sees_the_memory_a_child_process_uses(tmp_path: Path) -> None:
    hold = "import time; block = bytearray(80 * 1024 * 1024); block[::4096] = b'x' * len(block[::4096]); time.sleep(1)"
    result = run.measure([sys.executable, "-c", hold], cwd=tmp_path)
    assert result["peak_mib"] >= 60
    assert result["seconds"] >= 1


def test_the_baseline_is_measured_alternately_each_side_going_first_in_turn() -> None:
    order: list[str] = []

    def side(name: str) -> dict[str, float]:
        order.append(name)
        return {"seconds": float(len(order))}

    mine, theirs = run.alternating(4, lambda: side("current"), lambda: side("baseline"))
    assert order == ["current", "baseline", "baseline", "current"] * 2
    assert [s["seconds"] for s in mine] == [1.0, 4.0, 5.0, 8.0]
    assert [s["seconds"] for s in theirs] == [2.0, 3.0, 6.0, 7.0]


def test_a_baseline_tree_imports_its_own_team_packages_first(tmp_path: Path) -> None:
    paths = run.tree_env(tmp_path)["PYTHONPATH"].split(":")
    assert paths[:2] == [
        str(tmp_path / "shared-config" / "src"),
        str(tmp_path / "deployment-account" / "library" / "src"),
    ]


def test_a_failing_command_stops_the_benchmark(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="failed"):
        run.measure([sys.executable, "-c", "raise SystemExit(3)"], cwd=tmp_path)


@pytest.mark.long
def test_quick_cdc_section_writes_both_formulations(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    result = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--quick", "--only", "cdc", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    cdc = json.loads(out.read_text())["cdc"]
    assert cdc["rows"] == cdc["events"] > 0
    assert cdc["window"]["events_per_second"] > 0 and cdc["groupby_join"]["events_per_second"] > 0
    assert cdc["window_speedup"] > 0
