"""`make bench`: synth, scale, tests, jobs and rehearsal, measured the same way every time.

Medians over `--runs` runs (the rehearsal and the test suites run once: each takes minutes). Peak memory is
the largest summed RSS of the measured process tree (Python + the jsii Node process + Spark's JVM),
sampled every 50 ms. Results go to `bench/results/latest.json` and a table on standard output.

    python bench/run.py                 # everything (tens of minutes on 2 cores)
    python bench/run.py --quick         # a tiny version of every section except tests and rehearsal
    python bench/run.py --only synth scale
    python bench/run.py --only synth --runs 7 --baseline REV   # also the ratio against commit REV
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
APPS = ("infra-repo", "etl-jobs-repo")
PARTS = ("shared-config", "deployment-account", "infra-repo", "etl-jobs-repo")
SCALE_SIZES = (10, 50, 200, 500)
CDC_ROWS = 1_000_000
SECTIONS = ("synth", "scale", "tests", "jobs", "cdc", "rehearsal")
# CloudFormation's hard limits per template.
LIMITS = {"resources": 500, "bytes": 1_000_000, "parameters": 200, "outputs": 200}


# --- measuring ------------------------------------------------------------------------------------------
def _tree_rss_kib(pid: int) -> int:
    """Summed resident memory of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            with open(f"/proc/{entry}/statm") as statm:
                rss[int(entry)] = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += rss.get(current, 0)
        stack.extend(children.get(current, []))
    return total


def measure(command: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None) -> dict[str, float]:
    """Wall seconds and peak memory (MiB) of one command; a failing command stops the benchmark."""
    started = time.monotonic()
    process = subprocess.Popen(
        list(command), cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_kib(process.pid))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    done.set()
    sampler.join()
    seconds = time.monotonic() - started
    if process.returncode != 0:
        tail = output.decode(errors="replace").splitlines()[-30:]
        raise SystemExit(f"bench: `{' '.join(command)}` failed ({process.returncode}):\n" + "\n".join(tail))
    return {"seconds": round(seconds, 2), "peak_mib": round(peak / 1024, 1)}


def median_of(runs: int, once: Callable[[], dict[str, float]]) -> dict[str, Any]:
    samples = [once() for _ in range(runs)]
    return {
        "seconds": round(statistics.median(s["seconds"] for s in samples), 2),
        "peak_mib": round(statistics.median(s["peak_mib"] for s in samples), 1),
        "runs": [s["seconds"] for s in samples],
    }


CONFIG = ROOT / "shared-config" / "config.yaml"


def cdk(*args: str) -> list[str]:
    """The pinned CLI synthesizing from the workspace's config (an app repository alone reads `.lake/`)."""
    return [str(ROOT / "node_modules" / ".bin" / "cdk"), *args, "-c", f"config={CONFIG}"]


# --- sections ---------------------------------------------------------------------------------------------
def bench_synth(runs: int, scratch: Path) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for app in APPS:
        out = scratch / "synth" / app
        command = cdk("synth", "--quiet", "-o", str(out))
        result[app] = median_of(runs, lambda command=command, app=app: measure(command, cwd=ROOT / app))
    result["make synth"] = median_of(runs, lambda: measure(["make", "--no-print-directory", "synth"], cwd=ROOT))
    return result


# The team's packages the apps import from the workspace (installed editable): a baseline tree's own copies
# go first on PYTHONPATH, so the baseline synthesizes with its own library code, not the current one.
PACKAGE_SOURCES = ("shared-config/src", "deployment-account/library/src")


def baseline_tree(revision: str, scratch: Path) -> Path:
    """`revision` checked out into a temporary worktree (removed by `remove_baseline`)."""
    tree = scratch / "baseline"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(tree), revision], cwd=ROOT, check=True, capture_output=True
    )
    return tree


def remove_baseline(tree: Path) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False, capture_output=True)


