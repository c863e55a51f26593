"""The JSON Schema of config.yaml, so editors validate and autocomplete it."""

from __future__ import annotations

import json
from typing import Any

from datalake_config.model import LakeConfig

SCHEMA_ID = "https://json-schema.org/draft/2020-12/schema"


def json_schema() -> dict[str, Any]:
    schema = LakeConfig.model_json_schema()
    return {"$schema": SCHEMA_ID, "title": "Data lake shared configuration", **schema}


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
