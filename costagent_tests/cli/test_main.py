"""The `costagent` command: bad input is refused with line numbers and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from costagent_assets.cli import main as cli

GOOD = (
    "team_name,aws_account_id,team_email,monthly_budget\n"
    "Payments,012345678901,payments@example.com,5000\n"
    "Search,123456789012,search@example.com,\n"
)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def registry(isolated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    code, out, _ = run(capsys, "teams", "import", str(good))
    assert code == 0 and "2 added" in out and "2 added, 0 removed" in out
    return isolated / "teams.json"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("team_name,aws_account_id,team_email\nOps,12345678901,ops@example.com\n", ["line 2", "aws_account_id", "leading zero"]),
        ("team_name,aws_account_id,team_email\nOps,111111111111,not-an-email\n", ["line 2", "team_email"]),
        (
            "team_name,aws_account_id,team_email\nA,111111111111,a@example.com\nB,111111111111,b@example.com\n",
            ["line 3", "duplicate of line 2"],
        ),
        ("team_name,aws_account_id\nOps,111111111111\n", ["line 1", "team_email"]),
        ("", ["line 1", "empty"]),
    ],
    ids=["11-digit-id", "bad-email", "duplicate-account", "missing-column", "empty-file"],
)
def test_bad_team_files_are_rejected_and_change_nothing(
    registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: list[str]
):
    before = registry.read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    code, _, err = run(capsys, "teams", "import", str(bad), "--replace")
    assert code == cli.EXIT_BAD_INPUT
    for fragment in expected:
        assert fragment in err, err
    assert registry.read_bytes() == before


def test_teams_add_remove_follow_the_account_partitions(registry: Path, capsys: pytest.CaptureFixture[str]):
    from costagent_assets.cli.runner import prepare_instance
    from costagent_assets.home import get_home

    code, _, _ = run(capsys, "teams", "add", "--account", "000000000042", "--name", "Data", "--email", "data@example.com")
    assert code == 0
    instance = prepare_instance(get_home())
    assert "000000000042" in instance.get_dynamic_partitions("account")
    code, _, _ = run(capsys, "teams", "remove", "012345678901")
    assert code == 0
    assert "012345678901" not in prepare_instance(get_home()).get_dynamic_partitions("account")
    code, out, _ = run(capsys, "teams", "list", "--json")
    assert sorted(t["aws_account_id"] for t in json.loads(out)) == ["000000000042", "123456789012"]
    code, _, err = run(capsys, "teams", "add", "--account", "000000000042", "--name", "Dup", "--email", "d@example.com")
    assert code == cli.EXIT_BAD_INPUT and "000000000042" in err


def test_config_refuses_invalid_values_with_what_is_allowed(isolated: Path, capsys: pytest.CaptureFixture[str]):
    code, _, err = run(capsys, "config", "set", "schedule_day", "someday")
    assert code == cli.EXIT_BAD_INPUT and "monday" in err
    code, _, err = run(capsys, "config", "set", "schedule_hour", "24")
    assert code == cli.EXIT_BAD_INPUT and "23" in err
    assert not (isolated / "settings.json").exists()
    code, out, _ = run(capsys, "config", "set", "anomaly_min_usd", "250")
    assert code == 0
    code, out, _ = run(capsys, "config", "show", "--json")
    assert json.loads(out)["anomaly_min_usd"] == 250


def test_sql_reports_errors_and_formats(isolated: Path, capsys: pytest.CaptureFixture[str]):
    code, out, _ = run(capsys, "sql", "select 1 as a, 'x' as b", "--format", "csv")
    assert code == 0 and out.splitlines() == ["a,b", "1,x"]
    code, out, _ = run(capsys, "sql", "select count(*) as n from raw_costs")
    assert code == 0 and "0" in out  # empty warehouse: the views exist and are empty
    code, _, err = run(capsys, "sql", "select * from no_such_table")
    assert code == cli.EXIT_BAD_INPUT and "no_such_table" in err


def test_run_without_teams_says_what_to_do(isolated: Path, capsys: pytest.CaptureFixture[str]):
    code, _, err = run(capsys, "run", "--as-of", "2026-11-23")
    assert code == cli.EXIT_BAD_INPUT and "teams import" in err
