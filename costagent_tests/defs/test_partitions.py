"""The month-window mapping gives exactly Dagster's upstream partitions, and is stored as Dagster's mapping."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest
from dagster._core.definitions.partitions.context import partition_loading_context
from dagster._core.definitions.partitions.subset.all import AllPartitionsSubset
from dagster._core.definitions.partitions.subset.default import DefaultPartitionsSubset
from dagster._serdes import deserialize_value, serialize_value

from costagent_assets.defs.partitions import (
    DimensionwiseMultiPartitionMapping,
    month_account_partitions,
    months_window,
)
from costagent_assets.partition_keys import key_text
from costagent_assets.periods import months_between
from costagent_assets.report_context import TREND_MONTHS

ACCOUNTS = [f"{100000000000 + i}" for i in range(40)]
# Partitions exist up to the month after "now" (end_offset=1): December 2026 here.
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
# Every window the stages' inputs use (mom_changes, anomalies, forecast_backtest, forecasts, emails).
WINDOWS = [(-1, 0), (-2, 0), (-3, 0), (-6, -1), (-(TREND_MONTHS - 1), 0)]


def _dagsters(mapping: dg.MultiPartitionMapping) -> dg.MultiPartitionMapping:
    """The same mapping as Dagster's own class."""
    return dg.MultiPartitionMapping(dict(mapping.downstream_mappings_by_upstream_dimension))


def _subset(pairs):
    return DefaultPartitionsSubset({key_text(m, a) for m, a in pairs})


CASES = {
    "first month of history": _subset([("2024-01", a) for a in ACCOUNTS]),
    "second month": _subset([("2024-02", a) for a in ACCOUNTS[:3]]),
    "year boundary": _subset([("2025-01", a) for a in ACCOUNTS]),
    "year boundary, two months": _subset([(m, a) for m in ("2024-12", "2025-01") for a in ACCOUNTS]),
    "report month": _subset([("2026-11", a) for a in ACCOUNTS]),
    "month in progress (end offset)": _subset([("2026-12", a) for a in ACCOUNTS[:5]]),
    "partial accounts": _subset([("2025-06", a) for a in ACCOUNTS[::7]]),
    "one partition": _subset([("2025-03", ACCOUNTS[11])]),
    "not a rectangle": _subset([("2025-03", ACCOUNTS[0]), ("2024-02", ACCOUNTS[5]), ("2026-01", ACCOUNTS[9])]),
    "backfill range": _subset([(m, a) for m in months_between("2024-01", "2025-03") for a in ACCOUNTS]),
    "account not registered": _subset([("2025-05", "999999999999")]),
    "empty": DefaultPartitionsSubset(set()),
}


@pytest.fixture(scope="module")
def instance():
    """An in-memory instance holding the account partitions (shared: the tests only read it)."""
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("account", ACCOUNTS)
    return instance


def _keys(subset) -> set[str]:
    return {str(k) for k in subset.get_partition_keys()}


@pytest.mark.parametrize("window", WINDOWS, ids=str)
@pytest.mark.parametrize("case", CASES)
def test_same_upstream_partitions_as_dagsters_mapping(instance, window, case):
    ours = months_window(*window)
    downstream = CASES[case]
    args = (downstream, month_account_partitions, month_account_partitions, NOW, instance)
    got = ours.get_upstream_mapped_partitions_result_for_partitions(*args)
    expected = _dagsters(ours).get_upstream_mapped_partitions_result_for_partitions(*args)
    assert _keys(got.partitions_subset) == _keys(expected.partitions_subset)
    assert _keys(got.required_but_nonexistent_subset) == _keys(expected.required_but_nonexistent_subset)


def test_the_window_reaches_back_across_the_year_and_stops_at_the_first_month(instance):
    result = months_window(-2, 0).get_upstream_mapped_partitions_result_for_partitions(
        _subset([("2025-01", ACCOUNTS[0]), ("2024-01", ACCOUNTS[1])]),
        month_account_partitions, month_account_partitions, NOW, instance)
    assert _keys(result.partitions_subset) == {
        key_text(m, ACCOUNTS[0]) for m in ("2024-11", "2024-12", "2025-01")} | {key_text("2024-01", ACCOUNTS[1])}
    assert result.required_but_nonexistent_subset.is_empty


def test_all_partitions_downstream_is_left_to_dagster(instance):
    ours = months_window(-1, 0)
    with partition_loading_context(NOW, instance) as ctx:
        everything = AllPartitionsSubset(month_account_partitions, ctx)
    args = (everything, month_account_partitions, month_account_partitions, NOW, instance)
    got = ours.get_upstream_mapped_partitions_result_for_partitions(*args)
    expected = _dagsters(ours).get_upstream_mapped_partitions_result_for_partitions(*args)
    assert _keys(got.partitions_subset) == _keys(expected.partitions_subset)


class CountingIdentity(dg.IdentityPartitionMapping):
    """Dagster's identity mapping, counting how often it is asked."""

    calls = 0

    def get_upstream_mapped_partitions_result_for_partitions(self, *args, **kwargs):
        CountingIdentity.calls += 1
        return super().get_upstream_mapped_partitions_result_for_partitions(*args, **kwargs)


