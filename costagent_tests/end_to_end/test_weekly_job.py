"""The weekly job end to end on the demo organisation: the README's first command, in-process."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import date
from pathlib import Path

import pytest

from costagent_assets.cli import main as cli
from costagent_assets.demo import organisation as demo
from costagent_assets.reporting import format_pct
from costagent_assets.teams.registry import load_registry
from costagent_tests.peers.homes import DEMO_AS_OF, copy_home, run_cli

AS_OF = DEMO_AS_OF  # demo_home (conftest.py): `costagent demo --as-of 2026-11-23`, shared
MONTH = "2026-11"


def sql(home: Path, query: str, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    capsys.readouterr()
    assert cli.main(["--home", str(home), "sql", query, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def outbox(home: Path) -> Path:
    return home / "outbox" / AS_OF.isoformat()


def team_text(home: Path, account_id: str) -> str:
    """The plain-text part of a team's email."""
    raw = (outbox(home) / f"{MONTH}-team-{account_id}.eml").read_bytes()
    return email.message_from_bytes(raw, policy=email.policy.default).get_body(("plain",)).get_content()


def test_outbox_has_one_email_per_team_and_one_admin_report(demo_home: Path):
    folder = outbox(demo_home)
    assert len(list(folder.glob(f"{MONTH}-team-*.eml"))) == 84
    assert len(list(folder.glob(f"{MONTH}-team-*.html"))) == 84
    assert [p.name for p in folder.glob("*-admin.eml")] == [f"{MONTH}-admin.eml"]


def test_history_is_queryable(demo_home: Path, capsys: pytest.CaptureFixture[str]):
    rows = sql(demo_home, "select count(distinct account_id) as n from raw_costs", capsys)
    assert rows == [{"n": 84}]
    # No day counted twice.
    dupes = sql(
        demo_home,
        "select count(*) as n from (select date, account_id, service, region, usage_type from raw_costs "
        "group by all having count(*) > 1)",
        capsys,
    )
    assert dupes == [{"n": 0}]
    months = sql(demo_home, "select distinct month from mom_changes order by 1", capsys)
    # The weekly run's two months, after the 6 months of history `costagent demo` loads first.
    assert [m["month"] for m in months] == [f"2026-{m:02d}" for m in range(4, 11)] + [MONTH]
    teams = sql(demo_home, "select count(*) as n from teams", capsys)
    assert teams == [{"n": 84}]


def test_each_team_email_holds_only_its_own_account(demo_home: Path):
    teams = load_registry(demo_home / "teams.json")
    for team in teams:
        raw = (outbox(demo_home) / f"{MONTH}-team-{team.aws_account_id}.eml").read_bytes()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert message["To"] == team.team_email
        body = message.get_body(("html",)).get_content() + message.get_body(("plain",)).get_content()
        assert team.aws_account_id in body
        for other in teams:
            if other.aws_account_id != team.aws_account_id:
                assert other.aws_account_id not in body, (team.aws_account_id, other.aws_account_id)
                assert other.team_email not in raw.decode("utf-8", "replace")


def test_planted_anomalies_above_the_floor_are_alerted_and_below_are_not(
    demo_home: Path, capsys: pytest.CaptureFixture[str]
):
    accounts = [t.aws_account_id for t in load_registry(demo_home / "teams.json")]
    planted = [
        p
        for p in demo.planted_anomalies(accounts, MONTH, MONTH)
        if p.detectable_from < AS_OF
    ]
    assert sum(p.above_floor for p in planted) >= 5 and sum(not p.above_floor for p in planted) >= 2
    rows = sql(
        demo_home,
        f"select account_id, service, kind from anomalies where month = '{MONTH}' and level = 'service' and alerted",
        capsys,
    )
    alerted = {(r["account_id"], r["service"]) for r in rows}
    for p in planted:
        if p.above_floor:
            assert (p.account_id, p.service) in alerted, p
        else:
            assert (p.account_id, p.service) not in alerted, p


