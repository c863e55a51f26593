"""A stand-in for Glue's `awsglue` library in emulated job runs: only the entry points our jobs use.

- `awsglue.utils.getResolvedOptions` (and `GlueArgumentError`), as the real one parses `sys.argv`;
- `awsglue.context.GlueContext`: `spark_session`, and `create_dynamic_frame.from_options` reading `s3` paths
  in json, csv or parquet (`paths`, `recurse`), with bookmarks by `transformation_ctx`;
- `awsglue.dynamicframe.DynamicFrame`: `toDF`, `schema`, `count`, `resolveChoice`, `errorsAsDynamicFrame`;
- `awsglue.job.Job`: `init`, `isInitialized`, `commit` (bookmark state kept per job name by the emulator).

What it does differently from Glue is written where it does it (mostly `dynamicframe.py`). Importing the
package imports no pyspark: a script that only parses its arguments runs without Spark, as on Glue.
"""
