"""Anthropic as a cost source, against a loopback server answering like its Admin API cost and usage reports."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from costagent_assets.resources.anthropic_costs import DEFAULT_WORKSPACE, AnthropicCostSource
from costagent_assets.resources.cost_source import CostSourceError
from costagent_tests.peers.anthropic_server import AnthropicPeer, sample_usage

WORKSPACES = ["wrkspc_01Alpha", "wrkspc_02Beta"]
START, END = date(2026, 10, 1), date(2026, 10, 31)
AS_OF = date(2026, 11, 1)


@pytest.fixture(scope="module")
def usage() -> pl.DataFrame:
    return sample_usage([*WORKSPACES, None, "wrkspc_03Unknown"], START, date(2026, 11, 1))


@pytest.fixture
def peer(usage: pl.DataFrame):
    server = AnthropicPeer(usage=usage, web_search_cents={(date(2026, 10, 5), WORKSPACES[0]): 250.0}).start()
    yield server
    server.stop()


def source(peer: AnthropicPeer, **fields) -> AnthropicCostSource:
    return AnthropicCostSource(admin_key=peer.admin_key, base_url=peer.url, **{"max_wait_seconds": 0.01, **fields})


ACCOUNTS = [*WORKSPACES, DEFAULT_WORKSPACE]


def test_a_month_is_two_requests_and_matches_the_cost_report_exactly(peer: AnthropicPeer, usage: pl.DataFrame):
    got = source(peer).fetch(ACCOUNTS, START, END, AS_OF)
    assert got.requests == 2 and [r.path for r in peer.received] == [
        "/v1/organizations/cost_report", "/v1/organizations/usage_report/messages"]
    assert set(dict(peer.received[0].query)) >= {"starting_at", "ending_at", "group_by[]"}
    costs = got.costs
    for workspace in WORKSPACES:
        mine = costs.filter(pl.col("account_id") == workspace)["cost_usd"].sum()
        assert mine == pytest.approx(peer.total_usd(workspace, END), rel=1e-12)
    # The default workspace has no id in the reports; it is an account of its own.
    assert costs.filter(pl.col("account_id") == DEFAULT_WORKSPACE)["cost_usd"].sum() == pytest.approx(
        peer.total_usd(None, END) - sum(peer.total_usd(w, END) for w in [*WORKSPACES, "wrkspc_03Unknown"]))
    # Web search is a cost line without tokens, kept under its own name.
    search = costs.filter(pl.col("usage_type") == "web_search")
    assert search["cost_usd"].to_list() == [2.5] and search["service"].to_list() == ["Web Search"]
    # Tokens by model, cache reads and both kinds of cache writes included.
    sel = usage.filter(pl.col("workspace_id") == WORKSPACES[0])
    model = sel["model"][0]
    sel = sel.filter(pl.col("model") == model)
    mine = costs.filter((pl.col("account_id") == WORKSPACES[0]) & (pl.col("service") == model))
    def qty(kind: str) -> float:
        return mine.filter(pl.col("usage_type") == kind)["usage_quantity"].sum()
    assert qty("input_tokens") == sel["uncached_input_tokens"].sum()
    assert qty("cached_input_tokens") == sel["cache_read_input_tokens"].sum()
    assert qty("cache_write_tokens") == (sel["cache_creation.ephemeral_5m_input_tokens"].sum()
                                         + sel["cache_creation.ephemeral_1h_input_tokens"].sum())
    assert qty("output_tokens") == sel["output_tokens"].sum()
    assert set(mine["usage_unit"]) == {"tokens"} and set(mine["source"]) == {"anthropic"}


def test_paging_follows_next_page(usage: pl.DataFrame):
    peer = AnthropicPeer(usage=usage, page_buckets=10).start()
    try:
        got = source(peer).fetch(ACCOUNTS, START, END, AS_OF)
    finally:
        peer.stop()
    assert got.requests == 2 * 4  # 31 daily buckets, 10 a page
    assert got.costs["date"].n_unique() == 31
    assert got.costs["cost_usd"].sum() == pytest.approx(
        peer.total_usd(None, END) - peer.total_usd("wrkspc_03Unknown", END), rel=1e-12)


def test_a_429_storm_is_waited_out(peer: AnthropicPeer):
    peer.storm(0.7, seed=4)
    got = source(peer).fetch(ACCOUNTS, START, END, AS_OF)
    statuses = peer.statuses()
    assert statuses.count(429) >= 2 and statuses.count(200) == 2 and got.retries == statuses.count(429)
    assert got.costs.filter(pl.col("account_id") == WORKSPACES[1])["cost_usd"].sum() == pytest.approx(
        peer.total_usd(WORKSPACES[1], END))


def test_a_refused_key_fails_at_once_and_names_no_secret(peer: AnthropicPeer):
    secret = "sk-ant-admin01-wrong-secret-xyz"
    with pytest.raises(CostSourceError) as caught:
        AnthropicCostSource(admin_key=secret, base_url=peer.url).fetch(ACCOUNTS, START, END, AS_OF)
    message = str(caught.value)
    assert "401" in message and "ANTHROPIC_ADMIN_KEY" in message and secret not in message
    assert peer.statuses() == [401]


def test_a_workspace_the_registry_does_not_know_is_reported(peer: AnthropicPeer):
    got = source(peer).fetch(ACCOUNTS, START, END, AS_OF)
    assert "wrkspc_03Unknown" not in set(got.costs["account_id"])
    unregistered = got.unregistered.to_dicts()
    assert [(u["account_id"], u["provider"]) for u in unregistered] == [("wrkspc_03Unknown", "anthropic")]
    assert unregistered[0]["cost_usd"] == pytest.approx(peer.total_usd("wrkspc_03Unknown", END))
