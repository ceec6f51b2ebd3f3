"""Reading teams from CSV or JSON, with the line each problem is on.

Teams arrive as a CSV (usually exported from a spreadsheet) or a JSON file. A file is checked as a
whole: all its problems are reported together, with the line they are on, so that it can be fixed in
one go and nothing is imported from a file that is only partly good.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from costagent_assets.teams.model import (
    ALL_COLUMNS,
    REQUIRED_COLUMNS,
    Problem,
    Team,
    TeamValidationError,
    check_account_id,
    count_problems,
    same_account_key,
    trim,
    unknown_name_reason,
    validate_team_fields,
)

SUPPORTED_SUFFIXES = (".csv", ".json", ".txt")
# Bounds on a teams file, checked before it is parsed: one team per AWS account, and the pipeline is sized
# and measured up to 10,000 accounts (the demo's maximum too). 10,000 rows of long names and several cc
# addresses stay well under 10 MB; a 200 MB file is a wrong file (it took 10 GB and minutes to refuse).
MAX_TEAMS = 10_000
MAX_TEAMS_FILE_BYTES = 10 * 1024 * 1024
# The original cost agent's seed file named two columns differently: read as ours, with a note (``seed_notes``).
SEED_COLUMNS = {"id": "aws_account_id", "admin_emails": "cc_emails"}


def _seed_name(name: str, present: Iterable[str]) -> str:
    """Our name for a seed-format column, unless the file also has ours (then the seed one stays unknown)."""
    ours = SEED_COLUMNS.get(name)
    return ours if ours and ours not in set(present) else name


def seed_notes(path: Path) -> list[str]:
    """One line per seed-format column the file uses ("column id read as aws_account_id"), for the import's
    output; empty for a file in our own format."""
    try:
        text = _read_text(Path(path))
    except (OSError, TeamValidationError):
        return []
    if text.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return []
        items = data.get("teams", []) if isinstance(data, dict) else data
        names = {k for item in items if isinstance(item, dict) for k in item} if isinstance(items, list) else set()
    else:
        first = next((line for line in text.splitlines() if line.strip(", ;\t")), "")
        delimiter = "," if "," in first else ";" if ";" in first else "\t" if "\t" in first else ","
        names = {trim(c).lower() for c in next(csv.reader([first], delimiter=delimiter), [])}
    return [f"column {seed} read as {ours} (the original cost agent's seed format)"
            for seed, ours in SEED_COLUMNS.items() if seed in names and ours not in names]


def _validate_records(
    records: Iterable[tuple[int, Mapping[str, object]]],
    problems: list[Problem],
    ignore_fields: Iterable[str] = (),
) -> list[Team]:
    """Validate (line, fields) records into teams, appending problems, including duplicate ids."""
    ignored = set(ignore_fields)
    teams: list[Team] = []
    first_line: dict[str, int] = {}
    for line, fields in records:
        team, found = validate_team_fields(fields, line=line)
        problems.extend(problem for problem in found if problem.field not in ignored)
        account_id = team.aws_account_id if team else _valid_account_id_or_none(fields.get("aws_account_id"))
        if account_id is not None:
            key = same_account_key(account_id)
            if key in first_line:
                problems.append(
                    Problem(line, "aws_account_id", f"duplicate of line {first_line[key]}")
                )
            else:
                first_line[key] = line
        if team is not None:
            teams.append(team)
    return teams


def _valid_account_id_or_none(value: object) -> str | None:
    try:
        return check_account_id(value)
    except ValueError:
        return None


def _csv_records(
    text: str, allow_empty: bool
) -> tuple[list[tuple[int, dict[str, str]]], list[Problem], set[str]]:
    """Rows of a CSV as (line where the record starts, {column: value}), header problems, missing columns."""
    first_line = text.split("\n", 1)[0]
    delimiter = ","
    # Excel in locales with a decimal comma saves "CSV" separated by ';' (or tabs for "Unicode text").
    if "," not in first_line:
        delimiter = ";" if ";" in first_line else "\t" if "\t" in first_line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    problems: list[Problem] = []
    records: list[tuple[int, dict[str, str]]] = []
    columns: list[str | None] | None = None
    header_line = 1
    missing: set[str] = set()
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            reason = (
                "a quoted value starts here and is never closed"
                if "end of data" in str(err)
                else f"badly quoted value ({err}); a value containing quotes must be quoted, with the quotes doubled"
            )
            problems.append(Problem(start, "file", reason))
            continue
        if not any(trim(cell) for cell in row):
            continue  # blank lines, and Excel's ",,,," rows
        if columns is None:
            header_line = start
            columns, missing = _read_header(row, start, problems)
            continue
        records.append((start, _row_fields(row, columns, start, problems)))
    if columns is None and not problems:
        problems.append(Problem(1, "file", "the file has only empty cells, not even a header"))
    elif not records and not allow_empty and not problems:
        problems.append(Problem(header_line, "file", "the file has a header but no teams"))
    return records, problems, missing


def _read_header(row: list[str], line: int, problems: list[Problem]) -> tuple[list[str | None], set[str]]:
    """Column names by position: a known name, "" for an unnamed column, None for a rejected one."""
    columns: list[str | None] = []
    header = [trim(cell).lower() for cell in row]
    for cell in row:
        name = _seed_name(trim(cell).lower(), header)
        if not name:
            columns.append("")  # Excel often adds unnamed columns; fine while their cells stay empty
        elif name in columns:
            problems.append(Problem(line, "header", f"column {name} appears twice"))
            columns.append(None)
        elif name not in ALL_COLUMNS:
            problems.append(Problem(line, "header", unknown_name_reason("column", name)))
            columns.append(None)
        else:
            columns.append(name)
    missing = {name for name in REQUIRED_COLUMNS if name not in columns}
    problems.extend(
        Problem(line, "header", f"missing column {name}") for name in REQUIRED_COLUMNS if name in missing
    )
    return columns, missing


def _row_fields(
    row: list[str], columns: list[str | None], line: int, problems: list[Problem]
) -> dict[str, str]:
    padded = columns + [""] * (len(row) - len(columns))  # cells past the header count as unnamed
    stray = next((index for index, cell in enumerate(row) if padded[index] == "" and trim(cell)), None)
    if stray is not None:
        # A rejected column (None) was reported once on the header line; a value under no header at
        # all usually means an unquoted comma shifted the row.
        problems.append(
            Problem(
                line,
                "file",
                f"value {row[stray]!r} is in column {stray + 1}, which has no header (an unquoted comma?)",
            )
        )
    # A short row leaves its last fields out; required ones are then reported as missing.
    return {name: cell for name, cell in zip(columns, row, strict=False) if name}


_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_JSON_DECODER = json.JSONDecoder()


def _json_records(
    text: str, allow_empty: bool
) -> tuple[list[tuple[int, Mapping[str, object]]], list[Problem]]:
    """The team objects of a JSON document with the line each starts on, and structural problems."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        return [], [Problem(err.lineno, "file", f"invalid JSON: {err.msg} (column {err.colno})")]
    start = _JSON_SPACE.match(text).end()
    shape = 'expected a list of teams, or an object {"teams": [...]}'
    if isinstance(data, dict):
        problems = [
            Problem(1, "file", f"unknown top-level key {key!r}; {shape}") for key in data if key != "teams"
        ]
        if "teams" not in data:
            return [], problems or [Problem(1, "file", shape)]
        if problems:
            return [], problems
        items, start = data["teams"], _json_member_position(text, start, "teams")
    else:
        items = data
    line = text.count("\n", 0, start) + 1
    if not isinstance(items, list):
        return [], [Problem(line, "file", shape)]
    if not items:
        return [], [] if allow_empty else [Problem(line, "file", "the file lists no teams")]
    records, problems = [], []
    for item_line, item in zip(_json_element_lines(text, start), items, strict=True):
        if isinstance(item, dict):
            records.append((item_line, {_seed_name(k, item): v for k, v in item.items()}))
        else:
            problems.append(
                Problem(
                    item_line, "file", f'each team must be an object like {{"team_name": ...}}, got {item!r}'
                )
            )
    return records, problems


