"""Gemini's replies merged with the deterministic text: each grounded section kept, the rest replaced.

Also the deterministic texts themselves (the outlook, the organisation's summary) written from a pack alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from costagent_assets.insights.grounding import PackIndex, ungrounded
from costagent_assets.insights.prompts import MAX_ORG_RECOMMENDATIONS, MAX_RECOMMENDATIONS


def money(x: float) -> str:
    """Dollars as the emails write them: whole dollars from $1,000, cents below."""
    return f"${abs(x):,.0f}" if abs(x) >= 1000 else f"${abs(x):,.2f}"


def deterministic_outlook(pack: dict) -> str:
    """The projection in words, from the pack alone."""
    proj = pack.get("projection")
    if not proj:
        return f"{pack['period']['month_label']} is complete: there is no projection."
    text = f"{pack['period']['month_label']} is forecast to end near {money(proj['projected_month_end_usd'])}"
    if proj["change_vs_previous_month_total_usd"] is not None:
        direction = "above" if proj["change_vs_previous_month_total_usd"] >= 0 else "below"
        text += f", {money(proj['change_vs_previous_month_total_usd'])} {direction} last month's total"
    text += "."
    nxt = pack.get("next_month_forecast")
    if nxt:
        text += f" {nxt['month']} is forecast at {money(nxt['forecast_usd'])}"
        if nxt["range_80pct_usd"]:
            low, high = nxt["range_80pct_usd"]
            text += f" (80% range {money(low)} to {money(high)})"
        text += "."
    return text


def plural(n: int, one: str, many: str | None = None) -> str:
    """"1 account", "2 accounts", "1 alert", "3 alerts"."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


@dataclass
class Merged:
    """An account's insight after the grounding check."""

    source: str  # "gemini" when any AI section was kept
    summary: str
    outlook: str
    recommendations: list[dict]
    rejections: list[str]
    ai_note: str | None


def merge_account_reply(deterministic_summary: str, pack: dict, reply: dict) -> Merged:
    """Keep each section of ``reply`` that is grounded in ``pack``; the deterministic text replaces the rest.

    Sections: the explanation, the outlook, and each recommendation (whose $/month must be a pack figure
    too). A rejected explanation brings back the whole deterministic summary, which carries its own outlook.
    """
    index = PackIndex.of(pack)
    rejections = []
    explanation_problems = ungrounded(reply["explanation"], index)
    outlook_problems = ungrounded(reply["outlook"], index)
    for what, problems in (("explanation", explanation_problems), ("outlook", outlook_problems)):
        if problems:
            rejections.append(f"{what}: {'; '.join(problems[:3])}")
    recs = []
    for i, r in enumerate(reply["recommendations"][:MAX_RECOMMENDATIONS], 1):
        problems = ungrounded(r["action"], index)
        if not index.allows_number(abs(r["estimated_monthly_usd"]), 0.5 + 0.005 * abs(r["estimated_monthly_usd"]), "usd"):
            problems.append(f"estimate {r['estimated_monthly_usd']} is not in the evidence")
        if problems:
            rejections.append(f"recommendation {i}: {'; '.join(problems[:3])}")
        elif r["action"].strip():
            recs.append({"action": r["action"].strip(), "estimated_monthly_usd": round(abs(r["estimated_monthly_usd"]), 2)})
    explained = not explanation_problems and bool(reply["explanation"].strip())
    if explained:
        outlook = reply["outlook"].strip() if not outlook_problems and reply["outlook"].strip() else deterministic_outlook(pack)
        parts = [reply["explanation"].strip(), outlook]
    else:
        outlook, parts = deterministic_outlook(pack), [deterministic_summary]
    # The recommendations are shown in their own section of the email (``recommendations``), not repeated here.
    ai_used = explained or bool(recs)
    note = None
    if rejections:
        note = ("Parts of the AI analysis quoted figures or names that are not in this account's data and "
                "were replaced by the computed explanation.")
    return Merged("gemini" if ai_used else "deterministic", "\n\n".join(parts), outlook, recs, rejections, note)


def unavailable_note(reason: str) -> str:
    """The line the email shows when AI analysis was not available."""
    return f"AI analysis was unavailable this week ({reason}); the summary above is computed from the figures."


def deterministic_org_summary(pack: dict) -> dict:
    """The organisation's summary and top recommendations, from its pack alone."""
    t, p = pack["totals"], pack["period"]
    text = f"{p['month_label']} to date ({p['days_covered']} days): {money(t['month_to_date_usd'])} across {t['accounts']} accounts"
    if t["change_usd"] is not None and t["change_pct"] is not None:
        direction = "up" if t["change_usd"] >= 0 else "down"
        text += f", {direction} {money(t['change_usd'])} ({t['change_pct']:+.1f}%) on the same days of last month"
    text += (f". {plural(t['alerts'], 'alert')}; "
             f"{plural(t['accounts_explained'], 'account')} had a change to explain.")
    if t["projected_month_end_usd"] is not None:
        text += f" The month is projected to end near {money(t['projected_month_end_usd'])}."
    return {"executive_summary": text, "top_recommendations": rank_recommendations(pack["top_recommendations"])}


def rank_recommendations(recs: Sequence[dict]) -> list[dict]:
    """Largest $/month first, at most MAX_ORG_RECOMMENDATIONS."""
    return sorted(recs, key=lambda r: -r["estimated_monthly_usd"])[:MAX_ORG_RECOMMENDATIONS]


def _same(a: dict, b: dict) -> bool:
    """Whether two recommendations are one: the same account and the same whole dollars a month."""
    return a["account_id"] == b["account_id"] and round(a["estimated_monthly_usd"]) == round(b["estimated_monthly_usd"])


def merge_org_reply(pack: dict, reply: dict) -> tuple[dict, list[str]]:
    """The organisation's summary after the grounding check, and the rejections."""
    index = PackIndex.of(pack)
    fallback = deterministic_org_summary(pack)
    rejections = []
    problems = ungrounded(reply["executive_summary"], index)
    summary = reply["executive_summary"].strip()
    if problems or not summary:
        rejections.append(f"executive summary: {'; '.join(problems[:3]) or 'empty'}")
        summary = fallback["executive_summary"]
    recs = []
    for i, r in enumerate(reply["top_recommendations"][:MAX_ORG_RECOMMENDATIONS], 1):
        bad = ungrounded(r["action"], index)
        if r["account_id"] not in index.account_ids:
            bad.append(f"account id {r['account_id']} is not in the evidence")
        if not index.allows_number(abs(r["estimated_monthly_usd"]), 0.5 + 0.005 * abs(r["estimated_monthly_usd"]), "usd"):
            bad.append(f"estimate {r['estimated_monthly_usd']} is not in the evidence")
        if bad:
            rejections.append(f"top recommendation {i}: {'; '.join(bad[:3])}")
        else:
            recs.append({"account_id": r["account_id"], "action": r["action"].strip(),
                         "estimated_monthly_usd": round(abs(r["estimated_monthly_usd"]), 2)})
    # The list is the computed N largest; a grounded AI item only rewords the one it matches, so a reply that
    # skips or reorders some of them cannot drop one from the list.
    top = [next((r for r in recs if _same(r, c)), c) for c in fallback["top_recommendations"]]
    return {"executive_summary": summary, "top_recommendations": top}, rejections
