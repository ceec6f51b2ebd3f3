"""API calls per account per run, and scan time, of the savings scanner against moto with N accounts.

Starts the AWS organisation peer (moto's server on loopback, with the Cost Explorer commitment operations
it lacks answered by the peer's layer), plants a typical small account N times (per region: three EC2
instances with metrics, two volumes, a snapshot, two Elastic IPs, an RDS instance, a Lambda function;
three S3 buckets), then runs ``AwsScanner.scan`` over the N accounts once and prints:

- the API calls per account (min / mean / max, retries included) and per operation,
- the Cost Explorer calls made once per run (not per account) and their $,
- the scan's wall time, and the findings it gave.

moto is a Python server sharing this process (and its GIL) with the scanner: the time measures the scanner's
own overhead plus moto's, not AWS's latency; the call counts are what AWS would see.

    python benchmarks/optimization_scan.py [--accounts 20] [--regions us-east-1,eu-west-1] [--workers 16]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from datetime import time as clock
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from costagent_assets.optimization import Thresholds, find_opportunities  # noqa: E402
from costagent_assets.resources.aws_scanner import AwsScanner  # noqa: E402
from costagent_tests.peers.aws_org import AwsOrgPeer, plant_typical_account  # noqa: E402

DAYS = 14


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--regions", default="us-east-1,eu-west-1")
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    regions = [r.strip() for r in args.regions.split(",") if r.strip()]
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    peer = AwsOrgPeer()
    peer.start()
    os.environ["AWS_ENDPOINT_URL"] = peer.url
    try:
        end = datetime.combine(datetime.now(UTC).date(), clock(), UTC)
        accounts = [f"{100000000000 + i:012d}" for i in range(args.accounts)]
        started = time.perf_counter()
        for account in accounts:
            plant_typical_account(peer, account, regions, end, DAYS)
        print(f"planted {len(accounts)} accounts x {len(regions)} regions in {time.perf_counter() - started:.1f} s")
        peer.requests.clear()
        scanner = AwsScanner(regions=regions, max_workers=args.workers)
        started = time.perf_counter()
        result = scanner.scan(accounts, end, DAYS, "bench000")
        seconds = time.perf_counter() - started
        findings = find_opportunities(result.inventory, result.commitments, pl.DataFrame(
            schema={"account_id": pl.String, "region": pl.String, "service": pl.String, "usage_type": pl.String,
                    "cost_usd": pl.Float64}), 20, end, Thresholds())
    finally:
        peer.stop()
    calls = result.status["api_calls"]
    statuses = Counter(result.status["status"].to_list())
    print(f"\naccounts {len(accounts)}, regions {','.join(regions)}, workers {args.workers}: {dict(statuses)}")
    print(f"API calls per account per run: min {calls.min()}, mean {calls.mean():.1f}, max {calls.max()} "
          f"(retries {int(result.status['retries'].sum())}); all accounts {int(calls.sum())}")
    print(f"Cost Explorer, once per run: {result.organisation_calls} calls, ${result.organisation_cost_usd:.2f}")
    print(f"requests seen by the peer: {len(peer.requests)}")
    print(f"scan wall time: {seconds:.1f} s ({seconds / len(accounts):.2f} s per account)")
    print(f"findings: {findings.height}, ${findings['monthly_savings_usd'].sum():,.2f}/month")
    print("\ncalls per operation (all accounts):")
    for operation, n in result.calls_by_operation.items():
        print(f"  {operation:48} {n:6}  ({n / len(accounts):.2f} per account)")


if __name__ == "__main__":
    main()
