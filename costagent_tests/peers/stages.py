"""Materialize one stage of the graph with small frames, as Dagster runs it: a ranged run over a month and
its accounts, on an instance holding the account partitions, with upstream tables read from a warehouse
the test wrote.

Each upstream partition written is also recorded on the instance as materialized (a runless
materialization event), as a real run would have left it: stages that ask the instance what was loaded
(mom_changes: "was the previous month ever loaded?") see exactly the partitions the test stored.
raw_costs is written with its rollups (``write_raw_costs``), the one way the pipeline writes it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

import costagent_assets.defs
from costagent_assets.defs.automation import range_tags
from costagent_assets.defs.partitions import make_key
from costagent_assets.defs.resources import build_resources
from costagent_assets.defs.run_metadata import from_events
from costagent_assets.home import Home
from costagent_assets.run_parameters import RunParameters
from costagent_assets.schemas import conform
from costagent_assets.settings import Settings
from costagent_assets.teams.model import Team
from costagent_assets.teams.registry import save_registry
from costagent_assets.warehouse.rollups import write_raw_costs
from costagent_assets.warehouse.store import read_table, write_partitions


@dataclass
class StageRun:
    """What a stage run left: its result (events, metadata, checks) and the warehouse it wrote."""

    result: dg.ExecuteInProcessResult
    home: Home

    def table(self, name: str) -> pl.DataFrame:
        return read_table(self.home.warehouse_dir, name)

    def metadata(self, stage: str) -> dict:
        """The stage's run-wide metadata (recorded once per run, run_metadata.py)."""
        metadata = from_events(self.result.all_events, stage)
        assert metadata is not None, f"{stage} recorded no run-wide metadata"
        return {k: getattr(v, "value", v) for k, v in metadata.items()}

    def checks(self) -> dict[str, bool]:
        return {e.check_name: e.passed for e in self.result.get_asset_check_evaluations()}


def daily_costs(start: date, costs: dict[str, dict[str, list[float]]], region: str = "us-east-1") -> pl.DataFrame:
    """raw_costs rows from ``{account_id: {service: [cost of day 1, day 2, ...]}}``, day 1 being ``start``
    (``None`` skips a day); one usage type per service, ``month`` from each row's date."""
    rows = [
        {"month": f"{day:%Y-%m}", "date": day, "account_id": account, "service": service, "region": region,
         "usage_type": f"{service}-usage", "cost_usd": float(cost), "source": "test"}
        for account, services in costs.items()
        for service, series in services.items()
        for day, cost in ((start + timedelta(days=i), c) for i, c in enumerate(series))
        if cost is not None
    ]
    return conform(pl.DataFrame(rows), "raw_costs")


def write_table(home: Home, table: str, frame: pl.DataFrame) -> list[tuple[str, str]]:
    """Store ``frame`` as the partitions of ``table`` it covers (one file per month and account); returns
    the (month, account_id) partitions written."""
    frame = conform(frame, table)
    keys = sorted(set(frame.select("month", "account_id").unique().iter_rows()))
    write = write_raw_costs if table == "raw_costs" else lambda root, f, k: write_partitions(root, table, f, k)
    write(home.warehouse_dir, frame, keys)
    return keys


def record_materialized(instance: dg.DagsterInstance, table: str, keys: list[tuple[str, str]]) -> None:
    """Tell the instance that these partitions of ``table`` were materialized (as an earlier run would)."""
    for month, account_id in keys:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=table, partition=str(make_key(month, account_id)))
        )


def materialize_stage(
    stage: str,
    home_dir: Path,
    *,
    month: str,
    accounts: list[str],
    as_of: date,
    upstream: dict[str, pl.DataFrame] | None = None,
    teams: list[Team] | None = None,
    settings: Settings | None = None,
    resources: dict[str, object] | None = None,
    tags: dict[str, str] | None = None,
) -> StageRun:
    """Run ``stage`` alone for ``month`` x ``accounts`` as of ``as_of``; ``upstream`` tables are stored first and
    read by the stage through the IO manager, as in a real run."""
    home = Home(home_dir).ensure()
    settings = settings or Settings()
    save_registry(home.teams_path, teams or [])
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("account", accounts)
    for table, frame in (upstream or {}).items():
        record_materialized(instance, table, write_table(home, table, frame))
    stages = dg.load_definitions_from_package_module(costagent_assets.defs)
    result = dg.materialize(
        list(stages.assets),
        selection=[stage],
        instance=instance,
        resources={**build_resources(home, settings), **(resources or {})},
        tags={**range_tags(month, accounts), **RunParameters(as_of=as_of).to_tags(), **(tags or {})},
        raise_on_error=False,
    )
    return StageRun(result, home)
