"""``costagent status``: the last run, the next scheduled run, and what the warehouse covers."""

from __future__ import annotations

from datetime import UTC, date, datetime

from costagent_assets.home import Home
from costagent_assets.run_parameters import RunParameters


def status_lines(home: Home, today: date) -> list[str]:
    """Human-readable status of an installation."""
    from costagent_assets.cli.runner import prepare_instance
    from costagent_assets.cli.schedule import schedule_lines
    from costagent_assets.defs.automation import weekly_cron
    from costagent_assets.resources.s3_warehouse import home_store
    from costagent_assets.settings import load_settings
    from costagent_assets.teams.registry import load_registry
    from costagent_assets.warehouse.store import stored_months

    settings = load_settings(home.settings_path)
    teams = load_registry(home.teams_path)
    lines = [f"home:        {home.root}", f"source:      {settings.source}   email: {settings.email_mode}",
             f"teams:       {len(teams)}"]
    instance = prepare_instance(home)
    runs = instance.get_runs(limit=1)
    if runs:
        run = runs[0]
        stats = instance.get_run_stats(run.run_id)
        ended = datetime.fromtimestamp(stats.end_time, UTC).strftime("%Y-%m-%d %H:%M UTC") if stats.end_time else "running"
        lines.append(f"last run:    {run.job_name} {run.status.value} ({ended}) run {run.run_id[:8]} "
                     f"as of {RunParameters.from_tags(run.tags).as_of or '?'}")
    else:
        lines.append("last run:    none yet")
    # The next run only when the schedule is on and a daemon is alive to tick it.
    lines.extend(schedule_lines(instance, weekly_cron(settings)))
    store = home_store(home, settings)
    lines.append(f"warehouse:   {store.url('')}")
    months = stored_months(store, "raw_costs")
    if months:
        lines.append(f"coverage:    {months[0]} .. {months[-1]} ({len(months)} months)")
        for m in months[-3:]:
            lines.append(f"  {m}: {len(store.keys(f'raw_costs/{m}/'))} of {len(teams)} accounts stored")
    else:
        lines.append("coverage:    nothing stored yet")
    return lines
