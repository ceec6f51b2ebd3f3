"""`costagent metrics`: per-account figures equal to the warehouse's, the pipeline's health, and a real
scrape of `costagent metrics --serve` over HTTP."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from costagent_tests.peers.homes import run_cli, sql
from costagent_tests.peers.services import running, wait_for


def _samples(text: str) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_metrics_match_the_warehouse_and_are_scraped(isolated: Path, capsys):
    assert run_cli("demo", "--accounts", "3", "--history-months", "0", "--as-of", "2026-11-23") == 0
    capsys.readouterr()
    assert run_cli("metrics") == 0
    metrics = _samples(capsys.readouterr().out)

    expected = {r["account_id"]: r for r in sql(isolated, "select * from account_months where month = '2026-11'")}
    mtd = {s.labels["account_id"]: s.value for s in metrics["costagent_month_to_date_usd"]}
    assert mtd.keys() == expected.keys() and len(mtd) == 3
    for account, row in expected.items():
        assert abs(mtd[account] - row["mtd_usd"]) < 1e-6
    alerted = {r["account_id"]: r["n"] for r in sql(
        isolated, "select account_id, count(*) filter (where alerted) as n from anomalies "
                  "where month = '2026-11' group by account_id")}
    assert {s.labels["account_id"]: s.value for s in metrics["costagent_open_anomalies"]} == \
        {a: float(alerted.get(a, 0)) for a in expected}
    jobs = {s.labels["job"] for s in metrics["costagent_last_success_timestamp_seconds"]}
    assert "weekly_report" in jobs
    assert all(s.value > 0 for s in metrics["costagent_last_success_duration_seconds"])

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/metrics"

    def scraped() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    with running(isolated, "metrics", "--serve", "--port", str(port)) as proc:
        wait_for(scraped, "the metrics endpoint", proc, 60)
        with urllib.request.urlopen(url, timeout=5) as response:
            over_http = _samples(response.read().decode())
    assert over_http["costagent_month_to_date_usd"] == metrics["costagent_month_to_date_usd"]
