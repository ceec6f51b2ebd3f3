"""Running the graph from the command line: the weekly job, backfills, and keeping partitions in step.

The CLI executes the same jobs as the schedule, in-process, ranged runs over every
account, on the installation's own Dagster instance (``$COSTAGENT_HOME/dagster``), so the UI shows
these runs like any other.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import dagster as dg

from costagent_assets.fileio import atomic_write_text
from costagent_assets.home import Home, InstanceConfigError
from costagent_assets.periods import months_between
from costagent_assets.run_parameters import TRIGGER_TAG, RunParameters
from costagent_assets.shipped import shipped_path

# Dagster settings that cut its per-partition bookkeeping (`costagent ui` sets them too): one
# "planned" event per asset instead of one per partition, and a ranged output's materialization
# events stored as one batch (see instance_storage.py).
BOOKKEEPING_ENV = {
    "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1",
    "DAGSTER_EVENT_BATCH_SIZE": "10000",
}
# Runs started from the CLI log warnings and errors to the console; every event is still stored.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


# The instance profiles costagent ships (costagent_assets/shipped.py): embedded SQLite, or PostgreSQL
# through DAGSTER_POSTGRES_* environment variables.
INSTANCE_PROFILES = {"embedded": "dagster.yaml", "postgres": "deploy/dagster.postgres.yaml"}
_ENV_ENTRY = re.compile(r"\{\s*env:\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}")


def instance_config_path(home: Home) -> Path:
    """The installation's dagster.yaml (in DAGSTER_HOME, ``$COSTAGENT_HOME/dagster``)."""
    return home.dagster_home / "dagster.yaml"


def write_instance_config(home: Home, profile: str | None = None, *, force: bool = False) -> bool:
    """Write the shipped ``profile``'s dagster.yaml into the home, unless one exists (or ``force``);
    returns whether it was written. The file is the operator's afterwards: nothing else rewrites it.

    Without ``profile``: ``$COSTAGENT_INSTANCE_PROFILE`` (so a container's or a unit's first start creates
    the production instance), else embedded.
    """
    profile = profile or os.environ.get("COSTAGENT_INSTANCE_PROFILE") or "embedded"
    if profile not in INSTANCE_PROFILES:
        raise InstanceConfigError(f"unknown instance profile {profile!r} (one of {', '.join(INSTANCE_PROFILES)})")
    home.ensure()
    path = instance_config_path(home)
    if path.exists() and not force:
        return False
    atomic_write_text(path, instance_config_text(home, profile))
    return True


def instance_config_text(home: Home, profile: str) -> str:
    """The shipped profile's dagster.yaml for this home (``__DAGSTER_HOME__``: the instance's directory)."""
    text = shipped_path(INSTANCE_PROFILES[profile]).read_text(encoding="utf-8")
    return text.replace("__DAGSTER_HOME__", str(home.dagster_home))


def missing_instance_env(text: str, environ: Mapping[str, str]) -> list[str]:
    """The environment variables a dagster.yaml reads through ``{env: NAME}`` entries that are unset."""
    return sorted({name for name in _ENV_ENTRY.findall(text) if name not in environ})


def prepare_instance(home: Home) -> dg.DagsterInstance:
    """The installation's Dagster instance: its dagster.yaml is created (embedded profile) when missing
    and otherwise used as the operator left it."""
    write_instance_config(home)
    path = instance_config_path(home)
    missing = missing_instance_env(path.read_text(encoding="utf-8"), os.environ)
    if missing:
        raise InstanceConfigError(f"{path} reads {', '.join(missing)} from the environment, and "
                                  f"{'it is' if len(missing) == 1 else 'they are'} not set")
    os.environ["DAGSTER_HOME"] = str(home.dagster_home)
    for name, value in BOOKKEEPING_ENV.items():
        os.environ.setdefault(name, value)
    return dg.DagsterInstance.get()


