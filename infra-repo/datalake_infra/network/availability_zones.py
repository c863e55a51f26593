"""Availability zones for a target environment, from committed context only (never a synth-time lookup)."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

# The fallback when cdk.context.json has no entry for an account/region: most regions have zones a, b, c.
FALLBACK_SUFFIXES = ("a", "b", "c")
FALLBACK_WARNING_ID = "datalake:availabilityZonesFallback"


def context_key(account: str, region: str) -> str:
    """The key under which the CDK CLI stores an account/region's availability zones in cdk.context.json."""
    return f"availability-zones:account={account}:region={region}"


def zones_from_context(scope: Construct, *, account: str, region: str) -> list[str]:
    """The zones recorded in context for account/region, else `<region>a/b/c` with a warning on `scope`."""
    key = context_key(account, region)
    recorded: Any = scope.node.try_get_context(key)
    if recorded is None:
        zones = [f"{region}{suffix}" for suffix in FALLBACK_SUFFIXES]
        cdk.Annotations.of(scope).add_warning_v2(
            FALLBACK_WARNING_ID,
            f"cdk.context.json has no '{key}'; assuming {', '.join(zones)}. Record the real zones "
            f"(`aws ec2 describe-availability-zones` in {account}) in cdk.context.json before deploying.",
        )
        return zones
    if not isinstance(recorded, list) or not recorded or not all(isinstance(z, str) and z for z in recorded):
        raise ValueError(f"context '{key}' must be a non-empty list of availability zone names, got {recorded!r}")
    return list(recorded)
