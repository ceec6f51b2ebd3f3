"""Where an installation keeps its state: one directory, ``COSTAGENT_HOME``.

Settings, the teams registry, the Parquet warehouse, the DuckDB file, the outbox and the Dagster
instance all live under it, so pointing the variable at an empty directory gives a fresh,
independent installation (tests and benchmarks rely on this).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = Path("~/.costagent")


class InstanceConfigError(RuntimeError):
    """The installation's dagster.yaml cannot be used as it stands (the message says what to change)."""


@dataclass(frozen=True)
class Home:
    """The paths of one installation, all derived from its root."""

    root: Path

    @property
    def settings_path(self) -> Path:
        return self.root / "settings.json"

    @property
    def teams_path(self) -> Path:
        return self.root / "teams.json"

    @property
    def warehouse_dir(self) -> Path:
        return self.root / "warehouse"

    @property
    def duckdb_path(self) -> Path:
        # Not "costagent.duckdb": a database named like one of its schemas makes references ambiguous.
        return self.root / "history.duckdb"

    @property
    def outbox_dir(self) -> Path:
        return self.root / "outbox"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    def ensure(self) -> Home:
        """Create the directory tree (idempotent) and return self."""
        for path in (self.root, self.warehouse_dir, self.outbox_dir, self.dagster_home):
            path.mkdir(parents=True, exist_ok=True)
        return self


def get_home(root: str | os.PathLike[str] | None = None) -> Home:
    """The installation at ``root``, else ``$COSTAGENT_HOME``, else ``~/.costagent``."""
    chosen = root or os.environ.get("COSTAGENT_HOME") or DEFAULT_HOME
    return Home(Path(chosen).expanduser().resolve())
