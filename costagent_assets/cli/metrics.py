"""``costagent metrics``: the figures operators watch, in Prometheus's text format (prometheus-client).

Per account, for the latest month stored: month to date, the month-end forecast, open (alerted) anomalies
and the monthly savings found. For the pipeline: the last successful run's end time and duration per job,
the cost-source requests and the AI dollars of the latest run. Computed when scraped, from the warehouse
and the Dagster instance, so a scrape always sees the last run.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from costagent_assets.home import Home

ACCOUNT_SQL = """
WITH latest AS (SELECT max(month) AS month FROM account_months)
SELECT a.account_id, coalesce(a.team_name, '') AS team, a.mtd_usd, a.projected_month_end_usd,
       (SELECT count(*) FROM anomalies n WHERE n.month = a.month AND n.account_id = a.account_id AND n.alerted)
         AS open_anomalies,
       (SELECT coalesce(sum(o.monthly_savings_usd), 0) FROM optimization_opportunities o
         WHERE o.month = a.month AND o.account_id = a.account_id AND o.record = 'finding') AS savings_usd
FROM account_months a, latest WHERE a.month = latest.month ORDER BY a.account_id
"""
ACCOUNT_GAUGES = (
    ("costagent_month_to_date_usd", "Spend of the latest month so far, USD.", "mtd_usd"),
    ("costagent_forecast_month_end_usd", "Forecast month-end spend of the latest month, USD.", "projected_month_end_usd"),
    ("costagent_open_anomalies", "Alerted anomalies of the latest month.", "open_anomalies"),
    ("costagent_savings_monthly_usd", "Monthly savings found by the latest scan, USD.", "savings_usd"),
)
JOBS = ("weekly_report", "cost_history")


class CostagentCollector(Collector):
    """Reads the installation's figures on every collection."""

    def __init__(self, home: Home):
        self.home = home

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._accounts()
        yield from self._pipeline()

    def _accounts(self) -> Iterator[GaugeMetricFamily]:
        import duckdb

        from costagent_assets.resources.s3_warehouse import home_store
        from costagent_assets.settings import load_settings
        from costagent_assets.teams.registry import load_registry
        from costagent_assets.warehouse.views import connect

        settings = load_settings(self.home.settings_path)
        teams = [t.to_dict() for t in load_registry(self.home.teams_path)]
        con = connect(home_store(self.home, settings), teams, budget_alert_pcts=settings.budget_alert_pcts)
        try:
            rows = con.execute(ACCOUNT_SQL).fetchall()
        except duckdb.Error:  # nothing stored yet: no per-account figures
            rows = []
        finally:
            con.close()
        for name, doc, column in ACCOUNT_GAUGES:
            gauge = GaugeMetricFamily(name, doc, labels=["account_id", "team"])
            index = 2 + [c for _, _, c in ACCOUNT_GAUGES].index(column)
            for row in rows:
                if row[index] is not None:
                    gauge.add_metric([row[0], row[1]], float(row[index]))
            yield gauge

    def _pipeline(self) -> Iterator[GaugeMetricFamily]:
        import dagster as dg

        from costagent_assets.cli.runner import prepare_instance
        from costagent_assets.defs import run_metadata

        instance = prepare_instance(self.home)
        success = GaugeMetricFamily("costagent_last_success_timestamp_seconds",
                                    "End time of the job's last successful run (Unix time).", labels=["job"])
        duration = GaugeMetricFamily("costagent_last_success_duration_seconds",
                                     "Duration of the job's last successful run.", labels=["job"])
        for job in JOBS:
            records = instance.get_run_records(
                dg.RunsFilter(job_name=job, statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1)
            if records and records[0].end_time and records[0].start_time:
                success.add_metric([job], records[0].end_time)
                duration.add_metric([job], records[0].end_time - records[0].start_time)
        yield success
        yield duration
        calls = GaugeMetricFamily("costagent_source_requests", "Cost-source requests of the latest raw_costs run.")
        metadata = run_metadata.latest_metadata(instance, "raw_costs") or {}
        requests = metadata.get("source_requests")
        if requests is not None:
            calls.add_metric([], float(requests.value))
        yield calls
        ai = GaugeMetricFamily("costagent_ai_usd", "AI (Gemini) dollars of the latest ai_insights run.")
        metadata = run_metadata.latest_metadata(instance, "ai_insights") or {}
        spent = metadata.get("ai_cost_usd")
        # A text value means the model had no price: no figure rather than a wrong $0.
        if spent is not None and isinstance(spent.value, int | float):
            ai.add_metric([], float(spent.value))
        yield ai


def metrics_registry(home: Home) -> CollectorRegistry:
    """A registry holding only costagent's collector (no process metrics: the scrape is about the pipeline)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CostagentCollector(home))
    return registry
