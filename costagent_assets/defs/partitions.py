"""The two partition dimensions every costagent asset shares, declared once.

``month`` is a calendar month; ``end_offset=1`` makes the month we are in exist, because the weekly
report is about the month so far. ``account`` is one AWS account per team, a dynamic dimension kept
in step with the teams registry. Multi-partition keys order dimensions by name: ``"<account>|<month>"``.
"""

from __future__ import annotations

import functools
import itertools
import warnings
from datetime import UTC, date, datetime

import dagster as dg
from dagster._core.definitions.partitions.context import partition_loading_context
from dagster._core.definitions.partitions.mapping.partition_mapping import UpstreamPartitionsResult
from dagster._core.definitions.partitions.subset.default import DefaultPartitionsSubset
from dagster_shared.serdes.serdes import _WHITELIST_MAP

from costagent_assets.partition_keys import ACCOUNT_DIMENSION, MONTH_DIMENSION, SEPARATOR, split_key
from costagent_assets.periods import Period, default_as_of, period
from costagent_assets.run_parameters import RunParameters

# The month-offset mapping below is marked beta; it is the documented way to read the previous month.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

# The demo organisation's history starts in January 2024; real sources can backfill from here.
FIRST_MONTH = "2024-01"


class MonthAccountPartitionsDefinition(dg.MultiPartitionsDefinition):
    """``dg.MultiPartitionsDefinition`` whose key ranges are listed once per range and dimension keys.

    Dagster lists a run's key range (building a ``MultiPartitionKey`` per account-month) every time it
    needs the run's partitions as a subset: for every step's output, each input (twice), the event
    records and ``context.partition_keys``, about 150 times in a weekly demo. The listing only depends
    on each dimension's keys in the range, which are still read every time (an account added or removed
    gives a new listing), so the same list is built once and copied.
    """

    def get_partition_keys_in_range(self, partition_key_range, dynamic_partitions_store=None):
        with partition_loading_context(dynamic_partitions_store=dynamic_partitions_store):
            start = self.get_partition_key_from_str(partition_key_range.start).keys_by_dimension
            end = self.get_partition_key_from_str(partition_key_range.end).keys_by_dimension
            dimension_keys = tuple(
                tuple(_dimension_keys_in_range(dim.partitions_def, start[dim.name], end[dim.name]))
                for dim in self.partitions_defs
            )
            return list(self._product_keys(dimension_keys))

    @functools.lru_cache(maxsize=4)  # noqa: B019 -- one module-level definition; a few ranges per run
    def _product_keys(self, dimension_keys: tuple[tuple[str, ...], ...]) -> tuple[dg.MultiPartitionKey, ...]:
        names = [dim.name for dim in self.partitions_defs]
        return tuple(dg.MultiPartitionKey(dict(zip(names, combination, strict=True)))
                     for combination in itertools.product(*dimension_keys))


def _dimension_keys_in_range(partitions_def: dg.PartitionsDefinition, start: str, end: str) -> list[str]:
    """One dimension's keys from ``start`` to ``end``, as Dagster lists them; a dynamic dimension's keys are
    read from the instance once, where Dagster reads them once and asks about each end once more."""
    if not (isinstance(partitions_def, dg.DynamicPartitionsDefinition) and partitions_def.name):
        return list(partitions_def.get_partition_keys_in_range(dg.PartitionKeyRange(start, end)))
    keys = list(partitions_def.get_partition_keys())
    position = {key: i for i, key in enumerate(keys)}
    missing = [key for key in dict.fromkeys((start, end)) if key not in position]
    if missing:
        raise dg.DagsterInvalidInvocationError(
            f"Partition range {start} to {end} is not a valid range. Nonexistent partition keys: {missing}")
    return keys[position[start]:position[end] + 1]


monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=FIRST_MONTH, end_offset=1, fmt="%Y-%m")
account_partitions = dg.DynamicPartitionsDefinition(name=ACCOUNT_DIMENSION)
month_account_partitions = MonthAccountPartitionsDefinition(
    {MONTH_DIMENSION: monthly_partitions, ACCOUNT_DIMENSION: account_partitions}
)

