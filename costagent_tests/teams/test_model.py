"""A team's fields and their checks."""

from __future__ import annotations

import pickle

import pytest

from costagent_assets.teams.model import (
    Problem,
    Team,
    TeamValidationError,
    validate_team_fields,
)
from costagent_tests.teams.samples import (
    PAYMENTS,
)


def test_from_dict_validates_and_errors_pickle():
    assert Team.from_dict(PAYMENTS.to_dict()) == PAYMENTS
    with pytest.raises(TeamValidationError) as caught:
        Team.from_dict({"team_name": "A", "aws_account_id": "012345678901"})
    assert caught.value.problems == [Problem(0, "team_email", "is missing")]
    assert str(caught.value).splitlines()[1] == "  team_email: is missing"
    copy = pickle.loads(pickle.dumps(caught.value))
    assert copy.problems == caught.value.problems and str(copy) == str(caught.value)


def test_validate_team_fields_reports_all_fields_at_once():
    team, problems = validate_team_fields({"aws_account_id": "x", "monthly_budget": "-1"}, line=7)
    assert team is None
    assert [(p.line, p.field) for p in problems] == [
        (7, "team_name"),
        (7, "aws_account_id"),
        (7, "team_email"),
        (7, "monthly_budget"),
    ]
    assert str(problems[0]) == "line 7, team_name: is missing"

