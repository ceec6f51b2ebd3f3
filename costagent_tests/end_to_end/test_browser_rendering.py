"""The demo's emails in a real browser (Debian's chromium, headless), at a phone's 390 px and a desktop's
1000 px: no horizontal overflow, and the headline, the budget banner and the alerts on the first screen.

Screenshots (the first screen and the whole email at each width) are kept under ``test-artifacts/rendering``
(or ``$COSTAGENT_TEST_ARTIFACTS``) for a person to look at; CI keeps them as artifacts.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from costagent_tests.end_to_end.test_reports import MONTH, email_alerts, message
from costagent_tests.peers.homes import DEMO_AS_OF

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("COSTAGENT_TEST_ARTIFACTS", REPO / "test-artifacts")) / "rendering"
SCREENS = {390: 844, 1000: 800}  # width -> the height of a first screen (a phone; a laptop's mail pane)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")

# Runs in the page once it is laid out: page width against the viewport, and where the markers sit.
MEASURE = """<script>
(function () {
  function top(el) { return el ? Math.round(el.getBoundingClientRect().top + window.scrollY) : null; }
  function heading(text) {
    return Array.from(document.querySelectorAll('h1,h2')).find(function (h) { return h.textContent.trim() === text; });
  }
  var banner = Array.from(document.querySelectorAll('strong')).find(function (s) {
    return /^(Over budget|Projected over)/.test(s.textContent.trim()); });
  var alerts = heading('Alerts');
  var firstAlert = alerts ? alerts.nextElementSibling : null;
  var wide = Array.from(document.querySelectorAll('body *')).filter(function (el) {
    return el.getBoundingClientRect().right > document.documentElement.clientWidth + 1; }).length;
  document.body.setAttribute('data-measure', JSON.stringify({
    scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth,
    height: document.documentElement.scrollHeight, overflowing: wide,
    h1: top(document.querySelector('h1')), banner: top(banner), alerts: top(alerts),
    alertsEnd: firstAlert ? Math.round(firstAlert.getBoundingClientRect().bottom + window.scrollY) : null}));
})();
</script>"""


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    """Headless chromium that reaches nothing: no sync, no component updates, its own throwaway profile."""
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--mute-audio", f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120, check=True,
    )


def measure(page: Path, width: int, profile: Path) -> dict:
    measured = page.with_suffix(f".measure{width}.html")
    measured.write_text(page.read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    dom = chromium(f"--window-size={width},{SCREENS[width]}", "--dump-dom", measured.as_uri(), profile=profile).stdout
    found = re.search(r'data-measure="([^"]*)"', dom)
    assert found, dom[-2000:]
    return json.loads(html.unescape(found.group(1)))


def render(name: str, page: Path, profile: Path) -> dict[int, dict]:
    """Measure ``page`` at each width and keep its screenshots: the first screen and the whole email."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    out = {}
    for width, screen in SCREENS.items():
        m = measure(page, width, profile)
        for suffix, height in (("first-screen", screen), ("full", min(m["height"], 12_000))):
            shot = ARTIFACTS / f"{name}-{width}-{suffix}.png"
            chromium(f"--window-size={width},{height}", f"--screenshot={shot}", page.as_uri(), profile=profile)
            assert shot.stat().st_size > 5_000
        out[width] = m
    return out


@pytest.fixture(scope="module")
def pages(demo_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The four emails to look at: one over budget, one with alerts and no budget news, a quiet one, the admin
    report; copied, since the measuring page is written beside each."""
    outbox = demo_home / "outbox" / DEMO_AS_OF.isoformat()
    chosen: dict[str, str] = {}
    for path in sorted(outbox.glob(f"{MONTH}-team-*.eml")):
        account = path.stem.removeprefix(f"{MONTH}-team-")
        msg = message(demo_home, f"team-{account}")
        n = len(email_alerts(msg))
        if "Over budget," in msg["Subject"]:
            chosen.setdefault("over-budget", account)
        elif "budget" not in msg["Subject"].lower() and n >= 2:
            chosen.setdefault("alerts", account)
        elif n == 0 and "budget" not in msg["Subject"].lower():
            chosen.setdefault("quiet", account)
    assert set(chosen) == {"over-budget", "alerts", "quiet"}, chosen
    folder = tmp_path_factory.mktemp("pages")
    sources = {name: outbox / f"{MONTH}-team-{account}.html" for name, account in chosen.items()}
    sources["admin"] = outbox / f"{MONTH}-admin.html"
    found = {}
    for name, source in sources.items():
        found[name] = folder / f"{name}.html"
        found[name].write_bytes(source.read_bytes())
    return found


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chromium-profile")


@pytest.mark.parametrize("name", ["over-budget", "alerts", "quiet", "admin"])
def test_an_email_fits_the_width_and_puts_what_matters_on_the_first_screen(pages, profile, name):
    for width, m in render(name, pages[name], profile).items():
        screen = SCREENS[width]
        assert m["scrollWidth"] <= m["clientWidth"] + 1 and m["overflowing"] == 0, (width, m)
        assert m["h1"] is not None and m["h1"] < screen / 4, (width, m)
        if name == "over-budget":
            assert m["banner"] is not None and m["banner"] < screen / 2, (width, m)
        if name in ("over-budget", "alerts"):
            # The Alerts heading and its first rows are on the first screen.
            assert m["alerts"] is not None and m["alerts"] < screen * 0.8, (width, m)
        if name == "admin":
            assert m["alerts"] is not None and m["alerts"] < screen, (width, m)

