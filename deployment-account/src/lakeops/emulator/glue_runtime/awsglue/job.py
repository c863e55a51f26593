"""`Job`: a run's bookmarks, started by `init` and saved by `commit`.

Glue's S3 bookmarks remember, per `transformation_ctx` of a source, which objects earlier runs processed,
and reprocess an object whose modification time changed (developer guide, "Tracking processed data using
job bookmarks"). Here the state is a JSON file per job name in the folder the emulator gives the run
(`LAKEOPS_GLUE_BOOKMARK_DIR`): `{"contexts": {ctx: {"files": {s3 url: modification time in ms}}}, ...}`.

- `init(name, args)` reads `args["job_bookmark_option"]` (as `getResolvedOptions` returns it):
  `job-bookmark-enable` reads past the bookmark and moves it at `commit`; `job-bookmark-pause` reads past it
  and leaves it; `job-bookmark-disable` (the default) reads everything and keeps nothing.
- Sources without a `transformation_ctx`, or read before `init`, are not bookmarked.
- `commit` merges what this run read into the saved state (re-read first, written whole by rename);
  a run that ends without `commit` leaves the bookmark where it was, as on Glue.
- Not emulated: the `--job-bookmark-from`/`--job-bookmark-to` range of a paused run (the pause reads past
  the latest bookmark), bookmark rewind, and the GetJobBookmark/ResetJobBookmark APIs.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .utils import BOOKMARK_CHOICES

BOOKMARK_DIR_ENV = "LAKEOPS_GLUE_BOOKMARK_DIR"

_current: Job | None = None


def current() -> Job | None:
    """The job `init` started in this process, if any: its bookmarks apply to the sources read."""
    return _current


class Job:
    def __init__(self, glue_context: Any) -> None:
        self._glue_context = glue_context
        self._name: str | None = None
        self._option = "job-bookmark-disable"
        self._run_id: str | None = None
        self._state_file: Path | None = None
        self._read: dict[str, dict[str, int]] = {}

    def init(self, job_name: str, args: Mapping[str, Any] | None = None) -> None:
        global _current
        args = dict(args or {})
        option = str(args.get("job_bookmark_option") or "job-bookmark-disable")
        if option not in BOOKMARK_CHOICES:
            raise ValueError(f"job_bookmark_option must be one of {', '.join(BOOKMARK_CHOICES)}, got {option!r}")
        self._name, self._option = job_name, option
        self._run_id = args.get("JOB_RUN_ID")
        if option != "job-bookmark-disable":
            folder = os.environ.get(BOOKMARK_DIR_ENV)
            if not folder:
                raise RuntimeError(f"{option}: no bookmark folder ({BOOKMARK_DIR_ENV} is not set by the emulator)")
            self._state_file = Path(folder) / f"{urllib.parse.quote(job_name, safe='')}.json"
        _current = self

    def isInitialized(self) -> bool:  # noqa: N802 (Glue's name)
        return self._name is not None

    def commit(self) -> None:
        if self._option == "job-bookmark-enable" and self._state_file is not None and self._read:
            state = self._load()
            contexts = state.setdefault("contexts", {})
            for ctx, files in self._read.items():
                contexts.setdefault(ctx, {}).setdefault("files", {}).update(files)
            state["job"] = self._name
            state["run_id"] = self._run_id
            state["version"] = int(state.get("version", 0)) + 1
            self._state_file.parent.mkdir(parents=True, exist_ok=True)
            staging = self._state_file.with_name(f".{self._state_file.name}.{uuid.uuid4().hex}")
            staging.write_text(json.dumps(state, indent=1, sort_keys=True))
            os.replace(staging, self._state_file)
        self._read.clear()

    # --- used by the sources (awsglue.context) ---------------------------------------------------
    def unread(self, ctx: str, files: Mapping[str, int]) -> dict[str, int]:
        """Of `files` (url → modification time), those past the bookmark of `ctx`; noted for `commit`."""
        if not ctx or self._option == "job-bookmark-disable":
            return dict(files)
        seen: dict[str, int] = self._load().get("contexts", {}).get(ctx, {}).get("files", {})
        new = {url: modified for url, modified in files.items() if seen.get(url) != modified}
        self._read.setdefault(ctx, {}).update(new)
        return new

    def _load(self) -> dict[str, Any]:
        if self._state_file is None or not self._state_file.is_file():
            return {}
        loaded: dict[str, Any] = json.loads(self._state_file.read_text())
        return loaded
