"""Reading team files: CSV and JSON, every problem named with its line and field."""

from __future__ import annotations

import json

import pytest

from costagent_assets.teams.importing import parse_teams_file, parse_teams_text
from costagent_assets.teams.model import (
    Team,
    TeamValidationError,
)
from costagent_tests.teams.samples import (
    HEADER,
    PAYMENTS,
    RULE_HEADER,
    SEARCH,
    only_problem,
    problems_of,
)


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


@pytest.mark.parametrize(
    ("threshold", "floor", "field", "expected"),
    [("0", "", "anomaly_threshold_pct", "out of range"), ("lots", "", "anomaly_threshold_pct", "not a percentage"),
     ("", "-3", "anomaly_min_usd", "negative")],
)
def test_bad_anomaly_rule_overrides_are_named(threshold, floor, field, expected):
    line, where, reason = only_problem(RULE_HEADER + f"A,012345678901,a@example.com,{threshold},{floor}\n")
    assert (line, where) == (2, field) and expected in reason



# ---------------------------------------------------------------- bounds (issue 19, case 7)


def _rows(n: int) -> str:
    return "team_name,aws_account_id,team_email\n" + "".join(
        f"Team {i},{i:012d},t{i}@example.com\n" for i in range(1, n + 1))


def test_a_file_over_the_size_cap_is_refused_before_it_is_read(tmp_path):
    from costagent_assets.teams.importing import MAX_TEAMS_FILE_BYTES

    big = tmp_path / "teams.csv"
    with big.open("wb") as out:  # sparse: the cap is checked on the size, not on the content
        out.truncate(MAX_TEAMS_FILE_BYTES + 1)
    with pytest.raises(TeamValidationError, match=r"may be at most 10 MB"):
        parse_teams_file(big)


def test_more_teams_than_the_cap_are_refused_and_the_cap_itself_is_fine(tmp_path):
    from costagent_assets.teams.importing import MAX_TEAMS

    with pytest.raises(TeamValidationError, match="more than 10,000 teams"):
        parse_teams_text(_rows(MAX_TEAMS + 1), "csv")
    records = json.dumps([{"team_name": f"T{i}", "aws_account_id": f"{i:012d}", "team_email": f"t{i}@example.com"}
                          for i in range(1, MAX_TEAMS + 2)], indent=1)
    with pytest.raises(TeamValidationError, match="more than 10,000 teams"):
        parse_teams_text(records, "json")
    assert len(parse_teams_text(_rows(MAX_TEAMS), "csv")) == MAX_TEAMS


def test_the_cli_refuses_an_oversized_file_and_writes_nothing(isolated, tmp_path, capsys):
    from costagent_assets.cli import main as cli
    from costagent_assets.teams.importing import MAX_TEAMS

    good = tmp_path / "good.csv"
    good.write_text(_rows(2))
    assert cli.main(["teams", "import", str(good)]) == 0
    registry = isolated / "teams.json"
    before = registry.read_bytes()
    big = tmp_path / "big.csv"
    big.write_text(_rows(MAX_TEAMS + 5))
    capsys.readouterr()
    assert cli.main(["teams", "import", str(big)]) == 2
    err = capsys.readouterr().err
    assert "more than 10,000 teams" in err and "Traceback" not in err
    assert registry.read_bytes() == before


def test_ids_that_differ_only_in_case_are_one_account(isolated, tmp_path, capsys):
    from costagent_assets.cli import main as cli

    with pytest.raises(TeamValidationError, match="duplicate of line 2"):
        parse_teams_text("team_name,aws_account_id,team_email\nA,my-project-1,a@example.com\n"
                         "B,MY-PROJECT-1,b@example.com\n", "csv")
    assert cli.main(["teams", "add", "--account", "my-project-1", "--name", "A", "--email", "a@example.com"]) == 0
    before = (isolated / "teams.json").read_bytes()
    capsys.readouterr()
    assert cli.main(["teams", "add", "--account", "MY-PROJECT-1", "--name", "B", "--email", "b@example.com"]) == 2
    assert "differ only in case" in capsys.readouterr().err
    assert (isolated / "teams.json").read_bytes() == before
