"""Backfills: one ranged run per month, and a rerun reproduces every partition byte for byte."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from costagent_tests.peers.homes import copy_home, run_cli


def run(*args: str) -> int:
    return run_cli(*args)


@pytest.fixture(scope="module")
def demo_3_accounts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`costagent demo --accounts 3` run once; each test backfills its own copy of the home."""
    home = tmp_path_factory.mktemp("backfill") / "home"
    assert run("--home", str(home), "demo", "--accounts", "3", "--as-of", "2026-11-23") == 0
    return home


def digests(warehouse: Path, month: str) -> dict[str, str]:
    return {
        str(p.relative_to(warehouse)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(warehouse.glob(f"*/{month}/*.parquet"))
        if p.parts[-3] != "source_usage"  # a log with one object per run, not a partition
    }


def test_backfill_packs_months_into_one_run_and_reruns_are_byte_identical(
    isolated: Path, demo_3_accounts: Path, capsys: pytest.CaptureFixture[str]
):
    home = str(copy_home(demo_3_accounts, isolated))
    capsys.readouterr()
    assert run("--home", home, "backfill", "--from", "2026-07", "--to", "2026-09") == 0
    out = capsys.readouterr().out
    # 3 accounts x 3 months fit one run.
    assert [line.split()[1] for line in out.splitlines() if "cost_history" in line] == ["2026-07..2026-09"]
    first = digests(isolated / "warehouse", "2026-08")
    assert len(first) == 3 * 7  # 3 accounts x every asset but emails
    assert run("--home", home, "backfill", "--from", "2026-08", "--to", "2026-08") == 0
    assert digests(isolated / "warehouse", "2026-08") == first


def test_grouping_months_into_runs_does_not_change_a_byte(
    isolated: Path, demo_3_accounts: Path, capsys: pytest.CaptureFixture[str]
):
    """Three months in one run and the same months one run each write the same partitions."""
    homes = [copy_home(demo_3_accounts, isolated / "packed"), copy_home(demo_3_accounts, isolated / "monthly")]
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
