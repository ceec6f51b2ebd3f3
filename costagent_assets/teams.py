"""The teams registry: which team owns which AWS account, and where its cost report goes.

Teams arrive as a CSV (usually exported from a spreadsheet) or a JSON file, and are kept in one JSON
registry under ``COSTAGENT_HOME``. Every way in (CSV, JSON, ``add``, ``update``, the stored registry)
goes through :func:`validate_team_fields`, and a file is checked as a whole: all its problems are
reported together, with the line they are on, and nothing is written unless the whole file is good.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from costagent_assets.fileio import atomic_write_text

REQUIRED_COLUMNS = ("team_name", "aws_account_id", "team_email")
OPTIONAL_COLUMNS = ("cc_emails", "monthly_budget", "anomaly_threshold_pct", "anomaly_min_usd")
ALL_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
MAX_TEAM_NAME_LENGTH = 120
SUPPORTED_SUFFIXES = (".csv", ".json", ".txt")


@dataclass(frozen=True)
class Team:
    """One team, the AWS account it owns, and who receives its report.

    The constructor trusts its caller; :meth:`from_dict` and :func:`validate_team_fields` validate,
    and :func:`add_team`, :func:`update_team` and :func:`save_registry` re-validate what they get.
    """

    team_name: str
    aws_account_id: str
    team_email: str
    cc_emails: tuple[str, ...] = ()
    monthly_budget: float | None = None
    # The team's own anomaly rule; None: the installation's settings apply.
    anomaly_threshold_pct: float | None = None
    anomaly_min_usd: float | None = None

    def to_dict(self) -> dict:
        """The team as a JSON-ready dict, every field present, in column order."""
        return {
            "team_name": self.team_name,
            "aws_account_id": self.aws_account_id,
            "team_email": self.team_email,
            "cc_emails": list(self.cc_emails),
            "monthly_budget": self.monthly_budget,
            "anomaly_threshold_pct": self.anomaly_threshold_pct,
            "anomaly_min_usd": self.anomaly_min_usd,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> Team:
        """Build a team from a dict such as a registry entry; raises TeamValidationError if invalid."""
        return _require_valid(d, "invalid team")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, located well enough for a person to fix it."""

    line: int  # 1-based physical line in the file; 0 when the input was not a file
    field: str  # column name, or "header" / "file"
    reason: str

    def __str__(self) -> str:
        if self.line <= 0:
            return f"{self.field}: {self.reason}"
        return f"line {self.line}, {self.field}: {self.reason}"


class TeamValidationError(ValueError):
    """Teams input was rejected; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: Sequence[Problem], summary: str | None = None) -> None:
        self.problems = list(problems)
        self.summary = summary or _count_problems(self.problems, "the teams data")
        # Both in args so the error survives pickling (Dagster ships errors between processes).
        super().__init__(self.problems, self.summary)

    def __str__(self) -> str:
        return "\n".join([self.summary, *(f"  {problem}" for problem in self.problems)])


class UnknownTeamError(KeyError):
    """No team in the registry has the given account id."""

    def __str__(self) -> str:
        # KeyError's own __str__ shows the repr of its argument, quotes and all.
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_teams` did; the id lists hold account ids, sorted."""

    teams: list[Team]
    added: list[str]
    updated: list[str]
    removed: list[str]
    unchanged: list[str]


# --------------------------------------------------------------------------- field rules

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Whitespace that is not a control character: stripped from the ends of values. Control characters
# (CR, LF, tab) are never stripped, so a stray line break is reported rather than hidden.
_EDGE_SPACE = re.compile(r"^[^\S\x00-\x1f\x7f-\x9f]+|[^\S\x00-\x1f\x7f-\x9f]+\Z")
_LOCAL_PART_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-."
)
_DOMAIN_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_TOP_LEVEL_DOMAIN = re.compile(r"[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59}")

_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_AZURE_SUBSCRIPTION = re.compile(r"(?:/subscriptions/)?([0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12})/?")
_OTHER_ACCOUNT_ID = re.compile(r"[A-Za-z][A-Za-z0-9._-]{5,127}")
_SCIENTIFIC = re.compile(r"[0-9](?:[.,][0-9]+)?[eE][+]?[0-9]+")
_DECIMAL_ZERO = re.compile(r"([0-9]+)[.,]0+")
_DASHED_ID = re.compile(r"[0-9]{4}-[0-9]{4}-[0-9]{4}")
_MONEY = re.compile(
    r"(?P<sign>[-+]?)\s*\$?\s*(?P<sign2>[-+]?)"
    r"(?P<number>[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?|[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
)


