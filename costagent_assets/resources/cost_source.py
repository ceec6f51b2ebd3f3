"""What every cost source gives the pipeline: the same daily cost frame, and what getting it cost."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import dagster as dg
import polars as pl


def split_registered(frame: pl.DataFrame, account_ids: Sequence[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows of the accounts asked for, and per other account its provider (AWS unless the frame says)
    and total ``cost_usd``: returned so they are reported, never silently dropped."""
    wanted = pl.col("account_id").is_in(list(dict.fromkeys(account_ids)))
    others = frame.filter(~wanted)
    if "provider" not in others.columns:
        others = others.with_columns(pl.lit("aws").alias("provider"))
    unregistered = others.group_by(["account_id", "provider"]).agg(pl.col("cost_usd").sum()).sort("account_id")
    return frame.filter(wanted), unregistered


class CostSourceError(RuntimeError):
    """A source could not deliver: refused credentials, retries used up, unreadable files.

    The message says what to fix and never holds a secret; the run fails rather than store partial data.
    """


@dataclass
class SourceFetch:
    """One source query's result: the daily rows and what the query cost.

    ``costs`` holds the ``raw_costs`` columns (without ``month``). ``requests`` counts billable API
    calls (retries included) and ``cost_usd`` what they cost; ``unregistered`` lists accounts the
    source returned but the run did not ask for (``account_id``, ``provider``, ``cost_usd``), so they
    are reported rather than silently dropped.
    """

    costs: pl.DataFrame
    requests: int = 0
    cost_usd: float = 0.0
    retries: int = 0
    unregistered: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(
            schema={"account_id": pl.String, "provider": pl.String, "cost_usd": pl.Float64}
        )
    )
    notes: list[str] = field(default_factory=list)


class CostSource(dg.ConfigurableResource):
    """Base of the demo, Datadog, Cost Explorer and FOCUS sources; ``raw_costs`` depends only on this.

    ``daily_costs`` returns the ``raw_costs`` columns (without ``month``): one row per day, account,
    service, region and usage type. An account missing from the result means "no data", never $0.
    Sources that call a paid or rate-limited API override ``fetch`` to report their usage too.
    """

    @property
    def name(self) -> str:
        raise NotImplementedError

    def daily_costs(self, account_ids: Sequence[str], start: date, end: date, as_of: date) -> pl.DataFrame:
        """Daily rows for ``account_ids`` from ``start`` to ``end`` inclusive, as known on ``as_of``."""
        return self.fetch(account_ids, start, end, as_of).costs

    def fetch(self, account_ids: Sequence[str], start: date, end: date, as_of: date) -> SourceFetch:
        """Daily rows for ``account_ids`` from ``start`` to ``end`` inclusive, with the query's usage."""
        if type(self).daily_costs is CostSource.daily_costs:
            raise NotImplementedError(f"{type(self).__name__} implements neither fetch nor daily_costs")
        return SourceFetch(self.daily_costs(account_ids, start, end, as_of))

    def sources(self) -> list[CostSource]:
        """The sources a run reads: this one (several for ``CombinedCostSource``)."""
        return [self]
