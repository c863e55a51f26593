"""The CDC merge: examples, a pure-Python reference model with its properties, and Spark checked against it.

Spark costs a fraction of a second per action, so the many-example property runs use the reference model;
hypothesis then drives the Spark merge (both formulations) on modest numbers of generated batches and
requires it to agree with the model, to be idempotent and to be independent of batch and row order.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakejobs.cdc import CdcSpec, MergeResult, empty_tombstones, merge, merge_groupby

SPEC = CdcSpec(keys=("k",), timestamp="ts", sequence="seq")
STATE = "k string, ts long, seq long, v long"
EVENTS = "k string, op string, ts long, seq long, v long"
TOMBS = "k string, ts long, seq long"
Event = tuple[str, str, int, int | None, int]
Merge = Callable[..., MergeResult]
SPARK_SETTINGS = settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# --- reference model --------------------------------------------------------------------------------


def _order(ts: int, seq: int | None, is_delete: bool, v: int | None) -> tuple[Any, ...]:
    # Mirrors the Spark ordering: time, then sequence (missing lowest), deletes first, then content as JSON text.
    content = "" if is_delete else json.dumps({"v": v}, separators=(",", ":"))
    return (ts, -1 if seq is None else seq, is_delete, content)


Model = tuple[dict[str, tuple[int, int | None, int]], dict[str, tuple[int, int | None]]]


def model_merge(state: Model, events: Iterable[Event]) -> Model:
    live, dead = state
    best: dict[str, tuple[tuple[Any, ...], tuple[int, int | None, int | None, bool]]] = {}

    def offer(key: str, ts: int, seq: int | None, v: int | None, is_delete: bool) -> None:
        order = _order(ts, seq, is_delete, v)
        if key not in best or order > best[key][0]:
            best[key] = (order, (ts, seq, v, is_delete))

    for key, (ts, seq, v) in live.items():
        offer(key, ts, seq, v, False)
    for key, (ts, seq) in dead.items():
        offer(key, ts, seq, None, True)
    for key, op, ts, seq, v in events:
        offer(key, ts, seq, None if op == "D" else v, op == "D")
    new_live = {k: (ts, seq, v) for k, (_, (ts, seq, v, d)) in best.items() if not d and v is not None}
    new_dead = {k: (ts, seq) for k, (_, (ts, seq, _v, d)) in best.items() if d}
    return new_live, new_dead


EMPTY: Model = ({}, {})

events_strategy = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d"]),
        st.sampled_from(["I", "U", "D"]),
        st.integers(0, 6),
        st.one_of(st.none(), st.integers(0, 2)),
        st.integers(0, 30),
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(events_strategy, events_strategy)
def test_model_is_idempotent_and_batch_order_independent(first: list[Event], second: list[Event]) -> None:
    once = model_merge(model_merge(EMPTY, first), second)
    assert model_merge(once, second) == once
    assert model_merge(model_merge(EMPTY, second), first) == once
    assert model_merge(EMPTY, first + second) == once


@settings(max_examples=300, deadline=None)
@given(events_strategy)
def test_model_honours_deletes_and_ignores_late_events(events: list[Event]) -> None:
    live, dead = model_merge(EMPTY, events)
    for key in {e[0] for e in events}:
        latest = max((e for e in events if e[0] == key), key=lambda e: _order(e[2], e[3], e[1] == "D", e[4]))
        if latest[1] == "D":
            assert key not in live and key in dead
        else:
            assert live[key] == (latest[2], latest[3], latest[4])
    for key, (ts, _seq, _v) in live.items():
        late = (key, "U", ts - 1, 2, 999)
        assert model_merge((live, dead), [late])[0][key] == live[key]


# --- Spark against the model --------------------------------------------------------------------
# One Spark merge checks many generated scenarios at once: each scenario's keys are prefixed with its
# number, and keys never interact, so the union behaves as the scenarios would one by one.

Scenario = tuple[list[Event], list[Event]]
scenarios_strategy = st.lists(st.tuples(events_strategy, events_strategy), min_size=1, max_size=25)


def tagged(scenarios: list[Scenario], pick: Callable[[Scenario], list[Event]]) -> list[Event]:
    return [
        (f"{n}:{key}", op, ts, seq, value)
        for n, scenario in enumerate(scenarios)
        for key, op, ts, seq, value in pick(scenario)
    ]


def to_model(result: MergeResult) -> Model:
    live = {r.k: (r.ts, r.seq, r.v) for r in result.current.collect()}
    dead = {r.k: (r.ts, r.seq) for r in result.tombstones.collect()}
    return live, dead


def spark_merge(spark: Any, how: Merge, state: Model, events: list[Event]) -> Model:
    live, dead = state
    current = spark.createDataFrame([(k, *row) for k, row in sorted(live.items())], STATE)
    tombstones = spark.createDataFrame([(k, *row) for k, row in sorted(dead.items())], TOMBS)
    return to_model(how(current, spark.createDataFrame(events, EVENTS), SPEC, tombstones=tombstones))


@pytest.mark.parametrize("how", [merge, merge_groupby], ids=["window", "groupby"])
@SPARK_SETTINGS
@given(scenarios=scenarios_strategy)
def test_spark_merge_agrees_with_the_model(spark: Any, how: Merge, scenarios: list[Scenario]) -> None:
    first, second = tagged(scenarios, lambda s: s[0]), tagged(scenarios, lambda s: s[1])
    after_first = spark_merge(spark, how, EMPTY, first)
    assert after_first == model_merge(EMPTY, first)
    assert spark_merge(spark, how, after_first, second) == model_merge(after_first, second)


@SPARK_SETTINGS
@given(scenarios=scenarios_strategy, seed=st.integers(0, 2**16))
def test_spark_merge_is_idempotent_and_order_independent(spark: Any, scenarios: list[Scenario], seed: int) -> None:
    first, second = tagged(scenarios, lambda s: s[0]), tagged(scenarios, lambda s: s[1])
    both = spark_merge(spark, merge, spark_merge(spark, merge, EMPTY, first), second)
    assert spark_merge(spark, merge, both, second) == both, "merging the same batch again changed the state"
    assert spark_merge(spark, merge, spark_merge(spark, merge, EMPTY, second), first) == both
    shuffled = first + second
    random.Random(seed).shuffle(shuffled)
    assert spark_merge(spark, merge, EMPTY, shuffled) == both


# --- examples ------------------------------------------------------------------------------------

CUSTOMERS = CdcSpec(keys=("id",), timestamp="ts")
CURRENT = "id string, ts timestamp, name string, country string"
CHANGES = "id string, op string, ts timestamp, name string, country string"


def day(n: int, hour: int = 0) -> datetime:
    return datetime(2024, 3, n, hour)


@pytest.fixture(scope="module")
def current(spark: Any) -> Any:
    return spark.createDataFrame([("a", day(2), "Ann", "DE"), ("b", day(2), "Bo", "FR")], CURRENT)


@pytest.mark.parametrize("how", [merge, merge_groupby], ids=["window", "groupby"])
def test_latest_wins_late_events_lose_deletes_remove(spark: Any, current: Any, same_rows: Any, how: Merge) -> None:
    changes = spark.createDataFrame(
        [
            ("a", "U", day(1), "too late", "DE"),  # older than the current row
            ("b", "U", day(3), "Bo moved", "IT"),  # moves to another partition
            ("b", "U", day(3, 1), "Bo moved again", "ES"),
            ("c", "I", day(3), "Cy", "DE"),
            ("c", "D", day(4), None, None),
            ("d", "I", day(5), "Di", "PT"),
        ],
        CHANGES,
    )
    result = how(current, changes, CUSTOMERS)
    expected = [("a", day(2), "Ann", "DE"), ("b", day(3, 1), "Bo moved again", "ES"), ("d", day(5), "Di", "PT")]
    same_rows(result.current, spark.createDataFrame(expected, CURRENT))
    assert [(r.id, r.ts) for r in result.tombstones.collect()] == [("c", day(4))]


def test_feed_without_op_column_is_all_upserts(spark: Any, current: Any, same_rows: Any) -> None:
    changes = spark.createDataFrame([("a", day(3), "Ann B", "DE"), ("z", day(3), "Zed", "FR")], CURRENT)
    result = merge(current, changes, CUSTOMERS)
    expected = [("a", day(3), "Ann B", "DE"), ("b", day(2), "Bo", "FR"), ("z", day(3), "Zed", "FR")]
    same_rows(result.current, spark.createDataFrame(expected, CURRENT))
    assert result.tombstones.count() == 0


def test_tombstones_stop_an_older_upsert_from_resurrecting_a_key(spark: Any, current: Any) -> None:
    deleted = merge(current, spark.createDataFrame([("a", "D", day(5), None, None)], CHANGES), CUSTOMERS)
    late = spark.createDataFrame([("a", "U", day(4), "Ann again", "DE")], CHANGES)
    remembered = merge(deleted.current, late, CUSTOMERS, tombstones=deleted.tombstones)
    assert sorted(r.id for r in remembered.current.collect()) == ["b"]
    newer = spark.createDataFrame([("a", "I", day(6), "Ann again", "DE")], CHANGES)
    reinserted = merge(deleted.current, newer, CUSTOMERS, tombstones=deleted.tombstones)
    assert sorted(r.id for r in reinserted.current.collect()) == ["a", "b"]
    assert reinserted.tombstones.count() == 0
    assert empty_tombstones(current, CUSTOMERS).columns == ["id", "ts"]


def test_missing_columns_and_bad_specs_are_named(spark: Any, current: Any) -> None:
    no_country = spark.createDataFrame([("a", "U", day(3), "x")], "id string, op string, ts timestamp, name string")
    with pytest.raises(ValueError, match="events lacks column\\(s\\) country"):
        merge(current, no_country, CUSTOMERS)
    with pytest.raises(ValueError, match="at least one key"):
        CdcSpec(keys=(), timestamp="ts")
    with pytest.raises(ValueError, match="must differ"):
        CdcSpec(keys=("ts",), timestamp="ts")
    with pytest.raises(ValueError, match="both delete and upsert: X"):
        CdcSpec(keys=("id",), timestamp="ts", update_markers=("X",), delete_markers=("X",))