def _trim(value: str) -> str:
    return _EDGE_SPACE.sub("", value)


def email_problem(address: str) -> str | None:
    """Why ``address`` is not a usable e-mail address, or None if it is.

    A practical syntax check (no DNS): one ASCII address, no display name, no quoting. Control
    characters are refused above all because a CR/LF in an address is a header injection.
    """
    if not isinstance(address, str):
        return "is not text"
    if not address:
        return "is empty"
    if _CONTROL.search(address):
        return "contains a line break, tab or other control character"
    if any(ch.isspace() for ch in address):
        return "contains a space"
    if len(address) > 254:
        return f"is {len(address)} characters long; at most 254 are allowed"
    if "," in address or ";" in address:
        return "contains a separator (',' or ';'); give one address here"
    non_ascii = next((ch for ch in address if not ch.isascii()), None)
    if non_ascii is not None:
        return f"contains the non-ASCII character {non_ascii!r}; use the plain ASCII (punycode) form"
    if "@" not in address:
        return "has no @"
    if address.count("@") > 1:
        return "has more than one @"
    local, domain = address.split("@")
    if not local:
        return "has nothing before the @"
    if len(local) > 64:
        return "has more than 64 characters before the @"
    if ".." in address:
        return "has two dots in a row"
    if local.startswith(".") or local.endswith("."):
        return "starts or ends with a dot before the @"
    bad = next((ch for ch in local if ch not in _LOCAL_PART_CHARS), None)
    if bad is not None:
        return f"contains {bad!r}, which is not allowed before the @"
    if not domain:
        return "has no domain after the @"
    if "." not in domain:
        return f"domain {domain!r} has no dot (expected something like example.com)"
    if not all(_DOMAIN_LABEL.fullmatch(label) for label in domain.split(".")):
        return f"domain {domain!r} is not a valid host name"
    if not _TOP_LEVEL_DOMAIN.fullmatch(domain.rsplit(".", 1)[1]):
        return f"domain {domain!r} does not end in a top-level domain such as .com"
    return None