def test_rerun_replaces_instead_of_duplicating(
    demo_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    home = copy_home(demo_home, tmp_path / "rerun")  # the shared home stays as the demo left it
    before = sql(home, "select count(*) as n, round(sum(cost_usd), 2) as usd from raw_costs", capsys)
    files_before = sorted(p.name for p in outbox(home).iterdir())
    assert run_cli("--home", str(home), "run", "--as-of", AS_OF.isoformat()) == 0
    after = sql(home, "select count(*) as n, round(sum(cost_usd), 2) as usd from raw_costs", capsys)
    assert after == before
    assert sorted(p.name for p in outbox(home).iterdir()) == files_before


def test_preview_renders_without_sending(demo_home: Path, capsys: pytest.CaptureFixture[str]):
    team = load_registry(demo_home / "teams.json")[0]
    files = sorted(p.name for p in outbox(demo_home).iterdir())
    capsys.readouterr()
    assert cli.main(["--home", str(demo_home), "preview", "team", team.aws_account_id]) == 0
    out = capsys.readouterr().out
    assert team.team_name in out and "Subject:" in out
    assert cli.main(["--home", str(demo_home), "preview", "admin", "--month", MONTH]) == 0
    assert "Organisation cost report" in capsys.readouterr().out
    assert sorted(p.name for p in outbox(demo_home).iterdir()) == files


def test_anomaly_rows_carry_kind_severity_impact_and_drivers_that_add_up(
    demo_home: Path, capsys: pytest.CaptureFixture[str]
):
    rows = sql(
        demo_home,
        f"select kind, severity, impact_usd, change_pct, detector, "
        f"round(list_sum(list_transform(drivers, d -> d.change_usd)), 2) as drivers_usd, len(drivers) as n "
        f"from anomalies where month = '{MONTH}' and alerted and level = 'service'",
        capsys,
    )
    assert rows and {r["kind"] for r in rows} <= {"spike", "step", "new_service", "increase"}
    assert {r["kind"] for r in rows} & {"spike", "step"}  # the daily detector ran in the pipeline
    for r in rows:
        assert r["severity"] in ("low", "medium", "high") and r["impact_usd"] >= 100
        assert r["n"] >= 1 and abs(r["drivers_usd"] - round(r["impact_usd"], 2)) <= 0.011, r
    budgets = sql(demo_home, f"select detector, budget_threshold_pct from anomalies where month = '{MONTH}' "
                  "and kind = 'budget'", capsys)
    assert budgets and all(b["budget_threshold_pct"] in (50, 80, 100) for b in budgets)


def test_a_spike_planted_on_day_3_is_alerted_by_the_weekly_run_on_day_5(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """Demo account #8 has a spike planted on 3 June 2026; the month-to-date rule could only see it from the 7th."""
    accounts = [t["aws_account_id"] for t in demo.demo_teams(8)]
    spike = next(p for p in demo.planted_anomalies(accounts, "2026-06", "2026-06") if p.kind == "spike")
    assert spike.start == date(2026, 6, 3) and spike.detectable_from > date(2026, 6, 5)
    home = tmp_path / "home"
    assert run_cli("--home", str(home), "demo", "--as-of", "2026-06-05", "--accounts", "8") == 0
    rows = sql(home, "select account_id, service, kind, start_date from anomalies where alerted and "
               "month = '2026-06' and level = 'service'", capsys)
    assert {"account_id": spike.account_id, "service": spike.service, "kind": "spike",
            "start_date": "2026-06-03"} in rows


def test_team_emails_show_the_sql_forecast_its_range_and_track_record(
    demo_home: Path, capsys: pytest.CaptureFixture[str]
):
    rows = sql(
        demo_home,
        "select account_id, point_usd, low_usd, high_usd, track_months, track_inside, track_mape_pct "
        f"from forecasts where month = '{MONTH}' and service is null and horizon = 'month_end' order by account_id",
        capsys,
    )
    assert len(rows) == 84
    # `costagent demo` loaded six months first; accounts created during them have a shorter record.
    assert max(r["track_months"] for r in rows) == 6
    assert sum(r["track_months"] == 6 for r in rows) >= 70
    shorter = [r for r in rows if r["track_months"] < 6][:2]
    for row in [r for r in rows if r["track_months"] == 6][:3] + shorter:
        text = team_text(demo_home, row["account_id"])
        assert "FORECAST (80% range)" in text
        shown = f"${row['point_usd']:,.0f}" if row["point_usd"] >= 1000 else f"${row['point_usd']:,.2f}"
        assert shown in text, (row, text[:2000])
        assert row["low_usd"] <= row["point_usd"] <= row["high_usd"]
        months = f"{row['track_months']} month" + ("s" if row["track_months"] != 1 else "")
        times = "time" if row["track_inside"] == 1 else "times"
        assert (f"Over the last {months}, the actual fell inside our range {row['track_inside']} {times}; "
                f"typical error {row['track_mape_pct']:.1f}%.") in text


def test_account_months_states_the_forecast_the_emails_show(demo_home: Path, capsys: pytest.CaptureFixture[str]):
    rows = sql(
        demo_home,
        "select a.account_id, a.projected_month_end_usd, a.month_end_low_usd, a.next_month_usd, f.point_usd, "
        "f.low_usd from account_months a join forecasts f on f.month = a.month and f.account_id = a.account_id "
        f"and f.service is null and f.horizon = 'month_end' where a.month = '{MONTH}'",
        capsys,
    )
    assert len(rows) == 84
    assert all(r["projected_month_end_usd"] == r["point_usd"] and r["month_end_low_usd"] == r["low_usd"]
               and r["next_month_usd"] is not None for r in rows)


def test_budgets_view_gives_the_status_the_team_email_shows(demo_home: Path, capsys: pytest.CaptureFixture[str]):
    rows = sql(demo_home, f"select account_id, status, used_pct from budgets where month = '{MONTH}'", capsys)
    assert rows
    label = {"ok": "On track", "warning": "At risk", "over": "Over budget"}
    by_status = {}
    for row in rows:
        by_status.setdefault(row["status"], row)
    assert len(by_status) >= 2, by_status  # the demo's budgets are set so that more than one status shows
    for row in by_status.values():
        text = team_text(demo_home, row["account_id"])
        assert f"{label[row['status']]}: {format_pct(row['used_pct'])} of the" in text, (row, text[:1500])


def test_every_sql_example_in_the_readme_runs(demo_home: Path, capsys: pytest.CaptureFixture[str]):
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    statements = [q.strip() for block in re.findall(r"```sql\n(.*?)```", readme, re.S)
                  for q in block.split(";\n") if q.strip()]
    assert len(statements) >= 8
    # These look for what the demo rightly does not have: teams growing >20% three months running, accounts
    # whose savings scan failed, Gemini calls (no API key).
    may_be_empty = ("p2 > 20", "scan_status <> 'ok'", "FROM ai_run_costs")
    for statement in statements:
        rows = sql(demo_home, statement, capsys)
        assert rows or any(m in statement for m in may_be_empty), statement
