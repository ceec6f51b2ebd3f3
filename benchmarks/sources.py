"""Figures for the real cost sources: requests, retries, $ and exactness of a weekly run per source.

Starts the test peers on loopback (the Datadog-like server, moto's server for Cost Explorer and S3),
runs `costagent run` in-process for the 84-account demo organisation as of a date (two months: the
previous month and the report month), and prints, per source: HTTP requests seen by the peer, retries,
$ recorded in `source_usage`, accounts with data, wall time, and for FOCUS the largest difference between
the warehouse's per-account-month totals and the files' exact sums. The AI providers (OpenAI's and
Anthropic's peers) run with 4 and 200 projects/workspaces, to show that requests do not grow with them.

    python benchmarks/sources.py [--as-of 2026-11-23]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from costagent_assets.demo import organisation as demo  # noqa: E402
from costagent_tests.peers.anthropic_server import AnthropicPeer  # noqa: E402
from costagent_tests.peers.anthropic_server import sample_usage as anthropic_usage  # noqa: E402
from costagent_tests.peers.datadog_server import DatadogPeer  # noqa: E402
from costagent_tests.peers.focus_files import focus_export, write_files  # noqa: E402
from costagent_tests.peers.homes import demo_accounts, prepare_home, run_weekly, sql  # noqa: E402
from costagent_tests.peers.moto_server import MotoPeer, cost_and_usage_pages, usage_type_answers  # noqa: E402
from costagent_tests.peers.openai_server import OpenAIPeer  # noqa: E402
from costagent_tests.peers.openai_server import sample_usage as openai_usage  # noqa: E402

_TEMPORARY: list[Path] = []


def _home(name: str) -> Path:
    _TEMPORARY.append(Path(tempfile.mkdtemp(prefix=f"costagent-src-{name}-")))
    return _TEMPORARY[-1] / "home"


def _usage(home: Path) -> dict:
    return sql(home, "select sum(requests) as requests, sum(retries) as retries, round(sum(cost_usd), 6) as usd, "
                     "min(accounts_with_data) as min_accounts from source_usage")[0]


def _line(name: str, peer_requests: int, usage: dict, seconds: float, extra: str = "") -> None:
    print(f"{name:<28} {peer_requests:>9} {usage['retries']:>8} {usage['usd']:>9.4f} "
          f"{usage['min_accounts']:>9} {seconds:>7.1f}  {extra}")


def datadog(as_of: date, teams: list[dict], costs: pl.DataFrame, storm: float, label: str = "") -> None:
    """``costs`` with usage_type/region (and usage_quantity/usage_unit) serves lines and aws.usage quantities,
    which ride in the same request as the cost."""
    peer = DatadogPeer(costs).start()
    if storm:
        peer.storm(storm, seed=3)
    home = _home("datadog")
    prepare_home(home, teams, source="datadog", source_max_wait_seconds="0.05")
    os.environ.update(DATADOG_API_KEY=peer.api_key, DATADOG_APP_KEY=peer.app_key, DATADOG_SITE=peer.url)
    started = time.perf_counter()
    assert run_weekly(home, as_of) == 0
    seconds = time.perf_counter() - started
    statuses = peer.statuses()
    with_quantity = sql(home, "select count(*) as n from raw_costs where usage_quantity is not null")[0]["n"]
    _line(f"datadog ({label or f'{storm:.0%} 429 storm'})", len(statuses), _usage(home), seconds,
          f"429s: {statuses.count(429)}, rows with a quantity: {with_quantity}")
    peer.stop()


def cost_explorer(as_of: date, teams: list[dict], costs: pl.DataFrame, usage_types: bool = False) -> None:
    """``usage_types``: also the per-service requests by usage type (one page each here), as by default."""
    moto = MotoPeer()
    moto.start()
    os.environ["AWS_ENDPOINT_URL"] = moto.url
    previous = date(as_of.year, as_of.month, 1) - timedelta(days=1)
    months = [(previous.replace(day=1), previous), (date(as_of.year, as_of.month, 1), as_of - timedelta(days=1))]
    daily = costs.group_by(["date", "account_id", "service"]).agg(pl.col("cost_usd").sum())
    answers = []
    for start, end in months:
        answers += cost_and_usage_pages(daily, start, end, "UnblendedCost", 3)
        if usage_types:
            answers += usage_type_answers(costs, start, end, "UnblendedCost")
    moto.queue_cost_and_usage(answers)
    moto.throttle_ce = 1
    home = _home("ce")
    prepare_home(home, teams, source="cost_explorer", cost_explorer_usage_types=str(usage_types).lower())
    started = time.perf_counter()
    assert run_weekly(home, as_of) == 0
    with_quantity = sql(home, "select count(*) as n from raw_costs where usage_quantity is not null")[0]["n"]
    _line(f"cost_explorer ({'+ usage types' if usage_types else '3 pages/month'})", len(moto.ce_calls),
          _usage(home), time.perf_counter() - started,
          f"throttled: {moto.ce_calls.count('throttled')}, rows with a quantity: {with_quantity}")
    moto.stop()
    os.environ.pop("AWS_ENDPOINT_URL")


def focus_files(as_of: date, teams: list[dict], costs: pl.DataFrame) -> None:
    export = focus_export(costs)
    exports = Path(tempfile.mkdtemp(prefix="costagent-focus-"))
    _TEMPORARY.append(exports)
    for name, content in write_files(export).items():
        (exports / name).parent.mkdir(parents=True, exist_ok=True)
        (exports / name).write_bytes(content)
    home = _home("focus")
    prepare_home(home, teams, source="focus", focus_path=str(exports))
    started = time.perf_counter()
    assert run_weekly(home, as_of) == 0
    seconds = time.perf_counter() - started
    stored = sql(home, "select account_id, month, sum(cost_usd) as usd from raw_costs group by all")
    registered = {t["aws_account_id"] for t in teams}
    worst = max(abs(r["usd"] - float(export.totals[(r["account_id"], r["month"])])) for r in stored)
    expected = {k for k in export.totals if k[0] in registered}
    _line("focus (local files)", 0, _usage(home), seconds,
          f"{len(export.rows)} rows, {len(stored)}/{len(expected)} account-months, max |error| {worst:.1e}")


def ai_provider(provider: str, as_of: date, n_accounts: int, storm: float = 0.0) -> None:
    """A weekly run of ``n_accounts`` OpenAI projects or Anthropic workspaces against their peer."""
    start = (date(as_of.year, as_of.month, 1) - timedelta(days=1)).replace(day=1)
    prefix = "proj_bench" if provider == "openai" else "wrkspc_bench"
    accounts = [f"{prefix}{i:05d}" for i in range(n_accounts)]
    if provider == "openai":
        peer = OpenAIPeer(usage=openai_usage(accounts, start, as_of)).start()
    else:
        peer = AnthropicPeer(usage=anthropic_usage(accounts, start, as_of)).start()
    if storm:
        peer.storm(storm, seed=3)
    teams = [{"team_name": f"AI team {i}", "aws_account_id": a, "team_email": f"ai{i}@example.com", "source": provider}
             for i, a in enumerate(accounts)]
    home = _home(provider)
    prepare_home(home, teams, source=provider, source_max_wait_seconds="0.05", **{f"{provider}_base_url": peer.url})
    os.environ[f"{provider.upper()}_ADMIN_KEY"] = peer.admin_key
    started = time.perf_counter()
    assert run_weekly(home, as_of) == 0
    seconds = time.perf_counter() - started
    statuses = peer.statuses()
    _line(f"{provider} {n_accounts} accts ({storm:.0%} 429)", len(statuses), _usage(home), seconds,
          f"{statuses.count(200)} answered over 2 months, 429s: {statuses.count(429)}")
    peer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--as-of", default="2026-11-23")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request log lines
    as_of = date.fromisoformat(args.as_of)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    teams = demo_accounts(84)
    accounts = [t["aws_account_id"] for t in teams]
    start = (date(as_of.year, as_of.month, 1) - timedelta(days=1)).replace(day=1)
    costs = demo.generate_costs(accounts, start, as_of - timedelta(days=1), seed=42, as_of=as_of)
    daily = costs.group_by(["date", "account_id", "service"]).agg(pl.col("cost_usd").sum())
    print(f"weekly run, 84 accounts, as of {as_of} (2 months), peers on loopback")
    print(f"{'source':<28} {'requests':>9} {'retries':>8} {'$':>9} {'accounts':>9} {'wall s':>7}")
    try:
        datadog(as_of, teams, daily, 0.0)
        datadog(as_of, teams, daily, 0.3)
        # Usage lines with quantities (the demo's, plus hours at $0.10 where the demo has none).
        lines = costs.with_columns(
            pl.col("usage_quantity").fill_null(pl.col("cost_usd") / 0.1) if "usage_quantity" in costs.columns
            else (pl.col("cost_usd") / 0.1).alias("usage_quantity"),
            pl.col("usage_unit").fill_null("Hrs") if "usage_unit" in costs.columns else pl.lit("Hrs").alias("usage_unit"))
        datadog(as_of, teams, lines, 0.0, "+ usage lines, aws.usage")
        cost_explorer(as_of, teams, costs)
        cost_explorer(as_of, teams, costs, usage_types=True)
        focus_files(as_of, teams, costs)
        for provider in ("openai", "anthropic"):
            for n in (4, 200):
                ai_provider(provider, as_of, n)
            ai_provider(provider, as_of, 4, storm=0.5)
    finally:
        for path in _TEMPORARY:
            shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
