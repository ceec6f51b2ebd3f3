"""The demo's AI accounts: realistic model mixes, and the planted runaway key and new model alerted end to end."""

from __future__ import annotations

import email
import email.policy
from datetime import date
from pathlib import Path

import polars as pl

from costagent_assets.demo.ai_accounts import (
    AI_ACCOUNTS,
    NEW_MODEL,
    RUNAWAY_FACTOR,
    demo_ai_teams,
    generate_ai_costs,
    planted,
)
from costagent_tests.peers.homes import run_cli, sql

AS_OF = date(2026, 11, 23)
IDS = [a[1] for a in AI_ACCOUNTS]


def test_one_runaway_key_and_one_new_model_in_every_month():
    for month in range(1, 13):
        day = date(2026, month, 10)
        kinds = sorted(k for a in IDS for k, _ in planted(a, day))
        assert kinds == ["new_model", "runaway_key"], month


def test_the_runaway_key_costs_ten_times_its_usual_and_tokens_follow():
    runaway = next(a for a in IDS if planted(a, AS_OF) and planted(a, AS_OF)[0][0] == "runaway_key")
    model = planted(runaway, AS_OF)[0][1]
    rows = generate_ai_costs([runaway], date(2026, 11, 1), date(2026, 11, 10), seed=42, as_of=AS_OF)
    daily = rows.filter(pl.col("service") == model).group_by("date").agg(
        pl.col("cost_usd").sum(), pl.col("usage_quantity").filter(pl.col("usage_unit") == "tokens").sum()).sort("date")
    before, after = daily.row(0, named=True), daily.row(-1, named=True)
    assert 0.8 * RUNAWAY_FACTOR < after["cost_usd"] / before["cost_usd"] < 1.25 * RUNAWAY_FACTOR
    assert 0.8 * RUNAWAY_FACTOR < after["usage_quantity"] / before["usage_quantity"] < 1.25 * RUNAWAY_FACTOR
    # Same inputs, same rows (the demo is deterministic).
    again = generate_ai_costs([runaway], date(2026, 11, 1), date(2026, 11, 10), seed=42, as_of=AS_OF)
    assert rows.equals(again)


def test_make_demo_alerts_the_planted_runaway_key_and_new_model(isolated: Path):
    home = str(isolated)
    assert run_cli("--home", home, "demo", "--accounts", "3", "--ai-accounts", "4", "--history-months", "0",
                   "--as-of", AS_OF.isoformat()) == 0
    alerted = sql(isolated, "select account_id, service, kind from anomalies where month = '2026-11' and alerted "
                            f"and account_id in ({', '.join(repr(a) for a in IDS)})")
    truth = {(a, model) for a in IDS for _, model in planted(a, AS_OF)}
    assert {(r["account_id"], r["service"]) for r in alerted if r["service"] is not None} == truth
    # The account totals rise with them; the other AI accounts stay quiet.
    assert {r["account_id"] for r in alerted if r["service"] is None} <= {a for a, _ in truth}
    assert any(r["service"] == NEW_MODEL and r["kind"] == "new_service" for r in alerted)
    # Tokens and dollars by model are queryable, and the team emails carry the section.
    by_model = sql(isolated, "select account_id, model, sum(output_tokens) as out, sum(cost_usd) as usd "
                             "from ai_usage_daily where month = '2026-11' group by all")
    assert {r["account_id"] for r in by_model} == set(IDS) and all(r["usd"] > 0 for r in by_model)
    admin = (isolated / "outbox" / AS_OF.isoformat() / "2026-11-admin.eml").read_bytes()
    admin_text = email.message_from_bytes(admin, policy=email.policy.default).get_body(("plain",)).get_content()
    section = admin_text.split("AI SPEND BY MODEL", 1)[1]
    total = sum(r["usd"] for r in by_model)
    assert f"${total:,.0f} month to date across 4 AI accounts" in section
    assert NEW_MODEL in section and "AI savings found" in section
    for team in demo_ai_teams(4):
        raw = (isolated / "outbox" / AS_OF.isoformat() / f"2026-11-team-{team['aws_account_id']}.eml").read_bytes()
        text = email.message_from_bytes(raw, policy=email.policy.default).get_body(("plain",)).get_content()
        assert "AI SPEND BY MODEL" in text
        # An OpenAI project or Anthropic workspace is called what it is, never an AWS account.
        label = {"openai": "OpenAI project", "anthropic": "Anthropic workspace"}[team["source"]]
        assert f"{label} {team['aws_account_id']}" in text and "AWS account" not in text
        for account, model in truth:
            if account == team["aws_account_id"]:
                assert model in text.split("ALERTS", 1)[1].split("WHAT CHANGED", 1)[0]
