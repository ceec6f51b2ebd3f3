"""The report contexts (report_context.py): what the team emails and the admin report say about savings scans."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl

from costagent_assets.analysis import detect_anomalies
from costagent_assets.report_context import ALERT_CHART_DAYS, ALERT_CHART_PX, ReportFrames, budget_context
from costagent_assets.reporting import render_admin_report, render_team_report
from costagent_assets.schemas import conform, empty
from costagent_assets.teams.model import Team
from costagent_tests.insights.small_org import MONTH, PERIODS, RULE, TEAMS, A, B, C, mom


def test_reports_say_which_accounts_were_not_scanned_and_why():
    rows = [
        {"account_id": A, "record": "account", "scan_status": "unavailable", "api_calls": 1,
         "reason": "role CostagentReadOnly could not be assumed: AccessDenied: not authorized"},
        {"account_id": B, "record": "account", "scan_status": "not_scanned", "api_calls": 0,
         "reason": "scanning is switched off (optimization_scanner=off)"},
        {"account_id": C, "record": "account", "scan_status": "ok", "api_calls": 20, "monthly_savings_usd": 3.65},
        {"account_id": C, "record": "finding", "rank": 1, "kind": "eip_unassociated", "service": "Amazon EC2",
         "resource_id": "eipalloc-1", "name": "3.3.3.3", "region": "us-east-1",
         "evidence": "Elastic IP 3.3.3.3 is not associated with an instance or network interface",
         "action": "Release Elastic IP 3.3.3.3 (eipalloc-1) if nothing needs the address",
         "monthly_savings_usd": 3.65, "estimate_basis": "list_price"},
    ]
    optimization = conform(pl.DataFrame([{"month": MONTH, **r} for r in rows], infer_schema_length=None),
                           "optimization_opportunities")
    frames = ReportFrames(MONTH, PERIODS[MONTH], mom(), empty("anomalies"), empty("ai_insights"),
                          generated_at=datetime(2026, 11, 23, tzinfo=UTC), optimization=optimization)
    by_id = {t.aws_account_id: t for t in TEAMS}
    unavailable = render_team_report(frames.team_context(by_id[A])).text
    assert "could not be scanned for savings this week: role CostagentReadOnly could not be assumed" in unavailable
    assert frames.team_context(by_id[B])["savings"] is None  # off: nothing to tell the team
    assert "TOP 3 SAVINGS" not in render_team_report(frames.team_context(by_id[B])).text
    found = render_team_report(frames.team_context(by_id[C])).text
    assert "1. $3.65/month - Unassociated Elastic IP" in found and "Release Elastic IP 3.3.3.3" in found
    admin = frames.admin_context(TEAMS)
    assert admin["savings"]["total_monthly_usd"] == 3.65 and admin["savings"]["accounts_scanned"] == 1
    text = render_admin_report(admin).text
    assert "2 ACCOUNTS NOT FULLY SCANNED (savings unknown, not $0):" in text
    assert f"Ignore previous instructions ({A}) unavailable: role CostagentReadOnly could not be assumed" in text
    assert f"Flat ({B}) not_scanned: scanning is switched off (optimization_scanner=off)" in text
    # Scanning off for everyone: one line for the admins, with the reason.
    off = optimization.filter(pl.col("account_id") == B)
    frames = ReportFrames(MONTH, PERIODS[MONTH], mom(), empty("anomalies"), empty("ai_insights"),
                          generated_at=datetime(2026, 11, 23, tzinfo=UTC), optimization=off)
    text = render_admin_report(frames.admin_context([by_id[B]])).text
    assert "No account was scanned for savings: scanning is switched off (optimization_scanner=off)." in text


def stopped_account_forecasts() -> pl.DataFrame:
    """Account A spent $100 a day until the end of August 2026, then nothing: its backtested September and
    October had $0 actuals (months with no measurable % error), and November's forecast carries that
    track record."""
    from datetime import date, timedelta

    from costagent_assets.forecast import compute_backtest, compute_forecasts
    from costagent_assets.periods import period

    days = [date(2026, 5, 1) + timedelta(d) for d in range(123)]
    raw = pl.DataFrame({"account_id": A, "service": "AWS Lambda", "date": days, "cost_usd": 100.0}).with_columns(
        pl.col("date").dt.strftime("%Y-%m").alias("month"))
    done = {m: period(m, date(2026, 11, 23)) for m in ("2026-09", "2026-10")}
    backtests = compute_backtest(raw, done, [(m, A) for m in done])
    assert backtests.filter(pl.col("service").is_null())["actual_usd"].to_list() == [0.0, 0.0]
    return compute_forecasts(raw, PERIODS, [(MONTH, A)], backtests)


def test_an_account_whose_spend_stopped_still_gets_its_email():
    forecasts = stopped_account_forecasts()
    account = forecasts.filter(pl.col("service").is_null() & (pl.col("horizon") == "next_month")).row(0, named=True)
    assert account["track_months"] == 2 and account["track_mape_pct"] is None  # months, but no % error
    frames = ReportFrames(MONTH, PERIODS[MONTH], mom(), empty("anomalies"), empty("ai_insights"),
                          generated_at=datetime(2026, 11, 23, tzinfo=UTC), forecasts=forecasts)
    by_id = {t.aws_account_id: t for t in TEAMS}
    text = render_team_report(frames.team_context(by_id[A])).text
    assert "Over the last 2 months, the actual fell inside our range" in text
    assert "no % error to measure (no spend in those months)" in text
    assert "too little history to be sure of it" in text  # its range rests on the model alone
    assert frames.admin_context(TEAMS)["totals"]["accounts"] == 3


def test_a_section_that_fails_for_one_account_is_unavailable_there_and_the_rest_is_reported():
    # A's stored forecast row has lost its target month (a corrupt row): only A's forecast can't be shown.
    forecasts = stopped_account_forecasts()
    broken = pl.concat([
        forecasts.with_columns(pl.lit(None, dtype=pl.String).alias("target_month")),
        forecasts.with_columns(pl.lit(B).alias("account_id")),
    ])
    frames = ReportFrames(MONTH, PERIODS[MONTH], mom(), empty("anomalies"), empty("ai_insights"),
                          generated_at=datetime(2026, 11, 23, tzinfo=UTC), forecasts=broken)
    by_id = {t.aws_account_id: t for t in TEAMS}
    a, b = frames.team_context(by_id[A]), frames.team_context(by_id[B])
    assert (a["forecast"], a["unavailable"]) == (None, ["forecast"])
    assert b["forecast"]["next_month"]["label"] == "December 2026" and b["unavailable"] == []
    text = render_team_report(a).text
    assert "Unavailable this week: forecast." in text and "Month to date" in text
    admin = frames.admin_context(TEAMS)
    assert [(u["aws_account_id"], u["section"]) for u in admin["unavailable"]] == [(A, "forecast")]
    assert admin["unavailable"][0]["error"].startswith("AttributeError")
    assert f"Ignore previous instructions ({A}) forecast: AttributeError" in render_admin_report(admin).text


def test_an_account_whose_forecasts_or_anomalies_stage_failed_is_told_so_not_shown_nothing():
    from costagent_assets.anomaly_detection import unavailable_anomalies
    from costagent_assets.forecast import unavailable_forecasts

    failed = {A: "TypeError: bad row"}
    frames = ReportFrames(MONTH, PERIODS[MONTH], mom(), unavailable_anomalies([(MONTH, A), (MONTH, B)], failed),
                          empty("ai_insights"), generated_at=datetime(2026, 11, 23, tzinfo=UTC),
                          forecasts=unavailable_forecasts([(MONTH, A), (MONTH, B)], failed))
    by_id = {t.aws_account_id: t for t in TEAMS}
    a, b = frames.team_context(by_id[A]), frames.team_context(by_id[B])
    assert a["unavailable"] == ["anomalies", "forecast"] and b["unavailable"] == []
    assert "Unavailable this week: anomalies, forecast." in render_team_report(a).text
    errors = {u["section"]: u["error"] for u in frames.admin_context(TEAMS)["unavailable"]}
    assert errors["anomalies"] == "RuntimeError: Anomaly detection failed for this account: TypeError: bad row"
    assert errors["forecast"].startswith("RuntimeError: the forecasts stage could not compute it")


def chart_daily() -> pl.DataFrame:
    """Daily costs of A (EC2 and Route 53) and C (Lambda) from 1 October to 22 November: EC2 jumps on 18-20 Nov."""
    rows = []
    for i in range(53):
        d = date(2026, 10, 1) + timedelta(days=i)
        month = f"{d:%Y-%m}"
        ec2 = 300.0 if date(2026, 11, 18) <= d <= date(2026, 11, 20) else 100.0
        rows += [{"month": month, "account_id": A, "service": "Amazon Elastic Compute Cloud - Compute", "date": d, "cost_usd": ec2},
                 {"month": month, "account_id": A, "service": "Amazon Route 53", "date": d, "cost_usd": 2.0},
                 {"month": month, "account_id": C, "service": "AWS Lambda", "date": d, "cost_usd": 40.0}]
    return pl.DataFrame(rows)


def chart_alerts() -> pl.DataFrame:
    """An EC2 spike (18-20 Nov) and an account-level rise since 15 Nov for A; C's budget reached."""
    rows = [
        {"account_id": A, "level": "service", "service": "Amazon Elastic Compute Cloud - Compute", "kind": "spike",
         "detector": "daily_spike", "start_date": date(2026, 11, 18), "end_date": date(2026, 11, 20),
         "current_usd": 900.0, "previous_usd": 300.0, "change_usd": 600.0, "change_pct": 200.0, "severity": "high",
         "alerted": True},
        {"account_id": A, "level": "account", "service": None, "kind": "increase", "detector": "mom",
         "start_date": date(2026, 11, 15), "current_usd": 3053.0, "previous_usd": 1850.0, "change_usd": 1203.0,
         "change_pct": 65.0, "severity": "high", "alerted": True},
        {"account_id": A, "level": "service", "service": "Amazon Route 53", "kind": "increase", "detector": "mom",
         "current_usd": 53.0, "previous_usd": 50.0, "change_usd": 3.0, "change_pct": 6.0, "severity": "low",
         "alerted": False},
        {"account_id": C, "level": "account", "service": None, "kind": "budget", "detector": "budget_actual",
         "budget_threshold_pct": 80.0, "current_usd": 900.0, "severity": "medium", "alerted": True,
         "acknowledged": False, "note": "90% of the $1,000 monthly budget spent"},
    ]
    return conform(pl.DataFrame([{"month": MONTH, **r} for r in rows], infer_schema_length=None), "anomalies")


