"""isolate_accounts: one account's failure is set aside, the other accounts' rows are kept."""

from __future__ import annotations

import polars as pl
import pytest

from costagent_assets import isolation
from costagent_assets.isolation import (
    EveryAccountFailed,
    account_groups,
    in_account_groups,
    isolate_accounts,
    of_accounts,
)

COSTS = pl.DataFrame({"account_id": ["a", "b", "c"], "month": "2026-11", "cost_usd": [10.0, None, 30.0]})
PARTITIONS = [("2026-11", "a"), ("2026-11", "b"), ("2026-11", "c")]


def doubled(partitions: list[tuple[str, str]]) -> pl.DataFrame:
    """A computation that cannot handle a missing cost (b's)."""
    rows = of_accounts(COSTS, partitions)
    if rows["cost_usd"].null_count():
        raise ValueError(f"no cost for {rows.filter(pl.col('cost_usd').is_null())['account_id'].to_list()}")
    return rows.with_columns(pl.col("cost_usd") * 2)


def test_the_accounts_a_computation_fails_for_are_set_aside_and_the_others_computed():
    frame, failed = isolate_accounts(doubled, PARTITIONS)
    assert frame.sort("account_id")["cost_usd"].to_list() == [20.0, 60.0]
    assert failed == {"b": "ValueError: no cost for ['b']"}


def test_nothing_fails_nothing_is_set_aside():
    frame, failed = isolate_accounts(doubled, [p for p in PARTITIONS if p[1] != "b"])
    assert (frame.height, failed) == (2, {})


def test_a_computation_that_fails_for_every_account_raises():
    with pytest.raises(EveryAccountFailed, match="failed for every account of the run: ValueError: no cost"):
        isolate_accounts(doubled, [("2026-11", "b")])


def test_accounts_are_computed_in_groups_with_the_same_rows(monkeypatch):
    monkeypatch.setattr(isolation, "ACCOUNT_GROUP", 2)
    calls = []

    def tagged(partitions):
        calls.append(sorted({a for _, a in partitions}))
        return of_accounts(COSTS, partitions).with_columns(pl.col("cost_usd").fill_null(0.0))

    whole, _ = isolate_accounts(tagged, PARTITIONS)
    calls.clear()
    grouped, failed = isolate_accounts(tagged, list(reversed(PARTITIONS)), grouped=True)
    assert calls == [["a", "b"], ["c"]] and failed == {}
    assert grouped.sort("account_id").equals(whole.sort("account_id"))
    calls.clear()
    assert in_account_groups(tagged, PARTITIONS, size=2).equals(whole) and calls == [["a", "b"], ["c"]]
    assert account_groups(PARTITIONS, 5) == [PARTITIONS]
    assert account_groups([], 5) == [[]]


def test_a_failing_group_is_isolated_account_by_account_and_the_other_groups_kept(monkeypatch):
    monkeypatch.setattr(isolation, "ACCOUNT_GROUP", 2)
    computed, failed = isolate_accounts(doubled, PARTITIONS, grouped=True)
    assert sorted(computed["account_id"].to_list()) == ["a", "c"]
    assert list(failed) == ["b"] and failed["b"].startswith("ValueError")


def test_of_accounts_gives_the_frame_itself_when_it_holds_only_those_accounts():
    assert of_accounts(COSTS, PARTITIONS) is COSTS
    assert of_accounts(COSTS, PARTITIONS[:1])["account_id"].to_list() == ["a"]


def test_of_accounts_drops_rows_without_an_account_as_a_filter_does():
    frame = pl.DataFrame({"account_id": ["a", None], "cost_usd": [1.0, 2.0]})
    assert of_accounts(frame, [("2026-11", "a")])["cost_usd"].to_list() == [1.0]
