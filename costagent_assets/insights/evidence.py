"""The evidence packs: the figures of one account (or of the organisation) that a reply may cite.

Built from the same frames the emails show, rounded as the emails round; a pack is sent as canonical JSON
whose hash (with the model and the instructions) is the cache key of the call.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence

import polars as pl

from costagent_assets.analysis import RUN_RATE_DAYS, AnomalyRule
from costagent_assets.budgets import DEFAULT_ALERT_PCTS
from costagent_assets.insights.prompts import PROMPT_VERSION, SAVINGS_IN_ORG_PACK, SAVINGS_IN_PACK
from costagent_assets.optimization import KIND_LABELS
from costagent_assets.periods import Period, month_start, shift_month
from costagent_assets.recommendations import compute_recommendations
from costagent_assets.report_context import budget_context  # the budget exactly as the team's email shows it
from costagent_assets.teams.model import Team


def _r2(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 2)


def _r1(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 1)


def _label(month: str) -> str:
    return f"{month_start(month):%B %Y}"


def _rows_by_account(frame: pl.DataFrame) -> dict[tuple[str, str], list[dict]]:
    """(month, account_id) -> the frame's rows of that account, in the frame's order: one pass over the frame
    instead of a filter (and a small frame) per account."""
    out: dict[tuple[str, str], list[dict]] = {}
    for r in frame.iter_rows(named=True):
        out.setdefault((r["month"], r["account_id"]), []).append(r)
    return out


def explain_reasons(acct: Mapping, alerts: int, budget: dict | None, rule: AnomalyRule) -> list[str]:
    """Why an account has something to explain (empty: a flat account, no AI call).

    An alerted anomaly, a material change of the account's total (past both the % threshold and the $
    floor, either way), or a budget at risk or over.
    """
    reasons = []
    if alerts:
        reasons.append(f"{alerts} alerted anomal{'ies' if alerts != 1 else 'y'}")
    change, pct = acct.get("change_usd"), acct.get("change_pct")
    if change is not None and abs(change) >= rule.min_usd and (pct is None or abs(pct) >= rule.threshold_pct):
        reasons.append("material change")
    if budget and budget["status"] in ("warning", "over"):
        reasons.append(f"budget {budget['status']}")
    return reasons


def evidence_packs(
    mom: pl.DataFrame,
    anomalies: pl.DataFrame,
    insights: pl.DataFrame,
    periods: Mapping[str, Period],
    teams: Sequence[Team],
    rule: AnomalyRule,
    findings: pl.DataFrame | None = None,
    overrides: Mapping[str, AnomalyRule] | None = None,
    budget_alert_pcts: Sequence[float] = DEFAULT_ALERT_PCTS,
    everyone: bool = False,
) -> dict[tuple[str, str], dict]:
    """One evidence pack per (month, account_id) with something to explain; flat accounts get none
    (``everyone``: a pack for every account with a comparison, its ``why_this_account`` empty when flat,
    for the computed recommendations).

    A pack holds that account's figures only, rounded to cents (and % to one decimal), from the same
    frames the emails show: totals, the drivers of ``insights`` (they add up to the change), the
    projection, the anomalies, the budget, savings candidates (each rise brought to a month) and the
    account's largest savings findings (``optimization_opportunities``: resource, evidence, action, $/month).
    Each account is judged by its own rule where ``overrides`` (the registry's per-team rules) has one.
    """
    savings = savings_by_account(findings)
    by_id = {t.aws_account_id: t for t in teams}
    services = _rows_by_account(mom.filter(pl.col("level") == "service"))
    found = _rows_by_account(anomalies.filter(pl.col("level") == "service"))
    drivers = {(r["month"], r["account_id"]): r["drivers"] or [] for r in insights.iter_rows(named=True)}
    packs = {}
    for acct in mom.filter((pl.col("level") == "account") & pl.col("has_data")).iter_rows(named=True):
        key = (acct["month"], acct["account_id"])
        p = periods.get(acct["month"])
        if p is None or acct["change_usd"] is None:
            continue  # no comparison: nothing an AI could explain that the email does not already say
        team = by_id.get(acct["account_id"])
        an = found.get(key, [])
        alerted = sum(1 for r in an if r["alerted"])
        projected = None if p.complete else acct["projected_month_end_usd"]
        budget = budget_context(team, acct["current_mtd_usd"], projected, alert_pcts=budget_alert_pcts) if team else None
        # The account is judged by the rule the detector used: its team's own where the registry sets one.
        account_rule = (overrides or {}).get(acct["account_id"], rule)
        reasons = explain_reasons(acct, alerted, budget, account_rule)
        if not reasons and not everyone:
            continue
        svc = services.get(key, [])
        packs[key] = _account_pack(acct, p, team, svc, an, drivers.get(key, []), budget, projected, reasons,
                                   account_rule)
        packs[key]["savings_findings"] = savings.get(key, [])
        # What to do, computed: Gemini may reword these, never drop them (``recommendations``).
        packs[key]["recommendations"] = compute_recommendations(packs[key], account_rule.min_usd)
    return packs


def finding_evidence(r: Mapping) -> dict:
    """One savings finding as the packs carry it (and as the grounding check reads it)."""
    return {"what": KIND_LABELS.get(r["kind"], r["kind"]), "service": r["service"], "resource_id": r["resource_id"],
            "name": r["name"], "region": r["region"], "size": r["size"], "suggested": r["suggested"],
            "evidence": r["evidence"], "action": r["action"], "estimated_monthly_usd": _r2(r["monthly_savings_usd"]),
            # The evidence's percentages (CPU, utilisation) as figures a reply may quote as percentages.
            "evidence_pct": [float(x) for x in re.findall(r"(\d+(?:\.\d+)?)%", r["evidence"] or "")]}


def savings_by_account(findings: pl.DataFrame | None) -> dict[tuple[str, str], list[dict]]:
    """(month, account_id) -> the account's largest findings with an estimate, largest first."""
    if findings is None or not findings.height:
        return {}
    rows = findings.filter((pl.col("record") == "finding") & pl.col("monthly_savings_usd").is_not_null()).sort(
        # rank (the stage's own order within the account) breaks ties in dollars, so a pack never changes between runs
        ["month", "account_id", "monthly_savings_usd", "rank"], descending=[False, False, True, False])
    out: dict[tuple[str, str], list[dict]] = {}
    for r in rows.iter_rows(named=True):
        found = out.setdefault((r["month"], r["account_id"]), [])
        if len(found) < SAVINGS_IN_PACK:
            found.append(finding_evidence(r))
    return out


def organisation_savings(month: str, findings: pl.DataFrame | None, teams: Sequence[Team]) -> dict | None:
    """The organisation's savings for its pack: the total, how many accounts, the largest findings."""
    if findings is None or not findings.height:
        return None
    rows = findings.filter(pl.col("month") == month)
    found = rows.filter((pl.col("record") == "finding") & pl.col("monthly_savings_usd").is_not_null())
    status = rows.filter(pl.col("record") == "account")
    names = {t.aws_account_id: t.team_name for t in teams}
    top = found.sort(["monthly_savings_usd", "account_id", "rank"], descending=[True, False, False]).head(SAVINGS_IN_ORG_PACK)
    return {
        "total_addressable_monthly_usd": _r2(found["monthly_savings_usd"].sum() if found.height else 0.0),
        "findings": found.height,
        "accounts_with_findings": found["account_id"].n_unique() if found.height else 0,
        "accounts_not_scanned": status.filter(pl.col("scan_status") != "ok").height,
        "top_findings": [{"account_id": r["account_id"], "team_name": names.get(r["account_id"]),
                          **finding_evidence(r)} for r in top.iter_rows(named=True)],
    }


def _account_pack(acct, p: Period, team, svc: Sequence[dict], an: Sequence[dict], drivers, budget, projected, reasons,
                  rule) -> dict:
    """The pack of one account, from its ``mom_changes`` service rows ``svc`` and its service anomalies ``an``."""
    prev_total = acct["previous_month_total_usd"]
    remaining = p.days_in_month - p.days_covered
    scale = p.days_in_month / p.days_covered if p.days_covered else None
    candidates = []
    rises = sorted((s for s in svc if s["change_usd"] is not None and s["change_usd"] > 0),
                   key=lambda s: s["change_usd"], reverse=True)
    for s in rises[:5]:
        # A saving worth naming: a rise past the $ floor that is a real change for that service, not noise.
        material = s["change_pct"] is None or s["change_pct"] >= rule.threshold_pct / 2
        if scale and s["change_usd"] >= rule.min_usd and material:
            candidates.append({
                "service": s["service"],
                "estimated_monthly_usd": _r2(s["change_usd"] * scale),
            })
    return {
        "account": {"account_id": acct["account_id"], "team_name": team.team_name if team else None},
        "why_this_account": reasons,
        "period": {
            "month": acct["month"],
            "month_label": p.label,
            "through_date": p.through.isoformat(),
            "days_covered": p.days_covered,
            "days_in_month": p.days_in_month,
            "month_complete": p.complete,
            "compared_with": f"the same {p.days_covered} days of {_label(shift_month(acct['month'], -1))}",
            "next_month_label": _label(shift_month(acct["month"], 1)),
        },
        "totals": {
            "month_to_date_usd": _r2(acct["current_mtd_usd"]),
            "previous_same_period_usd": _r2(acct["previous_same_period_usd"]),
            "change_usd": _r2(acct["change_usd"]),
            "change_pct": _r1(acct["change_pct"]),
            "previous_month_total_usd": _r2(prev_total),
        },
        "drivers": [
            {"service": d["service"], "change_usd": _r2(d["change_usd"]), "change_pct": _r1(d["change_pct"]),
             "share_of_change_pct": _r1(d["share_of_change_pct"])}
            for d in drivers
        ],
        "projection": None if projected is None else {
            "projected_month_end_usd": _r2(projected),
            "method": f"month to date plus a forecast of the {remaining} remaining days from the daily history "
                      "(weekday pattern, trend, median level; the run rate of the last "
                      f"{RUN_RATE_DAYS} days where there is too little history)",
            "run_rate_days": RUN_RATE_DAYS,
            "remaining_days": remaining,
            "change_vs_previous_month_total_usd": _r2(projected - prev_total) if prev_total else None,
            "change_vs_previous_month_total_pct": _r1((projected - prev_total) / prev_total * 100)
            if prev_total else None,
            "month_end_range_80pct_usd": _range(acct.get("month_end_low_usd"), acct.get("month_end_high_usd")),
        },
        # Next month, from the SQL forecast with its 80% range (absent with too little history).
        "next_month_forecast": None if acct.get("next_month_usd") is None else {
            "month": _label(shift_month(acct["month"], 1)),
            "forecast_usd": _r2(acct["next_month_usd"]),
            "range_80pct_usd": _range(acct.get("next_month_low_usd"), acct.get("next_month_high_usd")),
        },
        "anomalies": [
            {"service": r["service"], "kind": r["kind"], "severity": r["severity"], "alerted": r["alerted"],
             "current_usd": _r2(r["current_usd"]), "previous_usd": _r2(r["previous_usd"]),
             "change_usd": _r2(r["change_usd"]), "change_pct": _r1(r["change_pct"]),
             "top_line": _top_line(r.get("drivers"))}
            for r in an
        ],
        "budget": None if budget is None else {
            "monthly_budget_usd": _r2(budget["monthly_budget"]), "month_to_date_pct": _r1(budget["mtd_pct"]),
            "projected_pct": _r1(budget["projected_pct"]), "status": budget["status"],
        },
        "savings_candidates": candidates,
        "new_services": sorted(s["service"] for s in svc if s["is_new"]),
        "alert_rule": {"threshold_pct": rule.threshold_pct, "min_usd": rule.min_usd},
    }

def _top_line(drivers: Sequence[dict] | None) -> dict | None:
    """The (usage type, region) line that moved most within an anomaly's service, where the source gave one,
    with its usage / rate / mix split when the source gave quantities."""
    for d in drivers or []:
        if d.get("usage_type") or d.get("region"):
            return {"usage_type": d.get("usage_type"), "region": d.get("region"), "change_usd": _r2(d["change_usd"]),
                    "usage_usd": _r2(d.get("usage_usd")), "rate_usd": _r2(d.get("rate_usd")),
                    "mix_usd": _r2(d.get("mix_usd"))}
    return None


def _range(low: float | None, high: float | None) -> list[float] | None:
    return None if low is None or high is None else [_r2(low), _r2(high)]



def organisation_pack(month: str, p: Period, mom: pl.DataFrame, teams: Sequence[Team],
                      account_results: Mapping[str, dict], alerts: int, findings: pl.DataFrame | None = None,
                      top_recommendations: Sequence[dict] = ()) -> dict:
    """The organisation's evidence: totals, the accounts explained (their change, top driver and the
    grounded recommendations with their $), the organisation's largest recommendations of any account
    (``top_recommendations``: account_id, action, $ a month), no other account's detail."""
    acct = mom.filter((pl.col("level") == "account") & (pl.col("month") == month) & pl.col("has_data"))
    comparable = acct.filter(pl.col("change_usd").is_not_null())
    prev = comparable["previous_same_period_usd"].sum() if comparable.height else 0.0
    change = comparable["change_usd"].sum() if comparable.height else 0.0
    names = {t.aws_account_id: t.team_name for t in teams}
    accounts = []
    for account_id, r in sorted(account_results.items(), key=lambda kv: -abs(kv[1]["change_usd"] or 0)):
        accounts.append({
            "account_id": account_id, "team_name": names.get(account_id),
            "change_usd": _r2(r["change_usd"]), "change_pct": _r1(r["change_pct"]),
            "top_driver": r["top_driver"], "why": r["reasons"],
            "recommendations": r["recommendations"],
        })
    return {
        "period": {"month": month, "month_label": p.label, "through_date": p.through.isoformat(),
                   "days_covered": p.days_covered, "days_in_month": p.days_in_month},
        "totals": {
            "accounts": acct.height,
            "month_to_date_usd": _r2(acct["current_mtd_usd"].sum() if acct.height else 0.0),
            "previous_same_period_usd": _r2(prev), "change_usd": _r2(change),
            "change_pct": _r1(change / prev * 100) if prev else None,
            "projected_month_end_usd": None if p.complete else _r2(acct["projected_month_end_usd"].sum()),
            "alerts": alerts, "accounts_explained": len(accounts),
        },
        "accounts_explained": accounts[:40],
        "top_recommendations": [dict(r) for r in top_recommendations],
        "savings": organisation_savings(month, findings, teams),
    }


def pack_json(pack: dict) -> str:
    """The pack as canonical JSON: the same figures always give the same text (and cache key)."""
    return json.dumps(pack, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def cache_key(pack: dict, model: str, instructions: str) -> str:
    """The hash that identifies one call: the pack, the model and the prompt (and its version)."""
    text = "\n".join([PROMPT_VERSION, model, instructions, pack_json(pack)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
