"""The CDC merge: examples, and hypothesis checking the Spark merge against the rules as documented.

The property tests do not re-implement the merge. For every key they compute only what the documented
rules pin down: the candidates (current row, tombstone, events) with the latest timestamp and, among those,
the highest sequence (a missing one ranks lowest). If one of those is a delete, the key must be a tombstone
with that time; otherwise the key must be live exactly once, holding one of those upserts' rows (which one,
when upserts tie on time and sequence, is the implementation's choice; that it is the same choice in every
run is what the order-independence property checks). Results are compared as lists of rows, never as dicts
keyed by the key, so a duplicate row per key cannot hide; and every non-key field, the sequence and the
timestamp are generated with nulls.

Spark costs a fraction of a second per action, so each example merges many generated scenarios at once:
each scenario's keys are prefixed with its number, and keys never interact.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakejobs.cdc import CdcSpec, MergeResult, empty_tombstones, merge, merge_groupby

SPEC = CdcSpec(keys=("k",), timestamp="ts", sequence="seq")
STATE = "k string, ts long, seq long, v long, w string"
EVENTS = "k string, op string, ts long, seq long, v long, w string"
TOMBS = "k string, ts long, seq long"
# (key, op, ts, seq, v, w) and a state: key → ("live", ts, seq, v, w) or ("dead", ts, seq)
Event = tuple[str, str, int | None, int | None, int | None, str | None]
State = dict[str, tuple[Any, ...]]
Rows = list[tuple[Any, ...]]
Merge = Callable[..., MergeResult]
SPARK_SETTINGS = settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

KEYS = ["a", "b", "c", "d"]
maybe_time = st.one_of(st.none(), st.integers(0, 5))
maybe_seq = st.one_of(st.none(), st.integers(0, 2))
maybe_v = st.one_of(st.none(), st.integers(0, 3))
maybe_w = st.one_of(st.none(), st.sampled_from(["x", "y", ""]))
events_strategy = st.lists(
    st.tuples(st.sampled_from(KEYS), st.sampled_from(["I", "U", "D"]), maybe_time, maybe_seq, maybe_v, maybe_w),
    max_size=8,
)
state_strategy = st.dictionaries(
    st.sampled_from(KEYS),
    st.one_of(
        st.tuples(st.just("live"), maybe_time, maybe_seq, maybe_v, maybe_w),
        st.tuples(st.just("dead"), maybe_time, maybe_seq),
    ),
    max_size=4,
)
Scenario = tuple[State, list[Event], list[Event]]
scenarios_strategy = st.lists(st.tuples(state_strategy, events_strategy, events_strategy), min_size=1, max_size=20)


# --- the rules, per key -----------------------------------------------------------------------------


def _rank(value: int | None) -> tuple[bool, int]:
    """Missing ranks lowest."""
    return (value is not None, 0 if value is None else value)


def rule_problems(live_in: Rows, dead_in: Rows, events: Sequence[Event], live_out: Rows, dead_out: Rows) -> list[str]:
    """What the merge result breaks of the documented rules (empty when it keeps them all)."""
    problems: list[str] = []
    live_keys = Counter(row[0] for row in live_out)
    dead_keys = Counter(row[0] for row in dead_out)
    problems += [f"{k}: {n} current rows" for k, n in live_keys.items() if n > 1]
    problems += [f"{k}: {n} tombstones" for k, n in dead_keys.items() if n > 1]
    problems += [f"{k}: both current and a tombstone" for k in live_keys.keys() & dead_keys.keys()]
    # candidate: (is_delete, ts, seq, the live row it would leave)
    candidates: dict[str, list[tuple[bool, int | None, int | None, tuple[Any, ...] | None]]] = {}
    for k, ts, seq, v, w in live_in:
        candidates.setdefault(k, []).append((False, ts, seq, (k, ts, seq, v, w)))
    for k, ts, seq in dead_in:
        candidates.setdefault(k, []).append((True, ts, seq, None))
    for k, op, ts, seq, v, w in events:
        candidates.setdefault(k, []).append((op == "D", ts, seq, None if op == "D" else (k, ts, seq, v, w)))
    problems += [f"{k}: not among the inputs" for k in (live_keys | dead_keys).keys() - candidates.keys()]
    live_rows = {row[0]: row for row in live_out}
    dead_rows = {row[0]: row for row in dead_out}
    for key, offered in candidates.items():
        latest_time = max(_rank(c[1]) for c in offered)
        at_latest_time = [c for c in offered if _rank(c[1]) == latest_time]
        latest_seq = max(_rank(c[2]) for c in at_latest_time)
        latest = [c for c in at_latest_time if _rank(c[2]) == latest_seq]
        if any(is_delete for is_delete, *_ in latest):
            _, ts, seq, _row = latest[0]
            if key in live_rows:
                problems.append(f"{key}: live as {live_rows[key]}, but a delete at ({ts}, {seq}) is the latest")
            elif dead_rows.get(key) != (key, ts, seq):
                problems.append(f"{key}: tombstone {dead_rows.get(key)}, expected {(key, ts, seq)}")
        else:
            allowed = {row for _d, _t, _s, row in latest}
            if key in dead_rows:
                problems.append(
                    f"{key}: a tombstone, but the latest candidates are upserts {sorted(allowed, key=repr)}"
                )
            elif live_rows.get(key) not in allowed:
                problems.append(f"{key}: live as {live_rows.get(key)}, expected one of {sorted(allowed, key=repr)}")
    return problems


# --- Spark --------------------------------------------------------------------------------------------


def tagged_state(scenarios: list[Scenario]) -> tuple[Rows, Rows]:
    live: Rows = []
    dead: Rows = []
    for n, (state, _first, _second) in enumerate(scenarios):
        for key, entry in sorted(state.items()):
            (live if entry[0] == "live" else dead).append((f"{n}:{key}", *entry[1:]))
    return live, dead


def tagged_events(scenarios: list[Scenario], batch: int) -> list[Event]:
    return [
        (f"{n}:{k}", op, ts, seq, v, w)
        for n, (_state, first, second) in enumerate(scenarios)
        for k, op, ts, seq, v, w in (first if batch == 1 else second)
    ]


def spark_merge(spark: Any, how: Merge, live: Rows, dead: Rows, events: Sequence[Event]) -> tuple[Rows, Rows]:
    """One merge on Spark; the result as sorted row lists (duplicates kept)."""
    result = how(
        spark.createDataFrame(live, STATE),
        spark.createDataFrame(list(events), EVENTS),
        SPEC,
        tombstones=spark.createDataFrame(dead, TOMBS),
    )
    return sorted((tuple(r) for r in result.current.collect()), key=repr), sorted(
        (tuple(r) for r in result.tombstones.collect()), key=repr
    )


@pytest.mark.parametrize("how", [merge, merge_groupby], ids=["window", "groupby"])
@SPARK_SETTINGS
@given(scenarios=scenarios_strategy)
def test_spark_merge_keeps_the_rules_with_nulls_everywhere_but_the_key(
    spark: Any, how: Merge, scenarios: list[Scenario]
) -> None:
    live, dead = tagged_state(scenarios)
    events = tagged_events(scenarios, 1)
    live_out, dead_out = spark_merge(spark, how, live, dead, events)
    assert rule_problems(live, dead, events, live_out, dead_out) == []


@pytest.mark.long
@SPARK_SETTINGS
@given(scenarios=scenarios_strategy, seed=st.integers(0, 2**16))
def test_spark_merge_is_idempotent_and_order_independent(spark: Any, scenarios: list[Scenario], seed: int) -> None:
    live, dead = tagged_state(scenarios)
    first, second = tagged_events(scenarios, 1), tagged_events(scenarios, 2)
    both = spark_merge(spark, merge, *spark_merge(spark, merge, live, dead, first), second)
    assert spark_merge(spark, merge, *both, second) == both, "merging the same batch again changed the state"
    assert spark_merge(spark, merge, *spark_merge(spark, merge, live, dead, second), first) == both
    shuffled = first + second
    random.Random(seed).shuffle(shuffled)
    assert spark_merge(spark, merge, live, dead, shuffled) == both


def test_the_rule_check_finds_what_a_wrong_merge_does() -> None:
    # The checker itself, on hand-made wrong results: a key twice, live and dead, a lost null-valued row.
    live_in: Rows = [("a", 1, None, None, None)]
    events: list[Event] = [("b", "D", 2, 0, None, None), ("c", "U", 3, None, None, "x")]
    right = rule_problems(live_in, [], events, [("a", 1, None, None, None), ("c", 3, None, None, "x")], [("b", 2, 0)])
    assert right == []
    twice = [("a", 1, None, None, None), ("a", 1, None, None, None), ("c", 3, None, None, "x")]
    assert "a: 2 current rows" in rule_problems(live_in, [], events, twice, [("b", 2, 0)])
    both = [("a", 1, None, None, None), ("b", 2, 0, None, None), ("c", 3, None, None, "x")]
    assert "b: both current and a tombstone" in rule_problems(live_in, [], events, both, [("b", 2, 0)])
    lost = rule_problems(live_in, [], events, [("c", 3, None, None, "x")], [("b", 2, 0)])
    assert lost == ["a: live as None, expected one of [('a', 1, None, None, None)]"]


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


@pytest.mark.parametrize("how", [merge, merge_groupby], ids=["window", "groupby"])
def test_null_keys_are_refused_not_collapsed_into_one_row(spark: Any, current: Any, how: Merge) -> None:
    changes = spark.createDataFrame(
        [(None, "I", day(3), "Nobody", "DE"), (None, "I", day(3), "Noone", "FR"), ("c", "I", day(3), "Cy", "IT")],
        CHANGES,
    )
    with pytest.raises(ValueError, match=r"CDC merge: events: 2 row\(s\) with a null key \(id\)"):
        how(current, changes, CUSTOMERS)
    keyless_state = spark.createDataFrame([(None, day(2), "Ghost", "DE")], CURRENT)
    with pytest.raises(ValueError, match=r"CDC merge: current state: 1 row\(s\) with a null key \(id\)"):
        how(keyless_state, changes.where("id is not null"), CUSTOMERS)
