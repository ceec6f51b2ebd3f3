"""The registry file and its operations: import (upsert, replace), add, update, remove; a failed import changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costagent_assets.teams.importing import parse_teams_file, parse_teams_text
from costagent_assets.teams.model import (
    Team,
    TeamValidationError,
    UnknownTeamError,
)
from costagent_assets.teams.registry import (
    add_team,
    import_teams,
    load_registry,
    remove_team,
    save_registry,
    teams_to_csv,
    teams_to_json,
    update_team,
)
from costagent_tests.teams.samples import (
    HEADER,
    PAYMENTS,
    RULE_HEADER,
    SEARCH,
    _teams,
    _write,
)


def test_parse_teams_file_picks_the_format(tmp_path):
    csv_path = tmp_path / "teams.CSV"
    csv_path.write_bytes(b"\xef\xbb\xbf" + teams_to_csv([SEARCH]).encode())
    json_txt = tmp_path / "teams.txt"
    json_txt.write_text("  " + teams_to_json([SEARCH]))
    csv_txt = tmp_path / "other.txt"
    csv_txt.write_text(teams_to_csv([SEARCH]))
    assert parse_teams_file(csv_path) == parse_teams_file(json_txt) == parse_teams_file(csv_txt) == [SEARCH]


def test_save_and_load_round_trip_sorted_and_stable(tmp_path):
    path = tmp_path / "home" / "teams.json"
    save_registry(path, [SEARCH, PAYMENTS])
    first = path.read_bytes()
    assert load_registry(path) == [PAYMENTS, SEARCH]
    assert first.endswith(b"}\n") and b'\n  "teams": [\n' in first
    save_registry(path, load_registry(path))
    assert path.read_bytes() == first
    assert [p.name for p in path.parent.iterdir()] == ["teams.json"]  # no temporary file left behind


def test_load_missing_registry_is_empty_and_empty_registry_is_valid(tmp_path):
    path = tmp_path / "teams.json"
    assert load_registry(path) == []
    save_registry(path, [])
    assert load_registry(path) == []


def test_damaged_registry_names_the_file(tmp_path):
    path = tmp_path / "teams.json"
    path.write_text('{"teams": [{"team_name": "A", "aws_account_id": "1", "team_email": "a@example.com"}]}')
    with pytest.raises(TeamValidationError) as caught:
        load_registry(path)
    assert str(caught.value).startswith(str(path))


def test_save_registry_refuses_invalid_or_duplicate_teams(tmp_path):
    path = tmp_path / "teams.json"
    with pytest.raises(TeamValidationError):
        save_registry(path, [Team("A", "123", "a@example.com")])
    with pytest.raises(TeamValidationError, match="already registered"):
        save_registry(path, [SEARCH, SEARCH])
    assert not path.exists()


def test_failed_import_leaves_the_registry_byte_identical(tmp_path):
    registry = tmp_path / "teams.json"
    save_registry(registry, [PAYMENTS])
    before = registry.read_bytes()
    mtime = registry.stat().st_mtime_ns
    bad = _write(
        tmp_path / "new.csv",
        HEADER + "Search,111122223333,search@example.com,,\nBroken,12345678901,x@example.com,,\n",
    )
    for replace in (False, True):
        with pytest.raises(TeamValidationError) as caught:
            import_teams(registry, bad, replace=replace)
        assert "the registry was not changed" in str(caught.value)
        assert registry.read_bytes() == before
        assert registry.stat().st_mtime_ns == mtime  # not even rewritten
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.csv", "teams.json"]


def test_failed_import_does_not_create_a_registry(tmp_path):
    registry = tmp_path / "teams.json"
    bad = _write(
        tmp_path / "new.json",
        '[{"team_name": "A", "aws_account_id": 12345678901, "team_email": "a@example.com"}]',
    )
    with pytest.raises(TeamValidationError):
        import_teams(registry, bad)
    assert not registry.exists()


def test_import_upsert_then_replace(tmp_path):
    registry = tmp_path / "teams.json"
    other = Team("Data", "222233334444", "data@example.com")
    first = import_teams(registry, _write(tmp_path / "a.json", teams_to_json([PAYMENTS, SEARCH])))
    assert (
        first.added == ["012345678901", "111122223333"]
        and first.updated == first.removed == first.unchanged == []
    )

    renamed = Team("Search & Ranking", SEARCH.aws_account_id, SEARCH.team_email)
    upsert = import_teams(registry, _write(tmp_path / "b.csv", teams_to_csv([renamed, other])))
    assert (upsert.added, upsert.updated, upsert.removed, upsert.unchanged) == (
        ["222233334444"],
        ["111122223333"],
        [],
        [],
    )
    assert load_registry(registry) == [PAYMENTS, renamed, other] == upsert.teams

    unchanged_bytes = registry.read_bytes()
    again = import_teams(registry, tmp_path / "b.csv")
    assert again.unchanged == ["111122223333", "222233334444"] and again.added == again.updated == []
    assert registry.read_bytes() == unchanged_bytes

    replaced = import_teams(registry, _write(tmp_path / "c.csv", teams_to_csv([other])), replace=True)
    assert replaced.removed == ["012345678901", "111122223333"] and replaced.unchanged == ["222233334444"]
    assert load_registry(registry) == [other] == replaced.teams


def test_add_update_remove():
    teams = add_team([SEARCH], PAYMENTS)
    assert teams == [PAYMENTS, SEARCH]
    with pytest.raises(TeamValidationError, match="already registered to team 'Payments'"):
        add_team(teams, Team("Other", "012345678901", "o@example.com"))
    with pytest.raises(TeamValidationError, match="team_email: 'nope' has no @"):
        add_team(teams, Team("Other", "999999999999", "nope"))

    teams = update_team(teams, " 012345678901 ", monthly_budget="$900", cc_emails=None)
    assert teams[0] == Team("Payments", "012345678901", "payments@example.com", (), 900.0)
    with pytest.raises(TeamValidationError, match="already registered"):
        update_team(teams, "012345678901", aws_account_id="111122223333")
    with pytest.raises(TeamValidationError, match="team_emial"):
        update_team(teams, "012345678901", team_emial="x@example.com")
    with pytest.raises(UnknownTeamError) as caught:
        update_team(teams, "12345678901")
    assert "no team is registered with account id '12345678901'" in str(caught.value)
    assert "'012345678901'" in str(caught.value)  # the padding hint
    assert isinstance(caught.value, KeyError)

    assert remove_team(teams, "012345678901") == [SEARCH]
    with pytest.raises(UnknownTeamError):
        remove_team(teams, "999999999999")


@settings(max_examples=60, deadline=None, database=None)
@given(st.lists(_teams, min_size=1, max_size=6, unique_by=lambda team: team.aws_account_id))
def test_valid_team_lists_round_trip_through_csv_and_json(teams):
    assert parse_teams_text(teams_to_csv(teams), "csv") == teams
    assert parse_teams_text(teams_to_json(teams), "json") == teams
    assert parse_teams_text(json.dumps([team.to_dict() for team in teams]), "json") == teams


def test_a_team_can_override_the_anomaly_threshold_and_floor_in_csv_and_json():
    teams = parse_teams_text(RULE_HEADER + "Search,111122223333,search@example.com,35%,$250\n", "csv")
    assert (teams[0].anomaly_threshold_pct, teams[0].anomaly_min_usd) == (35.0, 250.0)
    # Round trips through the registry's CSV and JSON, and blank means "use the settings".
    assert parse_teams_text(teams_to_csv(teams), "csv") == teams
    assert parse_teams_text(teams_to_json(teams), "json") == teams
    plain = parse_teams_text(RULE_HEADER + "Search,111122223333,search@example.com,,\n", "csv")[0]
    assert plain.anomaly_threshold_pct is None and plain.anomaly_min_usd is None


def test_teams_add_and_update_take_the_rule_overrides(tmp_path: Path):
    from costagent_assets.cli import main as cli

    home = tmp_path / "home"
    assert cli.main(["--home", str(home), "teams", "add", "--account", "111122223333", "--name", "Search",
                     "--email", "search@example.com", "--threshold", "30"]) == 0
    assert cli.main(["--home", str(home), "teams", "update", "111122223333", "--floor", "250"]) == 0
    team = load_registry(home / "teams.json")[0]
    assert (team.anomaly_threshold_pct, team.anomaly_min_usd) == (30.0, 250.0)
    assert cli.main(["--home", str(home), "teams", "update", "111122223333", "--threshold", "0"]) == 2

