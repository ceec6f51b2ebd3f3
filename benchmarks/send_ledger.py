"""Benchmark: the send ledger's bookkeeping for one run's team emails, alone (no transport cost).

For each size, a fresh ledger receives one run of ``deliver_batch`` over that many team emails, with a session
that accepts every message at once, so what is timed is the ledger: claims made durable before their sends, and
the outcomes after. Prints wall seconds (best of ``--repeat``, fresh ledger each time) and the counts that do not
depend on the machine's load: fsync and syncfs calls (local ledger), and HTTP requests to S3 by operation
(``--storage s3``, against moto's server on loopback).

    python benchmarks/send_ledger.py [--accounts 1000 5000] [--storage local s3] [--repeat 3] [--dir DIR]

``--dir`` puts the local ledgers on another filesystem (default: a temp dir under the system's temp folder).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections import Counter
from email.message import EmailMessage
from pathlib import Path

from costagent_assets import send_ledger
from costagent_assets.delivery import SENT, Outgoing, SendResult, deliver_batch
from costagent_assets.send_ledger import LedgerKey, SendLedger

REPORT_DATE = "2026-11-23"


class _Accepting:
    """A transport that accepts every message at once."""

    def send(self, outgoing: Outgoing) -> SendResult:
        return SendResult(SENT, detail="accepted")


def outgoing(n: int) -> list[Outgoing]:
    """``n`` team emails of one report date, one per account."""
    message = EmailMessage()
    message["Subject"] = "report"
    message.set_content("report")
    return [Outgoing(LedgerKey.of(REPORT_DATE, "team", f"{100000000000 + i}", "2026-11", f"team{i}@example.com"),
                     message, "<p>report</p>", name=f"team-{i}") for i in range(n)]


class _SyncCounter:
    """Counts os.fsync calls and, where the ledger has it, syncfs calls, while installed."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __enter__(self) -> _SyncCounter:
        self._fsync = os.fsync

        def fsync(fd: int) -> None:
            self.counts["fsync"] += 1
            self._fsync(fd)

        os.fsync = fsync
        self._syncfs = getattr(send_ledger, "_SYNCFS", None)
        if self._syncfs is not None:
            def syncfs(fd: int) -> int:
                self.counts["syncfs"] += 1
                return self._syncfs(fd)

            send_ledger._SYNCFS = syncfs
        return self

    def __exit__(self, *exc: object) -> None:
        os.fsync = self._fsync
        if self._syncfs is not None:
            send_ledger._SYNCFS = self._syncfs


def run_local(n: int, repeat: int, parent: Path | None) -> tuple[float, Counter[str]]:
    """Best wall seconds of ``repeat`` runs of ``n`` sends on a fresh local ledger, and one run's sync calls."""
    best, counts = float("inf"), Counter()
    for _ in range(repeat):
        folder = Path(tempfile.mkdtemp(prefix="ledger-bench-", dir=parent))
        try:
            items = outgoing(n)
            with _SyncCounter() as counter:
                start = time.perf_counter()
                results = deliver_batch(_Accepting(), items, SendLedger(folder / "email_ledger"), "bench")
                best = min(best, time.perf_counter() - start)
            assert [r.status for r in results] == [SENT] * n
            counts = counter.counts
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return best, counts


def run_s3(n: int, repeat: int) -> tuple[float, Counter[str]]:
    """Best wall seconds of ``repeat`` runs of ``n`` sends on a fresh S3 ledger (moto's server in this process,
    so the seconds are moto's as much as ours; the request counts are what S3 would see), and one run's requests."""
    import logging

    from costagent_assets.resources.s3_ledger import S3SendLedger
    from costagent_assets.resources.s3_warehouse import open_store
    from costagent_tests.peers.moto_server import MotoPeer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    server = MotoPeer()
    server.start()
    best, counts = float("inf"), Counter()
    try:
        for r in range(repeat):
            store = open_store(f"s3://ledger-bench-{n}-{r}/prod", server.url, "us-east-1")
            store.client.create_bucket(Bucket=store.bucket)
            ledger = S3SendLedger(store)
            requests: Counter[str] = Counter()

            def count(request, requests=requests, **_) -> None:
                requests[request.method] += 1

            ledger.client.meta.events.register("before-send.s3.*", count)
            items = outgoing(n)
            start = time.perf_counter()
            results = deliver_batch(_Accepting(), items, ledger, "bench")
            best = min(best, time.perf_counter() - start)
            assert [x.status for x in results] == [SENT] * n
            counts = requests
    finally:
        server.stop()
    return best, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--storage", nargs="+", choices=["local", "s3"], default=["local"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    for storage in args.storage:
        for n in args.accounts:
            seconds, counts = run_local(n, args.repeat, args.dir) if storage == "local" else run_s3(n, args.repeat)
            what = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no syncs"
            print(f"{storage:>5} {n:>6} sends: {seconds:7.2f} s best of {args.repeat}  "
                  f"({seconds / n * 1000:.2f} ms each; {what})", flush=True)


if __name__ == "__main__":
    main()
