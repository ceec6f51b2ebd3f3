"""The two partition dimensions every costagent asset shares, declared once.

``month`` is a calendar month; ``end_offset=1`` makes the month we are in exist, because the weekly
report is about the month so far. ``account`` is one AWS account per team, a dynamic dimension kept
in step with the teams registry. Multi-partition keys order dimensions by name: ``"<account>|<month>"``.
"""

from __future__ import annotations

import warnings
from datetime import UTC, date, datetime

import dagster as dg

from costagent_assets.partition_keys import ACCOUNT_DIMENSION, MONTH_DIMENSION, split_key
from costagent_assets.periods import Period, default_as_of, period
from costagent_assets.run_parameters import RunParameters

# The month-offset mapping below is marked beta; it is the documented way to read the previous month.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

# The demo organisation's history starts in January 2024; real sources can backfill from here.
FIRST_MONTH = "2024-01"

monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=FIRST_MONTH, end_offset=1, fmt="%Y-%m")
account_partitions = dg.DynamicPartitionsDefinition(name=ACCOUNT_DIMENSION)
month_account_partitions = dg.MultiPartitionsDefinition(
    {MONTH_DIMENSION: monthly_partitions, ACCOUNT_DIMENSION: account_partitions}
)

# Every asset processes all of a run's accounts together: Dagster's per-partition bookkeeping, not the
# computation, is what a run costs, so one ranged run per month beats one run per account by ~6x.
single_run = dg.BackfillPolicy.single_run()


def month_account_asset(**kwargs):
    """``@dg.asset`` with the month x account partitions and the single-run backfill policy every stage shares."""
    return dg.asset(partitions_def=month_account_partitions, backfill_policy=single_run, **kwargs)

def months_window(start_offset: int, end_offset: int) -> dg.MultiPartitionMapping:
    """The same account's partitions from ``start_offset`` to ``end_offset`` months away (inclusive).

    Months before the first partition, or never materialized, are simply absent from the input.
    """
    return dg.MultiPartitionMapping(
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
