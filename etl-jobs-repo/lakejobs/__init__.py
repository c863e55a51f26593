"""The job library every Glue job imports: argument parsing, job context, sources/sinks and the CDC merge.

Shipped to Glue as a zip (`--extra-py-files`). Nothing here imports `awsglue` at module level, so every
module also runs on a laptop's local Spark; the Glue wiring sits in `context.GlueJobContext`, which job
scripts build only under `if __name__ == "__main__":`.
"""
