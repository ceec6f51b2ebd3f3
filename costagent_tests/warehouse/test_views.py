"""The DuckDB views over the warehouse, and the views a query needs."""

from __future__ import annotations

from pathlib import Path

from costagent_assets.warehouse.rollups import write_raw_costs
from costagent_assets.warehouse.views import connect, views_needed
from costagent_tests.warehouse.samples import raw


def test_views_cover_every_partition_and_the_teams(tmp_path: Path):
    keys = [("2026-09", "000000000001"), ("2026-10", "000000000001")]
    for m, a in keys:
        write_raw_costs(tmp_path, raw(a, m, 2.0), [(m, a)])
    teams = [{"team_name": "T", "aws_account_id": "000000000001", "team_email": "t@example.com",
              "cc_emails": [], "monthly_budget": 10.0}]
    con = connect(tmp_path, teams)
    assert con.execute("select count(*), sum(cost_usd) from raw_costs").fetchone() == (2, 4.0)
    assert con.execute("select count(*) from monthly_costs").fetchone() == (2,)
    assert con.execute("select team_name from teams").fetchone() == ("T",)
    assert con.execute("select count(*) from anomalies").fetchone() == (0,)  # no files yet: empty, typed


def test_a_query_gets_the_views_it_names_and_what_they_are_built_on(tmp_path: Path):
    assert views_needed("SELECT * FROM monthly_costs WHERE account_id = '1'") == {"monthly_costs"}
    assert views_needed("select team_name from Account_Months") == {"account_months", "mom_changes", "teams", "forecasts"}
    assert views_needed("select * from budgets") == {"budgets", "account_months", "mom_changes", "teams", "forecasts"}
    assert views_needed("SHOW TABLES") is None
    write_raw_costs(tmp_path, raw("000000000001", "2026-10", 2.0), [("2026-10", "000000000001")])
    con = connect(tmp_path, [], only=views_needed("select sum(cost_usd) from daily_costs"))
    assert con.execute("select sum(cost_usd) from daily_costs").fetchone() == (2.0,)
    names = {r[0] for r in con.execute("select view_name from duckdb_views() where not internal").fetchall()}
    assert "raw_costs" not in names and "mom_changes" not in names



def test_a_warehouse_from_before_usage_quantity_still_opens_with_the_new_columns(tmp_path: Path):
    import polars as pl

    from costagent_assets.warehouse.store import partition_path

    # An old month written before raw_costs had usage_quantity/usage_unit, sorted first by DuckDB's glob ...
    old = partition_path(tmp_path, "raw_costs", "2026-09", "000000000001")
    old.parent.mkdir(parents=True)
    raw("000000000001", "2026-09", 2.0).drop("usage_quantity", "usage_unit").write_parquet(old)
    con = connect(tmp_path, [])
    assert con.execute("select count(*), count(usage_quantity) from raw_costs").fetchone() == (1, 0)
    # ... and a new month with tokens: both read, the old rows with null quantities.
    new = raw("000000000001", "2026-10", 3.0).with_columns(pl.lit(7.0).alias("usage_quantity"),
                                                          pl.lit("tokens").alias("usage_unit"))
    write_raw_costs(tmp_path, new, [("2026-10", "000000000001")])
    con = connect(tmp_path, [])
    rows = con.execute("select month, usage_quantity, usage_unit from raw_costs order by month").fetchall()
    assert rows == [("2026-09", None, None), ("2026-10", 7.0, "tokens")]
    assert con.execute("select sum(cost_usd) from ai_usage_daily").fetchone() == (3.0,)
