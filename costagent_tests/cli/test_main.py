"""The `costagent` command: bad input is refused with line numbers and changes nothing."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from costagent_assets.cli import main as cli
from costagent_assets.cli.status import configured_lines
from costagent_assets.settings import Settings

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


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        ("tomorrow", "after today"),
        ("2026-12-07", "after today"),  # issue 19: mailed every team "no cost data" on 2026-11-28
        ("2023-12-15", "before the first month 2024-01"),
    ],
)
def test_a_report_date_in_the_future_or_before_the_first_month_is_refused(
    registry: Path, capsys: pytest.CaptureFixture[str], as_of: str, expected: str
):
    from datetime import timedelta

    today = cli._today()
    if as_of == "tomorrow":
        as_of = (today + timedelta(days=1)).isoformat()
    elif date.fromisoformat(as_of) <= today and expected == "after today":
        pytest.skip("the machine's clock is past this date")
    home = registry.parent
    before = home_files(home)
    for command in (("run", "--as-of", as_of), ("demo", "--as-of", as_of)):
        with pytest.raises(SystemExit) as exited:
            cli.main(list(command))
        err = capsys.readouterr().err
        assert exited.value.code == 2 and expected in err and as_of in err
    # Refused before anything ran: no Dagster run, no email, no warehouse file.
    assert home_files(home) == before


def home_files(home: Path) -> list[Path]:
    """The home's files, less SQLite's transient -shm/-wal files."""
    return sorted(p.relative_to(home) for p in home.rglob("*") if not p.name.endswith(("-shm", "-wal")))


def test_today_and_the_first_report_date_are_accepted():
    today = cli._today()
    assert cli.as_of_problem(today, today) is None
    assert cli.as_of_problem(date(2024, 1, 2), today) is None
    assert "before the first month" in cli.as_of_problem(date(2024, 1, 1), today)


@pytest.mark.parametrize("command", [("status",), ("sql", "select 1"), ("config", "show")])
def test_a_damaged_settings_file_is_named_without_a_traceback(
    isolated: Path, capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
):
    isolated.mkdir(parents=True, exist_ok=True)
    settings = isolated / "settings.json"
    settings.write_text("garbage{")
    code, out, err = run(capsys, *command)
    assert code == 2 and str(settings) in err and "invalid JSON at line 1" in err and "Traceback" not in err + out


@pytest.mark.parametrize("command", [("status",), ("sql", "select 1"), ("run",), ("teams", "list")])
def test_a_damaged_registry_is_named_without_a_traceback(
    isolated: Path, capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
):
    isolated.mkdir(parents=True, exist_ok=True)
    registry = isolated / "teams.json"
    registry.write_text('[{"team_name": 5}]')
    code, out, err = run(capsys, *command)
    assert code == 2 and str(registry) in err and "line 1" in err and "Traceback" not in err + out


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 200 KB filesystem (tmpfs, needs root): a disk that fills up."""
    import subprocess

    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_is_reported_as_such_without_a_traceback(
    tiny_disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from costagent_assets.demo import organisation as demo

    teams = tmp_path / "teams.csv"
    teams.write_text("team_name,aws_account_id,team_email\n" + "".join(
        f"{t['team_name']},{t['aws_account_id']},{t['team_email']}\n" for t in demo.demo_teams(2000)))
    home = tiny_disk / "home"
    code, out, err = run(capsys, "--home", str(home), "teams", "import", str(teams))
    assert code == 1 and "the disk is full" in err and "Traceback" not in err
    assert not (home / "teams.json").exists()  # nothing half-written
    code, out, err = run(capsys, "--home", str(home), "demo", "--accounts", "5")
    assert code == 1 and "cannot be written (database or disk is full)" in err and str(home / "dagster") in err
    assert "Traceback" not in err


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"costagent {version('costagent')}"


def test_status_says_what_is_configured_and_never_a_secret(
    isolated: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    code, out, _ = run(capsys, "status")
    assert code == 0
    assert "configured:" in out
    assert "  AI key:             no (GEMINI_API_KEY unset)" in out
    assert "  source credentials: yes (the demo needs no credentials)" in out
    assert "  SMTP:               not used (email_mode=outbox)" in out
    secrets = {"GEMINI_API_KEY": "gem-SECRET-4242", "DATADOG_API_KEY": "dd-api-SECRET-77",
               "DATADOG_APP_KEY": "dd-app-SECRET-88", "DATADOG_SITE": "datadoghq.eu",
               "SMTP_HOST": "smtp.SECRET-host.example", "SENDER_EMAIL": "costs@SECRET.example",
               "SMTP_USER": "user-SECRET", "SMTP_PASSWORD": "pw-SECRET-99",
               "AWS_ACCESS_KEY_ID": "AKIASECRET123", "AWS_SECRET_ACCESS_KEY": "aws-SECRET-xyz"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    for key, value in (("source", "datadog"), ("email_mode", "smtp")):
        assert run(capsys, "config", "set", key, value)[0] == 0
    code, out, err = run(capsys, "status")
    assert "  AI key:             yes (GEMINI_API_KEY)" in out
    assert "  source credentials: yes (DATADOG_API_KEY, DATADOG_APP_KEY, DATADOG_SITE)" in out
    assert "  SMTP:               yes (SMTP_HOST, SENDER_EMAIL); login yes (SMTP_USER, SMTP_PASSWORD)" in out
    assert "  S3 warehouse:       not used (local warehouse)" in out
    assert "  admin addresses:    no (global_admin_emails empty: no admin report is mailed)" in out
    for value in secrets.values():
        assert value not in out and value not in err
    # With the warehouse on S3 (not reached here: status would list it), the credentials it would use.
    lines = configured_lines(Settings(warehouse_uri="s3://bucket/prefix", source="cost_explorer"), secrets)
    assert "  S3 warehouse:       AWS credentials yes (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)" in lines
    assert "  source credentials: AWS credentials yes (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)" in lines
    assert not any(v in line for v in secrets.values() for line in lines)


def test_the_seed_team_file_format_is_mapped_with_a_note(isolated: Path, tmp_path: Path, capsys):
    seed = tmp_path / "seed.csv"
    seed.write_text("id,team_name,team_email,admin_emails\n"
                    "012345678901,Payments,payments@example.com,cfo@example.com; ops@example.com\n")
    code, out, _ = run(capsys, "teams", "import", str(seed))
    assert code == 0
    assert "note: column id read as aws_account_id (the original cost agent's seed format)" in out
    assert "note: column admin_emails read as cc_emails (the original cost agent's seed format)" in out
    code, out, _ = run(capsys, "teams", "list", "--json")
    [team] = json.loads(out)
    assert (team["aws_account_id"], team["cc_emails"]) == ("012345678901", ["cfo@example.com", "ops@example.com"])
    seed_json = tmp_path / "seed.json"
    seed_json.write_text(json.dumps([{"id": "123456789012", "team_name": "Search", "team_email": "s@example.com",
                                      "admin_emails": ["lead@example.com"]}]))
    code, out, _ = run(capsys, "teams", "import", str(seed_json))
    assert code == 0 and "note: column id read as aws_account_id" in out
    # A file with both names keeps ours and refuses the other, as before.
    both = tmp_path / "both.csv"
    both.write_text("id,aws_account_id,team_name,team_email\n1,012345678901,Payments,payments@example.com\n")
    code, _, err = run(capsys, "teams", "import", str(both))
    assert code == 2 and "id" in err


def test_a_start_that_delivers_to_the_outbox_imports_no_http_or_crypto_client():
    # Every `costagent` command loads the code location; httpx and cryptography (~0.2 s) are for SMTP XOAUTH2 only.
    import subprocess
    import sys

    probe = ("import sys; from costagent_assets.cli.main import build_parser; build_parser(); "
             "import costagent_assets.definitions; print(sorted({'httpx', 'cryptography'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