def test_each_alert_gets_its_daily_chart_with_its_days_marked():
    frames = ReportFrames(MONTH, PERIODS[MONTH], mom(), chart_alerts(), empty("ai_insights"),
                          generated_at=datetime(2026, 11, 23, tzinfo=UTC), daily=chart_daily())
    by_id = {t.aws_account_id: t for t in TEAMS}
    ctx = frames.team_context(by_id[A])
    rows = {(r["service"], r["kind"]): r for r in ctx["anomalies"]}
    spike = rows[("Amazon Elastic Compute Cloud - Compute", "spike")]["chart"]
    assert len(spike) == ALERT_CHART_DAYS and spike[0]["date"] == date(2026, 10, 19) and spike[-1]["date"] == date(2026, 11, 22)
    assert [p["date"].day for p in spike if p["marked"]] == [18, 19, 20]
    assert {p["h"] for p in spike} == {ALERT_CHART_PX, round(ALERT_CHART_PX / 3)}  # the service's own series
    total = rows[(None, "increase")]["chart"]
    assert [p["date"].day for p in total if p["marked"]] == list(range(15, 23))  # still going on the last day
    assert total[0]["usd"] == 102.0  # the account total: EC2 and Route 53
    assert "chart" not in rows[("Amazon Route 53", "increase")]  # reported, not alerted: no chart
    html = render_team_report(ctx).html
    assert html.count('bgcolor="#f04438"') == 3 + 8 and html.count("per day, 19 Oct to 22 Nov") == 2
    # The budget alert: the account total, this month's days marked.
    c = frames.team_context(by_id[C])
    assert [p["date"] for p in c["budget"]["alert"]["chart"] if p["marked"]][0] == date(2026, 11, 1)
    assert render_team_report(c).html.count('bgcolor="#f04438"') == 22
    # Projected over: the crossing date is after the data, so the month so far is marked, not nothing.
    projected = {"alert": {"start_date": date(2026, 11, 29)}}
    frames._add_charts(C, [], projected)
    assert [p["date"].day for p in projected["alert"]["chart"] if p["marked"]] == list(range(1, 23))
    # Without the daily rollup there is no chart, and the email is otherwise the same.
    plain = ReportFrames(MONTH, PERIODS[MONTH], mom(), chart_alerts(), empty("ai_insights"),
                         generated_at=datetime(2026, 11, 23, tzinfo=UTC)).team_context(by_id[A])
    assert 'bgcolor="#f04438"' not in render_team_report(plain).html
    assert render_team_report(plain).text == render_team_report(ctx).text