def _json_member_position(text: str, position: int, key: str) -> int:
    """Where the value of ``key`` starts in the (already validated) object at ``position``."""
    found = position
    position = _JSON_SPACE.match(text, position + 1).end()
    while text[position] != "}":
        name, position = _JSON_DECODER.raw_decode(text, position)
        position = _JSON_SPACE.match(text, position).end() + 1  # past the ':'
        position = _JSON_SPACE.match(text, position).end()
        if name == key:
            found = position  # the last duplicate wins, as in json.loads
        _, position = _JSON_DECODER.raw_decode(text, position)
        position = _JSON_SPACE.match(text, position).end()
        if text[position] == ",":
            position = _JSON_SPACE.match(text, position + 1).end()
    return found


def _json_element_lines(text: str, position: int) -> list[int]:
    """The line each element of the (already validated) array at ``position`` starts on."""
    lines: list[int] = []
    line, counted_to = 1, 0
    position = _JSON_SPACE.match(text, position + 1).end()
    while text[position] != "]":
        # Count newlines incrementally: recounting from the top would be quadratic in file size.
        line += text.count("\n", counted_to, position)
        counted_to = position
        lines.append(line)
        _, position = _JSON_DECODER.raw_decode(text, position)
        position = _JSON_SPACE.match(text, position).end()
        if text[position] == ",":
            position = _JSON_SPACE.match(text, position + 1).end()
    return lines


