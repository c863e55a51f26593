"""The Glue catalog table describing one job output, in its zone's database."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_glue as glue
from constructs import Construct

from datalake_config import EnvironmentNames
from etl_jobs.contract import DeployTimeContract
from etl_jobs.layout import catalog_table_name
from etl_jobs.spec import Group, Location

# Hive input/output formats and SerDes per output format, as Athena and Glue crawlers declare them.
FORMATS = {
    "parquet": (
        "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
        {},
    ),
    "json": (
        "org.apache.hadoop.mapred.TextInputFormat",
        "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        "org.openx.data.jsonserde.JsonSerDe",
        {},
    ),
    "csv": (
        "org.apache.hadoop.mapred.TextInputFormat",
        "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        "org.apache.hadoop.hive.serde2.OpenCSVSerde",
        {"separatorChar": ",", "quoteChar": '"'},
    ),
}


class CatalogTable(Construct):
    """An external table over `s3://<zone bucket>/<prefix>` with the output's declared columns and partition keys."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: EnvironmentNames,
        contract: DeployTimeContract,
        group: Group,
        output: Location,
    ) -> None:
        super().__init__(scope, construct_id)
        input_format, output_format, serde, serde_parameters = FORMATS[output.format]
        self.output_name = output.name
        self.database_name = names.glue_database_name(output.zone)
        self.table_name = catalog_table_name(group, output.name)
        parameters = {"classification": output.format, "lake:group": group.name}
        if output.format == "csv":
            parameters["skip.header.line.count"] = "1"
        self.table = glue.CfnTable(
            self,
            "Table",
            catalog_id=cdk.Stack.of(self).account,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=self.table_name,
                description=f"{group.name}: output {output.name} ({output.format})",
                table_type="EXTERNAL_TABLE",
                parameters=parameters,
                partition_keys=[
                    glue.CfnTable.ColumnProperty(name=name, type=output.partition_types[name])
                    for name in output.partition_by
                ]
                or None,
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=contract.s3_url(output.zone, output.prefix),
                    input_format=input_format,
                    output_format=output_format,
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library=serde, parameters=serde_parameters or None
                    ),
                    columns=[
                        glue.CfnTable.ColumnProperty(name=name, type=type_) for name, type_ in output.columns.items()
                    ]
                    or None,
                ),
            ),
        )
