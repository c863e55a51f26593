"""legislators/enrich: conformed persons × memberships × organizations → the curated legislator history.

One row per membership with the person's and the organization's attributes, partitioned by the kind of
organization (legislature or party). A membership whose person or organization is unknown is not joined
away: it goes to the quarantine with the reason, counted.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as sf
from pyspark.sql.types import DateType, StringType, StructField, StructType

from lakejobs.args import Arg, JobArgs, job_args
from lakejobs.context import JobContext
from lakejobs.io import rebuild_dataset, write_quarantine

# What the conform job writes (each script is uploaded on its own, so the schemas it reads live here;
# a test checks they match conform's output).
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
    [StructField("id", StringType()), StructField("name", StringType()), StructField("classification", StringType())]
)

ARGS = job_args(
    Arg("input_persons"),
    Arg("input_memberships"),
    Arg("input_organizations"),
    Arg("output_history"),
    Arg("partition_by_history", tuple, help="the history's partition columns, as group.yaml declares them"),
    Arg("quarantine_path", help="memberships naming an unknown person or organization"),
)


def legislator_history(
    persons: DataFrame, memberships: DataFrame, organizations: DataFrame
) -> tuple[DataFrame, DataFrame]:
    """(history, orphans): memberships joined to their person and organization; orphans carry a reason."""
    people = persons.select(
        sf.col("id").alias("_person_id"),
        sf.col("name").alias("person_name"),
        "gender",
        "birth_date",
        "death_date",
    )
    orgs = organizations.select(
        sf.col("id").alias("_organization_id"),
        sf.col("name").alias("organization_name"),
        sf.col("classification").alias("organization_type"),
    )
    joined = (
        memberships.join(people, memberships.person_id == people._person_id, "left")
        .join(orgs, memberships.organization_id == orgs._organization_id, "left")
        .withColumn(
            "_reason",
            sf.when(sf.col("_person_id").isNull(), sf.concat(sf.lit("unknown person_id "), sf.col("person_id"))).when(
                sf.col("_organization_id").isNull(),
                sf.concat(sf.lit("unknown organization_id "), sf.col("organization_id")),
            ),
        )
    )
    history = joined.where(sf.col("_reason").isNull()).select(
        "person_id",
        "person_name",
        "gender",
        "birth_date",
        "death_date",
        "organization_id",
        "organization_name",
        "role",
        "start_date",
        "end_date",
        sf.col("end_date").isNull().alias("is_current"),
        # Closed memberships only: an open one's length depends on the day the job runs.
        sf.when(sf.col("end_date").isNotNull(), sf.round(sf.months_between("end_date", "start_date") / 12, 1)).alias(
            "years_served"
        ),
        "organization_type",
    )
    orphans = joined.where(sf.col("_reason").isNotNull()).select(
        sf.col("_reason").alias("reason"),
        sf.to_json(sf.struct(*[sf.col(c) for c in memberships.columns])).alias("record"),
    )
    return history, orphans


def main(context: JobContext, args: JobArgs) -> Mapping[str, Mapping[str, int]]:
    persons = context.read("persons", args["input_persons"], "parquet", PERSONS)
    memberships = context.read("memberships", args["input_memberships"], "parquet", MEMBERSHIPS)
    organizations = context.read("organizations", args["input_organizations"], "parquet", ORGANIZATIONS)
    history, orphans = legislator_history(persons, memberships, organizations)
    write_quarantine(context, orphans, args["quarantine_path"], dataset="memberships")
    # The whole history is rebuilt: an organization type that lost every row is emptied, not left stale.
    rebuild_dataset(
        context, history, args["output_history"], dataset="history", partition_by=args["partition_by_history"]
    )
    return context.counts.as_dict()


if __name__ == "__main__":
    from lakejobs.context import run_in_glue

    run_in_glue(main, ARGS)
