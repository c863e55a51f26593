"""CloudWatch Logs retention from the config's day count (jsii exposes the enum by member name only)."""

from __future__ import annotations

from aws_cdk import aws_logs as logs

from datalake_config.model import LOG_RETENTION_DAYS

# Both sequences list CloudWatch's allowed periods in ascending order; INFINITE has no day count.
_BY_DAYS = dict(zip(LOG_RETENTION_DAYS, [m for m in logs.RetentionDays if m.name != "INFINITE"], strict=True))


def log_retention(days: int) -> logs.RetentionDays:
    try:
        return _BY_DAYS[days]
    except KeyError:
        raise ValueError(f"lifecycle.log_retention_days: {days} is not a CloudWatch Logs retention period") from None
