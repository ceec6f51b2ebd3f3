"""The weekly schedule's state as the daemon sees it: on or off (stored in the instance), whether the
daemon is alive (its heartbeat), and when the next tick will really happen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg

from costagent_assets.home import Home
from costagent_assets.shipped import shipped_path

SCHEDULE_NAME = "weekly_cost_report"
# The daemon writes a heartbeat every 30 s; two missed ones mean it is down or stuck.
HEARTBEAT_FRESH_SECONDS = 90


@dataclass(frozen=True)
class ScheduleState:
    """Whether the weekly schedule will tick: on in the instance, and a scheduler daemon alive."""

    running: bool
    heartbeat_age_seconds: float | None  # None: no scheduler daemon ever reported to this instance

    @property
    def daemon_alive(self) -> bool:
        return self.heartbeat_age_seconds is not None and self.heartbeat_age_seconds <= HEARTBEAT_FRESH_SECONDS

    @property
    def will_tick(self) -> bool:
        return self.running and self.daemon_alive


def schedule_state(instance: dg.DagsterInstance, now: datetime | None = None) -> ScheduleState:
    """The schedule's stored status and the age of the scheduler daemon's last heartbeat."""
    from dagster._core.scheduler.instigation import InstigatorStatus, InstigatorType

    states = instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE)
    running = any(s.name == SCHEDULE_NAME and s.status == InstigatorStatus.RUNNING for s in states)
    heartbeat = instance.get_daemon_heartbeats().get("SCHEDULER")
    now_ts = (now or datetime.now(UTC)).timestamp()
    return ScheduleState(running, None if heartbeat is None else max(0.0, now_ts - heartbeat.timestamp))


def set_schedule(home: Home, on: bool) -> None:
    """Start or stop the weekly schedule in the instance, as the UI's toggle does.

    Through the code location of workspace.yaml, the one the daemon and the webserver load, so the
    stored state is keyed exactly as theirs.
    """
    from dagster._cli.schedule import execute_start_command, execute_stop_command
    from dagster._cli.workspace.cli_target import RepositoryOpts
    from dagster_shared.cli import WorkspaceOpts

    from costagent_assets.cli.runner import prepare_instance

    prepare_instance(home)
    workspace = WorkspaceOpts(workspace=[str(shipped_path("workspace.yaml"))])
    if on:
        execute_start_command(schedule_name=SCHEDULE_NAME, start_all=False, workspace_opts=workspace,
                              repository_opts=RepositoryOpts(), print_fn=lambda _msg: None)
    else:
        execute_stop_command(schedule_name=SCHEDULE_NAME, workspace_opts=workspace, repository_opts=RepositoryOpts(),
                             print_fn=lambda _msg: None)


def schedule_lines(instance: dg.DagsterInstance, cron: str, now: datetime | None = None) -> list[str]:
    """Status lines: the schedule, the daemon, and the next tick only when one will really happen."""
    from dagster._utils.schedules import cron_string_iterator

    now = now or datetime.now(UTC)
    state = schedule_state(instance, now)
    lines = [f"schedule:    {SCHEDULE_NAME} {'on' if state.running else 'OFF (`costagent schedule on` turns it on)'}"]
    if state.heartbeat_age_seconds is None:
        lines.append("daemon:      never seen (start `dagster-daemon run`: see Going live in the README)")
    elif state.daemon_alive:
        lines.append(f"daemon:      alive (heartbeat {state.heartbeat_age_seconds:.0f} s ago)")
    else:
        lines.append(f"daemon:      DOWN (last heartbeat {state.heartbeat_age_seconds / 60:.0f} min ago)")
    if state.will_tick:
        nxt = next(cron_string_iterator(now.timestamp(), cron, "UTC"))
        lines.append(f"next run:    {nxt:%A %Y-%m-%d %H:%M} UTC (cron '{cron}')")
    else:
        why = "the schedule is off" if not state.running else "no daemon is running"
        lines.append(f"next run:    none ({why})")
    return lines
