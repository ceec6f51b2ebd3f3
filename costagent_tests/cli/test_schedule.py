"""`costagent schedule on|off|status` and `costagent status` never show a next run that will not happen:
only with the schedule on and a live daemon (the command the daemon service runs) is a next run shown."""

from __future__ import annotations

import re
from pathlib import Path

from costagent_assets.cli.runner import prepare_instance
from costagent_assets.cli.schedule import schedule_state
from costagent_assets.home import get_home
from costagent_tests.peers.homes import run_cli
from costagent_tests.peers.services import served, wait_for

NEXT_RUN_DATE = re.compile(r"next run:\s+\w+day \d{4}-\d{2}-\d{2} \d{2}:00 UTC")


def _status(capsys) -> str:
    capsys.readouterr()
    assert run_cli("status") == 0
    return capsys.readouterr().out


def test_next_run_only_with_the_schedule_on_and_a_live_daemon(isolated: Path, capsys):
    out = _status(capsys)
    assert "OFF" in out and "next run:    none (the schedule is off)" in out
    assert not NEXT_RUN_DATE.search(out)

    assert run_cli("schedule", "on") == 0
    assert schedule_state(prepare_instance(get_home(isolated))).running
    out = _status(capsys)
    assert "next run:    none (no daemon is running)" in out and not NEXT_RUN_DATE.search(out)

    with served(isolated, "daemon") as daemon:
        wait_for(lambda: schedule_state(prepare_instance(get_home(isolated))).daemon_alive, "a daemon heartbeat",
                 daemon)
        out = _status(capsys)
        assert NEXT_RUN_DATE.search(out), out
        assert "daemon:      alive" in out
        assert run_cli("schedule", "off") == 0
        out = _status(capsys)
        assert "next run:    none (the schedule is off)" in out and not NEXT_RUN_DATE.search(out)
    assert not schedule_state(prepare_instance(get_home(isolated))).running