def test_a_savings_groups_largest_are_the_same_whatever_order_tied_rows_come_in():
    from costagent_assets.report_context import savings_groups

    rows = [{"kind": "ec2_idle", "account_id": f"00000000000{i}", "resource_id": f"i-{i}", "name": None,
             "region": "us-east-1", "size": "c5.2xlarge", "suggested": None, "evidence": "idle",
             "action": f"Stop i-{i}", "monthly_savings_usd": 560.64, "estimate_basis": "list_price"} for i in range(6)]
    tops = [[f["aws_account_id"] for f in savings_groups(pl.DataFrame(order), {})[0]["top"]]
            for order in (rows, rows[::-1], rows[2:] + rows[:2])]
    assert tops == [["000000000000", "000000000001", "000000000002"]] * 3


def test_an_alert_says_why_in_words_where_quantities_split_it_and_says_nothing_new_where_not():
    """A's EC2 rose $1,200: $1,000 more m5.large hours and $200 of higher prices. The team email and the admin
    report say so beside the alert, naming the usage type; the same alert from a source without quantities
    (split unknown) prints no split at all, never "$0"."""
    frame = mom()
    plain = detect_anomalies(frame, RULE)
    ec2 = (pl.col("account_id") == A) & (pl.col("service") == "Amazon Elastic Compute Cloud - Compute")
    assert plain.filter(ec2).height == 1 and plain.filter(ec2)["usage_change_usd"][0] is None
    driver = {"service": "Amazon Elastic Compute Cloud - Compute", "region": "us-east-1",
              "usage_type": "USE1-BoxUsage:m5.large", "change_usd": 1200.0, "share_of_change_pct": 100.0,
              "usage_usd": 1000.0, "rate_usd": 200.0, "mix_usd": 0.0}
    split = plain.with_columns(
        pl.when(ec2).then(pl.lit(v)).otherwise(pl.col(c)).alias(c)
        for c, v in (("usage_change_usd", 1000.0), ("rate_change_usd", 200.0), ("mix_change_usd", 0.0))
    ).with_columns(pl.when(ec2).then(pl.lit([driver], dtype=plain.schema["drivers"])).otherwise(pl.col("drivers"))
                   .alias("drivers"))
    team = TEAMS[0]
    sentence = "Why: more usage +$1,000 (USE1-BoxUsage:m5.large, us-east-1), higher prices +$200.00"
    for anomalies, shown in ((split, True), (plain, False)):
        frames = ReportFrames(MONTH, PERIODS[MONTH], frame, anomalies, empty("ai_insights"),
                              generated_at=datetime(2026, 11, 23, tzinfo=UTC))
        team_email = render_team_report(frames.team_context(team))
        admin = render_admin_report(frames.admin_context(TEAMS))
        for body in (team_email.text, team_email.html, admin.text, admin.html):
            assert (sentence in body) is shown
            assert ("Why" in body or "more usage" in body or "higher prices" in body) is shown
        assert ("\n     " + sentence + "\n" in team_email.text) is shown  # on its own line, under the alert
    # A usage type is whatever the source's tag says: escaped in the HTML once, printed as is in the text.
    hostile = split.with_columns(pl.when(ec2).then(pl.lit([{**driver, "usage_type": "<b>Box&Usage</b>"}],
                                                          dtype=plain.schema["drivers"]))
                                 .otherwise(pl.col("drivers")).alias("drivers"))
    frames = ReportFrames(MONTH, PERIODS[MONTH], frame, hostile, empty("ai_insights"),
                          generated_at=datetime(2026, 11, 23, tzinfo=UTC))
    rendered = render_team_report(frames.team_context(team))
    assert "(&lt;b&gt;Box&amp;Usage&lt;/b&gt;, us-east-1)" in rendered.html and "<b>Box" not in rendered.html
    assert "(<b>Box&Usage</b>, us-east-1)" in rendered.text


