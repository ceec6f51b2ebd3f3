"""Set up a COSTAGENT_HOME for a real source and run the weekly job in-process, as a user would."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl

from costagent_assets.cli import main as cli
from costagent_assets.demo import organisation as demo
from costagent_assets.settings import Settings, save_settings, with_setting
from costagent_assets.teams.model import Team
from costagent_assets.teams.registry import load_registry, save_registry
from costagent_assets.warehouse.store import read_table
from costagent_assets.warehouse.views import connect

DEMO_AS_OF = date(2026, 11, 23)  # the as-of date of the shared demo run (end_to_end/conftest.py: demo_home)


def demo_accounts(n: int, seed: int = 42) -> list[dict]:
    """The demo organisation's first ``n`` teams (registry entries)."""
    return demo.demo_teams(n, seed=seed)


def prepare_home(home: Path, teams: list[dict], **settings: str) -> None:
    """Write the registry and the settings (values as typed on the command line)."""
    home.mkdir(parents=True, exist_ok=True)
    save_registry(home / "teams.json", [Team.from_dict(t) for t in teams])
    chosen = Settings()
    for key, value in {"global_admin_emails": "finops@example.com", **settings}.items():
        chosen = with_setting(chosen, key, value)
    save_settings(home / "settings.json", chosen)


@contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Set (or, with None, unset) these variables; restore them, COSTAGENT_HOME and DAGSTER_HOME after."""
    saved = {k: os.environ.get(k) for k in [*values, "COSTAGENT_HOME", "DAGSTER_HOME"]}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def copy_home(source: Path, target: Path) -> Path:
    """A copy of a finished home to change: the state an identical run into ``target`` would leave.

    Only ``dagster.yaml`` names the home's path (its event log directory): the copy's names the copy, so
    the copy is a home of its own.
    """
    shutil.copytree(source, target, symlinks=True)
    config = target / "dagster" / "dagster.yaml"
    if config.exists():
        config.write_text(config.read_text().replace(str(source.resolve()), str(target.resolve())))
    return target


def run_cli(*args: str) -> int:
    """``costagent ARGS`` in this process; the caller's COSTAGENT_HOME/DAGSTER_HOME are restored after."""
    with environment():
        return cli.main(list(args))


def run_weekly(home: Path, as_of: date, *extra: str) -> int:
    """``costagent run --as-of`` in this process; the caller's COSTAGENT_HOME/DAGSTER_HOME are restored."""
    return run_cli("--home", str(home), "run", "--as-of", as_of.isoformat(), *extra)


def sql(home: Path, query: str) -> list[dict]:
    """Rows of a query over the home's warehouse views."""
    teams = [t.to_dict() for t in load_registry(home / "teams.json")]
    con = connect(home / "warehouse", teams)
    try:
        return con.execute(query).pl().to_dicts()
    finally:
        con.close()


def warehouse_month_totals(home: Path) -> pl.DataFrame:
    """Sum of raw_costs per (account_id, month) as stored in the warehouse."""
    return read_table(home / "warehouse", "raw_costs").group_by(["account_id", "month"]).agg(
        pl.col("cost_usd").sum()
    )


def raw_costs_metadata(home: Path) -> list[dict]:
    """The run-wide metadata raw_costs recorded in each run, newest first."""
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    try:
        records = instance.fetch_observations(dg.AssetKey("raw_costs"), limit=10000).records
        out = []
        for record in records:
            if record.asset_observation.partition is None:
                meta = record.asset_observation.metadata
                out.append({"run_id": record.run_id, **{k: getattr(v, "value", v) for k, v in meta.items()}})
        return out
    finally:
        instance.dispose()
