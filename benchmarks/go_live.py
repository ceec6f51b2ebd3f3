"""The go-live sequence an operator follows, against an SMTP server on loopback (aiosmtpd with STARTTLS):
`costagent demo` (outbox mode), `config set email_mode smtp`, `run` for the same week, `run` again.

Prints, per step, the exit code, the seconds, what the server received (emails, distinct recipients,
duplicates) and the run's own `emails:` line, so the figures in a note come from one command:

    python benchmarks/go_live.py [--accounts 84] [--as-of 2026-11-23] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from costagent_tests.smtp_peer import SmtpPeer, make_certs  # noqa: E402


def cli(home: Path, env: dict, *args: str) -> tuple[int, float, str]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "costagent_assets.cli.main", "--home", str(home), *args],
                          env=env, capture_output=True, text=True)
    return proc.returncode, time.perf_counter() - started, proc.stdout + proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=84)
    parser.add_argument("--as-of", default="2026-11-23")
    parser.add_argument("--keep", action="store_true", help="keep the home directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="costagent-go-live-"))
    home = work / "home"
    certs = make_certs(work / "certs")
    env = {**os.environ, "PYTHONPATH": str(REPO), "COSTAGENT_HOME": str(home)}
    env.pop("DAGSTER_HOME", None)
    steps = [
        ("demo (outbox)", ["demo", "--accounts", str(args.accounts), "--history-months", "0", "--as-of", args.as_of]),
        ("config set email_mode smtp", ["config", "set", "email_mode", "smtp"]),
        ("config set smtp_ca_bundle", ["config", "set", "smtp_ca_bundle", str(certs.ca)]),
        ("config set smtp_rate_per_minute", ["config", "set", "smtp_rate_per_minute", "6000"]),
        ("run (go-live)", ["run", "--as-of", args.as_of]),
        ("run (again)", ["run", "--as-of", args.as_of]),
    ]
    print(f"{'step':<34} {'exit':>4} {'seconds':>8} {'received':>8} {'distinct To':>11} {'dupes':>5}  run says")
    with SmtpPeer(certs) as peer:
        env.update(peer.env())
        for name, command in steps:
            before = len(peer.recorder.messages)
            code, seconds, output = cli(home, env, *command)
            got = peer.recorder.messages[before:]
            to = Counter(m.message["To"] for m in got)
            says = next((line.strip() for line in output.splitlines() if line.strip().startswith("emails")), "")
            print(f"{name:<34} {code:>4} {seconds:8.1f} {len(got):>8} {len(to):>11} "
                  f"{sum(n - 1 for n in to.values()):>5}  {says}")
            if code not in (0, 3):
                print(output)
                raise SystemExit(f"{name} failed")
        total = Counter(m.message["To"] for m in peer.recorder.messages)
    outbox = len(list((home / "outbox" / args.as_of).glob("*-team-*.eml")))
    print(f"outbox team emails: {outbox}; by SMTP in all: {sum(total.values())} emails to {len(total)} addresses, "
          f"{sum(n - 1 for n in total.values())} duplicates")
    if args.keep:
        print(f"home kept: {home}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
