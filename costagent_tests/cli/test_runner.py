"""How `costagent backfill` groups months into ranged runs (cli/runner.py)."""

from __future__ import annotations

from costagent_assets.cli.runner import backfill_chunks
from costagent_assets.periods import months_between


def test_backfill_chunks_are_consecutive_and_balanced():
    months = months_between("2024-11", "2026-10")
    chunks = backfill_chunks(months, 84)
    assert [m for c in chunks for m in c] == months
    assert max(map(len, chunks)) - min(map(len, chunks)) <= 1
    assert all(len(c) * 84 <= 600 for c in chunks)
    assert len(chunks) == 4
    assert backfill_chunks(months, 5000) == [[m] for m in months]
    assert backfill_chunks(months, 3, months_per_run=5)[0] == months[:5]
