"""Tests for the teams registry: parsing, validation messages, registry writes and imports."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costagent_assets.teams.importing import parse_teams_file, parse_teams_text
from costagent_assets.teams.model import (
    Problem,
    Team,
    TeamValidationError,
    UnknownTeamError,
    validate_team_fields,
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
from costagent_assets.validation import email_problem, parse_usd_amount

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


# --------------------------------------------------------------------------- e-mail syntax


@pytest.mark.parametrize(
    "address",
    ["a@example.com", "first.last+tag@sub.example.co.uk", "o'brien@example.org", "x@xn--bcher-kva.example"],
)
def test_email_problem_accepts_practical_addresses(address):
    assert email_problem(address) is None


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("", "empty"),
        ("a@example.com\r\nBcc: evil@example.net", "line break"),
        ("a@example.com\n", "line break"),
        ("a\t@example.com", "control character"),
        ("a b@example.com", "space"),
        ("example.com", "no @"),
        ("a@b@example.com", "more than one @"),
        ("@example.com", "nothing before the @"),
        ("a..b@example.com", "two dots in a row"),
        ("a@example..com", "two dots in a row"),
        (".a@example.com", "dot before the @"),
        ("a@", "no domain"),
        ("a@localhost", "no dot"),
        ("a@-bad-.com", "not a valid host name"),
        ("a@example.c0m", "top-level domain"),
        ("a<b>@example.com", "not allowed before the @"),
        ("a@example.com,b@example.com", "separator"),
        ("jos\u00e9@example.com", "non-ASCII"),
        ("a" * 250 + "@example.com", "at most 254"),
        ("a" * 65 + "@example.com", "more than 64"),
    ],
)
def test_email_problem_explains_each_rejection(address, expected):
    reason = email_problem(address)
    assert reason is not None and expected in reason


# --------------------------------------------------------------------------- CSV


def test_good_csv_with_excel_quirks():
    text = (
        "\ufeff Team_Name ,AWS_ACCOUNT_ID,team_email,cc_emails,monthly_budget\r\n"
        '"Payments, EU",012345678901,payments@example.com,"cfo@example.com; ops@example.com;","$1,200.50"\r\n'
        "Search, 111122223333 ,search@example.com,,\r\n"
        "\r\n"
        ",,,,\r\n"
    )
    assert parse_teams_text(text, "csv") == [
        Team(
            "Payments, EU",
            "012345678901",
            "payments@example.com",
            ("cfo@example.com", "ops@example.com"),
            1200.5,
        ),
        Team("Search", "111122223333", "search@example.com", (), None),
    ]


def test_csv_optional_columns_may_be_absent_and_semicolon_files_are_read():
    assert parse_teams_text(
        "team_name,aws_account_id,team_email\nSearch,111122223333,search@example.com\n", "csv"
    ) == [SEARCH]
    assert parse_teams_text(
        "team_name;aws_account_id;team_email\nSearch;111122223333;search@example.com\n", "csv"
    ) == [SEARCH]


def test_eleven_digit_id_suggests_the_zero_padded_id():
    line, field, reason = only_problem(HEADER + "Payments,12345678901,p@example.com,,\n")
    assert (line, field) == (2, "aws_account_id")
    assert "leading zero" in reason and "'012345678901'" in reason


def test_scientific_notation_id_blames_the_spreadsheet():
    line, field, reason = only_problem(HEADER + "Payments,1.23457E+11,p@example.com,,\n")
    assert (line, field) == (2, "aws_account_id")
    assert "spreadsheet turned the id into a number" in reason


@pytest.mark.parametrize("bad_id", ["1234567890123", "12345678901a", "1234-5678-9012", "123456789012.0"])
def test_other_malformed_ids(bad_id):
    line, field, reason = only_problem(HEADER + f"Payments,{bad_id},p@example.com,,\n")
    assert (line, field) == (2, "aws_account_id")
    assert bad_id in reason


def test_bad_email_and_cr_lf_in_email():
    found = problems_of(
        HEADER + 'A,012345678901,not-an-email,,\nB,111122223333,"b@example.com\r\nBcc: x@evil.test",,\n'
    )
    assert found[0][:2] == (2, "team_email") and "no @" in found[0][2]
    assert found[1][:2] == (3, "team_email") and "line break" in found[1][2]


def test_bad_cc_address_is_named():
    line, field, reason = only_problem(HEADER + "A,012345678901,a@example.com,ok@example.com;broken,\n")
    assert (line, field) == (2, "cc_emails")
    assert "'broken' has no @" in reason


def test_team_email_with_two_addresses_points_at_cc_emails():
    line, field, reason = only_problem(HEADER + 'A,012345678901,"a@example.com;b@example.com",,\n')
    assert (line, field) == (2, "team_email") and "cc_emails" in reason


def test_duplicate_account_names_the_first_line():
    text = (
        HEADER
        + "A,012345678901,a@example.com,,\nB,111122223333,b@example.com,,\nC, 012345678901,c@example.com,,\n"
    )
    assert only_problem(text) == (4, "aws_account_id", "duplicate of line 2")


def test_missing_column():
    found = problems_of("team_name,aws_account_id\nA,012345678901\n")
    # Reported once on the header, not again as "is missing" on every row.
    assert found == [(1, "header", "missing column team_email")]
    with pytest.raises(TeamValidationError) as caught:
        parse_teams_text("team_name,aws_account_id\nA,012345678901\n", "csv")
    assert "line 1, header: missing column team_email" in str(caught.value)


@pytest.mark.parametrize("text", ["", "\ufeff", "\n\n  \r\n"])
def test_empty_file(text):
    assert only_problem(text) == (1, "file", "the file is empty")
    assert only_problem(text, "json") == (1, "file", "the file is empty")


def test_only_empty_cells():
    assert only_problem(",,,\n,,\n") == (1, "file", "the file has only empty cells, not even a header")


def test_header_only():
    line, field, reason = only_problem(HEADER + "\n\n")
    assert (line, field) == (1, "file") and "no teams" in reason


def test_unknown_column_is_named_with_the_allowed_ones():
    found = problems_of("team_name,aws_account_id,team_emial\nA,012345678901,a@example.com\n")
    assert found[0][:2] == (1, "header")
    assert "'team_emial'" in found[0][2] and "did you mean 'team_email'" in found[0][2]
    assert "team_name, aws_account_id, team_email, cc_emails, monthly_budget" in found[0][2]
    assert found[1] == (1, "header", "missing column team_email")


def test_duplicate_header_column():
    found = problems_of(
        "team_name,aws_account_id,team_email,TEAM_EMAIL\nA,012345678901,a@example.com,b@example.com\n"
    )
    assert found == [(1, "header", "column team_email appears twice")]


def test_value_under_no_header_is_reported():
    # An unquoted comma shifts the row: the id lands in team_email and one value has no column.
    found = problems_of("team_name,aws_account_id,team_email\nA, B,012345678901,a@example.com\n")
    assert (
        2,
        "file",
        "value 'a@example.com' is in column 4, which has no header (an unquoted comma?)",
    ) in found


def test_unnamed_empty_columns_are_tolerated():
    text = "team_name,aws_account_id,team_email,,\nSearch,111122223333,search@example.com,,\n"
    assert parse_teams_text(text, "csv") == [SEARCH]


@pytest.mark.parametrize(
    ("budget", "expected"),
    [("-5", "negative"), ("lots", "not an amount"), ("1200,50", "not an amount"), ("nan", "not a finite")],
)
def test_bad_budget(budget, expected):
    line, field, reason = only_problem(HEADER + f'A,012345678901,a@example.com,,"{budget}"\n')
    assert (line, field) == (2, "monthly_budget") and expected in reason


@pytest.mark.parametrize(
    ("text", "amount"), [("$1,200.50", 1200.5), ("0", 0.0), ("1e3", 1000.0), (" $ 75 ", 75.0)]
)
def test_parse_usd_amount(text, amount):
    assert parse_usd_amount(text) == amount


def test_team_name_rules():
    long_name = "x" * 121
    found = problems_of(
        HEADER
        + f'"Tab\there",012345678901,a@example.com,,\n   ,111122223333,b@example.com,,\n{long_name},222233334444,c@example.com,,\n'
    )
    assert found[0][:2] == (2, "team_name") and "control character" in found[0][2]
    assert found[1] == (3, "team_name", "is missing")
    assert found[2][:2] == (4, "team_name") and "at most 120" in found[2][2]


def test_multiline_record_reports_the_line_where_it_starts():
    text = (
        HEADER
        + 'A,012345678901,a@example.com,,\n"Two\nLines",111122223333,b@example.com,,\nC,bad,c@example.com,,\n'
    )
    found = problems_of(text)
    assert [(p[0], p[1]) for p in found] == [(3, "team_name"), (5, "aws_account_id")]


def test_unclosed_quote_is_reported_where_it_opens():
    found = problems_of(HEADER + 'A,012345678901,a@example.com,,\n"B,111122223333,b@example.com,,\n')
    assert found == [(3, "file", "a quoted value starts here and is never closed")]


def test_several_bad_lines_are_reported_together():
    text = (
        HEADER
        + "Good,012345678901,good@example.com,,\n"
        + "Bad id,12345678901,bad-id@example.com,,\n"
        + "Bad mail,111122223333,nope,,\n"
        + "Bad budget,222233334444,b@example.com,,-1\n"
        + "Dup,012345678901,dup@example.com,,\n"
    )
    with pytest.raises(TeamValidationError) as caught:
        parse_teams_text(text, "csv")
    located = [(p.line, p.field) for p in caught.value.problems]
    assert located == [(3, "aws_account_id"), (4, "team_email"), (5, "monthly_budget"), (6, "aws_account_id")]
    message = str(caught.value)
    assert message.splitlines()[0] == "the teams data: 4 problems"
    assert len(message.splitlines()) == 5 and "line 6, aws_account_id: duplicate of line 2" in message


# --------------------------------------------------------------------------- JSON


def test_good_json_wrapped_and_bare():
    entries = [
        PAYMENTS.to_dict(),
        {"team_name": "Search", "aws_account_id": "111122223333", "team_email": "search@example.com"},
    ]
    assert parse_teams_text(json.dumps({"teams": entries}), "json") == [PAYMENTS, SEARCH]
    entries[0]["cc_emails"] = "cfo@example.com;"
    entries[0]["monthly_budget"] = "$1,200.50"
    assert parse_teams_text(json.dumps(entries), "json") == [PAYMENTS, SEARCH]


def test_json_number_id_is_refused_with_the_string_form():
    text = '{"teams": [\n  {"team_name": "A", "aws_account_id": "012345678901", "team_email": "a@example.com"},\n  {"team_name": "B",\n   "aws_account_id": 12345678901, "team_email": "b@example.com"}\n]}'
    line, field, reason = only_problem(text, "json")
    assert (line, field) == (3, "aws_account_id")
    assert "string" in reason and "leading zeros" in reason and '"012345678901"' in reason


def test_json_syntax_error_has_its_line():
    line, field, reason = only_problem('[\n  {"team_name": "A",}\n]', "json")
    assert (line, field) == (2, "file") and reason.startswith("invalid JSON")


def test_json_problems_name_the_line_each_object_starts_on():
    text = (
        "[\n"
        '  {"team_name": "A", "aws_account_id": "012345678901", "team_email": "a@example.com"},\n'
        '  {"team_name": "B",\n   "aws_account_id": "012345678901",\n   "team_emial": "b@example.com"},\n'
        '  "not a team"\n'
        "]\n"
    )
    found = problems_of(text, "json")
    assert (3, "team_emial") in [(p[0], p[1]) for p in found]
    assert (3, "team_email", "is missing") in found
    assert (3, "aws_account_id", "duplicate of line 2") in found
    assert any(p[:2] == (6, "file") and "object" in p[2] for p in found)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[]", "no teams"),
        ('{"teams": []}', "no teams"),
        ('{"team": []}', "top-level key 'team'"),
        ('"x"', "expected a list"),
    ],
)
def test_json_shape_problems(text, expected):
    line, field, reason = only_problem(text, "json")
    assert (line, field) == (1, "file") and expected in reason


# --------------------------------------------------------------------------- files


def test_parse_teams_file_picks_the_format(tmp_path):
    csv_path = tmp_path / "teams.CSV"
    csv_path.write_bytes(b"\xef\xbb\xbf" + teams_to_csv([SEARCH]).encode())
    json_txt = tmp_path / "teams.txt"
    json_txt.write_text("  " + teams_to_json([SEARCH]))
    csv_txt = tmp_path / "other.txt"
    csv_txt.write_text(teams_to_csv([SEARCH]))
    assert parse_teams_file(csv_path) == parse_teams_file(json_txt) == parse_teams_file(csv_txt) == [SEARCH]


def test_parse_teams_file_refuses_other_types_and_encodings(tmp_path):
    xlsx = tmp_path / "teams.xlsx"
    xlsx.write_bytes(b"PK\x03\x04")
    with pytest.raises(TeamValidationError, match="CSV UTF-8"):
        parse_teams_file(xlsx)
    latin1 = tmp_path / "teams.csv"
    latin1.write_bytes(HEADER.encode() + "Caf\u00e9,012345678901,a@example.com,,\n".encode("latin-1"))
    with pytest.raises(TeamValidationError) as caught:
        parse_teams_file(latin1)
    assert [(p.line, p.field) for p in caught.value.problems] == [(2, "file")]
    assert str(caught.value).startswith(str(latin1))


# --------------------------------------------------------------------------- registry


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


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


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


# --------------------------------------------------------------------------- round-trip property

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


@settings(max_examples=60, deadline=None, database=None)
@given(st.lists(_teams, min_size=1, max_size=6, unique_by=lambda team: team.aws_account_id))
def test_valid_team_lists_round_trip_through_csv_and_json(teams):
    assert parse_teams_text(teams_to_csv(teams), "csv") == teams
    assert parse_teams_text(teams_to_json(teams), "json") == teams
    assert parse_teams_text(json.dumps([team.to_dict() for team in teams]), "json") == teams


# --------------------------------------------------------------------------- per-team anomaly rule (issue 5)

RULE_HEADER = "team_name,aws_account_id,team_email,anomaly_threshold_pct,anomaly_min_usd\n"


def test_a_team_can_override_the_anomaly_threshold_and_floor_in_csv_and_json():
    teams = parse_teams_text(RULE_HEADER + "Search,111122223333,search@example.com,35%,$250\n", "csv")
    assert (teams[0].anomaly_threshold_pct, teams[0].anomaly_min_usd) == (35.0, 250.0)
    # Round trips through the registry's CSV and JSON, and blank means "use the settings".
    assert parse_teams_text(teams_to_csv(teams), "csv") == teams
    assert parse_teams_text(teams_to_json(teams), "json") == teams
    plain = parse_teams_text(RULE_HEADER + "Search,111122223333,search@example.com,,\n", "csv")[0]
    assert plain.anomaly_threshold_pct is None and plain.anomaly_min_usd is None


@pytest.mark.parametrize(
    ("threshold", "floor", "field", "expected"),
    [("0", "", "anomaly_threshold_pct", "out of range"), ("lots", "", "anomaly_threshold_pct", "not a percentage"),
     ("", "-3", "anomaly_min_usd", "negative")],
)
def test_bad_anomaly_rule_overrides_are_named(threshold, floor, field, expected):
    line, where, reason = only_problem(RULE_HEADER + f"A,012345678901,a@example.com,{threshold},{floor}\n")
    assert (line, where) == (2, field) and expected in reason


def test_teams_add_and_update_take_the_rule_overrides(tmp_path: Path):
    from costagent_assets.cli import main as cli

    home = tmp_path / "home"
    assert cli.main(["--home", str(home), "teams", "add", "--account", "111122223333", "--name", "Search",
                     "--email", "search@example.com", "--threshold", "30"]) == 0
    assert cli.main(["--home", str(home), "teams", "update", "111122223333", "--floor", "250"]) == 0
    team = load_registry(home / "teams.json")[0]
    assert (team.anomaly_threshold_pct, team.anomaly_min_usd) == (30.0, 250.0)
    assert cli.main(["--home", str(home), "teams", "update", "111122223333", "--threshold", "0"]) == 2
