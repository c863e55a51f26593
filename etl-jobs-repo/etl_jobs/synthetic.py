"""Generated job groups for scale tests and the benchmark: chained jobs like the ones engineers add.

Nothing here is deployed: the generated scripts are empty, only the specs matter to synthesis.
"""

from __future__ import annotations

from pathlib import Path

import yaml


def write_group(jobs_dir: Path, group: str, job_count: int) -> None:
    """A group of `job_count` chained jobs (raw → conformed … → curated) under `jobs_dir/group`."""
    folder = jobs_dir / group
    folder.mkdir(parents=True)
    jobs = []
    for n in range(job_count):
        name = f"step_{n:03d}"
        (folder / f"{name}.py").write_text(f'"""Generated job {group}/{name}."""\n')
        source_zone = "raw" if n == 0 else "conformed"
        jobs.append(
            {
                "name": name,
                "script": f"{name}.py",
                "inputs": [{"name": "source", "zone": source_zone, "prefix": f"{group}/step_{max(n - 1, 0):03d}/"}],
                "outputs": [
                    {
                        "name": f"out_{n:03d}",
                        "zone": "curated" if n == job_count - 1 else "conformed",
                        "prefix": f"{group}/step_{n:03d}/",
                        "columns": {"id": "string", "amount": "double", "updated_at": "timestamp"},
                    }
                ],
                "bookmarks": n % 2 == 0,
                "expected_min_rows": {f"out_{n:03d}": 1},
            }
        )
    spec = {"description": f"generated group {group}", "raw_prefix": f"{group}/incoming/", "jobs": jobs}
    (folder / "group.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


def write_jobs(jobs_dir: Path, total_jobs: int, *, group_size: int = 25) -> int:
    """`total_jobs` jobs in groups of `group_size` (the last group takes the rest); returns the group count."""
    groups = 0
    remaining = total_jobs
    while remaining > 0:
        size = min(group_size, remaining)
        write_group(jobs_dir, f"generated_{groups:03d}", size)
        remaining -= size
        groups += 1
    return groups
