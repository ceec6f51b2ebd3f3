"""Backfills: one ranged run per month, and a rerun reproduces every partition byte for byte."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from costagent_tests.peers.homes import run_cli


def run(*args: str) -> int:
    return run_cli(*args)


def digests(warehouse: Path, month: str) -> dict[str, str]:
    return {
        str(p.relative_to(warehouse)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(warehouse.glob(f"*/{month}/*.parquet"))
        if p.parts[-3] != "source_usage"  # a log with one object per run, not a partition
    }


def test_backfill_packs_months_into_one_run_and_reruns_are_byte_identical(
    isolated: Path, capsys: pytest.CaptureFixture[str]
):
    home = str(isolated)
    assert run("--home", home, "demo", "--accounts", "3", "--as-of", "2026-11-23") == 0
    capsys.readouterr()
    assert run("--home", home, "backfill", "--from", "2026-07", "--to", "2026-09") == 0
    out = capsys.readouterr().out
    # 3 accounts x 3 months fit one run.
    assert [line.split()[1] for line in out.splitlines() if "cost_history" in line] == ["2026-07..2026-09"]
    first = digests(isolated / "warehouse", "2026-08")
    assert len(first) == 3 * 7  # 3 accounts x every asset but emails
    assert run("--home", home, "backfill", "--from", "2026-08", "--to", "2026-08") == 0
    assert digests(isolated / "warehouse", "2026-08") == first


def test_grouping_months_into_runs_does_not_change_a_byte(isolated: Path, capsys: pytest.CaptureFixture[str]):
    """Three months in one run and the same months one run each write the same partitions."""
    homes = [isolated / "packed", isolated / "monthly"]
    for home in homes:
        assert run("--home", str(home), "demo", "--accounts", "3", "--as-of", "2026-11-23") == 0
    capsys.readouterr()
    assert run("--home", str(homes[0]), "backfill", "--from", "2026-04", "--to", "2026-09") == 0
    packed_runs = [line.split()[1] for line in capsys.readouterr().out.splitlines() if "cost_history" in line]
    assert run("--home", str(homes[1]), "backfill", "--from", "2026-04", "--to", "2026-09",
               "--months-per-run", "1") == 0
    monthly_runs = [line.split()[1] for line in capsys.readouterr().out.splitlines() if "cost_history" in line]
    assert packed_runs == ["2026-04..2026-09"]
    assert len(monthly_runs) == 6
    for month in ("2026-04", "2026-05", "2026-06", "2026-07", "2026-08", "2026-09"):
        packed = digests(homes[0] / "warehouse", month)
        assert len(packed) == 3 * 7
        assert packed == digests(homes[1] / "warehouse", month), month


def test_backfill_chunks_are_consecutive_and_balanced():
    from costagent_assets.cli.runner import backfill_chunks
    from costagent_assets.periods import months_between

    months = months_between("2024-11", "2026-10")
    chunks = backfill_chunks(months, 84)
    assert [m for c in chunks for m in c] == months
    assert max(map(len, chunks)) - min(map(len, chunks)) <= 1
    assert all(len(c) * 84 <= 600 for c in chunks)
    assert len(chunks) == 4
    assert backfill_chunks(months, 5000) == [[m] for m in months]
    assert backfill_chunks(months, 3, months_per_run=5)[0] == months[:5]
