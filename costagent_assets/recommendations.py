"""What a team can do about its bill, computed from what the run already knows; no AI needed.

Each recommendation is an action and an estimate in USD a month, from one account's evidence pack
(``insights.evidence``): the scanner's savings findings (their own estimate), the services that drove
a rise (the rise brought to a full month, i.e. what reversing it saves, naming the usage type and region
behind it where the source gives them), new services (their month-to-date brought to a full month) and
a budget projected to be exceeded (the projected excess). Ranked by dollars, largest first.

Gemini, when it is on, may reword them; these computed items are always kept (``merge_recommendations``),
so advice never depends on an AI key or a scanner role.
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_RECOMMENDATIONS = 5
OTHER_PREFIX = "Other "  # the drivers' "Other services (n)" line: not one thing a team can act on


def _money(x: float) -> str:
    return f"${abs(x):,.0f}" if abs(x) >= 1000 else f"${abs(x):,.2f}"


def _line(top: dict | None) -> str:
    """" (usage type in region)" for the line behind a service's change, where the source gave it."""
    if not top:
        return ""
    # "global" is where a global service (and every AI provider's row) is billed: no place to name.
    region = top.get("region") if top.get("region") != "global" else None
    where = [p for p in (top.get("usage_type"), region) if p]
    return f" ({' in '.join(where)})" if where else ""


def compute_recommendations(pack: dict, min_usd: float = 0.0) -> list[dict]:
    """The account's recommendations from its evidence pack, largest $/month first (at most
    ``MAX_RECOMMENDATIONS``): {"action", "estimated_monthly_usd"}.

    The largest rising driver is always named when the account's total rose, so every rise comes with
    something to do; further drivers only past ``min_usd`` (the alert rule's $ floor).
    """
    period = pack["period"]
    scale = period["days_in_month"] / period["days_covered"] if period["days_covered"] else None
    out: list[dict] = []
    for f in pack.get("savings_findings") or []:
        if f.get("estimated_monthly_usd"):
            why = f". Why: {f['evidence'].rstrip('.')}" if f.get("evidence") else ""
            out.append({"action": f"{f['action'].rstrip('.')}{why}", "estimated_monthly_usd": f["estimated_monthly_usd"]})
    lines = {a["service"]: a.get("top_line") for a in pack.get("anomalies") or [] if a.get("service")}
    new = set(pack.get("new_services") or []) | {a["service"] for a in pack.get("anomalies") or []
                                                  if a.get("kind") == "new_service"}
    total = pack["totals"].get("change_usd") or 0.0
    rising = [d for d in pack.get("drivers") or []
              if (d.get("change_usd") or 0) > 0 and not d["service"].startswith(OTHER_PREFIX)]
    if scale:
        for i, d in enumerate(rising):
            if i and d["change_usd"] < min_usd:
                continue
            if i == 0 and total <= 0 and d["change_usd"] < min_usd:
                continue  # the account did not rise: a small rise offset elsewhere is not worth a line
            monthly = round(d["change_usd"] * scale, 2)
            if d["service"] in new:
                action = (f"Confirm that the new service {d['service']}{_line(lines.get(d['service']))} is intended: "
                          f"{_money(d['change_usd'])} so far this month, about {_money(monthly)} a month at this pace")
            else:
                action = (f"Review the rise in {d['service']}{_line(lines.get(d['service']))}: "
                          f"+{_money(d['change_usd'])} against the same days of last month; reversing it saves about "
                          f"{_money(monthly)} a month")
            out.append({"action": action, "estimated_monthly_usd": monthly})
    budget, proj = pack.get("budget"), pack.get("projection")
    if budget and proj and proj.get("projected_month_end_usd") is not None:
        excess = round(proj["projected_month_end_usd"] - budget["monthly_budget_usd"], 2)
        if excess > 0:
            out.append({"estimated_monthly_usd": excess,
                        "action": f"Bring the month back within the {_money(budget['monthly_budget_usd'])} budget: "
                                  f"it is projected to end near {_money(proj['projected_month_end_usd'])}, "
                                  f"{_money(excess)} over"})
    return rank(out)


def rank(recs: Sequence[dict]) -> list[dict]:
    """Largest $/month first, at most ``MAX_RECOMMENDATIONS``."""
    return sorted(recs, key=lambda r: -(r["estimated_monthly_usd"] or 0.0))[:MAX_RECOMMENDATIONS]


def merge_recommendations(computed: Sequence[dict], ai: Sequence[dict]) -> list[dict]:
    """Gemini's grounded rewordings first-class, the computed items kept: an AI item replaces the computed
    one with the same $/month (its rewording); every other computed item stays."""
    ai_amounts = {round(r["estimated_monthly_usd"], 0) for r in ai}
    kept = [r for r in computed if round(r["estimated_monthly_usd"], 0) not in ai_amounts]
    return rank([*ai, *kept])