def test_only_accounts_with_an_alert_keep_their_daily_rows():
    """The daily rollup of every account is read once per month; only those with an alerted row or a budget alert
    (the ones that get a chart) are kept, so the emails stage does not hold every account's days."""
    alerts = chart_alerts().filter(pl.col("account_id") == A)
    daily = pl.concat([chart_daily(), chart_daily().with_columns(pl.lit(B).alias("account_id"))])
    frames = ReportFrames(MONTH, PERIODS[MONTH], mom(), alerts, empty("ai_insights"),
                          generated_at=datetime(2026, 11, 23, tzinfo=UTC), daily=daily)
    assert set(frames.daily) == {A}
    budget_only = ReportFrames(MONTH, PERIODS[MONTH], mom(), chart_alerts().filter(pl.col("account_id") == C),
                               empty("ai_insights"), generated_at=datetime(2026, 11, 23, tzinfo=UTC), daily=daily)
    assert set(budget_only.daily) == {C}


def test_a_forecast_budget_alert_states_the_forecast_the_email_shows_beside_it():
    """The anomalies stage raises a forecast overrun on the month's run rate ($1,500 projected: "over by $500");
    the email's projection is the SQL forecast ($1,400). The alert says what the reader can check against the
    "Projected month end" beside it: $400 over. 99.96% spent reads 99.9%, not "100%" while still under."""
    team = Team.from_dict({**TEAMS[0].to_dict(), "monthly_budget": 1000.0})
    alert = conform(pl.DataFrame([{
        "month": MONTH, "account_id": team.aws_account_id, "level": "account", "kind": "budget",
        "detector": "budget_forecast", "budget_threshold_pct": 100.0, "current_usd": 1500.0, "previous_usd": 1000.0,
        "impact_usd": 500.0, "severity": "medium", "alerted": True, "acknowledged": False,
        "start_date": date(2026, 11, 20),
        "note": "Projected to exceed the $1,000 budget by $500 on the 20th (spent 50% so far).",
    }]), "anomalies")
    b = budget_context(team, 500.0, 1400.0, alert)
    assert b["alert"]["impact_usd"] == 400.0 and b["alert"]["amount_usd"] == 1400.0
    assert b["alert"]["note"] == "Projected at $1,400 by month end, $400 over the $1,000 budget (spent 50% so far)."
    assert budget_context(team, 999.6, 1400.0, alert)["alert"]["note"].endswith("(spent 99.9% so far).")
    # The forecast under the budget: the figure and the share, never a negative "over".
    assert budget_context(team, 500.0, 950.0, alert)["alert"]["note"] == (
        "Projected at $950 by month end, 95% of the $1,000 budget (spent 50% so far).")
    # Where the forecast and the run rate agree, the stage's own note (with its crossing day) stays.
    assert budget_context(team, 500.0, 1500.0, alert)["alert"]["note"].startswith("Projected to exceed")


