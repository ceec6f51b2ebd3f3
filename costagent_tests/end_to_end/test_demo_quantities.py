"""The demo's anomalies split into usage, rate and mix from its quantities, to the cent."""

from __future__ import annotations

import email
import email.policy
import re
from html import escape as html_escape
from pathlib import Path

from costagent_tests.peers.homes import DEMO_AS_OF, sql


def test_demo_anomalies_split_into_usage_rate_and_mix_to_the_cent(demo_home: Path):
    stored = sql(demo_home, "select count(*) as n, count(usage_quantity) as q from raw_costs "
                            "where month = '2026-11' and provider = 'aws'")[0]
    assert stored["n"] == stored["q"] > 0
    rows = sql(demo_home, "select service, impact_usd, usage_change_usd, rate_change_usd, mix_change_usd, drivers "
                          "from anomalies where month = '2026-11' and level = 'service'")
    split = [r for r in rows if r["usage_change_usd"] is not None]
    assert split and len(split) == len(rows)
    for r in split:
        assert round(r["usage_change_usd"] + r["rate_change_usd"] + r["mix_change_usd"], 2) == round(r["impact_usd"], 2)
        assert all(d["usage_type"] for d in r["drivers"] if not d["service"].startswith("Other"))


# An alert line of a team email's text part, and the "why" under it (reports/templates/_change_split.txt).
ALERT_LINE = re.compile(r"^  \[[A-Z]+\] (?P<service>.+?)(?: \(new service\))?: (?P<change>[+-]\$[\d,.]+) \(")
WHY_LINE = re.compile(r"^     Why(?P<usual>, compared with usual days)?: (?P<parts>.+)$")
DRIVER_LINE = re.compile(r"^       (?P<place>[^:]+(?::[^:]+)?): (?P<parts>.+)$")
PART = re.compile(r"(?P<label>more usage|less usage|higher prices|lower prices|new kinds of usage|usage that stopped) "
                  r"(?P<usd>[+-]\$[\d,.]+)(?: \((?P<place>[^)]+)\))?")


def dollars(printed: str) -> float:
    return float(printed.replace("$", "").replace(",", ""))


def printed_error(printed: str) -> float:
    """The most a printed amount can be off: whole dollars from $1,000 (reporting.format_usd), cents below."""
    return 0.5 if abs(dollars(printed)) >= 1000 else 0.005


def parts_sum(text: str) -> tuple[float, float]:
    """The parts of a printed split, added up, and how far their rounding can take the sum."""
    parts = [m["usd"] for m in PART.finditer(text)]
    assert parts and ", ".join(m.group(0) for m in PART.finditer(text)) == text, text
    return sum(dollars(p) for p in parts), sum(printed_error(p) for p in parts) + 0.01


def test_every_team_email_prints_the_split_beside_the_change_it_explains(demo_home: Path):
    """Each alert (or reported change) with quantities says why in words, and its parts add up to the change
    it explains: the month-to-date change as printed, or a spike's or step's excess over usual days; each
    usage type's parts add up to that line's change. The HTML says the same sentences."""
    impacts = {(r["account_id"], r["service"]): r for r in sql(
        demo_home, "select account_id, service, kind, impact_usd, drivers from anomalies "
                   "where month = '2026-11' and level = 'service' and usage_change_usd is not null")}
    seen = set()
    for path in sorted((demo_home / "outbox" / DEMO_AS_OF.isoformat()).glob("2026-11-team-*.eml")):
        account = path.stem.rsplit("-", 1)[1]
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        lines = text.splitlines()
        for i, line in enumerate(lines):
            why = WHY_LINE.match(line)
            if not why:
                continue
            alert = ALERT_LINE.match(lines[i - 1])
            row = impacts[(account, alert["service"])]
            seen.add((account, alert["service"]))
            total, slack = parts_sum(why["parts"])
            assert abs(total - row["impact_usd"]) <= slack, (account, line, row["impact_usd"])
            assert bool(why["usual"]) == (row["kind"] in ("spike", "step"))
            if not why["usual"]:  # a month-to-date change: the parts add up to the change printed beside it
                assert abs(total - dollars(alert["change"])) <= slack + printed_error(alert["change"])
            by_place = {_place(d): d["change_usd"] for d in row["drivers"] if d["usage_type"]}
            for sub in lines[i + 1:]:
                driver = DRIVER_LINE.match(sub)
                if not driver:
                    break
                sub_total, sub_slack = parts_sum(driver["parts"])
                assert abs(sub_total - by_place[driver["place"]]) <= sub_slack, sub
            if len(row["drivers"]) == 1:  # one usage type: named in the sentence itself
                assert f"({_place(row['drivers'][0])})" in why["parts"]
            assert html_escape(line.strip()) in html
    # Every split the warehouse holds for a team's alerts reached its email.
    assert seen == set(impacts) and len(seen) >= 10


def _place(d: dict) -> str:
    return ", ".join(x for x in (d["usage_type"], d["region"]) if x)
