"""The built-in demo organisation as a cost source: no credentials, no network, deterministic."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl

from costagent_assets.demo import organisation as demo
from costagent_assets.demo.ai_accounts import generate_ai_costs, is_ai_account
from costagent_assets.demo.quantities import with_quantities
from costagent_assets.resources.cost_source import CostSource


class DemoCostSource(CostSource):
    """Daily costs of the seeded synthetic organisation (see ``costagent_assets.demo.organisation``)."""

    seed: int = demo.DEMO_SEED

    @property
    def name(self) -> str:
        return "demo"

    def daily_costs(self, account_ids: Sequence[str], start: date, end: date, as_of: date) -> pl.DataFrame:
        """Daily rows for ``account_ids`` from ``start`` to ``end`` inclusive, as known on ``as_of``: the AWS
        accounts' costs with their usage quantities (``quantities``), and the AI accounts' dollars and tokens by
        model (``ai_accounts``)."""
        aws = [a for a in account_ids if not is_ai_account(a)]
        ai = [a for a in account_ids if is_ai_account(a)]
        costs = with_quantities(demo.generate_costs(aws, start, end, seed=self.seed, as_of=as_of), self.seed)
        if not ai:
            return costs
        return pl.concat([costs, generate_ai_costs(ai, start, end, seed=self.seed, as_of=as_of)],
                         how="diagonal_relaxed")
