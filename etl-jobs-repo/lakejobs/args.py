"""Typed job arguments parsed from a Glue-style `sys.argv` (`--name value` pairs), with secrets redacted for logs.

Glue hands a job its own arguments mixed with options it adds or reads itself (`--JOB_ID`, `--JOB_RUN_ID`,
`--job-bookmark-option`, `--TempDir`, `--enable-metrics`, `--custom-logGroup-prefix`, `--executor-cores`, ...).
Those pass through untouched and are kept apart in `JobArgs.system`. The job's own arguments have one shape,
lowercase words joined by underscores (`--output_current`): Glue's `getResolvedOptions` resolves only names
without hyphens, and `Arg` names are lowercase. A name of that shape the job did not declare is an error, so
a typo such as `--ouput_current` fails the run before it reads a byte instead of being silently ignored.

The argument list accepted, and why (AWS Glue developer guide, "Using job parameters in AWS Glue jobs" and
"Accessing parameters using getResolvedOptions"; AWS Knowledge Center, "cloudformation-glue-special-parameters"):
- Glue passes the run's resolved arguments (the job's NonOverridableArguments over the run's Arguments over the
  job's DefaultArguments) and its own options to the script as `--key value` pairs, keys as given. Its own
  `getResolvedOptions` reads them with argparse's `parse_known_args`: a name it was not asked for is ignored,
  and `--key=value` works as well as `--key value`. Both forms are accepted here.
- Glue's options are named in its own spellings: hyphenated (`--enable-metrics`), camel case (`--TempDir`,
  `--custom-logGroup-prefix`) or capitals (`--JOB_RUN_ID`), and new ones appear with new Glue versions. So
  anything that is not shaped like a job argument is Glue's and passes through, rather than a list of known
  names that would refuse next year's option; a handful of Glue options that happen to be shaped like job
  arguments (`--conf`, `--debug`, ...) are listed. A near miss of a declared name (`--output-current`,
  `--Output_Current`) is refused as the typo it is.
- Some options are flags whose presence switches a feature on; a template must still give them a value,
  and the documented way is the empty string. Whether the value then reaches `sys.argv` as `""` or not at
  all is not documented, so a Glue option directly followed by the next option (or ending the list) has the
  value `""` instead of being "missing". The job's own arguments always need a value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

REDACTED = "***"

# Options of Glue that are shaped like a job's own argument (lowercase and underscores): without this list
# they would be refused as undeclared job arguments. Every other Glue option is recognised by its shape.
GLUE_OPTIONS_SHAPED_LIKE_JOB_ARGS = frozenset({"conf", "debug", "mode", "endpoint", "class"})

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_COLUMN_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


class ArgumentError(ValueError):
    """Arguments that cannot start the job; the message names each offending argument."""


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected one of {', '.join(sorted(_TRUE | _FALSE))}")


def _parse_columns(text: str) -> tuple[str, ...]:
    columns = tuple(part.strip() for part in text.split(","))
    if not all(_COLUMN_RE.match(column) for column in columns):
        raise ValueError("expected comma-separated column names such as 'country,event_date'")
    return columns


# `tuple` is a list of column names, comma-separated: how the deployment passes an output's partition columns.
_CONVERTERS: dict[type, Callable[[str], Any]] = {
    str: str,
    int: int,
    float: float,
    bool: _parse_bool,
    tuple: _parse_columns,
}


@dataclass(frozen=True)
class Arg:
    """One declared argument: `--<name> <value>` converted to `type`; `secret` values never reach a log line."""

    name: str
    type: type = str
    default: Any = REQUIRED
    secret: bool = False
    help: str = ""

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(f"argument name {self.name!r}: use lowercase letters, digits and underscores")
        if self.type not in _CONVERTERS:
            raise ValueError(
                f"argument {self.name}: type must be one of str, int, float, bool, tuple (column names), "
                f"got {self.type!r}"
            )

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def convert(self, text: str) -> Any:
        try:
            return _CONVERTERS[self.type](text)
        except ValueError as exc:
            # The converter's own message quotes the value, so a secret gets none of it.
            detail = REDACTED if self.secret else f"{text!r} ({exc})"
            raise ArgumentError(f"--{self.name}: expected {self.type.__name__}, got {detail}") from None


@dataclass(frozen=True)
class JobArgs(Mapping[str, Any]):
    """Parsed values by argument name, plus the Glue system arguments seen (e.g. `JOB_RUN_ID`)."""

    parsed: Mapping[str, Any]
    declared: Mapping[str, Arg]
    system: Mapping[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        try:
            return self.parsed[name]
        except KeyError:
            raise KeyError(f"no argument {name!r}; declared: {', '.join(sorted(self.parsed))}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.parsed)

    def __len__(self) -> int:
        return len(self.parsed)

    def __repr__(self) -> str:
        # A repr is what ends up in tracebacks and debug logs: it must never show a secret.
        return f"JobArgs({self.redacted()!r})"

    def redacted(self) -> dict[str, str]:
        """Every value as text for logging, secrets shown as `***`."""
        return {
            name: REDACTED if self.declared[name].secret and value is not None else str(value)
            for name, value in sorted(self.parsed.items())
        }


@dataclass(frozen=True)
class ArgSpec:
    """The arguments a job accepts; `parse(sys.argv)` turns Glue's argument list into `JobArgs`."""

    args: tuple[Arg, ...]

    def __init__(self, *args: Arg) -> None:
        names = [a.name for a in args]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"arguments declared twice: {', '.join(duplicates)}")
        object.__setattr__(self, "args", tuple(args))

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.args]

    def parse(self, argv: Sequence[str]) -> JobArgs:
        """Parse `--name value` / `--name=value` pairs; argv[0] is skipped when it is not an option (a script path)."""
        tokens = list(argv)
        if tokens and not tokens[0].startswith("--"):
            tokens = tokens[1:]
        declared = {a.name: a for a in self.args}
        raw, system = self._pairs(tokens, declared)
        problems: list[str] = []
        unknown = sorted(set(raw) - set(declared))
        if unknown:
            problems.append(
                f"unknown argument(s) {', '.join('--' + n for n in unknown)}; "
                f"this job accepts {', '.join('--' + n for n in sorted(declared)) or 'none'}"
            )
        missing = sorted(a.name for a in self.args if a.required and a.name not in raw)
        if missing:
            problems.append(f"missing required argument(s) {', '.join('--' + n for n in missing)}")
        values: dict[str, Any] = {}
        for arg in self.args:
            if arg.name in raw:
                try:
                    values[arg.name] = arg.convert(raw[arg.name])
                except ArgumentError as exc:
                    problems.append(str(exc))
            elif not arg.required:
                values[arg.name] = arg.default
        if problems:
            raise ArgumentError("; ".join(problems))
        return JobArgs(parsed=values, declared=declared, system=system)

    @staticmethod
    def _pairs(tokens: list[str], declared: Mapping[str, Arg]) -> tuple[dict[str, str], dict[str, str]]:
        own: dict[str, str] = {}
        system: dict[str, str] = {}
        index = 0
        while index < len(tokens):
            token = tokens[index]
            if not token.startswith("--") or len(token) == 2:
                raise ArgumentError(f"expected an option like --name, got {token!r} at position {index}")
            name, has_inline, inline = token[2:].partition("=")
            is_own = name in declared or not is_system_argument(name)
            if not is_own:
                near = _near_miss(name, declared)
                if near is not None:
                    raise ArgumentError(f"--{name}: not an option of Glue; did you mean --{near}?")
            if has_inline:
                value = inline
                index += 1
            elif index + 1 < len(tokens) and not tokens[index + 1].startswith("--"):
                value = tokens[index + 1]
                index += 2
            elif not is_own:
                # A Glue flag given as "" in the job definition (see the module docstring): present, no value.
                value = ""
                index += 1
            else:
                raise ArgumentError(f"--{name}: missing value")
            if not is_own:
                # Glue's own parser lets the last occurrence win; so does this.
                system[name] = value
                continue
            if name in own:
                raise ArgumentError(f"--{name}: given twice")
            own[name] = value
        return own, system


