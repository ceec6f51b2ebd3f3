"""The teams registry (``teams.json``) as a resource: read once per run, so every stage sees the same teams."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from costagent_assets.teams.model import Team
from costagent_assets.teams.registry import load_registry


class TeamsRegistry(dg.ConfigurableResource):
    """The registered teams, one per account, with their recipients, budgets and own alert rules."""

    path: str
    _teams: list[Team] | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Read once at the start of each run: an edit during a run applies to the next one.
        self._teams = load_registry(Path(self.path))

    def teams(self) -> list[Team]:
        """The registry as it was when the run started."""
        if self._teams is None:
            self._teams = load_registry(Path(self.path))
        return self._teams
