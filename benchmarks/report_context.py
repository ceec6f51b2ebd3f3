"""Benchmark: the emails stage's per-team work (building each team's context, rendering it) at one size.

    python benchmarks/report_context.py --accounts 1000 [--ai-accounts 4] [--out DIR] [--repeat 3]

The month's analysis tables come from the no-account-dimension pipeline of ``weekly_job.lower_bound_work``
(no Dagster), computed once and cached in ``--cache``. Then, ``--repeat`` times, every team's context is built and
rendered, and the admin report's, timed with a CPU clock (``time.process_time``: other processes' load on a
shared machine barely moves it); the best of the repeats is printed as ms of CPU per team. ``--out`` writes every
rendered email (subject, HTML, text) and the admin report with a fixed "Generated" stamp, to compare two versions
of the code byte for byte (``diff -r``).
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

GENERATED_AT = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def month_tables(accounts: int, ai_accounts: int, as_of: str) -> dict:
    """The report month's arguments to ``report_frames`` (and the teams), as the lower bound computes them."""
    from weekly_job import lower_bound_work

    import costagent_assets.demo.ai_accounts as ai
    import costagent_assets.report_context as rc
    import costagent_assets.reporting as reporting

    captured, real_frames, real_ai, real_render = {}, rc.report_frames, ai.demo_ai_teams, reporting.render_team_report

    def capture(month, p, tables, **kw):
        captured.update(month=month, period=p, tables=tables, daily=kw["daily"],
                        dashboard_url_template=kw["dashboard_url_template"],
                        budget_alert_pcts=kw["budget_alert_pcts"])
        return real_frames(month, p, tables, **kw)

    rc.report_frames, ai.demo_ai_teams = capture, (lambda _n: real_ai(ai_accounts))
    reporting.render_team_report = lambda ctx: None
    try:
        lower_bound_work(accounts, as_of)
    finally:
        rc.report_frames, ai.demo_ai_teams, reporting.render_team_report = real_frames, real_ai, real_render
    from costagent_assets.demo import organisation as demo
    from costagent_assets.settings import Settings
    from costagent_assets.teams.model import Team
    captured["teams"] = [Team.from_dict(t) for t in demo.demo_teams(accounts, seed=Settings().demo_seed)
                         + real_ai(ai_accounts)]
    return captured


def run(m: dict, out: Path | None) -> tuple[float, float, float, int]:
    """Build and render every team's email and the admin report once: CPU seconds of frames, contexts, renders."""
    from costagent_assets.ai_spend import organisation_ai_spend
    from costagent_assets.report_context import delivery_summary, report_frames
    from costagent_assets.reporting import admin_csv, render_admin_report, render_team_report

    clock = time.process_time
    teams = m["teams"]
    t0 = clock()
    frames = report_frames(m["month"], m["period"], m["tables"], generated_at=GENERATED_AT,
                           dashboard_url_template=m["dashboard_url_template"],
                           budget_alert_pcts=m["budget_alert_pcts"], daily=m["daily"])
    t_frames, t_ctx, t_render = clock() - t0, 0.0, 0.0
    for team in teams:
        t0 = clock()
        ctx = frames.section(team.aws_account_id, "report", lambda t=team: frames.team_context(t))
        t1 = clock()
        rendered = render_team_report(ctx) if ctx is not None else None
        t_render += clock() - t1
        t_ctx += t1 - t0
        if out is not None and rendered is not None:
            (out / f"team-{team.aws_account_id}.txt").write_text(
                f"{rendered.subject}\n\n{rendered.text}\n\n{rendered.html}")
    t0 = clock()
    ctx = frames.admin_context(teams)
    ctx.update(incomplete_accounts=[], delivery=delivery_summary("outbox", [], teams), ai=None, run_cost=None,
               ai_spend_org=organisation_ai_spend({}, {t.aws_account_id: t.team_name for t in teams}))
    t_admin_ctx = clock() - t0
    rendered = render_admin_report(ctx)
    if out is not None:
        (out / "admin.txt").write_text(f"{rendered.subject}\n\n{rendered.text}\n\n{rendered.html}")
        (out / "admin.csv").write_bytes(admin_csv(ctx))
        (out / "unavailable.txt").write_text(repr(frames.unavailable))
    return t_frames, t_ctx, t_render, t_admin_ctx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--ai-accounts", type=int, default=0)
    parser.add_argument("--as-of", default="2026-11-23")
    parser.add_argument("--cache", type=Path, default=Path("/tmp"))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print a CPU-clock cProfile of one repeat")
    args = parser.parse_args()
    cache = args.cache / f"costagent-report-tables-{args.accounts}-{args.ai_accounts}-{args.as_of}.pickle"
    if cache.exists():
        m = pickle.loads(cache.read_bytes())
    else:
        m = month_tables(args.accounts, args.ai_accounts, args.as_of)
        cache.write_bytes(pickle.dumps(m))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    n = len(m["teams"])
    best = None
    for i in range(args.repeat):
        times = run(m, args.out if i == 0 else None)
        best = times if best is None else tuple(min(a, b) for a, b in zip(best, times, strict=True))
    if args.profile:
        import cProfile
        import pstats
        prof = cProfile.Profile(time.process_time)
        prof.runcall(run, m, None)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(120)
    frames_s, ctx_s, render_s, admin_s = best
    print(f"{n} teams, best of {args.repeat} (CPU): frames {frames_s * 1000:.0f} ms, context "
          f"{ctx_s / n * 1000:.2f} ms/team, render {render_s / n * 1000:.2f} ms/team, admin context "
          f"{admin_s * 1000:.0f} ms")


if __name__ == "__main__":
    main()
