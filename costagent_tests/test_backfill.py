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


def test_backfill_runs_month_by_month_and_reruns_are_byte_identical(
    isolated: Path, capsys: pytest.CaptureFixture[str]
):
    home = str(isolated)
    assert run("--home", home, "demo", "--accounts", "3", "--as-of", "2026-11-23") == 0
    capsys.readouterr()
    assert run("--home", home, "backfill", "--from", "2026-07", "--to", "2026-09") == 0
    out = capsys.readouterr().out
    assert [line.split()[1] for line in out.splitlines() if "cost_history" in line] == ["2026-07", "2026-08", "2026-09"]
    first = digests(isolated / "warehouse", "2026-08")
    assert len(first) == 3 * 7  # 3 accounts x every asset but emails
    assert run("--home", home, "backfill", "--from", "2026-08", "--to", "2026-08") == 0
    assert digests(isolated / "warehouse", "2026-08") == first