def parse_usd_amount(value: object) -> float:
    """A non-negative, finite USD amount from a number or text such as ``"$1,200.50"``.

    Raises ValueError with the reason. Commas are only accepted as thousands separators, so a
    European decimal comma ("1200,50") is refused instead of being read as 120050.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, str):
        text = value.strip()
        match = _MONEY.fullmatch(text)
        if match:
            amount = float(match["number"].replace(",", ""))
            if "-" in match["sign"] + match["sign2"]:
                amount = -amount
        else:
            try:
                amount = float(text)  # plain float syntax such as 1e6
            except ValueError:
                raise ValueError(
                    f"{value!r} is not an amount in USD (write it like 1200 or $1,200.50)"
                ) from None
    else:
        amount = float(value)
    if not math.isfinite(amount):
        raise ValueError(f"{value!r} is not a finite number")
    if amount < 0:
        raise ValueError(f"{value!r} is negative; it must be 0 or more")
    return 0.0 if amount == 0 else amount  # no "-0.0" in the registry


def _check_threshold_pct(value: object) -> float:
    """A team's anomaly threshold: a percentage > 0 and <= 1000 ("25" or "25%")."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a percentage")
    try:
        pct = float(value.strip().removesuffix("%") if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a percentage (write it like 25 or 25%)") from None
    if not (math.isfinite(pct) and 0 < pct <= 1000):
        raise ValueError(f"{value!r} is out of range; a percentage greater than 0 and at most 1000")
    return pct


def _check_team_name(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be text, got {value!r}")
    name = _trim(value)
    if _CONTROL.search(name):
        raise ValueError(f"{name!r} contains a line break, tab or other control character")
    if len(name) > MAX_TEAM_NAME_LENGTH:
        raise ValueError(f"is {len(name)} characters long; at most {MAX_TEAM_NAME_LENGTH} are allowed")
    return name


def _check_account_id(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"must be a string of 12 digits, got {value!r}")
    if isinstance(value, (int, float)):
        hint = f' ("{value:012d}")' if isinstance(value, int) and 0 <= value < 10**12 else ""
        raise ValueError(f"is a JSON number; give it as a string{hint}, because numbers lose leading zeros")
    text = value.strip()
    if _ACCOUNT_ID.fullmatch(text):
        return text
    if _SCIENTIFIC.fullmatch(text):
        raise ValueError(
            f"{text!r} looks like a spreadsheet turned the id into a number (scientific notation), "
            "which loses digits; format the column as Text and enter the 12-digit ids again"
        )
    decimal = _DECIMAL_ZERO.fullmatch(text)
    if decimal:
        digits = decimal[1]
        hint = f"; did you mean '{digits.zfill(12)}'?" if len(digits) <= 12 else ""
        raise ValueError(f"{text!r} looks like a spreadsheet turned the id into a number{hint}")
    if _DASHED_ID.fullmatch(text):
        raise ValueError(f"{text!r} has dashes; write it as 12 digits: '{text.replace('-', '')}'")
    if text.isascii() and text.isdigit():
        if len(text) < 12:
            zeros = "a leading zero" if len(text) == 11 else "leading zeros"
            raise ValueError(
                f"{text!r} has {len(text)} digits but an AWS account id has 12: a spreadsheet probably "
                f"dropped {zeros}; did you mean '{text.zfill(12)}'?"
            )
        raise ValueError(f"{text!r} has {len(text)} digits; an AWS account id has exactly 12")
    other = other_provider_account_id(text)
    if other is not None:
        return other
    raise ValueError(
        f"must be an AWS account id of exactly 12 digits (0-9), or another provider's id (an Azure subscription "
        f"id, a GCP project, an OCI tenancy: 6 to 128 letters, digits, '.', '_', '-', starting with a letter), got {text!r}"
    )


def other_provider_account_id(text: str) -> str | None:
    """The registry form of a non-AWS account id, or None when ``text`` is not one.

    Azure subscriptions (a GUID, or the ``/subscriptions/<guid>`` path FOCUS exports carry) become the
    lower-case GUID; GCP projects, OCI tenancies and AI-provider organisations start with a letter.
    Only letters, digits, '.', '_' and '-' are allowed, so every id is safe as a Dagster partition key and
    as a file name (no '/', no '|', no leading dot, no '...').
    """
    azure = _AZURE_SUBSCRIPTION.fullmatch(text)
    if azure:
        return azure[1].lower()
    if _OTHER_ACCOUNT_ID.fullmatch(text) and "..." not in text:
        return text
    return None


def _check_email(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be text, got {value!r}")
    address = _trim(value)
    reason = email_problem(address)
    if reason:
        raise ValueError(f"{address!r} {reason}")
    return address


def _check_team_email(value: object) -> str:
    if isinstance(value, str) and (";" in value or "," in value):
        raise ValueError(
            f"{_trim(value)!r} holds several addresses; put one here and the others in cc_emails"
        )
    return _check_email(value)


def _check_cc_emails(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        items: Sequence[object] = value.split(";")
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        raise ValueError(f"must be a list of addresses or text separated by ';', got {value!r}")
    addresses, reasons = [], []
    for item in items:
        if isinstance(item, str) and not _trim(item):
            continue  # "a@x.com;" and "a@x.com; ;b@y.com" are fine
        try:
            addresses.append(_check_email(item))
        except ValueError as err:
            comma = isinstance(item, str) and "," in item
            reasons.append(f"{err} (separate several addresses with ';')" if comma else str(err))
    if reasons:
        raise ValueError("; ".join(reasons))
    return tuple(addresses)


_FIELD_CHECKS = {
    "team_name": _check_team_name,
    "aws_account_id": _check_account_id,
    "team_email": _check_team_email,
    "cc_emails": _check_cc_emails,
    "monthly_budget": parse_usd_amount,
    "anomaly_threshold_pct": lambda value: _check_threshold_pct(value),
    "anomaly_min_usd": parse_usd_amount,
}


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not _trim(value))


def _unknown_name_reason(kind: str, name: str) -> str:
    close = difflib.get_close_matches(name, ALL_COLUMNS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {kind} {name!r}{hint}; allowed: {', '.join(ALL_COLUMNS)}"


def validate_team_fields(fields: Mapping[str, object], *, line: int = 0) -> tuple[Team | None, list[Problem]]:
    """Check one team's raw fields; return the normalized Team, or None and every problem found.

    The single validation path for CSV rows, JSON objects, the stored registry and add/update.
    Values may be text (as in a CSV) or JSON types. Blank optional fields take their defaults.
    """
    problems = [
        Problem(line, str(name), _unknown_name_reason("field", str(name)))
        for name in fields
        if name not in _FIELD_CHECKS
    ]
    values: dict[str, object] = {}
    for name, check in _FIELD_CHECKS.items():
        raw = fields.get(name)
        if _is_blank(raw):
            if name in REQUIRED_COLUMNS:
                problems.append(Problem(line, name, "is missing"))
            continue
        try:
            values[name] = check(raw)
        except ValueError as err:
            problems.append(Problem(line, name, str(err)))
    if problems:
        return None, problems
    return Team(**values), []


def _require_valid(fields: Mapping[str, object], summary: str) -> Team:
    team, problems = validate_team_fields(fields)
    if team is None:
        raise TeamValidationError(problems, summary)
    return team


def _count_problems(problems: Sequence[Problem], source: str) -> str:
    count = len(problems)
    return f"{source}: {count} problem{'' if count == 1 else 's'}"


# --------------------------------------------------------------------------- file formats


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
            if account_id in first_line:
                problems.append(
                    Problem(line, "aws_account_id", f"duplicate of line {first_line[account_id]}")
                )
            else:
                first_line[account_id] = line
        if team is not None:
            teams.append(team)
    return teams


def _valid_account_id_or_none(value: object) -> str | None:
    try:
        return _check_account_id(value)
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
        if not any(_trim(cell) for cell in row):
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
    for cell in row:
        name = _trim(cell).lower()
        if not name:
            columns.append("")  # Excel often adds unnamed columns; fine while their cells stay empty
        elif name in columns:
            problems.append(Problem(line, "header", f"column {name} appears twice"))
            columns.append(None)
        elif name not in ALL_COLUMNS:
            problems.append(Problem(line, "header", _unknown_name_reason("column", name)))
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
    stray = next((index for index, cell in enumerate(row) if padded[index] == "" and _trim(cell)), None)
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
            records.append((item_line, item))
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
        raise TeamValidationError([empty], _count_problems([empty], source))
    ignore: set[str] = set()
    if fmt == "csv":
        records, problems, ignore = _csv_records(text, allow_empty)
    else:
        records, problems = _json_records(text, allow_empty)
    teams = _validate_records(records, problems, ignore_fields=ignore)
    if problems:
        raise TeamValidationError(problems, _count_problems(problems, source))
    return teams


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
        raise TeamValidationError([problem], _count_problems([problem], str(path))) from None


def parse_teams_file(path: Path) -> list[Team]:
    """Parse a teams file: ``.csv``, ``.json``, or ``.txt`` (JSON if it starts with '[' or '{').

    Raises TeamValidationError (naming the file) for any problem, OSError if it cannot be read.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        hint = "; from Excel use Save As > 'CSV UTF-8'" if suffix in (".xlsx", ".xls", ".ods") else ""
        problem = Problem(1, "file", f"unsupported file type {suffix or '(none)'!r}: use .csv or .json{hint}")
        raise TeamValidationError([problem], _count_problems([problem], str(path)))
    text = _read_text(path)
    fmt = suffix[1:]
    if fmt == "txt":
        fmt = "json" if text.lstrip().startswith(("[", "{")) else "csv"
    return _parse_text(text, fmt, allow_empty=False, source=str(path))


def teams_to_json(teams: Sequence[Team]) -> str:
    """Teams as the registry's JSON text, ``{"teams": [...]}``, in the given order."""
    return json.dumps({"teams": [team.to_dict() for team in teams]}, indent=2, ensure_ascii=False) + "\n"


def teams_to_csv(teams: Sequence[Team]) -> str:
    """Teams as CSV text with all columns, readable by :func:`parse_teams_text`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(ALL_COLUMNS)
    for team in teams:
        optional = [
            "" if value is None else repr(value)
            for value in (team.monthly_budget, team.anomaly_threshold_pct, team.anomaly_min_usd)
        ]
        writer.writerow([team.team_name, team.aws_account_id, team.team_email, ";".join(team.cc_emails), *optional])
    return buffer.getvalue()


# --------------------------------------------------------------------------- the registry


def _sorted(teams: Iterable[Team]) -> list[Team]:
    return sorted(teams, key=lambda team: team.aws_account_id)


def load_registry(path: Path) -> list[Team]:
    """The stored registry, sorted by account id; ``[]`` if the file does not exist yet.

    A damaged registry raises TeamValidationError naming the file and the lines.
    """
    path = Path(path)
    if not path.exists():
        return []
    return _sorted(_parse_text(_read_text(path), "json", allow_empty=True, source=str(path)))


def save_registry(path: Path, teams: Sequence[Team]) -> None:
    """Atomically write the registry, sorted by account id, as stable indented JSON.

    Every team is validated first and account ids must be unique, so what is saved always loads.
    """
    checked = [_require_valid(team.to_dict(), f"cannot save team {team.aws_account_id!r}") for team in teams]
    _refuse_duplicates(checked)
    atomic_write_text(Path(path), teams_to_json(_sorted(checked)))


def _refuse_duplicates(teams: Sequence[Team]) -> None:
    owner: dict[str, Team] = {}
    problems = []
    for team in teams:
        first = owner.setdefault(team.aws_account_id, team)
        if first is not team:
            problems.append(
                Problem(
                    0,
                    "aws_account_id",
                    f"account {team.aws_account_id} is already registered to team {first.team_name!r}",
                )
            )
    if problems:
        raise TeamValidationError(problems, _count_problems(problems, "duplicate accounts"))


def import_teams(registry_path: Path, file_path: Path, *, replace: bool = False) -> ImportResult:
    """Import a teams file into the registry, all or nothing.

    The whole file is parsed first; on any problem TeamValidationError is raised and the registry is
    not touched (not even rewritten). ``replace=False`` adds or updates teams by account id and keeps
    the others; ``replace=True`` makes the registry exactly the file. The registry is written only
    if something changed.
    """
    try:
        incoming = parse_teams_file(file_path)
    except TeamValidationError as err:
        raise TeamValidationError(err.problems, f"{err.summary}; the registry was not changed") from None
    current = {team.aws_account_id: team for team in load_registry(registry_path)}
    added, updated, unchanged = [], [], []
    for team in incoming:
        old = current.get(team.aws_account_id)
        if old is None:
            added.append(team.aws_account_id)
        elif old == team:
            unchanged.append(team.aws_account_id)
        else:
            updated.append(team.aws_account_id)
    incoming_by_id = {team.aws_account_id: team for team in incoming}
    if replace:
        removed = sorted(set(current) - set(incoming_by_id))
        result = _sorted(incoming)
    else:
        removed = []
        result = _sorted({**current, **incoming_by_id}.values())
    if added or updated or removed:
        save_registry(registry_path, result)
    return ImportResult(result, sorted(added), sorted(updated), removed, sorted(unchanged))


def _index_of(teams: Sequence[Team], account_id: str) -> int:
    key = account_id.strip() if isinstance(account_id, str) else account_id
    for index, team in enumerate(teams):
        if team.aws_account_id == key:
            return index
    message = f"no team is registered with account id {key!r}"
    try:
        _check_account_id(key)
    except ValueError as err:
        message += f" ({err})"
    raise UnknownTeamError(message)


def add_team(teams: Sequence[Team], team: Team) -> list[Team]:
    """A new list with ``team`` validated and added; a registered account id is refused."""
    checked = _require_valid(team.to_dict(), "cannot add team")
    _refuse_duplicates([*teams, checked])
    return _sorted([*teams, checked])


def update_team(teams: Sequence[Team], account_id: str, **changes: object) -> list[Team]:
    """A new list with the team of ``account_id`` changed; the result is validated as a whole.

    ``changes`` are field names with new values (``monthly_budget=None`` clears the budget).
    Raises UnknownTeamError if no team has that account id, TeamValidationError if the change is
    invalid or moves the team onto an account id another team already has.
    """
    index = _index_of(teams, account_id)
    updated = _require_valid(
        {**teams[index].to_dict(), **changes}, f"cannot update account {teams[index].aws_account_id}"
    )
    others = [team for position, team in enumerate(teams) if position != index]
    _refuse_duplicates([*others, updated])
    return _sorted([*others, updated])


def remove_team(teams: Sequence[Team], account_id: str) -> list[Team]:
    """A new list without the team of ``account_id``; UnknownTeamError if there is none."""
    index = _index_of(teams, account_id)
    return _sorted(team for position, team in enumerate(teams) if position != index)
