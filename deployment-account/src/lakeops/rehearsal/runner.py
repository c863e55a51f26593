"""Steps and commands of a rehearsal: progress on the terminal, full output in a log, the first failure stops all."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lakeops.errors import LakeopsError

LOG_TAIL_LINES = 25


class StepFailed(LakeopsError):
    """A rehearsal step failed; the message names the step and shows the end of its output."""


@dataclass
class StepRecord:
    name: str
    seconds: float = 0.0
    ok: bool = True
    detail: str = ""


@dataclass
class Runner:
    """Runs named steps in order and the commands inside them, logging everything to `log_path`."""

    log_path: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    steps: list[StepRecord] = field(default_factory=list)
    _current: StepRecord | None = None

    @contextmanager
    def step(self, name: str) -> Iterator[StepRecord]:
        record = StepRecord(name)
        self.steps.append(record)
        self._current = record
        print(f"▶ {name}", flush=True)
        started = time.monotonic()
        try:
            yield record
        except BaseException as exc:
            record.ok = False
            record.seconds = time.monotonic() - started
            message = exc.args[0] if isinstance(exc, LakeopsError) and exc.args else f"{type(exc).__name__}: {exc}"
            record.detail = str(message).splitlines()[0][:200] if message else type(exc).__name__
            print(f"✗ {name} ({record.seconds:.1f}s)", flush=True)
            if isinstance(exc, StepFailed):
                raise
            if isinstance(exc, Exception):  # an AWS error, a failed job...: this step failed, with its message
                raise StepFailed(f"step '{name}' failed: {message}") from exc
            raise  # KeyboardInterrupt, SystemExit: stop everything (the emulator is still stopped on the way out)
        record.seconds = time.monotonic() - started
        suffix = f": {record.detail}" if record.detail else ""
        print(f"✓ {name} ({record.seconds:.1f}s){suffix}", flush=True)

    def run(
        self,
        command: str | Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str | None] | None = None,
        unset: Sequence[str] = (),
        label: str | None = None,
    ) -> str:
        """Run one command (a shell string as the pipeline's buildspec would, or an argv list).

        `unset` (and a None in `env`) removes variables from its environment: unit tests and synth run without
        any AWS access, as they do in the pipeline, so neither can reach the emulator by accident.
        """
        shown = command if isinstance(command, str) else " ".join(command)
        print(f"    $ {label or shown}", flush=True)
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(f"\n$ (cd {cwd} && {shown})\n")
            log.flush()
            started = time.monotonic()
            result = subprocess.run(
                command,
                cwd=cwd,
                env={k: v for k, v in {**self.env, **(env or {})}.items() if k not in unset and v is not None},
                shell=isinstance(command, str),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                check=False,
            )
            log.write(result.stdout)
            log.write(f"[exit {result.returncode} after {time.monotonic() - started:.1f}s]\n")
        if result.returncode != 0:
            tail = "\n".join(result.stdout.splitlines()[-LOG_TAIL_LINES:])
            step = self._current.name if self._current else "rehearsal"
            raise StepFailed(
                f"step '{step}': `{label or shown}` exited {result.returncode}\n{tail}\n(full log: {self.log_path})"
            )
        return result.stdout

    def note(self, text: str) -> None:
        print(f"    {text}", flush=True)
