"""Screenshots of a team email and the admin email at desktop (1200 px) and phone (390 px) widths.

Not a test (CI has no browser): a script to look at the emails as people will. It sets up the demo
organisation with a year of history in a throwaway home (or reuses ``--home``), runs the weekly job
into the outbox, and has headless Chromium photograph the written ``.html`` files:

    python reports/screenshots.py --out /tmp/costagent-shots [--home DIR] [--chromium chromium]

Needs Chromium (Debian: ``apt-get install chromium``). Prints the PNG paths.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AS_OF = "2026-11-23"
WIDTHS = {"desktop": 1200, "phone": 390}
# Tall enough for the whole team email; the admin email's long account table is cut at the bottom.
HEIGHTS = {"team": 2900, "admin": 3400}
DASHBOARD = "https://app.datadoghq.com/dashboard/abc-123?tpl_var_account={account_id}"


def costagent(home: Path, *args: str) -> None:
    cmd = [sys.executable, "-m", "costagent_assets.cli", "--home", str(home), *args]
    subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)


def prepare(home: Path) -> Path:
    """A demo home with twelve months of history and this week's emails in the outbox; the outbox folder."""
    outbox = home / "outbox" / AS_OF
    if not any(outbox.glob("*-admin.html")):
        costagent(home, "config", "set", "datadog_dashboard_url", DASHBOARD)
        costagent(home, "demo", "--as-of", AS_OF)
        costagent(home, "backfill", "--from", "2025-12", "--to", "2026-09")
        # The outbox went through the send ledger on the first run; write this week's again with the
        # full trend (a fresh report date would too).
        shutil.rmtree(home / "warehouse" / "email_ledger" / AS_OF)
        costagent(home, "run", "--as-of", AS_OF)
    return outbox


def screenshot(chromium: str, page: Path, png: Path, width: int, height: int) -> None:
    with tempfile.TemporaryDirectory(prefix="costagent-chromium-") as profile:
        subprocess.run(
            [
                chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={png}",
                f"--window-size={width},{height}", page.resolve().as_uri(),
            ],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNG files")
    parser.add_argument("--home", type=Path, help="a costagent home to reuse (default: a new temporary one)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args(argv)
    home = args.home or Path(tempfile.mkdtemp(prefix="costagent-shots-")) / "home"
    outbox = prepare(home)
    # The longest team email has the most to show: alerts, many services.
    team = max(outbox.glob("*-team-*.html"), key=lambda p: p.stat().st_size)
    pages = {"team": team, "admin": sorted(outbox.glob("*-admin.html"))[-1]}
    args.out.mkdir(parents=True, exist_ok=True)
    for kind, page in pages.items():
        for device, width in WIDTHS.items():
            png = args.out / f"{kind}-{device}.png"
            screenshot(args.chromium, page, png, width, HEIGHTS[kind])
            print(png)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
