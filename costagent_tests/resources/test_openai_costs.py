"""OpenAI as a cost source, against a loopback server answering like its Costs and Usage APIs."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from costagent_assets.resources.cost_source import CostSourceError
from costagent_assets.resources.openai_costs import OpenAICostSource, line_item_kind
from costagent_tests.peers.openai_server import OpenAIPeer, bill, sample_usage

PROJECTS = ["proj_alpha0001", "proj_beta00002", "proj_gamma0003"]
START, END = date(2026, 10, 1), date(2026, 10, 31)


@pytest.fixture(scope="module")
def usage() -> pl.DataFrame:
    return sample_usage(PROJECTS, START, date(2026, 11, 1))


@pytest.fixture
def peer(usage: pl.DataFrame):
    server = OpenAIPeer(usage=usage).start()
    yield server
    server.stop()


def source(peer: OpenAIPeer, **fields) -> OpenAICostSource:
    return OpenAICostSource(admin_key=peer.admin_key, base_url=peer.url, **{"max_wait_seconds": 0.01, **fields})


def test_line_items_name_the_model_and_the_token_kind():
    assert line_item_kind("gpt-4o-2024-08-06, input") == ("gpt-4o-2024-08-06", "input_tokens")
    assert line_item_kind("gpt-4o-mini-2024-07-18, cached input") == ("gpt-4o-mini-2024-07-18", "cached_input_tokens")
    assert line_item_kind("Image models") == ("Image models", "other")


def test_a_month_is_three_requests_and_matches_the_bill_exactly(peer: OpenAIPeer, usage: pl.DataFrame):
    got = source(peer).fetch(PROJECTS, START, END, as_of=date(2026, 11, 1))
    assert got.requests == 3 and got.retries == 0
    assert [r.path for r in peer.received] == ["/v1/organization/costs", "/v1/organization/usage/completions",
                                               "/v1/organization/usage/embeddings"]
    costs = got.costs
    assert set(costs["account_id"]) == set(PROJECTS) and set(costs["source"]) == {"openai"}
    billed = bill(usage).group_by("project_id").agg(pl.col("usd").sum())
    for project, usd in billed.iter_rows():
        assert costs.filter(pl.col("account_id") == project)["cost_usd"].sum() == pytest.approx(usd, rel=1e-12)
    # Tokens by model and kind: input excludes the cached ones, which have their own row.
    one = usage.filter((pl.col("project_id") == PROJECTS[0]) & (pl.col("endpoint") == "completions"))
    model = one["model"][0]
    mine = costs.filter((pl.col("account_id") == PROJECTS[0]) & (pl.col("service") == model))
    def qty(kind: str) -> float:
        return mine.filter(pl.col("usage_type") == kind)["usage_quantity"].sum()
    sel = one.filter(pl.col("model") == model)
    assert qty("cached_input_tokens") == sel["input_cached_tokens"].sum()
    assert qty("input_tokens") == sel["input_tokens"].sum() - sel["input_cached_tokens"].sum()
    assert qty("output_tokens") == sel["output_tokens"].sum()
    assert qty("requests") == sel["num_model_requests"].sum()
    assert set(mine["usage_unit"]) == {"tokens", "requests"}
    assert mine.filter(pl.col("usage_type") == "requests")["cost_usd"].sum() == 0


def test_paging_follows_next_page_to_the_last_day(usage: pl.DataFrame):
    peer = OpenAIPeer(usage=usage, page_buckets=7).start()
    try:
        got = source(peer).fetch(PROJECTS, START, END, as_of=date(2026, 11, 1))
    finally:
        peer.stop()
    assert got.requests == 3 * 5  # 31 daily buckets, 7 a page, for each of the three endpoints
    pages = [dict(r.query).get("page") for r in peer.received if r.path == "/v1/organization/costs"]
    assert pages[0] is None and all(pages[1:]) and len(set(pages)) == 5
    assert got.costs["date"].n_unique() == 31
    assert got.costs["cost_usd"].sum() == pytest.approx(bill(usage.filter(pl.col("date") <= END))["usd"].sum())


def test_a_429_storm_is_waited_out_and_counted(peer: OpenAIPeer, usage: pl.DataFrame):
    peer.storm(0.6, seed=11)
    got = source(peer).fetch(PROJECTS, START, END, as_of=date(2026, 11, 1))
    statuses = peer.statuses()
    assert statuses.count(429) >= 2 and statuses.count(200) == 3
    assert got.retries == statuses.count(429) and got.requests == len(statuses)
    assert got.costs["cost_usd"].sum() == pytest.approx(bill(usage.filter(pl.col("date") <= END))["usd"].sum())


def test_a_storm_that_never_ends_fails_the_source(peer: OpenAIPeer):
    peer.storm(1.0, seed=1)
    with pytest.raises(CostSourceError, match="still failing after 3 attempts"):
        source(peer, max_retries=2).fetch(PROJECTS, START, END, as_of=date(2026, 11, 1))
    assert peer.statuses() == [429, 429, 429]


def test_a_refused_key_fails_at_once_and_names_no_secret(peer: OpenAIPeer):
    secret = "sk-admin-wrong-secret-abcdef987654"
    with pytest.raises(CostSourceError) as caught:
        OpenAICostSource(admin_key=secret, base_url=peer.url).fetch(PROJECTS, START, END, as_of=date(2026, 11, 1))
    message = str(caught.value)
    assert "401" in message and "OPENAI_ADMIN_KEY" in message and secret not in message
    assert peer.statuses() == [401]


def test_a_project_the_registry_does_not_know_is_reported_with_its_dollars(peer: OpenAIPeer, usage: pl.DataFrame):
    got = source(peer).fetch(PROJECTS[:2], START, END, as_of=date(2026, 11, 1))
    assert set(got.costs["account_id"]) == set(PROJECTS[:2])
    unregistered = got.unregistered.to_dicts()
    expected = bill(usage.filter((pl.col("project_id") == PROJECTS[2]) & (pl.col("date") <= END)))["usd"].sum()
    assert [(u["account_id"], u["provider"]) for u in unregistered] == [(PROJECTS[2], "openai")]
    assert unregistered[0]["cost_usd"] == pytest.approx(expected)