def test_the_account_dimension_is_mapped_once_not_once_per_account(instance):
    """The cost that grew as accounts x months: one identity mapping call per account per input."""
    base = months_window(-2, 0).downstream_mappings_by_upstream_dimension
    counting = {**base, "account": dg.DimensionPartitionMapping("account", CountingIdentity())}
    downstream = _subset([("2026-11", a) for a in ACCOUNTS])
    CountingIdentity.calls = 0
    result = DimensionwiseMultiPartitionMapping(counting).get_upstream_mapped_partitions_result_for_partitions(
        downstream, month_account_partitions, month_account_partitions, NOW, instance)
    assert CountingIdentity.calls == 1
    assert len(_keys(result.partitions_subset)) == 3 * len(ACCOUNTS)


def test_stored_as_dagsters_multi_partition_mapping():
    """Snapshots, the webserver and the daemon see the built-in mapping, byte for byte."""
    ours = months_window(-2, 0)
    text = serialize_value(ours)
    assert text == serialize_value(_dagsters(ours))
    loaded = deserialize_value(text)
    assert type(loaded) is dg.MultiPartitionMapping
    assert loaded == _dagsters(ours)


def test_the_stages_inputs_use_it_and_the_code_locations_snapshot_shows_dagsters_mapping():
    """What the webserver and the daemon read: the built-in mapping on the edge, the built-in partitions."""
    from dagster._core.remote_representation.external_data import RepositorySnap

    from costagent_assets.definitions import defs

    definitions = defs()
    graph = definitions.resolve_asset_graph()
    mapping = graph.get(dg.AssetKey("anomalies")).partition_mappings[dg.AssetKey("raw_costs")]
    assert isinstance(mapping, DimensionwiseMultiPartitionMapping)
    snap = deserialize_value(serialize_value(RepositorySnap.from_def(definitions.get_repository_def())))
    node = next(n for n in snap.asset_nodes if n.asset_key == dg.AssetKey("anomalies"))
    edge = next(e for e in node.parent_edges if e.parent_asset_key == dg.AssetKey("raw_costs"))
    assert type(edge.partition_mapping) is dg.MultiPartitionMapping
    assert edge.partition_mapping == _dagsters(mapping)
    assert type(node.partitions.get_partitions_definition()) is dg.MultiPartitionsDefinition


def _dagsters_definition() -> dg.MultiPartitionsDefinition:
    """The month x account partitions as Dagster's own class."""
    return dg.MultiPartitionsDefinition({d.name: d.partitions_def for d in month_account_partitions.partitions_defs})


RANGES = {
    "one partition": (("2025-03", ACCOUNTS[4]), ("2025-03", ACCOUNTS[4])),
    "a month, every account": (("2026-11", ACCOUNTS[0]), ("2026-11", ACCOUNTS[-1])),
    "a backfill across the year": (("2024-11", ACCOUNTS[0]), ("2025-02", ACCOUNTS[-1])),
    "some accounts, some months": (("2024-01", ACCOUNTS[3]), ("2024-06", ACCOUNTS[17])),
}


@pytest.mark.parametrize("case", RANGES)
def test_key_ranges_list_the_same_keys_in_the_same_order(instance, case):
    (m0, a0), (m1, a1) = RANGES[case]
    key_range = dg.PartitionKeyRange(key_text(m0, a0), key_text(m1, a1))
    listings = []
    for _ in range(2):
        got = month_account_partitions.get_partition_keys_in_range(key_range, instance)
        expected = _dagsters_definition().get_partition_keys_in_range(key_range, instance)
        assert got == expected
        assert all(isinstance(k, dg.MultiPartitionKey) for k in got)
        assert [k.keys_by_dimension for k in got] == [k.keys_by_dimension for k in expected]
        listings.append(got)
    # The second listing builds no key: it copies the first (Dagster's builds every key again).
    assert listings[0] is not listings[1]
    assert all(a is b for a, b in zip(*listings, strict=True))


def test_a_key_range_follows_the_accounts_as_they_change():
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("account", ["111111111111", "333333333333"])
    key_range = dg.PartitionKeyRange(key_text("2026-11", "111111111111"), key_text("2026-11", "333333333333"))
    assert len(month_account_partitions.get_partition_keys_in_range(key_range, instance)) == 2
    instance.delete_dynamic_partition("account", "333333333333")
    instance.add_dynamic_partitions("account", ["222222222222", "333333333333"])
    assert [str(k) for k in month_account_partitions.get_partition_keys_in_range(key_range, instance)] == [
        "111111111111|2026-11", "222222222222|2026-11", "333333333333|2026-11"]


def test_a_key_range_with_an_unknown_account_is_refused_as_dagster_refuses_it(instance):
    key_range = dg.PartitionKeyRange(key_text("2026-11", ACCOUNTS[0]), key_text("2026-11", "999999999999"))
    with pytest.raises(dg.DagsterInvalidInvocationError, match="999999999999"):
        _dagsters_definition().get_partition_keys_in_range(key_range, instance)
    with pytest.raises(dg.DagsterInvalidInvocationError, match="999999999999"):
        month_account_partitions.get_partition_keys_in_range(key_range, instance)


def test_the_partitions_are_stored_as_dagsters_multi_partitions():
    from dagster._core.definitions.partitions.snap import PartitionsSnap

    assert PartitionsSnap.from_def(month_account_partitions) == PartitionsSnap.from_def(_dagsters_definition())
    assert month_account_partitions == _dagsters_definition()
