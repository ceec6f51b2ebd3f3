"""The email that tells the admins a run failed: which job, which months, the error, and the run's link."""

from __future__ import annotations

import html
from collections.abc import Sequence

from costagent_assets.reporting import RenderedEmail


def run_failure_email(job_name: str, run_id: str, what: str, errors: Sequence[str], run_url: str) -> RenderedEmail:
    """Subject and bodies of the failure notice of one run (``what``: its months and trigger)."""
    subject = f"costagent: the {job_name} run {run_id[:8]} failed ({what})"
    details = list(errors) or ["(no error message was recorded)"]
    text = "\n".join([
        f"The {job_name} run {run_id} failed ({what}).", "", *[f"- {e}" for e in details], "",
        f"Run: {run_url}",
        "Nothing of that run was emailed to teams. Fix the cause, then rerun it: `costagent run` (the weekly job) "
        "or `costagent backfill` (history), or re-execute the run from the link.",
    ])
    body = "".join(f"<li><pre>{html.escape(e)}</pre></li>" for e in details)
    page = (f"<html><body><p>The <b>{html.escape(job_name)}</b> run <code>{html.escape(run_id)}</code> failed "
            f"({html.escape(what)}).</p><ul>{body}</ul><p><a href=\"{html.escape(run_url)}\">Open the run</a></p>"
            "<p>Nothing of that run was emailed to teams. Fix the cause, then rerun it: <code>costagent run</code> "
            "or <code>costagent backfill</code>, or re-execute the run from the link.</p></body></html>")
    return RenderedEmail(subject, page, text)
