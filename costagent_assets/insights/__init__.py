"""AI-written insights that cannot invent a figure.

Gemini writes prose; the numbers come from the analysis. For each account with something to explain an
**evidence pack** (that account's totals, drivers, projection, anomalies, budget, savings candidates) is
built from the frames and sent as JSON data, separate from the instructions. Every number, account id
and AWS service name in the reply must be found in that pack (within rounding), or that section of the
reply is dropped and the deterministic text from ``analysis.explain_changes`` is used instead.

- ``prompts``: the instructions, the reply schemas, the prompt version and the limits.
- ``evidence``: the evidence packs (per account and for the organisation) and their cache keys.
- ``grounding``: the check that a reply cites only what its pack holds.
- ``merge``: replies merged with the deterministic text, section by section.
- ``stage``: the whole AI stage of a run (cache hits, calls, their cost), ``run_ai_insights``.
- ``history``: the stage's warehouse tables, ``ai_usage`` and ``ai_insight_history`` (also the cache).

Pure functions apart from ``history``: no Dagster, no clients. ``run_ai_insights`` takes the Gemini call
as a function.
"""
