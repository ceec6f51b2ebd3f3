"""Sample teams and team-file helpers shared by the teams tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import strategies as st

from costagent_assets.teams.importing import parse_teams_text
from costagent_assets.teams.model import (
    Team,
    TeamValidationError,
)

HEADER = "team_name,aws_account_id,team_email,cc_emails,monthly_budget\n"

PAYMENTS = Team("Payments", "012345678901", "payments@example.com", ("cfo@example.com",), 1200.5)

SEARCH = Team("Search", "111122223333", "search@example.com")


def problems_of(text: str, fmt: str = "csv") -> list[tuple[int, str, str]]:
    with pytest.raises(TeamValidationError) as caught:
        parse_teams_text(text, fmt)
    return [(p.line, p.field, p.reason) for p in caught.value.problems]


def only_problem(text: str, fmt: str = "csv") -> tuple[int, str, str]:
    found = problems_of(text, fmt)
    assert len(found) == 1, found
    return found[0]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path

_names = (
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=120)
    .map(str.strip)
    .filter(bool)
)

_alnum = "abcdefghijklmnopqrstuvwxyz0123456789"

_atoms = st.text(_alnum + "_+-", min_size=1, max_size=8)

_labels = st.text(_alnum, min_size=1, max_size=8)

_emails = st.builds(
    lambda local, labels, tld: f"{'.'.join(local)}@{'.'.join(labels)}.{tld}",
    st.lists(_atoms, min_size=1, max_size=3),
    st.lists(_labels, min_size=1, max_size=3),
    st.text("abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=6),
)

_teams = st.builds(
    Team,
    team_name=_names,
    aws_account_id=st.integers(0, 10**12 - 1).map("{:012d}".format),
    team_email=_emails,
    cc_emails=st.lists(_emails, max_size=3).map(tuple),
    monthly_budget=st.none() | st.floats(min_value=0, max_value=1e13, allow_nan=False),
)

RULE_HEADER = "team_name,aws_account_id,team_email,anomaly_threshold_pct,anomaly_min_usd\n"

