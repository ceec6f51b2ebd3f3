"""Benchmark: the AI stage of the weekly job against a Gemini-like peer that takes 2 s per call.

Runs `costagent demo` (84 accounts by default) in a fresh COSTAGENT_HOME, in a subprocess, with
GEMINI_API_KEY set and the Gemini base URL pointed at the local peer (costagent_tests/peers). Prints the
ai_insights step's duration (from the Dagster run's step stats), the calls made, the tokens and the AI
cost of the run at the configured prices, then reruns to show the cache: 0 calls.

    python benchmarks/ai_stage.py [--accounts 84] [--delay 2.0] [--as-of 2026-11-23] [--every-account]

Tokens come from the peer (about 4 characters per token of the real prompt and of its reply); a real
model's replies are longer than the peer's, so the cost is also shown with 400 output tokens per call.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from costagent_tests.peers.gemini_server import GeminiPeer  # noqa: E402

TARGET_SECONDS = 15.0


def costagent(home: Path, *args: str) -> str:
    env = {**os.environ, "COSTAGENT_HOME": str(home), "GEMINI_API_KEY": "test-key", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "costagent_assets.cli.main", *args], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr)
        raise SystemExit(f"costagent {' '.join(args)} failed")
    return proc.stdout


def ai_step_seconds(home: Path) -> float:
    """Duration of the ai_insights step of the latest weekly_report run."""
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    import dagster as dg

    instance = dg.DagsterInstance.get()
    [run] = instance.get_runs(dg.RunsFilter(job_name="weekly_report"), limit=1)
    [stats] = [s for s in instance.get_run_step_stats(run.run_id) if s.step_key == "ai_insights"]
    return stats.end_time - stats.start_time


def query(home: Path, sql: str) -> str:
    return costagent(home, "sql", sql).strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=84)
    parser.add_argument("--delay", type=float, default=2.0)
    parser.add_argument("--as-of", default="2026-11-23")
    parser.add_argument("--every-account", action="store_true",
                        help="alert on any change (threshold 0.01%%, floor $0) so every account has something to explain")
    args = parser.parse_args()
    peer = GeminiPeer(delay=args.delay).start()
    home = Path(tempfile.mkdtemp(prefix="costagent-ai-bench-"))
    try:
        costagent(home, "config", "set", "gemini_base_url", peer.url)
        if args.every_account:
            costagent(home, "config", "set", "anomaly_threshold_pct", "0.01")
            costagent(home, "config", "set", "anomaly_min_usd", "0")
        started = time.perf_counter()
        costagent(home, "demo", "--accounts", str(args.accounts), "--as-of", args.as_of)
        wall = time.perf_counter() - started
        step = ai_step_seconds(home)
        calls = len(peer.answered())
        print(f"AI stage, demo organisation of {args.accounts} accounts, peer {args.delay:.1f} s per call, "
              f"{os.cpu_count()} cores")
        print(f"  ai_insights step:   {step:.1f} s (target <= {TARGET_SECONDS:.0f} s; sequential calls: "
              f"~{calls * args.delay:.0f} s)   whole demo {wall:.1f} s")
        print(f"  Gemini calls:       {calls} (accounts to explain + 1 organisation summary)")
        print(query(home, "select calls, cache_hits, rejections, input_tokens, output_tokens, "
                          "round(cost_usd, 4) as cost_usd, round((input_tokens * 0.30 + calls * 400 * 2.50) / 1e6, 4) "
                          "as cost_if_400_tokens_out from ai_run_costs"))
        peer.reset()
        costagent(home, "run", "--as-of", args.as_of)
        print(f"  rerun, same data:   {len(peer.answered())} Gemini calls")
    finally:
        peer.stop()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
