"""Small raw_costs frames and a query helper for the warehouse tests."""

from __future__ import annotations

from datetime import date

import polars as pl

from costagent_assets.schemas import conform


def raw(account: str, month: str, usd: float) -> pl.DataFrame:
    day = date.fromisoformat(f"{month}-01")
    return conform(
        pl.DataFrame(
            [{"month": month, "date": day, "account_id": account, "service": "EC2", "region": "us-east-1",
              "usage_type": "x", "cost_usd": usd, "source": "test"}]
        ),
        "raw_costs",
    )


def _sums(con, sql: str) -> dict:
    return {tuple(r[:-1]): round(r[-1], 6) for r in con.execute(sql).fetchall()}

