"""What every cost source gives the pipeline: the same daily cost frame."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import dagster as dg
import polars as pl


class CostSource(dg.ConfigurableResource):
    """Base of the demo, Datadog, Cost Explorer and FOCUS sources; ``raw_costs`` depends only on this.

    ``daily_costs`` returns the ``raw_costs`` columns (without ``month``): one row per day, account,
    service, region and usage type. An account missing from the result means "no data", never $0.
    """

    @property
    def name(self) -> str:
        raise NotImplementedError

    def daily_costs(self, account_ids: Sequence[str], start: date, end: date, as_of: date) -> pl.DataFrame:
        """Daily rows for ``account_ids`` from ``start`` to ``end`` inclusive, as known on ``as_of``."""
        raise NotImplementedError
