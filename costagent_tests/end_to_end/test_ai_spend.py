"""AWS and AI spend in one weekly run: Cost Explorer (moto), OpenAI and Anthropic (loopback peers), one report."""

from __future__ import annotations

import email
import email.policy
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from costagent_assets.demo import organisation as demo
from costagent_tests.peers.anthropic_server import AnthropicPeer
from costagent_tests.peers.anthropic_server import sample_usage as anthropic_usage
from costagent_tests.peers.homes import demo_accounts, prepare_home, run_weekly, sql
from costagent_tests.peers.moto_server import MotoPeer, cost_and_usage_pages
from costagent_tests.peers.openai_server import OpenAIPeer, bill
from costagent_tests.peers.openai_server import sample_usage as openai_usage

AS_OF = date(2026, 11, 23)
THROUGH = date(2026, 11, 22)
AWS_TEAMS = demo_accounts(4)
AWS = [t["aws_account_id"] for t in AWS_TEAMS]
PROJECTS = ["proj_search0001", "proj_support002"]
WORKSPACES = ["wrkspc_01Research", "wrkspc_02Chatbot"]


def team(name: str, account: str, source: str) -> dict:
    return {"team_name": name, "aws_account_id": account, "team_email": f"{name.lower()}@example.com",
            "source": source}


AI_TEAMS = [team("Search", PROJECTS[0], "openai"), team("Support", PROJECTS[1], "openai"),
            team("Research", WORKSPACES[0], "anthropic"), team("Chatbot", WORKSPACES[1], "anthropic")]


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch):
    server = MotoPeer()
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    costs = demo.generate_costs(AWS, date(2026, 10, 1), THROUGH, seed=42, as_of=AS_OF).group_by(
        ["date", "account_id", "service"]).agg(pl.col("cost_usd").sum())
    server.queue_cost_and_usage(
        cost_and_usage_pages(costs, date(2026, 10, 1), date(2026, 10, 31), "UnblendedCost", 1)
        + cost_and_usage_pages(costs, date(2026, 11, 1), THROUGH, "UnblendedCost", 1))
    server.costs = costs
    yield server
    server.stop()


@pytest.fixture
def openai():
    server = OpenAIPeer(usage=openai_usage(PROJECTS, date(2026, 10, 1), AS_OF), page_buckets=10).start()
    yield server
    server.stop()


@pytest.fixture
def anthropic():
    server = AnthropicPeer(usage=anthropic_usage(WORKSPACES, date(2026, 10, 1), AS_OF)).start()
    yield server
    server.stop()


def configure(home: Path, monkeypatch: pytest.MonkeyPatch, openai: OpenAIPeer, anthropic: AnthropicPeer) -> None:
    prepare_home(home, AWS_TEAMS + AI_TEAMS, source="cost_explorer,openai,anthropic", openai_base_url=openai.url,
                 anthropic_base_url=anthropic.url, source_max_wait_seconds="0.01")
    monkeypatch.setenv("OPENAI_ADMIN_KEY", openai.admin_key)
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", anthropic.admin_key)


def team_text(home: Path, account_id: str) -> str:
    raw = (home / "outbox" / AS_OF.isoformat() / f"2026-11-team-{account_id}.eml").read_bytes()
    return email.message_from_bytes(raw, policy=email.policy.default).get_body(("plain",)).get_content()


def stored_totals(home: Path) -> dict[tuple[str, str], float]:
    rows = sql(home, "select account_id, month, source, sum(cost_usd) as usd from raw_costs group by all")
    return {(r["account_id"], r["month"], r["source"]): r["usd"] for r in rows}


