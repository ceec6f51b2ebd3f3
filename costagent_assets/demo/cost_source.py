"""The built-in demo organisation as a cost source: no credentials, no network, deterministic."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl

from costagent_assets.demo import organisation as demo
from costagent_assets.resources.cost_source import CostSource


class DemoCostSource(CostSource):
    """Daily costs of the seeded synthetic organisation (see ``costagent_assets.demo.organisation``)."""

    seed: int = demo.DEMO_SEED

    @property
    def name(self) -> str:
        return "demo"

    def daily_costs(self, account_ids: Sequence[str], start: date, end: date, as_of: date) -> pl.DataFrame:
        """Daily rows for ``account_ids`` from ``start`` to ``end`` inclusive, as known on ``as_of``."""
        return demo.generate_costs(account_ids, start, end, seed=self.seed, as_of=as_of)
