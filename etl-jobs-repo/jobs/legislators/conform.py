"""legislators/conform: raw persons, memberships and organizations (JSON lines) → typed, cleaned parquet.

Records that are not JSON, miss a required field or break a rule go to the quarantine with a reason and a
count. Every run reads every delivery (a delivery is a file set under the raw prefixes), so a record that
a later delivery repeats or corrects is there more than once: each dataset keeps one record per key, the
one from the delivery that arrived last (its file's modification time, then its path: `latest_delivery`).
Without that, enrich would join every copy and multiply the history. Each conformed dataset is rebuilt
idempotently: a rerun replaces it, never purging first.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as sf
from pyspark.sql.types import DateType, StringType, StructField, StructType

from lakejobs.args import Arg, JobArgs, job_args
from lakejobs.context import JobContext
from lakejobs.io import enforce_malformed_limit, latest_delivery, rebuild_dataset, split_malformed, write_quarantine

PERSONS = StructType(
    [
        StructField("id", StringType()),
        StructField("name", StringType()),
        StructField("given_name", StringType()),
        StructField("family_name", StringType()),
        StructField("gender", StringType()),
        StructField("birth_date", DateType()),
        StructField("death_date", DateType()),
    ]
)
MEMBERSHIPS = StructType(
    [
        StructField("person_id", StringType()),
        StructField("organization_id", StringType()),
        StructField("role", StringType()),
        StructField("start_date", DateType()),
        StructField("end_date", DateType()),
    ]
)
ORGANIZATIONS = StructType(
    [
        StructField("id", StringType()),
        StructField("name", StringType()),
        StructField("classification", StringType()),
    ]
)
# The identity of a record across deliveries, per dataset.
KEYS = {"persons": ("id",), "memberships": ("person_id", "organization_id", "start_date"), "organizations": ("id",)}
# Each raw row's file (path and modification time): which delivery it came from.
DELIVERY = "_delivery"
CLASSIFICATIONS = ("legislature", "party", "chamber")
GENDERS = ("female", "male", "other")

ARGS = job_args(
    Arg("input_raw_persons"),
    Arg("input_raw_memberships"),
    Arg("input_raw_organizations"),
    Arg("output_persons"),
    Arg("output_memberships"),
    Arg("output_organizations"),
    Arg("quarantine_path", help="malformed records, per dataset and run"),
    Arg("max_malformed_fraction", float, default=0.5, help="fail the run when more of a dataset is malformed"),
)


# --- transforms: DataFrame → DataFrame, nothing else ---------------------------------------------


def _trimmed(column: str) -> Column:
    return sf.nullif(sf.trim(sf.col(column)), sf.lit(""))


def conform_persons(persons: DataFrame, *keep: str) -> DataFrame:
    return persons.select(
        _trimmed("id").alias("id"),
        _trimmed("name").alias("name"),
        _trimmed("given_name").alias("given_name"),
        _trimmed("family_name").alias("family_name"),
        sf.lower(_trimmed("gender")).alias("gender"),
        "birth_date",
        "death_date",
        *keep,
    )


def conform_memberships(memberships: DataFrame, *keep: str) -> DataFrame:
    return memberships.select(
        _trimmed("person_id").alias("person_id"),
        _trimmed("organization_id").alias("organization_id"),
        sf.lower(_trimmed("role")).alias("role"),
        "start_date",
        "end_date",
        *keep,
    )


def conform_organizations(organizations: DataFrame, *keep: str) -> DataFrame:
    return organizations.select(
        _trimmed("id").alias("id"),
        _trimmed("name").alias("name"),
        sf.lower(_trimmed("classification")).alias("classification"),
        *keep,
    )


def person_rules() -> dict[str, Column]:
    return {
        f"gender must be one of {', '.join(GENDERS)}": ~sf.lower(sf.trim(sf.col("gender"))).isin(*GENDERS),
        "death_date before birth_date": sf.col("death_date") < sf.col("birth_date"),
    }


def membership_rules() -> dict[str, Column]:
    return {"end_date before start_date": sf.col("end_date") < sf.col("start_date")}


def organization_rules() -> dict[str, Column]:
    return {
        f"classification must be one of {', '.join(CLASSIFICATIONS)}": ~sf.lower(
            sf.trim(sf.col("classification"))
        ).isin(*CLASSIFICATIONS)
    }


# --- the flow -------------------------------------------------------------------------------------


def main(context: JobContext, args: JobArgs) -> Mapping[str, Mapping[str, int]]:
    datasets = (
        ("persons", PERSONS, ("id", "name"), person_rules(), conform_persons),
        (
            "memberships",
            MEMBERSHIPS,
            ("person_id", "organization_id", "start_date"),
            membership_rules(),
            conform_memberships,
        ),
        ("organizations", ORGANIZATIONS, ("id", "name", "classification"), organization_rules(), conform_organizations),
    )
    for name, schema, required, rules, conform in datasets:
        raw = context.read(f"raw_{name}", args[f"input_raw_{name}"], "json", schema, source_column=DELIVERY)
        good, malformed = split_malformed(raw, required=required, rules=rules)
        quarantined = write_quarantine(context, malformed, args["quarantine_path"], dataset=name)
        enforce_malformed_limit(name, quarantined, context.counts.read[f"raw_{name}"], args["max_malformed_fraction"])
        latest = latest_delivery(conform(good, DELIVERY), KEYS[name], DELIVERY)
        rebuild_dataset(context, latest, args[f"output_{name}"], dataset=name)
    return context.counts.as_dict()


if __name__ == "__main__":
    from lakejobs.context import run_in_glue

    run_in_glue(main, ARGS)