def test_team_contexts_are_dict_lookups_after_the_month_is_split_once(monkeypatch):
    """At 5,000 teams a month, a filter, sort or to_dicts of a frame per team was as costly as rendering the
    email: the frames split every table by account once, and a team's context (charts and savings included)
    runs no polars operation of its own. The contexts say the same as before."""
    optimization = conform(pl.DataFrame([
        {"month": MONTH, "account_id": C, "record": "account", "scan_status": "ok", "api_calls": 2,
         "monthly_savings_usd": 3.65},
        {"month": MONTH, "account_id": C, "record": "finding", "rank": 1, "kind": "eip_unassociated",
         "resource_id": "eipalloc-1", "monthly_savings_usd": 3.65, "estimate_basis": "list_price"},
    ], infer_schema_length=None), "optimization_opportunities")
    frames = ReportFrames(MONTH, PERIODS[MONTH], mom(), chart_alerts(), empty("ai_insights"),
                          generated_at=datetime(2026, 11, 23, tzinfo=UTC), daily=chart_daily(),
                          forecasts=stopped_account_forecasts(), optimization=optimization)
    calls = []
    for name in ("filter", "sort", "to_dicts", "iter_rows", "rows", "group_by", "partition_by", "head"):
        original = getattr(pl.DataFrame, name)
        monkeypatch.setattr(pl.DataFrame, name,
                            lambda self, *a, _name=name, _original=original, **k: calls.append(_name)
                            or _original(self, *a, **k))
    contexts = {t.aws_account_id: frames.team_context(t) for t in TEAMS}
    assert calls == []
    assert [p["h"] for p in contexts[A]["anomalies"][0]["chart"]][-5:] == [ALERT_CHART_PX] * 3 + [12, 12]
    assert contexts[C]["savings"]["top"][0]["resource_id"] == "eipalloc-1" and contexts[C]["budget"]["alert"]
    assert contexts[A]["forecast"]["next_month"] is not None and frames.unavailable == {}


