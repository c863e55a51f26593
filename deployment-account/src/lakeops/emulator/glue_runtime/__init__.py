"""What an emulated Glue run puts first on its Python path: `awsglue` (a stand-in for Glue's library) and `launch.py`.

The emulator never imports these; a run's child process does (see `lakeops.emulator.glue_runs`). They use the
standard library, and pyspark where Spark is involved, which the Glue runtime interpreter brings.
"""
