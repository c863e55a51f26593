"""The CDC merge as a pure function: current state + change events → new current state (+ tombstones).

Rules, per key:
- the latest event wins, ordered by event timestamp, then the optional sequence column (a missing timestamp
  or sequence ranks lowest), then deletes before upserts, then the row content (so even exact-time ties
  resolve the same way in every run);
- the current row competes like an event with its own timestamp, so an older late event never overwrites it;
- a delete removes the key and leaves a tombstone (key + timestamp) that later merges use to reject upserts
  older than the delete; pass the tombstones back in to make merging batch A then B equal to B then A;
- merging the same batch twice gives the same result, whatever the row order;
- events without the op column are all upserts (a feed without deletes is still a valid feed);
- a row with a null key column is refused (ValueError naming the frame and the count): null keys would all
  compete as one key and collapse into one row. The conform step quarantines them before they get here.

`merge` ranks candidates with one window (row_number); `merge_groupby` is the textbook alternative (group
by key for the maximum ordering value, join back) kept for comparison: it needs a second pass over the
data for the join and measured slower here (see jobs/README.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as sf
from pyspark.sql.types import BooleanType, StructType

_IS_DELETE = "_cdc_is_delete"
_TIEBREAK = "_cdc_tiebreak"
_ORDER = "_cdc_order"
_RANK = "_cdc_rank"


@dataclass(frozen=True)
class CdcSpec:
    """How to read a change feed: key columns, event time, op column and its markers, optional sequence."""

    keys: tuple[str, ...]
    timestamp: str
    op: str | None = "op"
    sequence: str | None = None
    insert_markers: tuple[str, ...] = ("I", "insert")
    update_markers: tuple[str, ...] = ("U", "update")
    delete_markers: tuple[str, ...] = ("D", "delete")

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("CdcSpec.keys: at least one key column is needed")
        meta = [*self.keys, self.timestamp, *([self.sequence] if self.sequence else [])]
        if len(set(meta)) != len(meta):
            raise ValueError(f"CdcSpec: key, timestamp and sequence columns must differ, got {meta}")
        overlap = set(self.delete_markers) & (set(self.insert_markers) | set(self.update_markers))
        if overlap:
            raise ValueError(f"CdcSpec: markers both delete and upsert: {', '.join(sorted(overlap))}")

    @property
    def meta_columns(self) -> list[str]:
        return [*self.keys, self.timestamp, *([self.sequence] if self.sequence else [])]

    @property
    def known_ops(self) -> tuple[str, ...]:
        return (*self.insert_markers, *self.update_markers, *self.delete_markers)

    def unknown_op(self) -> Column:
        """True for an event whose op is missing or not a known marker: a rule for `split_malformed`."""
        if self.op is None:
            return sf.lit(False)
        return sf.col(self.op).isNull() | ~sf.col(self.op).isin(*self.known_ops)


@dataclass(frozen=True)
class MergeResult:
    """The new current state (live keys only) and the tombstones of deleted keys."""

    current: DataFrame
    tombstones: DataFrame


def tombstone_schema(current_schema: StructType, spec: CdcSpec) -> StructType:
    """Tombstones hold the key, timestamp and sequence of the delete that removed each key."""
    return StructType([current_schema[name] for name in spec.meta_columns])


def merge(current: DataFrame, events: DataFrame, spec: CdcSpec, *, tombstones: DataFrame | None = None) -> MergeResult:
    """Merge `events` into `current`: one window ranks every candidate per key; rank 1 survives."""
    candidates, columns = _candidates(current, events, spec, tombstones)
    window = Window.partitionBy(*spec.keys).orderBy(*_ordering(spec))
    winners = candidates.withColumn(_RANK, sf.row_number().over(window)).where(sf.col(_RANK) == 1).drop(_RANK)
    return _result(winners, columns, spec)


def merge_groupby(
    current: DataFrame, events: DataFrame, spec: CdcSpec, *, tombstones: DataFrame | None = None
) -> MergeResult:
    """Same result as `merge`, the straightforward way: max ordering value per key, joined back to the rows."""
    candidates, columns = _candidates(current, events, spec, tombstones)
    ordered = candidates.withColumn(_ORDER, _order_struct(spec))
    best = ordered.groupBy(*spec.keys).agg(sf.max(_ORDER).alias("_cdc_best"))
    joined = ordered.join(best, on=list(spec.keys)).where(sf.col(_ORDER).eqNullSafe(sf.col("_cdc_best")))
    # Rows tied on the full ordering value are identical in content, so any one of them is the winner.
    winners = joined.dropDuplicates(list(spec.keys)).drop(_ORDER, "_cdc_best")
    return _result(winners, columns, spec)


def _candidates(
    current: DataFrame, events: DataFrame, spec: CdcSpec, tombstones: DataFrame | None
) -> tuple[DataFrame, list[str]]:
    _require(current, spec.meta_columns, "current state")
    _refuse_null_keys(spec, [("current state", current), ("events", events), ("tombstones", tombstones)])
    value_columns = [c for c in current.columns if c not in spec.meta_columns]
    _require(events, [*spec.meta_columns, *value_columns], "events")
    types = {f.name: f.dataType for f in current.schema.fields}
    meta = [sf.col(c).cast(types[c]).alias(c) for c in spec.meta_columns]

    def shaped(frame: DataFrame, is_delete: Column, with_values: bool) -> DataFrame:
        deleted = is_delete.cast(BooleanType())
        # Deleted keys keep no content, whatever the delete event carried.
        values = [
            (sf.when(deleted, sf.lit(None)).otherwise(sf.col(c)) if with_values else sf.lit(None))
            .cast(types[c])
            .alias(c)
            for c in value_columns
        ]
        shaped_frame = frame.select(*meta, deleted.alias(_IS_DELETE), *values)
        content = sf.to_json(sf.struct(*[sf.col(c) for c in value_columns])) if value_columns else sf.lit("")
        # Deletes tie-break on an empty string: at equal time and sequence a delete already won on _IS_DELETE.
        return shaped_frame.withColumn(_TIEBREAK, sf.when(sf.col(_IS_DELETE), sf.lit("")).otherwise(content))

    if spec.op is not None and spec.op in events.columns:
        event_is_delete = sf.coalesce(sf.col(spec.op).isin(*spec.delete_markers), sf.lit(False))
    else:
        event_is_delete = sf.lit(False)
    candidates = shaped(current, sf.lit(False), with_values=True).unionByName(
        shaped(events, event_is_delete, with_values=True)
    )
    if tombstones is not None:
        _require(tombstones, spec.meta_columns, "tombstones")
        candidates = candidates.unionByName(shaped(tombstones, sf.lit(True), with_values=False))
    return candidates, list(current.columns)


def _ordering(spec: CdcSpec) -> list[Column]:
    return [
        sf.col(spec.timestamp).desc_nulls_last(),
        *([sf.col(spec.sequence).desc_nulls_last()] if spec.sequence else []),
        sf.col(_IS_DELETE).desc(),
        sf.col(_TIEBREAK).desc(),
    ]


def _order_struct(spec: CdcSpec) -> Column:
    # Struct comparison is field by field with null lowest: the same order as `_ordering`, reversed.
    fields = [spec.timestamp, *([spec.sequence] if spec.sequence else []), _IS_DELETE, _TIEBREAK]
    return sf.struct(*[sf.col(c) for c in fields])


def _result(winners: DataFrame, columns: list[str], spec: CdcSpec) -> MergeResult:
    live = winners.where(~sf.col(_IS_DELETE)).select(*columns)
    dead = winners.where(sf.col(_IS_DELETE)).select(*spec.meta_columns)
    return MergeResult(current=live, tombstones=dead)


def _require(frame: DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"CDC merge: {what} lacks column(s) {', '.join(missing)}; it has {', '.join(frame.columns)}")


def _refuse_null_keys(spec: CdcSpec, frames: Sequence[tuple[str, DataFrame | None]]) -> None:
    """Raise when any frame holds a row with a null key column; one Spark job counts them all."""
    any_null = sf.lit(False)
    for key in spec.keys:
        any_null = any_null | sf.col(key).isNull()
    counted: DataFrame | None = None
    for what, frame in frames:
        if frame is None:
            continue
        _require(frame, spec.keys, what)
        nulls = frame.where(any_null).select(sf.lit(what).alias("what"))
        counted = nulls if counted is None else counted.unionByName(nulls)
    if counted is None:
        return
    found = {row["what"]: row["count"] for row in counted.groupBy("what").count().collect()}
    if found:
        keys = ", ".join(spec.keys)
        problems = [f"{what}: {found[what]} row(s) with a null key ({keys})" for what, _ in frames if what in found]
        raise ValueError(f"CDC merge: {'; '.join(problems)}; quarantine them before merging")


def empty_tombstones(current: DataFrame, spec: CdcSpec) -> DataFrame:
    """No tombstones yet, with the schema `current` implies (a first run)."""
    return current.sparkSession.createDataFrame([], tombstone_schema(current.schema, spec))
