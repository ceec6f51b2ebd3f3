"""Teams: who owns which account and where its report goes, and the rules every team field obeys.

Every way in (CSV, JSON, ``add``, ``update``, the stored registry) goes through
:func:`validate_team_fields`, so a team is held to the same rules wherever it comes from.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from costagent_assets.validation import (
    CONTROL_CHARACTER,
    ENCODED_WORD,
    HEADER_BREAK,
    check_threshold_pct,
    email_problem,
    parse_usd_amount,
)

REQUIRED_COLUMNS = ("team_name", "aws_account_id", "team_email")
OPTIONAL_COLUMNS = ("cc_emails", "monthly_budget", "anomaly_threshold_pct", "anomaly_min_usd", "source")
ALL_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
MAX_TEAM_NAME_LENGTH = 120


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
    # The cost source that reports this account (openai, anthropic, ...); None: the first AWS source configured.
    source: str | None = None

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
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> Team:
        """Build a team from a dict such as a registry entry; raises TeamValidationError if invalid."""
        return require_valid(d, "invalid team")


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
        self.summary = summary or count_problems(self.problems, "the teams data")
        # Both in args so the error survives pickling (Dagster ships errors between processes).
        super().__init__(self.problems, self.summary)

    def __str__(self) -> str:
        return "\n".join([self.summary, *(f"  {problem}" for problem in self.problems)])


class UnknownTeamError(KeyError):
    """No team in the registry has the given account id."""

    def __str__(self) -> str:
        # KeyError's own __str__ shows the repr of its argument, quotes and all.
        return str(self.args[0]) if self.args else ""


# --------------------------------------------------------------------------- field rules

# Whitespace that is not a control character: stripped from the ends of values. Control characters
# (CR, LF, tab) are never stripped, so a stray line break is reported rather than hidden.
_EDGE_SPACE = re.compile(r"^[^\S\x00-\x1f\x7f-\x9f]+|[^\S\x00-\x1f\x7f-\x9f]+\Z")

_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_AZURE_SUBSCRIPTION = re.compile(r"(?:/subscriptions/)?([0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12})/?")
_OTHER_ACCOUNT_ID = re.compile(r"[A-Za-z][A-Za-z0-9._-]{5,127}")
_SCIENTIFIC = re.compile(r"[0-9](?:[.,][0-9]+)?[eE][+]?[0-9]+")
_DECIMAL_ZERO = re.compile(r"([0-9]+)[.,]0+")
_DASHED_ID = re.compile(r"[0-9]{4}-[0-9]{4}-[0-9]{4}")


def trim(value: str) -> str:
    """``value`` without surrounding spaces; control characters stay, so they are reported, not hidden."""
    return _EDGE_SPACE.sub("", value)


def _check_team_name(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be text, got {value!r}")
    name = trim(value)
    if CONTROL_CHARACTER.search(name) or HEADER_BREAK.search(name):
        raise ValueError(f"{name!r} contains a line break, tab or other control character")
    word = ENCODED_WORD.search(name)
    if word:
        # Mail clients would show the decoded text, not the name, and a hidden CR/LF injects headers.
        raise ValueError(f"{name!r} contains the MIME encoded-word {word.group(0)!r}; write the name as plain text")
    if len(name) > MAX_TEAM_NAME_LENGTH:
        raise ValueError(f"is {len(name)} characters long; at most {MAX_TEAM_NAME_LENGTH} are allowed")
    return name


def check_account_id(value: object) -> str:
    """The registry form of an account id; ValueError saying what a spreadsheet probably did to it."""
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


def same_account_key(account_id: str) -> str:
    """What two account ids must differ in to be two accounts: GCP project ids, OCI OCIDs and Azure
    subscription GUIDs are case-insensitive (GCP's and OCI's are lower-case by rule), so ``my-project-1``
    and ``MY-PROJECT-1`` are one account registered twice; AWS ids are digits."""
    return account_id.casefold()


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
    address = trim(value)
    reason = email_problem(address)
    if reason:
        raise ValueError(f"{address!r} {reason}")
    return address


def _check_team_email(value: object) -> str:
    if isinstance(value, str) and (";" in value or "," in value):
        raise ValueError(
            f"{trim(value)!r} holds several addresses; put one here and the others in cc_emails"
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
        if isinstance(item, str) and not trim(item):
            continue  # "a@x.com;" and "a@x.com; ;b@y.com" are fine
        try:
            addresses.append(_check_email(item))
        except ValueError as err:
            comma = isinstance(item, str) and "," in item
            reasons.append(f"{err} (separate several addresses with ';')" if comma else str(err))
    if reasons:
        raise ValueError("; ".join(reasons))
    return tuple(addresses)


def _check_source(value: object) -> str:
    from costagent_assets.settings import AI_SOURCES, AWS_SOURCES

    text = trim(value).lower().replace("-", "_") if isinstance(value, str) else ""
    if text not in AWS_SOURCES + AI_SOURCES:
        raise ValueError(f"must be one of {', '.join(AWS_SOURCES + AI_SOURCES)}, got {value!r}")
    return text


_FIELD_CHECKS = {
    "team_name": _check_team_name,
    "aws_account_id": check_account_id,
    "team_email": _check_team_email,
    "cc_emails": _check_cc_emails,
    "monthly_budget": parse_usd_amount,
    "anomaly_threshold_pct": check_threshold_pct,
    "anomaly_min_usd": parse_usd_amount,
    "source": _check_source,
}


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not trim(value))


def unknown_name_reason(kind: str, name: str) -> str:
    """Why a column or field ``name`` is refused, with the closest known one and the allowed ones."""
    close = difflib.get_close_matches(name, ALL_COLUMNS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {kind} {name!r}{hint}; allowed: {', '.join(ALL_COLUMNS)}"


def validate_team_fields(fields: Mapping[str, object], *, line: int = 0) -> tuple[Team | None, list[Problem]]:
    """Check one team's raw fields; return the normalized Team, or None and every problem found.

    The single validation path for CSV rows, JSON objects, the stored registry and add/update.
    Values may be text (as in a CSV) or JSON types. Blank optional fields take their defaults.
    """
    problems = [
        Problem(line, str(name), unknown_name_reason("field", str(name)))
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


def require_valid(fields: Mapping[str, object], summary: str) -> Team:
    """The valid team of ``fields``, or TeamValidationError with ``summary`` and every problem."""
    team, problems = validate_team_fields(fields)
    if team is None:
        raise TeamValidationError(problems, summary)
    return team


def count_problems(problems: Sequence[Problem], source: str) -> str:
    """The summary line of a TeamValidationError: where, and how many problems."""
    count = len(problems)
    return f"{source}: {count} problem{'' if count == 1 else 's'}"