def test_one_weekly_run_holds_aws_and_ai_spend_side_by_side(
    isolated: Path, moto: MotoPeer, openai: OpenAIPeer, anthropic: AnthropicPeer, monkeypatch: pytest.MonkeyPatch
):
    configure(isolated, monkeypatch, openai, anthropic)
    assert run_weekly(isolated, AS_OF) == 0
    stored = stored_totals(isolated)
    openai_bill = bill(openai.usage.filter(pl.col("date") <= THROUGH)).with_columns(
        pl.col("date").dt.strftime("%Y-%m").alias("month")).group_by("project_id", "month").agg(pl.col("usd").sum())
    for project, month, usd in openai_bill.iter_rows():
        assert stored[(project, month, "openai")] == pytest.approx(usd, rel=1e-9)
    for workspace in WORKSPACES:
        total = anthropic.total_usd(workspace, THROUGH)
        assert sum(v for (a, _, s), v in stored.items() if a == workspace and s == "anthropic") == pytest.approx(total)
    for (account, month), usd in {(a, m): u for (a, m, s), u in stored.items() if s == "cost_explorer"}.items():
        expected = moto.costs.filter((pl.col("account_id") == account)
                                     & (pl.col("date").dt.strftime("%Y-%m") == month))["cost_usd"].sum()
        assert usd == pytest.approx(expected, abs=1e-6)
    assert {a for a, _, _ in stored} == set(AWS + PROJECTS + WORKSPACES)
    # Each source asked only for its own accounts: a few requests a month whatever the number of projects.
    usage = sql(isolated, "select source, month, requests, accounts_requested, accounts_with_data from source_usage "
                          "order by source, month")
    by_source = {(u["source"], u["month"]): u for u in usage}
    assert by_source[("openai", "2026-11")]["requests"] == 3 * 3  # 22 days, 10 buckets a page, 3 endpoints
    assert by_source[("anthropic", "2026-10")]["requests"] == 2
    assert by_source[("cost_explorer", "2026-11")]["accounts_requested"] == 4
    assert by_source[("anthropic", "2026-11")]["accounts_with_data"] == 2
    # ai_usage_daily: tokens and dollars per day, account and model, exactly the peers' totals.
    daily = pl.DataFrame(sql(isolated, "select * from ai_usage_daily"))
    assert set(daily["account_id"]) == set(PROJECTS + WORKSPACES)
    sent = openai.usage.filter(pl.col("date") <= THROUGH)
    by_model = daily.filter(pl.col("source") == "openai").group_by("account_id", "model").agg(
        pl.col("input_tokens", "cached_input_tokens", "output_tokens", "requests", "cost_usd").sum())
    expected = sent.group_by("project_id", "model").agg(
        (pl.col("input_tokens") - pl.col("input_cached_tokens")).sum().alias("input"),
        pl.col("input_cached_tokens", "output_tokens", "num_model_requests").sum())
    billed = bill(sent).with_columns(pl.col("line_item").str.split(", ").list.first().alias("model")).group_by(
        "project_id", "model").agg(pl.col("usd").sum())
    assert by_model.height == expected.height
    for r in expected.join(billed, on=["project_id", "model"]).iter_rows(named=True):
        got = by_model.filter((pl.col("account_id") == r["project_id"]) & (pl.col("model") == r["model"])).row(
            0, named=True)
        assert got["input_tokens"] == r["input"] and got["cached_input_tokens"] == r["input_cached_tokens"]
        assert (got["output_tokens"] or 0) == r["output_tokens"] and got["requests"] == r["num_model_requests"]
        assert got["cost_usd"] == pytest.approx(r["usd"], rel=1e-9)
    claude = daily.filter(pl.col("source") == "anthropic")
    used = anthropic.usage.filter(pl.col("date") <= THROUGH)
    assert claude["cache_write_tokens"].sum() == (used["cache_creation.ephemeral_5m_input_tokens"].sum()
                                                  + used["cache_creation.ephemeral_1h_input_tokens"].sum())
    assert claude["cached_input_tokens"].sum() == used["cache_read_input_tokens"].sum()
    assert claude["output_tokens"].sum() == used["output_tokens"].sum()
    assert claude["cost_usd"].sum() == pytest.approx(anthropic.total_usd(None, THROUGH), rel=1e-9)
    # The team emails: the OpenAI project's report shows its models and dollars next to the AWS ones.
    text = team_text(isolated, PROJECTS[0])
    assert "AI SPEND BY MODEL" in text
    section = text.split("AI SPEND BY MODEL", 1)[1]
    nov = daily.filter((pl.col("account_id") == PROJECTS[0]) & (pl.col("month") == "2026-11")).group_by(
        "model").agg(pl.col("cost_usd").sum()).sort("cost_usd", descending=True)
    for model, usd in nov.iter_rows():
        line = next(x for x in section.splitlines() if x.strip().startswith(model))
        assert f"${usd:,.0f}" in line or f"${usd:,.2f}" in line, (line, usd)
    assert "AI SPEND BY MODEL" in team_text(isolated, WORKSPACES[0])
    assert "AI SPEND BY MODEL" not in team_text(isolated, AWS[0])


def test_a_refused_key_leaves_only_that_providers_accounts_without_data(
    isolated: Path, moto: MotoPeer, openai: OpenAIPeer, anthropic: AnthropicPeer, monkeypatch: pytest.MonkeyPatch
):
    configure(isolated, monkeypatch, openai, anthropic)
    secret = "sk-ant-admin01-revoked-secret-42"
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", secret)
    run_weekly(isolated, AS_OF)
    stored = stored_totals(isolated)
    assert {a for a, _, _ in stored} == set(AWS + PROJECTS)  # no Anthropic rows, so never $0 for them
    notes = sql(isolated, "select source, notes, accounts_without_data from source_usage where source = 'anthropic'")
    assert notes and all("unavailable" in n["notes"] and "ANTHROPIC_ADMIN_KEY" in n["notes"] for n in notes)
    assert all(secret not in (n["notes"] or "") for n in notes)
    assert set(notes[0]["accounts_without_data"].split(",")) == set(WORKSPACES)
    research = team_text(isolated, WORKSPACES[0])
    assert "$0.00" not in research and "no cost data was received" in research.lower()
    assert secret not in research
    # The others' reports went out with their figures.
    assert any(m in team_text(isolated, PROJECTS[0]) for m in set(openai.usage["model"]))
