"""The one loader: read YAML or JSON, validate every rule, and report every problem at once."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from datalake_config.model import LakeConfig, Repository
from datalake_config.rules import cross_field_problems

# Where an app's pipeline writes the published config (`lake-config pull`), and so where synth reads it.
PULLED_CONFIG_PATH = Path(".lake/config.json")


class ConfigError(ValueError):
    """A config that cannot be used; `problems` lists each one as `field: message`."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"{source}: {len(problems)} {noun}:\n{lines}")


def load(path: str | Path = PULLED_CONFIG_PATH) -> LakeConfig:
    """Load and validate the config file at `path` (YAML or JSON); by default the pulled `.lake/config.json`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        hint = (
            " (pull the published config with `lake-config pull`, or pass another file, e.g. `-c config=PATH`)"
            if path == PULLED_CONFIG_PATH
            else ""
        )
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror}{hint}"]) from None
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
    raw_loc = tuple(error["loc"])
    loc = [str(part) for i, part in enumerate(raw_loc) if not _is_union_tag(raw_loc, i)]
    kind = error["type"]
    got = error.get("input")
    if loc and loc[-1] == "[key]":
        # pydantic reports a bad mapping key (an environment or tag name) as `<key>.[key]`
        loc.pop()
        if kind == "string_pattern_mismatch":
            return f"{'.'.join(loc)}: the name must match {error['ctx']['pattern']}, got {got!r}"
    field = ".".join(loc) or "(top level)"
    if kind == "extra_forbidden":
        return f"{field}: unknown key{_suggestion(raw_loc)}"
    if kind == "missing":
        return f"{field}: is required"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        message = f"must match {error['ctx']['pattern']}"
    if kind == "string_type" and isinstance(got, int) and not isinstance(got, bool):
        message = "must be a quoted string (YAML reads unquoted digits as a number and drops leading zeros)"
    if isinstance(got, (str, int, float, bool)) or got is None:
        return f"{field}: {message}, got {got!r}"
    return f"{field}: {message}"


def _is_union_tag(loc: tuple[Any, ...], index: int) -> bool:
    # pydantic inserts the discriminator value (the provider) after `source` in a tagged-union location
    return index > 0 and loc[index - 1] == "source" and loc[index] in _SOURCE_PROVIDERS


def _suggestion(loc: tuple[Any, ...]) -> str:
    """For a misspelt key, name the closest allowed key: `retian_data` → did you mean `retain_data`?"""
    candidates: list[type[BaseModel]] = [LakeConfig]
    for index, part in enumerate(loc[:-1]):
        if _is_union_tag(loc, index):
            candidates = [m for m in candidates if str(part) in _literal_values(m)] or candidates
            continue
        field = next((m.model_fields[str(part)] for m in candidates if str(part) in m.model_fields), None)
        if field is not None:
            candidates = _models_in(field.annotation)
        # otherwise `part` is a key of a dict-typed field (an environment name): the models stay
    if len(candidates) != 1:
        return ""
    allowed = list(candidates[0].model_fields)
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(allowed)})"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation can hold: itself, union members, list items or dict values."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for inner in get_args(annotation):
        found += [m for m in _models_in(inner) if m not in found]
    return found


def _literal_values(model: type[BaseModel]) -> set[str]:
    return {
        str(value)
        for field in model.model_fields.values()
        if get_origin(field.annotation) is Literal
        for value in get_args(field.annotation)
    }


_SOURCE_PROVIDERS = {
    value for model in _models_in(Repository.model_fields["source"].annotation) for value in _literal_values(model)
}