def tree_env(tree: Path) -> dict[str, str]:
    """What a synth of `tree` needs to import that tree's packages before the workspace's installed ones."""
    sources = [str(tree / source) for source in PACKAGE_SOURCES]
    return {"PYTHONPATH": os.pathsep.join([*sources, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


def alternating(
    runs: int, current: Callable[[], dict[str, float]], baseline: Callable[[], dict[str, float]]
) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """`runs` samples of each, interleaved and taking turns to go first (ABBA...), so a machine that speeds up
    or slows down during the benchmark weighs on both sides alike."""
    mine: list[dict[str, float]] = []
    theirs: list[dict[str, float]] = []
    for run in range(runs):
        if run % 2 == 0:
            mine.append(current())
            theirs.append(baseline())
        else:
            theirs.append(baseline())
            mine.append(current())
    return mine, theirs


def bench_synth_against(runs: int, scratch: Path, revision: str) -> dict[str, Any]:
    """Each app's `cdk synth` of the current tree and of `revision`, alternated, with the same CDK library and CLI
    (the workspace's), each tree with its own config, app code and team packages; the ratio is current/baseline."""
    tree = baseline_tree(revision, scratch)
    result: dict[str, Any] = {"baseline": revision}
    try:
        totals = {"current": 0.0, "baseline": 0.0}
        for app in APPS:

            def synth(root: Path, name: str, app: str = app) -> dict[str, float]:
                config = root / "shared-config" / "config.yaml"
                out = scratch / "synth-against" / name / app
                command = [str(ROOT / "node_modules" / ".bin" / "cdk"), "synth", "--quiet", "-c", f"config={config}"]
                return measure([*command, "-o", str(out)], cwd=root / app, env=tree_env(root))

            mine, theirs = alternating(runs, lambda: synth(ROOT, "current"), lambda: synth(tree, "baseline"))
            current = statistics.median(s["seconds"] for s in mine)
            baseline = statistics.median(s["seconds"] for s in theirs)
            totals["current"] += current
            totals["baseline"] += baseline
            result[app] = {
                "seconds": round(current, 2),
                "baseline_seconds": round(baseline, 2),
                "ratio": round(current / baseline, 3),
                "runs": [s["seconds"] for s in mine],
                "baseline_runs": [s["seconds"] for s in theirs],
            }
        result["both apps"] = {
            "seconds": round(totals["current"], 2),
            "baseline_seconds": round(totals["baseline"], 2),
            "ratio": round(totals["current"] / totals["baseline"], 3),
        }
    finally:
        remove_baseline(tree)
    return result


def bench_scale(runs: int, scratch: Path, sizes: Sequence[int]) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "etl-jobs-repo"))
    from etl_jobs.synthetic import write_jobs

    result: dict[str, Any] = {}
    for size in sizes:
        jobs_dir = scratch / f"jobs-{size}"
        groups = write_jobs(jobs_dir, size)
        out = scratch / f"scale-{size}"
        command = cdk("synth", "--quiet", "-c", f"jobs_dir={jobs_dir}", "-o", str(out))
        timing = median_of(runs, lambda command=command: measure(command, cwd=ROOT / "etl-jobs-repo"))
        shape = assembly_shape(out)
        result[str(size)] = {**timing, "groups": groups, **shape, "seconds_per_job": round(timing["seconds"] / size, 3)}
    return result


def assembly_shape(out: Path) -> dict[str, Any]:
    """Stacks and the largest template of a cloud assembly (all stages), against CloudFormation's limits."""
    largest = {"resources": 0, "bytes": 0, "parameters": 0, "outputs": 0}
    stacks = 0
    for template in out.rglob("*.template.json"):
        body = json.loads(template.read_text())
        stacks += 1
        largest["resources"] = max(largest["resources"], len(body.get("Resources", {})))
        largest["bytes"] = max(largest["bytes"], template.stat().st_size)
        largest["parameters"] = max(largest["parameters"], len(body.get("Parameters", {})))
        largest["outputs"] = max(largest["outputs"], len(body.get("Outputs", {})))
    within = all(largest[key] <= limit for key, limit in LIMITS.items())
    return {"stacks": stacks, "largest": largest, "within_limits": within}


def bench_tests() -> dict[str, Any]:
    # each repository's suite from its own folder, as its pipeline runs it
    result = {part: measure([sys.executable, "-m", "pytest", "-q"], cwd=ROOT / part) for part in PARTS}
    result["lint"] = measure(["make", "--no-print-directory", "lint"], cwd=ROOT)
    return result


def bench_jobs(runs: int) -> dict[str, Any]:
    samples = [json.loads(_python_output(ROOT / "bench" / "local_jobs.py")) for _ in range(runs)]
    return {key: round(statistics.median(s[key] for s in samples), 2) for key in samples[0]}


def bench_cdc(runs: int, rows: int) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(
        _python_output(ROOT / "bench" / "cdc_merge.py", "--rows", str(rows), "--runs", str(runs))
    )
    return result


def bench_rehearsal() -> dict[str, Any]:
    return measure(["make", "--no-print-directory", "rehearse"], cwd=ROOT)


def _python_output(script: Path, *args: str) -> str:
    result = subprocess.run([sys.executable, str(script), *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"bench: {script.name} failed:\n{result.stderr[-3000:]}")
    return result.stdout.strip().splitlines()[-1]


# --- reporting --------------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    memory_kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "node": node,
        "platform": platform.platform(),
    }


def table(results: dict[str, Any]) -> str:
    lines = [f"machine: {results['machine']['cores']} cores, {results['machine']['memory_gib']} GiB"]
    for name, value in results.items():
        if name in ("machine", "date", "arguments"):
            continue
        lines.append(f"\n[{name}]")
        for key, entry in value.items() if isinstance(value, dict) else []:
            if isinstance(entry, dict) and "seconds" in entry:
                extra = ""
                if "stacks" in entry:
                    largest = entry["largest"]
                    extra = (
                        f"  stacks {entry['stacks']}, largest {largest['resources']} resources / "
                        f"{largest['bytes'] / 1024:.0f} KiB, within limits: {entry['within_limits']}"
                    )
                if "events_per_second" in entry:
                    extra = f"  {entry['events_per_second']:,} events/s"
                if "ratio" in entry:
                    extra = f"  baseline {entry['baseline_seconds']:.2f} s, ratio {entry['ratio']:.3f}"
                memory = f"  peak {entry['peak_mib']:.0f} MiB" if "peak_mib" in entry else ""
                lines.append(f"  {key:<28} {entry['seconds']:>8.2f} s{memory}{extra}")
            else:
                lines.append(f"  {key:<28} {entry}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median reported)")
    parser.add_argument(
        "--scale-runs", type=int, default=1, help="runs per generated size (a 500-job synth takes minutes)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run, no test suites or rehearsal")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also synthesize this commit (a temporary worktree), alternating with the current tree: a ratio that "
        "does not depend on the machine",
    )
    args = parser.parse_args(argv)
    runs = 1 if args.quick else args.runs
    sections = args.only or ([s for s in SECTIONS if s not in ("tests", "rehearsal")] if args.quick else SECTIONS)
    results: dict[str, Any] = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "arguments": {"runs": runs, "quick": args.quick, "sections": list(sections)},
    }
    with tempfile.TemporaryDirectory(prefix="lake-bench-") as tmp:
        scratch = Path(tmp)
        for section in sections:
            print(f"bench: {section} ...", flush=True)
            if section == "synth":
                results["synth"] = bench_synth(runs, scratch)
                if args.baseline:
                    results["synth against baseline"] = bench_synth_against(runs, scratch, args.baseline)
            elif section == "scale":
                results["scale"] = bench_scale(
                    1 if args.quick else args.scale_runs, scratch, (10,) if args.quick else SCALE_SIZES
                )
            elif section == "tests":
                results["tests"] = bench_tests()
            elif section == "jobs":
                results["jobs"] = bench_jobs(runs)
            elif section == "cdc":
                results["cdc"] = bench_cdc(runs, 20_000 if args.quick else CDC_ROWS)
            elif section == "rehearsal":
                results["rehearsal"] = {"make rehearse": bench_rehearsal()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
