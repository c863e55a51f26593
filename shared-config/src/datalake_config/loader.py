"""The one loader: read YAML or JSON, validate every rule, and report every problem at once."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from datalake_config.model import LakeConfig
from datalake_config.rules import cross_field_problems

# The example config, shipped beside the package in this repository layout.
DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[2] / "config.yaml"


class ConfigError(ValueError):
    """A config that cannot be used; `problems` lists each one as `field: message`."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"{source}: {len(problems)} {noun}:\n{lines}")


def load(path: str | Path = DEFAULT_CONFIG_PATH) -> LakeConfig:
    """Load and validate the config file at `path` (YAML or JSON)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    return loads(text, source=str(path))


def loads(text: str, *, source: str = "<config>") -> LakeConfig:
    """Validate config text; JSON is accepted too, since it is a subset of YAML."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(source, [f"{where}not valid YAML ({getattr(exc, 'problem', exc)})"]) from None
    return from_mapping(raw, source=source)


def from_mapping(raw: Any, *, source: str = "<config>") -> LakeConfig:
    """Validate an already-parsed mapping."""
    if not isinstance(raw, Mapping):
        raise ConfigError(source, [f"the top level must be a mapping of keys to values, got {type(raw).__name__}"])
    problems: list[str] = []
    config: LakeConfig | None = None
    try:
        config = LakeConfig.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_describe(error) for error in exc.errors())
    problems.extend(f"{field}: {message}" for field, message in cross_field_problems(raw))
    if problems or config is None:
        raise ConfigError(source, problems)
    return config


def dumps_json(config: LakeConfig) -> str:
    """The canonical JSON form: what is published to Secrets Manager and pulled back for synth."""
    return json.dumps(config.model_dump(mode="json"), indent=2, sort_keys=False) + "\n"


def _describe(error: Any) -> str:
    loc = [str(part) for part in error["loc"] if not _is_union_tag(part)]
    field = ".".join(loc) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{field}: unknown key{_suggestion(error['loc'])}"
    if kind == "missing":
        return f"{field}: is required"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        message = f"must match {error['ctx']['pattern']}"
    got = error.get("input")
    if isinstance(got, (str, int, float, bool)) or got is None:
        return f"{field}: {message}, got {got!r}"
    return f"{field}: {message}"


def _is_union_tag(part: Any) -> bool:
    # pydantic inserts the discriminator value into the location of a tagged-union member
    return part in ("codecommit", "codeconnections")


def _suggestion(loc: tuple[Any, ...]) -> str:
    """For a misspelt key, name the closest allowed key: `retian_data` → did you mean `retain_data`?"""
    model: type[BaseModel] | None = LakeConfig
    for part in loc[:-1]:
        field = model.model_fields.get(str(part)) if model else None
        if field is not None:
            model = _model_of(field.annotation)
        # otherwise `part` is a key of a dict-typed field (an environment name): the model stays
    if model is None:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(model.model_fields)})"


def _model_of(annotation: Any) -> type[BaseModel] | None:
    candidates = [annotation, *getattr(annotation, "__args__", ())]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
        for inner in getattr(candidate, "__args__", ()):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    return None