# Every asset processes all of a run's accounts together: Dagster's per-partition bookkeeping, not the
# computation, is what a run costs, so one ranged run per month beats one run per account by ~6x.
single_run = dg.BackfillPolicy.single_run()


def month_account_asset(**kwargs):
    """``@dg.asset`` with the month x account partitions and the single-run backfill policy every stage shares."""
    return dg.asset(partitions_def=month_account_partitions, backfill_policy=single_run, **kwargs)


class DimensionwiseMultiPartitionMapping(dg.MultiPartitionMapping):
    """``dg.MultiPartitionMapping`` with the same upstream partitions, found once per dimension key.

    Dagster's own mapping parses every downstream key twice, asks the dimension mappings once per distinct
    key, and builds a ``MultiPartitionKey`` object for every upstream key: about 0.1 s per input per
    1,000 account-months, paid twice per input and step (loading and data versions). A multi-partition
    mapping is a product: a downstream key's upstream keys are every combination of each dimension's
    mapped keys. So this one splits the keys as text, asks an ``IdentityPartitionMapping`` once for all of
    a dimension's keys (it maps each key to itself alone) and any other dimension mapping once per
    distinct key, and gives the upstream keys as text (``"<account>|<month>"``, which is what a
    ``MultiPartitionKey`` is as a ``str``). Cases it does not shape this way go to Dagster's code.

    It is stored exactly as a ``dg.MultiPartitionMapping`` (see below), so the UI, the daemon and
    snapshots see the built-in mapping.
    """

    def get_upstream_mapped_partitions_result_for_partitions(
        self,
        downstream_partitions_subset,
        downstream_partitions_def,
        upstream_partitions_def,
        current_time=None,
        dynamic_partitions_store=None,
    ) -> UpstreamPartitionsResult:
        if not (
            isinstance(downstream_partitions_subset, DefaultPartitionsSubset)
            and isinstance(downstream_partitions_def, dg.MultiPartitionsDefinition)
            and isinstance(upstream_partitions_def, dg.MultiPartitionsDefinition)
            and len(self.downstream_mappings_by_upstream_dimension) == len(upstream_partitions_def.partitions_defs)
        ):
            return super().get_upstream_mapped_partitions_result_for_partitions(
                downstream_partitions_subset, downstream_partitions_def, upstream_partitions_def,
                current_time, dynamic_partitions_store,
            )
        with partition_loading_context(current_time, dynamic_partitions_store):
            return self._upstream_by_dimension(downstream_partitions_subset, downstream_partitions_def,
                                               upstream_partitions_def)

    def _upstream_by_dimension(
        self,
        subset: DefaultPartitionsSubset,
        downstream_def: dg.MultiPartitionsDefinition,
        upstream_def: dg.MultiPartitionsDefinition,
    ) -> UpstreamPartitionsResult:
        dependencies = self.get_dimension_dependencies(upstream_def, downstream_def)
        downstream_names = downstream_def.partition_dimension_names
        upstream_names = upstream_def.partition_dimension_names
        keys = [str(key).split(SEPARATOR) for key in subset.get_partition_keys()]
        if any(len(parts) != len(downstream_names) for parts in keys):
            return super().get_upstream_mapped_partitions_result_for_partitions(
                subset, downstream_def, upstream_def)
        nonexistent: set[str] = set()
        # Per dependency: where its key sits in a downstream key, and each distinct key's upstream keys.
        columns, mapped = [], []
        for dependency in dependencies:
            column = downstream_names.index(dependency.downstream_dimension_name)
            values = {parts[column] for parts in keys}
            downstream_dim = downstream_def.get_partitions_def_for_dimension(dependency.downstream_dimension_name)
            upstream_dim = upstream_def.get_partitions_def_for_dimension(dependency.upstream_dimension_name)
            mapping = dependency.partition_mapping

            def upstream_of(dim_keys, mapping=mapping, downstream_dim=downstream_dim, upstream_dim=upstream_dim):
                result = mapping.get_upstream_mapped_partitions_result_for_partitions(
                    downstream_dim.empty_subset().with_partition_keys(dim_keys), downstream_dim, upstream_dim)
                nonexistent.update(result.required_but_nonexistent_subset.get_partition_keys())
                return result.partitions_subset.get_partition_keys()

            if isinstance(mapping, dg.IdentityPartitionMapping):
                present = set(upstream_of(values))
                by_value = {value: [value] if value in present else [] for value in values}
            else:
                by_value = {value: list(upstream_of([value])) for value in values}
            columns.append(column)
            mapped.append(by_value)
        # Upstream key text orders its dimensions by name, as MultiPartitionKey does.
        order = [upstream_names.index(d.upstream_dimension_name) for d in dependencies]
        slots = [order.index(i) for i in range(len(upstream_names))]
        upstream = set()
        for parts in keys:
            for combination in itertools.product(*(m[parts[c]] for c, m in zip(columns, mapped, strict=True))):
                upstream.add(SEPARATOR.join(combination[s] for s in slots))
        return UpstreamPartitionsResult(
            partitions_subset=upstream_def.empty_subset().with_partition_keys(upstream),
            required_but_nonexistent_subset=DefaultPartitionsSubset(nonexistent),
        )


