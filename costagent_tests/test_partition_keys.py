"""Partition keys as text agree with Dagster's multi-partition keys."""

from __future__ import annotations

import dagster as dg

from costagent_assets.defs.partitions import make_key, month_account_partitions
from costagent_assets.partition_keys import key_text, split_key


def test_text_keys_are_dagsters_keys():
    key = make_key("2026-11", "012345678901")
    assert isinstance(key, dg.MultiPartitionKey)
    assert key_text("2026-11", "012345678901") == str(key) == "012345678901|2026-11"
    assert split_key(key) == split_key(str(key)) == ("2026-11", "012345678901")
    # The dimension names are what the partitions definition declares, in Dagster's (alphabetical) key order.
    assert [d.name for d in month_account_partitions.partitions_defs] == ["account", "month"]
