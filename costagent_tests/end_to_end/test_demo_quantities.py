"""The demo's anomalies split into usage, rate and mix from its quantities, to the cent."""

from __future__ import annotations

from pathlib import Path

from costagent_tests.peers.homes import sql


def test_demo_anomalies_split_into_usage_rate_and_mix_to_the_cent(demo_home: Path):
    stored = sql(demo_home, "select count(*) as n, count(usage_quantity) as q from raw_costs "
                            "where month = '2026-11' and provider = 'aws'")[0]
    assert stored["n"] == stored["q"] > 0
    rows = sql(demo_home, "select service, impact_usd, usage_change_usd, rate_change_usd, mix_change_usd, drivers "
                          "from anomalies where month = '2026-11' and level = 'service'")
    split = [r for r in rows if r["usage_change_usd"] is not None]
    assert split and len(split) == len(rows)
    for r in split:
        assert round(r["usage_change_usd"] + r["rate_change_usd"] + r["mix_change_usd"], 2) == round(r["impact_usd"], 2)
        assert all(d["usage_type"] for d in r["drivers"] if not d["service"].startswith("Other"))