# Serialized as Dagster's own MultiPartitionMapping (same fields, same meaning): the code location's
# snapshot is unchanged and the webserver and daemon read the built-in mapping. Dagster keys its
# serializers by class name; this is a private table, checked by test_partitions.py.
_WHITELIST_MAP.object_serializers[DimensionwiseMultiPartitionMapping.__name__] = (
    _WHITELIST_MAP.object_serializers[dg.MultiPartitionMapping.__name__]
)


def months_window(start_offset: int, end_offset: int) -> dg.MultiPartitionMapping:
    """The same account's partitions from ``start_offset`` to ``end_offset`` months away (inclusive).

    Months before the first partition, or never materialized, are simply absent from the input.
    """
    return DimensionwiseMultiPartitionMapping(
        {
            MONTH_DIMENSION: dg.DimensionPartitionMapping(
                MONTH_DIMENSION,
                dg.TimeWindowPartitionMapping(
                    start_offset=start_offset, end_offset=end_offset, allow_nonexistent_upstream_partitions=True
                ),
            ),
            ACCOUNT_DIMENSION: dg.DimensionPartitionMapping(ACCOUNT_DIMENSION, dg.IdentityPartitionMapping()),
        }
    )


# mom_changes reads the same account's raw costs for the previous month too; the first month has none.
previous_and_current_month = months_window(-1, 0)

# anomalies judges each day against the same weekdays of the four weeks before: it reads the account's
# raw costs of this month and the two before (any of them may never have been loaded).
trailing_three_months = months_window(-2, 0)


def make_key(month: str, account_id: str) -> dg.MultiPartitionKey:
    """The multi-partition key of one account-month."""
    return dg.MultiPartitionKey({MONTH_DIMENSION: month, ACCOUNT_DIMENSION: account_id})


def run_parameters(context: dg.AssetExecutionContext) -> RunParameters:
    """What the run was asked to do beyond its partitions (report date, AI, trigger): see run_parameters.py."""
    return RunParameters.from_tags(context.run.tags)


def run_as_of(context: dg.AssetExecutionContext) -> date:
    """The run's report date: its ``as_of`` parameter, else today (UTC)."""
    return run_parameters(context).as_of or datetime.now(UTC).date()


def run_partitions(context: dg.AssetExecutionContext) -> list[tuple[str, str]]:
    """Every (month, account_id) partition of this run."""
    return [split_key(k) for k in context.partition_keys]


def run_periods(context: dg.AssetExecutionContext, partitions: list[tuple[str, str]]) -> dict[str, Period]:
    """The covered period of each month in the run."""
    as_of = run_as_of(context)
    return {m: period(m, default_as_of(m, as_of)) for m in sorted({m for m, _ in partitions})}
