"""``costagent status``: the last run, the next scheduled run, and what the warehouse covers."""

from __future__ import annotations

from datetime import UTC, date, datetime

from costagent_assets.home import Home
from costagent_assets.run_parameters import RunParameters


def status_lines(home: Home, today: date) -> list[str]:
    """Human-readable status of an installation."""
    from dagster._utils.schedules import cron_string_iterator

    from costagent_assets.cli.runner import prepare_instance
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
        lines += delivery_lines(instance)
    else:
        lines.append("last run:    none yet")
    cron = weekly_cron(settings)
    nxt = next(cron_string_iterator(datetime.now(UTC).timestamp(), cron, "UTC"))
    lines.append(f"next run:    {nxt:%A %Y-%m-%d %H:%M} UTC (cron '{cron}'; the schedule runs when the "
                 "Dagster daemon is up: `costagent ui`)")
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


# Undelivered emails listed by `costagent status`; the admin report and the ledger have them all.
SHOWN_PROBLEMS = 10


def delivery_lines(instance) -> list[str]:
    """What the last run that sent emails delivered: complete or partial, its counts and, when partial,
    which emails have not (certainly) arrived."""
    import dagster as dg

    from costagent_assets.cli.runner import delivery_counts, delivery_mode
    from costagent_assets.defs.emails import DELIVERY_TAG
    from costagent_assets.delivery import summary_text

    records = instance.fetch_materializations(dg.AssetKey("emails"), limit=1).records
    if not records:
        return ["emails:      no run has sent emails yet"]
    event = records[0].event_log_entry.dagster_event
    counts = delivery_counts([event])
    if counts is None:
        return []
    run = instance.get_run_by_id(records[0].run_id)
    outcome = (run.tags.get(DELIVERY_TAG) if run else None) or "?"
    line = (f"emails:      {outcome} ({delivery_mode([event]) or '?'}), run {records[0].run_id[:8]}: "
            f"{summary_text(counts)}")
    if outcome != "partial" or run is None:
        return [line]
    lines = [line, "             not delivered (deferred ones are retried by the next run; unconfirmed ones "
             "are re-sent only by `costagent resend`):"]
    listed = records[0].asset_materialization.metadata.get("undelivered")
    problems = list(listed.value) if listed is not None else []
    for p in problems[:SHOWN_PROBLEMS]:
        lines.append(f"               {p['kind']} {p['subject']} to {p['recipient']}: {p['status']}")
    if counts["deferred"] + counts["unconfirmed"] + counts["failed"] > SHOWN_PROBLEMS:
        lines.append("               ... and more: the admin report lists them all")
    return lines
