"""`DynamicFrame`: records read by `create_dynamic_frame.from_options`, over a Spark DataFrame.

Glue's DynamicFrame types each record on its own: a field holding values of several types becomes a
`choice`, and a record the reader cannot parse becomes an error record. Here Spark reads the files, and so:
- No field is ever a `choice`: Spark's schema inference settles a field with several types on one type
  (usually string), so such a value reaches `toDF()` in the widened type, where Glue would keep each value
  with its own type until `resolveChoice`. `resolveChoice` therefore has nothing to resolve.
- JSON records Spark cannot parse are the error records (`errorsAsDynamicFrame()`): one row each, with
  the raw text in `record`. Glue's own error record layout is not documented; only "there is one per bad
  record, and it carries the input" is emulated. CSV is read without type inference (every column a
  string, as written in the file), so a CSV record is never an error.
- Partition columns (`key=value` folders below a path) are added as Spark adds them to a folder read.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql.types import StructType


class DynamicFrame:
    def __init__(self, frame: DataFrame, errors: DataFrame, glue_ctx: Any, name: str = "") -> None:
        self._frame = frame
        self._errors = errors
        self.glue_ctx = glue_ctx
        self.name = name

    def toDF(self) -> DataFrame:  # noqa: N802 (Glue's name)
        return self._frame

    def schema(self) -> StructType:
        """The records' schema: fields with `name` and `dataType.typeName()`, none of them a choice here."""
        schema: StructType = self._frame.schema
        return schema

    def count(self) -> int:
        rows: int = self._frame.count()
        return rows

    def resolveChoice(self, specs: Any = None, choice: str = "", **options: Any) -> DynamicFrame:  # noqa: N802
        """The same records: Spark's reads produce no choice fields (see the module docstring)."""
        return self

    def errorsAsDynamicFrame(self) -> DynamicFrame:  # noqa: N802 (Glue's name)
        empty = self._errors.sparkSession.createDataFrame([], StructType([]))
        return DynamicFrame(self._errors, empty, self.glue_ctx, f"{self.name}_errors")