def sync_account_partitions(instance: dg.DagsterInstance, account_ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """Make the account dimension hold exactly ``account_ids``; returns (added, removed)."""
    current = list(instance.get_dynamic_partitions("account"))
    wanted = list(dict.fromkeys(account_ids))
    added = [a for a in wanted if a not in set(current)]
    removed = [a for a in current if a not in set(wanted)]
    if added:
        instance.add_dynamic_partitions("account", added)
    for account in removed:
        instance.delete_dynamic_partition("account", account)
    return added, removed


def _definitions(home_root: str) -> dg.Definitions:
    # The definitions bind one snapshot of the settings: build them anew when settings.json changed.
    path = Path(home_root) / "settings.json"
    return _definitions_for(home_root, path.read_text(encoding="utf-8") if path.exists() else "")


@functools.lru_cache(maxsize=4)
def _definitions_for(home_root: str, settings_text: str) -> dg.Definitions:
    from costagent_assets.definitions import defs

    os.environ["COSTAGENT_HOME"] = home_root
    return defs()


@dataclass
class RunOutcome:
    """What one run did."""

    job_name: str
    month: str
    run_id: str
    success: bool
    seconds: float
    failed_steps: list[str] = field(default_factory=list)
    # The emails step's counts (sent, already_sent, deferred, unconfirmed, failed); None without emails.
    delivery: dict[str, int] | None = None
    delivery_mode: str = ""  # outbox | smtp

    @property
    def partial(self) -> bool:
        """The run succeeded but some of its emails did not (certainly) reach their recipients."""
        from costagent_assets.delivery import is_partial

        return self.success and self.delivery is not None and is_partial(self.delivery)


def execute(instance: dg.DagsterInstance, job_name: str, tags: dict[str, str], month: str,
            asset_selection: Sequence[dg.AssetKey] | None = None) -> RunOutcome:
    """Execute one planned run in this process (``asset_selection``: only those assets of the job)."""
    from costagent_assets.run_lease import hold

    job = _definitions(str(Path(instance.root_directory).parent)).resolve_job_def(job_name)
    started = time.perf_counter()
    # One writer at a time: raises run_lease.LeaseHeld, naming the holder, before anything runs.
    with hold(installation_lease(instance), f"costagent {job_name} {month}"):
        result = job.execute_in_process(
            instance=instance, tags=tags, raise_on_error=False, run_config=QUIET_RUN_CONFIG,
            asset_selection=asset_selection,
        )
    events = result.all_events
    failed = [e.step_key for e in events if e.is_step_failure and e.step_key]
    return RunOutcome(job_name, month, result.run_id, result.success, time.perf_counter() - started, failed,
                      delivery_counts(events), delivery_mode(events))


def installation_lease(instance: dg.DagsterInstance):
    """The run lease of the installation whose Dagster instance this is (see ``run_lease``)."""
    from costagent_assets.resources.s3_ledger import open_run_lease
    from costagent_assets.resources.s3_warehouse import warehouse_root
    from costagent_assets.settings import load_settings

    home = Home(Path(instance.root_directory).parent)
    settings = load_settings(home.settings_path)
    return open_run_lease(warehouse_root(home, settings), settings.s3_endpoint_url, settings.s3_region)


def _emails_metadata(events) -> dict | None:
    from costagent_assets.defs.run_metadata import from_events

    metadata = from_events(events, "emails")
    return metadata if metadata is not None and "emails_sent" in metadata else None


def delivery_counts(events) -> dict[str, int] | None:
    """The emails step's delivery counts from a run's events (its run-wide record); None when it did not run."""
    from costagent_assets.delivery import SUMMARY_FIELDS

    metadata = _emails_metadata(events)
    return None if metadata is None else {k: int(metadata[f"emails_{k}"].value) for k in SUMMARY_FIELDS}


def delivery_mode(events) -> str:
    """How the emails step delivered (``outbox`` or ``smtp``); empty when it did not run."""
    metadata = _emails_metadata(events)
    return str(metadata["delivery"].value) if metadata is not None and "delivery" in metadata else ""


def run_weekly(instance: dg.DagsterInstance, as_of: date, account_ids: Sequence[str],
               only: Sequence[str] | None = None) -> list[RunOutcome]:
    """The weekly job as of a date: the same plan as the schedule's tick. ``only``: those accounts alone
    (``costagent run --team``): their emails are sent and recorded in the send ledger as the weekly run's
    would be, so neither a second call nor that week's scheduled run sends them again; the admin report,
    which needs every account, is left to the weekly run."""
    from costagent_assets.defs.automation import plan_weekly_runs, previous_month_needs_loading
    from costagent_assets.resources.s3_warehouse import home_store
    from costagent_assets.settings import load_settings

    accounts = list(only) if only else list(instance.get_dynamic_partitions("account"))
    home = Home(Path(instance.root_directory).parent)
    store = home_store(home, load_settings(home.settings_path))
    plan = plan_weekly_runs(as_of, accounts, previous_month_needs_loading(instance, store, as_of, accounts))
    outcomes = []
    for planned in plan:
        tags = {**planned.tags, TRIGGER_TAG: "cli"}
        outcome = execute(instance, planned.job_name, tags, planned.month)
        outcomes.append(outcome)
        if not outcome.success:
            break
    return outcomes


def refresh_ai_insights(instance: dg.DagsterInstance, month: str, account_id: str, as_of: date) -> RunOutcome:
    """Materialize ``ai_insights`` alone for one (month, account) partition, from the stored analysis
    (``costagent preview team --ai``): Gemini is asked about that account only (no organisation summary),
    and nothing downstream runs, so no email is rendered, sent or recorded."""
    from costagent_assets.defs.automation import range_tags

    parameters = RunParameters(as_of=as_of, trigger="preview")
    tags = {**range_tags(month, [account_id]), **parameters.to_tags()}
    return execute(instance, "cost_history", tags, f"{month} {account_id}",
                   asset_selection=[dg.AssetKey("ai_insights")])


# Account-months per history run. Dagster's bookkeeping costs ~2 s per run plus ~2.5 ms per partition
# and asset, so a backfill packs several months into one ranged run; the cap keeps a run's memory
# near 1.2 GB (84 accounts x 6 months, measured with benchmarks/backfill.py).
ACCOUNT_MONTHS_PER_RUN = 600


def backfill_chunks(months: Sequence[str], accounts: int, months_per_run: int | None = None) -> list[list[str]]:
    """Split ``months`` (oldest first) into runs of consecutive months of nearly equal length: at most
    ``months_per_run`` each, by default as many as fit ``ACCOUNT_MONTHS_PER_RUN`` for ``accounts``."""
    months = list(months)
    if not months:
        return []
    cap = months_per_run or max(1, ACCOUNT_MONTHS_PER_RUN // max(accounts, 1))
    runs = -(-len(months) // cap)
    size, extra = divmod(len(months), runs)
    chunks, start = [], 0
    for i in range(runs):
        end = start + size + (1 if i < extra else 0)
        chunks.append(months[start:end])
        start = end
    return chunks


def backfill(
    instance: dg.DagsterInstance,
    first: str,
    last: str,
    today: date,
    *,
    with_emails: bool = False,
    months_per_run: int | None = None,
) -> list[RunOutcome]:
    """Materialize ``first`` to ``last`` ("YYYY-MM") for every account, oldest first, in as few ranged
    runs as memory allows (see ``backfill_chunks``); each run reads the months before it from the
    warehouse, and a run processes every month with the same code as a one-month run, so the
    partitions come out byte for byte the same however the months are grouped.

    Emails are left out unless asked for, so a history backfill does not mail anyone; with emails,
    every month is its own run, with that month's report date.
    """
    from costagent_assets.defs.automation import range_tags
    from costagent_assets.periods import default_as_of

    accounts = list(instance.get_dynamic_partitions("account"))
    if not accounts:
        return []
    chunks = backfill_chunks(months_between(first, last), len(accounts), 1 if with_emails else months_per_run)
    outcomes = []
    for chunk in chunks:
        # History nobody is mailed: no AI calls.
        parameters = RunParameters(as_of=default_as_of(chunk[-1], today), ai_off=not with_emails, trigger="backfill")
        tags = {**range_tags(chunk[0], accounts, chunk[-1]), **parameters.to_tags()}
        label = chunk[0] if len(chunk) == 1 else f"{chunk[0]}..{chunk[-1]}"
        outcome = execute(instance, "weekly_report" if with_emails else "cost_history", tags, label)
        outcomes.append(outcome)
        if not outcome.success:
            break
    return outcomes
