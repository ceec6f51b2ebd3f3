"""`costagent sql` is read-only: every write, file read or download the issue found is refused, with a clear
message, and the warehouse stays byte-identical (issue 19, case 4)."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pytest

from costagent_assets.cli import main as cli
from costagent_assets.home import Home
from costagent_assets.teams.model import Team
from costagent_assets.teams.registry import save_registry
from costagent_tests.peers.stages import daily_costs, write_table

A = "111111111111"


@pytest.fixture
def home(isolated: Path) -> Path:
    """A home with one account's raw_costs (and rollups) and an anomalies partition."""
    h = Home(isolated).ensure()
    save_registry(h.teams_path, [Team("Platform", A, "platform@example.com")])
    write_table(h, "raw_costs", daily_costs(date(2026, 11, 1), {A: {"AmazonEC2": [10.0] * 5}}))
    import polars as pl

    write_table(h, "anomalies", pl.DataFrame({"month": ["2026-11"], "account_id": [A], "service": ["AmazonEC2"]}))
    return isolated


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with the SHA-256 of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def sql(capsys: pytest.CaptureFixture[str], home: Path, query: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(["--home", str(home), "sql", query, "--format", "json"])
    out = capsys.readouterr()
    return code, out.out, out.err


def statements(home: Path) -> list[str]:
    wh = home / "warehouse"
    return [
        # the cases: COPY over a table's folder, over one partition, a COPY that fails half-way
        f"COPY (SELECT * FROM anomalies LIMIT 0) TO '{wh}/anomalies' (FORMAT parquet, OVERWRITE)",
        f"COPY (SELECT * FROM raw_costs) TO '{wh}/raw_costs/2026-11/{A}.parquet' (FORMAT parquet)",
        f"COPY (SELECT 1 / 0 AS x FROM range(10)) TO '{wh}/raw_costs/2026-11/tmp_x.parquet' (FORMAT parquet)",
        "SELECT * FROM read_csv('/etc/passwd')",
        f"ATTACH '{home}/evil.duckdb' AS evil",
        "INSTALL httpfs",
        # and their relatives
        "LOAD httpfs",
        f"SELECT * FROM read_text('{wh}/../teams.json')",
        "SELECT * FROM read_parquet('https://example.com/x.parquet')",
        "SET enable_external_access = true",
        "CREATE TABLE t AS SELECT 1",
        "CREATE PERSISTENT SECRET s (TYPE s3, KEY_ID 'k', SECRET 's')",
        "PIVOT (SELECT 1 AS a, 2 AS m) ON m USING sum(a); CREATE TYPE e AS ENUM ('x')",
        f"EXPORT DATABASE '{home}/export'",
        "SELECT 1; COPY (SELECT 1) TO 'x.csv'",
    ]


def test_every_write_read_outside_and_download_is_refused_and_the_warehouse_is_byte_identical(
    home: Path, capsys: pytest.CaptureFixture[str]
):
    before = snapshot(home)
    assert before  # there is something to protect
    for query in statements(home):
        code, out, err = sql(capsys, home, query)
        assert code == 2, query
        assert ("read-only" in err or "reads only the warehouse" in err) and out == "", (query, err)
        assert "root:" not in err + out  # nothing of /etc/passwd
    after = snapshot(home)
    assert after == before
    assert not (home / "evil.duckdb").exists() and not (home / "export").exists()


def test_queries_still_work_read_only(home: Path, capsys: pytest.CaptureFixture[str]):
    code, out, err = sql(capsys, home, "SELECT round(sum(cost_usd), 2) AS usd FROM raw_costs")
    assert code == 0 and '"usd": 50.0' in out, err
    for query in ("SHOW TABLES", "DESCRIBE raw_costs", "EXPLAIN SELECT * FROM daily_costs",
                  "WITH x AS (SELECT * FROM monthly_costs) SELECT count(*) AS n FROM x",
                  "PIVOT (SELECT account_id, date, cost_usd FROM daily_costs) ON date USING sum(cost_usd)"):
        code, _, err = sql(capsys, home, query)
        assert code == 0, (query, err)
