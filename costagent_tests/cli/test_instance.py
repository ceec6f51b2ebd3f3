"""The instance's dagster.yaml is the operator's: written from a shipped profile only when missing (or with
--force), never rewritten by other commands; a variable it reads and the environment lacks is named."""

from __future__ import annotations

from pathlib import Path

from costagent_tests.peers.homes import run_cli


def test_dagster_yaml_is_written_once_and_then_left_as_the_operator_edits_it(isolated: Path, capsys):
    assert run_cli("status") == 0
    config = isolated / "dagster" / "dagster.yaml"
    written = config.read_text()
    assert "BatchedSqliteEventLogStorage" in written and f"{isolated / 'dagster'}/history/runs" in written
    edited = written.replace("max_concurrent_runs: 1", "max_concurrent_runs: 2") + "\nretention:\n  schedule:\n    purge_after_days: 30\n"
    config.write_text(edited)
    assert run_cli("demo", "--accounts", "2", "--history-months", "0") == 0
    assert run_cli("status") == 0
    assert config.read_text() == edited

    capsys.readouterr()
    assert run_cli("instance", "init") == 2
    assert "exists" in capsys.readouterr().err and config.read_text() == edited
    assert run_cli("instance", "init", "--force") == 0
    assert config.read_text() == written


def test_the_postgres_profile_names_the_variables_it_needs(isolated: Path, monkeypatch, capsys):
    for name in ("DAGSTER_POSTGRES_HOST", "DAGSTER_POSTGRES_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    assert run_cli("instance", "init", "--profile", "postgres") == 0
    text = (isolated / "dagster" / "dagster.yaml").read_text()
    assert "{env: DAGSTER_POSTGRES_PASSWORD}" in text and "change-me" not in text
    capsys.readouterr()
    assert run_cli("instance", "show") == 2
    err = capsys.readouterr().err
    assert "DAGSTER_POSTGRES_HOST" in err and "DAGSTER_POSTGRES_PASSWORD" in err and "not set" in err
