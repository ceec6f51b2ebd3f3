"""The demo organisation's savings scanner: its planted resources instead of calls to AWS."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

from costagent_assets.demo import inventory as planted
from costagent_assets.optimization import STATUS_SCHEMA, frame
from costagent_assets.resources.aws_scanner import OptimizationScanner, ScanResult


class DemoScanner(OptimizationScanner):
    """The demo organisation's resources: deterministic planted idle and oversized resources per account
    (``costagent_assets.demo.inventory``), no credentials, no network."""

    seed: int = 42

    @property
    def name(self) -> str:
        return "demo"

    def scan(self, account_ids: Sequence[str], end: datetime, lookback_days: int, label: str) -> ScanResult:
        """The planted inventory and commitments of ``account_ids``; each account ``ok`` with 0 API calls."""
        started = time.perf_counter()
        inventory = planted.demo_inventory(account_ids, self.seed, end, lookback_days)
        commitments = planted.demo_commitments(account_ids, self.seed, lookback_days)
        counts = dict(inventory.group_by("account_id").len().iter_rows()) if inventory.height else {}
        status = frame(({"account_id": a, "status": "ok", "api_calls": 0, "retries": 0,
                         "regions": planted.home_region(self.seed, a), "resources": counts.get(a, 0),
                         "seconds": 0.0} for a in account_ids), STATUS_SCHEMA)
        return ScanResult(inventory, commitments, status, seconds=time.perf_counter() - started)
