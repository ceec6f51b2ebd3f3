"""The AI stage of a run: cache hits, one batch of Gemini calls, their cost, and the merged insights.

``run_ai_insights`` takes the Gemini call as a function; what it returns is stored by ``history``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import polars as pl
import pydantic

from costagent_assets.analysis import AnomalyRule
from costagent_assets.budgets import DEFAULT_ALERT_PCTS
from costagent_assets.insights.evidence import cache_key, evidence_packs, organisation_pack, pack_json
from costagent_assets.insights.merge import (
    deterministic_org_summary,
    deterministic_outlook,
    merge_account_reply,
    merge_org_reply,
    rank_recommendations,
    unavailable_note,
)
from costagent_assets.insights.prompts import (
    ACCOUNT_INSTRUCTIONS,
    MAX_RECOMMENDATIONS,
    ORG_INSTRUCTIONS,
    ORGANISATION,
    AccountInsightReply,
    OrgSummaryReply,
)
from costagent_assets.periods import Period
from costagent_assets.recommendations import merge_recommendations
from costagent_assets.schemas import DRIVER, RECOMMENDATION, conform
from costagent_assets.teams.model import Team


def call_cost_usd(model: str, tokens_in: int, tokens_out: int, prices: Mapping[str, tuple[float, float]]) -> float | None:
    """USD of one call from the price table (USD per million tokens in, out); None if the model has no price."""
    price = prices.get(model)
    if price is None:
        return None
    return (tokens_in * price[0] + tokens_out * price[1]) / 1_000_000



@dataclass
class CallRecord:
    """One Gemini call or cache hit, as stored in ``ai_usage`` and the insight history."""

    month: str
    account_id: str
    scope: str  # "account" | "organisation"
    pack_hash: str
    evidence_json: str
    reply_json: str | None
    status: str  # "called" | "cached" | "failed" | "not_called"
    failure: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    seconds: float
    rejections: list[str]


Generate = Callable[[list[tuple[str, str, type[pydantic.BaseModel]]]], list]


@dataclass
class AiOutcome:
    """What the AI stage produced: the insight rows, the organisation summaries and every call."""

    insights: pl.DataFrame
    organisation: dict[str, dict]  # month -> {"executive_summary", "top_recommendations", "source"}
    calls: list[CallRecord]


def _calls_for(
    items: list[tuple[tuple[str, str], dict, str]],
    schema: type[pydantic.BaseModel],
    cached: Mapping[str, str],
    generate: Generate | None,
    model: str,
    prices: Mapping[str, tuple[float, float]],
    instructions: str,
) -> dict[tuple[str, str], tuple[dict | None, CallRecord]]:
    """Cache hits, then one concurrent batch for the rest; returns the parsed reply and the record per key."""
    out: dict[tuple[str, str], tuple[dict | None, CallRecord]] = {}
    to_call = []
    for key, pack, scope in items:
        h = cache_key(pack, model, instructions)
        record = CallRecord(key[0], key[1], scope, h, pack_json(pack), None, "cached", None, 0, 0, 0.0, 0.0, [])
        if h in cached:
            record.reply_json = cached[h]
            out[key] = (json.loads(cached[h]), record)
        else:
            to_call.append((key, record))
    if to_call and generate is not None:
        replies = generate([(instructions, r.evidence_json, schema) for _, r in to_call])
        for (key, record), reply in zip(to_call, replies, strict=True):
            record.status = "called" if reply.called else "not_called"
            record.failure = reply.failure
            record.input_tokens, record.output_tokens = reply.input_tokens, reply.output_tokens
            record.cost_usd = call_cost_usd(model, reply.input_tokens, reply.output_tokens, prices) if reply.called else 0.0
            record.seconds = reply.seconds
            if reply.value is not None:
                record.reply_json = json.dumps(reply.value, ensure_ascii=False)
            elif reply.called:
                record.status = "failed"
            out[key] = (reply.value, record)
    return out


def run_ai_insights(
    deterministic: pl.DataFrame,
    mom: pl.DataFrame,
    anomalies: pl.DataFrame,
    periods: Mapping[str, Period],
    teams: Sequence[Team],
    rule: AnomalyRule,
    *,
    generate: Generate | None,
    unavailable: str | None,
    cached: Mapping[str, str],
    model: str,
    prices: Mapping[str, tuple[float, float]],
    findings: pl.DataFrame | None = None,
    overrides: Mapping[str, AnomalyRule] | None = None,
    budget_alert_pcts: Sequence[float] = DEFAULT_ALERT_PCTS,
    with_organisation: bool = True,
) -> AiOutcome:
    """The AI stage for a run: account calls (only where there is something to explain), then one call per
    month for the organisation; every reply grounded or replaced.

    ``generate`` sends a batch of (instructions, data JSON, schema) and returns GeminiReply-like objects;
    ``unavailable`` (a reason) means AI is not used at all: deterministic insights with a note saying so;
    ``cached`` maps cache keys to stored replies, reused without a call; ``findings``: the
    ``optimization_opportunities`` rows, whose savings go into the packs; ``overrides``: the per-account rules
    of teams with their own threshold or floor (``anomaly_detection.anomaly_rules``); ``budget_alert_pcts``:
    the configured budget levels (``budgets``); ``with_organisation=False``: no organisation summary (a run
    over one account, whose summary of "the organisation" would be that account alone).
    """
    everyone = evidence_packs(mom, anomalies, deterministic, periods, teams, rule, findings, overrides,
                              budget_alert_pcts, everyone=True)
    # Only an account with something to explain is sent to Gemini; every account gets its computed advice.
    packs = {k: p for k, p in everyone.items() if p["why_this_account"]}
    use_ai = unavailable is None and generate is not None
    results = _calls_for(
        [(k, p, "account") for k, p in packs.items()], AccountInsightReply, cached,
        generate if use_ai else None, model, prices, ACCOUNT_INSTRUCTIONS,
    ) if use_ai else {}
    rows, calls = [], []
    org_inputs: dict[str, dict[str, dict]] = {m: {} for m in periods}
    # Every account's recommendations, explained or not: the organisation's top ones are the largest of all.
    org_recs: dict[str, list[dict]] = {m: [] for m in periods}
    for row in deterministic.iter_rows(named=True):
        key = (row["month"], row["account_id"])
        pack = packs.get(key)
        computed = everyone[key]["recommendations"] if key in everyone else []
        row = {**row, "outlook": None, "recommendations": computed, "ai_model": None}
        if pack is not None:
            row["outlook"] = deterministic_outlook(pack)
            reply, record = results.get(key, (None, None))
            if not use_ai:
                row["ai_note"] = unavailable_note(unavailable or "AI is off")
            elif reply is None:
                row["ai_note"] = unavailable_note(f"Gemini did not give a usable answer: {record.failure}")
            else:
                merged = merge_account_reply(row["summary"], pack, reply)
                record.rejections = merged.rejections
                row.update(source=merged.source, summary=merged.summary, outlook=merged.outlook,
                           recommendations=merge_recommendations(computed, merged.recommendations),
                           ai_note=merged.ai_note, ai_model=model)
            if record is not None:
                calls.append(record)
            top = next((d for d in pack["drivers"] if not d["service"].startswith("Other services")), None)
            org_inputs[key[0]][key[1]] = {
                "change_usd": pack["totals"]["change_usd"], "change_pct": pack["totals"]["change_pct"],
                "top_driver": top and top["service"], "reasons": pack["why_this_account"],
                "recommendations": row["recommendations"][:MAX_RECOMMENDATIONS] or [
                    {"action": f["action"], "estimated_monthly_usd": f["estimated_monthly_usd"]}
                    for f in pack["savings_findings"][:1]
                ] or [
                    {"action": f"Review the rise in {c['service']}", "estimated_monthly_usd": c["estimated_monthly_usd"]}
                    for c in pack["savings_candidates"][:1]
                ],
            }
        org_recs.setdefault(key[0], []).extend({"account_id": key[1], **r} for r in row["recommendations"] or [])
        rows.append(row)
    organisation = {}
    org_items = []
    for month, p in periods.items() if with_organisation else ():
        # Every alert (a service's, the whole account's, a budget's): the count the admin report's headline gives.
        alerts = anomalies.filter((pl.col("month") == month) & pl.col("alerted")).height
        pack = organisation_pack(month, p, mom, teams, org_inputs[month], alerts, findings,
                                 rank_recommendations(org_recs[month]))
        organisation[month] = {**deterministic_org_summary(pack), "source": "deterministic", "ai_note": None}
        # No account to explain, nothing for prose to add to the totals: no call.
        if org_inputs[month]:
            org_items.append(((month, ORGANISATION), pack, "organisation"))
        if not use_ai and org_inputs[month]:
            organisation[month]["ai_note"] = unavailable_note(unavailable or "AI is off")
    if use_ai:
        org_results = _calls_for(org_items, OrgSummaryReply, cached, generate, model, prices, ORG_INSTRUCTIONS)
        for (month, _), pack, _scope in org_items:
            reply, record = org_results[(month, ORGANISATION)]
            if reply is None:
                organisation[month]["ai_note"] = unavailable_note(f"Gemini did not give a usable answer: {record.failure}")
            else:
                merged, record.rejections = merge_org_reply(pack, reply)
                organisation[month] = {**merged, "source": "gemini", "ai_note": None}
            calls.append(record)
    frame = pl.DataFrame(
        rows, schema_overrides={"drivers": pl.List(DRIVER), "recommendations": pl.List(RECOMMENDATION)},
        infer_schema_length=None,
    ) if rows else deterministic
    return AiOutcome(conform(frame, "ai_insights"), organisation, calls)
