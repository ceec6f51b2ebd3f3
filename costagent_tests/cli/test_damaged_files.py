"""Bad state on disk and months outside the partitions get a clear message (file and line, or what to
change), exit code 2, no traceback, and change nothing."""

from __future__ import annotations

from pathlib import Path

from costagent_tests.peers.homes import run_cli


def test_damaged_teams_registry_is_reported_with_file_and_line(isolated: Path, capsys):
    isolated.mkdir(parents=True)
    registry = isolated / "teams.json"
    for text, expected in (("", "the file is empty"), ('[{"team_name": "a",\n "x": }]', "line 2")):
        registry.write_text(text)
        for command in (["teams", "list"], ["sql", "select 1"]):
            assert run_cli(*command) == 2
            err = capsys.readouterr().err
            assert str(registry) in err and expected in err and "Traceback" not in err
        assert registry.read_text() == text


def test_damaged_settings_are_reported_with_file_and_line(isolated: Path, capsys):
    isolated.mkdir(parents=True)
    (isolated / "settings.json").write_text('{"schedule_hour": 9,\n}')
    assert run_cli("status") == 2
    err = capsys.readouterr().err
    assert "settings.json" in err and "line 2" in err


def test_months_before_the_first_partition_are_refused_with_what_to_change(isolated: Path, capsys):
    from costagent_assets.defs.partitions import FIRST_MONTH

    assert run_cli("demo", "--accounts", "2", "--history-months", "0") == 0
    runs_before = len(list((isolated / "dagster" / "history" / "runs").glob("*.db")))
    capsys.readouterr()
    assert run_cli("backfill", "--from", "2020-01", "--to", "2020-11") == 2
    err = capsys.readouterr().err
    assert f"before the first month partition, {FIRST_MONTH}" in err and "FIRST_MONTH" in err
    assert run_cli("backfill", "--from", FIRST_MONTH, "--to", "2999-01") == 2
    assert "after the current month" in capsys.readouterr().err
    assert len(list((isolated / "dagster" / "history" / "runs").glob("*.db"))) == runs_before
