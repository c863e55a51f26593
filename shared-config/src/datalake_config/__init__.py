"""The data lake's shared configuration: one validated model, one naming module, one publisher."""

from datalake_config.loader import PULLED_CONFIG_PATH, ConfigError, dumps_json, from_mapping, load, loads
from datalake_config.model import Environment, LakeConfig
from datalake_config.naming import EnvironmentNames, LakeNames, lake_names, names_for, tags

__all__ = [
    "PULLED_CONFIG_PATH",
    "ConfigError",
    "Environment",
    "EnvironmentNames",
    "LakeConfig",
    "LakeNames",
    "dumps_json",
    "from_mapping",
    "lake_names",
    "load",
    "loads",
    "names_for",
    "tags",
]