def _near_miss(name: str, declared: Mapping[str, Arg]) -> str | None:
    """The declared name `name` spells differently (hyphens for underscores, capitals), if any."""
    normalised = name.replace("-", "_").lower()
    return normalised if normalised in declared else None


def is_system_argument(name: str) -> bool:
    """True for a name that is Glue's rather than a job's: not shaped like a job argument, or a listed Glue option."""
    return not _NAME_RE.match(name) or name in GLUE_OPTIONS_SHAPED_LIKE_JOB_ARGS


# Arguments the deployment sets on every job (etl_jobs.glue_job): each job accepts them without declaring them.
PLATFORM_ARGS = (
    Arg("group_name", default="", help="the job group, set by the deployment"),
    Arg("job_short_name", default="", help="the job's name within its group, set by the deployment"),
    Arg("quarantine_path", default="", help="where malformed records go, set when the job quarantines"),
    Arg("catalog_tables", default="", help="JSON: output name to its Glue table, for partition registration"),
)


def job_args(*args: Arg) -> ArgSpec:
    """A job's ArgSpec: its own arguments plus the platform's; a job may redeclare one (e.g. make it required)."""
    own = {a.name for a in args}
    return ArgSpec(*[a for a in PLATFORM_ARGS if a.name not in own], *args)