def _parse_text(text: str, fmt: str, *, allow_empty: bool, source: str) -> list[Team]:
    text = text.removeprefix("\ufeff")  # Excel's UTF-8 byte order mark, if decoded without utf-8-sig
    if fmt not in ("csv", "json"):
        raise ValueError(f"unknown teams format {fmt!r}; use 'csv' or 'json'")
    if not text.strip():
        empty = Problem(1, "file", "the file is empty")
        raise TeamValidationError([empty], count_problems([empty], source))
    # A cheap upper bound first (records may span lines, never the other way round), so that a huge file is
    # refused before it is parsed.
    lines = text.count("\n") + 1
    if lines > MAX_TEAMS + 1 and _count_records(text, fmt) > MAX_TEAMS:
        problem = Problem(1, "file", f"holds more than {MAX_TEAMS:,} teams; at most {MAX_TEAMS:,} are supported")
        raise TeamValidationError([problem], count_problems([problem], source))
    ignore: set[str] = set()
    if fmt == "csv":
        records, problems, ignore = _csv_records(text, allow_empty)
    else:
        records, problems = _json_records(text, allow_empty)
    teams = _validate_records(records, problems, ignore_fields=ignore)
    if problems:
        raise TeamValidationError(problems, count_problems(problems, source))
    return teams


def _count_records(text: str, fmt: str) -> int:
    """How many teams ``text`` holds, without validating them (JSON: elements; CSV: rows after the header)."""
    if fmt == "json":
        try:
            data = json.loads(text)
        except ValueError:
            return 0  # reported as bad JSON by the parser
        data = data.get("teams", []) if isinstance(data, dict) else data
        return len(data) if isinstance(data, list) else 0
    return sum(1 for row in csv.reader(io.StringIO(text, newline="")) if any(c.strip() for c in row)) - 1


def parse_teams_text(text: str, fmt: str) -> list[Team]:
    """Parse teams from CSV or JSON text (``fmt`` "csv" or "json"), in file order.

    Raises TeamValidationError listing every problem with its line; at least one team is required.
    """
    return _parse_text(text, fmt, allow_empty=False, source="the teams data")


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        problem = Problem(
            data.count(b"\n", 0, err.start) + 1,
            "file",
            "is not UTF-8 text; from Excel use Save As > 'CSV UTF-8 (Comma delimited)'",
        )
        raise TeamValidationError([problem], count_problems([problem], str(path))) from None


def parse_registry_file(path: Path) -> list[Team]:
    """The teams of a stored registry (JSON, in file order); unlike an import, no teams is fine."""
    return _parse_text(_read_text(path), "json", allow_empty=True, source=str(path))


def parse_teams_file(path: Path) -> list[Team]:
    """Parse a teams file: ``.csv``, ``.json``, or ``.txt`` (JSON if it starts with '[' or '{').

    Raises TeamValidationError (naming the file) for any problem, OSError if it cannot be read.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        hint = "; from Excel use Save As > 'CSV UTF-8'" if suffix in (".xlsx", ".xls", ".ods") else ""
        problem = Problem(1, "file", f"unsupported file type {suffix or '(none)'!r}: use .csv or .json{hint}")
        raise TeamValidationError([problem], count_problems([problem], str(path)))
    size = path.stat().st_size
    if size > MAX_TEAMS_FILE_BYTES:
        problem = Problem(1, "file", f"is {size / 1024 / 1024:,.1f} MB; a teams file may be at most "
                                     f"{MAX_TEAMS_FILE_BYTES // 1024 // 1024} MB ({MAX_TEAMS:,} teams)")
        raise TeamValidationError([problem], count_problems([problem], str(path)))
    text = _read_text(path)
    fmt = suffix[1:]
    if fmt == "txt":
        fmt = "json" if text.lstrip().startswith(("[", "{")) else "csv"
    return _parse_text(text, fmt, allow_empty=False, source=str(path))

