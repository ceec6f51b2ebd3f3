"""The installation's own state: settings and the teams registry, read at run time."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from costagent_assets.home import Home
from costagent_assets.settings import Settings, load_settings
from costagent_assets.teams.model import Team
from costagent_assets.teams.registry import load_registry
from costagent_assets.warehouse import Store


class CostagentHome(dg.ConfigurableResource):
    """Settings and teams from ``COSTAGENT_HOME``; read when a run asks, so edits apply to the next run."""

    root: str

    @property
    def home(self) -> Home:
        return Home(Path(self.root))

    def settings(self) -> Settings:
        """The validated settings (defaults where the file is missing)."""
        return load_settings(self.home.settings_path)

    def store(self) -> Store:
        """The warehouse (local or S3) for tables written beside the asset partitions."""
        from costagent_assets.resources.s3_warehouse import home_store

        return home_store(self.home, self.settings())

    def teams(self) -> list[Team]:
        """The teams registry."""
        return load_registry(self.home.teams_path)
