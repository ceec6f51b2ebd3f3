"""The teams registry: one JSON file under ``COSTAGENT_HOME``, changed all or nothing.

Nothing is written unless the whole result is valid, so the stored registry always loads.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from costagent_assets.fileio import atomic_write_text
from costagent_assets.teams.importing import parse_registry_file, parse_teams_file
from costagent_assets.teams.model import (
    ALL_COLUMNS,
    Problem,
    Team,
    TeamValidationError,
    UnknownTeamError,
    check_account_id,
    count_problems,
    require_valid,
    same_account_key,
)


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_teams` did; the id lists hold account ids, sorted."""

    teams: list[Team]
    added: list[str]
    updated: list[str]
    removed: list[str]
    unchanged: list[str]


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
        writer.writerow([team.team_name, team.aws_account_id, team.team_email, ";".join(team.cc_emails), *optional,
                         team.source or ""])
    return buffer.getvalue()


def _sorted(teams: Iterable[Team]) -> list[Team]:
    return sorted(teams, key=lambda team: team.aws_account_id)


def load_registry(path: Path) -> list[Team]:
    """The stored registry, sorted by account id; ``[]`` if the file does not exist yet.

    A damaged registry raises TeamValidationError naming the file and the lines.
    """
    path = Path(path)
    if not path.exists():
        return []
    return _sorted(parse_registry_file(path))


def save_registry(path: Path, teams: Sequence[Team]) -> None:
    """Atomically write the registry, sorted by account id, as stable indented JSON.

    Every team is validated first and account ids must be unique, so what is saved always loads.
    """
    checked = [require_valid(team.to_dict(), f"cannot save team {team.aws_account_id!r}") for team in teams]
    _refuse_duplicates(checked)
    atomic_write_text(Path(path), teams_to_json(_sorted(checked)))


def _refuse_duplicates(teams: Sequence[Team]) -> None:
    owner: dict[str, Team] = {}
    problems = []
    for team in teams:
        first = owner.setdefault(same_account_key(team.aws_account_id), team)
        if first is not team:
            case = f" as {first.aws_account_id} (ids differ only in case)" if first.aws_account_id != team.aws_account_id else ""
            problems.append(
                Problem(
                    0,
                    "aws_account_id",
                    f"account {team.aws_account_id} is already registered{case} to team {first.team_name!r}",
                )
            )
    if problems:
        raise TeamValidationError(problems, count_problems(problems, "duplicate accounts"))


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
        check_account_id(key)
    except ValueError as err:
        message += f" ({err})"
    raise UnknownTeamError(message)


def add_team(teams: Sequence[Team], team: Team) -> list[Team]:
    """A new list with ``team`` validated and added; a registered account id is refused."""
    checked = require_valid(team.to_dict(), "cannot add team")
    _refuse_duplicates([*teams, checked])
    return _sorted([*teams, checked])


def update_team(teams: Sequence[Team], account_id: str, **changes: object) -> list[Team]:
    """A new list with the team of ``account_id`` changed; the result is validated as a whole.

    ``changes`` are field names with new values (``monthly_budget=None`` clears the budget).
    Raises UnknownTeamError if no team has that account id, TeamValidationError if the change is
    invalid or moves the team onto an account id another team already has.
    """
    index = _index_of(teams, account_id)
    updated = require_valid(
        {**teams[index].to_dict(), **changes}, f"cannot update account {teams[index].aws_account_id}"
    )
    others = [team for position, team in enumerate(teams) if position != index]
    _refuse_duplicates([*others, updated])
    return _sorted([*others, updated])


def remove_team(teams: Sequence[Team], account_id: str) -> list[Team]:
    """A new list without the team of ``account_id``; UnknownTeamError if there is none."""
    index = _index_of(teams, account_id)
    return _sorted(team for position, team in enumerate(teams) if position != index)
