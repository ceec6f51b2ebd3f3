"""The AI stage's own warehouse tables: what each call cost, and every week's insights (also the cache).

They sit beside the asset partitions in the same layout (``<warehouse>/<table>/<month>/<name>.parquet``)
and get DuckDB views like every table (``ai_usage``, ``ai_insight_history``, and the derived
``ai_run_costs`` and ``ai_org_summaries``):

- ``ai_usage/<month>/<run_id>.parquet``: one file per run, never rewritten, so every run's cost stays.
- ``ai_insight_history/<month>/<report date>.parquet``: one file per report date; a rerun on the same date
  replaces it (same week, same insights), while each week adds its own file. Rows with a reply are the
  cache: a later run whose evidence pack hashes the same reuses the reply instead of paying again.

Both are log tables, written through ``warehouse.log_tables.append_log``; this module builds their rows.

The organisation's executive summary is the ``account_id = 'organisation'`` row of the history: it has no
account partition of its own in the asset graph.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import polars as pl

from costagent_assets.insights.prompts import ORGANISATION
from costagent_assets.insights.stage import CallRecord
from costagent_assets.schemas import conform, empty
from costagent_assets.warehouse.log_tables import append_log
from costagent_assets.warehouse.store import Store, read_table

USAGE, HISTORY = "ai_usage", "ai_insight_history"


def cached_replies(root: Path | Store, months: Sequence[str]) -> dict[str, str]:
    """Stored replies of ``months`` by cache key (pack hash)."""
    history = read_table(root, HISTORY, list(months)) if months else read_table(root, HISTORY, [])
    rows = history.filter(pl.col("reply_json").is_not_null()).select("pack_hash", "reply_json")
    return dict(rows.iter_rows())


def write_usage(root: Path | Store, run_id: str, report_date: date, model: str, calls: Sequence[CallRecord]) -> pl.DataFrame:
    """Store this run's calls (one file per month touched); returns them as a frame."""
    frame = conform(
        pl.DataFrame(
            [
                {"month": c.month, "account_id": c.account_id, "run_id": run_id, "report_date": report_date,
                 "scope": c.scope, "model": model, "status": c.status, "failure": c.failure,
                 "input_tokens": c.input_tokens, "output_tokens": c.output_tokens, "cost_usd": c.cost_usd,
                 "seconds": c.seconds, "rejections": len(c.rejections), "pack_hash": c.pack_hash}
                for c in calls
            ],
            infer_schema_length=None,
        ),
        USAGE,
    ) if calls else empty(USAGE)
    append_log(root, USAGE, frame)  # ai_usage/<month>/<run_id>.parquet
    return frame


def write_history(
    root: Path | Store,
    run_id: str,
    report_date: date,
    model: str,
    insights: pl.DataFrame,
    organisation: dict[str, dict],
    calls: Sequence[CallRecord],
) -> None:
    """Store this week's insights (every account row, and the organisation's summary) per month."""
    by_key = {(c.month, c.account_id): c for c in calls}
    rows = []
    for r in insights.iter_rows(named=True):
        call = by_key.get((r["month"], r["account_id"]))
        rows.append(_history_row(r["month"], r["account_id"], "account", r["source"], r["summary"], r.get("outlook"),
                                 r.get("recommendations") or [], r["ai_note"], call, model, report_date, run_id))
    for month, org in organisation.items():
        call = by_key.get((month, ORGANISATION))
        rows.append(_history_row(month, ORGANISATION, "organisation", org["source"], org["executive_summary"], None,
                                 org["top_recommendations"], org.get("ai_note"), call, model, report_date, run_id))
    if not rows:
        return
    frame = conform(pl.DataFrame(rows, infer_schema_length=None), HISTORY)
    append_log(root, HISTORY, frame)  # ai_insight_history/<month>/<report date>.parquet


def _history_row(month, account_id, scope, source, summary, outlook, recs, note, call, model, report_date, run_id) -> dict:
    return {
        "month": month, "account_id": account_id, "report_date": report_date, "run_id": run_id, "scope": scope,
        "source": source, "summary": summary, "outlook": outlook,
        "recommendations_json": json.dumps(list(recs), ensure_ascii=False), "ai_note": note,
        "rejections_json": json.dumps(call.rejections if call else [], ensure_ascii=False),
        "model": model if source == "gemini" else None,
        "pack_hash": call.pack_hash if call else None,
        "evidence_json": call.evidence_json if call else None,
        "reply_json": call.reply_json if call else None,
    }


def admin_ai_context(root: Path | Store, month: str, run_id: str | None = None) -> dict | None:
    """For the admin report: the organisation's latest summary for ``month`` and the AI cost of the run
    that wrote it (or of ``run_id``). None when the month has no AI stage output."""
    history = read_table(root, HISTORY, [month]).filter(pl.col("scope") == "organisation")
    if run_id is not None:
        history = history.filter(pl.col("run_id") == run_id)
    if not history.height:
        return None
    org = history.sort("report_date").row(-1, named=True)
    usage = read_table(root, USAGE, [month]).filter(pl.col("run_id") == org["run_id"])
    billed = usage.filter(pl.col("status").is_in(["called", "failed"]))
    unpriced = billed.filter(pl.col("cost_usd").is_null()).height
    return {
        "source": org["source"],
        "executive_summary": org["summary"],
        "top_recommendations": json.loads(org["recommendations_json"] or "[]"),
        "ai_note": org["ai_note"],
        "model": org["model"],
        "calls": billed.height,
        "cache_hits": usage.filter(pl.col("status") == "cached").height,
        "input_tokens": int(usage["input_tokens"].sum() or 0),
        "output_tokens": int(usage["output_tokens"].sum() or 0),
        # Unknown (a model without a price) stays unknown, never $0.
        "cost_usd": None if unpriced else float(usage["cost_usd"].sum() or 0.0),
    }