def test_ties_keep_the_stages_order_in_every_account_at_any_size():
    """Services tied on cost, and alerts tied on dollars, are listed in the order the stage stored them, in each
    account, whichever accounts share the month: the month is sorted once, stably, not each account apart."""
    names = [f"Service {i:03d}" for i in range(300, 0, -1)]  # stored in an order no sort of the names gives
    services = [{"month": MONTH, "account_id": account, "level": "service", "service": s, "current_mtd_usd": 5.0,
                 "previous_same_period_usd": 5.0, "change_usd": 0.0, "change_pct": 0.0, "has_data": True}
                for account in (A, B) for s in (names if account == A else names[::-1])]
    totals = [{"month": MONTH, "account_id": account, "level": "account", "current_mtd_usd": 1500.0,
               "previous_same_period_usd": 1500.0, "change_usd": 0.0, "change_pct": 0.0, "has_data": True}
              for account in (A, B)]
    frame = conform(pl.DataFrame(totals + services, infer_schema_length=None), "mom_changes")
    alerts = conform(pl.DataFrame([
        {"month": MONTH, "account_id": A, "level": "service", "service": s, "kind": "increase", "detector": "mom",
         "current_usd": 10.0, "previous_usd": 5.0, "change_usd": 5.0, "change_pct": 100.0, "severity": "low",
         "alerted": True} for s in names], infer_schema_length=None), "anomalies")
    frames = ReportFrames(MONTH, PERIODS[MONTH], frame, alerts, empty("ai_insights"),
                          generated_at=datetime(2026, 11, 23, tzinfo=UTC))
    by_id = {t.aws_account_id: t for t in TEAMS}
    assert [s["service"] for s in frames.team_context(by_id[A])["services"]] == names
    assert [s["service"] for s in frames.team_context(by_id[B])["services"]] == names[::-1]
    assert [r["service"] for r in frames.team_context(by_id[A])["anomalies"]] == names
    assert [r["service"] for r in frames.admin_context(TEAMS)["anomalies"]] == sorted(names)  # ranked by team, service


def test_the_admin_report_states_a_forecast_budget_alert_as_the_teams_email_does():
    """C's forecast overrun was raised on a run rate of $1,300; the projection both reports print is $1,224. The
    admin report's alert list and C's own email say the same dollars and the same sentence."""
    alert = conform(pl.DataFrame([{
        "month": MONTH, "account_id": C, "level": "account", "kind": "budget", "detector": "budget_forecast",
        "budget_threshold_pct": 100.0, "current_usd": 1300.0, "previous_usd": 1000.0, "change_usd": 300.0,
        "impact_usd": 300.0, "severity": "medium", "alerted": True, "acknowledged": False,
        "start_date": date(2026, 11, 25),
        "note": "Projected to exceed the $1,000 budget by $300 on the 25th (spent 90% so far).",
    }]), "anomalies")
    frames = ReportFrames(MONTH, PERIODS[MONTH], mom(), alert, empty("ai_insights"),
                          generated_at=datetime(2026, 11, 23, tzinfo=UTC))
    said = "Projected at $1,224 by month end, $224 over the $1,000 budget (spent 90% so far)."
    team = frames.team_context(next(t for t in TEAMS if t.aws_account_id == C))
    assert team["budget"]["alert"]["note"] == said and team["budget"]["alert"]["impact_usd"] == 224.0
    admin = frames.admin_context(TEAMS)
    [row] = [a for a in admin["anomalies"] if a["aws_account_id"] == C]
    assert row["note"] == said and row["impact_usd"] == 224.0
    assert said in render_admin_report(admin).text and "by $300" not in render_admin_report(admin).text
